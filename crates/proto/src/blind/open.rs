//! What a member makes of the relay's blind answers. The relay cannot check
//! records, so the client does, for every record it uses: it opens it with
//! the index key and recomputes the tag the record came under; a record
//! that does not open, or opens to another name or hash than its tag says,
//! is dropped and its node named ([`BadRecord`]). What is left takes the
//! shape of the plain index's answers ([`HolderList`], [`SearchResults`]),
//! so the code that fetches and prints does not change.
//!
//! Search is local: the client pages through every record
//! ([`Listing::add_page`]) and matches names itself ([`Listing::search`]),
//! with the relay's plain rules (either case, all of Unicode; the empty
//! text matches every name; sorted by name then hash).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use super::IndexKey;
use super::messages::{BlindHolderList, SealedPage};
use super::record::{OpenError, Record};
use super::tag::{BlindTarget, Tag};
use crate::content::ContentHash;
use crate::message::{Holder, HolderList, SearchHit, SearchResults};

/// A node whose record a client refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// The node that sent it (for a listing: the earliest-registered node
    /// that sent exactly these bytes).
    pub addr: SocketAddr,
    pub problem: RecordProblem,
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordProblem {
    /// It does not open (see [`OpenError`]).
    Open(OpenError),
    /// It opens, but its name's tag is not the name tag it came under.
    NameMismatch,
    /// It opens, but its hash's tag is not the content tag it came under.
    ContentMismatch,
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordProblem::Open(e) => write!(f, "{e}"),
            RecordProblem::NameMismatch => {
                f.write_str("the record's name is not the one its name tag stands for")
            }
            RecordProblem::ContentMismatch => {
                f.write_str("the record's hash is not the one its content tag stands for")
            }
        }
    }
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} sent a bad index record: {}",
            self.addr, self.problem
        )
    }
}

impl IndexKey {
    /// Opens `sealed` and checks it against the tags it came under (either
    /// may be left out when the answer does not carry it).
    pub fn check(
        &self,
        sealed: &[u8],
        name_tag: Option<&Tag>,
        content_tag: Option<&Tag>,
    ) -> Result<Record, RecordProblem> {
        let record = self.open(sealed).map_err(RecordProblem::Open)?;
        if name_tag.is_some_and(|t| *t != self.name_tag(&record.name)) {
            return Err(RecordProblem::NameMismatch);
        }
        if content_tag.is_some_and(|t| *t != self.content_tag(&record.hash)) {
            return Err(RecordProblem::ContentMismatch);
        }
        Ok(record)
    }

    /// The answer to a `BlindWhoHas` for `asked`, as the plain index would
    /// have given it: each holder whose record opens and matches the tag
    /// asked, in the relay's order; and the holders refused.
    pub fn open_holders(
        &self,
        asked: &BlindTarget,
        list: &BlindHolderList,
    ) -> (HolderList, Vec<BadRecord>) {
        let (name_tag, content_tag) = match asked {
            BlindTarget::Name(t) => (Some(t), None),
            BlindTarget::Content(t) => (None, Some(t)),
        };
        let mut holders = Vec::with_capacity(list.holders.len());
        let mut bad = Vec::new();
        for h in &list.holders {
            match self.check(h.record.as_bytes(), name_tag, content_tag) {
                Ok(r) => holders.push(Holder {
                    addr: h.addr,
                    name: r.name,
                    size: r.size,
                    hash: r.hash,
                }),
                Err(problem) => bad.push(BadRecord {
                    addr: h.addr,
                    problem,
                }),
            }
        }
        let plain = HolderList {
            nodes: list.nodes,
            holders,
            unindexed: list.unindexed.clone(),
            truncated: list.truncated,
        };
        (plain, bad)
    }
}

/// The relay's records gathered page by page, opened, checked, and merged
/// by name and content.
#[derive(Debug, Default)]
pub struct Listing {
    /// (name, hash) to (size, holders); the first record's size is kept.
    files: BTreeMap<(String, ContentHash), (u64, u32)>,
    /// Records refused, with their nodes.
    pub bad: Vec<BadRecord>,
    /// Active nodes, as the last page said.
    pub nodes: u32,
}

impl Listing {
    /// Adds one page's records.
    pub fn add_page(&mut self, key: &IndexKey, page: &SealedPage) {
        self.nodes = page.nodes;
        for hit in &page.hits {
            match key.check(
                hit.record.as_bytes(),
                Some(&hit.name_tag),
                Some(&hit.content_tag),
            ) {
                Ok(r) => {
                    let file = self.files.entry((r.name, r.hash)).or_insert((r.size, 0));
                    file.1 = file.1.saturating_add(hit.holders);
                }
                Err(problem) => self.bad.push(BadRecord {
                    addr: hit.first,
                    problem,
                }),
            }
        }
    }

    /// Distinct (name, content) pairs gathered.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Names containing `text`, at most `limit`, as the plain index's
    /// search answers.
    pub fn search(&self, text: &str, limit: usize) -> SearchResults {
        let mut hits = Vec::new();
        let mut truncated = false;
        for ((name, hash), (size, holders)) in &self.files {
            if !name_matches(name, text) {
                continue;
            }
            if hits.len() == limit {
                truncated = true;
                break;
            }
            hits.push(SearchHit {
                name: name.clone(),
                size: *size,
                hash: *hash,
                holders: *holders,
            });
        }
        SearchResults {
            nodes: self.nodes,
            hits,
            truncated,
        }
    }
}

/// Whether `name` contains `text` in either case, for all of Unicode
/// (`CAFÉ` finds `café.txt`; the empty text is in every name): the search
/// rule of both indexes. ASCII, the common case, is compared in place;
/// other names are lowercased first.
pub fn name_matches(name: &str, text: &str) -> bool {
    if name.is_ascii() && text.is_ascii() {
        let (hay, needle) = (name.as_bytes(), text.as_bytes());
        return needle.is_empty()
            || hay
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle));
    }
    name.to_lowercase().contains(&text.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blind::{BlindHolder, SealedHit, SealedRecord};
    use crate::keys::NetworkKeys;

    fn key(secret: &[u8]) -> IndexKey {
        IndexKey::of(&NetworkKeys::from_secret(secret)).unwrap()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn record(name: &str, content: &[u8]) -> Record {
        Record {
            name: name.into(),
            size: content.len() as u64,
            hash: ContentHash::of(content),
        }
    }

    fn hit(k: &IndexKey, r: &Record, sealed: SealedRecord, holders: u32, port: u16) -> SealedHit {
        SealedHit {
            name_tag: k.name_tag(&r.name),
            content_tag: k.content_tag(&r.hash),
            holders,
            first: addr(port),
            record: sealed,
        }
    }

    #[test]
    fn holders_are_opened_checked_and_bad_ones_named() {
        let k = key(b"s3cret");
        let good = record("a.txt", b"A");
        let other = record("b.txt", b"B");
        let list = BlindHolderList {
            nodes: 5,
            holders: vec![
                BlindHolder {
                    addr: addr(1),
                    record: k.seal(&good).unwrap(),
                },
                // Sealed in another network.
                BlindHolder {
                    addr: addr(2),
                    record: key(b"other").seal(&good).unwrap(),
                },
                // A good record of another name, under a.txt's tag.
                BlindHolder {
                    addr: addr(3),
                    record: k.seal(&other).unwrap(),
                },
                BlindHolder {
                    addr: addr(4),
                    record: SealedRecord(vec![0; 5]),
                },
            ],
            unindexed: vec![addr(9)],
            truncated: false,
        };
        let (plain, bad) = k.open_holders(&k.by_name("a.txt"), &list);
        assert_eq!(plain.nodes, 5);
        assert_eq!(plain.unindexed, [addr(9)]);
        assert_eq!(plain.holders.len(), 1);
        let h = &plain.holders[0];
        assert_eq!(
            (h.addr, h.name.as_str(), h.size, h.hash),
            (addr(1), "a.txt", 1, good.hash)
        );
        let named: Vec<(u16, &RecordProblem)> =
            bad.iter().map(|b| (b.addr.port(), &b.problem)).collect();
        assert_eq!(
            named,
            [
                (2, &RecordProblem::Open(OpenError::Forged)),
                (3, &RecordProblem::NameMismatch),
                (4, &RecordProblem::Open(OpenError::Length(5))),
            ]
        );
        assert!(
            bad[0]
                .to_string()
                .starts_with("node 192.0.2.1:2 sent a bad index record")
        );
        // By content, a record of the same content under another name is
        // a holder; one of other content is not.
        let (plain, bad) = k.open_holders(&k.by_content(&good.hash), &list);
        assert_eq!(plain.holders.len(), 1);
        assert!(
            bad.iter()
                .any(|b| b.problem == RecordProblem::ContentMismatch)
        );
    }

    #[test]
    fn a_listing_merges_pages_and_searches_like_the_plain_index() {
        let k = key(b"s3cret");
        let report = record("Report.pdf", b"v1");
        let report2 = record("Report.pdf", b"v2");
        let lower = record("report.pdf", b"v1");
        let notes = record("notes.txt", b"n");
        let mut listing = Listing::default();
        listing.add_page(
            &k,
            &SealedPage {
                nodes: 3,
                hits: vec![
                    hit(&k, &report, k.seal(&report).unwrap(), 2, 1),
                    hit(&k, &notes, k.seal(&notes).unwrap(), 1, 1),
                ],
                next: Some(7),
            },
        );
        let mut forged = hit(&k, &notes, k.seal(&lower).unwrap(), 1, 3);
        forged.name_tag = k.name_tag("notes.txt");
        listing.add_page(
            &k,
            &SealedPage {
                nodes: 3,
                hits: vec![
                    hit(&k, &report2, k.seal(&report2).unwrap(), 1, 3),
                    hit(&k, &lower, k.seal(&lower).unwrap(), 1, 2),
                    forged,
                ],
                next: None,
            },
        );
        assert_eq!(listing.len(), 4);
        assert_eq!(listing.bad.len(), 1);
        assert_eq!(listing.bad[0].addr, addr(3));
        let found = listing.search("REPORT", 10);
        let got: Vec<(&str, u64, u32)> = found
            .hits
            .iter()
            .map(|h| (h.name.as_str(), h.size, h.holders))
            .collect();
        let mut want = vec![
            ("Report.pdf", 2, 2),
            ("Report.pdf", 2, 1),
            ("report.pdf", 2, 1),
        ];
        // Same name: sorted by hash.
        if report2.hash < report.hash {
            want.swap(0, 1);
        }
        assert_eq!(got, want);
        assert!(!found.truncated);
        let capped = listing.search("", 2);
        assert!(capped.truncated);
        assert_eq!(capped.hits.len(), 2);
        assert_eq!(capped.nodes, 3);
    }

    #[test]
    fn names_match_in_either_case() {
        assert!(name_matches("Report.PDF", "report.pdf"));
        assert!(name_matches("x", ""));
        assert!(!name_matches("x", "xy"));
        assert!(name_matches("café.txt", "CAFÉ"));
        assert!(name_matches("ΣΟΦΙΑ.md", "σοφ"));
    }
}
