//! The byte stream under every exchange: a socket in the clear, or the same
//! socket inside a Noise session ([`crate::secure`]). The server's `Reply`
//! and the client's `Connection` hold a [`Stream`]; the code that reads and
//! writes frames neither knows nor cares which one it is.
//!
//! The one place where the difference shows is a file body: a plain stream
//! sends it with sendfile(2), straight from the page cache; an encrypted
//! one must read, encrypt and write it ([`Stream::send_file`]). Code that
//! sends bodies of its own (ranges with proofs) does the same:
//! `if let Some(tcp) = stream.as_plain() { sendfile } else { copy through stream }`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::secure::transport::{SecureReader, SecureWriter};
use crate::secure::{NodeKey, SecureStream};

/// A socket whose reads may be bounded by a deadline: a peer sending one
/// byte at a time cannot hold a server's thread past it.
pub struct Socket {
    tcp: TcpStream,
    /// The deadline, and the longest a single read may wait anyway.
    deadline: Option<(Instant, Duration)>,
}

impl Socket {
    pub fn new(tcp: TcpStream) -> Socket {
        Socket {
            tcp,
            deadline: None,
        }
    }

    /// Reads fail with a timeout once `deadline` has passed, and each waits
    /// at most `io_timeout`.
    pub fn set_deadline(&mut self, deadline: Instant, io_timeout: Duration) {
        self.deadline = Some((deadline, io_timeout));
    }

    /// Back to the socket's own read timeout, `io_timeout`.
    pub fn clear_deadline(&mut self, io_timeout: Duration) {
        if self.deadline.take().is_some() {
            let _ = self.tcp.set_read_timeout(Some(io_timeout));
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn into_tcp(self) -> TcpStream {
        self.tcp
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((deadline, io_timeout)) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.tcp.set_read_timeout(Some(left.min(io_timeout)))?;
        }
        self.tcp.read(buf)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One connection's bytes: plain, or encrypted.
pub enum Stream {
    Plain(Socket),
    Secure(Box<SecureStream<Socket>>),
}

impl Stream {
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream::Plain(Socket::new(tcp))
    }

    fn socket(&self) -> &Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Secure(s) => s.get_ref(),
        }
    }

    fn socket_mut(&mut self) -> &mut Socket {
        match self {
            Stream::Plain(s) => s,
            Stream::Secure(s) => s.get_mut(),
        }
    }

    /// The TCP socket underneath (for timeouts, peeking, shutdown).
    pub fn tcp(&self) -> &TcpStream {
        self.socket().tcp()
    }

    /// The socket, when the stream is plain: where sendfile may write.
    pub fn as_plain(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s.tcp()),
            Stream::Secure(_) => None,
        }
    }

    /// Lets an encrypted stream read ahead of the next message (see
    /// [`SecureStream::read_ahead`]): for a body that ends the exchange.
    pub fn read_ahead(&mut self) {
        if let Stream::Secure(s) = self {
            s.read_ahead();
        }
    }

    pub fn is_secure(&self) -> bool {
        matches!(self, Stream::Secure(_))
    }

    /// The peer's static key, when a handshake proved one.
    pub fn remote_key(&self) -> Option<NodeKey> {
        match self {
            Stream::Plain(_) => None,
            Stream::Secure(s) => s.remote_key(),
        }
    }

    pub fn set_deadline(&mut self, deadline: Instant, io_timeout: Duration) {
        self.socket_mut().set_deadline(deadline, io_timeout);
    }

    pub fn clear_deadline(&mut self, io_timeout: Duration) {
        self.socket_mut().clear_deadline(io_timeout);
    }

    /// The socket itself, leaving any session behind: what a relayed
    /// circuit carries from here on is no longer this stream's.
    pub fn into_tcp(self) -> TcpStream {
        match self {
            Stream::Plain(s) => s.into_tcp(),
            Stream::Secure(s) => s.into_inner().into_tcp(),
        }
    }

    /// The bytes writing `data` would put on the wire next, without writing
    /// them (see [`SecureStream::seal_next`]); in the clear, `data` itself.
    pub fn seal_next(&self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Stream::Plain(_) => Ok(data.to_vec()),
            Stream::Secure(s) => s.seal_next(data),
        }
    }

    /// A reader and a writer for two threads (a control connection: one
    /// reads the node's keepalives, others write circuit requests). This
    /// stream is left a plain handle on the socket, good for closing only.
    pub fn split(&mut self) -> io::Result<(StreamReader, StreamWriter)> {
        let tcp = self.tcp().try_clone()?;
        let writer_tcp = self.tcp().try_clone()?;
        match std::mem::replace(self, Stream::plain(tcp)) {
            Stream::Plain(s) => Ok((StreamReader::Plain(s), StreamWriter::Plain(writer_tcp))),
            Stream::Secure(s) => {
                let (r, w) = s.split(writer_tcp);
                Ok((StreamReader::Secure(r), StreamWriter::Secure(w)))
            }
        }
    }

    /// Sends `len` bytes of `file` from its position: sendfile on a plain
    /// stream, read-encrypt-write on an encrypted one. Returns how many were
    /// sent; fewer only if the file ended first.
    pub fn send_file(&mut self, file: &mut File, len: u64) -> io::Result<u64> {
        match self {
            Stream::Plain(s) => crate::sendfile::send_file(file, &mut s.tcp, len),
            Stream::Secure(s) => s.send_from(file, len),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Secure(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Secure(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Secure(s) => s.flush(),
        }
    }
}

/// The reading half of a split [`Stream`].
pub enum StreamReader {
    Plain(Socket),
    Secure(SecureReader<Socket>),
}

impl StreamReader {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            StreamReader::Plain(s) => s.tcp(),
            StreamReader::Secure(s) => s.get_ref().tcp(),
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StreamReader::Plain(s) => s.read(buf),
            StreamReader::Secure(s) => s.read(buf),
        }
    }
}

/// The writing half of a split [`Stream`].
pub enum StreamWriter {
    Plain(TcpStream),
    Secure(SecureWriter<TcpStream>),
}

impl Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StreamWriter::Plain(s) => s.write(buf),
            StreamWriter::Secure(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            StreamWriter::Plain(s) => s.flush(),
            StreamWriter::Secure(s) => s.flush(),
        }
    }
}
