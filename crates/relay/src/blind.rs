//! The relay's blind index, the only index of a private network: nodes send
//! each file as a name tag, a content tag and a sealed record
//! (proto::blind), and the relay finds holders by tag and hands records
//! back, without ever holding a name or a hash it could read. It cannot
//! check a record either; members do, when they open it.
//!
//! The catalogs, their lifetime with the node, the seq rule and the limits
//! are [`crate::catalogs`], shared with the plain index; here is what is
//! blind: tags as the keys, the sealed record as the value ([`Records`]),
//! and the answers: who-has by tag with each holder's record, and the
//! listing in pages of distinct records.

use std::net::SocketAddr;

use proto::blind::record::BUCKETS;
use proto::blind::{
    BlindCatalogUpdate, BlindHolder, BlindHolderList, BlindTarget, PageRequest, SealedHit,
    SealedPage, SealedRecord, Tag,
};
use proto::{CatalogAck, MAX_FRAME, MAX_HOLDERS, MAX_LIST_FILES};

use crate::catalogs::{Added, By, Catalogs, IndexLimits, NIL, NotListed, Update, Values};

/// The blind index: entries keyed by name tag and content tag, each with
/// its sealed record.
pub type BlindIndex = Catalogs<Records>;

/// Where a record is: its bucket in the top two bits, its slot below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordId(u32);

const SLOT_BITS: u32 = 30;

/// The sealed records, one slab per bucket length: a record costs its
/// bytes and nothing more (no allocation, no length), and a freed slot is
/// reused by the next record of its size. Total bytes are capped by
/// [`IndexLimits::record_bytes`].
#[derive(Debug, Default)]
pub struct Records {
    slabs: [Slab; BUCKETS.len()],
    bytes: usize,
}

#[derive(Debug, Default)]
struct Slab {
    data: Vec<u8>,
    free: Vec<u32>,
}

impl Records {
    fn get(&self, id: RecordId) -> &[u8] {
        let bucket = (id.0 >> SLOT_BITS) as usize;
        let slot = (id.0 & ((1 << SLOT_BITS) - 1)) as usize;
        let stride = BUCKETS[bucket];
        &self.slabs[bucket].data[slot * stride..(slot + 1) * stride]
    }
}

impl Values for Records {
    type Value = RecordId;
    type Input<'a> = &'a [u8];

    fn store(&mut self, record: &&[u8], limits: &IndexLimits) -> Option<RecordId> {
        let bucket = BUCKETS.iter().position(|&b| b == record.len())?;
        let stride = BUCKETS[bucket];
        if self.bytes + stride > limits.record_bytes {
            return None;
        }
        let slab = &mut self.slabs[bucket];
        let slot = match slab.free.pop() {
            Some(slot) => {
                let at = slot as usize * stride;
                slab.data[at..at + stride].copy_from_slice(record);
                slot
            }
            None => {
                let slot = u32::try_from(slab.data.len() / stride)
                    .ok()
                    .filter(|s| *s < 1 << SLOT_BITS)?;
                slab.data.extend_from_slice(record);
                slot
            }
        };
        self.bytes += stride;
        Some(RecordId(((bucket as u32) << SLOT_BITS) | slot))
    }

    fn release(&mut self, id: RecordId) {
        let bucket = (id.0 >> SLOT_BITS) as usize;
        self.slabs[bucket].free.push(id.0 & ((1 << SLOT_BITS) - 1));
        self.bytes -= BUCKETS[bucket];
    }
}

impl BlindIndex {
    /// Applies a blind catalog update from the node listed as `addr`.
    pub fn apply(
        &self,
        addr: SocketAddr,
        update: &BlindCatalogUpdate,
    ) -> Result<CatalogAck, NotListed> {
        self.write().apply(
            addr,
            Update {
                base_seq: update.base_seq,
                seq: update.seq,
                reset: update.reset,
                removed: update.removed.iter().map(|t| &t.0[..]),
                added: update.added.iter().map(|e| Added::<Records> {
                    name: &e.name_tag.0,
                    content: Some(&e.content_tag.0),
                    input: e.record.as_bytes(),
                }),
            },
        )
    }

    /// The holders of a name tag or a content tag, one per node, oldest
    /// registration first, each with the record it sent.
    pub fn who_has(&self, target: &BlindTarget) -> BlindHolderList {
        let state = self.read();
        let holding = match target {
            BlindTarget::Name(tag) => state.holding(By::Name, &tag.0),
            BlindTarget::Content(tag) => state.holding(By::Content, &tag.0),
        };
        let unindexed = state.uncataloged();
        let truncated = holding.len() > MAX_HOLDERS || unindexed.len() > MAX_HOLDERS;
        let holders = holding
            .into_iter()
            .take(MAX_HOLDERS)
            .filter_map(|id| {
                let e = state.entry(id);
                let (addr, _) = state.node_of(e.node)?;
                Some(BlindHolder {
                    addr,
                    record: SealedRecord(state.values.get(e.value).to_vec()),
                })
            })
            .collect();
        BlindHolderList {
            nodes: state.node_count(),
            holders,
            unindexed: unindexed
                .into_iter()
                .take(MAX_HOLDERS)
                .map(|(_, a)| a)
                .collect(),
            truncated,
        }
    }

    /// One page of every distinct record: name tags in the order of their
    /// ids, from `cursor` (an id), each name tag's records together, about
    /// `limit` (1 to 10 000; more when a name tag's records would otherwise
    /// be split) and never more than 10 000 or one response frame. The cursor of
    /// the next page is the id where this one stopped; ids are stable
    /// while a name tag is held, so a client paging through sees every
    /// record held all along once, and may miss or see twice one that came
    /// or went meanwhile. A name tag with more distinct records than a page
    /// holds (only members lying in concert could make one) is cut.
    pub fn page(&self, request: &PageRequest) -> SealedPage {
        let state = self.read();
        let limit = usize::try_from(request.limit)
            .unwrap_or(usize::MAX)
            .clamp(1, MAX_LIST_FILES);
        // The answer's encoded size (docs/PROTOCOL.md): tag, nodes, count,
        // the next cursor; per hit two tags, holders, address, record.
        let mut frame = 4 + 4 + 8 + 1 + 8;
        let mut hits: Vec<SealedHit> = Vec::new();
        let start = usize::try_from(request.cursor).unwrap_or(usize::MAX);
        let mut next = None;
        for name_id in start..state.names.recs.len() {
            if state.names.recs[name_id].head == NIL {
                continue;
            }
            // This name tag's distinct records: (content, record, holders,
            // first holder's order and address). Few per name tag.
            let mut groups: Vec<(u32, RecordId, u32, u64, SocketAddr)> = Vec::new();
            for id in state.holders_of_name(name_id as u32) {
                let e = state.entry(id);
                let Some((addr, order)) = state.node_of(e.node) else {
                    continue;
                };
                let bytes = state.values.get(e.value);
                match groups
                    .iter_mut()
                    .find(|g| g.0 == e.content && state.values.get(g.1) == bytes)
                {
                    Some(g) => {
                        g.2 += 1;
                        if order < g.3 {
                            (g.3, g.4) = (order, addr);
                        }
                    }
                    None => groups.push((e.content, e.value, 1, order, addr)),
                }
            }
            groups.sort_by_key(|g| (state.contents.bytes(g.0).to_vec(), g.3));
            let cost = |g: &(u32, RecordId, u32, u64, SocketAddr)| {
                16 + 16 + 4 + socket_len(&g.4) + 8 + state.values.get(g.1).len()
            };
            let all: usize = groups.iter().map(cost).sum();
            if !hits.is_empty()
                && (hits.len() + groups.len() > limit || frame + all > MAX_FRAME as usize)
            {
                next = Some(name_id as u64);
                break;
            }
            let name_tag = tag_of(state.names.bytes(name_id as u32));
            for g in &groups {
                if hits.len() == MAX_LIST_FILES || frame + cost(g) > MAX_FRAME as usize {
                    break;
                }
                frame += cost(g);
                hits.push(SealedHit {
                    name_tag,
                    content_tag: tag_of(state.contents.bytes(g.0)),
                    holders: g.2,
                    first: g.4,
                    record: SealedRecord(state.values.get(g.1).to_vec()),
                });
            }
            if hits.len() >= limit {
                next = Some(name_id as u64 + 1);
                break;
            }
        }
        // A page that stopped just before the end says it was the last.
        let next = next.filter(|&from| {
            state.names.recs[from as usize..]
                .iter()
                .any(|rec| rec.head != NIL)
        });
        SealedPage {
            nodes: state.node_count(),
            hits,
            next,
        }
    }

    /// Bytes of sealed records held.
    pub fn record_bytes(&self) -> usize {
        self.read().values.bytes
    }
}

/// A tag from the interner: every key of the blind index is one (the
/// codec decodes tags as exactly 16 bytes).
fn tag_of(bytes: &[u8]) -> Tag {
    let mut tag = [0u8; 16];
    tag.copy_from_slice(bytes);
    Tag(tag)
}

fn socket_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 10,
        SocketAddr::V6(_) => 22,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Membership;
    use proto::blind::{BlindEntry, IndexKey, Listing, Record};
    use proto::keys::NetworkKeys;
    use proto::{ContentHash, Registration};

    fn key() -> IndexKey {
        IndexKey::of(&NetworkKeys::from_secret(b"s3cret")).unwrap()
    }

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    fn entry(name: &str, content: &str) -> BlindEntry {
        let k = key();
        let record = Record {
            name: name.into(),
            size: content.len() as u64,
            hash: ContentHash::of(content.as_bytes()),
        };
        BlindEntry {
            name_tag: k.name_tag(name),
            content_tag: k.content_tag(&record.hash),
            record: k.seal(&record).unwrap(),
        }
    }

    fn update(
        base_seq: u64,
        seq: u64,
        reset: bool,
        added: Vec<BlindEntry>,
        removed: &[&str],
    ) -> BlindCatalogUpdate {
        BlindCatalogUpdate {
            registration: Registration {
                port: 1,
                advertised_ip: None,
                token: None,
            },
            base_seq,
            seq,
            reset,
            added,
            removed: removed.iter().map(|n| key().name_tag(n)).collect(),
        }
    }

    /// Every record of the index, page by page, as a client gathers it.
    fn list_all(index: &BlindIndex, limit: u32) -> (Listing, usize) {
        let mut listing = Listing::default();
        let mut cursor = 0;
        let mut pages = 0;
        loop {
            let page = index.page(&PageRequest { cursor, limit });
            pages += 1;
            // One name tag (f000) has two records, which stay together.
            assert!(page.hits.len() <= (limit.max(1) as usize).min(MAX_LIST_FILES) + 1);
            listing.add_page(&key(), &page);
            match page.next {
                Some(next) => cursor = next,
                None => return (listing, pages),
            }
        }
    }

    #[test]
    fn who_has_by_tag_answers_with_each_holders_record_in_registration_order() {
        let index = BlindIndex::new(IndexLimits::default());
        for port in [3, 1, 2] {
            index.joined(addr(port));
        }
        index
            .apply(
                addr(2),
                &update(0, 1, true, vec![entry("a.txt", "two")], &[]),
            )
            .unwrap();
        index
            .apply(
                addr(3),
                &update(
                    0,
                    1,
                    true,
                    vec![entry("a.txt", "three"), entry("b", "three")],
                    &[],
                ),
            )
            .unwrap();
        let k = key();
        let list = index.who_has(&k.by_name("a.txt"));
        let ports: Vec<u16> = list.holders.iter().map(|h| h.addr.port()).collect();
        assert_eq!(ports, [3, 2]);
        assert_eq!(list.nodes, 3);
        assert_eq!(list.unindexed, [addr(1)], "node 1 sent no catalog");
        let (plain, bad) = k.open_holders(&k.by_name("a.txt"), &list);
        assert!(bad.is_empty());
        assert_eq!(plain.holders[0].hash, ContentHash::of(b"three"));
        assert_eq!(plain.holders[1].hash, ContentHash::of(b"two"));
        let by_content = index.who_has(&k.by_content(&ContentHash::of(b"three")));
        let (plain, _) = k.open_holders(&k.by_content(&ContentHash::of(b"three")), &by_content);
        // One holder per node, under one of its names for the content.
        let holders: Vec<(u16, &str)> = plain
            .holders
            .iter()
            .map(|h| (h.addr.port(), h.name.as_str()))
            .collect();
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].0, 3);
        assert!(["a.txt", "b"].contains(&holders[0].1));
        assert!(index.who_has(&k.by_name("zzz")).holders.is_empty());
    }

    #[test]
    fn deltas_remove_by_name_tag_and_a_catalog_goes_with_its_node() {
        let index = BlindIndex::new(IndexLimits::default());
        index.joined(addr(1));
        let ack = index
            .apply(
                addr(1),
                &update(0, 1, true, vec![entry("a", "1"), entry("b", "1")], &[]),
            )
            .unwrap();
        assert_eq!((ack.seq, ack.files), (1, 2));
        let ack = index
            .apply(addr(1), &update(1, 2, false, vec![entry("b", "2")], &["a"]))
            .unwrap();
        assert_eq!((ack.seq, ack.files), (2, 1));
        let k = key();
        assert!(index.who_has(&k.by_name("a")).holders.is_empty());
        let b = index.who_has(&k.by_name("b"));
        assert_eq!(
            k.open(b.holders[0].record.as_bytes()).unwrap().hash,
            ContentHash::of(b"2")
        );
        // Out of step: nothing changes, the relay's seq comes back.
        let ack = index
            .apply(addr(1), &update(7, 8, false, vec![entry("c", "1")], &[]))
            .unwrap();
        assert_eq!(ack.seq, 2);
        index.left(addr(1));
        let stats = index.stats();
        assert_eq!((stats.entries, stats.names, stats.contents), (0, 0, 0));
        assert_eq!(index.record_bytes(), 0);
        assert_eq!(
            index.apply(addr(1), &update(0, 1, true, vec![], &[])),
            Err(NotListed)
        );
    }

    #[test]
    fn pages_hold_every_distinct_record_once_with_its_holders() {
        let index = BlindIndex::new(IndexLimits::default());
        for port in 1..=3 {
            index.joined(addr(port));
        }
        // 250 files on node 1; node 2 holds 100 of them too (same records),
        // node 3 one of them under another content, and a long name.
        let files: Vec<BlindEntry> = (0..250).map(|i| entry(&format!("f{i:03}"), "x")).collect();
        index
            .apply(addr(1), &update(0, 1, true, files.clone(), &[]))
            .unwrap();
        index
            .apply(addr(2), &update(0, 1, true, files[..100].to_vec(), &[]))
            .unwrap();
        let long = "l".repeat(600);
        index
            .apply(
                addr(3),
                &update(0, 1, true, vec![entry("f000", "y"), entry(&long, "z")], &[]),
            )
            .unwrap();
        for limit in [0, 1, 7, 100, 10_000, u32::MAX] {
            let (listing, pages) = list_all(&index, limit);
            assert!(listing.bad.is_empty());
            assert_eq!(listing.len(), 252, "limit {limit}");
            let found = listing.search("f000", 10);
            let holders: Vec<(u64, u32)> = found.hits.iter().map(|h| (h.size, h.holders)).collect();
            assert_eq!(holders.len(), 2);
            assert!(holders.contains(&(1, 2)), "{holders:?}");
            assert!(holders.contains(&(1, 1)), "{holders:?}");
            assert_eq!(listing.search("f1", 1000).hits.len(), 100);
            assert_eq!(listing.search(&long, 10).hits.len(), 1);
            if limit >= 252 {
                assert_eq!(pages, 1, "limit {limit}");
            }
        }
        // A name tag's distinct records stay on one page: at most 1 per
        // page here, except that f000's two records come together.
        let first = index.page(&PageRequest {
            cursor: 0,
            limit: 1,
        });
        assert!(first.hits.len() <= 2 && first.next.is_some());
        let past = index.page(&PageRequest {
            cursor: u64::MAX,
            limit: 10,
        });
        assert!(past.hits.is_empty() && past.next.is_none());
    }

    #[test]
    fn the_record_bytes_cap_refuses_and_freed_slots_are_reused() {
        let limits = IndexLimits {
            record_bytes: 3 * 128,
            ..IndexLimits::default()
        };
        let index = BlindIndex::new(limits);
        index.joined(addr(1));
        let four: Vec<BlindEntry> = (0..4).map(|i| entry(&format!("f{i}"), "x")).collect();
        let ack = index
            .apply(addr(1), &update(0, 1, true, four, &[]))
            .unwrap();
        assert_eq!((ack.files, ack.refused), (3, 1));
        assert_eq!(index.record_bytes(), 3 * 128);
        // Churn: the slab does not grow past what is held.
        for round in 0..50u64 {
            let files: Vec<BlindEntry> = (0..3)
                .map(|i| entry(&format!("r{round}-{i}"), "x"))
                .collect();
            let ack = index
                .apply(addr(1), &update(0, round + 2, true, files, &[]))
                .unwrap();
            assert_eq!((ack.files, ack.refused), (3, 0));
        }
        let state = index.read();
        assert_eq!(state.values.slabs[0].data.len(), 3 * 128);
        drop(state);
        let (listing, _) = list_all(&index, 100);
        assert_eq!(listing.search("r49", 10).hits.len(), 3);
    }

    #[test]
    fn garbage_records_are_kept_apart_and_named_by_the_client() {
        let index = BlindIndex::new(IndexLimits::default());
        index.joined(addr(1));
        index.joined(addr(2));
        index
            .apply(addr(1), &update(0, 1, true, vec![entry("a", "x")], &[]))
            .unwrap();
        let mut bad = entry("a", "x");
        bad.record = SealedRecord(vec![0x55; 128]);
        index
            .apply(addr(2), &update(0, 1, true, vec![bad], &[]))
            .unwrap();
        let (listing, _) = list_all(&index, 10);
        assert_eq!(listing.len(), 1);
        assert_eq!(listing.bad.len(), 1);
        assert_eq!(listing.bad[0].addr, addr(2));
        let k = key();
        let (plain, bad) = k.open_holders(&k.by_name("a"), &index.who_has(&k.by_name("a")));
        assert_eq!(plain.holders.len(), 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].addr, addr(2));
    }
}
