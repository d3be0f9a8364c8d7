//! The relay's index: every active node's catalog (name, size, content
//! hash of each file it shares), and the maps that answer "who has this
//! name", "who has this content" and "which names contain this text".
//!
//! A catalog lives exactly as long as its node's entry in the
//! [`Registry`](crate::Registry): the registry tells the index (through
//! [`Membership`]) under its own lock when a node joins and when it leaves
//! or expires, so a catalog can never outlive its node or attach to a node
//! that is gone. Lock order is always registry, then index; the index never
//! calls the registry.
//!
//! Memory is the point of the layout (docs/BENCHMARKS.md: 1 000 nodes x
//! 1 000 files within 200 MiB of relay RSS):
//! - names and hashes are interned once each, their bytes packed in one
//!   arena per kind (no allocation per string), found through an
//!   open-addressing table of 4-byte ids keyed with a per-process random
//!   SipHash key, so a node cannot choose names that collide;
//! - an entry (one file of one node) is 32 bytes: node, name, hash, size,
//!   and the links of two intrusive lists, the holders of its name and the
//!   holders of its hash, so those lists cost nothing more.
//!
//! Everything here is plain data, tested without sockets.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use proto::{
    CatalogAck, CatalogUpdateLong, ContentHash, Holder, HolderList, HolderListLong, HolderLong,
    MAX_FRAME, MAX_HOLDERS, MAX_LIST_FILES, SearchHit, SearchResults, Target,
};

use crate::registry::Membership;

/// Most files the relay indexes for one node: as many as one listing holds.
pub const DEFAULT_NODE_FILES: usize = MAX_LIST_FILES;
/// Most entries in the whole index: 1 000 nodes x 1 000 files and some room;
/// about 140 bytes each when every name and hash differs.
pub const DEFAULT_INDEX_ENTRIES: usize = 1 << 20;
/// Longest name the index takes (bytes). Longer names are still served by
/// their node, but cannot be found through the relay.
pub const MAX_INDEXED_NAME: usize = 1024;
/// Most bytes of distinct names the index holds, so long names cannot
/// multiply the memory an entry costs.
pub const MAX_NAME_BYTES: usize = 64 << 20;

/// The index's limits (docs/SECURITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    pub node_files: usize,
    pub entries: usize,
    pub name_len: usize,
    pub name_bytes: usize,
}

impl Default for IndexLimits {
    fn default() -> IndexLimits {
        IndexLimits {
            node_files: DEFAULT_NODE_FILES,
            entries: DEFAULT_INDEX_ENTRIES,
            name_len: MAX_INDEXED_NAME,
            name_bytes: MAX_NAME_BYTES,
        }
    }
}

/// The index, a cheap-to-clone handle. Behind a read-write lock: a search
/// walks every name, and who-has answers and other searches go on beside
/// it; only catalogs, joins and leaves wait for it.
#[derive(Clone)]
pub struct Index {
    shared: Arc<RwLock<State>>,
}

/// No entry (end of an intrusive list).
const NIL: u32 = u32::MAX;

struct State {
    limits: IndexLimits,
    by_addr: HashMap<SocketAddr, u32>,
    nodes: Vec<Option<Node>>,
    free_nodes: Vec<u32>,
    /// Registration order of the next node to join.
    next_order: u64,
    /// Listed nodes that have sent no catalog yet.
    uncataloged: usize,
    names: Interner,
    hashes: Interner,
    entries: Vec<Entry>,
    free_entries: Vec<u32>,
}

struct Node {
    addr: SocketAddr,
    order: u64,
    /// The seq of the last update applied.
    seq: u64,
    /// Whether any update was applied (a node without one is asked
    /// directly by clients: it may be new, or an older node).
    cataloged: bool,
    /// This node's entries; each entry knows its position here.
    entries: Vec<u32>,
}

/// One file of one node: 32 bytes.
#[derive(Clone, Copy)]
struct Entry {
    node: u32,
    name: u32,
    /// NIL while the node has not hashed this file yet (its name is
    /// known, its content not): in no hash's holder list.
    hash: u32,
    /// Next holder of the same name (NIL at the end).
    next_by_name: u32,
    /// Next holder of the same hash.
    next_by_hash: u32,
    /// Position in its node's list.
    pos: u32,
    size: u64,
}

/// Why a catalog update was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotListed;

/// What the index holds, for logs and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub nodes: usize,
    pub entries: usize,
    pub names: usize,
    pub hashes: usize,
    /// Bytes of the distinct names held (limit [`MAX_NAME_BYTES`]).
    pub name_bytes: usize,
}

impl Index {
    pub fn new(limits: IndexLimits) -> Index {
        Index {
            shared: Arc::new(RwLock::new(State {
                limits,
                by_addr: HashMap::new(),
                nodes: Vec::new(),
                free_nodes: Vec::new(),
                next_order: 0,
                uncataloged: 0,
                names: Interner::new(),
                hashes: Interner::new(),
                entries: Vec::new(),
                free_entries: Vec::new(),
            })),
        }
    }

    pub fn limits(&self) -> IndexLimits {
        self.read().limits
    }

    // Every update keeps the lists consistent before it can panic
    // (allocation failure aborts), so a poisoned lock is still usable.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.shared.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a catalog update from the node listed as `addr` (an update
    /// of the first form converts: all its hashes are known).
    pub fn apply(
        &self,
        addr: SocketAddr,
        update: &CatalogUpdateLong,
    ) -> Result<CatalogAck, NotListed> {
        self.write().apply(addr, update)
    }

    /// The holders of a name or a content, oldest registration first, one
    /// per node. A node still hashing a file of that name is no holder
    /// here (a holder has a hash): it is listed among the unindexed nodes,
    /// which a client asks by name, older clients too.
    pub fn who_has(&self, target: &Target) -> HolderList {
        self.read().who_has(target)
    }

    /// As [`Index::who_has`], with the nodes still hashing a file of that
    /// name among the holders, without a hash.
    pub fn who_has_long(&self, target: &Target) -> HolderListLong {
        self.read().who_has_long(target)
    }

    /// Names containing `text` (ASCII letters in either case), one hit per
    /// name and content, at most `limit` (and at most what one frame holds).
    pub fn search(&self, text: &str, limit: usize) -> SearchResults {
        self.read().search(text, limit)
    }

    pub fn stats(&self) -> IndexStats {
        let state = self.read();
        IndexStats {
            nodes: state.by_addr.len(),
            entries: state.entries.len() - state.free_entries.len(),
            names: state.names.len,
            hashes: state.hashes.len,
            name_bytes: state.names.live_bytes,
        }
    }

    /// How many files the index holds for `addr` (None: not listed).
    pub fn files_of(&self, addr: SocketAddr) -> Option<usize> {
        let state = self.read();
        let slot = *state.by_addr.get(&addr)?;
        state.node(slot).map(|n| n.entries.len())
    }
}

impl Membership for Index {
    fn joined(&self, addr: SocketAddr) {
        self.write().join(addr);
    }

    fn left(&self, addr: SocketAddr) {
        self.write().leave(addr);
    }
}

impl State {
    fn node(&self, slot: u32) -> Option<&Node> {
        self.nodes.get(slot as usize)?.as_ref()
    }

    fn node_mut(&mut self, slot: u32) -> &mut Node {
        self.nodes[slot as usize]
            .as_mut()
            .expect("a listed node's slot is occupied")
    }

    fn join(&mut self, addr: SocketAddr) {
        if self.by_addr.contains_key(&addr) {
            return;
        }
        let node = Node {
            addr,
            order: self.next_order,
            seq: 0,
            cataloged: false,
            entries: Vec::new(),
        };
        self.next_order += 1;
        let slot = match self.free_nodes.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = Some(node);
                slot
            }
            None => {
                self.nodes.push(Some(node));
                u32::try_from(self.nodes.len() - 1).expect("nodes are capped far below u32")
            }
        };
        self.by_addr.insert(addr, slot);
        self.uncataloged += 1;
    }

    fn leave(&mut self, addr: SocketAddr) {
        let Some(slot) = self.by_addr.remove(&addr) else {
            return;
        };
        self.clear(slot);
        if !self.node_mut(slot).cataloged {
            self.uncataloged -= 1;
        }
        self.nodes[slot as usize] = None;
        self.free_nodes.push(slot);
    }

    /// Removes every entry of the node in `slot`.
    fn clear(&mut self, slot: u32) {
        let entries = std::mem::take(&mut self.node_mut(slot).entries);
        for id in entries {
            self.unlink(id);
            self.free_entries.push(id);
        }
    }

    fn apply(
        &mut self,
        addr: SocketAddr,
        update: &CatalogUpdateLong,
    ) -> Result<CatalogAck, NotListed> {
        let slot = *self.by_addr.get(&addr).ok_or(NotListed)?;
        let node = self.node_mut(slot);
        if !update.reset && update.base_seq != node.seq {
            let (seq, files) = (node.seq, node.entries.len());
            return Ok(ack(seq, files, 0));
        }
        if update.reset {
            self.clear(slot);
        }
        for name in &update.removed {
            if let Some(id) = self.find(slot, name) {
                self.remove_entry(id);
            }
        }
        let mut refused = 0usize;
        for entry in &update.added {
            if !self.add(slot, &entry.name, entry.size, entry.hash.as_ref()) {
                refused += 1;
            }
        }
        let node = self.node_mut(slot);
        node.seq = update.seq;
        let first = !node.cataloged;
        node.cataloged = true;
        let files = node.entries.len();
        if first {
            self.uncataloged -= 1;
        }
        Ok(ack(update.seq, files, refused))
    }

    /// The entry of `name` in the node in `slot`.
    fn find(&self, slot: u32, name: &str) -> Option<u32> {
        let name = self.names.get(name.as_bytes())?;
        let mut id = self.names.recs[name as usize].head;
        while id != NIL {
            let e = &self.entries[id as usize];
            if e.node == slot {
                return Some(id);
            }
            id = e.next_by_name;
        }
        None
    }

    /// The hash of entry `id`; None while its node is hashing it.
    fn hash_of(&self, id: u32) -> Option<ContentHash> {
        match self.entries[id as usize].hash {
            NIL => None,
            hash => Some(ContentHash(self.hashes.bytes(hash).try_into().ok()?)),
        }
    }

    /// Adds or replaces `name` in the node's catalog (`hash` None: not
    /// hashed yet); false if a limit refused it.
    fn add(&mut self, slot: u32, name: &str, size: u64, hash: Option<&ContentHash>) -> bool {
        if let Some(id) = self.find(slot, name) {
            if self.hash_of(id).as_ref() == hash {
                self.entries[id as usize].size = size;
                return true;
            }
            self.remove_entry(id);
        }
        let limits = self.limits;
        let live = self.entries.len() - self.free_entries.len();
        let new_name = self.names.get(name.as_bytes()).is_none();
        if name.is_empty()
            || name.len() > limits.name_len
            || self.node(slot).map_or(0, |n| n.entries.len()) >= limits.node_files
            || live >= limits.entries
            || (new_name && self.names.live_bytes + name.len() > limits.name_bytes)
        {
            return false;
        }
        let name_id = self.names.intern(name.as_bytes());
        let hash_id = hash.map_or(NIL, |h| self.hashes.intern(&h.0));
        let node = self.node_mut(slot);
        let pos = u32::try_from(node.entries.len()).expect("node files are capped");
        let entry = Entry {
            node: slot,
            name: name_id,
            hash: hash_id,
            next_by_name: self.names.recs[name_id as usize].head,
            next_by_hash: match hash_id {
                NIL => NIL,
                h => self.hashes.recs[h as usize].head,
            },
            pos,
            size,
        };
        let id = match self.free_entries.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                self.entries.push(entry);
                u32::try_from(self.entries.len() - 1).expect("entries are capped below u32")
            }
        };
        self.names.recs[name_id as usize].head = id;
        if hash_id != NIL {
            self.hashes.recs[hash_id as usize].head = id;
        }
        self.node_mut(slot).entries.push(id);
        true
    }

    /// Removes one entry from its node's list and frees it.
    fn remove_entry(&mut self, id: u32) {
        let Entry { node, pos, .. } = self.entries[id as usize];
        let list = &mut self.node_mut(node).entries;
        list.swap_remove(pos as usize);
        if let Some(&moved) = list.get(pos as usize) {
            self.entries[moved as usize].pos = pos;
        }
        self.unlink(id);
        self.free_entries.push(id);
    }

    /// Takes an entry out of its name's and its hash's holder lists,
    /// releasing the name or hash when it was the last holder.
    fn unlink(&mut self, id: u32) {
        let e = self.entries[id as usize];
        let head = &mut self.names.recs[e.name as usize].head;
        unlink_from(&mut self.entries, head, id, |e| &mut e.next_by_name);
        if self.names.recs[e.name as usize].head == NIL {
            self.names.release(e.name);
        }
        if e.hash == NIL {
            return;
        }
        let head = &mut self.hashes.recs[e.hash as usize].head;
        unlink_from(&mut self.entries, head, id, |e| &mut e.next_by_hash);
        if self.hashes.recs[e.hash as usize].head == NIL {
            self.hashes.release(e.hash);
        }
    }

    /// The entries holding `target`, one per node (for a content held
    /// under several names, the first name bytewise), oldest registration
    /// first: a node is one holder, however many names it has for it.
    fn holding(&self, target: &Target) -> Vec<u32> {
        let (head, by_name) = match target {
            Target::Name(name) => (
                self.names
                    .get(name.as_bytes())
                    .map(|n| self.names.recs[n as usize].head),
                true,
            ),
            Target::Hash(hash) => (
                self.hashes
                    .get(&hash.0)
                    .map(|h| self.hashes.recs[h as usize].head),
                false,
            ),
        };
        let mut found: Vec<(u64, &[u8], u32)> = Vec::new();
        let mut id = head.unwrap_or(NIL);
        while id != NIL {
            let e = &self.entries[id as usize];
            if let Some(node) = self.node(e.node) {
                found.push((node.order, self.names.bytes(e.name), id));
            }
            id = if by_name {
                e.next_by_name
            } else {
                e.next_by_hash
            };
        }
        found.sort_unstable();
        found.dedup_by_key(|(order, _, _)| *order);
        found.into_iter().map(|(_, _, id)| id).collect()
    }

    /// The active nodes that have sent no catalog, oldest first.
    fn uncataloged(&self) -> Vec<(u64, SocketAddr)> {
        if self.uncataloged == 0 {
            return Vec::new();
        }
        let mut found: Vec<(u64, SocketAddr)> = self
            .nodes
            .iter()
            .flatten()
            .filter(|n| !n.cataloged)
            .map(|n| (n.order, n.addr))
            .collect();
        found.sort_unstable();
        found
    }

    fn holder_long(&self, id: u32) -> Option<HolderLong> {
        let e = &self.entries[id as usize];
        Some(HolderLong {
            addr: self.node(e.node)?.addr,
            name: self.names.text(e.name).to_string(),
            size: e.size,
            hash: self.hash_of(id),
        })
    }

    fn who_has(&self, target: &Target) -> HolderList {
        let mut holders = Vec::new();
        let mut unindexed = self.uncataloged();
        for id in self.holding(target) {
            let Some(holder) = self.holder_long(id) else {
                continue;
            };
            match holder.hash {
                Some(hash) => holders.push(Holder {
                    addr: holder.addr,
                    name: holder.name,
                    size: holder.size,
                    hash,
                }),
                // Not hashed yet: asked by name, like a node without a
                // catalog, by every client.
                None => {
                    let e = &self.entries[id as usize];
                    if let Some(node) = self.node(e.node) {
                        unindexed.push((node.order, node.addr));
                    }
                }
            }
        }
        unindexed.sort_unstable();
        let truncated = holders.len() > MAX_HOLDERS || unindexed.len() > MAX_HOLDERS;
        holders.truncate(MAX_HOLDERS);
        unindexed.truncate(MAX_HOLDERS);
        HolderList {
            nodes: count(self.by_addr.len()),
            holders,
            unindexed: unindexed.into_iter().map(|(_, a)| a).collect(),
            truncated,
        }
    }

    fn who_has_long(&self, target: &Target) -> HolderListLong {
        let holding = self.holding(target);
        let unindexed = self.uncataloged();
        let truncated = holding.len() > MAX_HOLDERS || unindexed.len() > MAX_HOLDERS;
        HolderListLong {
            nodes: count(self.by_addr.len()),
            holders: holding
                .into_iter()
                .take(MAX_HOLDERS)
                .filter_map(|id| self.holder_long(id))
                .collect(),
            unindexed: unindexed
                .into_iter()
                .take(MAX_HOLDERS)
                .map(|(_, a)| a)
                .collect(),
            truncated,
        }
    }

    fn search(&self, text: &str, limit: usize) -> SearchResults {
        let limit = limit.min(MAX_LIST_FILES);
        let needle = text.as_bytes();
        // The answer's encoded size (docs/PROTOCOL.md): tag, nodes, count,
        // flag, then per hit the name's length and bytes, size, hash, holders.
        let mut frame = 4 + 4 + 8 + 1;
        let mut hits = Vec::new();
        let mut truncated = false;
        'names: for (name_id, rec) in self.names.recs.iter().enumerate() {
            if rec.head == NIL {
                continue;
            }
            let name = self.names.text(name_id as u32);
            if !contains_ignoring_case(name, text, needle) {
                continue;
            }
            // This name's contents: (hash id, size, holders), few per name.
            let mut versions: Vec<(u32, u64, u32)> = Vec::new();
            let mut id = rec.head;
            while id != NIL {
                let e = &self.entries[id as usize];
                if e.hash == NIL {
                    // Not hashed yet: a hit names a content.
                    id = e.next_by_name;
                    continue;
                }
                match versions.iter_mut().find(|v| v.0 == e.hash) {
                    Some(v) => v.2 += 1,
                    None => versions.push((e.hash, e.size, 1)),
                }
                id = e.next_by_name;
            }
            for (hash, size, holders) in versions {
                frame += 8 + name.len() + 8 + 32 + 4;
                if hits.len() >= limit || frame > MAX_FRAME as usize {
                    truncated = true;
                    break 'names;
                }
                let Ok(hash) = self.hashes.bytes(hash).try_into() else {
                    continue;
                };
                hits.push(SearchHit {
                    name: name.to_string(),
                    size,
                    hash: ContentHash(hash),
                    holders,
                });
            }
        }
        hits.sort_by(|a, b| (&a.name, a.hash.0).cmp(&(&b.name, b.hash.0)));
        SearchResults {
            nodes: count(self.by_addr.len()),
            hits,
            truncated,
        }
    }
}

fn ack(seq: u64, files: usize, refused: usize) -> CatalogAck {
    CatalogAck {
        seq,
        files: count(files),
        refused: count(refused),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Unlinks `id` from the singly linked list starting at `head`, whose links
/// `next` selects. Walks the list: its length is the number of holders of
/// one name or hash, and the limits bound the sum over a node's files.
fn unlink_from(entries: &mut [Entry], head: &mut u32, id: u32, next: fn(&mut Entry) -> &mut u32) {
    if *head == id {
        *head = *next(&mut entries[id as usize]);
        return;
    }
    let mut at = *head;
    while at != NIL {
        let after = *next(&mut entries[at as usize]);
        if after == id {
            let skip = *next(&mut entries[id as usize]);
            *next(&mut entries[at as usize]) = skip;
            return;
        }
        at = after;
    }
}

/// Whether `name` contains `text` in either case, for all of Unicode
/// (`CAFÉ` finds `café.txt`). ASCII, the common case, is compared in place;
/// other names are lowercased first.
fn contains_ignoring_case(name: &str, text: &str, needle: &[u8]) -> bool {
    if name.is_ascii() && text.is_ascii() {
        return contains_ignoring_ascii_case(name.as_bytes(), needle);
    }
    name.to_lowercase().contains(&text.to_lowercase())
}

fn contains_ignoring_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Byte strings stored once each: ids are stable, the bytes live in one
/// arena, and an open-addressing table of ids finds them.
struct Interner {
    arena: Vec<u8>,
    recs: Vec<Rec>,
    free: Vec<u32>,
    /// Linear probing, load at most 1/2; [`NIL`] is an empty slot.
    table: Vec<u32>,
    /// Live strings.
    len: usize,
    live_bytes: usize,
    keys: std::collections::hash_map::RandomState,
}

#[derive(Clone, Copy)]
struct Rec {
    off: u32,
    len: u32,
    /// First holder (an entry id), NIL when the string is free.
    head: u32,
}

impl Interner {
    fn new() -> Interner {
        Interner {
            arena: Vec::new(),
            recs: Vec::new(),
            free: Vec::new(),
            table: vec![NIL; 16],
            len: 0,
            live_bytes: 0,
            keys: Default::default(),
        }
    }

    fn bytes(&self, id: u32) -> &[u8] {
        let rec = &self.recs[id as usize];
        &self.arena[rec.off as usize..(rec.off + rec.len) as usize]
    }

    fn text(&self, id: u32) -> &str {
        // Only names (checked UTF-8 when decoded) are read as text.
        std::str::from_utf8(self.bytes(id)).unwrap_or("")
    }

    fn home(&self, bytes: &[u8]) -> usize {
        (self.keys.hash_one(bytes) as usize) & (self.table.len() - 1)
    }

    fn get(&self, bytes: &[u8]) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut i = self.home(bytes);
        loop {
            let id = self.table[i];
            if id == NIL {
                return None;
            }
            if self.bytes(id) == bytes {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `bytes`, adding it (with no holders yet) if new. The
    /// caller links a holder at once, so a string is never left without.
    fn intern(&mut self, bytes: &[u8]) -> u32 {
        if let Some(id) = self.get(bytes) {
            return id;
        }
        if (self.len + 1) * 2 > self.table.len() {
            self.grow();
        }
        let off = u32::try_from(self.arena.len()).expect("the arena is capped below 4 GiB");
        self.arena.extend_from_slice(bytes);
        let rec = Rec {
            off,
            len: bytes.len() as u32,
            head: NIL,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.recs[id as usize] = rec;
                id
            }
            None => {
                self.recs.push(rec);
                u32::try_from(self.recs.len() - 1).expect("strings are capped below u32")
            }
        };
        self.place(id);
        self.len += 1;
        self.live_bytes += bytes.len();
        id
    }

    fn place(&mut self, id: u32) {
        let mask = self.table.len() - 1;
        let mut i = self.home(self.bytes(id));
        while self.table[i] != NIL {
            i = (i + 1) & mask;
        }
        self.table[i] = id;
    }

    fn grow(&mut self) {
        let bigger = vec![NIL; self.table.len() * 2];
        let old = std::mem::replace(&mut self.table, bigger);
        for id in old.into_iter().filter(|&id| id != NIL) {
            self.place(id);
        }
    }

    /// Frees a string with no holders left; its bytes become garbage in the
    /// arena until a compaction.
    fn release(&mut self, id: u32) {
        let mask = self.table.len() - 1;
        let mut i = self.home(self.bytes(id));
        while self.table[i] != id {
            i = (i + 1) & mask;
        }
        // Backward-shift deletion: later ids of the same run move up, so
        // every lookup still finds its id before an empty slot.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.table[j] != NIL {
            let home = self.home(self.bytes(self.table[j]));
            // j may fill the hole if its home is not within (hole, j].
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.table[hole] = self.table[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.table[hole] = NIL;
        let rec = &mut self.recs[id as usize];
        self.live_bytes -= rec.len as usize;
        rec.len = 0;
        rec.head = NIL;
        self.free.push(id);
        self.len -= 1;
        if self.arena.len() > 1 << 20 && self.arena.len() > 2 * self.live_bytes {
            self.compact();
        }
    }

    /// Rewrites the arena with live strings only; ids do not change.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.live_bytes);
        for rec in self.recs.iter_mut() {
            let start = rec.off as usize;
            let bytes = &self.arena[start..start + rec.len as usize];
            rec.off = arena.len() as u32;
            arena.extend_from_slice(bytes);
        }
        self.arena = arena;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CatalogEntry, CatalogUpdate, Registration};

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    fn hash(n: u8) -> ContentHash {
        ContentHash([n; 32])
    }

    fn entry(name: &str, h: u8) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            size: u64::from(h),
            hash: hash(h),
        }
    }

    fn update(
        base_seq: u64,
        seq: u64,
        reset: bool,
        added: Vec<CatalogEntry>,
        removed: &[&str],
    ) -> CatalogUpdateLong {
        CatalogUpdate {
            registration: Registration {
                port: 1,
                advertised_ip: None,
                token: None,
            },
            base_seq,
            seq,
            reset,
            added,
            removed: removed.iter().map(|s| s.to_string()).collect(),
        }
        .into()
    }

    /// A file `name` of `size` bytes that the node has not hashed yet.
    fn hashing(name: &str, size: u64) -> proto::FileEntryLong {
        proto::FileEntryLong {
            name: name.into(),
            size,
            hash: None,
        }
    }

    fn holders(index: &Index, name: &str) -> Vec<u16> {
        index
            .who_has(&Target::Name(name.into()))
            .holders
            .iter()
            .map(|h| h.addr.port())
            .collect()
    }

    #[test]
    fn who_has_and_searches_go_on_while_a_search_walks_the_names() {
        let index = Index::new(IndexLimits::default());
        index.joined(addr(1));
        index
            .apply(addr(1), &update(0, 1, true, vec![entry("a.txt", 1)], &[]))
            .unwrap();
        // What a long search holds while it walks a million names.
        let walking = index.read();
        let other = index.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let holders = holders(&other, "a.txt");
            let hits = other.search("A.T", 10).hits.len();
            let _ = tx.send((holders, hits));
        });
        let (holders, hits) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("who-has and search waited for the search in progress");
        drop(walking);
        assert_eq!(holders, [1]);
        assert_eq!(hits, 1);
    }

    #[test]
    fn who_has_answers_in_registration_order_with_each_holders_version() {
        let index = Index::new(IndexLimits::default());
        for port in [3, 1, 2] {
            index.joined(addr(port));
        }
        index
            .apply(addr(2), &update(0, 1, true, vec![entry("a.txt", 2)], &[]))
            .unwrap();
        index
            .apply(
                addr(3),
                &update(0, 1, true, vec![entry("a.txt", 3), entry("b", 3)], &[]),
            )
            .unwrap();
        assert_eq!(holders(&index, "a.txt"), [3, 2]);
        let list = index.who_has(&Target::Name("a.txt".into()));
        assert_eq!(list.nodes, 3);
        assert_eq!(list.holders[0].hash, hash(3));
        assert_eq!(list.holders[1].hash, hash(2));
        let by_hash = index.who_has(&Target::Hash(hash(3)));
        let names: Vec<&str> = by_hash.holders.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a.txt"], "one holder per node");
        let none = index.who_has(&Target::Name("zzz".into()));
        assert!(none.holders.is_empty());
        let unindexed: Vec<u16> = none.unindexed.iter().map(|a| a.port()).collect();
        assert_eq!(unindexed, [1], "node 1 sent no catalog");
        index
            .apply(addr(1), &update(0, 1, true, vec![], &[]))
            .unwrap();
        assert!(
            index
                .who_has(&Target::Name("zzz".into()))
                .unindexed
                .is_empty()
        );
        index.left(addr(1));
        index.joined(addr(1));
        assert_eq!(
            index.who_has(&Target::Name("zzz".into())).unindexed.len(),
            1
        );
    }

    #[test]
    fn a_name_not_hashed_yet_is_found_at_once_and_its_hash_follows() {
        let index = Index::new(IndexLimits::default());
        for port in [1, 2] {
            index.joined(addr(port));
        }
        index
            .apply(addr(1), &update(0, 1, true, vec![entry("new.bin", 1)], &[]))
            .unwrap();
        let mut fresh = update(0, 1, true, vec![], &[]);
        fresh.added.push(hashing("new.bin", 9));
        index.apply(addr(2), &fresh).unwrap();

        // The first form: node 2 is asked by name, as an unindexed node.
        let list = index.who_has(&Target::Name("new.bin".into()));
        assert_eq!(holders(&index, "new.bin"), [1]);
        assert_eq!(list.unindexed, [addr(2)]);
        // The long form: a holder, without a hash.
        let long = index.who_has_long(&Target::Name("new.bin".into()));
        let seen: Vec<(u16, Option<ContentHash>, u64)> = long
            .holders
            .iter()
            .map(|h| (h.addr.port(), h.hash, h.size))
            .collect();
        assert_eq!(seen, [(1, Some(hash(1)), 1), (2, None, 9)]);
        assert!(long.unindexed.is_empty());
        // Not a content yet: not found by hash, not a search hit.
        assert!(index.who_has(&Target::Hash(hash(9))).holders.is_empty());
        assert_eq!(index.search("new", 10).hits.len(), 1);

        // Its hash comes: an ordinary holder.
        let mut hashed = update(1, 2, false, vec![entry("new.bin", 1)], &[]);
        hashed.added[0].size = 9;
        index.apply(addr(2), &hashed).unwrap();
        assert_eq!(holders(&index, "new.bin"), [1, 2]);
        assert!(
            index
                .who_has(&Target::Name("new.bin".into()))
                .unindexed
                .is_empty()
        );
        assert_eq!(index.who_has(&Target::Hash(hash(1))).holders.len(), 2);
        // Rewritten: back to hashing, out of that content's holders.
        let mut rewritten = update(2, 3, false, vec![], &[]);
        rewritten.added.push(hashing("new.bin", 10));
        index.apply(addr(2), &rewritten).unwrap();
        assert_eq!(holders(&index, "new.bin"), [1]);
        assert_eq!(index.who_has(&Target::Hash(hash(1))).holders.len(), 1);
        // Removed while hashing, and gone with its node: nothing left.
        index
            .apply(addr(2), &update(3, 4, false, vec![], &["new.bin"]))
            .unwrap();
        assert_eq!(index.stats().entries, 1);
        index.left(addr(1));
        let stats = index.stats();
        assert_eq!((stats.entries, stats.names, stats.hashes), (0, 0, 0));
    }

    #[test]
    fn a_node_holding_a_content_under_many_names_is_one_holder() {
        let index = Index::new(IndexLimits::default());
        for port in [1, 2] {
            index.joined(addr(port));
        }
        let many: Vec<CatalogEntry> = ["c", "a", "b"].iter().map(|n| entry(n, 7)).collect();
        index
            .apply(addr(2), &update(0, 1, true, many, &[]))
            .unwrap();
        index
            .apply(addr(1), &update(0, 1, true, vec![entry("z", 7)], &[]))
            .unwrap();
        let list = index.who_has(&Target::Hash(hash(7)));
        let seen: Vec<(u16, &str)> = list
            .holders
            .iter()
            .map(|h| (h.addr.port(), h.name.as_str()))
            .collect();
        assert_eq!(seen, [(1, "z"), (2, "a")], "once per node, its first name");
        assert_eq!(index.who_has_long(&Target::Hash(hash(7))).holders.len(), 2);
    }

    #[test]
    fn deltas_apply_in_order_and_a_gap_asks_for_a_reset() {
        let index = Index::new(IndexLimits::default());
        index.joined(addr(1));
        let ack = index
            .apply(
                addr(1),
                &update(0, 1, true, vec![entry("a", 1), entry("b", 1)], &[]),
            )
            .unwrap();
        assert_eq!((ack.seq, ack.files), (1, 2));
        let ack = index
            .apply(addr(1), &update(1, 2, false, vec![entry("c", 1)], &["a"]))
            .unwrap();
        assert_eq!((ack.seq, ack.files), (2, 2));
        assert!(holders(&index, "a").is_empty());
        // A delta after one the relay never saw: nothing changes.
        let ack = index
            .apply(addr(1), &update(5, 6, false, vec![entry("d", 1)], &[]))
            .unwrap();
        assert_eq!((ack.seq, ack.files), (2, 2));
        assert!(holders(&index, "d").is_empty());
        // A new version of a name replaces the old one.
        index
            .apply(addr(1), &update(2, 3, false, vec![entry("b", 9)], &[]))
            .unwrap();
        assert_eq!(
            index.who_has(&Target::Name("b".into())).holders[0].hash,
            hash(9)
        );
        assert!(
            index
                .who_has(&Target::Hash(hash(1)))
                .holders
                .iter()
                .all(|h| h.name != "b")
        );
        // A reset replaces everything.
        let ack = index
            .apply(addr(1), &update(0, 4, true, vec![entry("z", 1)], &[]))
            .unwrap();
        assert_eq!(ack.files, 1);
        assert!(holders(&index, "c").is_empty());
        assert_eq!(holders(&index, "z"), [1]);
    }

    #[test]
    fn a_catalog_goes_with_its_node() {
        let index = Index::new(IndexLimits::default());
        assert_eq!(
            index.apply(addr(1), &update(0, 1, true, vec![], &[])),
            Err(NotListed)
        );
        index.joined(addr(1));
        index.joined(addr(2));
        index
            .apply(addr(1), &update(0, 1, true, vec![entry("a", 1)], &[]))
            .unwrap();
        index
            .apply(addr(2), &update(0, 1, true, vec![entry("a", 1)], &[]))
            .unwrap();
        index.left(addr(1));
        assert_eq!(holders(&index, "a"), [2]);
        index.left(addr(2));
        assert!(holders(&index, "a").is_empty());
        let stats = index.stats();
        assert_eq!(
            (stats.nodes, stats.entries, stats.names, stats.hashes),
            (0, 0, 0, 0)
        );
        // Back again: a new node, with an empty catalog at seq 0.
        index.joined(addr(1));
        assert_eq!(index.files_of(addr(1)), Some(0));
    }

    #[test]
    fn limits_refuse_what_does_not_fit_and_keep_the_rest() {
        let limits = IndexLimits {
            node_files: 3,
            entries: 4,
            name_len: 8,
            name_bytes: 1 << 20,
        };
        let index = Index::new(limits);
        index.joined(addr(1));
        index.joined(addr(2));
        let many: Vec<CatalogEntry> = (0..5).map(|i| entry(&format!("f{i}"), 1)).collect();
        let ack = index
            .apply(addr(1), &update(0, 1, true, many, &[]))
            .unwrap();
        assert_eq!((ack.files, ack.refused), (3, 2));
        let ack = index
            .apply(
                addr(2),
                &update(
                    0,
                    1,
                    true,
                    vec![entry("g1", 1), entry("g2", 1), entry("a-long-name", 1)],
                    &[],
                ),
            )
            .unwrap();
        assert_eq!(
            (ack.files, ack.refused),
            (1, 2),
            "one entry left in the index, one name too long"
        );
        assert_eq!(index.stats().entries, 4);
    }

    #[test]
    fn search_folds_case_for_all_of_unicode() {
        let index = Index::new(IndexLimits::default());
        index.joined(addr(1));
        let files = vec![
            entry("café.txt", 1),
            entry("ΣΟΦΙΑ.md", 2),
            entry("plain", 3),
        ];
        index
            .apply(addr(1), &update(0, 1, true, files, &[]))
            .unwrap();
        let names = |text: &str| -> Vec<String> {
            index
                .search(text, 10)
                .hits
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("CAFÉ"), ["café.txt"]);
        assert_eq!(names("σοφ"), ["ΣΟΦΙΑ.md"]);
        assert_eq!(names("PLAIN"), ["plain"]);
        assert!(names("nowhere").is_empty());
    }

    #[test]
    fn search_matches_either_case_groups_versions_and_caps() {
        let index = Index::new(IndexLimits::default());
        for port in 1..=3 {
            index.joined(addr(port));
        }
        index
            .apply(
                addr(1),
                &update(
                    0,
                    1,
                    true,
                    vec![entry("Report.pdf", 1), entry("notes.txt", 2)],
                    &[],
                ),
            )
            .unwrap();
        index
            .apply(
                addr(2),
                &update(
                    0,
                    1,
                    true,
                    vec![entry("report.pdf", 1), entry("Report.pdf", 1)],
                    &[],
                ),
            )
            .unwrap();
        index
            .apply(
                addr(3),
                &update(0, 1, true, vec![entry("Report.pdf", 7)], &[]),
            )
            .unwrap();
        let found = index.search("REPORT", 10);
        assert!(!found.truncated);
        let hits: Vec<(&str, u8, u32)> = found
            .hits
            .iter()
            .map(|h| (h.name.as_str(), h.hash.0[0], h.holders))
            .collect();
        assert_eq!(
            hits,
            [
                ("Report.pdf", 1, 2),
                ("Report.pdf", 7, 1),
                ("report.pdf", 1, 1)
            ]
        );
        let capped = index.search("", 2);
        assert!(capped.truncated);
        assert_eq!(capped.hits.len(), 2);
        assert!(index.search("nothing", 10).hits.is_empty());
    }

    #[test]
    fn the_interner_survives_churn() {
        let index = Index::new(IndexLimits::default());
        index.joined(addr(1));
        for round in 0..20u32 {
            let added = (0..500u32)
                .map(|i| entry(&format!("r{round}/f{i}-{}", "x".repeat(200)), (i % 7) as u8))
                .collect();
            index
                .apply(addr(1), &update(0, u64::from(round) + 1, true, added, &[]))
                .unwrap();
            assert_eq!(
                holders(&index, &format!("r{round}/f3-{}", "x".repeat(200))),
                [1]
            );
            if round > 0 {
                assert!(
                    holders(&index, &format!("r{}/f3-{}", round - 1, "x".repeat(200))).is_empty()
                );
            }
        }
        let stats = index.stats();
        assert_eq!((stats.entries, stats.names, stats.hashes), (500, 500, 7));
        let state = index.read();
        assert!(state.names.arena.len() <= 2 * state.names.live_bytes.max(1 << 20));
    }
}
