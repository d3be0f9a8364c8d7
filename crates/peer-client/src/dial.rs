//! How the client reaches a node: straight to its address when the relay
//! lists it as direct, or through a circuit at the relay when it lists it
//! as relayed (a node behind NAT). Either way the result is an ordinary
//! [`Connection`], and what is said over it does not change.

use proto::exchange::{self, Connection, Timeouts};
use proto::{NodeInfo, NodeMode, ProtoError};

/// Everything needed to reach a node: the relay (for relayed nodes) and the
/// timeouts of every socket.
#[derive(Debug, Clone)]
pub struct Dialer {
    pub relay_host: String,
    pub relay_port: u16,
    pub timeouts: Timeouts,
}

impl Dialer {
    /// Opens a connection to `node`, directly or through the relay.
    pub fn connect(&self, node: &NodeInfo) -> Result<Connection, ProtoError> {
        match node.mode {
            NodeMode::Direct => Connection::open(node.addr, &self.timeouts),
            NodeMode::Relayed => {
                let relay = exchange::resolve(&self.relay_host, self.relay_port)?;
                proto::circuit::open(&relay, node.addr, &self.timeouts)
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
