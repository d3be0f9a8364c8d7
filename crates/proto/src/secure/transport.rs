//! The encrypted stream: a `Read + Write` adapter that turns bytes into
//! Noise transport messages and back, over any `Read + Write` (a socket).
//!
//! On the wire (docs/PROTOCOL.md, "Transport messages"):
//!
//! ```text
//! length u16 BE (2) | ciphertext (length bytes: 0..=65519 bytes of data, then a 16-byte tag)
//! ```
//!
//! Each message is authenticated and numbered (the nonce is its position),
//! so a dropped, reordered, replayed or altered message fails to decrypt and
//! ends the connection. Messages carry up to 65 519 bytes of data, the most
//! Noise allows; a large write is cut into such messages and up to
//! [`BATCH`] bytes of them leave in one system call.
//!
//! Reads take exactly one message from the socket at a time, never a byte
//! past it: a stream that is taken apart ([`SecureStream::into_inner`]) to
//! become a relayed circuit hands over a socket with nothing swallowed.

use std::io::{self, Read, Write};

use snow::TransportState;

use super::keys::{KeyKind, NodeKey};

/// Most bytes of data in one transport message: Noise's 65 535 less the tag.
pub const MAX_PAYLOAD: usize = MAX_MESSAGE - TAG_LEN;
/// Largest transport message (Noise's limit), without the length prefix.
pub const MAX_MESSAGE: usize = 65_535;
/// The AEAD tag at the end of every message.
pub const TAG_LEN: usize = 16;
/// Data encrypted before one write to the socket: 4 messages. Fewer, larger
/// writes are most of what keeps an encrypted transfer near a plain one.
pub const BATCH: usize = 4 * MAX_PAYLOAD;

/// A Noise session over `S`, after the handshake.
pub struct SecureStream<S> {
    inner: S,
    noise: TransportState,
    /// Decrypted data not yet read: `plain[pos..end]`.
    plain: Vec<u8>,
    pos: usize,
    end: usize,
    /// One ciphertext message as read from the socket.
    cipher: Vec<u8>,
    /// Encrypted messages waiting to be written together.
    out: Vec<u8>,
    /// The peer's static key, as its handshake proved it.
    remote: Option<NodeKey>,
    /// On the initiator's side, until the responder's confirmation is read:
    /// the key the handshake used, for the error if it does not come.
    unconfirmed: Option<KeyKind>,
}

impl<S> SecureStream<S> {
    pub(crate) fn new(inner: S, noise: TransportState) -> SecureStream<S> {
        SecureStream {
            inner,
            noise,
            plain: Vec::new(),
            pos: 0,
            end: 0,
            cipher: Vec::new(),
            out: Vec::new(),
            remote: None,
            unconfirmed: None,
        }
    }

    /// The initiator's stream: the confirmation comes before the first
    /// answer (see `handshake`).
    pub(crate) fn expecting_confirmation(mut self, kind: KeyKind) -> Self {
        self.unconfirmed = Some(kind);
        self
    }

    pub(crate) fn with_remote(mut self, remote: NodeKey) -> Self {
        self.remote = Some(remote);
        self
    }

    /// The static key of the peer, proven by the handshake.
    pub fn remote_key(&self) -> Option<NodeKey> {
        self.remote
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The socket, for a circuit: whatever follows is no longer this session's.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Decrypted bytes received and not read yet.
    pub fn buffered(&self) -> usize {
        self.end - self.pos
    }
}

impl<S: Read> SecureStream<S> {
    /// Reads and decrypts the next message into `dest` (which must hold
    /// [`MAX_PAYLOAD`] bytes, or the message's data); None at a clean end of
    /// stream, between messages.
    fn next_message(&mut self, dest: Dest) -> io::Result<Option<usize>> {
        let mut prefix = [0u8; 2];
        match read_full(&mut self.inner, &mut prefix)? {
            0 => return Ok(None),
            2 => {}
            _ => return Err(truncated()),
        }
        let len = usize::from(u16::from_be_bytes(prefix));
        if len < TAG_LEN {
            return Err(invalid(format!(
                "a transport message of {len} bytes is shorter than its {TAG_LEN}-byte tag"
            )));
        }
        self.cipher.resize(len, 0);
        if read_full(&mut self.inner, &mut self.cipher)? < len {
            return Err(truncated());
        }
        let out: &mut [u8] = match dest {
            Dest::Own => {
                self.plain.resize(MAX_PAYLOAD, 0);
                &mut self.plain
            }
            Dest::Caller(buf) => buf,
        };
        let n = self.noise.read_message(&self.cipher, out).map_err(|_| {
            invalid(
                "a transport message does not decrypt: forged, altered, replayed or out of order"
                    .into(),
            )
        })?;
        Ok(Some(n))
    }
}

/// Where a message's data is decrypted to.
enum Dest<'a> {
    /// The stream's own buffer.
    Own,
    /// Straight into the caller's buffer, which is large enough.
    Caller(&'a mut [u8]),
}

impl<S: Read> Read for SecureStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(kind) = self.unconfirmed {
            super::handshake::read_confirmation(&mut self.inner, &mut self.noise, kind)
                .map_err(io::Error::other)?;
            self.unconfirmed = None;
        }
        while self.pos == self.end {
            // A caller reading big chunks (a file body) gets the data
            // decrypted in place: one copy less.
            if buf.len() >= MAX_PAYLOAD {
                match self.next_message(Dest::Caller(buf))? {
                    None => return Ok(0),
                    Some(0) => continue,
                    Some(n) => return Ok(n),
                }
            }
            match self.next_message(Dest::Own)? {
                None => return Ok(0),
                Some(n) => {
                    self.pos = 0;
                    self.end = n;
                }
            }
        }
        let n = buf.len().min(self.end - self.pos);
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<S: Write> Write for SecureStream<S> {
    /// Encrypts up to [`BATCH`] bytes of `buf` and writes them before
    /// returning: nothing is kept back, so no flush is ever needed.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let take = buf.len().min(BATCH);
        let messages = take.div_ceil(MAX_PAYLOAD);
        self.out.resize(take + messages * (2 + TAG_LEN), 0);
        let mut at = 0;
        for chunk in buf[..take].chunks(MAX_PAYLOAD) {
            let body = &mut self.out[at + 2..at + 2 + chunk.len() + TAG_LEN];
            let n = self
                .noise
                .write_message(chunk, body)
                .map_err(|e| io::Error::other(format!("cannot encrypt: {e}")))?;
            // n <= MAX_MESSAGE, so it fits the prefix.
            self.out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
            at += 2 + n;
        }
        self.inner.write_all(&self.out[..at])?;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<S: Write> SecureStream<S> {
    /// Sends `len` bytes of `src` (a file) from its position: read, encrypt,
    /// write, [`BATCH`] bytes at a time. Returns how many were sent, fewer
    /// only if `src` ended first. What sendfile is for a plain connection.
    pub fn send_from(&mut self, src: &mut impl Read, len: u64) -> io::Result<u64> {
        let mut chunk = vec![0u8; usize::try_from(len).unwrap_or(BATCH).clamp(1, BATCH)];
        let mut sent = 0u64;
        while sent < len {
            let want = chunk
                .len()
                .min(usize::try_from(len - sent).unwrap_or(usize::MAX));
            let got = read_full(src, &mut chunk[..want])?;
            if got == 0 {
                break;
            }
            self.write_all(&chunk[..got])?;
            sent += got as u64;
            if got < want {
                break;
            }
        }
        Ok(sent)
    }
}

/// Fills `buf` unless EOF comes first; returns how many bytes were read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed in the middle of a transport message",
    )
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}
