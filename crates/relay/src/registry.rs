//! The table of registered nodes: a cheap-to-clone handle around a mutex,
//! with expiry next to the state it expires.
//!
//! Nodes are kept in registration order (a refresh keeps a node's place).
//! The encoded list answer is cached, because the relay answers many more
//! list requests than the table changes: a list request then costs a lock
//! and a reference count, not an encoding of up to 100 000 entries.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use proto::{MAX_LIST_NODES, NodeEntry, NodeInfo, NodeMode, ProtoError, Response, frame};

/// How long a cached list answer may be served; ages in it are whole seconds.
const CACHE_FOR: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

struct Shared {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Registration order: sequence number to entry.
    entries: BTreeMap<u64, Entry>,
    /// Address to sequence number.
    by_addr: HashMap<SocketAddr, u64>,
    next_seq: u64,
    /// Bumped whenever a node joins or leaves, so the cache knows it is stale.
    generation: u64,
    /// The cached `Nodes` and `NodesLong` answers, by [`ListKind`].
    cached: [Option<CachedList>; 2],
    /// No entry expires before this (None: none ever can, or there are
    /// none). Expiry walks the table only once it is reached: at 100 000
    /// nodes a walk costs milliseconds under the lock, and the expiry thread
    /// and every rebuilt list answer would pay it (docs/BENCHMARKS.md).
    expiry_floor: Option<Instant>,
}

struct Entry {
    addr: SocketAddr,
    last_seen: Instant,
    mode: NodeMode,
}

/// Which list answer: the old `Nodes` (direct nodes only, since an older
/// client cannot open a circuit) or `NodesLong` (every node, with its mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Nodes = 0,
    NodesLong = 1,
}

struct CachedList {
    generation: u64,
    /// When it must be rebuilt: [`CACHE_FOR`] after it was built, or when
    /// the first node in it reaches its TTL, whichever comes first, so a
    /// cached answer never lists an expired node.
    stale_at: Instant,
    answer: ListAnswer,
}

/// An encoded `Nodes` answer, ready to be written as it is.
#[derive(Clone)]
pub struct ListAnswer {
    pub frame: Arc<[u8]>,
    /// How many nodes it lists.
    pub count: usize,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Joined,
    Refreshed,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFull;

impl Registry {
    /// An empty table whose entries expire `ttl` after their last refresh.
    pub fn new(ttl: Duration) -> Registry {
        Registry {
            shared: Arc::new(Shared {
                ttl,
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.shared.ttl
    }

    /// The TTL as `Registered` carries it: whole seconds, rounded down, so a
    /// node that refreshes three times per `ttl_secs` is never late.
    pub fn ttl_secs(&self) -> u32 {
        u32::try_from(self.shared.ttl.as_secs()).unwrap_or(u32::MAX)
    }

    /// Adds `addr` as a direct node, or refreshes it if it is listed already.
    pub fn register(&self, addr: SocketAddr, now: Instant) -> Result<Registered, TableFull> {
        self.register_as(addr, NodeMode::Direct, now)
    }

    /// Adds `addr` reached as `mode`, or refreshes it (and its mode).
    pub fn register_as(
        &self,
        addr: SocketAddr,
        mode: NodeMode,
        now: Instant,
    ) -> Result<Registered, TableFull> {
        let ttl = self.shared.ttl;
        let mut state = self.lock();
        if let Some(seq) = state.by_addr.get(&addr).copied() {
            let mut changed = false;
            if let Some(entry) = state.entries.get_mut(&seq) {
                entry.last_seen = now;
                changed = entry.mode != mode;
                entry.mode = mode;
            }
            if changed {
                state.generation += 1;
            }
            state.lower_expiry_floor(now, ttl);
            return Ok(Registered::Refreshed);
        }
        if state.entries.len() >= MAX_LIST_NODES {
            return Err(TableFull);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.entries.insert(
            seq,
            Entry {
                addr,
                last_seen: now,
                mode,
            },
        );
        state.by_addr.insert(addr, seq);
        state.generation += 1;
        state.lower_expiry_floor(now, ttl);
        Ok(Registered::Joined)
    }

    /// Removes `addr`; false if it was not listed.
    pub fn unregister(&self, addr: SocketAddr) -> bool {
        let mut state = self.lock();
        let Some(seq) = state.by_addr.remove(&addr) else {
            return false;
        };
        state.entries.remove(&seq);
        state.generation += 1;
        true
    }

    /// Removes every node not refreshed within the TTL; returns them with
    /// how long they had been silent.
    pub fn expire(&self, now: Instant) -> Vec<(SocketAddr, Duration)> {
        let ttl = self.shared.ttl;
        self.lock().expire(now, ttl)
    }

    /// The live nodes, oldest registration first.
    pub fn nodes(&self, now: Instant) -> Vec<NodeEntry> {
        let ttl = self.shared.ttl;
        let state = self.lock();
        state.live(now, ttl).collect()
    }

    /// The encoded `Nodes` answer, from the cache when it is fresh, and the
    /// nodes that expired when it was rebuilt (for the log).
    pub fn list_answer(
        &self,
        now: Instant,
    ) -> Result<(ListAnswer, Vec<(SocketAddr, Duration)>), ProtoError> {
        self.answer(ListKind::Nodes, now)
    }

    /// Like [`Registry::list_answer`], for the `NodesLong` answer.
    pub fn list_long_answer(
        &self,
        now: Instant,
    ) -> Result<(ListAnswer, Vec<(SocketAddr, Duration)>), ProtoError> {
        self.answer(ListKind::NodesLong, now)
    }

    fn answer(
        &self,
        kind: ListKind,
        now: Instant,
    ) -> Result<(ListAnswer, Vec<(SocketAddr, Duration)>), ProtoError> {
        let ttl = self.shared.ttl;
        let mut state = self.lock();
        if let Some(cached) = &state.cached[kind as usize]
            && cached.generation == state.generation
            && now < cached.stale_at
        {
            return Ok((cached.answer.clone(), Vec::new()));
        }
        let expired = state.expire(now, ttl);
        // One walk: after expire, every entry left is live.
        let mut nodes = Vec::with_capacity(state.entries.len());
        nodes.extend(state.live_info(now, ttl));
        let stale_at = state
            .expiry_floor
            .map_or(now + CACHE_FOR, |t| t.min(now + CACHE_FOR));
        let response = match kind {
            ListKind::Nodes => Response::Nodes(
                nodes
                    .into_iter()
                    .filter(|n| n.mode == NodeMode::Direct)
                    .map(|n| NodeEntry {
                        addr: n.addr,
                        age_secs: n.age_secs,
                    })
                    .collect(),
            ),
            ListKind::NodesLong => Response::NodesLong(nodes),
        };
        let count = match &response {
            Response::Nodes(n) => n.len(),
            Response::NodesLong(n) => n.len(),
            _ => 0,
        };
        let answer = ListAnswer {
            frame: frame::encode(&response)?.into(),
            count,
        };
        state.cached[kind as usize] = Some(CachedList {
            generation: state.generation,
            stale_at,
            answer: answer.clone(),
        });
        Ok((answer, expired))
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent before it can panic
        // (allocation failure aborts), so a poisoned lock is still usable.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Keeps the expiry floor at or below the expiry of an entry seen at `seen`.
    fn lower_expiry_floor(&mut self, seen: Instant, ttl: Duration) {
        if let Some(at) = seen.checked_add(ttl) {
            self.expiry_floor = Some(self.expiry_floor.map_or(at, |f| f.min(at)));
        }
    }

    fn live(&self, now: Instant, ttl: Duration) -> impl Iterator<Item = NodeEntry> + '_ {
        self.live_info(now, ttl).map(|n| NodeEntry {
            addr: n.addr,
            age_secs: n.age_secs,
        })
    }

    fn live_info(&self, now: Instant, ttl: Duration) -> impl Iterator<Item = NodeInfo> + '_ {
        self.entries.values().filter_map(move |e| {
            let age = now.saturating_duration_since(e.last_seen);
            (age < ttl).then(|| NodeInfo {
                addr: e.addr,
                age_secs: u32::try_from(age.as_secs()).unwrap_or(u32::MAX),
                mode: e.mode,
            })
        })
    }

    fn expire(&mut self, now: Instant, ttl: Duration) -> Vec<(SocketAddr, Duration)> {
        if self.expiry_floor.is_none_or(|floor| now < floor) {
            return Vec::new();
        }
        let mut gone = Vec::new();
        let mut floor: Option<Instant> = None;
        self.entries.retain(|_, e| {
            let age = now.saturating_duration_since(e.last_seen);
            let keep = age < ttl;
            if !keep {
                gone.push((e.addr, age));
            } else if let Some(at) = e.last_seen.checked_add(ttl) {
                floor = Some(floor.map_or(at, |f| f.min(at)));
            }
            keep
        });
        self.expiry_floor = floor;
        for (addr, _) in &gone {
            self.by_addr.remove(addr);
        }
        if !gone.is_empty() {
            self.generation += 1;
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn lists_in_registration_order_and_refresh_never_duplicates() {
        let reg = Registry::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(reg.register(addr(3), t0), Ok(Registered::Joined));
        assert_eq!(reg.register(addr(1), t0), Ok(Registered::Joined));
        assert_eq!(reg.register(addr(2), t0), Ok(Registered::Joined));
        assert_eq!(reg.register(addr(3), t0), Ok(Registered::Refreshed));
        let ports: Vec<u16> = reg.nodes(t0).iter().map(|n| n.addr.port()).collect();
        assert_eq!(ports, [3, 1, 2]);
    }

    #[test]
    fn expires_silent_nodes_and_keeps_refreshed_ones() {
        let reg = Registry::new(Duration::from_secs(30));
        let t0 = Instant::now();
        reg.register(addr(1), t0).unwrap();
        reg.register(addr(2), t0).unwrap();
        reg.register(addr(2), t0 + Duration::from_secs(20)).unwrap();
        let later = t0 + Duration::from_secs(31);
        assert_eq!(reg.nodes(later).len(), 1, "an expired node is never listed");
        let gone = reg.expire(later);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, addr(1));
        let nodes = reg.nodes(later);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].age_secs, 11);
    }

    #[test]
    fn each_node_expires_at_its_own_ttl_between_walks() {
        let reg = Registry::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        reg.register(addr(1), t0).unwrap();
        reg.register(addr(2), t0 + secs(10)).unwrap();
        assert!(reg.expire(t0 + secs(5)).is_empty());
        let gone = |at| -> Vec<u16> { reg.expire(at).iter().map(|(a, _)| a.port()).collect() };
        assert_eq!(gone(t0 + secs(31)), [1]);
        assert!(gone(t0 + secs(35)).is_empty());
        // A refresh stamped earlier than the floor still counts.
        reg.register(addr(3), t0 + secs(35)).unwrap();
        reg.register(addr(3), t0 + secs(12)).unwrap();
        assert_eq!(gone(t0 + secs(41)), [2]);
        assert_eq!(gone(t0 + secs(43)), [3]);
        assert!(reg.is_empty());
    }

    #[test]
    fn unregister_removes_at_once() {
        let reg = Registry::new(Duration::from_secs(30));
        let t0 = Instant::now();
        reg.register(addr(1), t0).unwrap();
        assert!(reg.unregister(addr(1)));
        assert!(!reg.unregister(addr(1)));
        assert!(reg.is_empty());
    }

    #[test]
    fn cached_list_follows_joins_and_leaves() {
        let reg = Registry::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let listed = |reg: &Registry| {
            let (answer, _) = reg.list_answer(t0).unwrap();
            match frame::decode::<Response>(&answer.frame[frame::HEADER_LEN..]) {
                Ok(Response::Nodes(n)) => {
                    assert_eq!(n.len(), answer.count);
                    n.len()
                }
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(listed(&reg), 0);
        reg.register(addr(1), t0).unwrap();
        assert_eq!(listed(&reg), 1);
        reg.unregister(addr(1));
        assert_eq!(listed(&reg), 0);
    }

    #[test]
    fn cached_list_never_outlives_a_ttl() {
        let reg = Registry::new(Duration::from_secs(2));
        let t0 = Instant::now();
        reg.register(addr(1), t0).unwrap();
        let count = |at: Instant| reg.list_answer(at).unwrap().0.count;
        assert_eq!(count(t0 + Duration::from_millis(1500)), 1);
        // Within CACHE_FOR of the answer above, but past the node's TTL.
        assert_eq!(count(t0 + Duration::from_millis(2100)), 0);
    }

    #[test]
    fn the_old_list_shows_direct_nodes_only_and_the_long_list_every_mode() {
        let reg = Registry::new(Duration::from_secs(30));
        let t0 = Instant::now();
        reg.register(addr(1), t0).unwrap();
        reg.register_as(addr(2), NodeMode::Relayed, t0).unwrap();
        let decode = |frame: &[u8]| frame::decode::<Response>(&frame[frame::HEADER_LEN..]);
        let (old, _) = reg.list_answer(t0).unwrap();
        assert_eq!(
            decode(&old.frame).unwrap(),
            Response::Nodes(vec![NodeEntry {
                addr: addr(1),
                age_secs: 0
            }])
        );
        let (long, _) = reg.list_long_answer(t0).unwrap();
        let Ok(Response::NodesLong(nodes)) = decode(&long.frame) else {
            panic!("not a long list");
        };
        let modes: Vec<_> = nodes.iter().map(|n| (n.addr.port(), n.mode)).collect();
        assert_eq!(modes, [(1, NodeMode::Direct), (2, NodeMode::Relayed)]);
        assert_eq!(long.count, 2);
    }

    #[test]
    fn table_is_capped() {
        let reg = Registry::new(Duration::from_secs(30));
        let t0 = Instant::now();
        for i in 0..MAX_LIST_NODES {
            let ip = u32::try_from(i).unwrap().to_be_bytes();
            reg.register(SocketAddr::from((ip, 1)), t0).unwrap();
        }
        assert_eq!(reg.register(addr(9), t0), Err(TableFull));
        assert_eq!(
            reg.register(SocketAddr::from(([0, 0, 0, 0], 1)), t0),
            Ok(Registered::Refreshed)
        );
    }
}
