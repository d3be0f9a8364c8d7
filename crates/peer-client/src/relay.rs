//! The relay, as the client sees it: how to reach it (under the relay key
//! in a private network), and its list of active nodes with how each is
//! reached. Its index of who holds what is asked in [`crate::index`].

use net::exchange::{self, Timeouts};
use net::secure::{NodeKey, Security};
use proto::{ErrorKind, NodeEntry, NodeInfo, NodeMode, ProtoError, Request, Response};

use crate::dial::Dialer;

/// How to reach the relay.
#[derive(Debug, Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub timeouts: Timeouts,
    /// Plain, or a private network's keys: the relay is asked under the
    /// relay key, nodes under the peer key.
    pub security: Security,
    /// `--node KEY`: fetch only from the node holding this static key.
    pub pin: Option<NodeKey>,
}

impl Relay {
    /// `host:port`, with brackets around an IPv6 literal.
    pub fn label(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// How to reach the nodes this relay lists.
    pub fn dialer(&self) -> Dialer {
        Dialer {
            relay_host: self.host.clone(),
            relay_port: self.port,
            timeouts: self.timeouts,
            security: self.security.clone(),
            pin: self.pin,
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

    /// One exchange with the relay (under the relay key in a private
    /// network).
    pub(crate) fn ask(&self, request: &Request) -> anyhow::Result<Response> {
        let unreachable =
            |why: String| anyhow::anyhow!("could not reach relay {}: {why}", self.label());
        let addrs = exchange::resolve(&self.host, self.port)
            .map_err(|e| unreachable(format!("cannot resolve: {}", proto::error::io_reason(&e))))?;
        let to_relay = self.security.to_relay();
        let (_, response) = exchange::call_any_via(&addrs, request, &self.timeouts, &to_relay)
            .map_err(|e| match e {
                ProtoError::Io(_) | ProtoError::Timeout | ProtoError::Closed => {
                    unreachable(e.to_string())
                }
                // "relay 127.0.0.1:7000 refused the handshake: wrong or missing secret"
                e if e.is_handshake() => anyhow::anyhow!("relay {} {e}", self.label()),
                // It answered, but not with anything we can use.
                other => anyhow::anyhow!("relay {} sent a bad answer: {other}", self.label()),
            })?;
        Ok(response)
    }
}
