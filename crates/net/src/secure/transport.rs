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
//! The one exception is a body that ends its exchange
//! ([`SecureStream::read_ahead`]): there a read takes whatever the socket
//! holds, up to 16 messages, and hands the caller every whole message that
//! fits its buffer, so a large body costs one system call per several
//! messages instead of two per message.
//!
//! The two directions keep their own nonce and buffers and share only the
//! keys, so a stream splits ([`SecureStream::split`]) into a reader and a
//! writer for two threads: the relay reads a node's keepalives on one while
//! clients' threads write circuit requests on the other.

use std::io::{self, Read, Write};
use std::sync::Arc;

use snow::StatelessTransportState;

use proto::frame::read_full;
use proto::keys::{KeyKind, NodeKey};

/// Most bytes of data in one transport message: Noise's 65 535 less the tag.
pub const MAX_PAYLOAD: usize = MAX_MESSAGE - TAG_LEN;
/// Largest transport message (Noise's limit), without the length prefix.
pub const MAX_MESSAGE: usize = 65_535;
/// The AEAD tag at the end of every message.
pub const TAG_LEN: usize = 16;
/// Data encrypted before one write to the socket: 4 messages. Fewer, larger
/// writes are most of what keeps an encrypted transfer near a plain one.
pub const BATCH: usize = 4 * MAX_PAYLOAD;

/// The session's keys, shared by both directions.
type Keys = Arc<StatelessTransportState>;

/// A Noise session over `S`, after the handshake.
pub struct SecureStream<S> {
    inner: S,
    keys: Keys,
    rx: Rx,
    tx: Tx,
    /// The peer's static key, as its handshake proved it.
    remote: Option<NodeKey>,
}

/// The reading half of a split stream.
pub struct SecureReader<S> {
    inner: S,
    keys: Keys,
    rx: Rx,
}

/// The writing half of a split stream.
pub struct SecureWriter<S> {
    inner: S,
    keys: Keys,
    tx: Tx,
}

impl<S> SecureStream<S> {
    pub(crate) fn new(inner: S, keys: StatelessTransportState) -> SecureStream<S> {
        SecureStream {
            inner,
            keys: Arc::new(keys),
            rx: Rx::default(),
            tx: Tx::default(),
            remote: None,
        }
    }

    /// The initiator's stream: the responder's confirmation comes before
    /// the first answer (see `handshake`); `kind` names the key in the error
    /// when it does not.
    pub(crate) fn expecting_confirmation(mut self, kind: KeyKind) -> Self {
        self.rx.unconfirmed = Some(kind);
        self
    }

    /// The responder's stream: its confirmation was its first message.
    pub(crate) fn after_confirmation(mut self) -> Self {
        self.tx.nonce = 1;
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
        debug_assert!(
            self.rx.ahead.as_ref().is_none_or(|a| a.pos == a.end),
            "a stream that read ahead is taken apart"
        );
        self.inner
    }

    /// Decrypted bytes received and not read yet.
    pub fn buffered(&self) -> usize {
        self.rx.end - self.rx.pos
    }

    /// From now on, reads may take from the socket more than the next
    /// message (up to 16 messages at a time), so that a large body costs
    /// one system call per several messages instead of two per message.
    /// For a connection whose socket is never handed on
    /// ([`SecureStream::into_inner`] would lose what was read ahead): one
    /// that ends with the body it reads.
    pub fn read_ahead(&mut self) {
        if self.rx.ahead.is_none() {
            self.rx.ahead = Some(Ahead {
                buf: vec![0; AHEAD],
                pos: 0,
                end: 0,
            });
        }
    }

    /// A reader and a writer for two threads: this stream's socket reads,
    /// `writer` (the same socket, cloned) writes.
    pub fn split<W>(self, writer: W) -> (SecureReader<S>, SecureWriter<W>) {
        (
            SecureReader {
                inner: self.inner,
                keys: Arc::clone(&self.keys),
                rx: self.rx,
            },
            SecureWriter {
                inner: writer,
                keys: self.keys,
                tx: self.tx,
            },
        )
    }

    /// The bytes that writing `data` would put on the wire next, without
    /// writing them or moving on: for another thread to send in this
    /// stream's place (the relay's `CircuitReady`, written by the thread
    /// that joins the circuit). Once they are sent, this stream must not
    /// write again.
    pub fn seal_next(&self, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut tx = Tx {
            out: Vec::new(),
            nonce: self.tx.nonce,
        };
        let n = tx.seal(&self.keys, data)?;
        tx.out.truncate(n);
        Ok(tx.out)
    }
}

impl<S: Read> Read for SecureStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rx.read(&mut self.inner, &self.keys, buf)
    }
}

impl<S> SecureReader<S> {
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Read> Read for SecureReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rx.read(&mut self.inner, &self.keys, buf)
    }
}

impl<S: Write> Write for SecureStream<S> {
    /// Encrypts up to [`BATCH`] bytes of `buf` and writes them before
    /// returning: nothing is kept back, so no flush is ever needed.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.write(&mut self.inner, &self.keys, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<S: Write> Write for SecureWriter<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.write(&mut self.inner, &self.keys, buf)
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

/// The receiving direction: its nonce and buffers.
#[derive(Default)]
struct Rx {
    nonce: u64,
    /// Decrypted data not yet read: `plain[pos..end]`.
    plain: Vec<u8>,
    pos: usize,
    end: usize,
    /// One ciphertext message as read from the socket.
    cipher: Vec<u8>,
    /// On the initiator's side, until the responder's confirmation is read.
    unconfirmed: Option<KeyKind>,
    /// Ciphertext read ahead of the messages taken (see
    /// [`SecureStream::read_ahead`]): `ahead.buf[pos..end]`.
    ahead: Option<Ahead>,
    /// An error met after a read had data for its caller: the next read's.
    failed: Option<io::Error>,
}

/// Bytes read from the socket at a time when reading ahead: 16 messages.
const AHEAD: usize = 16 * (2 + MAX_MESSAGE);

/// The read-ahead buffer of a body's reads.
struct Ahead {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Ahead {
    /// The length of the whole next message (prefix included) if it is
    /// held complete.
    fn complete(&self) -> Option<usize> {
        let held = &self.buf[self.pos..self.end];
        let len = usize::from(u16::from_be_bytes([*held.first()?, *held.get(1)?]));
        (held.len() >= 2 + len).then_some(2 + len)
    }

    /// Reads once more from `io`, after what is held (moved to the front
    /// first); Ok(0) at the end of the stream.
    fn fill(&mut self, io: &mut impl Read) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        loop {
            match io.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where a message's data is decrypted to.
enum Dest<'a> {
    /// The direction's own buffer.
    Own,
    /// Straight into the caller's buffer, which is large enough.
    Caller(&'a mut [u8]),
}

impl Rx {
    fn read(&mut self, io: &mut impl Read, keys: &Keys, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(kind) = self.unconfirmed {
            self.confirm(io, keys, kind).map_err(io::Error::other)?;
            self.unconfirmed = None;
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        while self.pos == self.end {
            // A caller reading big chunks (a file body) gets the data
            // decrypted in place: one copy less. Reading ahead, it gets
            // every message already read that fits, so one call to read
            // (and one system call) carries several messages.
            if buf.len() >= MAX_PAYLOAD {
                let mut n = match self.next_message(io, keys, Dest::Caller(buf))? {
                    None => return Ok(0),
                    Some(0) => continue,
                    Some(n) => n,
                };
                while buf.len() - n >= MAX_PAYLOAD
                    && self.ahead.as_ref().is_some_and(|a| a.complete().is_some())
                {
                    match self.next_message(io, keys, Dest::Caller(&mut buf[n..])) {
                        Ok(Some(got)) => n += got,
                        Ok(None) => break,
                        // The bytes before it are good: they go first.
                        Err(e) => {
                            self.failed = Some(e);
                            break;
                        }
                    }
                }
                return Ok(n);
            }
            match self.next_message(io, keys, Dest::Own)? {
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

    /// Reads the responder's confirmation (or the refusal sent in its place).
    fn confirm(
        &mut self,
        io: &mut impl Read,
        keys: &Keys,
        kind: KeyKind,
    ) -> Result<(), proto::ProtoError> {
        let msg = super::framing::read_handshake_message(io, TAG_LEN)?;
        let mut payload = [0u8; TAG_LEN];
        match keys.read_message(self.nonce, &msg, &mut payload) {
            Ok(0) => {
                self.nonce += 1;
                Ok(())
            }
            _ => Err(proto::ProtoError::HandshakeFailed(format!(
                "its answer does not decrypt with the {}: it does not hold this network's secret",
                kind.as_str()
            ))),
        }
    }

    /// Reads and decrypts the next message; None at a clean end of stream,
    /// between messages.
    fn next_message(
        &mut self,
        io: &mut impl Read,
        keys: &Keys,
        dest: Dest,
    ) -> io::Result<Option<usize>> {
        let mut ahead = self.ahead.take();
        let got = match &mut ahead {
            Some(ahead) => Self::next_ahead(io, ahead),
            None => self
                .next_cipher(io)
                .map(|got| got.then_some(0..self.cipher.len())),
        };
        let result = match got {
            Ok(Some(at)) => {
                let cipher = match &ahead {
                    Some(ahead) => &ahead.buf[at],
                    None => &self.cipher[at],
                };
                Self::open(&mut self.nonce, &mut self.plain, keys, cipher, dest).map(Some)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.ahead = ahead;
        result
    }

    /// Reads the next message's ciphertext into `cipher`, exactly; false at
    /// a clean end of stream.
    fn next_cipher(&mut self, io: &mut impl Read) -> io::Result<bool> {
        let mut prefix = [0u8; 2];
        match read_full(io, &mut prefix)? {
            0 => return Ok(false),
            2 => {}
            _ => return Err(truncated()),
        }
        let len = check_len(usize::from(u16::from_be_bytes(prefix)))?;
        self.cipher.resize(len, 0);
        if read_full(io, &mut self.cipher)? < len {
            return Err(truncated());
        }
        Ok(true)
    }

    /// The next message's ciphertext in `ahead.buf`, reading as much as
    /// the socket has (up to [`AHEAD`]) until it is whole; None at a clean
    /// end of stream.
    fn next_ahead(
        io: &mut impl Read,
        ahead: &mut Ahead,
    ) -> io::Result<Option<std::ops::Range<usize>>> {
        loop {
            if ahead.end - ahead.pos >= 2 {
                let held = &ahead.buf[ahead.pos..ahead.pos + 2];
                check_len(usize::from(u16::from_be_bytes([held[0], held[1]])))?;
            }
            if let Some(whole) = ahead.complete() {
                let at = ahead.pos + 2..ahead.pos + whole;
                ahead.pos += whole;
                return Ok(Some(at));
            }
            if ahead.fill(io)? == 0 {
                return match ahead.end - ahead.pos {
                    0 => Ok(None),
                    _ => Err(truncated()),
                };
            }
        }
    }

    /// Decrypts one message's ciphertext into the direction's own buffer
    /// or the caller's; returns the bytes of data.
    fn open(
        nonce: &mut u64,
        plain: &mut Vec<u8>,
        keys: &Keys,
        cipher: &[u8],
        dest: Dest,
    ) -> io::Result<usize> {
        let out: &mut [u8] = match dest {
            Dest::Own => {
                plain.resize(MAX_PAYLOAD, 0);
                plain
            }
            Dest::Caller(buf) => buf,
        };
        if *nonce == u64::MAX {
            return Err(invalid("the session is worn out (2^64 messages)".into()));
        }
        let n = keys.read_message(*nonce, cipher, out).map_err(|_| {
            invalid(
                "a transport message does not decrypt: forged, altered, replayed or out of order"
                    .into(),
            )
        })?;
        *nonce += 1;
        Ok(n)
    }
}

/// A message length from the wire, checked: at least the tag.
fn check_len(len: usize) -> io::Result<usize> {
    if len < TAG_LEN {
        return Err(invalid(format!(
            "a transport message of {len} bytes is shorter than its {TAG_LEN}-byte tag"
        )));
    }
    Ok(len)
}

/// The sending direction: its nonce and the buffer messages are built in.
#[derive(Default)]
struct Tx {
    nonce: u64,
    out: Vec<u8>,
}

impl Tx {
    fn write(&mut self, io: &mut impl Write, keys: &Keys, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let take = buf.len().min(BATCH);
        let n = self.seal(keys, &buf[..take])?;
        io.write_all(&self.out[..n])?;
        Ok(take)
    }

    /// Encrypts `data` (at most [`BATCH`] bytes) into `out` as messages;
    /// returns how many bytes of `out` they fill.
    fn seal(&mut self, keys: &Keys, data: &[u8]) -> io::Result<usize> {
        let messages = data.len().div_ceil(MAX_PAYLOAD).max(1);
        self.out.resize(data.len() + messages * (2 + TAG_LEN), 0);
        let mut at = 0;
        for chunk in data.chunks(MAX_PAYLOAD) {
            if self.nonce == u64::MAX {
                return Err(io::Error::other("the session is worn out (2^64 messages)"));
            }
            let body = &mut self.out[at + 2..at + 2 + chunk.len() + TAG_LEN];
            let n = keys
                .write_message(self.nonce, chunk, body)
                .map_err(|e| io::Error::other(format!("cannot encrypt: {e}")))?;
            self.nonce += 1;
            // n <= MAX_MESSAGE, so it fits the prefix.
            self.out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
            at += 2 + n;
        }
        Ok(at)
    }
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
