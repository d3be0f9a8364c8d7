//! An encoded range onto a socket without the file's bytes passing through
//! this process.
//!
//! On Linux the pieces are gathered in a pipe ([`Gather`]): each hash pair
//! is written into it and each chunk group spliced into it from the page
//! cache (page references, no copy), and the pipe is spliced onto the
//! socket whenever it is full (1 MiB) and at the end. The socket thus takes
//! one send per megabyte instead of two sends per 64 KiB group: a sendfile
//! per group cost the node twice the CPU of the whole unverified transfer,
//! most of it in TCP's transmit path run once per call. Into the pipe, a
//! run of pairs goes with one write and a run of adjacent groups (two
//! siblings) with one splice: about one call per group instead of two,
//! which cut the node's CPU by a quarter (docs/BENCHMARKS.md, `speed`). Without a pipe, each
//! group is sendfile'd and each pair written. The socket is corked for the
//! whole range either way, so a 64-byte pair never leaves as a tiny packet
//! of its own.

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;

use crate::secure::transport::BATCH;
use proto::content::{PAIR_LEN, RangeSink};

/// Sends the pieces of an encoded range to `stream`, groups from `file`.
/// [`SocketSink::finish`] sends what is still gathered.
pub(crate) struct SocketSink<'a> {
    stream: &'a TcpStream,
    file: &'a File,
    gather: Option<Gather>,
    /// Hash pairs not yet in the pipe: a run of pairs goes in with one
    /// write.
    pairs: Vec<u8>,
    /// File bytes not yet in the pipe, `(offset, len)`: sibling groups lie
    /// side by side in the file and go in with one splice.
    groups: Option<(u64, usize)>,
}

impl<'a> SocketSink<'a> {
    pub(crate) fn new(stream: &'a TcpStream, file: &'a File) -> SocketSink<'a> {
        SocketSink {
            stream,
            file,
            // Without a pipe (out of descriptors), each piece goes on its own.
            gather: Gather::new().ok(),
            pairs: Vec::with_capacity(PAIRS_HELD),
            groups: None,
        }
    }

    /// Puts the pairs held back into the pipe.
    fn put_pairs(&mut self) -> io::Result<()> {
        if let Some(gather) = &mut self.gather
            && !self.pairs.is_empty()
        {
            gather.write(self.stream, &self.pairs)?;
        }
        self.pairs.clear();
        Ok(())
    }

    /// Puts the file bytes held back into the pipe.
    fn put_groups(&mut self) -> io::Result<()> {
        if let (Some(gather), Some((offset, len))) = (&mut self.gather, self.groups.take()) {
            gather.splice_from(self.stream, self.file, offset, len)?;
        }
        Ok(())
    }

    /// Sends everything gathered so far.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.put_pairs()?;
        self.put_groups()?;
        match &mut self.gather {
            Some(gather) => gather.drain(self.stream),
            None => Ok(()),
        }
    }
}

/// Bytes of hash pairs held back at most before they go into the pipe. A
/// run of pairs is at most the tree's depth (about 30 for a terabyte).
const PAIRS_HELD: usize = 64 * PAIR_LEN;

impl RangeSink for SocketSink<'_> {
    /// Pieces of one kind are held back until the other kind comes (the
    /// order on the wire stays the walk's): a run of pairs becomes one write
    /// into the pipe, and a run of adjacent groups one splice, about one
    /// system call per group instead of two.
    fn pair(&mut self, pair: &[u8; PAIR_LEN]) -> io::Result<()> {
        if self.gather.is_none() {
            let mut stream = self.stream;
            return stream.write_all(pair);
        }
        self.put_groups()?;
        if self.pairs.len() + PAIR_LEN > PAIRS_HELD {
            self.put_pairs()?;
        }
        self.pairs.extend_from_slice(pair);
        Ok(())
    }

    fn group(&mut self, offset: u64, len: usize) -> io::Result<()> {
        if self.gather.is_none() {
            return send_file_at(self.file, self.stream, offset, len);
        }
        self.put_pairs()?;
        match &mut self.groups {
            Some((at, held)) if *at + *held as u64 == offset && *held + len <= GROUPS_HELD => {
                *held += len;
            }
            _ => {
                self.put_groups()?;
                self.groups = Some((offset, len));
            }
        }
        Ok(())
    }
}

/// File bytes held back at most before they go into the pipe: a run of
/// groups is two siblings in the walk's order, so more would not be held.
const GROUPS_HELD: usize = 1024 * 1024;

/// A pipe holding the pieces of a range on their way to the socket.
#[cfg(target_os = "linux")]
struct Gather {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
    /// Bytes in the pipe.
    held: usize,
}

/// The pipe's size: sends of up to this much. 1 MiB is the most an
/// unprivileged process may ask for by default (/proc/sys/fs/pipe-max-size);
/// a refusal leaves the default of 64 KiB, which still works.
#[cfg(target_os = "linux")]
const PIPE_SIZE: libc::c_int = 1024 * 1024;

#[cfg(target_os = "linux")]
impl Gather {
    fn new() -> io::Result<Gather> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let mut fds = [0 as libc::c_int; 2];
        // Non-blocking: a full pipe answers EAGAIN (then it is drained)
        // instead of blocking the only thread that could drain it.
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; a refusal keeps the default size.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        Ok(Gather {
            read,
            write,
            held: 0,
        })
    }

    /// Puts `bytes` (a hash pair) into the pipe, draining it when full.
    fn write(&mut self, stream: &TcpStream, bytes: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut done = 0;
        while done < bytes.len() {
            let rest = &bytes[done..];
            // SAFETY: writes from a slice valid for its length.
            let n =
                unsafe { libc::write(self.write.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n == 0 {
                // Not what a pipe does; better an error than a spin.
                return Err(io::ErrorKind::WriteZero.into());
            }
            if n > 0 {
                done += n as usize;
                self.held += n as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => self.drain(stream)?,
                _ => return Err(e),
            }
        }
        Ok(())
    }

    /// Splices `len` bytes of `file` from `offset` into the pipe, draining
    /// it whenever it is full. A file that ends first shrank since it was
    /// hashed: an error, so the receiver does not wait for bytes that will
    /// not come.
    fn splice_from(
        &mut self,
        stream: &TcpStream,
        file: &File,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut off = libc::loff_t::try_from(offset).map_err(io::Error::other)?;
        let mut left = len;
        while left > 0 {
            // SAFETY: both descriptors stay open for the call; `off` is ours
            // and the kernel advances it instead of the file's position.
            let n = unsafe {
                libc::splice(
                    file.as_raw_fd(),
                    &mut off,
                    self.write.as_raw_fd(),
                    std::ptr::null_mut(),
                    left,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            };
            match n {
                0 => return Err(shrank(offset + (len - left) as u64)),
                n if n > 0 => {
                    left -= n as usize;
                    self.held += n as usize;
                }
                _ => {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EINTR) => {}
                        Some(libc::EAGAIN) => self.drain(stream)?,
                        // A file that cannot be spliced (some special file
                        // systems): what is gathered first, then the rest
                        // through a buffer.
                        Some(libc::EINVAL | libc::ENOSYS) => {
                            self.drain(stream)?;
                            return copy_at(file, stream, off as u64, left);
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }

    /// Splices everything in the pipe onto the socket. The socket's write
    /// timeout bounds each wait for room.
    fn drain(&mut self, stream: &TcpStream) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        while self.held > 0 {
            // SAFETY: both descriptors stay open for the call; pipes take no
            // offsets.
            let n = unsafe {
                libc::splice(
                    self.read.as_raw_fd(),
                    std::ptr::null_mut(),
                    stream.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.held,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE,
                )
            };
            match n {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n if n > 0 => self.held -= n as usize,
                _ => {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EINTR) => {}
                        // The socket's send timeout passed with no room.
                        Some(libc::EAGAIN) => return Err(io::ErrorKind::TimedOut.into()),
                        _ => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
}

/// Elsewhere there is no pipe to gather in: each piece goes on its own.
#[cfg(not(target_os = "linux"))]
struct Gather;

#[cfg(not(target_os = "linux"))]
impl Gather {
    fn new() -> io::Result<Gather> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn write(&mut self, _: &TcpStream, _: &[u8]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn splice_from(&mut self, _: &TcpStream, _: &File, _: u64, _: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn drain(&mut self, _: &TcpStream) -> io::Result<()> {
        Ok(())
    }
}

/// Sends the pieces of an encoded range through a writer that cannot take
/// sendfile (an encrypted stream): everything is gathered into [`BATCH`]
/// bytes before a write, so a 64-byte pair does not become a message of its
/// own, and each group is read from `file` straight into the batch (no
/// buffer between the page cache and the cipher). The caller flushes.
pub(crate) struct CopySink<'a, W: Write> {
    out: W,
    file: &'a File,
    /// `batch[..held]` waits to be written.
    batch: Vec<u8>,
    held: usize,
}

impl<'a, W: Write> CopySink<'a, W> {
    pub(crate) fn new(out: W, file: &'a File) -> CopySink<'a, W> {
        CopySink {
            out,
            file,
            batch: vec![0; BATCH],
            held: 0,
        }
    }

    /// Writes the batch out if it is full.
    fn make_room(&mut self) -> io::Result<()> {
        if self.held == self.batch.len() {
            self.out.write_all(&self.batch)?;
            self.held = 0;
        }
        Ok(())
    }
}

impl<W: Write> Write for CopySink<'_, W> {
    /// Gathers `buf` (the range header, a pair).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.make_room()?;
        let n = buf.len().min(self.batch.len() - self.held);
        self.batch[self.held..self.held + n].copy_from_slice(&buf[..n]);
        self.held += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.held > 0 {
            self.out.write_all(&self.batch[..self.held])?;
            self.held = 0;
        }
        self.out.flush()
    }
}

impl<W: Write> RangeSink for CopySink<'_, W> {
    fn pair(&mut self, pair: &[u8; PAIR_LEN]) -> io::Result<()> {
        self.write_all(pair)
    }

    /// Reads the group's bytes into the batch's free end, writing the batch
    /// out whenever it fills.
    fn group(&mut self, offset: u64, len: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut done = 0usize;
        while done < len {
            self.make_room()?;
            let want = (len - done).min(self.batch.len() - self.held);
            let free = &mut self.batch[self.held..self.held + want];
            match self.file.read_at(free, offset + done as u64) {
                Ok(0) => return Err(shrank(offset + done as u64)),
                Ok(n) => {
                    self.held += n;
                    done += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Holds back partial segments until [`Cork::drop`] (Linux TCP_CORK); a
/// no-op elsewhere.
pub(crate) struct Cork<'a>(&'a TcpStream);

impl<'a> Cork<'a> {
    pub(crate) fn new(stream: &'a TcpStream) -> Cork<'a> {
        set_cork(stream, true);
        Cork(stream)
    }
}

impl Drop for Cork<'_> {
    /// Uncorking sends what is held back at once.
    fn drop(&mut self) {
        set_cork(self.0, false);
    }
}

#[cfg(target_os = "linux")]
fn set_cork(stream: &TcpStream, on: bool) {
    use std::os::fd::AsRawFd;
    let value: libc::c_int = on.into();
    // SAFETY: setsockopt reads an int from a pointer valid for the call; a
    // failure only loses the coalescing, so it is ignored.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn set_cork(_stream: &TcpStream, _on: bool) {}

/// Sends exactly `len` bytes of `file` from `offset` (the file's own position
/// is left alone). A file that ends first is an error: it shrank since it
/// was hashed, and the receiver must not wait for bytes that will not come.
#[cfg(target_os = "linux")]
fn send_file_at(file: &File, stream: &TcpStream, offset: u64, len: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut off = libc::off_t::try_from(offset).map_err(io::Error::other)?;
    let mut left = len;
    while left > 0 {
        // SAFETY: both descriptors stay open for the call; `off` is ours and
        // the kernel advances it instead of the file's position.
        let n = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut off, left) };
        match n {
            0 => return Err(shrank(offset + (len - left) as u64)),
            n if n > 0 => left -= n as usize,
            _ => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EINVAL | libc::ENOSYS) => {
                        return copy_at(file, stream, off as u64, left);
                    }
                    _ => return Err(e),
                }
            }
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn send_file_at(file: &File, stream: &TcpStream, offset: u64, len: usize) -> io::Result<()> {
    copy_at(file, stream, offset, len)
}

/// The fallback for files sendfile refuses (and the way onto an encrypted
/// stream): through a buffer, with pread.
fn copy_at(file: &File, mut stream: impl Write, offset: u64, len: usize) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len.min(64 * 1024)];
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(buf.len());
        let n = file.read_at(&mut buf[..want], offset + done as u64)?;
        if n == 0 {
            return Err(shrank(offset + done as u64));
        }
        stream.write_all(&buf[..n])?;
        done += n;
    }
    Ok(())
}

fn shrank(at: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file ended at byte {at}: it shrank while it was sent"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::content::{ByteRange, CHUNK_GROUP, encode_range, encode_to_vec, outboard_to_vec};
    use std::io::Read;
    use std::net::TcpListener;

    /// An anonymous file (unlinked at once) holding `content`.
    fn file_with(content: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        file
    }

    /// What a sink made by `sink` puts on a socket for `range` of `data`.
    fn sent(data: &[u8], range: ByteRange, copy: bool) -> Vec<u8> {
        let file = file_with(data);
        let (_, outboard) = outboard_to_vec(data);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            TcpStream::connect(addr)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            got
        });
        let (stream, _) = listener.accept().unwrap();
        let size = data.len() as u64;
        if copy {
            let mut sink = CopySink::new(&stream, &file);
            encode_range(size, range, &outboard[..], &mut sink).unwrap();
            sink.flush().unwrap();
        } else {
            let _cork = Cork::new(&stream);
            let mut sink = SocketSink::new(&stream, &file);
            encode_range(size, range, &outboard[..], &mut sink).unwrap();
            sink.finish().unwrap();
        }
        drop(stream);
        reader.join().unwrap()
    }

    #[test]
    fn gathered_pieces_are_the_encoded_range_byte_for_byte() {
        let group = CHUNK_GROUP as usize;
        let data: Vec<u8> = (0..(40 * group + 777) as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        for (offset, len) in [
            (0, u64::MAX),
            (0, 1),
            (3 * CHUNK_GROUP + 5, 17 * CHUNK_GROUP),
            (39 * CHUNK_GROUP, u64::MAX),
            (data.len() as u64 - 1, 1),
        ] {
            let (_, range, want) = encode_to_vec(&data, offset, len).unwrap();
            for copy in [false, true] {
                let got = sent(&data, range, copy);
                assert!(got == want, "bytes {offset}+{len}, copied: {copy}");
            }
        }
    }

    #[test]
    fn a_file_that_shrank_is_an_error_not_a_short_range() {
        let data = vec![5u8; 4 * CHUNK_GROUP as usize];
        let (_, outboard) = outboard_to_vec(&data);
        let file = file_with(&data[..CHUNK_GROUP as usize]);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let _ = TcpStream::connect(addr)
                .unwrap()
                .read_to_end(&mut Vec::new());
        });
        let (stream, _) = listener.accept().unwrap();
        let range = ByteRange {
            offset: 0,
            len: data.len() as u64,
        };
        let mut sink = CopySink::new(&stream, &file);
        let err = encode_range(data.len() as u64, range, &outboard[..], &mut sink).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut sink = SocketSink::new(&stream, &file);
        let err = encode_range(data.len() as u64, range, &outboard[..], &mut sink)
            .and_then(|()| sink.finish())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(stream);
        reader.join().unwrap();
    }
}
