//! How the client reaches a node: straight to its address when the relay
//! lists it as direct, or through a circuit at the relay when it lists it
//! as relayed (a node behind NAT). Either way the result is an ordinary
//! [`Connection`], and what is said over it does not change.

use net::exchange::{self, Connection, Timeouts};
use net::secure::{NodeKey, Security};
use proto::{NodeInfo, NodeMode, ProtoError};

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
}

impl Dialer {
    /// Opens a connection to `node`, directly or through the relay.
    /// In a private network the node must prove the key it is listed with
    /// (or the pinned one): a node listed without a key is refused.
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
        if self.security.is_private() && expect.is_none() {
            return Err(ProtoError::HandshakeFailed(
                "the relay lists no key for it, so it cannot be checked; skipped".into(),
            ));
        }
        let to_node = self.security.to_node(expect);
        match node.mode {
            NodeMode::Direct => Connection::dial(node.addr, &self.timeouts, &to_node),
            NodeMode::Relayed => {
                let relay = exchange::resolve(&self.relay_host, self.relay_port)?;
                let to_relay = self.security.to_relay();
                net::circuit::open(&relay, node.addr, &self.timeouts, &to_relay, &to_node)
            }
            NodeMode::Other(code) => Err(ProtoError::Malformed(format!(
                "the relay lists it with a way to reach it that this client does not know ({code})"
            ))),
        }
    }
}

/// What follows a node's address in status lines: how it was reached.
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
