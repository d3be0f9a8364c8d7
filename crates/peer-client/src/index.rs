//! Asking the relay's index: who holds a name or a content (so a fetch
//! contacts only holders, and a missing file costs one round trip), and
//! which names across the network contain some text (search, and the
//! network-wide listing).
//!
//! Who-has is the source of a fetch's holders ([`crate::holders`]).
//!
//! An older relay has no index: it answers these requests `BadRequest`
//! (an unknown tag), which comes back here as `Ok(None)`, and the caller
//! falls back to asking nodes in turn.

use proto::{ErrorKind, HolderList, Request, Response, SearchQuery, SearchResults, Target};

use crate::relay::Relay;

/// Most results a search asks for; `--list` asks for as many as one answer
/// holds.
pub const SEARCH_LIMIT: u32 = 100;

/// One request to the relay's index (under the relay key in a private
/// network); None when the relay has none.
fn ask(relay: &Relay, request: &Request) -> anyhow::Result<Option<Response>> {
    match relay.ask(request)? {
        Response::Error(e) if e.kind == ErrorKind::BadRequest => {
            tracing::debug!("relay {}: {} (no index)", relay.label(), e.message);
            Ok(None)
        }
        // Only a private network refuses as unauthorized: this client has
        // no secret, and the relay requires one.
        Response::Error(e) if e.kind == ErrorKind::Unauthorized => Err(anyhow::anyhow!(
            "relay {} refused the handshake: {}",
            relay.label(),
            proto::error::printable(&e.message)
        )),
        Response::Error(e) => Err(anyhow::anyhow!(
            "relay {} refused: {} ({})",
            relay.label(),
            e.message,
            e.kind.as_str()
        )),
        response => Ok(Some(response)),
    }
}

fn unexpected(relay: &Relay, what: &str, response: &Response) -> anyhow::Error {
    anyhow::anyhow!(
        "relay {} answered a {} to a {what}; is that a relay?",
        relay.label(),
        response.name()
    )
}

/// Who holds `target`, oldest registration first; None from an older relay.
pub fn who_has(relay: &Relay, target: &Target) -> anyhow::Result<Option<HolderList>> {
    match ask(relay, &Request::WhoHas(target.clone()))? {
        None => Ok(None),
        Some(Response::Holders(list)) => Ok(Some(list)),
        Some(other) => Err(unexpected(relay, "who-has request", &other)),
    }
}

/// Names containing `text`; None from an older relay.
pub fn search(relay: &Relay, text: &str, limit: u32) -> anyhow::Result<Option<SearchResults>> {
    let query = SearchQuery {
        text: text.to_string(),
        limit,
    };
    match ask(relay, &Request::Search(query))? {
        None => Ok(None),
        Some(Response::SearchResults(found)) => Ok(Some(found)),
        Some(other) => Err(unexpected(relay, "search", &other)),
    }
}
