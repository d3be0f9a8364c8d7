//! The table of registered nodes: a cheap-to-clone handle around a mutex,
//! with expiry next to the state it expires.
//!
//! Nodes are kept in registration order (a refresh keeps a node's place).
//! The encoded list answer is cached, because the relay answers many more
//! list requests than the table changes: a list request then costs a lock
//! and a reference count, not an encoding of up to 100 000 entries.
//!
//! Entries are also counted per source: the IP address the registration
//! came from. One source may hold at most [`Limits::per_source`] entries, so
//! a host without a token cannot fill the table alone (docs/SECURITY.md).
//! When the table is full anyway (many sources), a newcomer takes the place
//! of the newest entry of the source holding the most, as long as that
//! source holds more than the newcomer's own: a source that holds nothing
//! is never refused, and a full table stays shared as evenly as it can be.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use net::secure::NodeKey;
use proto::{MAX_LIST_NODES, NodeEntry, NodeInfo, NodeMode, ProtoError, Response, frame};

/// How long a cached list answer may be served; ages in it are whole seconds.
const CACHE_FOR: Duration = Duration::from_secs(1);

/// Default of [`Limits::per_source`] (`relay --max-nodes-per-ip`). Three
/// nodes on one host, a few hosts behind one NAT address or one test rig
/// all fit; a flooding host adds at most this many bogus entries for
/// clients to try, and filling the table takes 6 250 addresses.
pub const DEFAULT_MAX_NODES_PER_IP: usize = 16;

/// How big the table may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in all: what one list answer may carry.
    pub total: usize,
    /// Entries registered from one source IP address.
    pub per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total: MAX_LIST_NODES,
            per_source: DEFAULT_MAX_NODES_PER_IP,
        }
    }
}

#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

/// State that lives exactly as long as a node's entry (the index's
/// catalogs). Told under the registry's lock, so it sees joins and leaves
/// in the table's own order.
pub trait Membership: Send + Sync {
    fn joined(&self, addr: SocketAddr);
    /// Unregistered or expired.
    fn left(&self, addr: SocketAddr);
}

struct Shared {
    ttl: Duration,
    limits: Limits,
    state: Mutex<State>,
    members: Option<Arc<dyn Membership>>,
}

#[derive(Default)]
struct State {
    /// Registration order: sequence number to entry.
    entries: BTreeMap<u64, Entry>,
    /// Address to sequence number.
    by_addr: HashMap<SocketAddr, u64>,
    /// Source IP to the sequence numbers of its entries (none: no key).
    by_source: HashMap<IpAddr, BTreeSet<u64>>,
    /// (entries, source) for every source: the last one holds the most.
    /// Keeps finding whom to evict from a full table a logarithmic step.
    sources_by_count: BTreeSet<(usize, IpAddr)>,
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
    /// The IP address the registration came from; counted against its cap.
    source: IpAddr,
    last_seen: Instant,
    mode: NodeMode,
    /// In a private network, the static key its handshake proved.
    key: Option<NodeKey>,
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
    /// Listed now; when the table was full, in place of `evicted`.
    Joined {
        evicted: Option<SocketAddr>,
    },
    Refreshed,
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The source already holds its [`Limits::per_source`] entries.
    TooManyFromSource { limit: usize },
    /// The table is full and no source holds more entries than this one.
    TableFull,
}

impl Registry {
    /// An empty table whose entries expire `ttl` after their last refresh.
    pub fn new(ttl: Duration, limits: Limits) -> Registry {
        Registry::with_membership(ttl, limits, None)
    }

    /// As [`Registry::new`], telling `members` of every join and leave
    /// (eviction from a full table included).
    pub fn with_membership(
        ttl: Duration,
        limits: Limits,
        members: Option<Arc<dyn Membership>>,
    ) -> Registry {
        Registry {
            shared: Arc::new(Shared {
                ttl,
                limits,
                state: Mutex::new(State::default()),
                members,
            }),
        }
    }

    /// Tells the members about nodes that left (still under the lock).
    fn gone(&self, gone: &[(SocketAddr, Duration)]) {
        if let Some(members) = &self.shared.members {
            for (addr, _) in gone {
                members.left(*addr);
            }
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

    /// Adds `addr`, registered from `source`, or refreshes it if it is
    /// listed already (a refresh is never refused, and the entry stays
    /// counted against the source that added it).
    pub fn register(
        &self,
        addr: SocketAddr,
        source: IpAddr,
        now: Instant,
    ) -> Result<Registered, Refused> {
        self.register_as(addr, source, NodeMode::Direct, None, now)
    }

    /// Like [`Registry::register`], for a node reached as `mode` and, in a
    /// private network, holding `key` (a refresh updates both: a node that
    /// restarted with a new key is listed with it).
    pub fn register_as(
        &self,
        addr: SocketAddr,
        source: IpAddr,
        mode: NodeMode,
        key: Option<NodeKey>,
        now: Instant,
    ) -> Result<Registered, Refused> {
        let (ttl, limits) = (self.shared.ttl, self.shared.limits);
        let mut state = self.lock();
        if let Some(seq) = state.by_addr.get(&addr).copied() {
            let mut changed = false;
            if let Some(entry) = state.entries.get_mut(&seq) {
                entry.last_seen = now;
                changed = entry.mode != mode || entry.key != key;
                entry.mode = mode;
                entry.key = key;
            }
            if changed {
                state.generation += 1;
            }
            state.lower_expiry_floor(now, ttl);
            return Ok(Registered::Refreshed);
        }
        let held = state.held_by(source);
        if held >= limits.per_source {
            return Err(Refused::TooManyFromSource {
                limit: limits.per_source,
            });
        }
        let mut evicted = None;
        if state.entries.len() >= limits.total {
            // Whoever holds the most gives up its newest entry, unless that
            // is no more than this source holds: then the table is shared
            // as evenly as it can be, and evicting would only trade places.
            let top = state.sources_by_count.last().copied();
            let Some((_, top_source)) = top.filter(|(most, _)| *most > held) else {
                return Err(Refused::TableFull);
            };
            let newest = state.by_source.get(&top_source).and_then(|s| s.last());
            evicted = newest.copied().and_then(|seq| state.remove(seq));
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.entries.insert(
            seq,
            Entry {
                addr,
                source,
                last_seen: now,
                mode,
                key,
            },
        );
        state.by_addr.insert(addr, seq);
        state.count_source(source, held, held + 1);
        state.by_source.entry(source).or_default().insert(seq);
        state.generation += 1;
        state.lower_expiry_floor(now, ttl);
        if let Some(gone) = evicted {
            self.gone(&[(gone, Duration::ZERO)]);
        }
        if let Some(members) = &self.shared.members {
            members.joined(addr);
        }
        Ok(Registered::Joined { evicted })
    }

    /// The key `addr` is listed with, in a private network.
    pub fn key_of(&self, addr: SocketAddr) -> Option<NodeKey> {
        let state = self.lock();
        let seq = state.by_addr.get(&addr)?;
        state.entries.get(seq)?.key
    }

    /// Removes `addr`; false if it was not listed.
    pub fn unregister(&self, addr: SocketAddr) -> bool {
        let mut state = self.lock();
        let Some(seq) = state.by_addr.get(&addr).copied() else {
            return false;
        };
        let removed = state.remove(seq);
        if let Some(addr) = removed {
            self.gone(&[(addr, Duration::ZERO)]);
        }
        removed.is_some()
    }

    /// Removes every node not refreshed within the TTL; returns them with
    /// how long they had been silent.
    pub fn expire(&self, now: Instant) -> Vec<(SocketAddr, Duration)> {
        let ttl = self.shared.ttl;
        let mut state = self.lock();
        let gone = state.expire(now, ttl);
        self.gone(&gone);
        gone
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
        self.gone(&expired);
        // One walk: after expire, every entry left is live.
        let mut nodes = Vec::with_capacity(state.entries.len());
        nodes.extend(state.live_info(now, ttl));
        let stale_at = state
            .expiry_floor
            .map_or(now + CACHE_FOR, |t| t.min(now + CACHE_FOR));
        let (response, count) = match kind {
            ListKind::Nodes => {
                let direct: Vec<NodeEntry> = nodes
                    .into_iter()
                    .filter(|n| n.mode == NodeMode::Direct)
                    .map(|n| NodeEntry {
                        addr: n.addr,
                        age_secs: n.age_secs,
                    })
                    .collect();
                let count = direct.len();
                (Response::Nodes(direct), count)
            }
            ListKind::NodesLong => {
                let count = nodes.len();
                (Response::NodesLong(nodes), count)
            }
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

    /// How many entries `source` holds.
    fn held_by(&self, source: IpAddr) -> usize {
        self.by_source.get(&source).map_or(0, BTreeSet::len)
    }

    /// Moves `source` from `before` to `after` entries in `sources_by_count`.
    fn count_source(&mut self, source: IpAddr, before: usize, after: usize) {
        if before > 0 {
            self.sources_by_count.remove(&(before, source));
        }
        if after > 0 {
            self.sources_by_count.insert((after, source));
        }
    }

    /// Removes the entry `seq` from every index; returns its address.
    fn remove(&mut self, seq: u64) -> Option<SocketAddr> {
        let entry = self.entries.remove(&seq)?;
        self.forget(seq, entry.addr, entry.source);
        self.generation += 1;
        Some(entry.addr)
    }

    /// Drops an entry already taken out of `entries` from the other indexes.
    fn forget(&mut self, seq: u64, addr: SocketAddr, source: IpAddr) {
        self.by_addr.remove(&addr);
        let held = self.held_by(source);
        if let Some(seqs) = self.by_source.get_mut(&source) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.by_source.remove(&source);
            }
        }
        self.count_source(source, held, held.saturating_sub(1));
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
                key: e.key,
            })
        })
    }

    fn expire(&mut self, now: Instant, ttl: Duration) -> Vec<(SocketAddr, Duration)> {
        if self.expiry_floor.is_none_or(|floor| now < floor) {
            return Vec::new();
        }
        let mut gone = Vec::new();
        let mut floor: Option<Instant> = None;
        self.entries.retain(|&seq, e| {
            let age = now.saturating_duration_since(e.last_seen);
            let keep = age < ttl;
            if !keep {
                gone.push((seq, e.addr, e.source, age));
            } else if let Some(at) = e.last_seen.checked_add(ttl) {
                floor = Some(floor.map_or(at, |f| f.min(at)));
            }
            keep
        });
        self.expiry_floor = floor;
        if !gone.is_empty() {
            self.generation += 1;
        }
        gone.into_iter()
            .map(|(seq, addr, source, age)| {
                self.forget(seq, addr, source);
                (addr, age)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    const JOINED: Registered = Registered::Joined { evicted: None };

    fn table(ttl: Duration) -> Registry {
        Registry::new(ttl, Limits::default())
    }

    /// Registers `addr` from its own IP, as a node without
    /// --trust-advertised does.
    fn join(reg: &Registry, addr: SocketAddr, now: Instant) -> Result<Registered, Refused> {
        reg.register(addr, addr.ip(), now)
    }

    #[test]
    fn lists_in_registration_order_and_refresh_never_duplicates() {
        let reg = table(Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(join(&reg, addr(3), t0), Ok(JOINED));
        assert_eq!(join(&reg, addr(1), t0), Ok(JOINED));
        assert_eq!(join(&reg, addr(2), t0), Ok(JOINED));
        assert_eq!(join(&reg, addr(3), t0), Ok(Registered::Refreshed));
        let ports: Vec<u16> = reg.nodes(t0).iter().map(|n| n.addr.port()).collect();
        assert_eq!(ports, [3, 1, 2]);
    }

    #[test]
    fn expires_silent_nodes_and_keeps_refreshed_ones() {
        let reg = table(Duration::from_secs(30));
        let t0 = Instant::now();
        join(&reg, addr(1), t0).unwrap();
        join(&reg, addr(2), t0).unwrap();
        join(&reg, addr(2), t0 + Duration::from_secs(20)).unwrap();
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
        let reg = table(Duration::from_secs(30));
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        join(&reg, addr(1), t0).unwrap();
        join(&reg, addr(2), t0 + secs(10)).unwrap();
        assert!(reg.expire(t0 + secs(5)).is_empty());
        let gone = |at| -> Vec<u16> { reg.expire(at).iter().map(|(a, _)| a.port()).collect() };
        assert_eq!(gone(t0 + secs(31)), [1]);
        assert!(gone(t0 + secs(35)).is_empty());
        // A refresh stamped earlier than the floor still counts.
        join(&reg, addr(3), t0 + secs(35)).unwrap();
        join(&reg, addr(3), t0 + secs(12)).unwrap();
        assert_eq!(gone(t0 + secs(41)), [2]);
        assert_eq!(gone(t0 + secs(43)), [3]);
        assert!(reg.is_empty());
    }

    #[test]
    fn unregister_removes_at_once() {
        let reg = table(Duration::from_secs(30));
        let t0 = Instant::now();
        join(&reg, addr(1), t0).unwrap();
        assert!(reg.unregister(addr(1)));
        assert!(!reg.unregister(addr(1)));
        assert!(reg.is_empty());
    }

    #[test]
    fn cached_list_follows_joins_and_leaves() {
        let reg = table(Duration::from_secs(30));
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
        join(&reg, addr(1), t0).unwrap();
        assert_eq!(listed(&reg), 1);
        reg.unregister(addr(1));
        assert_eq!(listed(&reg), 0);
    }

    #[test]
    fn cached_list_never_outlives_a_ttl() {
        let reg = table(Duration::from_secs(2));
        let t0 = Instant::now();
        join(&reg, addr(1), t0).unwrap();
        let count = |at: Instant| reg.list_answer(at).unwrap().0.count;
        assert_eq!(count(t0 + Duration::from_millis(1500)), 1);
        // Within CACHE_FOR of the answer above, but past the node's TTL.
        assert_eq!(count(t0 + Duration::from_millis(2100)), 0);
    }

    #[test]
    fn members_hear_of_joins_evictions_unregisters_and_expiry() {
        #[derive(Default)]
        struct Log(Mutex<Vec<(bool, u16)>>);
        impl Membership for Log {
            fn joined(&self, addr: SocketAddr) {
                self.0.lock().unwrap().push((true, addr.port()));
            }
            fn left(&self, addr: SocketAddr) {
                self.0.lock().unwrap().push((false, addr.port()));
            }
        }
        let log = Arc::new(Log::default());
        let limits = Limits {
            total: 3,
            per_source: 3,
        };
        let reg = Registry::with_membership(Duration::from_secs(30), limits, Some(log.clone()));
        let t0 = Instant::now();
        join(&reg, addr(1), t0).unwrap();
        join(&reg, addr(2), t0).unwrap();
        join(&reg, addr(1), t0).unwrap();
        reg.unregister(addr(1));
        reg.register_as(addr(3), addr(3).ip(), NodeMode::Relayed, None, t0)
            .unwrap();
        // The table is full: another source evicts the newest entry of
        // 10.0.0.1, which holds the most.
        join(&reg, addr(4), t0).unwrap();
        let other = SocketAddr::from(([10, 0, 0, 2], 5));
        assert_eq!(
            join(&reg, other, t0),
            Ok(Registered::Joined {
                evicted: Some(addr(4))
            })
        );
        reg.expire(t0 + Duration::from_secs(31));
        let mut expected = vec![
            (true, 1),
            (true, 2),
            (false, 1),
            (true, 3),
            (true, 4),
            (false, 4),
            (true, 5),
        ];
        let mut log = log.0.lock().unwrap().clone();
        // Expiry tells of the rest in no particular order.
        let expired: BTreeSet<(bool, u16)> = log.split_off(expected.len()).into_iter().collect();
        assert_eq!(log, expected);
        expected = vec![(false, 2), (false, 3), (false, 5)];
        assert_eq!(expired, expected.into_iter().collect());
    }

    #[test]
    fn the_old_list_shows_direct_nodes_only_and_the_long_list_every_mode() {
        let reg = table(Duration::from_secs(30));
        let t0 = Instant::now();
        join(&reg, addr(1), t0).unwrap();
        reg.register_as(addr(2), addr(2).ip(), NodeMode::Relayed, None, t0)
            .unwrap();
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
    fn one_source_holds_at_most_its_cap_and_refreshes_stay_free() {
        let reg = Registry::new(
            Duration::from_secs(30),
            Limits {
                total: 100,
                per_source: 3,
            },
        );
        let t0 = Instant::now();
        for port in 1..=3 {
            assert_eq!(join(&reg, addr(port), t0), Ok(JOINED));
        }
        let refused = Err(Refused::TooManyFromSource { limit: 3 });
        assert_eq!(join(&reg, addr(4), t0), refused);
        assert_eq!(join(&reg, addr(1), t0), Ok(Registered::Refreshed));
        // Counted by where it came from, not by the address it lists.
        let advertised = SocketAddr::from(([10, 9, 9, 9], 1));
        let source: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(reg.register(advertised, source, t0), refused);
        // Another source has its own allowance.
        let other = SocketAddr::from(([10, 0, 0, 2], 1));
        assert_eq!(join(&reg, other, t0), Ok(JOINED));
        // Leaving or expiring gives the place back.
        assert!(reg.unregister(addr(2)));
        assert_eq!(join(&reg, addr(4), t0), Ok(JOINED));
        reg.expire(t0 + Duration::from_secs(31));
        assert!(reg.is_empty());
        for port in 5..=7 {
            assert_eq!(join(&reg, addr(port), t0), Ok(JOINED));
        }
    }

    #[test]
    fn a_full_table_makes_room_for_a_source_that_holds_less() {
        let reg = Registry::new(
            Duration::from_secs(30),
            Limits {
                total: 10,
                per_source: 4,
            },
        );
        let t0 = Instant::now();
        let from = |host: u8, port: u16| SocketAddr::from(([10, 0, 1, host], port));
        // Two flooding sources at their cap, one real host with one node.
        for port in 1..=4 {
            join(&reg, from(2, port), t0).unwrap();
            join(&reg, from(3, port), t0).unwrap();
        }
        join(&reg, from(1, 1), t0).unwrap();
        join(&reg, from(1, 2), t0).unwrap();
        assert_eq!(reg.len(), 10);
        // A source holding nothing evicts the newest entry of a top holder.
        assert_eq!(
            join(&reg, from(4, 1), t0),
            Ok(Registered::Joined {
                evicted: Some(from(3, 4))
            })
        );
        assert_eq!(
            join(&reg, from(5, 1), t0),
            Ok(Registered::Joined {
                evicted: Some(from(2, 4))
            })
        );
        // Now 10.0.1.2 and .3 hold 3 each, .1 holds 2: it may still grow.
        assert_eq!(
            join(&reg, from(1, 3), t0),
            Ok(Registered::Joined {
                evicted: Some(from(3, 3))
            })
        );
        // .1 and .2 hold 3, .3 holds 2: a source holding 3 gains nothing.
        assert_eq!(join(&reg, from(2, 9), t0), Err(Refused::TableFull));
        assert_eq!(join(&reg, from(1, 9), t0), Err(Refused::TableFull));
        // Every newcomer from an empty source still gets in.
        for host in 10..40 {
            assert!(matches!(
                join(&reg, from(host, 1), t0),
                Ok(Registered::Joined { evicted: Some(_) })
            ));
        }
        assert_eq!(reg.len(), 10);
        assert_eq!(reg.nodes(t0).len(), 10);
        // A refresh of an entry still listed is never refused.
        assert_eq!(join(&reg, from(39, 1), t0), Ok(Registered::Refreshed));
    }

    #[test]
    fn the_whole_table_fills_from_enough_sources() {
        let reg = table(Duration::from_secs(30));
        let t0 = Instant::now();
        let per = Limits::default().per_source;
        for i in 0..MAX_LIST_NODES {
            let ip = u32::try_from(i / per).unwrap().to_be_bytes();
            let port = u16::try_from(1 + i % per).unwrap();
            join(&reg, SocketAddr::from((ip, port)), t0).unwrap();
        }
        assert_eq!(reg.len(), MAX_LIST_NODES);
        let last_source = u32::try_from((MAX_LIST_NODES - 1) / per).unwrap();
        let full = SocketAddr::from((last_source.to_be_bytes(), 999));
        assert_eq!(
            join(&reg, full, t0),
            Err(Refused::TooManyFromSource { limit: per })
        );
        assert!(matches!(
            join(&reg, addr(9), t0),
            Ok(Registered::Joined { evicted: Some(_) })
        ));
        assert_eq!(reg.len(), MAX_LIST_NODES);
    }
}
