//! What `-o PATH` names, decided before a byte is fetched: a place for an
//! atomic save, or something that must be written in place.
//!
//! Renaming a temporary file over PATH is right only for a regular file (or
//! nothing). Done to `/dev/null` it replaces the system's null device with a
//! regular file; done to a FIFO it takes the FIFO away from its reader; done
//! to a symlink it swaps the link for a file. So the path is looked at with
//! `symlink_metadata` first, the way `cp` does:
//!
//! | PATH is                  | what happens                                       |
//! |--------------------------|----------------------------------------------------|
//! | missing, a regular file  | atomic save at PATH                                |
//! | a symlink                | followed; the same rules at what it points to      |
//! | a directory              | the same rules at PATH/BASE (NAME's last part)     |
//! | a device, FIFO, socket   | opened and written in place                        |
//!
//! Links are followed one hop at a time rather than with `canonicalize`,
//! because `canonicalize` fails on a dangling link, and a dangling link whose
//! target's directory exists should get its target created (as `cp` and
//! `curl -o` do). A relative link target is joined to the link's own
//! directory, which is how the kernel resolves it too.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// As many links as Linux follows in one path (ELOOP after 40).
const MAX_LINKS: usize = 40;

/// Where and how a fetched file is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Saved atomically at `path`: a temporary file beside it, renamed into
    /// place when complete.
    File {
        path: PathBuf,
        /// The regular file the save replaces, whose owner and permission
        /// bits the new file keeps; None when there is none.
        existing: Option<Existing>,
    },
    /// Opened without creating or truncating, and written in place.
    Stream { path: PathBuf, kind: StreamKind },
}

/// What is kept of a regular file that a save replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// Permission bits only (0o777): see [`crate::output`] for why.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Kinds of files that are written in place, never replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl StreamKind {
    /// For messages: "/dev/null (a character device)".
    pub fn describe(self) -> &'static str {
        match self {
            StreamKind::CharDevice => "a character device",
            StreamKind::BlockDevice => "a block device",
            StreamKind::Fifo => "a FIFO",
            StreamKind::Socket => "a socket",
        }
    }

    fn of(file_type: fs::FileType) -> Option<StreamKind> {
        if file_type.is_char_device() {
            Some(StreamKind::CharDevice)
        } else if file_type.is_block_device() {
            Some(StreamKind::BlockDevice)
        } else if file_type.is_fifo() {
            Some(StreamKind::Fifo)
        } else if file_type.is_socket() {
            Some(StreamKind::Socket)
        } else {
            None
        }
    }
}

impl Target {
    /// Decides what `-o path` means for the file requested as `name`.
    pub fn resolve(path: &Path, name: &str) -> anyhow::Result<Target> {
        let cannot = |p: &Path| format!("cannot save to {}", p.display());
        let mut path = path.to_path_buf();
        let mut in_directory = false;
        for _ in 0..=MAX_LINKS {
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // `-o new/` asks for a directory; a file named `new` is
                    // not what the user meant.
                    if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
                        anyhow::bail!("{}: no such directory", cannot(&path));
                    }
                    return Ok(Target::File {
                        path,
                        existing: None,
                    });
                }
                Err(e) => return Err(e).with_context(|| cannot(&path)),
            };
            let file_type = meta.file_type();
            if file_type.is_symlink() {
                let to = fs::read_link(&path).with_context(|| cannot(&path))?;
                path = match path.parent() {
                    Some(dir) => dir.join(to),
                    None => to,
                };
            } else if file_type.is_dir() {
                if in_directory {
                    // As cp: a directory is never replaced by a file.
                    anyhow::bail!("{}: it is a directory", cannot(&path));
                }
                path = path.join(base_name(name).with_context(|| cannot(&path))?);
                in_directory = true;
            } else if file_type.is_file() {
                let existing = Existing {
                    mode: meta.mode() & 0o777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                };
                return Ok(Target::File {
                    path,
                    existing: Some(existing),
                });
            } else if let Some(kind) = StreamKind::of(file_type) {
                return Ok(Target::Stream { path, kind });
            } else {
                anyhow::bail!("{}: unknown kind of file", cannot(&path));
            }
        }
        anyhow::bail!("{}: too many levels of symbolic links", cannot(&path))
    }

    /// Where the bytes end up, for messages.
    pub fn path(&self) -> &Path {
        match self {
            Target::File { path, .. } | Target::Stream { path, .. } => path,
        }
    }
}

/// The last `/`-separated part of a requested name: what a file fetched
/// into a directory is called there (`docs/a.txt` into `out/` is
/// `out/a.txt`).
fn base_name(name: &str) -> anyhow::Result<&str> {
    match name.rsplit('/').next() {
        Some(base) if !matches!(base, "" | "." | "..") => Ok(base),
        _ => anyhow::bail!("{name:?} has no file name to save under"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn file(path: PathBuf) -> Target {
        Target::File {
            path,
            existing: None,
        }
    }

    #[test]
    fn a_missing_path_is_an_atomic_save_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.bin");
        assert_eq!(Target::resolve(&path, "x").unwrap(), file(path));
        let slash = dir.path().join("newdir/");
        let e = Target::resolve(&slash, "x").unwrap_err();
        assert!(e.to_string().contains("no such directory"), "{e}");
    }

    #[test]
    fn a_regular_file_keeps_its_mode_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.bin");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o4751)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        let Target::File {
            path: got,
            existing: Some(existing),
        } = Target::resolve(&path, "x").unwrap()
        else {
            panic!("not a file target");
        };
        assert_eq!(got, path);
        // The setuid bit is not carried over to downloaded bytes.
        assert_eq!(existing.mode, 0o751);
        assert_eq!((existing.uid, existing.gid), (meta.uid(), meta.gid()));
    }

    #[test]
    fn a_directory_takes_the_base_name_of_the_request() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Target::resolve(dir.path(), "docs/a.txt").unwrap(),
            file(dir.path().join("a.txt"))
        );
        // A directory where the file would go is never replaced.
        fs::create_dir(dir.path().join("a.txt")).unwrap();
        let e = Target::resolve(dir.path(), "a.txt").unwrap_err();
        assert!(e.to_string().contains("it is a directory"), "{e}");
        for bad in ["docs/", "..", "a/."] {
            assert!(Target::resolve(dir.path(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_are_followed_to_their_targets_even_dangling_ones() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        // Relative targets are relative to the link's own directory.
        symlink("real/data.bin", dir.path().join("dangling")).unwrap();
        assert_eq!(
            Target::resolve(&dir.path().join("dangling"), "x").unwrap(),
            file(dir.path().join("real/data.bin"))
        );
        // A link to a directory: saved inside the directory.
        symlink(&real, dir.path().join("to-dir")).unwrap();
        assert_eq!(
            Target::resolve(&dir.path().join("to-dir"), "a.bin").unwrap(),
            file(real.join("a.bin"))
        );
        // A loop ends with an error, not a hang.
        symlink("loop", dir.path().join("loop")).unwrap();
        let e = Target::resolve(&dir.path().join("loop"), "x").unwrap_err();
        assert!(e.to_string().contains("symbolic links"), "{e}");
    }

    #[test]
    fn devices_are_written_in_place() {
        assert_eq!(
            Target::resolve(Path::new("/dev/null"), "x").unwrap(),
            Target::Stream {
                path: PathBuf::from("/dev/null"),
                kind: StreamKind::CharDevice
            }
        );
    }
}
