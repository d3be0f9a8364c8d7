//! Finding holders: `get_peers` for a file's DHT id, in bounded time.
//!
//! The DHT is a source of *candidates*, nothing more: any node can answer
//! any address for any id (a BitTorrent peer that shares something else, a
//! made-up address, a victim's). The caller checks each one as it would
//! any holder: it asks for verified ranges, so a wrong holder costs one
//! bounded connection, never a wrong byte. This file only drops addresses
//! nobody can connect to (port 0, unspecified, broadcast, multicast), keeps
//! each once, and stops at [`MAX_HOLDERS`].
//!
//! mainline's lookup has no deadline of its own (it ends when it has asked
//! every node it will ask, which on the internet takes several 2 s
//! timeouts), and its blocking iterator cannot be waited on with a timeout.
//! So each lookup drains that iterator on a thread of its own, which
//! forwards what arrives; the caller waits only until its deadline. The
//! thread lives as long as mainline's query, seconds, and then ends.

use std::collections::{HashSet, VecDeque};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

use crate::id::{DhtId, NetworkKey};
use crate::node::DhtNode;

/// The most holders one lookup returns.
pub const MAX_HOLDERS: usize = 200;

/// Looks up holders through one DHT node; cheap to clone.
#[derive(Debug, Clone)]
pub struct Lookup {
    node: DhtNode,
}

impl Lookup {
    pub fn new(node: DhtNode) -> Lookup {
        Lookup { node }
    }

    /// The holders of the file whose BLAKE3 hash is `hash` (its plain id, or
    /// its keyed id with `key`), found before `deadline`: every one the
    /// lookup found if it ended sooner, else those found so far.
    pub fn find(
        &self,
        hash: &[u8; 32],
        key: Option<&NetworkKey>,
        deadline: Instant,
    ) -> Vec<SocketAddr> {
        self.find_id(DhtId::derive(hash, key), deadline)
    }

    /// [`Lookup::find`] for an id already derived.
    pub fn find_id(&self, id: DhtId, deadline: Instant) -> Vec<SocketAddr> {
        self.stream(id, deadline).collect()
    }

    /// The holders of `id` one at a time, as they are found, so a caller can
    /// start on the first while the lookup goes on. Ends when the lookup
    /// ends, at `deadline`, or after [`MAX_HOLDERS`].
    pub fn stream(&self, id: DhtId, deadline: Instant) -> Holders {
        let (tx, rx) = mpsc::channel();
        let node = self.node.clone();
        let spawned = std::thread::Builder::new()
            .name("dht-lookup".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                // A panic here (mainline's thread gone) ends the stream
                // like the end of the lookup: the caller gets what came.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for batch in node.get_peers(id) {
                        if tx.send(batch).is_err() {
                            return; // nobody is listening any more
                        }
                    }
                }));
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a DHT lookup: {e}");
        }
        Holders {
            rx,
            deadline,
            seen: HashSet::new(),
            pending: VecDeque::new(),
        }
    }
}

/// The holders of one lookup, as they come; see [`Lookup::stream`].
pub struct Holders {
    rx: Receiver<Vec<SocketAddrV4>>,
    deadline: Instant,
    seen: HashSet<SocketAddrV4>,
    /// Usable addresses of the last batch not handed out yet.
    pending: VecDeque<SocketAddrV4>,
}

impl Iterator for Holders {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        loop {
            if self.seen.len() >= MAX_HOLDERS && self.pending.is_empty() {
                return None;
            }
            if let Some(addr) = self.pending.pop_front() {
                return Some(SocketAddr::V4(addr));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.rx.recv_timeout(left) {
                Ok(batch) => {
                    for addr in batch {
                        if usable(&addr) && self.seen.len() < MAX_HOLDERS && self.seen.insert(addr)
                        {
                            self.pending.push_back(addr);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

/// An address a TCP connection could reach.
fn usable(addr: &SocketAddrV4) -> bool {
    let ip = addr.ip();
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_broadcast() && !ip.is_multicast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_a_connection_could_reach_are_usable() {
        let ok: SocketAddrV4 = "192.0.2.7:4000".parse().unwrap();
        assert!(usable(&ok));
        assert!(usable(&"127.0.0.1:4000".parse().unwrap()));
        for bad in [
            "192.0.2.7:0",
            "0.0.0.0:4000",
            "255.255.255.255:4000",
            "224.0.0.1:4000",
        ] {
            assert!(!usable(&bad.parse().unwrap()), "{bad}");
        }
    }
}
