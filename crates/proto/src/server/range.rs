//! An encoded range onto a socket: the hash pairs are written, each chunk
//! group is sendfile(2)d from the file at its offset, so the file's bytes
//! never pass through this process. The socket is corked for the whole
//! range, so a 64-byte pair leaves in the same segment as the group bytes
//! around it instead of as a tiny packet of its own.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::TcpStream;

use crate::content::{PAIR_LEN, RangeSink};
use crate::secure::transport::BATCH;

/// Sends the pieces of an encoded range to `stream`, groups from `file`.
pub(crate) struct SocketSink<'a> {
    pub(crate) stream: &'a TcpStream,
    pub(crate) file: &'a File,
}

impl RangeSink for SocketSink<'_> {
    fn pair(&mut self, pair: &[u8; PAIR_LEN]) -> io::Result<()> {
        let mut stream = self.stream;
        stream.write_all(pair)
    }

    fn group(&mut self, offset: u64, len: usize) -> io::Result<()> {
        send_file_at(self.file, self.stream, offset, len)
    }
}

/// Sends the pieces of an encoded range through a writer that cannot take
/// sendfile (an encrypted stream): groups are read from `file` and copied,
/// and everything is gathered into [`BATCH`]-byte writes, so a 64-byte pair
/// does not become a message of its own. The caller flushes `out`.
pub(crate) struct CopySink<'a, W: Write> {
    pub(crate) out: BufWriter<W>,
    file: &'a File,
}

impl<'a, W: Write> CopySink<'a, W> {
    pub(crate) fn new(out: W, file: &'a File) -> CopySink<'a, W> {
        CopySink {
            out: BufWriter::with_capacity(BATCH, out),
            file,
        }
    }
}

impl<W: Write> RangeSink for CopySink<'_, W> {
    fn pair(&mut self, pair: &[u8; PAIR_LEN]) -> io::Result<()> {
        self.out.write_all(pair)
    }

    fn group(&mut self, offset: u64, len: usize) -> io::Result<()> {
        copy_at(self.file, &mut self.out, offset, len)
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
