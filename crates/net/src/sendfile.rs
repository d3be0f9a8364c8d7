//! A file body onto a socket with sendfile(2): the bytes go from the page
//! cache to the socket without passing through this process.
//!
//! `io::copy` from a `File` to a `TcpStream` is documented to do this on
//! Linux, but the std measured here (Rust 1.95) reads and writes 8 KiB at a
//! time instead: 256 syscalls and a copy through userspace per 2 MiB
//! (docs/BENCHMARKS.md). So it is called directly, with `io::copy` as the
//! fallback where sendfile refuses the file and on other systems.

use std::fs::File;
use std::io::{self, Read};
use std::net::TcpStream;

/// Sends up to `len` bytes of `file` from its current position, advancing
/// it; returns how many were sent, fewer than `len` only if the file ended
/// first. The socket's write timeout applies as to any write.
pub fn send_file(file: &mut File, stream: &mut TcpStream, len: u64) -> io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        linux::send_file(file, stream, len)
    }
    #[cfg(not(target_os = "linux"))]
    {
        io::copy(&mut file.take(len), stream)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The most Linux moves in one sendfile call.
    const MAX_CHUNK: u64 = 0x7fff_f000;

    pub(super) fn send_file(file: &mut File, stream: &mut TcpStream, len: u64) -> io::Result<u64> {
        let mut sent = 0u64;
        while sent < len {
            let chunk = (len - sent).min(MAX_CHUNK) as usize;
            // SAFETY: both descriptors stay open for the call; a null offset
            // makes the kernel read from, and advance, the file's position.
            let n = unsafe {
                libc::sendfile(
                    stream.as_raw_fd(),
                    file.as_raw_fd(),
                    std::ptr::null_mut(),
                    chunk,
                )
            };
            match n {
                // End of file: it shrank since it was opened.
                0 => break,
                n if n > 0 => sent += n as u64,
                _ => {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EINTR) => {}
                        // A file sendfile cannot read (some special file
                        // systems): copy the rest through a buffer.
                        Some(libc::EINVAL | libc::ENOSYS) => {
                            return Ok(sent + io::copy(&mut file.take(len - sent), stream)?);
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::net::TcpListener;
    use std::thread;

    /// Sends `len` bytes of `content` from `offset` and returns what arrived.
    fn roundtrip(content: &[u8], offset: u64, len: u64) -> (u64, Vec<u8>) {
        let mut file = tempfile_with(content);
        file.seek(SeekFrom::Start(offset)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            TcpStream::connect(addr)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            got
        });
        let (mut stream, _) = listener.accept().unwrap();
        let sent = send_file(&mut file, &mut stream, len).unwrap();
        drop(stream);
        (sent, reader.join().unwrap())
    }

    /// An anonymous file (unlinked at once) holding `content`.
    fn tempfile_with(content: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        file
    }

    #[test]
    fn sends_exactly_the_bytes_asked_for_from_the_position() {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (sent, got) = roundtrip(&content, 1000, 200_000);
        assert_eq!(sent, 200_000);
        assert_eq!(got, &content[1000..201_000]);
    }

    #[test]
    fn a_file_shorter_than_declared_sends_what_there_is() {
        let (sent, got) = roundtrip(b"short", 0, 100);
        assert_eq!(sent, 5);
        assert_eq!(got, b"short");
    }
}
