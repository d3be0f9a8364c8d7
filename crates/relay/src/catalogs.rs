//! What both of the relay's indexes are made of: every active node's
//! catalog, as entries keyed by a **name** and a **content**, each with a
//! **value**, and the holders of each name and each content. The plain
//! index ([`crate::index`]) keys entries by file name and content hash and
//! keeps the size; the blind index ([`crate::blind`]) keys them by name tag
//! and content tag and keeps the sealed record. Everything else is the
//! same, and lives here once:
//!
//! - a catalog lives exactly as long as its node's entry in the
//!   [`Registry`](crate::Registry): the registry tells the index (through
//!   [`Membership`]) under its own lock when a node joins and when it
//!   leaves or expires, so a catalog can never outlive its node or attach
//!   to a node that is gone. Lock order is always registry, then index;
//!   the index never calls the registry;
//! - updates apply in seq order (a reset, or a delta after the seq the
//!   relay is at), and the answer always carries the relay's seq;
//! - the limits: files per node, entries in all, a name's length and the
//!   bytes of distinct names; the value store adds its own (see [`Values`]);
//! - a name may come before its content (docs/PROTOCOL.md, "Names before
//!   hashes"): an entry whose content is not known yet is in its name's
//!   holder list and in no content's;
//! - who-has: the holders of one name or content, one per node, oldest
//!   registration first, and the nodes that sent no catalog.
//!
//! Memory is the point of the layout (docs/BENCHMARKS.md: 1 000 nodes x
//! 1 000 files within 200 MiB of relay RSS for the plain index):
//! - names and contents are interned once each, their bytes packed in one
//!   arena per kind (no allocation per string), found through an
//!   open-addressing table of 4-byte ids keyed with a per-process random
//!   SipHash key, so a node cannot choose names that collide;
//! - an entry (one file of one node) is 28 bytes and its value: node, name,
//!   content, its position in its node's list, and the links of two
//!   intrusive lists, the holders of its name and the holders of its
//!   content, so those lists cost nothing more.
//!
//! Everything here is plain data, tested without sockets.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use proto::{CatalogAck, MAX_LIST_FILES};

use crate::registry::Membership;

/// Most files the relay indexes for one node: as many as one listing holds.
pub const DEFAULT_NODE_FILES: usize = MAX_LIST_FILES;
/// Most entries in the whole index: 1 000 nodes x 1 000 files and some room.
pub const DEFAULT_INDEX_ENTRIES: usize = 1 << 20;
/// Longest name the plain index takes (bytes). Longer names are still
/// served by their node, but cannot be found through the relay; a sealed
/// record holds no longer name either.
pub const MAX_INDEXED_NAME: usize = proto::blind::record::MAX_RECORD_NAME;
/// Most bytes of distinct names the plain index holds, so long names cannot
/// multiply the memory an entry costs.
pub const MAX_NAME_BYTES: usize = 64 << 20;
/// Most bytes of sealed records the blind index holds: a million records
/// of the smallest size take half of it.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// The index's limits (docs/SECURITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexLimits {
    pub node_files: usize,
    pub entries: usize,
    /// Longest name (the blind index's names are 16-byte tags).
    pub name_len: usize,
    /// Bytes of distinct names.
    pub name_bytes: usize,
    /// Bytes of sealed records (the blind index only).
    pub record_bytes: usize,
}

impl Default for IndexLimits {
    fn default() -> IndexLimits {
        IndexLimits {
            node_files: DEFAULT_NODE_FILES,
            entries: DEFAULT_INDEX_ENTRIES,
            name_len: MAX_INDEXED_NAME,
            name_bytes: MAX_NAME_BYTES,
            record_bytes: MAX_RECORD_BYTES,
        }
    }
}

/// Where an index keeps what each entry carries besides its keys.
pub trait Values: Default + Send + Sync + 'static {
    /// What an entry holds.
    type Value: Copy + Send + Sync;
    /// What an update gives for it.
    type Input<'a>;
    /// Keeps `input`; None when a limit refuses it.
    fn store(&mut self, input: &Self::Input<'_>, limits: &IndexLimits) -> Option<Self::Value>;
    /// Lets go of a value whose entry is gone.
    fn release(&mut self, value: Self::Value);
}

/// The index, a cheap-to-clone handle. Behind a read-write lock: a search
/// or a listing walks every name, and who-has answers and other searches go
/// on beside it; only catalogs, joins and leaves wait for it.
pub struct Catalogs<V: Values> {
    shared: Arc<RwLock<State<V>>>,
}

impl<V: Values> Clone for Catalogs<V> {
    fn clone(&self) -> Self {
        Catalogs {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// No entry (end of an intrusive list).
pub(crate) const NIL: u32 = u32::MAX;

pub(crate) struct State<V: Values> {
    limits: IndexLimits,
    by_addr: HashMap<SocketAddr, u32>,
    nodes: Vec<Option<Node>>,
    free_nodes: Vec<u32>,
    /// Registration order of the next node to join.
    next_order: u64,
    /// Listed nodes that have sent no catalog yet.
    uncataloged: usize,
    pub(crate) names: Interner,
    pub(crate) contents: Interner,
    entries: Vec<Entry<V::Value>>,
    free_entries: Vec<u32>,
    pub(crate) values: V,
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

/// One file of one node.
#[derive(Clone, Copy)]
pub(crate) struct Entry<T> {
    pub(crate) node: u32,
    pub(crate) name: u32,
    /// NIL while the node has not hashed this file yet (its name is
    /// known, its content not): in no content's holder list.
    pub(crate) content: u32,
    /// Next holder of the same name (NIL at the end).
    pub(crate) next_by_name: u32,
    /// Next holder of the same content.
    next_by_content: u32,
    /// Position in its node's list.
    pos: u32,
    pub(crate) value: T,
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
    pub contents: usize,
    /// Bytes of the distinct names held (limit [`IndexLimits::name_bytes`]).
    pub name_bytes: usize,
}

/// One catalog update, whatever its index: the seq rule's fields, the
/// names removed and the entries added.
pub(crate) struct Update<'a, V: Values, R, A>
where
    R: Iterator<Item = &'a [u8]>,
    A: Iterator<Item = Added<'a, V>>,
{
    pub(crate) base_seq: u64,
    pub(crate) seq: u64,
    pub(crate) reset: bool,
    pub(crate) removed: R,
    pub(crate) added: A,
}

/// One entry of an update: its name, its content (None: not known yet),
/// and its value's input.
pub(crate) struct Added<'a, V: Values> {
    pub(crate) name: &'a [u8],
    pub(crate) content: Option<&'a [u8]>,
    pub(crate) input: V::Input<'a>,
}

/// Which key a who-has goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    Name,
    Content,
}

impl<V: Values> Catalogs<V> {
    pub fn new(limits: IndexLimits) -> Catalogs<V> {
        Catalogs {
            shared: Arc::new(RwLock::new(State {
                limits,
                by_addr: HashMap::new(),
                nodes: Vec::new(),
                free_nodes: Vec::new(),
                next_order: 0,
                uncataloged: 0,
                names: Interner::new(),
                contents: Interner::new(),
                entries: Vec::new(),
                free_entries: Vec::new(),
                values: V::default(),
            })),
        }
    }

    pub fn limits(&self) -> IndexLimits {
        self.read().limits
    }

    // Every update keeps the lists consistent before it can panic
    // (allocation failure aborts), so a poisoned lock is still usable.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State<V>> {
        self.shared.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State<V>> {
        self.shared.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> IndexStats {
        let state = self.read();
        IndexStats {
            nodes: state.by_addr.len(),
            entries: state.entries.len() - state.free_entries.len(),
            names: state.names.len,
            contents: state.contents.len,
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

impl<V: Values> Membership for Catalogs<V> {
    fn joined(&self, addr: SocketAddr) {
        self.write().join(addr);
    }

    fn left(&self, addr: SocketAddr) {
        self.write().leave(addr);
    }
}

impl<V: Values> State<V> {
    fn node(&self, slot: u32) -> Option<&Node> {
        self.nodes.get(slot as usize)?.as_ref()
    }

    fn node_mut(&mut self, slot: u32) -> &mut Node {
        self.nodes[slot as usize]
            .as_mut()
            .expect("a listed node's slot is occupied")
    }

    /// Active nodes, for an answer.
    pub(crate) fn node_count(&self) -> u32 {
        count(self.by_addr.len())
    }

    /// The address and registration order of the node in `slot`.
    pub(crate) fn node_of(&self, slot: u32) -> Option<(SocketAddr, u64)> {
        self.node(slot).map(|n| (n.addr, n.order))
    }

    /// The content of entry `id`, as its bytes; None while its node is
    /// hashing it.
    pub(crate) fn content_of(&self, id: u32) -> Option<&[u8]> {
        match self.entries[id as usize].content {
            NIL => None,
            c => Some(self.contents.bytes(c)),
        }
    }

    pub(crate) fn entry(&self, id: u32) -> &Entry<V::Value> {
        &self.entries[id as usize]
    }

    /// The holders of the name `name_id`, as entry ids (in no set order).
    pub(crate) fn holders_of_name(&self, name_id: u32) -> impl Iterator<Item = u32> + '_ {
        let mut id = self.names.recs[name_id as usize].head;
        std::iter::from_fn(move || {
            if id == NIL {
                return None;
            }
            let this = id;
            id = self.entries[id as usize].next_by_name;
            Some(this)
        })
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

    /// Applies a catalog update from the node listed as `addr`.
    pub(crate) fn apply<'a, R, A>(
        &mut self,
        addr: SocketAddr,
        update: Update<'a, V, R, A>,
    ) -> Result<CatalogAck, NotListed>
    where
        R: Iterator<Item = &'a [u8]>,
        A: Iterator<Item = Added<'a, V>>,
    {
        let slot = *self.by_addr.get(&addr).ok_or(NotListed)?;
        let node = self.node_mut(slot);
        if !update.reset && update.base_seq != node.seq {
            let (seq, files) = (node.seq, node.entries.len());
            return Ok(ack(seq, files, 0));
        }
        if update.reset {
            self.clear(slot);
        }
        for name in update.removed {
            if let Some(id) = self.find(slot, name) {
                self.remove_entry(id);
            }
        }
        let mut refused = 0usize;
        for added in update.added {
            if !self.add(slot, &added) {
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
    fn find(&self, slot: u32, name: &[u8]) -> Option<u32> {
        let name = self.names.get(name)?;
        self.holders_of_name(name)
            .find(|&id| self.entries[id as usize].node == slot)
    }

    /// Adds or replaces a name in the node's catalog; false if a limit
    /// refused it (a replaced entry is then gone).
    fn add(&mut self, slot: u32, added: &Added<'_, V>) -> bool {
        let name = added.name;
        if let Some(id) = self.find(slot, name) {
            self.remove_entry(id);
        }
        let limits = self.limits;
        let live = self.entries.len() - self.free_entries.len();
        let new_name = self.names.get(name).is_none();
        if name.is_empty()
            || name.len() > limits.name_len
            || self.node(slot).map_or(0, |n| n.entries.len()) >= limits.node_files
            || live >= limits.entries
            || (new_name && self.names.live_bytes + name.len() > limits.name_bytes)
        {
            return false;
        }
        let Some(value) = self.values.store(&added.input, &limits) else {
            return false;
        };
        let name_id = self.names.intern(name);
        let content_id = added.content.map_or(NIL, |c| self.contents.intern(c));
        let node = self.node_mut(slot);
        let pos = u32::try_from(node.entries.len()).expect("node files are capped");
        let entry = Entry {
            node: slot,
            name: name_id,
            content: content_id,
            next_by_name: self.names.recs[name_id as usize].head,
            next_by_content: match content_id {
                NIL => NIL,
                c => self.contents.recs[c as usize].head,
            },
            pos,
            value,
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
        if content_id != NIL {
            self.contents.recs[content_id as usize].head = id;
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

    /// Takes an entry out of its name's and its content's holder lists,
    /// releasing the name or content when it was the last holder, and lets
    /// go of its value.
    fn unlink(&mut self, id: u32) {
        let e = self.entries[id as usize];
        let head = &mut self.names.recs[e.name as usize].head;
        unlink_from(&mut self.entries, head, id, |e| &mut e.next_by_name);
        if self.names.recs[e.name as usize].head == NIL {
            self.names.release(e.name);
        }
        self.values.release(e.value);
        if e.content == NIL {
            return;
        }
        let head = &mut self.contents.recs[e.content as usize].head;
        unlink_from(&mut self.entries, head, id, |e| &mut e.next_by_content);
        if self.contents.recs[e.content as usize].head == NIL {
            self.contents.release(e.content);
        }
    }

    /// The entries holding a name or a content, one per node (for a
    /// content held under several names, the first name bytewise), oldest
    /// registration first: a node is one holder, however many names it
    /// has for it.
    pub(crate) fn holding(&self, by: By, key: &[u8]) -> Vec<u32> {
        let head = match by {
            By::Name => self
                .names
                .get(key)
                .map(|n| self.names.recs[n as usize].head),
            By::Content => self
                .contents
                .get(key)
                .map(|c| self.contents.recs[c as usize].head),
        };
        let mut found: Vec<(u64, &[u8], u32)> = Vec::new();
        let mut id = head.unwrap_or(NIL);
        while id != NIL {
            let e = &self.entries[id as usize];
            if let Some(node) = self.node(e.node) {
                found.push((node.order, self.names.bytes(e.name), id));
            }
            id = match by {
                By::Name => e.next_by_name,
                By::Content => e.next_by_content,
            };
        }
        found.sort_unstable();
        found.dedup_by_key(|(order, _, _)| *order);
        found.into_iter().map(|(_, _, id)| id).collect()
    }

    /// The active nodes that have sent no catalog, with their registration
    /// order, oldest first.
    pub(crate) fn uncataloged(&self) -> Vec<(u64, SocketAddr)> {
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
}

fn ack(seq: u64, files: usize, refused: usize) -> CatalogAck {
    CatalogAck {
        seq,
        files: count(files),
        refused: count(refused),
    }
}

pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Unlinks `id` from the singly linked list starting at `head`, whose links
/// `next` selects. Walks the list: its length is the number of holders of
/// one name or content, and the limits bound the sum over a node's files.
fn unlink_from<T>(
    entries: &mut [Entry<T>],
    head: &mut u32,
    id: u32,
    next: fn(&mut Entry<T>) -> &mut u32,
) {
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

/// Byte strings stored once each: ids are stable, the bytes live in one
/// arena, and an open-addressing table of ids finds them.
pub(crate) struct Interner {
    pub(crate) arena: Vec<u8>,
    pub(crate) recs: Vec<Rec>,
    free: Vec<u32>,
    /// Linear probing, load at most 1/2; [`NIL`] is an empty slot.
    table: Vec<u32>,
    /// Live strings.
    pub(crate) len: usize,
    pub(crate) live_bytes: usize,
    keys: std::collections::hash_map::RandomState,
}

#[derive(Clone, Copy)]
pub(crate) struct Rec {
    off: u32,
    len: u32,
    /// First holder (an entry id), NIL when the string is free.
    pub(crate) head: u32,
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

    pub(crate) fn bytes(&self, id: u32) -> &[u8] {
        let rec = &self.recs[id as usize];
        &self.arena[rec.off as usize..(rec.off + rec.len) as usize]
    }

    fn home(&self, bytes: &[u8]) -> usize {
        (self.keys.hash_one(bytes) as usize) & (self.table.len() - 1)
    }

    pub(crate) fn get(&self, bytes: &[u8]) -> Option<u32> {
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
