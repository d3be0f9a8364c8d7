//! The shared directory: a requested name in, an open file inside DIR out,
//! or a refusal. Nothing outside DIR is ever opened for a client.
//!
//! A name is checked twice: first as text (no absolute path, no `..`, no NUL
//! or backslash, not over-long), then by where it really is once symlinks
//! are resolved. On Linux the opened file's own path is checked a third time,
//! which closes the race of a directory swapped for a symlink between the
//! check and the open.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use proto::{FileEntry, MAX_LIST_FILES, MAX_NAME_LEN};

use crate::exclude::Excludes;

/// Deepest subdirectory a listing descends into.
const MAX_LIST_DEPTH: usize = 32;

/// Most names [`Unshareable`] remembers; past it, one line says that more
/// are not named, so a directory of a million such files cannot grow the
/// node's memory or flood its log.
const MAX_REPORTED: usize = 10_000;

#[derive(Debug, Clone)]
pub struct SharedDir {
    /// Canonical: absolute, symlinks resolved.
    root: PathBuf,
    unshareable: Arc<Unshareable>,
    /// What `--exclude` keeps out: never listed, never served.
    excludes: Arc<Excludes>,
}

/// The files under DIR that cannot be shared because of their names (not
/// UTF-8, a backslash, too long). A listing skips them; the operator is told
/// once per name per process, not on every listing, which would repeat the
/// same lines at every client's `ls`.
#[derive(Debug, Default)]
struct Unshareable {
    state: Mutex<Reported>,
}

#[derive(Debug, Default)]
struct Reported {
    names: HashSet<PathBuf>,
    capped: bool,
}

impl Unshareable {
    /// Logs that `rel` (relative to DIR; for a directory, everything under
    /// it) is not shared and why, unless it was logged before. Returns
    /// whether it logged.
    fn report(&self, rel: &Path, is_dir: bool, why: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.names.contains(rel) {
            return false;
        }
        if state.names.len() >= MAX_REPORTED {
            if !state.capped {
                state.capped = true;
                tracing::warn!(
                    "more files cannot be shared because of their names; \
                     {MAX_REPORTED} were named, the rest are not"
                );
            }
            return false;
        }
        state.names.insert(rel.to_path_buf());
        if is_dir {
            tracing::warn!("cannot share anything under {rel:?}: {why}");
        } else {
            tracing::warn!("cannot share {rel:?}: {why}");
        }
        true
    }
}

/// Why a name was not served.
#[derive(Debug)]
pub enum ShareError {
    /// No such file here.
    NotFound,
    /// The name is not allowed; the reason can be shown to the client.
    Forbidden(String),
    /// The file exists but could not be opened or read.
    Io(io::Error),
}

/// A file ready to send.
#[derive(Debug)]
pub struct SharedFile {
    pub file: File,
    pub size: u64,
}

impl SharedDir {
    /// Opens DIR for sharing; it must exist and be a directory.
    pub fn open(dir: &Path) -> io::Result<SharedDir> {
        let root = fs::canonicalize(dir)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(SharedDir {
            root,
            unshareable: Arc::default(),
            excludes: Arc::default(),
        })
    }

    /// The same directory, less what `excludes` keeps out.
    pub fn excluding(self, excludes: Excludes) -> SharedDir {
        SharedDir {
            excludes: Arc::new(excludes),
            ..self
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the file `name` names inside DIR.
    pub fn open_file(&self, name: &str) -> Result<SharedFile, ShareError> {
        check_name(name).map_err(|why| ShareError::Forbidden(why.into()))?;
        // Judged on the text first, so a refusal says nothing of whether
        // such a file exists.
        if self.excludes.excludes(name) {
            return Err(ShareError::Forbidden(EXCLUDED.into()));
        }
        let real = match fs::canonicalize(self.root.join(name)) {
            Ok(real) => real,
            Err(e) if is_not_found(&e) => return Err(ShareError::NotFound),
            Err(e) => return Err(ShareError::Io(e)),
        };
        if !real.starts_with(&self.root) {
            return Err(ShareError::Forbidden(
                "the name resolves outside the shared directory".into(),
            ));
        }
        // A symlink to an excluded file is refused too.
        if self.excluded_real(&real) {
            return Err(ShareError::Forbidden(EXCLUDED.into()));
        }
        // Only regular files are opened: opening a device can have effects
        // of its own (a tape rewinds, a watchdog arms), and a FIFO or socket
        // cannot be served anyway.
        match fs::metadata(&real) {
            Ok(meta) if meta.is_dir() => {
                return Err(ShareError::Forbidden("a directory is not a file".into()));
            }
            Ok(meta) if !meta.is_file() => {
                return Err(ShareError::Forbidden("not a regular file".into()));
            }
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Err(ShareError::NotFound),
            Err(e) => return Err(ShareError::Io(e)),
        }
        // O_NONBLOCK: should the file be swapped for a FIFO after the check
        // above, the open must not wait for a writer; the FIFO is then refused
        // below as not a regular file. Regular files ignore the flag.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&real)
            .map_err(|e| {
                if is_not_found(&e) {
                    ShareError::NotFound
                } else {
                    ShareError::Io(e)
                }
            })?;
        let meta = file.metadata().map_err(ShareError::Io)?;
        if meta.is_dir() {
            return Err(ShareError::Forbidden("a directory is not a file".into()));
        }
        if !meta.is_file() {
            return Err(ShareError::Forbidden("not a regular file".into()));
        }
        if !self.opened_inside(&file) {
            return Err(ShareError::Forbidden(
                "the name resolves outside the shared directory".into(),
            ));
        }
        Ok(SharedFile {
            file,
            size: meta.len(),
        })
    }

    /// Whether `real`, a canonical path inside DIR, is excluded.
    fn excluded_real(&self, real: &Path) -> bool {
        if self.excludes.is_empty() {
            return false;
        }
        match real.strip_prefix(&self.root) {
            Ok(rel) => rel.to_str().is_none_or(|rel| self.excludes.excludes(rel)),
            Err(_) => true,
        }
    }

    /// Where the open file really is, asked of the kernel.
    #[cfg(target_os = "linux")]
    fn opened_inside(&self, file: &File) -> bool {
        use std::os::fd::AsRawFd;
        match fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            Ok(path) => path.starts_with(&self.root),
            // No /proc (a minimal container): the canonical check stands.
            Err(_) => true,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn opened_inside(&self, _file: &File) -> bool {
        true
    }

    /// Every regular file under DIR with its size, names relative to DIR and
    /// `/`-separated, sorted bytewise on the whole name. Dotfiles are listed.
    /// Symlinks are listed only when they resolve to a file inside DIR
    /// (a dangling one is left out); symlinked directories are not followed
    /// (no loops). A name that is not UTF-8, or that [`check_name`] refuses,
    /// is left out and logged once (see [`Unshareable`]).
    /// Returns the entries and whether the listing was cut at the limit.
    pub fn list(&self) -> (Vec<FileEntry>, bool) {
        let mut entries = Vec::new();
        let mut truncated = false;
        self.walk(&self.root, "", 0, &mut entries, &mut truncated);
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        (entries, truncated)
    }

    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        depth: usize,
        out: &mut Vec<FileEntry>,
        truncated: &mut bool,
    ) {
        let Ok(read) = fs::read_dir(dir) else { return };
        for entry in read.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let shareable_kind = kind.is_dir() || kind.is_file() || kind.is_symlink();
            let rel = match entry.file_name().into_string() {
                Ok(name) if prefix.is_empty() => name,
                Ok(name) => format!("{prefix}/{name}"),
                Err(name) => {
                    // Not UTF-8: no request can name it.
                    if shareable_kind {
                        let rel = Path::new(prefix).join(name);
                        self.unshareable
                            .report(&rel, kind.is_dir(), "the name is not valid UTF-8");
                    }
                    continue;
                }
            };
            if let Err(why) = check_name(&rel) {
                if shareable_kind {
                    self.unshareable.report(Path::new(&rel), kind.is_dir(), why);
                }
                continue;
            }
            // Excluded: not listed, and a directory not walked.
            if self.excludes.excludes(&rel) {
                continue;
            }
            if kind.is_dir() {
                if depth < MAX_LIST_DEPTH {
                    self.walk(&entry.path(), &rel, depth + 1, out, truncated);
                } else {
                    *truncated = true;
                }
                continue;
            }
            let size = if kind.is_symlink() {
                match fs::canonicalize(entry.path()) {
                    Ok(real) if real.starts_with(&self.root) && !self.excluded_real(&real) => {
                        match fs::metadata(&real) {
                            Ok(m) if m.is_file() => m.len(),
                            _ => continue,
                        }
                    }
                    _ => continue,
                }
            } else if kind.is_file() {
                match entry.metadata() {
                    Ok(m) => m.len(),
                    Err(_) => continue,
                }
            } else {
                continue;
            };
            if out.len() >= MAX_LIST_FILES {
                *truncated = true;
                return;
            }
            out.push(FileEntry { name: rel, size });
        }
    }
}

/// The refusal of a name `--exclude` keeps out.
const EXCLUDED: &str = "not shared: this node excludes it (--exclude)";

/// The textual rules a name must pass before the filesystem is asked.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty file name");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("file name too long");
    }
    if name.contains('\0') {
        return Err("file name contains a NUL byte");
    }
    if name.contains('\\') {
        return Err("file name contains a backslash");
    }
    let path = Path::new(name);
    if path.is_absolute() {
        return Err("absolute paths are not served; ask for a name inside the shared directory");
    }
    for component in path.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("`..` is not allowed in a file name"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not served");
            }
        }
    }
    Ok(())
}

/// Errors that mean "no such file here". A name too long for the file system
/// (ENAMETOOLONG: a component over 255 bytes) names nothing that can exist.
fn is_not_found(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(libc::ENAMETOOLONG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn shared() -> (tempfile::TempDir, SharedDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share");
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("a.txt"), b"alpha").unwrap();
        fs::write(dir.join("sub/b.txt"), b"beta").unwrap();
        fs::write(tmp.path().join("secret"), b"secret").unwrap();
        symlink(tmp.path().join("secret"), dir.join("out")).unwrap();
        symlink(dir.join("a.txt"), dir.join("in")).unwrap();
        let share = SharedDir::open(&dir).unwrap();
        (tmp, share)
    }

    fn read(share: &SharedDir, name: &str) -> Result<String, ShareError> {
        let mut f = share.open_file(name)?;
        let mut s = String::new();
        f.file.read_to_string(&mut s).unwrap();
        Ok(s)
    }

    #[test]
    fn serves_files_and_subdirectories() {
        let (_tmp, share) = shared();
        assert_eq!(read(&share, "a.txt").unwrap(), "alpha");
        assert_eq!(read(&share, "sub/b.txt").unwrap(), "beta");
        assert_eq!(read(&share, "./sub/b.txt").unwrap(), "beta");
        assert_eq!(read(&share, "in").unwrap(), "alpha");
    }

    #[test]
    fn refuses_everything_outside() {
        let (_tmp, share) = shared();
        for name in [
            "../secret",
            "sub/../../secret",
            "/etc/passwd",
            "out",
            "a\0b",
            "sub\\b.txt",
            "",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(
                matches!(share.open_file(name), Err(ShareError::Forbidden(_))),
                "{name:?} was not refused"
            );
        }
    }

    #[test]
    fn missing_is_not_found_and_a_directory_is_not_a_file() {
        let (_tmp, share) = shared();
        assert!(matches!(share.open_file("nope"), Err(ShareError::NotFound)));
        assert!(matches!(
            share.open_file("a.txt/x"),
            Err(ShareError::NotFound)
        ));
        assert!(matches!(
            share.open_file("sub"),
            Err(ShareError::Forbidden(_))
        ));
    }

    #[test]
    fn only_regular_files_are_opened() {
        let (tmp, share) = shared();
        let dir = tmp.path().join("share");
        let fifo =
            std::ffi::CString::new(dir.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path and nothing else.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let _socket = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
        for name in ["fifo", "socket"] {
            assert!(
                matches!(share.open_file(name), Err(ShareError::Forbidden(_))),
                "{name} was not refused"
            );
        }
    }

    #[test]
    fn a_symlink_loop_fails_and_an_impossible_name_is_not_found() {
        let (tmp, share) = shared();
        symlink("loop", tmp.path().join("share/loop")).unwrap();
        assert!(matches!(share.open_file("loop"), Err(ShareError::Io(_))));
        let long = "x".repeat(300);
        assert!(matches!(share.open_file(&long), Err(ShareError::NotFound)));
    }

    #[test]
    fn lists_files_inside_only() {
        let (_tmp, share) = shared();
        let (entries, truncated) = share.list();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "in", "sub/b.txt"]);
        assert_eq!(entries[0].size, 5);
        assert!(!truncated);
    }

    /// What `open_file` gave: the file's contents, or the kind of refusal.
    fn outcome(share: &SharedDir, name: &str) -> String {
        match read(share, name) {
            Ok(text) => text,
            Err(ShareError::NotFound) => "NotFound".into(),
            Err(ShareError::Forbidden(_)) => "Forbidden".into(),
            Err(ShareError::Io(e)) => format!("Io({e})"),
        }
    }

    #[test]
    fn names_follow_the_rule_in_protocol_md() {
        // docs/PROTOCOL.md, "Which names a node serves", case by case.
        let (tmp, share) = shared();
        let dir = tmp.path().join("share");
        fs::write(dir.join("a..b"), b"dots").unwrap();
        symlink(dir.join("sub"), dir.join("sublink")).unwrap();
        symlink(tmp.path(), dir.join("outdir")).unwrap();
        symlink(dir.join("gone"), dir.join("dangling")).unwrap();
        let cases = [
            // Refused by the text alone.
            ("", "Forbidden"),
            ("sub\\b.txt", "Forbidden"),
            ("a.txt\0", "Forbidden"),
            ("..", "Forbidden"),
            ("../secret", "Forbidden"),
            ("sub/../a.txt", "Forbidden"),
            ("sub/..", "Forbidden"),
            ("/etc/passwd", "Forbidden"),
            ("//a.txt", "Forbidden"),
            // `.` and empty components are ignored; `..` inside a name is not `..`.
            ("./a.txt", "alpha"),
            ("sub//b.txt", "beta"),
            ("sub/./b.txt", "beta"),
            ("a..b", "dots"),
            // Directories are refused, however they are named.
            ("sub", "Forbidden"),
            ("sub/", "Forbidden"),
            (".", "Forbidden"),
            ("./", "Forbidden"),
            // A file used as a directory, or nothing there.
            ("a.txt/", "NotFound"),
            ("a.txt/x", "NotFound"),
            ("nope", "NotFound"),
            // Symlinks: judged by where they lead.
            ("in", "alpha"),
            ("sublink/b.txt", "beta"),
            ("out", "Forbidden"),
            ("outdir/secret", "Forbidden"),
            ("dangling", "NotFound"),
        ];
        for (name, want) in cases {
            assert_eq!(outcome(&share, name), want, "{name:?}");
        }
    }

    #[test]
    fn a_listing_is_sorted_bytewise_and_leaves_out_what_cannot_be_named() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share");
        for name in [
            "b", "a.txt", "a/b.txt", "a0", ".hidden", "Z", "é", "x/.git/c",
        ] {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, name).unwrap();
        }
        // Left out: a dangling symlink, a symlinked directory (not followed),
        // a name that is not UTF-8, a name with a backslash, and everything
        // under a directory whose name has a backslash.
        symlink(dir.join("gone"), dir.join("dangling")).unwrap();
        symlink(dir.join("a"), dir.join("alink")).unwrap();
        fs::write(dir.join(OsStr::from_bytes(b"bad\xff.txt")), b"x").unwrap();
        fs::write(dir.join("back\\slash"), b"x").unwrap();
        fs::create_dir(dir.join("d\\ir")).unwrap();
        fs::write(dir.join("d\\ir/inner"), b"x").unwrap();
        let share = SharedDir::open(&dir).unwrap();

        let (entries, truncated) = share.list();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        // Bytewise on the whole name: '.' (2e) < '/' (2f) < '0' (30), and
        // upper case before lower case, ASCII before 'é'.
        assert_eq!(
            names,
            [
                ".hidden", "Z", "a.txt", "a/b.txt", "a0", "b", "x/.git/c", "é"
            ]
        );
        assert_eq!(entries[3].size, "a/b.txt".len() as u64);
        assert!(!truncated);

        // The names that could not be shared were reported by that listing,
        // so a second one reports nothing again.
        let reported = |rel: &[u8]| {
            let state = share.unshareable.state.lock().unwrap();
            state.names.contains(Path::new(OsStr::from_bytes(rel)))
        };
        for rel in [&b"bad\xff.txt"[..], b"back\\slash", b"d\\ir"] {
            assert!(reported(rel), "{:?}", String::from_utf8_lossy(rel));
        }
        assert!(
            !reported(b"d\\ir/inner"),
            "a refused directory is not walked"
        );
        assert!(
            !reported(b"dangling"),
            "a dangling symlink is not a naming problem"
        );
        assert_eq!(share.unshareable.state.lock().unwrap().names.len(), 3);
        share.list();
        assert_eq!(share.unshareable.state.lock().unwrap().names.len(), 3);
        assert!(
            !share
                .unshareable
                .report(Path::new("back\\slash"), false, "again")
        );
    }

    #[test]
    fn unshareable_names_are_remembered_up_to_a_cap() {
        let unshareable = Unshareable::default();
        for i in 0..MAX_REPORTED {
            assert!(unshareable.report(Path::new(&format!("n{i}")), false, "why"));
        }
        assert!(!unshareable.report(Path::new("n0"), false, "why"));
        assert!(!unshareable.report(Path::new("one more"), false, "why"));
        let state = unshareable.state.lock().unwrap();
        assert_eq!(state.names.len(), MAX_REPORTED);
        assert!(state.capped);
    }

    #[test]
    fn excluded_names_are_neither_listed_nor_served_even_through_a_symlink() {
        let (tmp, share) = shared();
        let dir = tmp.path().join("share");
        fs::create_dir_all(dir.join(".git/objects")).unwrap();
        fs::write(dir.join(".git/config"), b"[core]").unwrap();
        fs::write(dir.join(".hidden"), b"dot").unwrap();
        fs::write(dir.join("sub/x.tmp"), b"tmp").unwrap();
        symlink(dir.join(".git/config"), dir.join("config-link")).unwrap();
        let names = |share: &SharedDir| -> Vec<String> {
            share.list().0.into_iter().map(|e| e.name).collect()
        };
        // Without --exclude, dotfiles are shared like any other file.
        assert!(names(&share).contains(&".git/config".to_string()));
        assert_eq!(read(&share, ".hidden").unwrap(), "dot");

        let patterns = [".git".to_string(), "*.tmp".to_string()];
        let share = share.excluding(Excludes::new(&patterns).unwrap());
        assert_eq!(
            names(&share),
            [".hidden", "a.txt", "in", "sub/b.txt"],
            "no .git, no *.tmp, no symlink into .git"
        );
        for name in [
            ".git/config",
            "./.git/config",
            "sub/x.tmp",
            "config-link",
            ".git/none",
        ] {
            assert!(
                matches!(share.open_file(name), Err(ShareError::Forbidden(why)) if why == EXCLUDED),
                "{name} was not refused as excluded"
            );
        }
        assert_eq!(read(&share, ".hidden").unwrap(), "dot");
    }

    #[test]
    fn a_missing_or_plain_file_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(SharedDir::open(&tmp.path().join("none")).is_err());
        fs::write(tmp.path().join("f"), b"").unwrap();
        assert!(SharedDir::open(&tmp.path().join("f")).is_err());
    }
}
