//! How the client reaches a node: straight to its address when the relay
//! lists it as direct; when it lists it as relayed (a node behind NAT),
//! directly through the NAT with the relay's help (hole punching), or
//! through a circuit at the relay when that fails or is off. Either way the
//! result is an ordinary [`Connection`], and what is said over it does not
//! change.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::exchange::{self, Connection, Route, Timeouts};
use net::secure::{NodeKey, Security};
use proto::{NodeInfo, NodeMode, ProtoError};

/// The longest a holder found on the DHT may keep the client waiting: to
/// accept, and then for each read or write (the handshake, the answer, each
/// piece of the body). Anyone can announce any address on the DHT, so such
/// a holder may be a stranger that accepts and never answers; without this
/// it would cost `--timeout` (30 s by default) before the fetch moves on.
/// Holders a relay lists keep the full `--timeout`: they registered and
/// answer the relay's dial-back. 5 s is longer than any read from a working
/// node waits on a sane path (a node answers a request at once, and sends
/// its body as fast as the path takes it), and a holder that stalls longer
/// mid-body has its ranges moved to another holder, as any broken holder
/// does (crate::plan).
pub const DHT_HOLDER_WAIT: Duration = Duration::from_secs(5);

/// Everything needed to reach a node: the relay (for relayed nodes) and the
/// timeouts of every socket.
#[derive(Debug, Clone)]
pub struct Dialer {
    pub relay_host: String,
    pub relay_port: u16,
    pub timeouts: Timeouts,
    /// Plain, or a private network: the relay under the relay key, the
    /// node under the peer key, end to end through a circuit too.
    pub security: Security,
    /// `--node KEY`: the only node key accepted.
    pub pin: Option<NodeKey>,
    /// Try a hole punch before a circuit (off with `--no-punch`).
    pub punch: bool,
    /// How each node was reached last, for the status lines.
    pub routes: Routes,
    /// Holders found on the DHT, which no relay lists with a key: in a
    /// private network, completing the handshake under the network's peer
    /// key is what admits them (any node key is accepted, unless pinned).
    /// They are strangers, so each wait on them is bounded by
    /// [`DHT_HOLDER_WAIT`] rather than `--timeout`.
    pub admitted_by_peer_key: Arc<Vec<SocketAddr>>,
}

/// How each node was reached last; shared by a dialer's clones.
#[derive(Debug, Clone, Default)]
pub struct Routes(Arc<Mutex<HashMap<SocketAddr, Route>>>);

impl Routes {
    fn note(&self, node: SocketAddr, route: Route) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node, route);
    }

    fn get(&self, node: SocketAddr) -> Option<Route> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node)
            .copied()
    }
}

impl Dialer {
    /// Opens a connection to `node`: directly, hole-punched, or through
    /// the relay. In a private network the node must prove the key it is
    /// listed with (or the pinned one): a node listed without a key is
    /// refused.
    pub fn connect(&self, node: &NodeInfo) -> Result<Connection, ProtoError> {
        let expect = match (self.pin, node.key) {
            (Some(pin), Some(listed)) if listed != pin => {
                return Err(ProtoError::HandshakeFailed(format!(
                    "is listed with key {listed}, not the pinned {pin}; skipped"
                )));
            }
            (Some(pin), _) => Some(pin),
            (None, key) => key,
        };
        if self.security.is_private()
            && expect.is_none()
            && !self.admitted_by_peer_key.contains(&node.addr)
        {
            return Err(ProtoError::HandshakeFailed(
                "the relay lists no key for it, so it cannot be checked; skipped".into(),
            ));
        }
        let to_node = self.security.to_node(expect);
        let conn = match node.mode {
            NodeMode::Direct => Connection::dial(node.addr, &self.timeouts_for(node), &to_node)?,
            NodeMode::Relayed => {
                let relay = exchange::resolve(&self.relay_host, self.relay_port)?;
                let to_relay = self.security.to_relay();
                if self.punch {
                    net::punch::open(&relay, node.addr, &self.timeouts, &to_relay, &to_node)?
                } else {
                    net::circuit::open(&relay, node.addr, &self.timeouts, &to_relay, &to_node)?
                }
            }
            NodeMode::Other(code) => {
                return Err(ProtoError::Malformed(format!(
                    "the relay lists it with a way to reach it that this client does not know ({code})"
                )));
            }
        };
        self.routes.note(node.addr, conn.route());
        // Ctrl-C during a `get` at the prompt cuts it.
        crate::interrupt::watch(&conn);
        Ok(conn)
    }

    /// The timeouts of a connection to `node`: shorter for a stranger
    /// found on the DHT ([`DHT_HOLDER_WAIT`]).
    pub fn timeouts_for(&self, node: &NodeInfo) -> Timeouts {
        if self.admitted_by_peer_key.contains(&node.addr) {
            Timeouts {
                connect: self.timeouts.connect.min(DHT_HOLDER_WAIT),
                io: self.timeouts.io.min(DHT_HOLDER_WAIT),
            }
        } else {
            self.timeouts
        }
    }

    /// What follows a node's address in status lines: how it was reached
    /// last (before the first connection, how it is listed).
    pub fn via(&self, node: &NodeInfo) -> &'static str {
        match (node.mode, self.routes.get(node.addr)) {
            (NodeMode::Relayed, Some(Route::HolePunched)) => " (direct, hole-punched)",
            (NodeMode::Relayed, _) => " (via relay)",
            _ => "",
        }
    }

    /// A status label made before `node` was reached ("ADDR (via relay),
    /// node 2 of 3"), saying how it was reached after all.
    pub fn restate(&self, label: &str, node: &NodeInfo) -> String {
        let rest = label
            .split_once(", node ")
            .map(|(_, rest)| format!(", node {rest}"))
            .unwrap_or_default();
        format!("{}{}{rest}", node.addr, self.via(node))
    }
}

/// What follows a node's address before it is reached: how it is listed.
pub fn via(node: &NodeInfo) -> &'static str {
    match node.mode {
        NodeMode::Relayed => " (via relay)",
        _ => "",
    }
}

/// How status lines name the `i`th (from 0) of `total` nodes asked in
/// turn: "10.0.0.2:7001 (via relay), node 2 of 3".
pub fn label(node: &NodeInfo, i: usize, total: usize) -> String {
    format!("{}{}, node {} of {total}", node.addr, via(node), i + 1)
}
