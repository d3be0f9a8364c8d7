//! Where fetched bytes go: stdout, a file that appears only when complete,
//! or a device or FIFO written in place.
//!
//! stdout carries file content only. When it is a terminal, content that is
//! not plain UTF-8 text is refused before it is written (as curl does), so a
//! binary file or a hostile escape sequence cannot garble the terminal, and a
//! text that does not end its last line gets a newline there, so what the
//! client says next starts on a line of its own. When stdout is a pipe or a
//! file, the bytes go out unchanged. `-o -` means stdout too, and `-o
//! /dev/tty` (any terminal named as PATH) is guarded the same way.
//!
//! What `-o PATH` names is decided by [`crate::target`]. A file is written to
//! its part in its own directory ([`crate::part`]), synced, and renamed into
//! place only when complete and checked: a failed transfer never leaves a
//! partial file at the path. A broken transfer keeps its part (and its
//! record) for the next run to resume; [`keep_partial_files`] lets an
//! interrupted client (Ctrl-C, SIGTERM) write the record on its way out. A device, FIFO or socket is never replaced: it is
//! opened (never created, never truncated) and the bytes stream into it, so
//! no file is ever created beside it (no temporary files in /dev).
//!
//! During a fetch the workers hand verified bytes on in one of three ways
//! ([`Delivery`]): written at their offset into the part of a
//! save, in any order and from any worker; straight out in order, when one
//! worker fetches for stdout, a FIFO or a device; or, with several workers
//! and such an in-order output, through a [`Ring`] of [`WINDOW`] bytes that
//! the fetch's own thread writes out in order.
//!
//! The saved file's mode is what `cp` and `curl -o` give:
//! - a new file gets 0666 less the umask. The part is created with
//!   mode 0666 and the kernel applies the umask at open(2). Reading the umask
//!   instead would take `umask(2)` twice (set, then restore), which briefly
//!   changes a process-wide setting under any other thread creating files;
//!   letting open(2) apply it has no such window and needs no unsafe code.
//! - a regular file that is replaced keeps its permission bits (and, where
//!   the user may, its owner and group): `cp` and `curl` write such a file in
//!   place, so its mode survives, and a user who made a file private (0600)
//!   or executable would not expect a refresh to change that. Its part
//!   stays 0600 until the new content is complete. Setuid, setgid and
//!   sticky bits are not carried over: downloaded bytes must not become a
//!   setuid program because the file they replaced was one.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::part::Part;
use crate::target::{Existing, StreamKind, Target};

/// A destination for one file's bytes.
pub enum Output {
    Stdout(StdoutSink),
    File(FileSink),
    Stream(StreamSink),
}

impl Output {
    /// Where `-o path` sends the file requested as `name`: stdout for no
    /// path or `-`, else see [`Output::file`].
    pub fn open(path: Option<&Path>, name: &str, progress: bool) -> anyhow::Result<Output> {
        Output::open_for(path, name, progress, false)
    }

    /// As [`Output::open`]; `fresh` (`--no-resume`) removes the part an
    /// earlier run kept for a file, and starts from scratch.
    pub fn open_for(
        path: Option<&Path>,
        name: &str,
        progress: bool,
        fresh: bool,
    ) -> anyhow::Result<Output> {
        match path {
            None => Ok(Output::stdout_for(progress)?),
            Some(p) if p.as_os_str() == "-" => Ok(Output::stdout_for(progress)?),
            Some(p) => Output::file_for(p, name, progress, fresh),
        }
    }

    /// stdout, guarded when it is a terminal.
    pub fn stdout() -> io::Result<Output> {
        Output::stdout_for(false)
    }

    /// stdout; `progress` says whether a progress bar may be drawn on
    /// stderr while it is written (never while it is a terminal: the bar
    /// would be drawn over the text).
    fn stdout_for(progress: bool) -> io::Result<Output> {
        let terminal = io::stdout().is_terminal();
        // Write through our own handle on fd 1: std's stdout is line-buffered,
        // which would split binary content into many small writes.
        io::stdout().flush()?;
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Output::Stdout(StdoutSink {
            out: File::from(fd),
            terminal,
            pending: Vec::new(),
            progress: progress && !terminal,
        }))
    }

    /// What `path` names for the file requested as `name` ([`Target`]): an
    /// atomic file, created only on [`Output::commit`], or a device or FIFO
    /// opened now. `progress` says whether a progress bar may be drawn for
    /// it (not with `-q`).
    pub fn file(path: &Path, name: &str, progress: bool) -> anyhow::Result<Output> {
        Output::file_for(path, name, progress, false)
    }

    fn file_for(path: &Path, name: &str, progress: bool, fresh: bool) -> anyhow::Result<Output> {
        match Target::resolve(path, name)? {
            Target::File { path, existing } => {
                FileSink::create(path, existing, progress, fresh).map(Output::File)
            }
            Target::Stream { path, kind } => {
                let sink = StreamSink::open(path, kind, progress)?;
                // A terminal named as PATH (`-o /dev/tty`) is a screen, as
                // stdout on a terminal is: guarded, its last line ended,
                // no bar drawn over the text.
                if kind == StreamKind::CharDevice && sink.file.is_terminal() {
                    return Ok(Output::Stdout(StdoutSink {
                        out: sink.file,
                        terminal: true,
                        pending: Vec::new(),
                        progress: false,
                    }));
                }
                Ok(Output::Stream(sink))
            }
        }
    }

    /// Passes `chunk` on. Every byte given here is final: stdout, a FIFO or a
    /// device sends it on at once and cannot take it back, so a caller that
    /// checks content must check a chunk before it writes it, never after.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SinkError> {
        refuse_when_stopped()?;
        match self {
            Output::Stdout(s) => s.write_chunk(chunk),
            Output::File(f) => {
                let at = f.written;
                f.part.write_at(chunk, at).map_err(SinkError::Io)?;
                f.written += chunk.len() as u64;
                Ok(())
            }
            Output::Stream(s) => s.write_chunk(chunk).map_err(SinkError::Io),
        }
    }

    /// Ends a complete transfer: flushes stdout, syncs and renames the file,
    /// or syncs a block device.
    pub fn commit(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(mut s) => s.out.flush().context("cannot write to stdout"),
            Output::File(f) => f.commit(),
            Output::Stream(s) => s.commit(),
        }
    }

    /// The part of a save, for positioned writes: a multi-source fetch
    /// writes each verified range at its offset, in any order, from several
    /// threads, and the part marks the groups written. The part is still
    /// renamed into place only by [`Output::commit`]. None for stdout and
    /// for a device or FIFO, which take bytes only in order (and keep
    /// nothing to resume).
    pub fn positioned(&self) -> Option<&Part> {
        match self {
            Output::File(f) => Some(&f.part),
            Output::Stdout(_) | Output::Stream(_) => None,
        }
    }

    /// Whether a progress bar may be drawn: not with `-q`, and not while
    /// the text itself goes to a terminal ([`crate::progress`] also wants
    /// stderr to be a terminal): `peer-client ... big.bin > copy` shows
    /// one, as curl does.
    pub fn shows_progress(&self) -> bool {
        match self {
            Output::Stdout(s) => s.progress,
            Output::File(f) => f.progress,
            Output::Stream(s) => s.progress,
        }
    }

    /// The line that tells where a complete transfer of `name` went; None
    /// for stdout, whose bytes speak for themselves.
    pub fn done_line(&self, name: &str, size: u64) -> Option<String> {
        match self {
            Output::Stdout(_) => None,
            Output::File(f) => Some(format!(
                "saved {name} to {} ({size} bytes)",
                f.path.display()
            )),
            Output::Stream(s) => Some(format!(
                "wrote {name} to {}, {} ({size} bytes)",
                s.path.display(),
                s.kind.describe()
            )),
        }
    }

    /// What a failed transfer of `name` left behind, when it is worth
    /// saying: a device or FIFO cannot take back the bytes it already got,
    /// and a file keeps its verified bytes for the next run to resume.
    /// (stdout's reader sees what it got.)
    pub fn abandoned_line(&self, name: &str) -> Option<String> {
        match self {
            Output::File(f) => f
                .part
                .kept()
                .map(|(bytes, size)| crate::part::interrupted_line(bytes, size)),
            Output::Stream(s) if s.written > 0 => Some(format!(
                "{} got only the first {} bytes of {name}; they cannot be taken back",
                s.label(),
                s.written
            )),
            _ => None,
        }
    }
}

/// The reorder window for in-order outputs fetched by several workers:
/// 16 MiB. Room for two pieces per source with four sources (pieces shrink
/// to fit), so that no source waits for the slowest one while the output is
/// keeping up, and well inside the client's 32 MiB memory budget.
pub const WINDOW: u64 = 16 << 20;

/// The reorder window of an in-order output: byte `offset` of the content
/// lives at `offset % capacity`. The range plan keeps every claimed byte not
/// yet written out within one capacity of the write position, so they never
/// overlap.
pub struct Ring {
    buf: Vec<u8>,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            buf: vec![0; capacity.max(1)],
        }
    }

    pub fn put(&mut self, offset: u64, mut bytes: &[u8]) {
        let cap = self.buf.len();
        let mut pos = (offset % cap as u64) as usize;
        while !bytes.is_empty() {
            let n = bytes.len().min(cap - pos);
            self.buf[pos..pos + n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            pos = 0;
        }
    }

    pub fn take(&self, offset: u64, mut len: usize, out: &mut Vec<u8>) {
        let cap = self.buf.len();
        let mut pos = (offset % cap as u64) as usize;
        while len > 0 {
            let n = len.min(cap - pos);
            out.extend_from_slice(&self.buf[pos..pos + n]);
            len -= n;
            pos = 0;
        }
    }
}

/// How the workers of a fetch hand their verified bytes to the output.
pub enum Delivery<'o> {
    /// The part of a save ([`Output::positioned`]), written at offsets by
    /// any worker.
    At(&'o Part),
    /// An in-order output fed by one worker, whose ranges come in order:
    /// straight out, without a copy.
    Straight(Mutex<&'o mut Output>),
    /// An in-order output fed by several workers: their bytes go into a
    /// [`Ring`] under the plan's lock, and the fetch's own thread writes
    /// the claimed prefix out in order.
    Window,
}

impl Delivery<'_> {
    /// Writes claimed bytes at `offset` out, outside the plan's lock. (The
    /// window is filled under the lock instead.)
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), SinkError> {
        refuse_when_stopped()?;
        match self {
            Delivery::At(part) => part.write_at(bytes, offset).map_err(SinkError::Io),
            Delivery::Straight(out) => out
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_chunk(bytes),
            Delivery::Window => Ok(()),
        }
    }
}

/// No byte goes out after Ctrl-C stopped the `get` at the prompt
/// ([`crate::interrupt`]): the fetch ends at the next chunk.
fn refuse_when_stopped() -> Result<(), SinkError> {
    if crate::interrupt::stopped() {
        return Err(SinkError::Io(io::Error::other("stopped (Ctrl-C)")));
    }
    Ok(())
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
    /// A progress bar may be drawn (stdout is not a terminal, no `-q`).
    progress: bool,
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
/// line (`found on ...`) does not start at its end. The newline goes where
/// the status line goes, stderr, when that is a terminal: the text may have
/// gone to the terminal through another file than stdout (`-o /dev/tty`),
/// and stdout may be a file then. With stderr elsewhere, the line is left
/// for the text's own sink to end when it is dropped.
pub fn end_terminal_line() {
    if io::stderr().is_terminal() && MID_LINE.swap(false, Ordering::Relaxed) {
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(b"\n");
        let _ = stderr.flush();
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
    part: Part,
    path: PathBuf,
    /// The regular file this save replaces, if any.
    existing: Option<Existing>,
    progress: bool,
    /// Bytes written in order by [`Output::write_chunk`].
    written: u64,
}

impl FileSink {
    fn create(
        path: PathBuf,
        existing: Option<Existing>,
        progress: bool,
        fresh: bool,
    ) -> anyhow::Result<FileSink> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let cannot = || format!("cannot create a file in {}", dir.display());
        if !std::fs::metadata(dir).with_context(cannot)?.is_dir() {
            anyhow::bail!("{}: not a directory", cannot());
        }
        // open(2) applies the umask to a new part: it is born 0666 & !umask
        // (0600 when it replaces a file, whose mode it takes on commit).
        let part = Part::open(&path, existing.is_some(), fresh)?;
        Ok(FileSink {
            part,
            path,
            existing,
            progress,
            written: 0,
        })
    }

    /// The part, for [`crate::fetch`]: what it keeps, and its check.
    pub fn part(&self) -> &Part {
        &self.part
    }

    fn commit(self) -> anyhow::Result<()> {
        let path = self.path;
        let file = self.part.file();
        if let Some(old) = self.existing {
            // Best effort: only root may give a file to another user, and a
            // save by anyone else is theirs, as with any rename-based save.
            let _ = std::os::unix::fs::fchown(file, Some(old.uid), Some(old.gid));
            file.set_permissions(Permissions::from_mode(old.mode))
                .with_context(|| format!("cannot keep the mode of {}", path.display()))?;
        }
        file.sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.part
            .persist(&path)
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

/// A character or block device, FIFO or socket, written in place: opened
/// without O_CREAT or O_TRUNC, so `/dev/null` stays the null device and a
/// FIFO's reader gets the bytes.
pub struct StreamSink {
    file: File,
    path: PathBuf,
    kind: StreamKind,
    /// Bytes already handed to it, which it cannot give back.
    written: u64,
    progress: bool,
}

impl StreamSink {
    /// Opening a FIFO waits for a reader, as a shell's `> fifo` does.
    fn open(path: PathBuf, kind: StreamKind, progress: bool) -> anyhow::Result<StreamSink> {
        let label = format!("{} ({})", path.display(), kind.describe());
        // O_NOCTTY: writing to a terminal device must not make it ours.
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .with_context(|| format!("cannot open {label}"))?;
        // The path was looked at before it was opened. Had it become a
        // regular file meanwhile, writing in place would leave its old bytes
        // past the end of ours.
        let now = file
            .metadata()
            .with_context(|| format!("cannot open {label}"))?;
        if now.is_file() || now.is_dir() {
            anyhow::bail!("cannot save to {label}: it was replaced while being opened");
        }
        Ok(StreamSink {
            file,
            path,
            kind,
            written: 0,
            progress,
        })
    }

    /// Counts write by write, so that a failure can say exactly how many
    /// bytes went out.
    fn write_chunk(&mut self, mut chunk: &[u8]) -> io::Result<()> {
        while !chunk.is_empty() {
            match self.file.write(chunk) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n as u64;
                    chunk = &chunk[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Only a block device holds what it was given in a cache worth syncing;
    /// fsync on a character device or FIFO fails or means nothing.
    fn commit(self) -> anyhow::Result<()> {
        if self.kind == StreamKind::BlockDevice {
            self.file
                .sync_all()
                .with_context(|| format!("cannot write {}", self.label()))?;
        }
        Ok(())
    }

    /// "/tmp/x (a FIFO)".
    fn label(&self) -> String {
        format!("{} ({})", self.path.display(), self.kind.describe())
    }
}

/// Keeps the parts of saves in progress for the next run, and says what
/// each kept; for an interrupt handler, right before the process exits.
pub fn keep_partial_files() -> Vec<String> {
    crate::part::keep_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_wraps_and_gives_back_what_it_got() {
        let mut ring = Ring::new(10);
        ring.put(8, b"abcd");
        let mut out = Vec::new();
        ring.take(8, 4, &mut out);
        assert_eq!(out, b"abcd");
        ring.put(12, b"efghijkl");
        out.clear();
        ring.take(10, 10, &mut out);
        assert_eq!(out, b"cdefghijkl");
    }

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
        let mut out = Output::file(&path, "out.bin", false).unwrap();
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
        let mut out = Output::file(&path, "out.bin", false).unwrap();
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
            progress: false,
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
            progress: false,
        };
        assert!(matches!(sink.write_chunk(&[0xff]), Err(SinkError::NotText)));
    }

    #[test]
    fn a_missing_directory_is_one_plain_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such");
        let Err(e) = Output::file(&missing.join("x.bin"), "x.bin", false) else {
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
    }

    #[test]
    fn positioned_writes_land_at_their_offsets_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let out = Output::file(&path, "out.bin", false).unwrap();
        let part = out.positioned().unwrap();
        part.write_at(b"world", 6).unwrap();
        part.write_at(b"hello ", 0).unwrap();
        assert!(!path.exists());
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert!(Output::stdout().unwrap().positioned().is_none());
    }

    #[test]
    fn an_interrupted_file_keeps_its_verified_part_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.bin");
        let out = Output::file(&path, "k.bin", false).unwrap();
        let size = 3 * proto::content::CHUNK_GROUP;
        let hash = proto::ContentHash::of(b"k");
        let part = out.positioned().unwrap();
        part.begin(Some((hash, size)), "k.bin").unwrap();
        part.write_at(&[1; 1 << 16], 0).unwrap();
        assert_eq!(
            out.abandoned_line("k.bin").unwrap(),
            "interrupted at 64 KiB of 192 KiB; run the same command to resume"
        );
        drop(out);
        assert!(!path.exists());
        let (part, rec) = crate::part::paths(&path).unwrap();
        assert_eq!(std::fs::metadata(part).unwrap().len(), 1 << 16);
        let _ = size;
        assert!(rec.exists());
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_file_gets_0666_less_the_umask_as_with_file_create() {
        let dir = tempfile::tempdir().unwrap();
        // std's File::create asks for 0666 and lets the umask cut it: the
        // reference, without touching the process-wide umask here.
        let reference = dir.path().join("reference");
        File::create(&reference).unwrap();
        let path = dir.path().join("out.bin");
        let mut out = Output::file(&path, "out.bin", false).unwrap();
        out.write_chunk(b"abc").unwrap();
        out.commit().unwrap();
        assert_eq!(mode(&path), mode(&reference));
        if mode(&reference) != 0o600 {
            assert_ne!(mode(&path), 0o600, "the temporary file's mode leaked");
        }
    }

    #[test]
    fn a_replaced_file_keeps_its_permission_bits() {
        let dir = tempfile::tempdir().unwrap();
        for want in [0o600, 0o755, 0o640] {
            let path = dir.path().join("old.bin");
            std::fs::write(&path, b"old content").unwrap();
            std::fs::set_permissions(&path, Permissions::from_mode(want)).unwrap();
            let mut out = Output::file(&path, "old.bin", false).unwrap();
            out.write_chunk(b"new").unwrap();
            out.commit().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
            assert_eq!(mode(&path), want);
        }
    }

    #[test]
    fn a_directory_gets_the_file_under_its_base_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Output::file(dir.path(), "docs/a.txt", false).unwrap();
        out.write_chunk(b"abc").unwrap();
        assert_eq!(
            out.done_line("docs/a.txt", 3).unwrap(),
            format!(
                "saved docs/a.txt to {} (3 bytes)",
                dir.path().join("a.txt").display()
            )
        );
        out.commit().unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"abc");
    }

    #[test]
    fn dev_null_is_written_in_place_and_stays_a_device() {
        use std::os::unix::fs::FileTypeExt;
        let mut out = Output::file(Path::new("/dev/null"), "x", false).unwrap();
        assert!(matches!(out, Output::Stream(_)));
        out.write_chunk(b"abc").unwrap();
        assert_eq!(
            out.abandoned_line("x").unwrap(),
            "/dev/null (a character device) got only the first 3 bytes of x; \
             they cannot be taken back"
        );
        out.commit().unwrap();
        let meta = std::fs::symlink_metadata("/dev/null").unwrap();
        assert!(meta.file_type().is_char_device());
    }
}
