//! Asking the relay's index: who holds a name or a content (so a fetch
//! contacts only holders, and a missing file costs one round trip), and
//! which names across the network contain some text (search, and the
//! network-wide listing).
//!
//! Who-has is the source of a fetch's holders ([`crate::holders`]). It is
//! asked in its second form (`WhoHasLong`), whose answer names the nodes
//! that hold a name and have not hashed it yet (a file just written: the
//! node's watcher saw it and told the relay before hashing it), so the
//! client asks those by name at once. A relay older than that form answers
//! `BadRequest`, and the first form (`WhoHas`) is asked instead: such a
//! relay has no names without hashes.
//!
//! An older relay has no index: it answers these requests `BadRequest`
//! (an unknown tag), which comes back here as `Ok(None)`, and the caller
//! falls back to asking nodes in turn.

use proto::{
    ErrorKind, HolderList, HolderListLong, HolderLong, Request, Response, SearchQuery,
    SearchResults, Target,
};

use crate::relay::Relay;

/// Most results a search asks for; `--list` asks for as many as one answer
/// holds.
pub const SEARCH_LIMIT: u32 = 100;

/// One request to the relay's index (under the relay key in a private
/// network; the blind index's too, crate::blind), for an answer `want`
/// takes; None when the relay has none.
pub(crate) fn ask<T>(
    relay: &Relay,
    request: &Request,
    what: &str,
    want: impl FnOnce(Response) -> Result<T, Response>,
) -> anyhow::Result<Option<T>> {
    match relay.ask(request)? {
        Response::Error(e) if e.kind == ErrorKind::BadRequest => {
            tracing::debug!("relay {}: {} (no index)", relay.label(), e.message);
            Ok(None)
        }
        response => want(response)
            .map(Some)
            .map_err(|other| relay.refused(what, other)),
    }
}

/// Who holds `target`, oldest registration first, with the holders still
/// hashing it (no hash); None from a relay without an index.
pub fn who_has(relay: &Relay, target: &Target) -> anyhow::Result<Option<HolderListLong>> {
    let long = ask(
        relay,
        &Request::WhoHasLong(target.clone()),
        "who-has request",
        |r| match r {
            Response::HoldersLong(list) => Ok(list),
            other => Err(other),
        },
    )?;
    if long.is_some() {
        return Ok(long);
    }
    // An older relay: the first form, every holder with its hash.
    let short = ask(
        relay,
        &Request::WhoHas(target.clone()),
        "who-has request",
        |r| match r {
            Response::Holders(list) => Ok(list),
            other => Err(other),
        },
    )?;
    Ok(short.map(long_form))
}

/// A first-form answer in the second form: every holder has its hash.
pub(crate) fn long_form(list: HolderList) -> HolderListLong {
    HolderListLong {
        nodes: list.nodes,
        holders: list
            .holders
            .into_iter()
            .map(|h| HolderLong {
                addr: h.addr,
                name: h.name,
                size: h.size,
                hash: Some(h.hash),
            })
            .collect(),
        unindexed: list.unindexed,
        truncated: list.truncated,
    }
}

/// Names containing `text`; None from an older relay.
pub fn search(relay: &Relay, text: &str, limit: u32) -> anyhow::Result<Option<SearchResults>> {
    let query = SearchQuery {
        text: text.to_string(),
        limit,
    };
    ask(relay, &Request::Search(query), "search", |r| match r {
        Response::SearchResults(found) => Ok(found),
        other => Err(other),
    })
}
