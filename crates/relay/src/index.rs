//! The relay's plain index: every active node's catalog (name, size and
//! content hash of each file it shares, the hash possibly still to come),
//! and who-has by name or hash and search over names. In a private network
//! the relay keeps the blind index ([`crate::blind`]) instead, never this
//! one.
//!
//! The catalogs themselves, their lifetime with the node, the seq rule,
//! the limits and the holders of a name or content are
//! [`crate::catalogs`], shared with the blind index; here is what is
//! plain: names and hashes as the keys, the size as the value, and the
//! answers in the plain messages.

use std::net::SocketAddr;

use proto::blind::open::name_matches;
use proto::{
    CatalogAck, CatalogUpdateLong, ContentHash, Holder, HolderList, HolderListLong, HolderLong,
    MAX_FRAME, MAX_HOLDERS, MAX_LIST_FILES, SearchHit, SearchResults, Target,
};

use crate::catalogs::{Added, By, Catalogs, IndexLimits, NIL, State, Update, Values, count};

pub use crate::catalogs::{
    DEFAULT_INDEX_ENTRIES, DEFAULT_NODE_FILES, IndexStats, MAX_INDEXED_NAME, MAX_NAME_BYTES,
    NotListed,
};

/// The plain index: entries keyed by name and content hash, each with its
/// file's size.
pub type Index = Catalogs<Sizes>;

/// The plain index's values: each entry's size, kept in the entry itself.
#[derive(Debug, Default)]
pub struct Sizes;

impl Values for Sizes {
    type Value = u64;
    type Input<'a> = u64;

    fn store(&mut self, size: &u64, _: &IndexLimits) -> Option<u64> {
        Some(*size)
    }

    fn release(&mut self, _: u64) {}
}

impl Index {
    /// Applies a catalog update from the node listed as `addr` (an update
    /// of the first form converts: all its hashes are known).
    pub fn apply(
        &self,
        addr: SocketAddr,
        update: &CatalogUpdateLong,
    ) -> Result<CatalogAck, NotListed> {
        self.write().apply(
            addr,
            Update {
                base_seq: update.base_seq,
                seq: update.seq,
                reset: update.reset,
                removed: update.removed.iter().map(|n| n.as_bytes()),
                added: update.added.iter().map(|e| Added::<Sizes> {
                    name: e.name.as_bytes(),
                    content: e.hash.as_ref().map(|h| &h.0[..]),
                    input: e.size,
                }),
            },
        )
    }

    /// The holders of a name or a content, oldest registration first, one
    /// per node. A node still hashing a file of that name is no holder
    /// here (a holder has a hash): it is listed among the unindexed nodes,
    /// which a client asks by name, older clients too.
    pub fn who_has(&self, target: &Target) -> HolderList {
        let state = self.read();
        let mut holders = Vec::new();
        let mut unindexed = state.uncataloged();
        for id in holding(&state, target) {
            let Some(holder) = holder_long(&state, id) else {
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
                    if let Some((addr, order)) = state.node_of(state.entry(id).node) {
                        unindexed.push((order, addr));
                    }
                }
            }
        }
        unindexed.sort_unstable();
        let truncated = holders.len() > MAX_HOLDERS || unindexed.len() > MAX_HOLDERS;
        holders.truncate(MAX_HOLDERS);
        unindexed.truncate(MAX_HOLDERS);
        HolderList {
            nodes: state.node_count(),
            holders,
            unindexed: unindexed.into_iter().map(|(_, a)| a).collect(),
            truncated,
        }
    }

    /// As [`Index::who_has`], with the nodes still hashing a file of that
    /// name among the holders, without a hash.
    pub fn who_has_long(&self, target: &Target) -> HolderListLong {
        let state = self.read();
        let holding = holding(&state, target);
        let unindexed = state.uncataloged();
        let truncated = holding.len() > MAX_HOLDERS || unindexed.len() > MAX_HOLDERS;
        HolderListLong {
            nodes: state.node_count(),
            holders: holding
                .into_iter()
                .take(MAX_HOLDERS)
                .filter_map(|id| holder_long(&state, id))
                .collect(),
            unindexed: unindexed
                .into_iter()
                .take(MAX_HOLDERS)
                .map(|(_, a)| a)
                .collect(),
            truncated,
        }
    }

    /// Names containing `text` in either case (all of Unicode), one hit per
    /// name and content, at most `limit` (and at most what one frame holds).
    pub fn search(&self, text_wanted: &str, limit: usize) -> SearchResults {
        let state = self.read();
        let limit = limit.min(MAX_LIST_FILES);
        // The answer's encoded size (docs/PROTOCOL.md): tag, nodes, count,
        // flag, then per hit the name's length and bytes, size, hash, holders.
        let mut frame = 4 + 4 + 8 + 1;
        let mut hits = Vec::new();
        let mut truncated = false;
        'names: for (name_id, rec) in state.names.recs.iter().enumerate() {
            if rec.head == NIL {
                continue;
            }
            let name = text(state.names.bytes(name_id as u32));
            if !name_matches(name, text_wanted) {
                continue;
            }
            // This name's contents: (content id, size, holders), few per
            // name; one not hashed yet names no content, so no hit.
            let mut versions: Vec<(u32, u64, u32)> = Vec::new();
            for id in state.holders_of_name(name_id as u32) {
                let e = state.entry(id);
                if e.content == NIL {
                    continue;
                }
                match versions.iter_mut().find(|v| v.0 == e.content) {
                    Some(v) => v.2 += 1,
                    None => versions.push((e.content, e.value, 1)),
                }
            }
            for (content, size, holders) in versions {
                frame += 8 + name.len() + 8 + 32 + 4;
                if hits.len() >= limit || frame > MAX_FRAME as usize {
                    truncated = true;
                    break 'names;
                }
                let Ok(hash) = state.contents.bytes(content).try_into() else {
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
            nodes: count(state.node_count() as usize),
            hits,
            truncated,
        }
    }
}

/// The entries holding `target`, one per node, oldest first.
fn holding(state: &State<Sizes>, target: &Target) -> Vec<u32> {
    match target {
        Target::Name(name) => state.holding(By::Name, name.as_bytes()),
        Target::Hash(hash) => state.holding(By::Content, &hash.0),
    }
}

fn holder_long(state: &State<Sizes>, id: u32) -> Option<HolderLong> {
    let e = state.entry(id);
    let (addr, _) = state.node_of(e.node)?;
    Some(HolderLong {
        addr,
        name: text(state.names.bytes(e.name)).to_string(),
        size: e.value,
        hash: state
            .content_of(id)
            .and_then(|c| c.try_into().ok())
            .map(ContentHash),
    })
}

/// A name as text: the plain index takes names from decoded (checked
/// UTF-8) messages only.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Membership;
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
        assert_eq!((stats.entries, stats.names, stats.contents), (0, 0, 0));
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
            (stats.nodes, stats.entries, stats.names, stats.contents),
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
            ..IndexLimits::default()
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
        assert_eq!((stats.entries, stats.names, stats.contents), (500, 500, 7));
        let state = index.read();
        assert!(state.names.arena.len() <= 2 * state.names.live_bytes.max(1 << 20));
    }
}
