//! The blind index, as a member asks it (docs/PROTOCOL.md, "The blind
//! index"). In a private network the relay keeps only tags and sealed
//! records, and this client never sends it a name, a hash or a search
//! text: it sends the tag of what it wants (`BlindWhoHas`), or pages
//! through every record (`BlindList`) and searches them itself.
//!
//! Every record the relay hands back is opened with the index key and
//! checked against the tags it came under (`proto::blind::open`): a record
//! that does not open or does not match is dropped, and its node named in
//! one line; the others go on. What passes takes the plain index's shape
//! (`HolderList`, `SearchResults`), so fetching and printing are the same
//! code as in the clear, and a fetch verifies its bytes against the hash
//! in the record it opened.
//!
//! Against a private relay that does not know these requests (an older
//! one, which answers `BadRequest`), the answer is None and the caller asks
//! the nodes in turn; it never falls back to the plain `WhoHas` or
//! `Search`, which would hand the relay a name.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use net::secure::Security;
use proto::blind::{BadRecord, IndexKey, Listing, PageRequest};
use proto::{HolderList, MAX_LIST_FILES, Request, Response, SearchResults, Target};

use crate::index;
use crate::relay::Relay;
use crate::report::{Report, count};

/// Most records a listing reads, good or bad: the relay's default index
/// size. Each costs the client about a hundred bytes; a relay that keeps
/// handing out pages (of garbage, say) is cut off here, and the user told.
pub const MAX_LISTED: usize = 1 << 20;

/// The index key when the relay is met in a private network (the client
/// holds the secret, so the peer key and the index key); None in the clear.
pub fn index_key(relay: &Relay) -> Option<IndexKey> {
    match &relay.security {
        Security::Plain => None,
        Security::Private(private) => IndexKey::of(&private.keys),
    }
}

/// Who holds `target`, asked by its tag: the holders whose records open
/// and match, oldest registration first, as the plain index answers. Nodes
/// whose records were refused are named on `report`. None from a relay
/// without the blind index.
pub fn who_has(
    relay: &Relay,
    key: &IndexKey,
    target: &Target,
    report: &Report,
) -> anyhow::Result<Option<HolderList>> {
    let asked = match target {
        Target::Name(name) => key.by_name(name),
        Target::Hash(hash) => key.by_content(hash),
    };
    let answer = index::ask(
        relay,
        &Request::BlindWhoHas(asked),
        "blind who-has request",
        |r| match r {
            Response::BlindHolders(list) => Ok(list),
            other => Err(other),
        },
    )?;
    let Some(list) = answer else {
        return Ok(None);
    };
    let (holders, bad) = key.open_holders(&asked, &list);
    name_bad_nodes(&bad, report);
    Ok(Some(holders))
}

/// Every record the relay holds, page by page, opened and checked; nodes
/// whose records were refused are named on `report`. None from a relay
/// without the blind index.
pub fn listing(relay: &Relay, key: &IndexKey, report: &Report) -> anyhow::Result<Option<Listing>> {
    let mut listing = Listing::default();
    let mut cursor = 0;
    let mut pages = 0usize;
    let mut seen = 0usize;
    loop {
        let page = PageRequest {
            cursor,
            limit: MAX_LIST_FILES as u32,
        };
        let answer = index::ask(
            relay,
            &Request::BlindList(page),
            "listing request",
            |r| match r {
                Response::SealedPage(page) => Ok(page),
                other => Err(other),
            },
        )?;
        let Some(page) = answer else {
            return Ok(None);
        };
        pages += 1;
        seen += page.hits.len();
        listing.add_page(key, &page);
        match page.next {
            None => break,
            // The relay's cursors only go forward; one that does not would
            // have the client ask for ever.
            Some(next) if next <= cursor => anyhow::bail!(
                "relay {} sent a listing page whose next cursor ({next}) does not follow its \
                 own ({cursor})",
                relay.label()
            ),
            Some(_) if seen >= MAX_LISTED => {
                report.status(&format!(
                    "the listing is cut at {} ({}): more than a client gathers",
                    count(seen, "record"),
                    count(pages, "page")
                ));
                break;
            }
            Some(next) => cursor = next,
        }
    }
    tracing::debug!(
        "relay {}: {} in {}",
        relay.label(),
        count(listing.len(), "record"),
        count(pages, "page")
    );
    name_bad_nodes(&listing.bad, report);
    Ok(Some(listing))
}

/// Names containing `text` (every name for the empty text), at most
/// `limit`, searched here over the whole listing; None from a relay
/// without the blind index.
pub fn search(
    relay: &Relay,
    key: &IndexKey,
    text: &str,
    limit: usize,
    report: &Report,
) -> anyhow::Result<Option<SearchResults>> {
    Ok(listing(relay, key, report)?.map(|all| all.search(text, limit)))
}

/// One status line per node whose records were refused.
fn name_bad_nodes(bad: &[BadRecord], report: &Report) {
    for line in bad_node_lines(bad) {
        report.status(&line);
    }
}

/// One line per node, in the order the nodes first came, with its first
/// problem and how many records it cost: a node that sent a thousand bad
/// records is one line, not a thousand.
pub fn bad_node_lines(bad: &[BadRecord]) -> Vec<String> {
    let mut order: Vec<SocketAddr> = Vec::new();
    let mut by_node: BTreeMap<SocketAddr, (&BadRecord, usize)> = BTreeMap::new();
    for b in bad {
        by_node
            .entry(b.addr)
            .and_modify(|(_, n)| *n += 1)
            .or_insert_with(|| {
                order.push(b.addr);
                (b, 1)
            });
    }
    order
        .iter()
        .map(|addr| {
            let (first, n) = by_node[addr];
            let more = match n {
                1 => String::new(),
                n => format!(" ({} in all)", count(n, "bad record")),
            };
            format!("{first}{more}; skipped")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::blind::{OpenError, RecordProblem};

    fn bad(port: u16, problem: RecordProblem) -> BadRecord {
        BadRecord {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            problem,
        }
    }

    #[test]
    fn each_node_is_named_once_in_the_order_it_came() {
        let lines = bad_node_lines(&[
            bad(9, RecordProblem::Open(OpenError::Forged)),
            bad(4, RecordProblem::NameMismatch),
            bad(9, RecordProblem::Open(OpenError::Length(5))),
            bad(9, RecordProblem::ContentMismatch),
        ]);
        assert_eq!(
            lines,
            [
                "node 127.0.0.1:9 sent a bad index record: the record does not open with this \
                 network's index key (altered, or sealed with another secret) (3 bad records \
                 in all); skipped",
                "node 127.0.0.1:4 sent a bad index record: the record's name is not the one its \
                 name tag stands for; skipped",
            ]
        );
        assert!(bad_node_lines(&[]).is_empty());
    }

    #[test]
    fn only_a_private_relay_has_an_index_key() {
        let mut relay = Relay {
            host: "127.0.0.1".into(),
            port: 1,
            more: Vec::new(),
            answered: Default::default(),
            timeouts: Default::default(),
            security: Security::Plain,
            pin: None,
            punch: false,
        };
        assert!(index_key(&relay).is_none());
        let keys = net::secure::NetworkKeys::from_secret(b"s3cret");
        let want = IndexKey::of(&keys).unwrap();
        relay.security = Security::private(keys, net::secure::Identity::generate().unwrap());
        let key = index_key(&relay).unwrap();
        assert_eq!(key.name_tag("a.txt"), want.name_tag("a.txt"));
    }
}
