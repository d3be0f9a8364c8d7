//! Dial-back: before listing a node as direct, the relay connects to the
//! address it would list and says `Hello`. Any well-formed answer proves a
//! node listens there (an older node's `BadRequest` for the unknown tag
//! too); no connection, or no answer within the timeout, means a client
//! could not connect either (NAT, a firewall, or nothing listening), so the
//! registration is refused as unreachable and the node may ask to be
//! relayed. This also keeps bogus registrations, which name ports where no
//! node listens, out of the list.
//!
//! In a private network the dial-back is a handshake under the relay key
//! that must prove the static key the registration proved: the node at the
//! address is the one that registered, not a neighbour on the same host.
//!
//! Results are cached per address (and key), so a heartbeat costs no connection:
//! success for [`RECHECK`], failure for [`RETRY`] (a flood of registrations
//! for one dead address costs one dial-back per [`RETRY`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use net::exchange::{Connection, Timeouts};
use net::secure::{Dial, NodeKey, Security};
use proto::{Request, Response};

/// How long a successful dial-back is trusted before the next heartbeat
/// checks again.
pub const RECHECK: Duration = Duration::from_secs(300);

/// How long a failed dial-back stands before the address is tried again.
pub const RETRY: Duration = Duration::from_secs(10);

/// How long the relay waits for the connection, and then for the answer.
pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// Most addresses remembered; past it, stale results are forgotten first.
const MAX_CACHED: usize = 200_000;

/// The dial-back checker with its cache; cheap to clone.
#[derive(Clone)]
pub struct DialBack {
    timeout: Duration,
    security: Security,
    cache: Arc<Mutex<Cache>>,
}

/// Results by address and, in a private network, the key to be proven.
type Cache = HashMap<(SocketAddr, Option<NodeKey>), Checked>;

#[derive(Clone)]
struct Checked {
    at: Instant,
    result: Result<(), String>,
}

impl DialBack {
    pub fn new(timeout: Duration) -> DialBack {
        DialBack::with_security(timeout, Security::Plain)
    }

    /// A dial-back in a private network: a handshake under the relay key.
    pub fn with_security(timeout: Duration, security: Security) -> DialBack {
        DialBack {
            timeout,
            security,
            cache: Arc::default(),
        }
    }

    /// Whether a node (holding `key`, in a private network) answers at
    /// `addr`, from the cache while it is fresh. The error says why not,
    /// for the node and the log.
    pub fn check(&self, addr: SocketAddr, key: Option<NodeKey>) -> Result<(), String> {
        let now = Instant::now();
        if let Some(c) = self.lock().get(&(addr, key)) {
            let fresh_for = if c.result.is_ok() { RECHECK } else { RETRY };
            if now.duration_since(c.at) < fresh_for {
                return c.result.clone();
            }
        }
        let dial = match self.security.to_relay() {
            Dial::Secure { private, kind, .. } => Dial::Secure {
                private,
                kind,
                expect: key,
            },
            Dial::Plain => Dial::Plain,
        };
        let result = probe(addr, self.timeout, &dial);
        crate::metrics::dialed_back(result.is_ok());
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| {
                let fresh_for = if c.result.is_ok() { RECHECK } else { RETRY };
                now.duration_since(c.at) < fresh_for
            });
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            (addr, key),
            Checked {
                at: now,
                result: result.clone(),
            },
        );
        result
    }

    /// Forgets `addr`, so its next registration is checked afresh (after
    /// the node behind it left).
    pub fn forget(&self, addr: SocketAddr) {
        self.lock().retain(|(a, _), _| *a != addr);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Inserts and removals of whole entries: never half-updated.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The dial-back of a client's punching port (crate::rendezvous): whether
/// anything that speaks the protocol answers `Hello` at `addr`, under the
/// relay key in a private network. Never cached here: the port is new at
/// every punch.
pub(crate) fn probe_client(
    addr: SocketAddr,
    timeouts: Timeouts,
    security: &Security,
) -> Result<(), String> {
    probe_with(addr, timeouts, &security.to_relay())
}

/// One dial-back: connect (and shake hands, in a private network), send
/// `Hello`, read one response frame.
fn probe(addr: SocketAddr, timeout: Duration, dial: &Dial) -> Result<(), String> {
    let timeouts = Timeouts {
        connect: timeout,
        io: timeout,
    };
    probe_with(addr, timeouts, dial)
}

fn probe_with(addr: SocketAddr, timeouts: Timeouts, dial: &Dial) -> Result<(), String> {
    let mut conn = Connection::open(addr, &timeouts)
        .map_err(|e| format!("cannot connect: {e}"))?
        .secure(dial)
        .map_err(|e| format!("the node there {e}"))?;
    let answered = conn.request(&Request::Hello);
    drop(conn);
    match answered {
        Ok(Response::Error(e))
            if dial_is_secure(dial) && e.kind == proto::ErrorKind::Unauthorized =>
        {
            Err(format!("the node there refused: {}", e.message))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("no node answered: {e}")),
    }
}

fn dial_is_secure(dial: &Dial) -> bool {
    matches!(dial, Dial::Secure { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::frame;
    use std::io::Read;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn a_port_where_nothing_listens_fails_and_the_failure_is_cached() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dial = DialBack::new(TIMEOUT);
        let why = dial.check(addr, None).unwrap_err();
        assert!(why.contains("connection refused"), "{why}");
        // Something listens now, but the failure stands for RETRY.
        let _listener = TcpListener::bind(addr).unwrap();
        assert_eq!(dial.check(addr, None).unwrap_err(), why);
        dial.forget(addr);
    }

    #[test]
    fn a_listener_that_does_not_speak_the_protocol_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let _ = s.read(&mut [0u8; 64]);
                let _ = std::io::Write::write_all(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let why = DialBack::new(TIMEOUT).check(addr, None).unwrap_err();
        assert!(why.contains("not a p2p-share peer"), "{why}");
    }

    #[test]
    fn any_protocol_answer_proves_a_node_and_is_cached() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            // Exactly one connection: a second check must come from the cache.
            let (mut s, _) = listener.accept().unwrap();
            let _ = frame::read::<Request>(&mut s);
            // An older node answers the unknown tag with BadRequest.
            frame::write(
                &mut s,
                &Response::error(proto::ErrorKind::BadRequest, "unknown message tag 10"),
            )
            .unwrap();
        });
        let dial = DialBack::new(TIMEOUT);
        assert_eq!(dial.check(addr, None), Ok(()));
        server.join().unwrap();
        assert_eq!(dial.check(addr, None), Ok(()));
    }
}
