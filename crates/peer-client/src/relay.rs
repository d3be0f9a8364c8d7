//! The relays, as the client sees them: how to reach them (under the relay
//! key in a private network), and their list of active nodes with how each
//! is reached. Their index of who holds what is asked in [`crate::index`].
//!
//! A network may have several relays (`--relay HOST:PORT`, repeatable,
//! beside the positional one, as BEP 12 lets a torrent list several
//! trackers): nodes register with each, so any one of them can answer.
//! Every request goes to the relay that answered last (the first one at the
//! start), and to the next in the order given when that one cannot be
//! reached; only when none can is the relay [`Unreachable`]. A relay that
//! answers, even with a refusal, is not skipped: its answer is the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use net::exchange::{self, Timeouts};
use net::secure::{NodeKey, Security};
use proto::{ErrorKind, NodeEntry, NodeInfo, NodeMode, ProtoError, Request, Response};

use crate::dial::Dialer;

/// How a peer-node begins its refusal of a request meant for the relay.
const PEER_NODE_REFUSAL: &str = "this is a peer-node";

/// How to reach the relays.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The first relay (the positional arguments).
    pub host: String,
    pub port: u16,
    /// The others (`--relay HOST:PORT`), asked in this order after it.
    pub more: Vec<(String, u16)>,
    /// Which of them answered last (0: the first), shared by the clones.
    pub answered: Arc<AtomicUsize>,
    pub timeouts: Timeouts,
    /// Plain, or a private network's keys: the relay is asked under the
    /// relay key, nodes under the peer key.
    pub security: Security,
    /// `--node KEY`: fetch only from the node holding this static key.
    pub pin: Option<NodeKey>,
    /// Reach relayed nodes by hole punching first (off with `--no-punch`).
    pub punch: bool,
}

/// No relay could be reached (each one's reason is in the text): a fetch by
/// hash may then ask the DHT.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// `host:port`, with brackets around an IPv6 literal.
pub fn label(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `HOST:PORT` (`[V6]:PORT` for an IPv6 literal), for `--relay`.
pub fn parse_relay(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not HOST:PORT"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| format!("`{text}`: unclosed `[`"))?,
        None if host.contains(':') => {
            return Err(format!("`{text}`: write an IPv6 address as [ADDR]:PORT"));
        }
        None => host,
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{port}` is not a port (1-65535)"))?;
    Ok((host.to_string(), port))
}

impl Relay {
    /// Every relay, in the order given: the positional one first.
    pub fn all(&self) -> Vec<(String, u16)> {
        std::iter::once((self.host.clone(), self.port))
            .chain(self.more.iter().cloned())
            .collect()
    }

    /// Adds a relay after the others (in the first place when there is
    /// none yet: a link alone); false when it is one of them already.
    pub fn add(&mut self, host: &str, port: u16) -> bool {
        if self.host.is_empty() {
            self.host = host.to_string();
            self.port = port;
        } else if self.all().iter().any(|(h, p)| h == host && *p == port) {
            return false;
        } else {
            self.more.push((host.to_string(), port));
        }
        true
    }

    /// The relay asked first now: the one that answered last.
    fn current(&self) -> (String, u16) {
        let all = self.all();
        let at = self.answered.load(Ordering::Relaxed).min(all.len() - 1);
        all[at].clone()
    }

    /// The relay that answered last, as `host:port`.
    pub fn label(&self) -> String {
        let (host, port) = self.current();
        label(&host, port)
    }

    /// How to reach the nodes the relays list (a relayed node through the
    /// relay that answered last: nodes register with every relay).
    pub fn dialer(&self) -> Dialer {
        let (relay_host, relay_port) = self.current();
        Dialer {
            relay_host,
            relay_port,
            timeouts: self.timeouts,
            security: self.security.clone(),
            pin: self.pin,
            punch: self.punch,
            routes: Default::default(),
            admitted_by_peer_key: Arc::default(),
        }
    }

    /// The relayed nodes this relay would try to punch through to for this
    /// client (`ListPunchable`); none from an older relay, which does not
    /// know the request.
    pub fn punchable(&self) -> Vec<std::net::SocketAddr> {
        match self.ask(&Request::ListPunchable) {
            Ok(Response::Nodes(nodes)) => nodes.into_iter().map(|n| n.addr).collect(),
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::debug!("no punchable list: {e}");
                Vec::new()
            }
        }
    }

    /// Asks the relay for the active nodes and how each is reached (phase
    /// 2). An older relay, which does not know the long list, is asked for
    /// the plain one: every node in it is direct.
    pub fn nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        match self.ask(&Request::ListNodesLong)? {
            Response::NodesLong(nodes) => Ok(nodes),
            Response::Error(e) if e.kind == ErrorKind::BadRequest => {
                tracing::debug!(
                    "relay {} has no long list ({}); asking for the plain one",
                    self.label(),
                    e.message
                );
                self.plain_nodes()
            }
            other => self.list_refused(other),
        }
    }

    fn plain_nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        match self.ask(&Request::ListNodes)? {
            Response::Nodes(nodes) => Ok(nodes
                .into_iter()
                .map(|n: NodeEntry| NodeInfo {
                    addr: n.addr,
                    age_secs: n.age_secs,
                    mode: NodeMode::Direct,
                    key: None,
                })
                .collect()),
            other => self.list_refused(other),
        }
    }

    fn list_refused<T>(&self, response: Response) -> anyhow::Result<T> {
        Err(self.refused("list request", response))
    }

    /// Why an answer to a `what` is not the one wanted: the relay's refusal,
    /// or an answer of another kind.
    pub(crate) fn refused(&self, what: &str, response: Response) -> anyhow::Error {
        match response {
            // Only a private network refuses as unauthorized: this client
            // has no secret, and the relay requires one.
            Response::Error(e) if e.kind == ErrorKind::Unauthorized => anyhow::anyhow!(
                "relay {} refused the handshake: {}",
                self.label(),
                proto::error::printable(&e.message)
            ),
            Response::Error(e) => anyhow::anyhow!(
                "relay {} refused: {} ({})",
                self.label(),
                e.message,
                e.kind.as_str()
            ),
            other => anyhow::anyhow!(
                "relay {} answered a {} to a {what}; is that a relay?",
                self.label(),
                other.name()
            ),
        }
    }

    /// One exchange with a relay (under the relay key in a private
    /// network): the one that answered last, then the others in order while
    /// they cannot be reached. [`Unreachable`] when none can.
    pub(crate) fn ask(&self, request: &Request) -> anyhow::Result<Response> {
        let all = self.all();
        let first = self.answered.load(Ordering::Relaxed).min(all.len() - 1);
        let mut failures = Vec::new();
        for at in (first..all.len()).chain(0..first) {
            let (host, port) = &all[at];
            match self.ask_one(host, *port, request) {
                Ok(response) => {
                    if at != first {
                        tracing::info!(
                            "relay {} answered ({}); asking it from now on",
                            label(host, *port),
                            failures.join("; ")
                        );
                    }
                    self.answered.store(at, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(Asked::Unreachable(why)) => failures.push(why),
                Err(Asked::Failed(e)) => return Err(e),
            }
        }
        let why = match failures.as_slice() {
            [one] => one.clone(),
            _ => format!(
                "could not reach any of {} relays: {}",
                all.len(),
                failures.join("; ")
            ),
        };
        Err(Unreachable(why).into())
    }

    fn ask_one(&self, host: &str, port: u16, request: &Request) -> Result<Response, Asked> {
        let name = label(host, port);
        let unreachable =
            |why: String| Asked::Unreachable(format!("could not reach relay {name}: {why}"));
        let addrs = exchange::resolve(host, port)
            .map_err(|e| unreachable(format!("cannot resolve: {}", proto::error::io_reason(&e))))?;
        let to_relay = self.security.to_relay();
        let (_, response) = exchange::call_any_via(&addrs, request, &self.timeouts, &to_relay)
            .map_err(|e| match e {
                ProtoError::Io(_) | ProtoError::Timeout | ProtoError::Closed => {
                    unreachable(e.to_string())
                }
                // "relay 127.0.0.1:7000 refused the handshake: wrong or missing secret"
                e if e.is_handshake() => Asked::Failed(anyhow::anyhow!("relay {name} {e}")),
                // It answered, but not with anything we can use.
                other => Asked::Failed(anyhow::anyhow!("relay {name} sent a bad answer: {other}")),
            })?;
        // A node refuses every request meant for the relay with this
        // BadRequest (crates/peer-node, service.rs). Taken for an older
        // relay's "unknown request", it would send the client asking nodes
        // in turn, and fail there: say once what the address is.
        if let Response::Error(e) = &response
            && e.kind == ErrorKind::BadRequest
            && e.message.starts_with(PEER_NODE_REFUSAL)
        {
            return Err(Asked::Failed(anyhow::anyhow!(
                "{name} is a peer-node, not a relay"
            )));
        }
        Ok(response)
    }
}

/// How asking one relay failed.
enum Asked {
    /// No connection or no answer: the next relay is asked.
    Unreachable(String),
    /// It answered, but not usably: that is the answer.
    Failed(anyhow::Error),
}
