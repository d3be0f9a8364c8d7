//! The one server skeleton, shared by relay and node.
//!
//! The [`Server`] owns the accepting: the thread that accepts a connection
//! admits it against the caps (or answers `busy` and closes it), then serves
//! it, with another thread taking its place in accept (`workers`).
//! Everything about one connection happens in `serve_connection`: the
//! request must arrive before a deadline, the [`Handler`] answers through a
//! [`Reply`], and the connection is closed gracefully. Handlers never see
//! sockets, caps or timeouts.

mod admission;
mod descriptors;
mod range;
mod stats;
mod workers;

pub use stats::{Metered, OUTCOMES, RequestCounts, ServerStats, outcome, stats};

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::mpsc::{self, SyncSender};
use std::time::{Duration, Instant};

use admission::Admission;
use workers::Acceptors;

use proto::content::{ByteRange, Outboard, encode_range};
use proto::{ErrorKind, FileHeader, ProtoError, RangeHeader, Request, Response, frame};

use crate::secure::{KeyKind, NodeKey, Security, handshake};
use crate::stream::{Socket, Stream};

/// Limits and timeouts of one server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once; past it a new one is answered `busy`.
    pub max_connections: usize,
    /// Connections served at once from one source IP.
    pub max_per_ip: usize,
    /// Time from accept until the whole request must have arrived.
    pub request_deadline: Duration,
    /// Time any later read or write may wait for the peer.
    pub io_timeout: Duration,
    /// In a private network: the keys a handshake may use, and this
    /// server's static key pair. Plain: no handshake, as before.
    pub security: Security,
}

impl From<&plumbing::flags::ServerArgs> for ServerConfig {
    fn from(args: &plumbing::flags::ServerArgs) -> ServerConfig {
        ServerConfig {
            max_connections: args.max_connections.max(1),
            max_per_ip: args.max_per_ip.max(1),
            request_deadline: args.request_timeout,
            io_timeout: args.io_timeout,
            security: Default::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_per_ip: 256,
            request_deadline: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            security: Security::Plain,
        }
    }
}

/// Answers one request. Implemented by the relay and by the node.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError>;

    /// What this server is, for its log: "relay", "node".
    fn role(&self) -> &'static str {
        "server"
    }
}

/// A shared handler serves too: the node answers connections it accepted
/// and connections it opened to the relay for a circuit with one service.
impl<H: Handler> Handler for std::sync::Arc<H> {
    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        (**self).handle(request, reply)
    }

    fn role(&self) -> &'static str {
        (**self).role()
    }
}

/// The way a handler answers: one response per connection.
pub struct Reply<'a> {
    stream: &'a mut Stream,
    peer: SocketAddr,
    admitted_with: Option<KeyKind>,
    answered: Option<Answered>,
}

/// What a handler answered first, for the programs' metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Anything but the two below: a list, a file, a range, a hello.
    Ok,
    NotFound,
    Error(ErrorKind),
}

impl Reply<'_> {
    /// Who asked: the address the connection came from, as seen here.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// In a private network, the key the peer's handshake used.
    pub fn admitted_with(&self) -> Option<KeyKind> {
        self.admitted_with
    }

    /// In a private network, the peer's static key, proven by its handshake.
    pub fn peer_key(&self) -> Option<NodeKey> {
        self.stream.remote_key()
    }

    /// The connection's stream, plain or encrypted, for an answer that is
    /// more than frames (a body with proofs): sendfile where
    /// [`Stream::as_plain`] gives a socket, else copy through the stream.
    pub fn stream(&mut self) -> &mut Stream {
        self.stream
    }

    pub fn send(&mut self, response: &Response) -> Result<(), ProtoError> {
        self.answered.get_or_insert(match response {
            Response::NotFound => Answered::NotFound,
            Response::Error(e) => Answered::Error(e.kind),
            _ => Answered::Ok,
        });
        frame::write(self.stream, response)
    }

    /// What was answered first, if anything was sent through this reply:
    /// read after the handler returns (a cached list or a file counts as
    /// `Ok`).
    pub fn answered(&self) -> Option<Answered> {
        self.answered
    }

    /// The socket itself, for the few exchanges that outlive one answer
    /// (the relay's control connections and circuits, docs/PROTOCOL.md):
    /// such a handler sets its own timeouts and returns only when it is done
    /// with the connection. The peer must have waited for an answer before
    /// sending more, since bytes read ahead with the request are gone. In a
    /// private network the session's frames go through [`Reply::stream`];
    /// the socket carries raw bytes only once a circuit is joined.
    pub fn tcp(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// The bytes [`Reply::send`] would write next, without writing them: for
    /// another thread to send in this connection's place (a circuit's
    /// `CircuitReady`). Once they are sent, nothing more may be sent here.
    pub fn seal_next(&self, response: &Response) -> Result<Vec<u8>, ProtoError> {
        let frame = frame::encode(response)?;
        Ok(self.stream.seal_next(&frame)?)
    }

    /// Sends a frame encoded earlier with [`frame::encode`] (a cached answer).
    pub fn send_encoded(&mut self, frame: &[u8]) -> Result<(), ProtoError> {
        self.answered.get_or_insert(Answered::Ok);
        self.stream.write_all(frame)?;
        Ok(())
    }

    /// Sends a file header, then the file's bytes from its current position:
    /// in the clear with sendfile on Linux (see `sendfile`), so the bytes
    /// never pass through this process; encrypted, read, encrypt and write
    /// in large messages ([`Stream::send_file`]). Memory stays flat whatever
    /// the size. Returns how many body bytes were sent; fewer than declared
    /// means the file shrank while it was sent.
    pub fn send_file(&mut self, header: FileHeader, file: &mut File) -> Result<u64, ProtoError> {
        self.send(&Response::File(header))?;
        let sent = self.stream.send_file(file, header.body_len())?;
        Ok(sent)
    }

    /// Sends a range header, then the encoded range: hash pairs from
    /// `outboard`, chunk groups spliced from `file` (see `range`);
    /// encrypted, through the stream in full messages instead
    /// ([`range::CopySink`]). Memory stays flat whatever the size.
    pub fn send_range(
        &mut self,
        header: RangeHeader,
        file: &File,
        outboard: &(impl Outboard + ?Sized),
    ) -> Result<(), ProtoError> {
        let range = ByteRange::clamp(header.size, header.offset, header.len)
            .ok_or_else(|| ProtoError::Malformed("range outside the content".into()))?;
        self.answered.get_or_insert(Answered::Ok);
        match self.stream.as_plain() {
            Some(stream) => {
                let _cork = range::Cork::new(stream);
                frame::write(&mut &*stream, &Response::Range(header))?;
                let mut sink = range::SocketSink::new(stream, file);
                encode_range(header.size, range, outboard, &mut sink)?;
                sink.finish()?;
            }
            None => {
                let mut sink = range::CopySink::new(&mut *self.stream, file);
                frame::write(&mut sink, &Response::Range(header))?;
                encode_range(header.size, range, outboard, &mut sink)?;
                sink.flush()?;
            }
        }
        Ok(())
    }
}

/// A bound listener with its limits.
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds `ip:port`, or with no IP all interfaces (see [`bind_addrs`]);
    /// port 0 takes a free port. Returns the server and where it listens.
    /// The error names the address: `could not listen on [::]:7000: address
    /// already in use`.
    pub fn listen(
        ip: Option<std::net::IpAddr>,
        port: u16,
        config: ServerConfig,
    ) -> io::Result<(Server, SocketAddr)> {
        let addrs = bind_addrs(ip, port);
        let listener = TcpListener::bind(&addrs[..]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "could not listen on {}: {}",
                    addrs[0],
                    proto::error::io_reason(&e)
                ),
            )
        })?;
        let local = listener.local_addr()?;
        Ok((Server { listener, config }, local))
    }

    /// Accepts connections until the process ends. Each connection is
    /// admitted and served on the thread that accepted it (see `workers`).
    pub fn serve<H: Handler>(self, handler: H) -> io::Result<()> {
        let config = self.config;
        let admission = Admission::new(config.max_connections, config.max_per_ip);
        let closer = spawn_closer()?;
        ensure_descriptors(config.max_connections);
        let refusals = Mutex::new(Throttle::default());
        let on_accept = move |stream: TcpStream, peer: SocketAddr| match admission
            .admit(peer.ip().to_canonical())
        {
            Ok(permit) => {
                let serving = stats().serving();
                serve_connection(stream, peer, &handler, &config);
                drop((permit, serving));
            }
            Err(why) => {
                stats().note_busy();
                let due = refusals.lock().unwrap_or_else(|p| p.into_inner()).note();
                if let Some(n) = due {
                    tracing::warn!("refused {n} connection(s): {why}");
                }
                refuse_busy(stream, &why, &closer);
            }
        };
        Acceptors::run(self.listener, Box::new(on_accept))
    }
}

/// Serves one connection that this program opened itself (a node's end of
/// a relayed circuit) exactly as an accepted one: same deadline, handler
/// and close. `peer` is who it is for the log. The caller caps how many run.
pub fn serve_stream(
    stream: TcpStream,
    peer: SocketAddr,
    handler: &dyn Handler,
    config: &ServerConfig,
) {
    serve_connection(stream, peer, handler, config);
}

/// Everything about one connection: read the request (after the handshake,
/// in a private network) before the deadline, let the handler answer,
/// close gracefully.
fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    handler: &dyn Handler,
    config: &ServerConfig,
) {
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.io_timeout));
    let deadline = Instant::now() + config.request_deadline;
    let mut socket = Socket::new(stream);
    socket.set_deadline(deadline, config.io_timeout);
    let (mut stream, admitted_with) = match handshake_if_private(&mut socket, config) {
        Ok(None) => (Stream::Plain(socket), None),
        Ok(Some(session)) => {
            let kind = session.kind();
            (Stream::Secure(Box::new(session.over(socket))), Some(kind))
        }
        Err(refusal) => {
            match refusal.error {
                ProtoError::Closed => tracing::debug!("{peer}: closed without a handshake"),
                ref e => {
                    stats().note_handshake_failed();
                    tracing::warn!("{peer}: handshake failed: {e}")
                }
            }
            let mut tcp = socket.into_tcp();
            if let Some(answer) = refusal.answer {
                let _ = frame::write(&mut tcp, &*answer);
            }
            close_gracefully(tcp, config.io_timeout.min(LINGER));
            return;
        }
    };
    let request = match &mut stream {
        // In the clear, read ahead as before: one read takes the request.
        Stream::Plain(socket) => {
            frame::read::<Request>(&mut BufReader::with_capacity(8 * 1024, socket))
        }
        Stream::Secure(secure) => frame::read::<Request>(secure),
    };
    stream.clear_deadline(config.io_timeout);
    let whole_request = request.is_ok();
    match request {
        Ok(request) => {
            let mut reply = Reply {
                stream: &mut stream,
                peer,
                admitted_with,
                answered: None,
            };
            if let Err(e) = handler.handle(request, &mut reply) {
                tracing::info!("{peer}: exchange failed: {e}");
            }
        }
        Err(ProtoError::Closed) => tracing::debug!("{peer}: closed without a request"),
        Err(e) => {
            match e {
                // The first bytes of a handshake: a secret, and none here.
                ProtoError::BadMagic(handshake::SECURE_MAGIC) => tracing::warn!(
                    "{peer}: a client with a secret connected; this {} has none",
                    handler.role()
                ),
                _ => tracing::warn!("{peer}: bad request: {e}"),
            }
            if let Some(answer) = answer_to_bad_request(&e, config) {
                let _ = frame::write(&mut stream, &answer);
            }
        }
    }
    let linger = config.io_timeout.min(LINGER);
    let tcp = stream.into_tcp();
    if whole_request {
        close_after_answer(tcp, linger);
    } else {
        close_gracefully(tcp, linger);
    }
}

/// In a private network, the handshake, answered from `socket`; in the
/// clear, nothing to do.
fn handshake_if_private(
    socket: &mut Socket,
    config: &ServerConfig,
) -> Result<Option<handshake::Session>, Box<handshake::Refusal>> {
    match &config.security {
        Security::Plain => Ok(None),
        Security::Private(private) => handshake::respond(socket, &private.keys, &private.identity)
            .map(Some)
            .map_err(Box::new),
    }
}

/// Closes a connection whose request was read whole. When the peer has sent
/// nothing since, nothing is unread, so closing cannot cause a reset: the
/// socket is closed at once, with no thread left waiting for the peer's own
/// close (on a relay list that wait was a wake-up per request, a quarter of
/// the rate; docs/BENCHMARKS.md). Bytes already waiting are drained first,
/// as [`close_gracefully`] does.
fn close_after_answer(stream: TcpStream, linger: Duration) {
    let nothing_unread = stream.set_nonblocking(true).is_ok()
        && match stream.peek(&mut [0u8; 1]) {
            Ok(n) => n == 0,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
    if nothing_unread {
        return;
    }
    let _ = stream.set_nonblocking(false);
    close_gracefully(stream, linger);
}

/// The error response for a request that could not be read, where the
/// protocol allows one: not to a peer that does not speak it at all.
fn answer_to_bad_request(e: &ProtoError, config: &ServerConfig) -> Option<Response> {
    // A client that wants a private network, at a server without a secret:
    // tell it plainly, where its handshake expects message 2.
    if let ProtoError::BadMagic(magic) = e
        && *magic == handshake::SECURE_MAGIC
    {
        return Some(Response::error(
            ErrorKind::Unauthorized,
            handshake::NO_SECRET,
        ));
    }
    let kind = match e {
        ProtoError::BadMagic(_) | ProtoError::Closed | ProtoError::Io(_) => return None,
        ProtoError::UnsupportedVersion(_) => ErrorKind::UnsupportedVersion,
        _ => ErrorKind::BadRequest,
    };
    let message = match e {
        ProtoError::Timeout => format!(
            "no complete request within {} ms",
            config.request_deadline.as_millis()
        ),
        other => other.to_string(),
    };
    Some(Response::error(kind, message))
}

/// How long, in all, a closing connection waits for the peer's own close.
const LINGER: Duration = Duration::from_secs(2);

/// Most bytes a closing connection reads and discards.
const MAX_DRAIN: usize = 64 * 1024;

/// Half-closes, then reads until the peer closes too. Closing with unread
/// bytes in the receive buffer would make the kernel send a reset, which can
/// destroy the response before the peer has read it. The wait is bounded in
/// all, not per read: a peer trickling a byte now and then must not keep the
/// connection (and its slot under the caps) past `linger`.
fn close_gracefully(mut stream: TcpStream, linger: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + linger;
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < MAX_DRAIN {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    if drained > 0 {
        tracing::debug!("ignored {drained} bytes sent after the request");
    }
}

/// Raises the open-file limit to what `max_connections` needs, or warns.
fn ensure_descriptors(max_connections: usize) {
    let want = descriptors::needed(max_connections, REFUSED_QUEUE);
    match descriptors::raise_to(want) {
        Ok(have) if have < want => tracing::warn!(
            "only {have} open files allowed (ulimit -n); {max_connections} connections \
             need about {want}: past that, new connections wait unanswered"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "cannot read or raise the open-file limit: {}",
            proto::error::io_reason(&e)
        ),
    }
}

/// Answers `busy` without giving the connection a thread: the reply is a few
/// dozen bytes, which a fresh socket's send buffer always takes at once.
fn refuse_busy(stream: TcpStream, why: &str, closer: &SyncSender<TcpStream>) {
    let _ = stream.set_nonblocking(true);
    if let Ok(bytes) = frame::encode(&Response::error(ErrorKind::Busy, why)) {
        let _ = (&stream).write_all(&bytes);
    }
    let _ = stream.shutdown(Shutdown::Write);
    // The closer drains what the peer sent before the socket is dropped; if
    // it is backed up, dropping at once is the lesser evil under a flood.
    let _ = closer.try_send(stream);
}

/// Refused connections waiting for the closer; past this, they are dropped.
const REFUSED_QUEUE: usize = 1024;

/// One thread that closes refused connections gracefully, one at a time.
fn spawn_closer() -> io::Result<SyncSender<TcpStream>> {
    let (tx, rx) = mpsc::sync_channel::<TcpStream>(REFUSED_QUEUE);
    plumbing::crucial::spawn("closer", move || {
        for stream in rx {
            let _ = stream.set_nonblocking(false);
            close_gracefully(stream, Duration::from_millis(100));
        }
    })?;
    Ok(tx)
}

/// Lets a repeated event be logged at most once a second, with a count, so a
/// flood does not become a flood of log lines.
#[derive(Debug, Default)]
pub struct Throttle {
    since_last: usize,
    last: Option<Instant>,
}

impl Throttle {
    /// Counts one event; returns how many to report when a line is due.
    pub fn note(&mut self) -> Option<usize> {
        self.since_last += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

/// Binds `ip:port`, or, with no IP, all interfaces: IPv6 and IPv4 together
/// (`[::]`, dual-stack on Linux), falling back to `0.0.0.0` where IPv6 is off.
fn bind_addrs(ip: Option<std::net::IpAddr>, port: u16) -> Vec<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    match ip {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => vec![
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        ],
    }
}
