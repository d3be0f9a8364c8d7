//! A DHT of its own on loopback, for tests and benchmarks: server nodes on
//! 127.0.0.1 whose routing tables already hold one another (mainline's
//! `Testnet`, seeded), so a lookup works from the first moment. Programs
//! under test name [`LocalDht::bootstrap`] as their only bootstrap nodes
//! and never reach a public address.
//!
//! The nodes take free ports, except that mainline's `Testnet` first tries
//! UDP 6881 for its first node (on its address only; if it is taken, a free
//! port): nothing leaves the machine either way.

use std::io;
use std::net::Ipv4Addr;

/// The running nodes; they stop when this is dropped.
pub struct LocalDht {
    testnet: mainline::Testnet,
}

impl LocalDht {
    /// `nodes` server nodes on 127.0.0.1.
    pub fn start(nodes: usize) -> io::Result<LocalDht> {
        LocalDht::start_on(Ipv4Addr::LOCALHOST, nodes)
    }

    /// `nodes` server nodes on `ip` (a test host's address in a network
    /// namespace of the test's own).
    pub fn start_on(ip: Ipv4Addr, nodes: usize) -> io::Result<LocalDht> {
        let testnet = mainline::Testnet::builder(nodes.max(1))
            .bind_address(ip)
            .build()?;
        Ok(LocalDht { testnet })
    }

    /// Every node's `IP:PORT`, to bootstrap from.
    pub fn bootstrap(&self) -> Vec<String> {
        self.testnet.bootstrap.clone()
    }

    pub fn len(&self) -> usize {
        self.testnet.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.testnet.nodes.is_empty()
    }
}
