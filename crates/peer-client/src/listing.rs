//! What the network shares, printed: each node's own listing (asked node
//! by node, in the relay's order), the relay index's search hits, and the
//! active nodes. Lines go to `out`: stdout for the command-line flags,
//! stderr at the prompt (whose stdout carries file content only).
//!
//! Sizes are for people (`12 KiB`, `1.0 GiB`, as `ls -lh` gives them),
//! except with `--long`, and with `--json` ([`crate::json`]), which keep
//! exact bytes.

use std::io::Write;
use std::net::SocketAddr;

use proto::{
    ErrorKind, FileEntryLong, LinkRelay, NodeInfo, NodeMode, Request, Response, SearchResults,
};

use crate::dial::{self, Dialer};
use crate::report::{Report, count};

/// How a listing is printed: `long` (exact sizes, whole hashes, and each
/// file's link naming `links`, the relays asked), `json` (one JSON
/// document, [`crate::json`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Show {
    pub long: bool,
    pub json: bool,
    pub links: Vec<LinkRelay>,
}

impl Show {
    /// The size column: exact bytes with `--long`, else for people.
    fn size(&self, bytes: u64) -> String {
        if self.long {
            bytes.to_string()
        } else {
            human_size(bytes)
        }
    }
}

/// A size as `ls -lh` gives it, with binary units spelled out: `512 B`,
/// `1.5 KiB`, `12 KiB`, `905 MiB`, `1.0 GiB` (one decimal below ten).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    // Rounded up, as ls does, so a size is never shown smaller than it is.
    if value < 9.95 {
        let tenths = (value * 10.0).ceil() / 10.0;
        if tenths < 10.0 {
            return format!("{tenths:.1} {}", UNITS[unit]);
        }
    }
    let whole = value.ceil();
    if whole >= 1024.0 && unit + 1 < UNITS.len() {
        return format!("1.0 {}", UNITS[unit + 1]);
    }
    format!("{whole:.0} {}", UNITS[unit])
}

/// One node's listing: its address, its files (with hashes when asked for
/// and known), and whether it was cut.
pub type Listing = (SocketAddr, Vec<FileEntryLong>, bool);

/// What every node shares, node by node, in the relay's order; with
/// `long`, with content hashes (an older node that cannot list them is
/// asked for the plain listing).
pub fn list_all(nodes: &[NodeInfo], long: bool, dialer: &Dialer, report: &Report) -> Vec<Listing> {
    let total = nodes.len();
    let mut all = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let label = dial::label(node, i, total);
        let ask = |request: &Request| {
            dialer.connect(node).and_then(|mut conn| {
                let response = conn.request(request)?;
                conn.finish();
                Ok(response)
            })
        };
        let mut answer = if long {
            ask(&Request::ListFilesLong)
        } else {
            ask(&Request::ListFiles)
        };
        if let Ok(Response::Error(e)) = &answer
            && long
            && e.kind == ErrorKind::BadRequest
        {
            answer = ask(&Request::ListFiles);
        }
        match answer {
            Ok(Response::FilesLong(list)) => all.push((node.addr, list.entries, list.truncated)),
            Ok(Response::Files(list)) => {
                let entries = list
                    .entries
                    .into_iter()
                    .map(|e| FileEntryLong {
                        name: e.name,
                        size: e.size,
                        hash: None,
                    })
                    .collect();
                all.push((node.addr, entries, list.truncated))
            }
            Ok(Response::Error(e)) => report.status(&format!(
                "{label} cannot list its files: {} ({})",
                e.message,
                e.kind.as_str()
            )),
            Ok(other) => report.status(&format!(
                "{label} answered a {} to a list request",
                other.name()
            )),
            Err(e) if e.is_handshake() => report.status(&format!("{label} {e}")),
            Err(e) => report.status(&format!("could not reach {label}: {e}")),
        }
    }
    all
}

/// Each node's files, grouped by node; with `long`, each file's content
/// hash in the form a fetch accepts (`blake3:...`), and its link on the
/// next line.
pub fn print_listing(listing: &[Listing], show: &Show, out: &mut dyn Write) {
    if show.json {
        return crate::json::print(&crate::json::listing(listing), out);
    }
    for (addr, entries, truncated) in listing {
        let _ = writeln!(out, "{addr} ({})", count(entries.len(), "file"));
        for entry in entries {
            let name = entry.name.escape_debug();
            if !show.long {
                let _ = writeln!(out, "  {:>9}  {name}", show.size(entry.size));
                continue;
            }
            let hash = match entry.hash {
                Some(hash) => format!("blake3:{hash}"),
                None => format!("{:<71}", "(not hashed yet)"),
            };
            let _ = writeln!(out, "  {:>12}  {hash}  {name}", entry.size);
            if let Some(hash) = entry.hash {
                let link = crate::link::printed(hash, Some(&entry.name), entry.size, &show.links);
                let _ = writeln!(out, "    {link}");
            }
        }
        if *truncated {
            let _ = writeln!(out, "  ... (more files than one listing holds)");
        }
    }
    let _ = out.flush();
}

/// The files in the listings whose names contain `text` (either case), one
/// line each: size, short hash, node, name. Returns how many.
pub fn print_matches(listing: &[Listing], text: &str, show: &Show, out: &mut dyn Write) -> usize {
    let needle = text.to_lowercase();
    if show.json {
        let (doc, shown) =
            crate::json::matches(listing, text, |name| name.to_lowercase().contains(&needle));
        crate::json::print(&doc, out);
        return shown;
    }
    let mut shown = 0;
    for (addr, entries, _) in listing {
        for e in entries
            .iter()
            .filter(|e| e.name.to_lowercase().contains(&needle))
        {
            let hash = e.hash.map_or("(not hashed yet)".to_string(), |h| {
                format!("blake3:{}", h.short())
            });
            let _ = writeln!(
                out,
                "{:>9}  {hash}  {addr}  {}",
                show.size(e.size),
                e.name.escape_debug()
            );
            shown += 1;
        }
    }
    let _ = out.flush();
    shown
}

/// Search hits from the relay's index, one line each: size, hash (short,
/// or whole with `long`, the relays a link names, and then the link on the
/// next line), number of holders, name; then a status line.
pub fn print_found(
    found: &SearchResults,
    show: &Show,
    text: &str,
    out: &mut dyn Write,
    report: &Report,
) {
    if show.json {
        crate::json::print(&crate::json::found(found, text), out);
    }
    for hit in found.hits.iter().filter(|_| !show.json) {
        let hash = if show.long {
            format!("blake3:{}", hit.hash)
        } else {
            format!("blake3:{}", hit.hash.short())
        };
        let _ = writeln!(
            out,
            "{:>9}  {hash}  {:>4} {}  {}",
            show.size(hit.size),
            hit.holders,
            if hit.holders == 1 { "node " } else { "nodes" },
            hit.name.escape_debug()
        );
        if show.long {
            let link = crate::link::printed(hit.hash, Some(&hit.name), hit.size, &show.links);
            let _ = writeln!(out, "    {link}");
        }
    }
    let _ = out.flush();
    let what = if text.is_empty() {
        "files".to_string()
    } else {
        format!("names containing {:?}", text.escape_debug().to_string())
    };
    let mut line = format!(
        "{} ({what}) on {} (the relay's index)",
        count(found.hits.len(), "result"),
        count(found.nodes as usize, "active node")
    );
    if found.truncated {
        line.push_str(&format!(
            "; cut at {}: there are more, narrow the search",
            found.hits.len()
        ));
    }
    report.status(&line);
}

/// The active nodes, one per line starting with `IP:PORT`. A relayed node
/// is marked `relayed`; a direct node's line is as it always was, so
/// scripts reading it keep working. A relayed node the relay would punch
/// through to (`punchable`) is marked `relayed, punchable`.
pub fn print_peers(
    nodes: &[NodeInfo],
    punchable: &[SocketAddr],
    show: Show,
    out: &mut dyn Write,
    report: &Report,
) {
    if show.json {
        crate::json::print(&crate::json::peers(nodes, punchable), out);
    }
    for node in nodes.iter().filter(|_| !show.json) {
        let mode = match node.mode {
            NodeMode::Direct => String::new(),
            NodeMode::Relayed if punchable.contains(&node.addr) => {
                "relayed, punchable  ".to_string()
            }
            other => format!("{}  ", other.as_str()),
        };
        let key = match node.key {
            Some(key) => format!("  key {key}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{}  {mode}refreshed {}s ago{key}",
            node.addr, node.age_secs
        );
    }
    let _ = out.flush();
    report.status(&count(nodes.len(), "active node"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people_as_ls_lh_gives_them() {
        for (bytes, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024, "10 KiB"),
            (12 * 1024 + 1, "13 KiB"),
            (1024 * 1024 - 1, "1.0 MiB"),
            (905 << 20, "905 MiB"),
            (1 << 30, "1.0 GiB"),
            (5_000_000_000, "4.7 GiB"),
        ] {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
        let long = Show {
            long: true,
            ..Show::default()
        };
        assert_eq!(long.size(5_000_000_000), "5000000000");
    }
}
