//! Telling the relay we are here: register, refresh on a heartbeat, and
//! unregister on the way out. Each of these is its own short exchange.
//!
//! The relay keeps its table in memory only, so a register is also the way
//! back into the table after the relay restarts: the next heartbeat (or the
//! next retry, if the node saw the relay down) lists the node again.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use net::exchange::{self, Timeouts};
use net::secure::Dial;
use proto::{ErrorKind, ProtoError, Registered, Registration, Request, Response};

/// Shortest pause between two refreshes, whatever the TTL says.
const MIN_REFRESH: Duration = Duration::from_millis(100);
/// First pause after a failed registration; it doubles up to the refresh
/// interval, so a relay that comes back finds every node within one heartbeat.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// The relay and what to announce to it.
#[derive(Debug, Clone)]
pub struct Announcer {
    pub relay_host: String,
    pub relay_port: u16,
    pub registration: Registration,
    /// Refresh at least this often (and at least three times per TTL).
    pub heartbeat: Duration,
    pub timeouts: Timeouts,
    /// How connections to the relay open: plain, or under the relay key.
    pub dial: Dial,
    /// Shared by every clone: whether we are leaving, and whether a
    /// registration is on the wire.
    gate: Arc<Gate>,
}

/// Keeps a heartbeat from reaching the relay after our unregister, which
/// would list a node that is gone until its TTL runs out.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    leaving: bool,
    registering: bool,
}

/// A failure to register.
#[derive(Debug)]
pub enum AnnounceError {
    /// The relay could not be reached or answered nonsense: try again later.
    Unreachable(String),
    /// The relay refused us for a reason retrying will not fix (bad token).
    Refused(String),
    /// The relay cannot connect to us (NAT, firewall): we must be relayed.
    NeedsRelay(String),
    /// We are leaving: [`Announcer::leave`] was called.
    Leaving,
}

impl std::fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnnounceError::Unreachable(why)
            | AnnounceError::Refused(why)
            | AnnounceError::NeedsRelay(why) => f.write_str(why),
            AnnounceError::Leaving => f.write_str("leaving"),
        }
    }
}

impl Announcer {
    pub fn new(
        relay_host: String,
        relay_port: u16,
        registration: Registration,
        heartbeat: Duration,
        timeouts: Timeouts,
    ) -> Announcer {
        Announcer {
            relay_host,
            relay_port,
            registration,
            heartbeat,
            timeouts,
            dial: Dial::Plain,
            gate: Arc::default(),
        }
    }

    /// Talks to the relay as `dial` says (in a private network, under the
    /// relay key).
    pub fn with_dial(mut self, dial: Dial) -> Announcer {
        self.dial = dial;
        self
    }

    pub fn relay_label(&self) -> String {
        match self.relay_host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{}]:{}", self.relay_host, self.relay_port),
            Err(_) => format!("{}:{}", self.relay_host, self.relay_port),
        }
    }

    /// One registration (or refresh) exchange; refused once we are leaving.
    pub fn register(&self) -> Result<Registered, AnnounceError> {
        {
            let mut state = self.gate.lock();
            if state.leaving {
                return Err(AnnounceError::Leaving);
            }
            state.registering = true;
        }
        let result = self.call(&Request::Register(self.registration.clone()));
        self.gate.lock().registering = false;
        self.gate.changed.notify_all();
        match result? {
            Response::Registered(registered) => Ok(registered),
            Response::Error(e) if e.kind == ErrorKind::BadRequest => Err(self.not_a_relay(e)),
            other => Err(self.refusal(other)),
        }
    }

    /// A registration answered `BadRequest`: from a peer-node (or anything
    /// else that speaks the protocol but is no relay), that is final; from
    /// a relay, only a passing failure (a request cut off on a bad link)
    /// can cause it. One `ListNodes`, which every relay answers with its
    /// list, tells the two apart.
    fn not_a_relay(&self, refusal: proto::ErrorReply) -> AnnounceError {
        let label = self.relay_label();
        match self.call(&Request::ListNodes) {
            Ok(Response::Nodes(_)) => AnnounceError::Unreachable(format!(
                "{} ({})",
                refusal.message,
                refusal.kind.as_str()
            )),
            Err(e) => e,
            Ok(_) => AnnounceError::Refused(format!(
                "{label} is not a relay: it answered the registration with \"{}\" ({}); \
                 check the relay's address and port",
                refusal.message,
                refusal.kind.as_str()
            )),
        }
    }

    /// Asks the relay to drop us now.
    pub fn unregister(&self) -> Result<(), AnnounceError> {
        match self.call(&Request::Unregister(self.registration.clone()))? {
            Response::Unregistered => Ok(()),
            other => Err(self.refusal(other)),
        }
    }

    /// Stops the heartbeat for good, waits (at most `wait`) for a
    /// registration already on the wire, then unregisters. Waiting matters: a
    /// refresh the relay handled after our unregister would list us again.
    pub fn leave(&self, wait: Duration) -> Result<(), AnnounceError> {
        let deadline = Instant::now() + wait;
        let mut state = self.gate.lock();
        state.leaving = true;
        while state.registering {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .gate
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(state);
        self.unregister()
    }

    /// Registers, then refreshes until [`Announcer::leave`]; retries with
    /// capped backoff while the relay is unreachable. Returns a refusal
    /// retrying cannot fix, or [`AnnounceError::Leaving`].
    pub fn run(&self) -> AnnounceError {
        self.run_with(|| {})
    }

    /// As [`Announcer::run`], calling `listed` each time the relay lists
    /// this node anew (the first registration, and after an outage).
    pub fn run_with(&self, listed: impl Fn()) -> AnnounceError {
        let relay = self.relay_label();
        let mut registered_as: Option<SocketAddr> = None;
        let mut retry = FIRST_RETRY;
        // Until the relay tells us its TTL, the heartbeat is all we know.
        let mut every = self.heartbeat.max(MIN_REFRESH);
        loop {
            match self.register() {
                Ok(reg) => {
                    every = self.refresh_interval(reg.ttl_secs);
                    if registered_as != Some(reg.addr) {
                        tracing::info!(
                            "registered with relay {relay} as {} (ttl {}s, refreshing every {})",
                            reg.addr,
                            reg.ttl_secs,
                            secs(every)
                        );
                        self.warn_if_not_as_advertised(reg.addr);
                        listed();
                    } else {
                        tracing::debug!("refreshed with relay {relay}");
                    }
                    registered_as = Some(reg.addr);
                    retry = FIRST_RETRY;
                    thread::sleep(every);
                }
                Err(AnnounceError::Unreachable(why)) => {
                    // Log "registered" again once the relay answers: after an
                    // outage it may have restarted with an empty table.
                    registered_as = None;
                    crate::metrics::registration(crate::metrics::Registration::Retrying);
                    tracing::warn!(
                        "could not register with relay {relay}: {why}; retrying in {}",
                        secs(retry)
                    );
                    thread::sleep(retry);
                    retry = (retry * 2).min(every.max(FIRST_RETRY));
                }
                Err(other) => return other,
            }
        }
    }

    /// The heartbeat, shortened so that a node refreshes at least three times
    /// per TTL: a lost refresh or two never gets it dropped.
    pub fn refresh_interval(&self, ttl_secs: u32) -> Duration {
        let third = Duration::from_secs(u64::from(ttl_secs)) / 3;
        self.heartbeat.min(third).max(MIN_REFRESH)
    }

    /// Says so when the relay did not list us under the host we advertised.
    fn warn_if_not_as_advertised(&self, listed: SocketAddr) {
        if let Some(adv) = self.registration.advertised_ip
            && !adv.is_unspecified()
            && adv.to_canonical() != listed.ip()
        {
            tracing::warn!(
                "advertised host {adv} was not honoured: the relay lists this node under \
                 the address it sees, {}, unless it runs with --trust-advertised",
                listed.ip()
            );
        }
    }

    /// One exchange with the relay (the catalog's updates use it too).
    pub fn call_relay(&self, request: &Request) -> Result<Response, String> {
        self.call(request).map_err(|e| e.to_string())
    }

    fn call(&self, request: &Request) -> Result<Response, AnnounceError> {
        let addrs = exchange::resolve(&self.relay_host, self.relay_port).map_err(|e| {
            AnnounceError::Unreachable(format!(
                "cannot resolve {}: {}",
                self.relay_host,
                proto::error::io_reason(&e)
            ))
        })?;
        exchange::call_any_via(&addrs, request, &self.timeouts, &self.dial)
            .map(|(_, response)| response)
            .map_err(
                |e: ProtoError| match final_refusal(&e, &self.relay_label()) {
                    Some(why) => AnnounceError::Refused(why),
                    None => AnnounceError::Unreachable(e.to_string()),
                },
            )
    }

    fn refusal(&self, response: Response) -> AnnounceError {
        match response {
            Response::Error(e) if e.kind == ErrorKind::Unreachable => {
                AnnounceError::NeedsRelay(format!("relay {}: {}", self.relay_label(), e.message))
            }
            Response::Error(e) if e.kind == ErrorKind::Unauthorized => AnnounceError::Refused(
                format!("relay {} refused: {}", self.relay_label(), e.message),
            ),
            Response::Error(e) if e.kind == ErrorKind::UnsupportedVersion => {
                AnnounceError::Refused(format!("relay {}: {}", self.relay_label(), e.message))
            }
            Response::Error(e) => {
                AnnounceError::Unreachable(format!("{} ({})", e.message, e.kind.as_str()))
            }
            // A relay answers a registration with `Registered` or an error,
            // whatever its version: this is some other program.
            other => AnnounceError::Refused(format!(
                "{} is not a relay: it answered the registration with a {}; check the relay's \
                 address and port",
                self.relay_label(),
                other.name()
            )),
        }
    }
}

/// The line for a failed exchange with the relay that retrying cannot fix,
/// or None for one worth retrying (no connection, a timeout, a reset: a
/// relay down, restarting or overloaded). Final: a matter of keys (a wrong
/// or missing secret, like a wrong token), and a peer that is no relay of
/// this protocol version (an HTTP server, a TLS port).
pub(crate) fn final_refusal(e: &ProtoError, relay: &str) -> Option<String> {
    match e {
        e if e.is_handshake() => Some(format!("relay {relay} {e}")),
        ProtoError::BadMagic(_) => Some(format!(
            "{relay} is {e}; check the relay's address and port"
        )),
        ProtoError::UnsupportedVersion(_) => Some(format!("relay {relay}: {e}")),
        _ => None,
    }
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        // Two booleans cannot be left half-updated: a poisoned lock is fine.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pause for the log: "0.25s", "1s", "3.33s".
fn secs(d: Duration) -> String {
    let text = format!("{:.2}", d.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcer(heartbeat: Duration) -> Announcer {
        Announcer::new(
            "127.0.0.1".into(),
            1,
            Registration {
                port: 4000,
                advertised_ip: None,
                token: None,
            },
            heartbeat,
            Timeouts::default(),
        )
    }

    #[test]
    fn refreshes_at_least_three_times_per_ttl() {
        let a = announcer(Duration::from_secs(10));
        assert_eq!(a.refresh_interval(30), Duration::from_secs(10));
        assert_eq!(a.refresh_interval(9), Duration::from_secs(3));
        assert_eq!(a.refresh_interval(1), Duration::from_secs(1) / 3);
        assert_eq!(a.refresh_interval(0), MIN_REFRESH);
        let fast = announcer(Duration::from_millis(500));
        assert_eq!(fast.refresh_interval(30), Duration::from_millis(500));
    }

    #[test]
    fn no_registration_after_leaving() {
        let a = announcer(Duration::from_secs(10));
        // Nobody listens on port 1: the unregister fails, the gate stays shut.
        let _ = a.clone().leave(Duration::from_millis(10));
        assert!(matches!(a.register(), Err(AnnounceError::Leaving)));
    }

    #[test]
    fn pauses_read_plainly() {
        assert_eq!(secs(Duration::from_millis(250)), "0.25s");
        assert_eq!(secs(Duration::from_secs(1)), "1s");
        assert_eq!(secs(Duration::from_secs(10) / 3), "3.33s");
        assert_eq!(secs(Duration::from_millis(500)), "0.5s");
    }
}
