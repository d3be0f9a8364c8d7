//! Hole punching at the relay (docs/PROTOCOL.md, "Hole punching"): the
//! relay introduces a client and a relayed node to each other, so that
//! they connect directly and the relay carries their bytes only when that
//! fails.
//!
//! 1. The client sends `Punch(node)` from a port it listens on. Unless the
//!    pair is known not to punch, the relay files the punch as pending
//!    under a random id, sends `OpenPunch(id)` on the node's control
//!    connection, and meanwhile dials the client's port back (the address
//!    it sees), on a thread of its own.
//! 2. The node joins with `JoinPunch(id)` from a fresh port. That thread
//!    hands the address it sees to the client's thread, which picks the
//!    way: if a client answered the dial-back (by then, or within
//!    [`DIALBACK_GRACE`]), the node can simply connect to it (reversal);
//!    if not, both connect at once (simultaneous open, in which the client
//!    listens too, so a reachable client is reached that way as well). Both
//!    sides then get their `Rendezvous`, with the other's address and the
//!    way, at the same moment. The dial-back never delays a punch by more
//!    than the grace: a client behind a firewall that drops it costs 0.1 s
//!    once a minute, not its timeout at every punch.
//! 3. The client either closes its connection (the punch worked) or sends
//!    `OpenCircuit` on it (it did not), and the relay relays as for any
//!    circuit. Whenever the relay cannot punch (a node that cannot, a pair
//!    that failed lately, no join in time), it opens the circuit at once
//!    and answers `CircuitReady`, so a client never waits twice.
//!
//! What the relay remembers lives beside its expiry: a pending punch goes
//! when the node joins or the client's thread stops waiting; each pair's
//! last outcome (by the client's and the node's IP addresses, as seen here)
//! is trusted for [`REMEMBER`], and the memory holds at most
//! [`MAX_REMEMBERED`] pairs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use net::secure::Security;
use net::server::Reply;
use proto::{NodeEntry, ProtoError, PunchWay, Rendezvous, Request, Response, frame};

use crate::circuit;
use crate::control::Controls;
use crate::dialback;
use crate::service::Relaying;

/// How long the relay waits for the node's `JoinPunch` before it relays.
pub const JOIN_WITHIN: Duration = Duration::from_secs(2);

/// How long the relay waits for the client to say how its punch went:
/// the punch's own bound, the greeting, and a margin for a loaded host.
pub const OUTCOME_WITHIN: Duration = Duration::from_secs(4);

/// How long the dial-back of a client's port may wait for the connection.
/// A client behind a NAT is usually refused at once (the NAT resets); this
/// bounds a firewall that drops the SYN.
pub const CLIENT_DIALBACK: Duration = Duration::from_millis(300);

/// How long the way waits for an unfinished dial-back once the node has
/// joined. A reachable client answers within a round trip or two, while
/// the node's join took at least two; past the grace, simultaneous open.
pub const DIALBACK_GRACE: Duration = Duration::from_millis(100);

/// How long each read and write of the dial-back may take once connected
/// (a handshake under the relay key, in a private network).
pub const CLIENT_DIALBACK_IO: Duration = Duration::from_secs(2);

/// How long an outcome is trusted: a pair that failed is relayed without
/// a try for this long, then tried again (NATs and networks change).
pub const REMEMBER: Duration = Duration::from_secs(600);

/// How long a client address that did not answer the dial-back is not
/// dialled again.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(60);

/// Most pairs (and unreachable client addresses) remembered; past it, the
/// oldest are forgotten first.
pub const MAX_REMEMBERED: usize = 65_536;

/// Punches waiting for their node at once; past it, clients are relayed.
pub const MAX_PENDING: usize = 256;

/// The punches under way and what the relay remembers of earlier ones;
/// cheap to clone.
#[derive(Clone)]
pub struct Punches {
    shared: Arc<Shared>,
}

struct Shared {
    security: Security,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, Pending>,
    /// The last outcome per (client IP, node IP).
    outcomes: HashMap<(IpAddr, IpAddr), Outcome>,
    /// Client addresses the dial-back could not reach, and when.
    unreachable: HashMap<IpAddr, Instant>,
}

/// A punch whose client waits for the node to join.
struct Pending {
    /// The client's `Punch` connection, as seen here.
    client: SocketAddr,
    /// Where the node's address goes once it has joined, with where the
    /// client's thread sends back the way it picked.
    joined: SyncSender<Joined>,
}

/// The node's `JoinPunch` connection as seen here, and where the way goes.
type Joined = (SocketAddr, SyncSender<PunchWay>);

#[derive(Debug, Clone, Copy)]
struct Outcome {
    at: Instant,
    worked: bool,
}

/// What to do with a `Punch`.
enum Plan {
    Punch,
    /// Relay instead, for this reason (for the log).
    Relay(String),
}

impl Punches {
    /// `security`: how the relay dials a client's port back (in a private
    /// network, a handshake under the relay key).
    pub fn new(security: Security) -> Punches {
        Punches {
            shared: Arc::new(Shared {
                security,
                state: Mutex::default(),
            }),
        }
    }

    /// Whether to punch for `client` to `node` (a relayed node that said
    /// it can), or why not.
    fn plan(&self, client: IpAddr, node: SocketAddr, controls: &Controls) -> Plan {
        if !controls.can_punch(node) {
            return Plan::Relay(format!("node {node} cannot punch"));
        }
        let state = self.lock();
        if let Some(o) = state.outcomes.get(&(client, node.ip()))
            && !o.worked
            && o.at.elapsed() < REMEMBER
        {
            return Plan::Relay(format!(
                "punching from {client} to {} failed {} s ago",
                node.ip(),
                o.at.elapsed().as_secs()
            ));
        }
        if state.pending.len() >= MAX_PENDING {
            return Plan::Relay(format!("{MAX_PENDING} punches under way"));
        }
        Plan::Punch
    }

    /// Whether a punch from `client` to `node` may be tried: what
    /// `ListPunchable` lists.
    pub fn may_try(&self, client: IpAddr, node: IpAddr) -> bool {
        match self.lock().outcomes.get(&(client, node)) {
            Some(o) => o.worked || o.at.elapsed() >= REMEMBER,
            None => true,
        }
    }

    /// Notes how a punch between the two went.
    fn note(&self, client: IpAddr, node: IpAddr, worked: bool) {
        let mut state = self.lock();
        let now = Instant::now();
        if state.outcomes.len() >= MAX_REMEMBERED {
            forget_oldest(&mut state.outcomes, |o| o.at);
        }
        state
            .outcomes
            .insert((client, node), Outcome { at: now, worked });
    }

    /// Starts the dial-back of `client` (the address its `Punch` came
    /// from) on a thread of its own; its answer, whether a client answered
    /// there, arrives on the receiver. None when that address did not
    /// answer lately: no dial-back, simultaneous open.
    fn dial_back(&self, client: SocketAddr) -> Option<Receiver<bool>> {
        let ip = client.ip();
        if let Some(at) = self.lock().unreachable.get(&ip)
            && at.elapsed() < UNREACHABLE_FOR
        {
            return None;
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let punches = self.clone();
        let started = std::thread::Builder::new()
            .name("dial-back".into())
            .spawn(move || {
                let timeouts = net::exchange::Timeouts {
                    connect: CLIENT_DIALBACK,
                    io: CLIENT_DIALBACK_IO,
                };
                let answered =
                    match dialback::probe_client(client, timeouts, &punches.shared.security) {
                        Ok(()) => true,
                        Err(why) => {
                            tracing::debug!("client {client} cannot be dialled back: {why}");
                            let mut state = punches.lock();
                            if state.unreachable.len() >= MAX_REMEMBERED {
                                forget_oldest(&mut state.unreachable, |at| *at);
                            }
                            state.unreachable.insert(ip, Instant::now());
                            false
                        }
                    };
                let _ = tx.send(answered);
            });
        started.ok().map(|_| rx)
    }

    /// Files a punch as pending; returns its id and where the node's
    /// address will arrive.
    fn file(&self, client: SocketAddr) -> (u64, Receiver<Joined>) {
        let (joined, rx) = mpsc::sync_channel(1);
        let mut state = self.lock();
        let mut id = circuit::random_id();
        while state.pending.contains_key(&id) {
            id = circuit::random_id();
        }
        state.pending.insert(id, Pending { client, joined });
        (id, rx)
    }

    fn take(&self, id: u64) -> Option<Pending> {
        self.lock().pending.remove(&id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Whole entries are inserted and removed: a poisoned lock is fine.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Drops the oldest tenth of `map`, by `at`.
fn forget_oldest<K: Copy + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    at: impl Fn(&V) -> Instant,
) {
    let mut ages: Vec<(Instant, K)> = map.iter().map(|(k, v)| (at(v), *k)).collect();
    ages.sort_unstable_by_key(|(t, _)| *t);
    for (_, k) in ages.iter().take(map.len() / 10 + 1) {
        map.remove(k);
    }
}

/// The client's side: `Punch(node)` on `reply`'s connection. Returns once
/// the punch is over, or, when the relay relays, once the circuit is.
pub fn punch(
    relaying: &Relaying,
    node: SocketAddr,
    reply: &mut Reply<'_>,
) -> Result<(), ProtoError> {
    let client = reply.peer();
    let relay = |why: String, reply: &mut Reply<'_>| {
        tracing::debug!("{client}: no punch to {node} ({why}): relaying");
        circuit::open(&relaying.circuits, &relaying.controls, node, reply)
    };
    let Some(punches) = &relaying.punches else {
        return relay("punching is off".into(), reply);
    };
    if let Plan::Relay(why) = punches.plan(client.ip(), node, &relaying.controls) {
        return relay(why, reply);
    }
    let (id, joined) = punches.file(client);
    if let Err(why) = relaying.controls.ask_for_punch(node, id) {
        punches.take(id);
        return relay(why, reply);
    }
    let dial_back = punches.dial_back(client);
    let (node_seen, way_to_node) = match joined.recv_timeout(JOIN_WITHIN) {
        Ok(joined) => joined,
        Err(RecvTimeoutError::Timeout) if punches.take(id).is_some() => {
            return relay(
                format!(
                    "node did not join punch {id:016x} within {} s",
                    JOIN_WITHIN.as_secs()
                ),
                reply,
            );
        }
        // The node took it just now: its address is on the way.
        Err(RecvTimeoutError::Timeout) => match joined.recv_timeout(JOIN_WITHIN) {
            Ok(joined) => joined,
            Err(_) => return Err(ProtoError::Timeout),
        },
        Err(RecvTimeoutError::Disconnected) => {
            return relay(format!("punch {id:016x} was dropped"), reply);
        }
    };
    // Reversal if the client answered the dial-back by now, or soon.
    let reachable =
        dial_back.is_some_and(|answer| answer.recv_timeout(DIALBACK_GRACE).unwrap_or(false));
    let way = if reachable {
        PunchWay::Reverse
    } else {
        PunchWay::Simultaneous
    };
    // The node's thread sends its side at the same moment.
    let _ = way_to_node.send(way);
    reply.send(&Response::Rendezvous(Rendezvous {
        id,
        peer: node_seen,
        way,
    }))?;
    tracing::debug!(
        "{client}: punch {id:016x} to {node}: the node at {node_seen}, by {}",
        way.as_str()
    );
    // The client closes when it got through, or asks for the circuit here.
    reply.tcp().set_read_timeout(Some(OUTCOME_WITHIN))?;
    match frame::read::<Request>(reply.stream()) {
        Ok(Request::OpenCircuit(asked)) if asked == node => {
            punches.note(client.ip(), node.ip(), false);
            tracing::info!(
                "{client}: punch {id:016x} to {node} by {} failed: relaying",
                way.as_str()
            );
            circuit::open(&relaying.circuits, &relaying.controls, node, reply)
        }
        Err(ProtoError::Closed) => {
            punches.note(client.ip(), node.ip(), true);
            tracing::info!(
                "{client}: punch {id:016x} to {node}: direct by {}",
                way.as_str()
            );
            Ok(())
        }
        Ok(other) => {
            tracing::info!(
                "{client}: punch {id:016x} to {node}: unexpected request after it ({other:?})"
            );
            Ok(())
        }
        Err(e) => {
            tracing::info!("{client}: punch {id:016x} to {node}: no outcome ({e})");
            Ok(())
        }
    }
}

/// The node's side: `JoinPunch(id)` on a connection from its punching
/// port. Gives the client's thread the address this connection comes from,
/// and answers with the client's address and the way that thread picked.
pub fn join(punches: &Punches, id: u64, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
    let gone = |reply: &mut Reply<'_>| {
        tracing::info!("{}: join of unknown punch {id:016x}", reply.peer());
        reply.send(&Response::error(
            proto::ErrorKind::BadRequest,
            "no such punch (the client gave up, or it was never asked for)",
        ))
    };
    let Some(pending) = punches.take(id) else {
        return gone(reply);
    };
    let (way_tx, way_rx) = mpsc::sync_channel(1);
    if pending.joined.send((reply.peer(), way_tx)).is_err() {
        return gone(reply);
    }
    // The client's thread picks the way within the dial-back's grace.
    match way_rx.recv_timeout(DIALBACK_GRACE + JOIN_WITHIN) {
        Ok(way) => reply.send(&Response::Rendezvous(Rendezvous {
            id,
            peer: pending.client,
            way,
        })),
        Err(_) => gone(reply),
    }
}

/// The answer to `ListPunchable`: the relayed nodes that can punch and
/// that this client's address has not failed to punch to lately.
pub fn punchable(relaying: &Relaying, nodes: Vec<NodeEntry>, client: IpAddr) -> Response {
    let Some(punches) = &relaying.punches else {
        return Response::Nodes(Vec::new());
    };
    let listed = nodes
        .into_iter()
        .filter(|n| relaying.controls.can_punch(n.addr) && punches.may_try(client, n.addr.ip()))
        .collect();
    Response::Nodes(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_failed_pair_is_not_tried_again_for_a_while_and_a_working_one_is() {
        let punches = Punches::new(Security::Plain);
        assert!(punches.may_try(ip(1), ip(2)));
        punches.note(ip(1), ip(2), false);
        assert!(!punches.may_try(ip(1), ip(2)));
        // Another client, or another node, is another pair.
        assert!(punches.may_try(ip(3), ip(2)));
        assert!(punches.may_try(ip(1), ip(4)));
        punches.note(ip(1), ip(2), true);
        assert!(punches.may_try(ip(1), ip(2)));
    }

    #[test]
    fn the_memory_is_bounded() {
        let punches = Punches::new(Security::Plain);
        for i in 0..(MAX_REMEMBERED + 10) {
            let client = IpAddr::from((i as u32).to_be_bytes());
            punches.note(client, ip(1), false);
        }
        assert!(punches.lock().outcomes.len() <= MAX_REMEMBERED);
    }

    #[test]
    fn a_pending_punch_is_taken_once() {
        let punches = Punches::new(Security::Plain);
        let (id, joined) = punches.file("10.0.0.1:5000".parse().unwrap());
        let pending = punches.take(id).expect("filed");
        assert_eq!(pending.client, "10.0.0.1:5000".parse().unwrap());
        assert!(punches.take(id).is_none());
        let (way, _) = mpsc::sync_channel(1);
        pending
            .joined
            .send(("10.0.0.2:6000".parse().unwrap(), way))
            .unwrap();
        assert_eq!(joined.recv().unwrap().0, "10.0.0.2:6000".parse().unwrap());
    }

    #[test]
    fn a_client_address_that_did_not_answer_is_not_dialled_again_for_a_while() {
        let punches = Punches::new(Security::Plain);
        // Nothing listens there: refused at once.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let answer = punches.dial_back(dead).expect("dialled");
        assert!(!answer.recv().unwrap());
        assert!(punches.dial_back(dead).is_none(), "remembered");
    }
}
