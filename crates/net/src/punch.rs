//! Hole punching (docs/PROTOCOL.md, "Hole punching"): how a client and a
//! relayed node, each perhaps behind a NAT, get a TCP connection to each
//! other with the relay's help, so that the relay carries their bytes only
//! when that fails.
//!
//! Each side punches from a port of its own that the relay has seen: it
//! binds a fresh port with SO_REUSEADDR and SO_REUSEPORT ([`PunchPort`]),
//! listens on it, and connects to the relay from it, so the relay learns
//! the address the side's NAT gave that port. The relay tells each side the
//! other's ([`proto::Rendezvous`]), and both then:
//!
//! - **listen and connect at once** ([`meet`]): a Linux NAT answers a SYN
//!   that arrives before its own side's SYN went out with a reset, which
//!   kills a connect-only attempt; with the listener, whichever SYN finds
//!   the other NAT open makes the connection, through `connect` (a
//!   simultaneous open) or through `accept`;
//! - **try again at once** after a refusal, after a short random pause so
//!   that the two sides' attempts do not stay in step, and again after
//!   [`ATTEMPT`] when a SYN was dropped without an answer, until
//!   [`WITHIN`] has passed.
//!
//! When the relay could connect to the client's port (its dial-back), the
//! node connects out to it and the client only accepts: connection
//! reversal, which works whatever the node's NAT does.
//!
//! The connection that opens first is checked before it is used: the node
//! sends `JoinPunch(id)` on it, the client answers `CircuitReady` when the
//! id is the punch's. From then on it is an ordinary connection to the
//! node: the client sends its request (in a private network, first the
//! handshake under the peer key, which proves the node's key), and the node
//! serves it as a connection it accepted.
//!
//! [`open`] is the client's side (falling back to the relay's circuit),
//! [`answer`] the node's.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::exchange::{Connection, Route, Timeouts};
use crate::secure::{Dial, handshake};
use crate::stream::Socket as TimedSocket;
use proto::{ProtoError, PunchWay, Rendezvous, Request, Response, frame};

/// How long each side tries to connect, from its `Rendezvous` on. Past it
/// the client takes the relay's circuit instead.
pub const WITHIN: Duration = Duration::from_secs(1);

/// How long one connection attempt waits for an answer. A SYN a NAT drops
/// is sent again by the kernel only after a second; a new attempt sends one
/// sooner.
pub const ATTEMPT: Duration = Duration::from_millis(250);

/// The longest a connection that opened may take for its greeting (the
/// node's `JoinPunch`, the client's `CircuitReady`), also past [`WITHIN`].
pub const GREETING: Duration = Duration::from_millis(250);

/// How long each read and write of the relay's dial-back may take, once it
/// has begun (in a private network, a handshake under the relay key).
const DIALBACK_IO: Duration = Duration::from_secs(2);

/// Longest random pause after a refused attempt, in microseconds: short,
/// since a refusal means the other NAT was not open yet and may be now;
/// random, so that the two sides' attempts drift apart instead of meeting
/// the other NAT closed each time.
const RETRY_JITTER_US: u32 = 200;

/// Most connection attempts one punch makes. Between NATs a few
/// milliseconds apart, a refusal comes back after a round trip, so this
/// covers the whole second down to 15 ms; it also bounds the SYNs a relay
/// can make a node send to an address of its choosing (docs/SECURITY.md).
pub const MAX_ATTEMPTS: u32 = 64;

/// Pause after an attempt that could not even start (no route): it will
/// not start a moment later either.
const START_FAILED_PAUSE: Duration = Duration::from_millis(50);

/// Connections waiting for their first bytes at once; past it, the oldest
/// stranger is dropped (someone else found the port).
const MAX_PENDING: usize = 8;

/// A local port to punch from: a listener, and the port every socket that
/// connects out from it binds again (SO_REUSEADDR and SO_REUSEPORT on all
/// of them, so that they may share it).
pub struct PunchPort {
    listener: Socket,
    local: SocketAddr,
}

impl PunchPort {
    /// A fresh port, of `like`'s address family, already listening.
    pub fn open(like: SocketAddr) -> io::Result<PunchPort> {
        let any = match like {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        };
        let listener = reusable(any)?;
        listener.listen(16)?;
        listener.set_nonblocking(true)?;
        let local = listener
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("the punching socket has no IP address"))?;
        Ok(PunchPort { listener, local })
    }

    /// The port, with the unspecified address it is bound to.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// A blocking connection from this port to `to`, within `timeout`: the
    /// one to the relay, which shows the relay this port's address outside.
    pub fn connect(&self, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let socket = reusable(self.local)?;
        socket.connect_timeout(&SockAddr::from(to), timeout)?;
        Ok(socket.into())
    }

    /// A connection waiting to be accepted, if any.
    fn accept(&self) -> io::Result<Option<TcpStream>> {
        match self.listener.accept() {
            Ok((socket, _)) => {
                socket.set_nonblocking(false)?;
                Ok(Some(socket.into()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            // The connection went before it was accepted: not the port's fault.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A TCP socket bound to `local` with SO_REUSEADDR and SO_REUSEPORT.
fn reusable(local: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(local),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SockAddr::from(local))?;
    Ok(socket)
}

/// The two sides of a punch: what each does with a connection that opened.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// Sends `JoinPunch(id)` at once, waits for `CircuitReady`.
    Node { id: u64 },
    /// Waits for `JoinPunch(id)`, answers `CircuitReady`.
    Client { id: u64 },
}

/// How a punch went, for the log and the error.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Connection attempts started.
    pub attempts: u32,
    /// Of them, refused (a reset from the other NAT, mostly).
    pub refused: u32,
    /// Of them, unanswered within [`ATTEMPT`].
    pub unanswered: u32,
    /// Connections that opened but did not greet as the punch's.
    pub strangers: u32,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} attempts, {} refused, {} unanswered",
            self.attempts, self.refused, self.unanswered
        )?;
        if self.strangers > 0 {
            write!(f, ", {} other connections", self.strangers)?;
        }
        Ok(())
    }
}

/// A connection that opened and has yet to greet.
struct Pending {
    stream: TcpStream,
    since: Instant,
}

/// Tries to get a connection to `peer` until `deadline`: listening on
/// `port` all along and, when `dial`, connecting from it to `peer` again and
/// again ([`MAX_ATTEMPTS`] times at most; the port keeps listening to the
/// end, so a punch takes its time whatever the attempts cost). Every connection that opens is greeted as `side` says; the first
/// whose greeting succeeds is returned. `pending` are connections accepted
/// earlier (by the client, while it waited for its `Rendezvous`).
fn meet(
    port: &PunchPort,
    peer: SocketAddr,
    dial: bool,
    side: Side,
    deadline: Instant,
    mut pending: Vec<Pending>,
    tally: &mut Tally,
) -> Option<TcpStream> {
    let mut attempt: Option<(Socket, Instant)> = None;
    let mut next_at = Instant::now();
    loop {
        let now = Instant::now();
        pending.retain(|p| now < p.since + GREETING);
        if now >= deadline && pending.is_empty() {
            return None;
        }
        // No new attempt while a connection that opened is greeting: it
        // would only collide with it.
        let may_dial = dial && tally.attempts < MAX_ATTEMPTS;
        if may_dial && now < deadline && attempt.is_none() && pending.is_empty() && now >= next_at {
            tally.attempts += 1;
            match start_attempt(port.local, peer) {
                Ok(socket) => attempt = Some((socket, now)),
                Err(e) => {
                    tracing::debug!(
                        "punch to {peer}: cannot connect from port {}: {}",
                        port.local.port(),
                        proto::error::io_reason(&e)
                    );
                    tally.refused += 1;
                    next_at = now + START_FAILED_PAUSE;
                }
            }
        }
        // Wake for the first of: the deadline, the attempt's end, the next
        // attempt, a pending greeting's end.
        let mut wake = if now < deadline {
            deadline
        } else {
            now + GREETING
        };
        match &attempt {
            Some((_, started)) => wake = wake.min(*started + ATTEMPT),
            None if may_dial && pending.is_empty() => wake = wake.min(next_at),
            None => {}
        }
        for p in &pending {
            wake = wake.min(p.since + GREETING);
        }
        let mut fds = vec![pollfd(port.listener.as_raw_fd(), libc::POLLIN)];
        fds.push(match &attempt {
            Some((socket, _)) => pollfd(socket.as_raw_fd(), libc::POLLOUT),
            None => pollfd(-1, 0),
        });
        fds.extend(
            pending
                .iter()
                .map(|p| pollfd(p.stream.as_raw_fd(), libc::POLLIN)),
        );
        if let Err(e) = poll(&mut fds, wake.saturating_duration_since(now)) {
            tracing::debug!(
                "punch to {peer}: poll failed: {}",
                proto::error::io_reason(&e)
            );
            return None;
        }
        // Connections that have said something: the greeting, or not.
        let ready: Vec<usize> = (0..pending.len())
            .filter(|i| fds[2 + i].revents != 0)
            .collect();
        for &i in ready.iter().rev() {
            let p = pending.swap_remove(i);
            match receive_greeting(p.stream, side) {
                Some(stream) => return Some(stream),
                None => tally.strangers += 1,
            }
        }
        if fds[1].revents != 0
            && let Some((socket, _)) = attempt.take()
        {
            match socket.take_error() {
                Ok(None) => {
                    if socket.set_nonblocking(false).is_ok()
                        && let Some(p) = opened(socket.into(), side)
                    {
                        pending.push(p);
                    }
                }
                Ok(Some(_)) | Err(_) => {
                    tally.refused += 1;
                    next_at = Instant::now() + jitter();
                }
            }
        }
        if fds[0].revents != 0 {
            loop {
                match port.accept() {
                    Ok(Some(stream)) => {
                        if pending.len() >= MAX_PENDING {
                            pending.remove(0);
                            tally.strangers += 1;
                        }
                        if let Some(p) = opened(stream, side) {
                            pending.push(p);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(
                            "punch to {peer}: accept failed: {}",
                            proto::error::io_reason(&e)
                        );
                        break;
                    }
                }
            }
        }
        if let Some((_, started)) = &attempt
            && Instant::now() >= *started + ATTEMPT
        {
            attempt = None;
            tally.unanswered += 1;
        }
    }
}

/// A connection that just opened: the node greets it at once.
fn opened(mut stream: TcpStream, side: Side) -> Option<Pending> {
    if stream.set_nodelay(true).is_err() || send_greeting(&mut stream, side).is_err() {
        return None;
    }
    Some(Pending {
        stream,
        since: Instant::now(),
    })
}

/// The node's half of the greeting, sent as soon as a connection opens.
fn send_greeting(stream: &mut TcpStream, side: Side) -> Result<(), ProtoError> {
    match side {
        Side::Node { id } => {
            stream.set_write_timeout(Some(GREETING))?;
            frame::write(stream, &Request::JoinPunch(id))
        }
        Side::Client { .. } => Ok(()),
    }
}

/// Reads the other half of the greeting from a connection that has
/// something to say; the connection, if it is the punch's.
fn receive_greeting(mut stream: TcpStream, side: Side) -> Option<TcpStream> {
    stream.set_read_timeout(Some(GREETING)).ok()?;
    stream.set_write_timeout(Some(GREETING)).ok()?;
    match side {
        Side::Node { .. } => match frame::read::<Response>(&mut stream) {
            Ok(Response::CircuitReady) => Some(stream),
            _ => None,
        },
        Side::Client { id } => match frame::read::<Request>(&mut stream) {
            Ok(Request::JoinPunch(got)) if got == id => {
                frame::write(&mut stream, &Response::CircuitReady).ok()?;
                Some(stream)
            }
            _ => None,
        },
    }
}

/// A nonblocking connection attempt from `local` to `peer`.
fn start_attempt(local: SocketAddr, peer: SocketAddr) -> io::Result<Socket> {
    let socket = reusable(local)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::from(peer)) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) => Err(e),
    }
}

/// A random pause of up to [`RETRY_JITTER_US`].
fn jitter() -> Duration {
    let mut bytes = [0u8; 4];
    // SAFETY: getrandom writes at most `len` bytes into the buffer we own.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    let r = if got == 4 {
        u32::from_ne_bytes(bytes)
    } else {
        Instant::now().elapsed().subsec_nanos()
    };
    Duration::from_micros(u64::from(r % (RETRY_JITTER_US + 1)))
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready or `timeout` has passed (to the
/// microsecond: a retry's pause is shorter than poll(2)'s millisecond).
fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `fds` is a valid slice of pollfd for the duration of the
    // call; a negative fd is ignored by the kernel; no signal mask is given.
    let n = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        for fd in fds.iter_mut() {
            fd.revents = 0;
        }
    }
    Ok(())
}

/// What a connection to the client's port said before its `Rendezvous`
/// arrived.
enum Early {
    /// It was the relay's dial-back, answered.
    DialBack,
    /// A node's greeting for punch `id` (it got its `Rendezvous` first).
    Greeting(TcpStream, u64),
    /// Anything else: closed.
    Other,
}

/// Reads what a connection to the client's port says first, and answers
/// it if it is the relay's dial-back: `Hello` (after a handshake under the
/// relay key, in a private network).
fn early(stream: TcpStream, to_relay: &Dial) -> Early {
    if stream.set_read_timeout(Some(GREETING)).is_err()
        || stream.set_write_timeout(Some(GREETING)).is_err()
    {
        return Early::Other;
    }
    let mut magic = [0u8; 4];
    let mut peeked = 0;
    let until = Instant::now() + GREETING;
    while peeked < 4 && Instant::now() < until {
        match stream.peek(&mut magic) {
            Ok(0) => return Early::Other,
            Ok(n) => peeked = n,
            Err(_) => return Early::Other,
        }
        if peeked < 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if peeked < 4 {
        return Early::Other;
    }
    if magic == handshake::SECURE_MAGIC {
        let Dial::Secure { private, .. } = to_relay else {
            return Early::Other;
        };
        // Two Diffie-Hellman operations on each side: slower than a greeting.
        if stream.set_read_timeout(Some(DIALBACK_IO)).is_err()
            || stream.set_write_timeout(Some(DIALBACK_IO)).is_err()
        {
            return Early::Other;
        }
        let mut socket = TimedSocket::new(stream);
        let Ok(session) = handshake::respond(&mut socket, &private.keys, &private.identity) else {
            return Early::Other;
        };
        let mut secure = session.over(socket);
        return match frame::read::<Request>(&mut secure) {
            Ok(Request::Hello) => {
                let _ = frame::write(&mut secure, &Response::Hello);
                Early::DialBack
            }
            _ => Early::Other,
        };
    }
    let mut stream = stream;
    match frame::read::<Request>(&mut stream) {
        Ok(Request::Hello) => {
            let _ = frame::write(&mut stream, &Response::Hello);
            Early::DialBack
        }
        Ok(Request::JoinPunch(id)) => Early::Greeting(stream, id),
        _ => Early::Other,
    }
}

/// The client's way to a relayed node: asks the first of `relay` that
/// accepts a connection to punch through to the node listed as `node`, and
/// takes the relay's circuit when the relay does not punch or the punch
/// fails within [`WITHIN`]. The connection that comes back says which
/// ([`Connection::route`]); through it the node is reached as `to_node`
/// says, exactly as directly.
pub fn open(
    relay: &[SocketAddr],
    node: SocketAddr,
    timeouts: &Timeouts,
    to_relay: &Dial,
    to_node: &Dial,
) -> Result<Connection, ProtoError> {
    let asked = Instant::now();
    let mut last = ProtoError::Closed;
    for &addr in relay {
        let port = PunchPort::open(addr)?;
        let tcp = match port.connect(addr, timeouts.connect) {
            Ok(tcp) => tcp,
            Err(e) => {
                last = e.into();
                continue;
            }
        };
        let conn = Connection::over(tcp, addr, timeouts)?.secure(to_relay)?;
        return punch_via(conn, &port, node, asked, timeouts, to_relay, to_node);
    }
    Err(last)
}

/// [`open`] on a connection to the relay from `port`, made at `asked`.
fn punch_via(
    mut conn: Connection,
    port: &PunchPort,
    node: SocketAddr,
    asked: Instant,
    timeouts: &Timeouts,
    to_relay: &Dial,
    to_node: &Dial,
) -> Result<Connection, ProtoError> {
    let relay = conn.peer();
    conn.send(&Request::Punch(node))?;
    let (answer, greeted) = await_answer(&mut conn, port, to_relay, timeouts.io)?;
    let rendezvous = match answer {
        Response::Rendezvous(r) => r,
        Response::CircuitReady => {
            tracing::debug!("relay {relay} did not punch to {node}: a circuit instead");
            return relayed(conn, node, to_node);
        }
        // An older relay does not know Punch (unknown tag); a newer one
        // says so when it has no such node. Either way the plain circuit
        // request is the one to ask, and says why if it fails too.
        Response::Error(e) if e.kind == proto::ErrorKind::BadRequest => {
            tracing::debug!(
                "relay {relay} refused to punch to {node} ({}); asking for a circuit",
                e.message
            );
            drop(conn);
            return crate::circuit::open(&[relay], node, timeouts, to_relay, to_node);
        }
        Response::Error(e) => return Err(ProtoError::CircuitRefused(e)),
        other => {
            return Err(ProtoError::Malformed(format!(
                "relay {relay} answered a punch request with {}",
                other.name()
            )));
        }
    };
    let started = Instant::now();
    let mut tally = Tally::default();
    let punched = match rendezvous.way {
        PunchWay::Reverse | PunchWay::Simultaneous => {
            // The node may have greeted before the relay's word got here.
            let early = greeted
                .into_iter()
                .find_map(|(stream, id)| (id == rendezvous.id).then_some(stream));
            match early {
                Some(mut stream) => frame::write(&mut stream, &Response::CircuitReady)
                    .ok()
                    .map(|()| stream),
                None => meet(
                    port,
                    rendezvous.peer,
                    rendezvous.way == PunchWay::Simultaneous,
                    Side::Client { id: rendezvous.id },
                    started + WITHIN,
                    Vec::new(),
                    &mut tally,
                ),
            }
        }
        PunchWay::Other(code) => {
            tracing::debug!("relay {relay} asked for a punch of an unknown way ({code})");
            None
        }
    };
    match punched {
        Some(stream) => {
            tracing::debug!(
                "hole-punched to {node} at {} by {} in {:.1} ms, {:.1} ms after the rendezvous ({tally})",
                rendezvous.peer,
                rendezvous.way.as_str(),
                asked.elapsed().as_secs_f64() * 1000.0,
                started.elapsed().as_secs_f64() * 1000.0
            );
            // Closing the relay's connection tells it the punch worked.
            drop(conn);
            Ok(Connection::over(stream, node, timeouts)?
                .routed(Route::HolePunched)
                .secure(to_node)?)
        }
        None => {
            tracing::debug!(
                "punch to {node} at {} by {} failed in {:.1} ms ({tally}); through the relay",
                rendezvous.peer,
                rendezvous.way.as_str(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            // The same connection asks for the circuit, which tells the
            // relay the punch failed.
            let answer = conn.request(&Request::OpenCircuit(node))?;
            match answer {
                Response::CircuitReady => relayed(conn, node, to_node),
                Response::Error(e) => Err(ProtoError::CircuitRefused(e)),
                other => Err(ProtoError::Malformed(format!(
                    "relay {relay} answered a circuit request with {}",
                    other.name()
                ))),
            }
        }
    }
}

/// The relay's connection, turned into a circuit to `node`.
fn relayed(conn: Connection, node: SocketAddr, to_node: &Dial) -> Result<Connection, ProtoError> {
    conn.relabel(node).routed(Route::Relayed).secure(to_node)
}

/// Waits up to `wait` for the relay's answer to `Punch`, answering its
/// dial-back of the client's port meanwhile. Returns the answer, and the
/// greetings that arrived at the port first (with their punch ids).
fn await_answer(
    conn: &mut Connection,
    port: &PunchPort,
    to_relay: &Dial,
    wait: Duration,
) -> Result<(Response, Vec<(TcpStream, u64)>), ProtoError> {
    let deadline = Instant::now() + wait;
    let mut heard = Vec::new();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(ProtoError::Timeout);
        }
        let mut fds = [
            pollfd(conn.tcp().as_raw_fd(), libc::POLLIN),
            pollfd(port.listener.as_raw_fd(), libc::POLLIN),
        ];
        poll(&mut fds, deadline - now)?;
        if fds[1].revents != 0 {
            while let Some(stream) = port.accept()? {
                match early(stream, to_relay) {
                    Early::Greeting(stream, id) if heard.len() < MAX_PENDING => {
                        heard.push((stream, id))
                    }
                    Early::DialBack => tracing::debug!("answered the relay's dial-back"),
                    Early::Greeting(..) | Early::Other => {}
                }
            }
        }
        if fds[0].revents != 0 {
            return Ok((conn.receive()?, heard));
        }
    }
}

/// The node's side of punch `id`, which the relay asked for on its control
/// connection: joins it at `relay` from a fresh port, learns the client's
/// address, and connects to it (listening too, for a simultaneous open).
/// Returns the connection, greeted and ready to be served as one the node
/// accepted, with the client's address as the relay saw it.
pub fn answer(
    relay: SocketAddr,
    id: u64,
    timeouts: &Timeouts,
    to_relay: &Dial,
) -> Result<(TcpStream, SocketAddr), String> {
    let port =
        PunchPort::open(relay).map_err(|e| format!("no port: {}", proto::error::io_reason(&e)))?;
    let tcp = port
        .connect(relay, timeouts.connect)
        .map_err(|e| format!("cannot reach the relay: {}", proto::error::io_reason(&e)))?;
    let mut conn = Connection::over(tcp, relay, timeouts)
        .and_then(|c| c.secure(to_relay))
        .map_err(|e| format!("relay {relay}: {e}"))?;
    let rendezvous: Rendezvous = match conn.request(&Request::JoinPunch(id)) {
        Ok(Response::Rendezvous(r)) if r.id == id => r,
        Ok(Response::Error(e)) => return Err(format!("the relay refused: {}", e.message)),
        Ok(other) => return Err(format!("the relay answered with {}", other.name())),
        Err(e) => return Err(format!("relay {relay}: {e}")),
    };
    drop(conn);
    let dial = match rendezvous.way {
        PunchWay::Reverse | PunchWay::Simultaneous => true,
        PunchWay::Other(code) => {
            return Err(format!("the relay asked for an unknown way ({code})"));
        }
    };
    let started = Instant::now();
    let mut tally = Tally::default();
    match meet(
        &port,
        rendezvous.peer,
        dial,
        Side::Node { id },
        started + WITHIN,
        Vec::new(),
        &mut tally,
    ) {
        Some(stream) => {
            tracing::debug!(
                "punch {id:016x}: connected to client {} by {} in {:.1} ms ({tally})",
                rendezvous.peer,
                rendezvous.way.as_str(),
                started.elapsed().as_secs_f64() * 1000.0
            );
            Ok((stream, rendezvous.peer))
        }
        None => Err(format!(
            "no connection to client {} by {} within {} ms ({tally})",
            rendezvous.peer,
            rendezvous.way.as_str(),
            WITHIN.as_millis()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn timeouts() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(10),
        }
    }

    fn node_addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    /// A relay that introduces one client to one node as `way` says, on
    /// loopback: the client's `Punch`, then the node's `JoinPunch`.
    /// Returns its address, and the thread, which ends with the client's
    /// last word on its connection (None: it closed).
    fn fake_relay(way: PunchWay) -> (SocketAddr, thread::JoinHandle<Option<Request>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let relay = thread::spawn(move || {
            let (mut client, client_seen) = listener.accept().unwrap();
            assert_eq!(
                frame::read::<Request>(&mut client).unwrap(),
                Request::Punch(node_addr())
            );
            // The node: asked for punch 42 (as on its control connection).
            let node = thread::spawn(move || answer(addr, 42, &timeouts(), &Dial::Plain));
            let (mut joined, node_seen) = listener.accept().unwrap();
            assert_eq!(
                frame::read::<Request>(&mut joined).unwrap(),
                Request::JoinPunch(42)
            );
            let to = |peer| Response::Rendezvous(Rendezvous { id: 42, peer, way });
            frame::write(&mut client, &to(node_seen)).unwrap();
            frame::write(&mut joined, &to(client_seen)).unwrap();
            drop(joined);
            // The node's end: greeted, it is served as an accepted one.
            let served = thread::spawn(move || {
                let (mut stream, seen) = node.join().unwrap().expect("the node's side");
                assert_eq!(seen, client_seen);
                let request = frame::read::<Request>(&mut stream).unwrap();
                assert_eq!(request, Request::Hello);
                frame::write(&mut stream, &Response::Hello).unwrap();
            });
            let last = frame::read::<Request>(&mut client).ok();
            served.join().unwrap();
            last
        });
        (addr, relay)
    }

    fn punch_with(way: PunchWay) {
        let (relay, relay_thread) = fake_relay(way);
        let mut conn = open(
            &[relay],
            node_addr(),
            &timeouts(),
            &Dial::Plain,
            &Dial::Plain,
        )
        .unwrap();
        assert_eq!(conn.route(), Route::HolePunched);
        assert_eq!(conn.peer(), node_addr(), "named after the node");
        assert_eq!(conn.request(&Request::Hello).unwrap(), Response::Hello);
        // Success: the client closed its connection to the relay.
        assert_eq!(relay_thread.join().unwrap(), None);
    }

    #[test]
    fn a_reversal_on_loopback_gets_through() {
        punch_with(PunchWay::Reverse);
    }

    #[test]
    fn a_simultaneous_open_on_loopback_gets_through_whichever_connection_opens() {
        // On loopback both sides' connections open (each accepts the
        // other's): the greeting picks one.
        punch_with(PunchWay::Simultaneous);
    }

    #[test]
    fn an_older_relay_is_asked_for_a_circuit_instead() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = listener.local_addr().unwrap();
        let old = thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            // It does not know the tag.
            assert!(matches!(
                frame::read::<Request>(&mut first),
                Err(ProtoError::UnknownTag(17)) | Ok(Request::Punch(_))
            ));
            frame::write(
                &mut first,
                &Response::error(proto::ErrorKind::BadRequest, "unknown message tag 17"),
            )
            .unwrap();
            drop(first);
            let (mut second, _) = listener.accept().unwrap();
            assert_eq!(
                frame::read::<Request>(&mut second).unwrap(),
                Request::OpenCircuit(node_addr())
            );
            frame::write(&mut second, &Response::CircuitReady).unwrap();
            // The node's answer, through the circuit.
            assert_eq!(frame::read::<Request>(&mut second).unwrap(), Request::Hello);
            frame::write(&mut second, &Response::Hello).unwrap();
        });
        let mut conn = open(
            &[relay],
            node_addr(),
            &timeouts(),
            &Dial::Plain,
            &Dial::Plain,
        )
        .unwrap();
        assert_eq!(conn.route(), Route::Relayed);
        assert_eq!(conn.request(&Request::Hello).unwrap(), Response::Hello);
        old.join().unwrap();
    }

    #[test]
    fn a_punch_nobody_answers_gives_up_within_its_bound_and_relays() {
        // The "node" never joins anything: the rendezvous points at a port
        // where nothing listens, and nobody connects to the client.
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = listener.local_addr().unwrap();
        let fake = thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            frame::read::<Request>(&mut client).unwrap();
            let rendezvous = Rendezvous {
                id: 1,
                peer: dead,
                way: PunchWay::Simultaneous,
            };
            frame::write(&mut client, &Response::Rendezvous(rendezvous)).unwrap();
            let started = Instant::now();
            let next = frame::read::<Request>(&mut client).unwrap();
            let waited = started.elapsed();
            frame::write(&mut client, &Response::CircuitReady).unwrap();
            (next, waited)
        });
        let conn = open(
            &[relay],
            node_addr(),
            &timeouts(),
            &Dial::Plain,
            &Dial::Plain,
        )
        .unwrap();
        assert_eq!(conn.route(), Route::Relayed);
        let (next, waited) = fake.join().unwrap();
        assert_eq!(next, Request::OpenCircuit(node_addr()));
        assert!(waited >= WITHIN, "gave up after {waited:?}");
        assert!(waited < WITHIN + GREETING + ATTEMPT, "took {waited:?}");
    }

    #[test]
    fn a_connection_with_the_wrong_greeting_is_not_taken() {
        let port = PunchPort::open("127.0.0.1:1".parse().unwrap()).unwrap();
        let there = SocketAddr::from(([127, 0, 0, 1], port.local().port()));
        let stranger = thread::spawn(move || {
            let mut s = TcpStream::connect(there).unwrap();
            frame::write(&mut s, &Request::JoinPunch(666)).unwrap();
            // Not answered: closed.
            let mut rest = Vec::new();
            let _ = io::Read::read_to_end(&mut s, &mut rest);
            rest
        });
        let mut tally = Tally::default();
        let got = meet(
            &port,
            "127.0.0.1:1".parse().unwrap(),
            false,
            Side::Client { id: 7 },
            Instant::now() + Duration::from_millis(300),
            Vec::new(),
            &mut tally,
        );
        assert!(got.is_none());
        assert_eq!(tally.strangers, 1);
        assert!(stranger.join().unwrap().is_empty(), "no CircuitReady sent");
    }
}
