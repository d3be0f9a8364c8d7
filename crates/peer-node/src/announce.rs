//! Telling the relay we are here: register, refresh on a heartbeat, and
//! unregister on the way out. Each of these is its own short exchange.

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use proto::exchange::{self, Timeouts};
use proto::{ErrorKind, ProtoError, Registered, Registration, Request, Response};

/// Shortest pause between two refreshes, whatever the TTL says.
const MIN_REFRESH: Duration = Duration::from_millis(100);
/// First pause after a failed registration; it doubles up to the heartbeat.
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
}

/// A failure to register.
#[derive(Debug)]
pub enum AnnounceError {
    /// The relay could not be reached or answered nonsense: try again later.
    Unreachable(String),
    /// The relay refused us for a reason retrying will not fix (bad token).
    Refused(String),
}

impl std::fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnnounceError::Unreachable(why) | AnnounceError::Refused(why) => f.write_str(why),
        }
    }
}

impl Announcer {
    pub fn relay_label(&self) -> String {
        match self.relay_host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{}]:{}", self.relay_host, self.relay_port),
            Err(_) => format!("{}:{}", self.relay_host, self.relay_port),
        }
    }

    /// One registration (or refresh) exchange.
    pub fn register(&self) -> Result<Registered, AnnounceError> {
        match self.call(&Request::Register(self.registration.clone()))? {
            Response::Registered(registered) => Ok(registered),
            other => Err(self.refusal(other)),
        }
    }

    /// Asks the relay to drop us now.
    pub fn unregister(&self) -> Result<(), AnnounceError> {
        match self.call(&Request::Unregister(self.registration.clone()))? {
            Response::Unregistered => Ok(()),
            other => Err(self.refusal(other)),
        }
    }

    /// Registers, then refreshes forever; retries with capped backoff while
    /// the relay is unreachable. Returns only on a refusal retrying cannot fix.
    pub fn run(&self) -> AnnounceError {
        let relay = self.relay_label();
        let mut registered_as: Option<SocketAddr> = None;
        let mut retry = FIRST_RETRY;
        loop {
            match self.register() {
                Ok(reg) => {
                    let every = self.refresh_interval(reg.ttl_secs);
                    if registered_as != Some(reg.addr) {
                        tracing::info!(
                            "registered with relay {relay} as {} (ttl {}s, refreshing every {:.1}s)",
                            reg.addr,
                            reg.ttl_secs,
                            every.as_secs_f64()
                        );
                    } else {
                        tracing::debug!("refreshed with relay {relay}");
                    }
                    registered_as = Some(reg.addr);
                    retry = FIRST_RETRY;
                    thread::sleep(every);
                }
                Err(AnnounceError::Refused(why)) => return AnnounceError::Refused(why),
                Err(AnnounceError::Unreachable(why)) => {
                    registered_as = None;
                    tracing::warn!(
                        "could not register with relay {relay}: {why}; retrying in {:.1}s",
                        retry.as_secs_f64()
                    );
                    thread::sleep(retry);
                    retry = (retry * 2).min(self.heartbeat.max(FIRST_RETRY));
                }
            }
        }
    }

    /// The heartbeat, shortened so that a node refreshes at least three times
    /// per TTL: a lost refresh or two never gets it dropped.
    pub fn refresh_interval(&self, ttl_secs: u32) -> Duration {
        let third = Duration::from_secs(u64::from(ttl_secs)) / 3;
        self.heartbeat.min(third).max(MIN_REFRESH)
    }

    fn call(&self, request: &Request) -> Result<Response, AnnounceError> {
        let addrs = exchange::resolve(&self.relay_host, self.relay_port).map_err(|e| {
            AnnounceError::Unreachable(format!(
                "cannot resolve {}: {}",
                self.relay_host,
                proto::error::io_reason(&e)
            ))
        })?;
        exchange::call_any(&addrs, request, &self.timeouts)
            .map(|(_, response)| response)
            .map_err(|e: ProtoError| AnnounceError::Unreachable(e.to_string()))
    }

    fn refusal(&self, response: Response) -> AnnounceError {
        match response {
            Response::Error(e) if e.kind == ErrorKind::Unauthorized => {
                AnnounceError::Refused(format!("relay {}: {}", self.relay_label(), e.message))
            }
            Response::Error(e) => AnnounceError::Unreachable(format!("{} ({})", e.message, e.kind.as_str())),
            other => AnnounceError::Unreachable(format!("unexpected answer {other:?}")),
        }
    }
}
