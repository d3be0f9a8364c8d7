//! The one server skeleton, shared by relay and node.
//!
//! The [`Server`] owns the accept loop: it admits a connection against the
//! caps (or answers `busy` and closes it), then hands it to a thread of its
//! own. Everything about one connection happens in `serve_connection`: the
//! request must arrive before a deadline, the [`Handler`] answers through a
//! [`Reply`], and the connection is closed gracefully. Handlers never see
//! sockets, caps or timeouts.

mod admission;
mod workers;

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use admission::Admission;
use workers::Workers;

use crate::{ErrorKind, FileHeader, ProtoError, Request, Response, frame};

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_per_ip: 256,
            request_deadline: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
        }
    }
}

/// Answers one request. Implemented by the relay and by the node.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError>;
}

/// The way a handler answers: one response per connection.
pub struct Reply<'a> {
    stream: &'a mut TcpStream,
    peer: SocketAddr,
}

impl Reply<'_> {
    /// Who asked: the address the connection came from, as seen here.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn send(&mut self, response: &Response) -> Result<(), ProtoError> {
        frame::write(self.stream, response)
    }

    /// Sends a frame encoded earlier with [`frame::encode`] (a cached answer).
    pub fn send_encoded(&mut self, frame: &[u8]) -> Result<(), ProtoError> {
        self.stream.write_all(frame)?;
        Ok(())
    }

    /// Sends a file header, then the file's bytes from its current position.
    /// `io::copy` from a `File` to a `TcpStream` becomes sendfile on Linux: the
    /// bytes never pass through this process, and memory stays flat whatever
    /// the size. Returns how many body bytes were sent; fewer than declared
    /// means the file shrank while it was sent.
    pub fn send_file(&mut self, header: FileHeader, file: &mut File) -> Result<u64, ProtoError> {
        self.send(&Response::File(header))?;
        let sent = io::copy(&mut file.take(header.body_len()), self.stream)?;
        Ok(sent)
    }
}

/// A bound listener with its limits.
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds the first of `addrs` that can be bound (port 0 takes a free port).
    pub fn bind(addrs: &[SocketAddr], config: ServerConfig) -> io::Result<Server> {
        Ok(Server {
            listener: TcpListener::bind(addrs)?,
            config,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until the process ends.
    pub fn serve<H: Handler>(self, handler: H) -> io::Result<()> {
        let handler = Arc::new(handler);
        let config = Arc::new(self.config);
        let admission = Admission::new(config.max_connections, config.max_per_ip);
        let workers = Workers::new();
        let closer = spawn_closer()?;
        let mut refusals = RefusalLog::default();
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or memory: back off instead of spinning.
                    tracing::warn!("accept failed: {}", crate::error::io_reason(&e));
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let permit = match admission.admit(peer.ip().to_canonical()) {
                Ok(permit) => permit,
                Err(why) => {
                    refusals.note(&why);
                    refuse_busy(stream, &why, &closer);
                    continue;
                }
            };
            let (handler, config) = (Arc::clone(&handler), Arc::clone(&config));
            let job = Box::new(move || {
                serve_connection(stream, peer, &*handler, &config);
                drop(permit);
            });
            if let Err(e) = workers.run(job) {
                tracing::warn!(
                    "cannot start a thread for {peer}: {}",
                    crate::error::io_reason(&e)
                );
            }
        }
    }
}

/// Everything about one connection: read the request before the deadline,
/// let the handler answer, close gracefully.
fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: &dyn Handler,
    config: &ServerConfig,
) {
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.io_timeout));
    let deadline = Instant::now() + config.request_deadline;
    let request = {
        let reader = DeadlineReader {
            stream: &stream,
            deadline,
            io_timeout: config.io_timeout,
        };
        frame::read::<Request>(&mut BufReader::with_capacity(8 * 1024, reader))
    };
    match request {
        Ok(request) => {
            let mut reply = Reply {
                stream: &mut stream,
                peer,
            };
            if let Err(e) = handler.handle(request, &mut reply) {
                tracing::info!("{peer}: exchange failed: {e}");
            }
        }
        Err(ProtoError::Closed) => tracing::debug!("{peer}: closed without a request"),
        Err(e) => {
            tracing::warn!("{peer}: bad request: {e}");
            if let Some(answer) = answer_to_bad_request(&e, config) {
                let _ = frame::write(&mut stream, &answer);
            }
        }
    }
    close_gracefully(stream, config.io_timeout.min(LINGER));
}

/// The error response for a request that could not be read, where the
/// protocol allows one: not to a peer that does not speak it at all.
fn answer_to_bad_request(e: &ProtoError, config: &ServerConfig) -> Option<Response> {
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

/// How long a closing connection waits for the peer's own close.
const LINGER: Duration = Duration::from_secs(2);

/// Half-closes, then reads until the peer closes too. Closing with unread
/// bytes in the receive buffer would make the kernel send a reset, which can
/// destroy the response before the peer has read it.
fn close_gracefully(mut stream: TcpStream, linger: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(linger));
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    if drained > 0 {
        tracing::debug!("ignored {drained} bytes sent after the request");
    }
}

/// Reads from the socket but never past the request deadline, so a peer
/// sending one byte at a time cannot hold a thread longer than that.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    io_timeout: Duration,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream
            .set_read_timeout(Some(left.min(self.io_timeout)))?;
        (&mut &*self.stream).read(buf)
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

/// One thread that closes refused connections gracefully, one at a time.
fn spawn_closer() -> io::Result<SyncSender<TcpStream>> {
    let (tx, rx) = mpsc::sync_channel::<TcpStream>(1024);
    thread::Builder::new()
        .name("closer".into())
        .spawn(move || {
            for stream in rx {
                let _ = stream.set_nonblocking(false);
                close_gracefully(stream, Duration::from_millis(100));
            }
        })?;
    Ok(tx)
}

/// Logs refused connections at most once a second, so a flood does not
/// become a flood of log lines.
#[derive(Default)]
struct RefusalLog {
    since_last: usize,
    last: Option<Instant>,
}

impl RefusalLog {
    fn note(&mut self, why: &str) {
        self.since_last += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            tracing::warn!("refused {} connection(s): {why}", self.since_last);
            self.since_last = 0;
            self.last = Some(now);
        }
    }
}

/// Binds `ip:port`, or, with no IP, all interfaces: IPv6 and IPv4 together
/// (`[::]`, dual-stack on Linux), falling back to `0.0.0.0` where IPv6 is off.
pub fn bind_addr(ip: Option<std::net::IpAddr>, port: u16) -> Vec<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    match ip {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => vec![
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
        ],
    }
}
