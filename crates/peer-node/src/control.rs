//! Relayed mode: for a node the relay cannot connect to (behind NAT or a
//! firewall), or one started with `--relayed`.
//!
//! The node keeps one outbound control connection to the relay, the one
//! exception to one exchange per connection (docs/PROTOCOL.md): it sends
//! `Control(Registration)`, then a `Keepalive` at least three times per TTL
//! (each answered `Registered`), and the relay sends `OpenData(N)` when a
//! client wants circuit N. For each, the node opens a fresh connection to
//! the relay, joins circuit N on it, and serves it with the same service
//! and server skeleton as the connections it accepts: the client's requests
//! arrive through the circuit exactly as they would directly.
//!
//! The node opens its control connection with `ControlPunch`, which tells
//! the relay it can also punch (docs/PROTOCOL.md, "Hole punching"); an
//! older relay refuses the unknown request, and the node sends `Control`
//! instead. On `OpenPunch(N)` the node joins punch N at the relay from a
//! fresh port and connects to the client directly (`net::punch::answer`);
//! the connection that opens is served like the others.
//!
//! When the control connection breaks (the relay restarted, the network
//! went), the node reconnects with capped backoff; the relay lists it again
//! as soon as it is back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use net::exchange::{self, Connection, Timeouts};
use net::server::{Handler, ServerConfig};
use net::stream::Stream;
use proto::{ErrorKind, Registration, Request, Response, frame};

use crate::announce::{AnnounceError, final_refusal};

/// First pause after a failed connection; it doubles up to the keepalive
/// interval, so a relay that comes back finds every node within one.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Shortest keepalive interval, whatever the TTL says.
const MIN_KEEPALIVE: Duration = Duration::from_millis(100);

/// Punches under way at once. Each holds a port and sends SYNs to one
/// address for up to `net::punch::WITHIN`: a relay that asks for more waits
/// (in a private network a relay holds only the relay key, and this bounds
/// what it can make the node send).
const MAX_PUNCHES: usize = 16;

/// A node in relayed mode.
pub struct Relayed<H: Handler> {
    pub relay_host: String,
    pub relay_port: u16,
    pub registration: Registration,
    /// Keepalive at least this often (and at least three times per TTL).
    pub heartbeat: Duration,
    pub timeouts: Timeouts,
    /// What answers requests arriving through circuits.
    pub service: Arc<H>,
    pub server: ServerConfig,
}

/// Why a control connection ended.
enum Ended {
    /// It never opened (relay down): try again after the backoff.
    NotConnected(String),
    /// It was open and broke: reconnect at once.
    Lost(String),
    /// The relay refused in a way retrying will not fix.
    Refused(String),
}

impl<H: Handler> Relayed<H> {
    fn relay_label(&self) -> String {
        match self.relay_host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{}]:{}", self.relay_host, self.relay_port),
            Err(_) => format!("{}:{}", self.relay_host, self.relay_port),
        }
    }

    /// Keeps a control connection open for as long as the process lives;
    /// returns only a refusal that retrying cannot fix.
    pub fn run(&self) -> AnnounceError {
        self.run_with(&|_| {})
    }

    /// As [`Relayed::run`], calling `listed` with the address the relay
    /// lists this node under each time a control connection is accepted
    /// (the catalog is sent anew under that name).
    pub fn run_with(&self, listed: &dyn Fn(SocketAddr)) -> AnnounceError {
        let relay = self.relay_label();
        let open_circuits = Arc::new(AtomicUsize::new(0));
        let punches = Arc::new(AtomicUsize::new(0));
        let mut every = self.heartbeat.max(MIN_KEEPALIVE);
        let mut retry = FIRST_RETRY;
        loop {
            let ended = self.session(&mut every, &open_circuits, &punches, listed);
            crate::metrics::registration(crate::metrics::Registration::Retrying);
            match ended {
                Ended::Refused(why) => return AnnounceError::Refused(why),
                Ended::Lost(why) => {
                    tracing::warn!(
                        "lost the control connection to relay {relay}: {why}; reconnecting"
                    );
                    retry = FIRST_RETRY;
                }
                Ended::NotConnected(why) => {
                    tracing::warn!(
                        "could not open a control connection to relay {relay}: {why}; retrying in {:.2}s",
                        retry.as_secs_f64()
                    );
                    thread::sleep(retry);
                    retry = (retry * 2).min(every.max(FIRST_RETRY));
                }
            }
        }
    }

    /// One control connection, from `Control` until it breaks.
    fn session(
        &self,
        every: &mut Duration,
        open_circuits: &Arc<AtomicUsize>,
        punches: &Arc<AtomicUsize>,
        listed: &dyn Fn(SocketAddr),
    ) -> Ended {
        let relay = self.relay_label();
        let addrs = match exchange::resolve(&self.relay_host, self.relay_port) {
            Ok(addrs) => addrs,
            Err(e) => {
                return Ended::NotConnected(format!(
                    "cannot resolve {}: {}",
                    self.relay_host,
                    proto::error::io_reason(&e)
                ));
            }
        };
        let mut last = String::from("no address");
        let mut opened = None;
        let dial = self.server.security.to_relay();
        for addr in addrs {
            match Connection::dial(addr, &self.timeouts, &dial) {
                Ok(conn) => {
                    opened = Some(conn);
                    break;
                }
                Err(e) => match final_refusal(&e, &relay) {
                    Some(why) => return Ended::Refused(why),
                    None => last = e.to_string(),
                },
            }
        }
        let Some(mut conn) = opened else {
            return Ended::NotConnected(last);
        };
        let relay_addr = conn.peer();
        let mut answer = conn.request(&Request::ControlPunch(self.registration.clone()));
        if let Ok(Response::Error(e)) = &answer
            && e.kind == ErrorKind::BadRequest
        {
            // An older relay, which does not know ControlPunch: it closed
            // this connection, so the plain Control goes on a new one.
            tracing::debug!(
                "relay {relay} does not punch ({}); relayed mode without it",
                e.message
            );
            answer = Connection::dial(relay_addr, &self.timeouts, &dial).and_then(|mut c| {
                let answer = c.request(&Request::Control(self.registration.clone()));
                conn = c;
                answer
            });
        }
        let registered = match answer {
            Ok(Response::Registered(r)) => r,
            Ok(Response::Error(e)) => {
                let why = format!("relay {relay}: {} ({})", e.message, e.kind.as_str());
                return match e.kind {
                    ErrorKind::Unauthorized
                    | ErrorKind::Forbidden
                    | ErrorKind::UnsupportedVersion => Ended::Refused(why),
                    // An older relay does not know the request.
                    ErrorKind::BadRequest => {
                        Ended::Refused(format!("{why}: this relay does not support relayed nodes"))
                    }
                    _ => Ended::NotConnected(why),
                };
            }
            // A relay answers `Control` with `Registered` or an error.
            Ok(other) => {
                return Ended::Refused(format!(
                    "{relay} is not a relay: it answered the control request with a {}; check \
                     the relay's address and port",
                    other.name()
                ));
            }
            // A refused handshake shows here, not in the dial: the
            // relay's confirmation (or its refusal) comes before its answer.
            Err(e) => {
                return match final_refusal(&e, &relay) {
                    Some(why) => Ended::Refused(why),
                    None => Ended::NotConnected(e.to_string()),
                };
            }
        };
        let ttl = Duration::from_secs(u64::from(registered.ttl_secs));
        *every = self.heartbeat.min(ttl / 3).max(MIN_KEEPALIVE);
        tracing::info!(
            "registered with relay {relay} as {} (relayed; ttl {}s, keepalive every {:.2}s)",
            registered.addr,
            registered.ttl_secs,
            every.as_secs_f64()
        );
        listed(registered.addr);
        let mut stream = conn.into_stream();
        Ended::Lost(self.keep(&mut stream, relay_addr, *every, ttl, open_circuits, punches))
    }

    /// Sends keepalives and answers the relay's circuit requests until the
    /// connection breaks; returns why it did.
    fn keep(
        &self,
        stream: &mut Stream,
        relay: SocketAddr,
        every: Duration,
        ttl: Duration,
        open_circuits: &Arc<AtomicUsize>,
        punches: &Arc<AtomicUsize>,
    ) -> String {
        let mut last_sent = Instant::now();
        let mut last_heard = Instant::now();
        loop {
            let now = Instant::now();
            let due = last_sent + every;
            if now >= due {
                if now.duration_since(last_heard) > ttl {
                    return format!("the relay was silent for {}s", ttl.as_secs());
                }
                if let Err(e) = frame::write(stream, &Request::Keepalive) {
                    return format!("cannot send a keepalive: {e}");
                }
                last_sent = now;
                continue;
            }
            // Wait for the relay's next frame, or until a keepalive is due.
            let wait = due - now;
            // An encrypted stream holds no decrypted bytes here: each frame
            // is one message, read whole. So the socket tells when one begins.
            if let Err(e) = stream
                .tcp()
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            {
                return format!("cannot set a timeout: {}", proto::error::io_reason(&e));
            }
            match stream.tcp().peek(&mut [0u8; 1]) {
                Ok(0) => return "the relay closed it".into(),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return proto::error::io_reason(&e),
            }
            // A frame has begun: the rest of it is due within the I/O timeout.
            if let Err(e) = stream.tcp().set_read_timeout(Some(self.timeouts.io)) {
                return format!("cannot set a timeout: {}", proto::error::io_reason(&e));
            }
            match frame::read::<Response>(stream) {
                Ok(Response::Registered(_)) => last_heard = Instant::now(),
                Ok(Response::OpenData(id)) => {
                    last_heard = Instant::now();
                    self.open_data(relay, id, open_circuits);
                }
                Ok(Response::OpenPunch(id)) => {
                    last_heard = Instant::now();
                    self.punch(relay, id, open_circuits, punches);
                }
                Ok(Response::Error(e)) => {
                    return format!(
                        "the relay said: {} ({})",
                        proto::error::printable(&e.message),
                        e.kind.as_str()
                    );
                }
                Ok(other) => return format!("unexpected {} frame from the relay", other.name()),
                Err(e) => return e.to_string(),
            }
        }
    }

    /// Opens the data connection for circuit `id` on a thread of its own
    /// and serves the client's exchange on it, unless as many circuits as
    /// the node serves connections are open already.
    fn open_data(&self, relay: SocketAddr, id: u64, open_circuits: &Arc<AtomicUsize>) {
        if open_circuits.fetch_add(1, Ordering::AcqRel) >= self.server.max_connections {
            open_circuits.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(
                "circuit {id:016x} not taken: {} circuits open already",
                self.server.max_connections
            );
            return;
        }
        let service = Arc::clone(&self.service);
        let server = self.server.clone();
        let timeouts = self.timeouts;
        let to_relay = self.server.security.to_relay();
        let count = Arc::clone(open_circuits);
        let started = thread::Builder::new()
            .name("circuit".into())
            .spawn(move || {
                match net::circuit::join(relay, id, &timeouts, &to_relay) {
                    Ok(stream) => {
                        tracing::debug!("joined circuit {id:016x} at relay {relay}");
                        net::server::serve_stream(stream, relay, &*service, &server);
                    }
                    Err(e) => {
                        tracing::warn!("could not join circuit {id:016x} at relay {relay}: {e}")
                    }
                }
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = started {
            open_circuits.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(
                "cannot start a thread for circuit {id:016x}: {}",
                proto::error::io_reason(&e)
            );
        }
    }

    /// Punch `id` on a thread of its own: joined at the relay from a fresh
    /// port, then a direct connection to the client, served like an
    /// accepted one. Counted with the circuits (both are connections this
    /// node opened to serve), and capped at [`MAX_PUNCHES`] at once.
    fn punch(
        &self,
        relay: SocketAddr,
        id: u64,
        open_circuits: &Arc<AtomicUsize>,
        punches: &Arc<AtomicUsize>,
    ) {
        if punches.fetch_add(1, Ordering::AcqRel) >= MAX_PUNCHES {
            punches.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("punch {id:016x} not taken: {MAX_PUNCHES} punches under way already");
            return;
        }
        if open_circuits.fetch_add(1, Ordering::AcqRel) >= self.server.max_connections {
            open_circuits.fetch_sub(1, Ordering::AcqRel);
            punches.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(
                "punch {id:016x} not taken: {} connections open already",
                self.server.max_connections
            );
            return;
        }
        let service = Arc::clone(&self.service);
        let server = self.server.clone();
        let timeouts = self.timeouts;
        let to_relay = self.server.security.to_relay();
        let count = Arc::clone(open_circuits);
        let under_way = Arc::clone(punches);
        let started = thread::Builder::new().name("punch".into()).spawn(move || {
            let punched = net::punch::answer(relay, id, &timeouts, &to_relay);
            under_way.fetch_sub(1, Ordering::AcqRel);
            match punched {
                Ok((stream, client)) => {
                    tracing::debug!("punch {id:016x}: serving client {client} directly");
                    net::server::serve_stream(stream, client, &*service, &server);
                }
                // The client takes the relay's circuit: worth a line, not a warning.
                Err(why) => tracing::info!("punch {id:016x} failed: {why}"),
            }
            count.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = started {
            open_circuits.fetch_sub(1, Ordering::AcqRel);
            punches.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(
                "cannot start a thread for punch {id:016x}: {}",
                proto::error::io_reason(&e)
            );
        }
    }
}
