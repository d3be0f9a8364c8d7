//! Circuits: a client's connection joined to a relayed node's data
//! connection (docs/PROTOCOL.md, "Relayed mode").
//!
//! 1. The client sends `OpenCircuit(node)`. Its thread reserves a place
//!    under the caps, files the circuit as pending under a random id, and
//!    asks the node, on its control connection, for a data connection.
//! 2. The node connects and sends `JoinCircuit(id)`. That thread takes the
//!    pending circuit, answers `CircuitReady` to both ends, and hands its
//!    socket to the client's thread.
//! 3. Each of the two threads pumps one direction ([`crate::splice`]) until
//!    its sender closes; both wait for each other, then the caps are freed.
//!
//! State with a lifetime lives beside its expiry: a pending circuit is
//! removed when the node joins or when the client's thread stops waiting;
//! a circuit's places under the caps are held by a [`Permit`] that the
//! client's thread drops when both directions have ended.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::server::Reply;
use proto::{ErrorKind, ProtoError, Response};

use crate::control::Controls;
use crate::splice::{End, Join, JoinLimits};

/// How long a client waits for the node to open its data connection.
pub const SETUP: Duration = Duration::from_secs(10);

/// The caps on circuits, and each circuit's own limits.
#[derive(Debug, Clone, Copy)]
pub struct CircuitLimits {
    /// Circuits open at once in all.
    pub max_total: usize,
    /// Circuits open at once to one relayed node.
    pub max_per_node: usize,
    /// Circuits open at once from one client IP address.
    pub max_per_client: usize,
    /// Per circuit: idle time, optional byte and duration caps.
    pub join: JoinLimits,
}

/// The circuit table; cheap to clone.
#[derive(Clone)]
pub struct Circuits {
    shared: Arc<Shared>,
}

struct Shared {
    limits: CircuitLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    per_node: HashMap<SocketAddr, usize>,
    per_client: HashMap<IpAddr, usize>,
    /// Circuits waiting for their node's data connection, by id.
    pending: HashMap<u64, Pending>,
}

/// A circuit whose client waits for the node.
struct Pending {
    node: SocketAddr,
    client: TcpStream,
    /// The client's `CircuitReady`, sealed by the client's thread in its
    /// session (in a private network), for the joining thread to send.
    client_ready: Vec<u8>,
    join: Arc<Join>,
    /// Where the node's socket goes once it has joined.
    arrived: SyncSender<TcpStream>,
}

/// One circuit's places under the caps; given back on drop.
pub struct Permit {
    circuits: Circuits,
    node: SocketAddr,
    client: IpAddr,
}

impl Circuits {
    pub fn new(limits: CircuitLimits) -> Circuits {
        Circuits {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::default(),
            }),
        }
    }

    pub fn limits(&self) -> &CircuitLimits {
        &self.shared.limits
    }

    /// Circuits open or being set up.
    pub fn open_count(&self) -> usize {
        self.lock().total
    }

    /// Takes a place for a circuit from `client` to `node`, or says which
    /// cap stands in the way.
    pub fn reserve(&self, node: SocketAddr, client: IpAddr) -> Result<Permit, String> {
        let limits = &self.shared.limits;
        let mut state = self.lock();
        if state.total >= limits.max_total {
            return Err(format!(
                "relay busy: {} circuits open (limit {})",
                state.total, limits.max_total
            ));
        }
        let to_node = state.per_node.get(&node).copied().unwrap_or(0);
        if to_node >= limits.max_per_node {
            return Err(format!(
                "relay busy: {to_node} circuits open to node {node} (limit {} per node)",
                limits.max_per_node
            ));
        }
        let from_client = state.per_client.get(&client).copied().unwrap_or(0);
        if from_client >= limits.max_per_client {
            return Err(format!(
                "relay busy: {from_client} circuits open from {client} (limit {} per client)",
                limits.max_per_client
            ));
        }
        state.total += 1;
        *state.per_node.entry(node).or_insert(0) += 1;
        *state.per_client.entry(client).or_insert(0) += 1;
        Ok(Permit {
            circuits: self.clone(),
            node,
            client,
        })
    }

    /// Files a circuit as pending; returns its id and where the node's
    /// socket will arrive.
    fn file(
        &self,
        pending: impl FnOnce(SyncSender<TcpStream>) -> Pending,
    ) -> (u64, Receiver<TcpStream>) {
        let (tx, rx) = mpsc::sync_channel(1);
        let pending = pending(tx);
        let mut state = self.lock();
        let mut id = random_id();
        while state.pending.contains_key(&id) {
            id = random_id();
        }
        state.pending.insert(id, pending);
        (id, rx)
    }

    fn take(&self, id: u64) -> Option<Pending> {
        self.lock().pending.remove(&id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Counters move by one and entries are whole: a poisoned lock is fine.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.circuits.lock();
        state.total -= 1;
        decrement(&mut state.per_node, self.node);
        decrement(&mut state.per_client, self.client);
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = map.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            map.remove(&key);
        }
    }
}

/// A circuit id nobody else can guess: a node's data connection is let in
/// by it alone, so it comes from the system's random source. Punch ids
/// too (crate::rendezvous).
pub(crate) fn random_id() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `len` bytes into the buffer we own.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if got == 8 {
        return u64::from_ne_bytes(bytes);
    }
    // No getrandom: std's hasher keys are random per process.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The client's side: `OpenCircuit(node)` on `reply`'s connection. Returns
/// once the circuit has ended (or was refused).
pub fn open(
    circuits: &Circuits,
    controls: &Controls,
    node: SocketAddr,
    reply: &mut Reply<'_>,
) -> Result<(), ProtoError> {
    let client = reply.peer();
    let permit = match circuits.reserve(node, client.ip()) {
        Ok(permit) => permit,
        Err(why) => {
            tracing::warn!("{client}: circuit to {node} refused: {why}");
            crate::metrics::refused(crate::metrics::Refusal::CircuitCap);
            return reply.send(&Response::error(ErrorKind::Busy, why));
        }
    };
    let join = Arc::new(Join::new(circuits.limits().join));
    let client_end = reply.tcp().try_clone()?;
    let client_ready = reply.seal_next(&Response::CircuitReady)?;
    let (id, arrived) = circuits.file(|arrived| Pending {
        node,
        client: client_end,
        client_ready,
        join: Arc::clone(&join),
        arrived,
    });
    if let Err(why) = controls.ask_for_data(node, id) {
        circuits.take(id);
        tracing::info!("{client}: circuit to {node} refused: {why}");
        return reply.send(&Response::error(ErrorKind::BadRequest, why));
    }
    let node_end = match arrived.recv_timeout(SETUP) {
        Ok(stream) => stream,
        Err(RecvTimeoutError::Timeout) if circuits.take(id).is_some() => {
            let why = format!(
                "node {node} did not open a data connection within {} s",
                SETUP.as_secs()
            );
            tracing::warn!("{client}: circuit to {node} failed: {why}");
            return reply.send(&Response::error(ErrorKind::Internal, why));
        }
        // The node took it just now: its socket is on the way.
        Err(RecvTimeoutError::Timeout) => match arrived.recv_timeout(SETUP) {
            Ok(stream) => stream,
            Err(_) => return Err(ProtoError::Timeout),
        },
        Err(RecvTimeoutError::Disconnected) => {
            let why = format!("node {node} failed to join the circuit");
            tracing::warn!("{client}: {why}");
            return reply.send(&Response::error(ErrorKind::Internal, why));
        }
    };
    tracing::info!("{client}: circuit {id:016x} to {node} open");
    let end = join.pump(reply.tcp(), &node_end);
    join.finish_and_wait();
    let how = match end {
        End::Eof => "closed".to_string(),
        End::Closed(why) => format!("closed: {why}"),
    };
    tracing::info!(
        "{client}: circuit {id:016x} to {node} {how} ({} bytes in {:.1} s)",
        join.bytes(),
        join.elapsed().as_secs_f64()
    );
    crate::metrics::circuit_closed(join.bytes());
    drop(permit);
    Ok(())
}

/// The node's side: `JoinCircuit(id)` on `reply`'s connection, a data
/// connection the node opened. Returns once its direction has ended.
pub fn join(circuits: &Circuits, id: u64, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
    let Some(pending) = circuits.take(id) else {
        tracing::info!("{}: join of unknown circuit {id:016x}", reply.peer());
        return reply.send(&Response::error(
            ErrorKind::BadRequest,
            "no such circuit (the client gave up, or it was never opened)",
        ));
    };
    // Both ends learn at once that the pipe is open; nothing else has been
    // written to either yet, so the frames cannot interleave with data. In
    // a private network each goes in its own session with the relay; what
    // follows is the client's and the node's, end to end.
    reply.send(&Response::CircuitReady)?;
    let mut client_end = &pending.client;
    std::io::Write::write_all(&mut client_end, &pending.client_ready)?;
    if pending.arrived.send(reply.tcp().try_clone()?).is_err() {
        // The client's thread is gone (it cannot be, while it holds the
        // pending entry's receiver, but be plain about it).
        return Err(ProtoError::Closed);
    }
    tracing::debug!(
        "{}: joined circuit {id:016x} for node {}",
        reply.peer(),
        pending.node
    );
    pending.join.pump(reply.tcp(), &pending.client);
    pending.join.finish_and_wait();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuits(total: usize, per_node: usize, per_client: usize) -> Circuits {
        Circuits::new(CircuitLimits {
            max_total: total,
            max_per_node: per_node,
            max_per_client: per_client,
            join: JoinLimits {
                idle: Duration::from_secs(30),
                max_bytes: None,
                max_duration: None,
            },
        })
    }

    fn node(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 1, last])
    }

    #[test]
    fn the_total_cap_holds_and_frees_on_drop() {
        let c = circuits(2, 10, 10);
        let a = c.reserve(node(1), ip(1)).unwrap();
        let _b = c.reserve(node(2), ip(2)).unwrap();
        let why = c.reserve(node(3), ip(3)).err().unwrap();
        assert!(why.contains("2 circuits open (limit 2)"), "{why}");
        drop(a);
        assert!(c.reserve(node(3), ip(3)).is_ok());
    }

    #[test]
    fn the_per_node_and_per_client_caps_hold() {
        let c = circuits(10, 1, 2);
        let _a = c.reserve(node(1), ip(1)).unwrap();
        let why = c.reserve(node(1), ip(2)).err().unwrap();
        assert!(
            why.contains("to node 10.0.0.1:1 (limit 1 per node)"),
            "{why}"
        );
        let _b = c.reserve(node(2), ip(1)).unwrap();
        let why = c.reserve(node(3), ip(1)).err().unwrap();
        assert!(why.contains("from 10.0.1.1 (limit 2 per client)"), "{why}");
        assert_eq!(c.open_count(), 2);
    }

    #[test]
    fn ids_differ() {
        let ids: std::collections::HashSet<u64> = (0..1000).map(|_| random_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
