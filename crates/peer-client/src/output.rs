//! Where fetched bytes go: stdout, or a file that appears only when complete.
//!
//! stdout carries file content only. When it is a terminal, content that is
//! not plain UTF-8 text is refused before it is written (as curl does), so a
//! binary file or a hostile escape sequence cannot garble the terminal, and a
//! text that does not end its last line gets a newline there, so what the
//! client says next starts on a line of its own. When stdout is a pipe or a
//! file, the bytes go out unchanged.
//!
//! A file is written to a temporary file in the target's directory, synced,
//! and renamed into place only when complete: a failed transfer never leaves
//! a partial file at the path, and [`remove_partial_files`] lets an
//! interrupted client (Ctrl-C) clean up the temporary file too.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tempfile::NamedTempFile;

/// A destination for one file's bytes.
pub enum Output {
    Stdout(StdoutSink),
    File(FileSink),
}

impl Output {
    /// stdout, guarded when it is a terminal.
    pub fn stdout() -> io::Result<Output> {
        let terminal = io::stdout().is_terminal();
        // Write through our own handle on fd 1: std's stdout is line-buffered,
        // which would split binary content into many small writes.
        io::stdout().flush()?;
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Output::Stdout(StdoutSink {
            out: File::from(fd),
            terminal,
            pending: Vec::new(),
        }))
    }

    /// A file at `path`, created only on [`Output::commit`]; `progress` says
    /// whether a progress bar may be drawn for it (not with `-q`).
    pub fn file(path: &Path, progress: bool) -> anyhow::Result<Output> {
        FileSink::create(path, progress).map(Output::File)
    }

    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SinkError> {
        match self {
            Output::Stdout(s) => s.write_chunk(chunk),
            Output::File(f) => f.tmp.write_all(chunk).map_err(SinkError::Io),
        }
    }

    /// Ends a complete transfer: flushes stdout, or syncs and renames the file.
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(mut s) => s.out.flush().context("cannot write to stdout"),
            Output::File(f) => f.commit(),
        }
    }

    /// The temporary file of a save, for positioned writes: a multi-source
    /// fetch writes each verified range at its offset, in any order, from
    /// several threads (`FileExt::write_all_at` takes `&File`). The file is
    /// still renamed into place only by [`Output::commit`]. None for stdout
    /// (and anything else that takes bytes only in order).
    pub fn positioned(&self) -> Option<&File> {
        match self {
            Output::File(f) => Some(f.tmp.as_file()),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Whether a progress bar may be drawn: only when saving to a file, and
    /// not with `-q` ([`crate::progress`] also wants stderr to be a terminal).
    pub fn shows_progress(&self) -> bool {
        matches!(self, Output::File(f) if f.progress)
    }
}

/// Why the destination refused bytes.
#[derive(Debug)]
pub enum SinkError {
    /// stdout is a terminal and the content is not text.
    NotText,
    Io(io::Error),
}

pub struct StdoutSink {
    out: File,
    terminal: bool,
    /// The start of a UTF-8 sequence cut by the end of the previous chunk.
    pending: Vec<u8>,
}

impl StdoutSink {
    fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SinkError> {
        if !self.terminal {
            return self.out.write_all(chunk).map_err(SinkError::Io);
        }
        let mut text = std::mem::take(&mut self.pending);
        text.extend_from_slice(chunk);
        let valid = match std::str::from_utf8(&text) {
            Ok(s) => s.len(),
            // error_len None: the text ends inside a sequence the next chunk completes.
            Err(e) if e.error_len().is_none() && text.len() - e.valid_up_to() < 4 => {
                e.valid_up_to()
            }
            Err(_) => return Err(SinkError::NotText),
        };
        let (ready, rest) = text.split_at(valid);
        if !is_terminal_safe(ready) {
            return Err(SinkError::NotText);
        }
        self.pending = rest.to_vec();
        if let Some(&last) = ready.last() {
            MID_LINE.store(last != b'\n', Ordering::Relaxed);
        }
        self.out.write_all(ready).map_err(SinkError::Io)
    }
}

/// Text printed to the terminal stopped in the middle of a line. Only ever
/// set for a terminal: a pipe or a file gets exactly the file's bytes.
static MID_LINE: AtomicBool = AtomicBool::new(false);

impl Drop for StdoutSink {
    /// Ends a text printed to the terminal on a line of its own, whether the
    /// transfer completed or not.
    fn drop(&mut self) {
        if self.terminal && MID_LINE.swap(false, Ordering::Relaxed) {
            let _ = self.out.write_all(b"\n");
        }
    }
}

/// Ends the line a text printed to the terminal left open, so that a status
/// line (`found on ...`) does not start at its end.
pub fn end_terminal_line() {
    if MID_LINE.swap(false, Ordering::Relaxed) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(b"\n");
        let _ = stdout.flush();
    }
}

/// True when valid UTF-8 `text` has no control characters a terminal would
/// act on (escape sequences, bells, NULs), besides tab, newline, form feed
/// and carriage return.
fn is_terminal_safe(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

pub struct FileSink {
    tmp: NamedTempFile,
    path: PathBuf,
    progress: bool,
    _partial: Partial,
}

impl FileSink {
    fn create(path: &Path, progress: bool) -> anyhow::Result<FileSink> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let base = path
            .file_name()
            .with_context(|| format!("{} does not name a file", path.display()))?;
        // Refuse now what the rename would refuse after the whole transfer.
        if path.is_dir() {
            anyhow::bail!("cannot save to {}: it is a directory", path.display());
        }
        let cannot = || format!("cannot create a file in {}", dir.display());
        // std's error for the directory carries the OS reason ("no such file
        // or directory"); tempfile's would add its own random path to it.
        if !std::fs::metadata(dir).with_context(cannot)?.is_dir() {
            anyhow::bail!("{}: not a directory", cannot());
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", base.to_string_lossy()))
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| io::Error::from(e.kind()))
            .with_context(cannot)?;
        let partial = Partial::register(tmp.path());
        Ok(FileSink {
            tmp,
            path: path.to_path_buf(),
            progress,
            _partial: partial,
        })
    }

    fn commit(self) -> anyhow::Result<()> {
        let path = self.path;
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.tmp
            .persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot save {}", path.display()))?;
        // Make the rename itself durable.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Temporary files of transfers in progress. A signal handler cannot run
/// destructors, so it removes these by path instead.
static PARTIAL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// One entry of [`PARTIAL`], removed from the list (not from the disk) on
/// drop: by then the file has been renamed into place or deleted by
/// [`NamedTempFile`].
struct Partial(PathBuf);

impl Partial {
    fn register(path: &Path) -> Partial {
        if let Ok(mut list) = PARTIAL.lock() {
            list.push(path.to_path_buf());
        }
        Partial(path.to_path_buf())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Ok(mut list) = PARTIAL.lock() {
            list.retain(|p| p != &self.0);
        }
    }
}

/// Deletes the temporary files of transfers in progress; for an interrupt
/// handler, right before the process exits.
pub fn remove_partial_files() {
    remove_partial_files_where(|_| true);
}

fn remove_partial_files_where(pick: impl Fn(&Path) -> bool) {
    if let Ok(list) = PARTIAL.lock() {
        for path in list.iter().filter(|p| pick(p)) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_tabs_and_newlines_is_safe_and_escapes_are_not() {
        assert!(is_terminal_safe("héllo\tworld\r\n".as_bytes()));
        assert!(!is_terminal_safe(b"\x1b]0;pwned\x07"));
        assert!(!is_terminal_safe(b"a\0b"));
        assert!(!is_terminal_safe(&[0xff, 0xfe]));
    }

    #[test]
    fn a_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut out = Output::file(&path, false).unwrap();
        out.write_chunk(b"abc").unwrap();
        assert!(!path.exists());
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_abandoned_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let mut out = Output::file(&path, false).unwrap();
        out.write_chunk(b"abc").unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn utf8_cut_between_chunks_is_accepted_on_a_terminal() {
        let (r, w) = std::io::pipe().unwrap();
        let mut sink = StdoutSink {
            out: File::from(std::os::fd::OwnedFd::from(w)),
            terminal: true,
            pending: Vec::new(),
        };
        let bytes = "é".as_bytes();
        sink.write_chunk(&bytes[..1]).unwrap();
        sink.write_chunk(&bytes[1..]).unwrap();
        drop(sink);
        let mut got = String::new();
        std::io::Read::read_to_string(&mut std::io::BufReader::new(r), &mut got).unwrap();
        // The terminal also gets the newline the text did not end with.
        assert_eq!(got, "é\n");
        let mut sink = StdoutSink {
            out: File::from(std::os::fd::OwnedFd::from(std::io::pipe().unwrap().1)),
            terminal: true,
            pending: Vec::new(),
        };
        assert!(matches!(sink.write_chunk(&[0xff]), Err(SinkError::NotText)));
    }

    #[test]
    fn a_missing_directory_is_one_plain_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such");
        let Err(e) = Output::file(&missing.join("x.bin"), false) else {
            panic!("created a file in a missing directory");
        };
        let line = proto::error::describe(e.chain());
        assert_eq!(
            line,
            format!(
                "cannot create a file in {}: no such file or directory",
                missing.display()
            )
        );
        let Err(e) = Output::file(dir.path(), false) else {
            panic!("accepted a directory as the output file");
        };
        assert!(e.to_string().contains("it is a directory"), "{e}");
    }

    #[test]
    fn positioned_writes_land_at_their_offsets_in_any_order() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let out = Output::file(&path, false).unwrap();
        let file = out.positioned().unwrap();
        file.write_all_at(b"world", 6).unwrap();
        file.write_all_at(b"hello ", 0).unwrap();
        assert!(!path.exists());
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert!(Output::stdout().unwrap().positioned().is_none());
    }

    #[test]
    fn partial_files_are_listed_until_committed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let listed = |d: &Path| PARTIAL.lock().unwrap().iter().any(|p| p.starts_with(d));
        let out = Output::file(&dir.path().join("a.bin"), false).unwrap();
        assert!(listed(dir.path()));
        out.commit().unwrap();
        assert!(!listed(dir.path()));
        let mut out = Output::file(&dir.path().join("b.bin"), false).unwrap();
        out.write_chunk(b"abc").unwrap();
        assert!(listed(dir.path()));
        // Only this test's files: the other tests run at the same time.
        remove_partial_files_where(|p| p.starts_with(dir.path()));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only a.bin remains"
        );
        drop(out);
        assert!(!listed(dir.path()));
    }
}
