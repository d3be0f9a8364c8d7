//! Where fetched bytes go: stdout, or a file that appears only when complete.
//!
//! stdout carries file content only. When it is a terminal, content that is
//! not plain UTF-8 text is refused before it is written (as curl does), so a
//! binary file or a hostile escape sequence cannot garble the terminal. When
//! it is a pipe or a file, the bytes go out unchanged.
//!
//! A file is written to a temporary file in the target's directory, synced,
//! and renamed into place only when complete: a failed transfer never leaves
//! a partial file at the path.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tempfile::NamedTempFile;

/// A destination for one file's bytes.
pub enum Output {
    Stdout(StdoutSink),
    File(FileSink),
}

impl Output {
    /// stdout; `terminal` says whether to guard it as a terminal.
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

    /// A file at `path`, created only on [`Output::commit`].
    pub fn file(path: &Path) -> anyhow::Result<Output> {
        FileSink::create(path).map(Output::File)
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

    /// Whether progress should be drawn: only when saving to a file.
    pub fn is_file(&self) -> bool {
        matches!(self, Output::File(_))
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
        self.out.write_all(ready).map_err(SinkError::Io)
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
}

impl FileSink {
    fn create(path: &Path) -> anyhow::Result<FileSink> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let base = path
            .file_name()
            .with_context(|| format!("{} does not name a file", path.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", base.to_string_lossy()))
            .suffix(".part")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(FileSink {
            tmp,
            path: path.to_path_buf(),
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
        let mut out = Output::file(&path).unwrap();
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
        let mut out = Output::file(&path).unwrap();
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
        assert_eq!(got, "é");
        let mut sink = StdoutSink {
            out: File::from(std::os::fd::OwnedFd::from(std::io::pipe().unwrap().1)),
            terminal: true,
            pending: Vec::new(),
        };
        assert!(matches!(sink.write_chunk(&[0xff]), Err(SinkError::NotText)));
    }
}
