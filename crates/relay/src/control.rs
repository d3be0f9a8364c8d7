//! Control connections: the one long-lived connection each relayed node
//! keeps open to the relay (docs/PROTOCOL.md, "Relayed mode").
//!
//! A node that the relay cannot dial sends `Control(Registration)`; the
//! relay lists it as relayed under the address the connection comes from
//! (unique even for many nodes behind one NAT) and keeps the connection.
//! On it the node sends `Keepalive` at least three times per TTL, each
//! answered `Registered`, and the relay sends `OpenData(N)` when a client
//! wants circuit N. The entry lives exactly as long as the connection:
//! when it closes, or stays silent for a TTL, the node is unlisted at once.
//!
//! A node that opened with `ControlPunch` can also punch: the relay may
//! send it `OpenPunch(N)` (crate::rendezvous). One that sent `Control`
//! never gets it (an older node would not know the tag).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use net::secure::NodeKey;
use net::stream::{Stream, StreamReader, StreamWriter};
use proto::{ErrorKind, NodeMode, ProtoError, Registered, Request, Response, frame};

use crate::registry::{self, Registry};

/// The open control connections, by the address each node is listed under;
/// cheap to clone.
#[derive(Clone, Default)]
pub struct Controls {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    links: Mutex<HashMap<SocketAddr, Link>>,
    next_id: AtomicU64,
}

/// The relay's way to write to one node's control connection. Writes come
/// from the connection's own thread (keepalive answers) and from client
/// threads (circuit requests), so each frame is written whole under a lock.
/// In a private network the writer is the sending half of the session.
struct Link {
    id: u64,
    writer: Arc<Mutex<StreamWriter>>,
    /// It opened with `ControlPunch`, and the relay punches.
    punch: bool,
}

impl Controls {
    /// How many relayed nodes are connected.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks the node listed as `node` to open a data connection for circuit
    /// `circuit`. The error says why that was not possible.
    pub fn ask_for_data(&self, node: SocketAddr, circuit: u64) -> Result<(), String> {
        self.send(node, &Response::OpenData(circuit))
    }

    /// Whether the node listed as `node` can be asked to punch.
    pub fn can_punch(&self, node: SocketAddr) -> bool {
        self.lock().get(&node).is_some_and(|link| link.punch)
    }

    /// Asks the node listed as `node` to join punch `punch`. The error says
    /// why that was not possible.
    pub fn ask_for_punch(&self, node: SocketAddr, punch: u64) -> Result<(), String> {
        if !self.can_punch(node) {
            return Err(format!("node {node} cannot punch"));
        }
        self.send(node, &Response::OpenPunch(punch))
    }

    fn send(&self, node: SocketAddr, message: &Response) -> Result<(), String> {
        let writer = match self.lock().get(&node) {
            Some(link) => Arc::clone(&link.writer),
            None => return Err(format!("no relayed node {node} at this relay")),
        };
        let mut stream = writer.lock().unwrap_or_else(|p| p.into_inner());
        frame::write(&mut *stream, message)
            .map_err(|e| format!("cannot reach node {node} on its control connection: {e}"))
    }

    fn attach(&self, node: SocketAddr, writer: Arc<Mutex<StreamWriter>>, punch: bool) -> u64 {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(node, Link { id, writer, punch });
        id
    }

    /// Removes the link, unless a newer connection has taken its place.
    fn detach(&self, node: SocketAddr, id: u64) -> bool {
        let mut links = self.lock();
        if links.get(&node).is_some_and(|l| l.id == id) {
            links.remove(&node);
            return true;
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Link>> {
        // Whole entries are inserted and removed: never half-updated.
        self.shared.links.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves one control connection until it closes or falls silent for a
/// TTL. `stream` has carried the `Control` (or `ControlPunch`) request,
/// already checked; `key` is the static key the node's handshake proved,
/// if any; `punch`: the node may be asked to punch.
pub fn serve(
    stream: &mut Stream,
    node: SocketAddr,
    key: Option<NodeKey>,
    punch: bool,
    registry: &Registry,
    controls: &Controls,
    io_timeout: Duration,
) -> Result<(), ProtoError> {
    stream.tcp().set_write_timeout(Some(io_timeout))?;
    let (mut reader, writer) = stream.split()?;
    let writer = Arc::new(Mutex::new(writer));
    let registered = Response::Registered(Registered {
        addr: node,
        ttl_secs: registry.ttl_secs(),
    });
    match registry.register_as(node, node.ip(), NodeMode::Relayed, key, Instant::now()) {
        Ok(_) => {}
        Err(refused) => {
            let why = match refused {
                registry::Refused::TooManyFromSource { limit } => format!(
                    "too many nodes registered from {} (limit {limit} per address, \
                     relay --max-nodes-per-ip)",
                    node.ip()
                ),
                registry::Refused::TableFull => "relay table is full".to_string(),
            };
            tracing::warn!("relayed node {node} refused: {why}");
            return frame::write(&mut *lock(&writer), &Response::error(ErrorKind::Busy, why));
        }
    }
    let id = controls.attach(node, Arc::clone(&writer), punch);
    tracing::info!(
        "node joined: {node}, relayed{} ({} active, {} relayed)",
        if punch { ", can punch" } else { "" },
        registry.len(),
        controls.len()
    );
    // The guard must be gone before `keep`, which takes the lock again.
    let sent = frame::write(&mut *lock(&writer), &registered);
    let why = match sent {
        Ok(()) => keep(&mut reader, node, key, registry, &writer, &registered),
        Err(e) => e.to_string(),
    };
    if controls.detach(node, id) {
        registry.unregister(node);
    }
    tracing::info!(
        "node left: {node}, relayed: {why} ({} active)",
        registry.len()
    );
    Ok(())
}

/// Answers keepalives until the node goes; returns why it went.
fn keep(
    stream: &mut StreamReader,
    node: SocketAddr,
    key: Option<NodeKey>,
    registry: &Registry,
    writer: &Mutex<StreamWriter>,
    registered: &Response,
) -> String {
    // The node sends a keepalive three times per TTL; a whole TTL of silence
    // means it is gone, as for a direct node that stops refreshing.
    if let Err(e) = stream.tcp().set_read_timeout(Some(registry.ttl())) {
        return format!("cannot set a timeout: {}", proto::error::io_reason(&e));
    }
    loop {
        match frame::read::<Request>(stream) {
            Ok(Request::Keepalive) => {
                if registry
                    .register_as(node, node.ip(), NodeMode::Relayed, key, Instant::now())
                    .is_err()
                {
                    return "no room left in the relay's table".into();
                }
                tracing::debug!("node refreshed: {node}, relayed");
                if let Err(e) = frame::write(&mut *lock(writer), registered) {
                    return format!("cannot answer its keepalive: {e}");
                }
            }
            Ok(_) => {
                let refusal = Response::error(
                    ErrorKind::BadRequest,
                    "only Keepalive is expected on a control connection",
                );
                let _ = frame::write(&mut *lock(writer), &refusal);
                return "it sent another request than Keepalive on its control connection".into();
            }
            Err(ProtoError::Closed) => return "control connection closed".into(),
            Err(ProtoError::Timeout) => {
                return format!("silent for {}s", registry.ttl().as_secs_f64());
            }
            Err(e) => return format!("control connection failed: {e}"),
        }
    }
}

fn lock(writer: &Mutex<StreamWriter>) -> std::sync::MutexGuard<'_, StreamWriter> {
    writer.lock().unwrap_or_else(|p| p.into_inner())
}
