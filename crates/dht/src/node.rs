//! The local DHT node: one UDP socket and mainline's actor thread, started
//! with our defaults. The only file that calls mainline's blocking API.
//!
//! That API is marked deprecated in favour of mainline's async one, which
//! would need an async runtime; ours is blocking threads throughout, so the
//! deprecation is allowed here, in one place.
//!
//! Gotchas this file takes care of:
//! - without a port, mainline takes UDP 6881 when it is free; we always pass
//!   one (0: a free port), so two programs on one host never fight over it;
//! - the bootstrap list is resolved by [`Bootstrap`] with clear errors;
//! - a node others bootstrap from must be a server from the start
//!   ([`NodeConfig::server`]); otherwise mainline's adaptive mode answers
//!   queries only once it has seen, after 15 minutes, that it is reachable;
//! - a server stores other nodes' announces: at most [`MAX_INFO_HASHES`]
//!   ids with [`MAX_PEERS`] holders each (mainline's default is 500 holders,
//!   about 75 MiB at worst; ours about 15 MiB), and mainline's 1 000 values
//!   of each BEP 44 kind (up to 1 000 bytes each).
#![allow(deprecated)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::bootstrap::Bootstrap;
use crate::id::DhtId;

/// Ids a server node keeps holders for, at most (least recently used go).
pub const MAX_INFO_HASHES: usize = 2000;
/// Holders kept per id, at most: a lookup takes 10 at random from each node.
pub const MAX_PEERS: usize = 100;

/// How a node starts.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub bootstrap: Bootstrap,
    /// The IPv4 address to bind (0.0.0.0: every interface).
    pub bind: Ipv4Addr,
    /// The UDP port (0: a free one).
    pub port: u16,
    /// Answer other nodes' queries from the start (a bootstrap node, a
    /// node with a public address meant to serve the DHT). Otherwise
    /// mainline's adaptive mode: a client until it has run 15 minutes and
    /// found itself reachable.
    pub server: bool,
    /// How long one query to one node may take (mainline's default: 2 s).
    pub request_timeout: Option<Duration>,
}

impl NodeConfig {
    /// A client on every interface, on a free port.
    pub fn new(bootstrap: Bootstrap) -> NodeConfig {
        NodeConfig {
            bootstrap,
            bind: Ipv4Addr::UNSPECIFIED,
            port: 0,
            server: false,
            request_timeout: None,
        }
    }

    /// Binds beside a TCP server bound to `ip` (None: all addresses). The
    /// DHT is IPv4 only: a server bound to an IPv6 address, or to all of
    /// them, has its DHT node talk from every IPv4 interface.
    pub fn bound_like(mut self, ip: Option<IpAddr>) -> NodeConfig {
        self.bind = match ip {
            Some(IpAddr::V4(v4)) => v4,
            _ => Ipv4Addr::UNSPECIFIED,
        };
        self
    }
}

/// A running DHT node; a cheap-to-clone handle. The node stops when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct DhtNode {
    dht: mainline::Dht,
    local: SocketAddrV4,
}

impl DhtNode {
    /// Binds the socket and starts the node; bootstrap names that gave no
    /// address are logged (warn).
    pub fn start(config: &NodeConfig) -> io::Result<DhtNode> {
        let resolved = config
            .bootstrap
            .resolve()
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        for why in &resolved.skipped {
            tracing::warn!("{why}");
        }
        let mut builder = mainline::Dht::builder();
        builder.bind_address(config.bind).port(config.port);
        if let Some(addrs) = &resolved.addrs {
            builder.bootstrap(addrs);
        }
        if config.server {
            builder.server_mode();
        }
        builder.server_settings(mainline::ServerSettings {
            max_info_hashes: MAX_INFO_HASHES,
            max_peers_per_info_hash: MAX_PEERS,
            ..Default::default()
        });
        if let Some(timeout) = config.request_timeout {
            builder.request_timeout(timeout);
        }
        let dht = builder.build().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot bind the DHT's UDP socket {}:{}: {e}",
                    config.bind, config.port
                ),
            )
        })?;
        let local = dht.info().local_addr();
        Ok(DhtNode { dht, local })
    }

    /// Blocks until the node's bootstrap is done (a lookup of its own id
    /// through the bootstrap nodes); true when it found any node. An
    /// announce sent before that waits for the same lookup, and on a fresh
    /// node took about 10 s instead of milliseconds on loopback.
    pub fn wait_bootstrapped(&self) -> bool {
        #[allow(deprecated)] // mainline's blocking API, which this crate uses throughout
        self.dht.bootstrapped()
    }

    /// Where the node's UDP socket is bound.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// The node's own DHT id (random, or derived from its address by BEP 42).
    pub fn node_id(&self) -> [u8; 20] {
        *self.dht.info().id().as_bytes()
    }

    /// Announces that this host holds `id`, serving on TCP `port`: storing
    /// nodes record the IP our UDP packets come from, with that port.
    /// Blocks for one lookup of the closest nodes and their answers.
    pub(crate) fn announce(&self, id: DhtId, port: u16) -> Result<(), String> {
        self.dht
            .announce_peer(id.to_mainline(), Some(port))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The holders the DHT names for `id`, in batches as answers arrive; the
    /// iterator ends when the lookup has asked every node it will ask.
    pub(crate) fn get_peers(&self, id: DhtId) -> impl Iterator<Item = Vec<SocketAddrV4>> + use<> {
        self.dht.get_peers(id.to_mainline())
    }

    /// This node's routing table as `IP:PORT`s, for another node to
    /// bootstrap from.
    pub fn known_nodes(&self) -> Vec<String> {
        self.dht.to_bootstrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dht_binds_beside_an_ipv4_server_and_everywhere_otherwise() {
        let bind = |ip: Option<IpAddr>| NodeConfig::new(Bootstrap::Nobody).bound_like(ip).bind;
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        assert_eq!(bind(Some(IpAddr::V4(v4))), v4);
        assert_eq!(bind(Some("::1".parse().unwrap())), Ipv4Addr::UNSPECIFIED);
        assert_eq!(bind(None), Ipv4Addr::UNSPECIFIED);
    }
}
