//! Asking the relay's index: who holds a name or a content (so a fetch
//! contacts only holders, and a missing file costs one round trip), and
//! which names across the network contain some text (search, and the
//! network-wide listing).
//!
//! An older relay has no index: it answers these requests `BadRequest`
//! (an unknown tag), which comes back here as `Ok(None)`, and the caller
//! falls back to asking nodes in turn.

use std::net::SocketAddr;

use proto::{ContentHash, ErrorKind, Holder, HolderList, NodeInfo, Request, Response};
use proto::{SearchQuery, SearchResults, Target};

use crate::lookup::{Relay, response_name};

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
        response_name(response)
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

/// The version to fetch and where: the earliest-registered holder's
/// content, from every holder of that content in registration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub hash: ContentHash,
    pub size: u64,
    pub nodes: Vec<NodeInfo>,
    /// The other contents held under the name, in the order of their first
    /// holder: hash, size, holders.
    pub others: Vec<(ContentHash, u64, Vec<NodeInfo>)>,
}

impl Plan {
    /// None when nobody holds it. `node_of` says how each holder is reached
    /// (directly, or through a circuit at the relay) and, in a private
    /// network, the key it must prove: a holder entry names a node by the
    /// address it is listed under, as the long node list does.
    pub fn of(holders: &[Holder], node_of: impl Fn(SocketAddr) -> NodeInfo) -> Option<Plan> {
        let first = holders.first()?;
        let mut plan = Plan {
            hash: first.hash,
            size: first.size,
            nodes: Vec::new(),
            others: Vec::new(),
        };
        for h in holders {
            let node = node_of(h.addr);
            if h.hash == first.hash {
                plan.nodes.push(node);
            } else {
                match plan.others.iter_mut().find(|o| o.0 == h.hash) {
                    Some(other) => other.2.push(node),
                    None => plan.others.push((h.hash, h.size, vec![node])),
                }
            }
        }
        Some(plan)
    }

    /// The note about other versions, if any: how to get each.
    pub fn others_note(&self, name: &str) -> Option<String> {
        if self.others.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .others
            .iter()
            .map(|(hash, size, nodes)| {
                format!(
                    "blake3:{hash} ({size} bytes, {})",
                    crate::count(nodes.len(), "node")
                )
            })
            .collect();
        Some(format!(
            "{name}: fetched the version of the earliest-registered holder (blake3:{}); other \
             versions exist, fetch one by its hash: {}",
            self.hash.short(),
            list.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::NodeMode;

    fn holder(port: u16, h: u8) -> Holder {
        Holder {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            name: "a".into(),
            size: u64::from(h),
            hash: ContentHash([h; 32]),
        }
    }

    fn node(addr: SocketAddr, mode: NodeMode) -> NodeInfo {
        NodeInfo {
            addr,
            age_secs: 0,
            mode,
            key: None,
        }
    }

    #[test]
    fn the_earliest_holders_version_wins_and_others_are_named() {
        let direct = |a| node(a, NodeMode::Direct);
        assert_eq!(Plan::of(&[], direct), None);
        let relayed_3 = |a: SocketAddr| match a.port() {
            3 => node(a, NodeMode::Relayed),
            _ => node(a, NodeMode::Direct),
        };
        let holders = [holder(1, 2), holder(2, 3), holder(3, 2), holder(4, 3)];
        let plan = Plan::of(&holders, relayed_3).unwrap();
        assert_eq!(plan.hash, ContentHash([2; 32]));
        let ports: Vec<u16> = plan.nodes.iter().map(|n| n.addr.port()).collect();
        assert_eq!(ports, [1, 3]);
        let modes: Vec<NodeMode> = plan.nodes.iter().map(|n| n.mode).collect();
        assert_eq!(modes, [NodeMode::Direct, NodeMode::Relayed]);
        assert_eq!(plan.others.len(), 1);
        assert_eq!(
            (plan.others[0].0, plan.others[0].2.len()),
            (ContentHash([3; 32]), 2)
        );
        let note = plan.others_note("a").unwrap();
        assert!(
            note.contains(&format!("blake3:{}", ContentHash([3; 32]))),
            "{note}"
        );
        assert!(note.contains("2 nodes"), "{note}");
    }
}
