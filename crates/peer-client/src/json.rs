//! `--json`: a listing as one JSON document on stdout, for scripts, so they
//! need not parse columns. Sizes are exact bytes and hashes whole
//! (`blake3:` and 64 hex digits), whatever `--long` says. The field names
//! are documented in the README ("Output for scripts") and stay stable: a
//! field may be added, never renamed or removed.
//!
//! The status lines (`3 results ... on 2 active nodes`) still go to stderr.

use std::io::Write;
use std::net::SocketAddr;

use proto::{ContentHash, NodeInfo, NodeMode, SearchResults};
use serde_json::{Value, json};

use crate::listing::Listing;

/// `blake3:` and the whole hash, or null while a node has not hashed it.
fn hash(hash: Option<ContentHash>) -> Value {
    match hash {
        Some(h) => Value::String(format!("blake3:{h}")),
        None => Value::Null,
    }
}

/// `--peers --json`: `{"nodes": [{"addr", "mode", "punchable",
/// "refreshed_secs_ago", "key"}]}`.
pub fn peers(nodes: &[NodeInfo], punchable: &[SocketAddr]) -> Value {
    let nodes: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "addr": n.addr.to_string(),
                "mode": match n.mode {
                    NodeMode::Direct => "direct",
                    NodeMode::Relayed => "relayed",
                    NodeMode::Other(_) => "unknown",
                },
                "punchable": n.mode == NodeMode::Relayed && punchable.contains(&n.addr),
                "refreshed_secs_ago": n.age_secs,
                "key": n.key.map(|k| k.to_string()),
            })
        })
        .collect();
    json!({ "nodes": nodes })
}

/// `--list --json` and `--search TEXT --json` from the relay's index:
/// `{"source": "index", "query", "active_nodes", "truncated", "files":
/// [{"name", "size", "hash", "holders"}]}` (`query` is "" for a listing).
pub fn found(found: &SearchResults, text: &str) -> Value {
    let files: Vec<Value> = found
        .hits
        .iter()
        .map(|hit| {
            json!({
                "name": hit.name,
                "size": hit.size,
                "hash": hash(Some(hit.hash)),
                "holders": hit.holders,
            })
        })
        .collect();
    json!({
        "source": "index",
        "query": text,
        "active_nodes": found.nodes,
        "truncated": found.truncated,
        "files": files,
    })
}

/// `--list --nodes --json` (and every listing against an older relay):
/// `{"source": "nodes", "nodes": [{"addr", "truncated", "files": [{"name",
/// "size", "hash"}]}]}`, `hash` null when the node has not hashed the
/// file yet (or is too old to say).
pub fn listing(all: &[Listing]) -> Value {
    let nodes: Vec<Value> = all
        .iter()
        .map(|(addr, entries, truncated)| {
            let files: Vec<Value> = entries
                .iter()
                .map(|e| json!({ "name": e.name, "size": e.size, "hash": hash(e.hash) }))
                .collect();
            json!({ "addr": addr.to_string(), "truncated": truncated, "files": files })
        })
        .collect();
    json!({ "source": "nodes", "nodes": nodes })
}

/// `--search TEXT --json` node by node: `{"source": "nodes", "query",
/// "files": [{"name", "size", "hash", "node"}]}`, one per copy.
pub fn matches(all: &[Listing], text: &str, matching: impl Fn(&str) -> bool) -> (Value, usize) {
    let files: Vec<Value> = all
        .iter()
        .flat_map(|(addr, entries, _)| {
            entries.iter().filter(|e| matching(&e.name)).map(move |e| {
                json!({
                    "name": e.name,
                    "size": e.size,
                    "hash": hash(e.hash),
                    "node": addr.to_string(),
                })
            })
        })
        .collect();
    let n = files.len();
    (
        json!({ "source": "nodes", "query": text, "files": files }),
        n,
    )
}

/// Writes `doc` and a newline; a closed stdout is not worth a panic.
pub fn print(doc: &Value, out: &mut dyn Write) {
    let _ = serde_json::to_writer_pretty(&mut *out, doc);
    let _ = writeln!(out);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{FileEntryLong, SearchHit};

    #[test]
    fn index_hits_keep_exact_sizes_and_whole_hashes() {
        let h = ContentHash::of(b"x");
        let found = SearchResults {
            nodes: 2,
            hits: vec![SearchHit {
                name: "big \"one\".iso".into(),
                size: 5_000_000_123,
                hash: h,
                holders: 2,
            }],
            truncated: false,
        };
        let mut out = Vec::new();
        print(&found_doc(&found), &mut out);
        let doc: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["files"][0]["size"], 5_000_000_123u64);
        assert_eq!(doc["files"][0]["hash"], format!("blake3:{h}"));
        assert_eq!(doc["files"][0]["name"], "big \"one\".iso");
        assert_eq!(doc["active_nodes"], 2);
        assert_eq!(doc["source"], "index");
    }

    fn found_doc(f: &SearchResults) -> Value {
        found(f, "")
    }

    #[test]
    fn node_listings_say_null_for_a_file_not_hashed_yet() {
        let addr: SocketAddr = "10.0.0.2:7001".parse().unwrap();
        let entry = |name: &str, hash| FileEntryLong {
            name: name.into(),
            size: 3,
            hash,
        };
        let all = vec![(
            addr,
            vec![
                entry("a.txt", None),
                entry("b.txt", Some(ContentHash::of(b"b"))),
            ],
            false,
        )];
        let doc = listing(&all);
        assert_eq!(doc["nodes"][0]["addr"], "10.0.0.2:7001");
        assert_eq!(doc["nodes"][0]["files"][0]["hash"], Value::Null);
        let (doc, n) = matches(&all, "B", |name| name.contains('b'));
        assert_eq!(n, 1);
        assert_eq!(doc["files"][0]["node"], "10.0.0.2:7001");
    }
}
