//! The peer client: asks the relay for the active nodes, then asks them one
//! at a time for a file, and prints or saves it.
//!
//! Module map:
//! - [`cli`]: the command line.
//! - [`index`]: the relay's index: who holds a name or a content, search,
//!   and the network-wide listing; `None` from an older relay without one.
//! - [`lookup`]: the relay's node list, then the nodes in turn (with resume
//!   of a broken transfer from the next node), and file listings.
//! - [`holders`]: which of the candidates (the relay's who-has answer, or
//!   every node) holds the content, with its hash and size proven.
//! - [`multi`]: a fetch from several holders at once: one thread per
//!   source, verified ranges, positioned writes or an in-order window.
//! - [`dial`]: reaching a node, directly or through a circuit at the relay.
//! - [`verified`]: one node's part of a fetch as a verified range: only
//!   bytes checked against the content hash reach the output.
//! - [`output`]: stdout (guarded when it is a terminal), an atomic file, or
//!   a device or FIFO written in place.
//! - [`target`]: what `-o PATH` names (file, link, directory, device).
//! - [`prompt`]: the interactive prompt and its commands.
//! - [`progress`]: the progress bar when saving to a file on a terminal.
//! - [`report`]: status lines for the user on stderr.
//! - [`scheduler`]: the range plan of a multi-source fetch, as data: which
//!   pieces are wanted, who fetches which, what each source gave.

pub mod cli;
pub mod dial;
pub mod holders;
pub mod index;
pub mod lookup;
pub mod multi;
pub mod output;
pub mod progress;
pub mod prompt;
pub mod report;
pub mod scheduler;
pub mod target;
pub mod verified;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use net::exchange::Timeouts;
use proto::{ContentHash, NodeInfo, NodeMode, SearchResults, Target};

use lookup::Fetched;
pub use lookup::Relay;
use output::Output;
use prompt::{Command, Input};
use report::Report;

/// How this client meets the network: plain without keys; with them, a
/// throwaway static key pair of its own (nodes do not check clients'
/// keys: the peer key is what admits a client).
pub fn security(keys: Option<net::secure::NetworkKeys>) -> Result<net::secure::Security, String> {
    match keys {
        None => Ok(net::secure::Security::Plain),
        Some(keys) => {
            let identity = net::secure::Identity::generate().map_err(|e| e.to_string())?;
            Ok(net::secure::Security::private(keys, identity))
        }
    }
}

/// Exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_MISSING: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Holders a fetch pulls from at once unless told otherwise (`--sources`).
pub const DEFAULT_SOURCES: usize = 4;

/// What the user asked for on the command line.
#[derive(Debug, Clone)]
pub enum Task {
    /// Fetch each name (to `output` if given: one name only), then exit.
    Fetch {
        names: Vec<String>,
        output: Option<PathBuf>,
    },
    /// Print the active nodes.
    Peers,
    /// Print what the network shares (with content hashes if `long`): from
    /// the relay's index, or node by node (`per_node`, and against an
    /// older relay).
    List { long: bool, per_node: bool },
    /// Print the files whose names contain the text.
    Search { text: String },
    /// The interactive prompt.
    Prompt,
}

/// A client session against one relay.
pub struct Session {
    relay: Relay,
    timeouts: Timeouts,
    report: Report,
    /// The last node list, used when the relay cannot be reached mid-session.
    nodes: Vec<NodeInfo>,
    /// Names come from the prompt, so hints speak its language (`get NAME
    /// -o PATH`, not `-o PATH`).
    at_prompt: bool,
    /// Most holders one fetch pulls from at once; 1 is the sequential fetch.
    sources: usize,
    /// Never ask the relay's index; ask nodes in turn (`--no-index`).
    pub no_index: bool,
}

impl Session {
    pub fn new(relay: Relay, timeouts: Timeouts, report: Report) -> Session {
        Session {
            relay,
            timeouts,
            report,
            nodes: Vec::new(),
            at_prompt: false,
            no_index: false,
            sources: DEFAULT_SOURCES,
        }
    }

    /// Pulls each file from up to `sources` holders at once (1: one node
    /// at a time, holders in registration order).
    pub fn with_sources(mut self, sources: usize) -> Session {
        self.sources = sources.max(1);
        self
    }

    /// Runs the task; returns the process exit code. Only what needs the
    /// node list asks the relay for it: a fetch through the index costs
    /// one who-has.
    pub fn run(mut self, task: Task) -> u8 {
        let needs_nodes = match &task {
            Task::Peers | Task::Prompt => true,
            Task::List { per_node, .. } => *per_node || self.no_index,
            Task::Fetch { .. } | Task::Search { .. } => self.no_index,
        };
        if needs_nodes && let Err(e) = self.refresh_nodes() {
            self.report.error(&e);
            return EXIT_USAGE;
        }
        let mut stdout = std::io::stdout().lock();
        let done = match task {
            Task::Peers => Ok(self.print_peers(&mut stdout)),
            Task::List { long, per_node } => self.list(long, per_node, &mut stdout),
            Task::Search { text } => self.search(&text, &mut stdout),
            Task::Fetch { names, output } => {
                drop(stdout);
                let mut code = EXIT_OK;
                for (i, name) in names.iter().enumerate() {
                    if i > 0
                        && self.no_index
                        && let Err(e) = self.refresh_nodes()
                    {
                        self.report.error(&e);
                        return EXIT_USAGE;
                    }
                    match self.get(name, output.as_deref()) {
                        Ok(true) => {}
                        Ok(false) => code = EXIT_MISSING,
                        Err(e) => {
                            self.report.error(&e);
                            return EXIT_USAGE;
                        }
                    }
                }
                Ok(code)
            }
            Task::Prompt => {
                drop(stdout);
                Ok(self.prompt())
            }
        };
        done.unwrap_or_else(|e| {
            self.report.error(&e);
            EXIT_USAGE
        })
    }

    /// The network's files from the relay's index, or node by node
    /// (`per_node`, `--no-index`, or an older relay).
    fn list(&mut self, long: bool, per_node: bool, out: &mut dyn Write) -> Result<u8, String> {
        if !per_node && !self.no_index {
            let limit = proto::MAX_LIST_FILES as u32;
            match index::search(&self.relay, "", limit).map_err(|e| e.to_string())? {
                Some(found) => return Ok(self.print_found(&found, long, "", out)),
                None => self.older_relay("listing node by node")?,
            }
        }
        Ok(self.print_listing(long, out))
    }

    /// Files whose names contain `text`, across the network.
    fn search(&mut self, text: &str, out: &mut dyn Write) -> Result<u8, String> {
        if !self.no_index {
            match index::search(&self.relay, text, index::SEARCH_LIMIT)
                .map_err(|e| e.to_string())?
            {
                Some(found) => return Ok(self.print_found(&found, false, text, out)),
                None => self.older_relay("searching node by node")?,
            }
        }
        // Node by node: every listing, filtered here.
        let listing = lookup::list_all(&self.nodes, true, &self.dialer(), &self.report);
        let needle = text.to_ascii_lowercase();
        let mut shown = 0;
        for (addr, entries, _) in &listing {
            for e in entries
                .iter()
                .filter(|e| e.name.to_ascii_lowercase().contains(&needle))
            {
                let hash = e.hash.map_or("(not hashed yet)".to_string(), |h| {
                    format!("blake3:{}", h.short())
                });
                let _ = writeln!(
                    out,
                    "{:>12}  {hash}  {addr}  {}",
                    e.size,
                    e.name.escape_debug()
                );
                shown += 1;
            }
        }
        let _ = out.flush();
        self.report.status(&format!(
            "{} (asked {} node by node)",
            count(shown, "result"),
            count(self.nodes.len(), "active node")
        ));
        Ok(EXIT_OK)
    }

    /// Says the relay has no index, and fetches the node list for the
    /// fallback.
    fn older_relay(&mut self, doing: &str) -> Result<(), String> {
        self.report.status(&format!(
            "relay {} keeps no index (an older relay); {doing}",
            self.relay.label()
        ));
        self.refresh_nodes()
    }

    /// Search hits, one line each: size, hash (short, or whole with
    /// `long`), number of holders, name; then a status line.
    fn print_found(
        &self,
        found: &SearchResults,
        long: bool,
        text: &str,
        out: &mut dyn Write,
    ) -> u8 {
        for hit in &found.hits {
            let hash = if long {
                format!("blake3:{}", hit.hash)
            } else {
                format!("blake3:{}", hit.hash.short())
            };
            let _ = writeln!(
                out,
                "{:>12}  {hash}  {:>4} {}  {}",
                hit.size,
                hit.holders,
                if hit.holders == 1 { "node " } else { "nodes" },
                hit.name.escape_debug()
            );
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
        self.report.status(&line);
        EXIT_OK
    }

    fn refresh_nodes(&mut self) -> Result<(), String> {
        match self.relay.nodes() {
            Ok(nodes) => {
                tracing::debug!(
                    "relay {} lists {}",
                    self.relay.label(),
                    count(nodes.len(), "active node")
                );
                self.nodes = nodes;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Fetches one name (or `blake3:HASH`) to stdout or `output`; true if
    /// it was found whole, Err if the relay could not be asked.
    ///
    /// The relay's index is asked first: a missing file costs that one
    /// round trip, and only holders of the earliest-registered holder's
    /// version are contacted. Against an older relay (or `--no-index`),
    /// every active node is asked in turn.
    fn get(&mut self, name: &str, output: Option<&Path>) -> Result<bool, String> {
        let target = if ContentHash::looks_like(name) {
            match name.parse::<ContentHash>() {
                Ok(hash) => Target::Hash(hash),
                Err(e) => {
                    self.report.error(&format!("{name}: {e}"));
                    return Ok(false);
                }
            }
        } else {
            Target::Name(name.to_string())
        };
        let mut plan = None;
        // Nodes that sent no catalog (just started, or older nodes): asked
        // directly, after the holders.
        let mut unindexed: Vec<NodeInfo> = Vec::new();
        let mut indexed = false;
        if !self.no_index {
            match index::who_has(&self.relay, &target).map_err(|e| e.to_string())? {
                Some(list) => {
                    indexed = true;
                    let listed = list.holders.iter().map(|h| h.addr);
                    let known = self.nodes_of(listed.chain(list.unindexed.iter().copied()))?;
                    let node_of = |addr| {
                        known.get(&addr).copied().unwrap_or(NodeInfo {
                            addr,
                            age_secs: 0,
                            mode: NodeMode::Direct,
                            key: None,
                        })
                    };
                    plan = index::Plan::of(&list.holders, node_of);
                    unindexed = list.unindexed.iter().map(|&addr| node_of(addr)).collect();
                    if plan.is_none() && unindexed.is_empty() {
                        self.report.status(&format!(
                            "{name}: not found on any of {} (the relay's index)",
                            count(list.nodes as usize, "active node")
                        ));
                        return Ok(false);
                    }
                    if !unindexed.is_empty() {
                        self.report.status(&format!(
                            "{} sent the relay no catalog yet (just started, or older); \
                             asking {} too",
                            count(unindexed.len(), "active node"),
                            if unindexed.len() == 1 { "it" } else { "them" }
                        ));
                    }
                }
                None => self.older_relay("asking nodes in turn")?,
            }
        }
        let mut out = match Output::open(output, name, !self.report.quiet) {
            Ok(out) => out,
            Err(e) => {
                self.report.error(&proto::error::describe(e.chain()));
                return Ok(false);
            }
        };
        let dialer = self.dialer();
        let fetched = match &plan {
            Some(plan) => {
                if let Some(note) = plan.others_note(name) {
                    self.report.status(&note);
                }
                let mut nodes = plan.nodes.clone();
                nodes.extend(unindexed);
                let mut fetched = multi::fetch(
                    &target,
                    Some((plan.hash, plan.size)),
                    &nodes,
                    &dialer,
                    self.sources,
                    &mut out,
                    &self.report,
                );
                // No holder of that version could serve it, and nothing was
                // written: the next version, in the order of first holders.
                for (hash, size, nodes) in &plan.others {
                    if !matches!(fetched, Fetched::Nothing) {
                        break;
                    }
                    self.report.status(&format!(
                        "{name}: trying the next version, blake3:{}",
                        hash.short()
                    ));
                    fetched = multi::fetch(
                        &target,
                        Some((*hash, *size)),
                        nodes,
                        &dialer,
                        self.sources,
                        &mut out,
                        &self.report,
                    );
                }
                // The index lags a file rewritten since its node's last
                // catalog: every holder then answers not-found for the
                // version the index names. Nothing was written, so ask the
                // holders by name; each answer proves its own content.
                if matches!(fetched, Fetched::Nothing) && matches!(target, Target::Name(_)) {
                    let mut holders = plan.nodes.clone();
                    for (_, _, nodes) in &plan.others {
                        for node in nodes {
                            if !holders.iter().any(|h| h.addr == node.addr) {
                                holders.push(*node);
                            }
                        }
                    }
                    self.report.status(&format!(
                        "{name}: no holder has the version the relay's index names any more; \
                         asking them by name"
                    ));
                    fetched = multi::fetch(
                        &target,
                        None,
                        &holders,
                        &dialer,
                        self.sources,
                        &mut out,
                        &self.report,
                    );
                }
                fetched
            }
            None => {
                let nodes = if indexed { &unindexed } else { &self.nodes };
                multi::fetch(
                    &target,
                    None,
                    nodes,
                    &dialer,
                    self.sources,
                    &mut out,
                    &self.report,
                )
            }
        };
        Ok(match fetched {
            Fetched::Found { size } => {
                let done = out.done_line(name, size);
                match out.commit() {
                    Ok(()) => {
                        if let Some(line) = done {
                            self.report.status(&line);
                        }
                        true
                    }
                    Err(e) => {
                        self.report.error(&proto::error::describe(e.chain()));
                        false
                    }
                }
            }
            Fetched::NotText => {
                // Dropping the output ends a partly printed line first.
                drop(out);
                let hint = if self.at_prompt {
                    format!("use `get {name} -o FILE` to save it")
                } else {
                    "use -o FILE to save it, or redirect stdout".to_string()
                };
                self.report.error(&format!(
                    "{name} is not text; refusing to print it to the terminal ({hint})"
                ));
                false
            }
            Fetched::Missing | Fetched::Nothing | Fetched::OutputFailed => {
                if let Some(line) = out.abandoned_line(name) {
                    self.report.error(&line);
                }
                false
            }
        })
    }

    /// How each of `addrs` (holders and unindexed nodes from a who-has) is
    /// reached: a relayed node must be dialled through a circuit at the
    /// relay, and in a private network every node must prove the key it is
    /// listed with. Holder entries name nodes by address only, so modes and
    /// keys come from the long node list: the one this session has, or,
    /// when it does not name them all, one `ListNodesLong` asked now. A node
    /// still not in it (it just left, or just joined) is tried directly, and
    /// in a private network not at all (no key to check).
    fn nodes_of(
        &mut self,
        addrs: impl Iterator<Item = SocketAddr>,
    ) -> Result<HashMap<SocketAddr, NodeInfo>, String> {
        let addrs: Vec<SocketAddr> = addrs.collect();
        let known = |nodes: &[NodeInfo]| -> HashMap<SocketAddr, NodeInfo> {
            nodes.iter().map(|n| (n.addr, *n)).collect()
        };
        let mut nodes = known(&self.nodes);
        if !addrs.is_empty() && addrs.iter().any(|a| !nodes.contains_key(a)) {
            self.refresh_nodes()?;
            nodes = known(&self.nodes);
        }
        Ok(nodes)
    }

    /// How to reach the listed nodes, with this session's timeouts.
    fn dialer(&self) -> lookup::Dialer {
        lookup::Dialer {
            timeouts: self.timeouts,
            ..self.relay.dialer()
        }
    }

    /// The active nodes, one per line starting with `IP:PORT`, to `out`:
    /// stdout for `--peers`, stderr at the prompt (whose stdout carries file
    /// content only). A relayed node is marked `relayed`; a direct node's
    /// line is as it always was, so scripts reading it keep working.
    fn print_peers(&self, out: &mut dyn Write) -> u8 {
        for node in &self.nodes {
            let mode = match node.mode {
                NodeMode::Direct => String::new(),
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
        self.report.status(&count(self.nodes.len(), "active node"));
        EXIT_OK
    }

    /// What every node shares, grouped by node in the relay's order, to
    /// `out` (as for [`Session::print_peers`]); with `long`, each file's
    /// content hash in the form a fetch accepts (`blake3:...`).
    fn print_listing(&self, long: bool, out: &mut dyn Write) -> u8 {
        let listing = lookup::list_all(&self.nodes, long, &self.dialer(), &self.report);
        for (addr, entries, truncated) in &listing {
            let _ = writeln!(out, "{addr} ({})", count(entries.len(), "file"));
            for entry in entries {
                let name = entry.name.escape_debug();
                if !long {
                    let _ = writeln!(out, "  {:>12}  {name}", entry.size);
                    continue;
                }
                let hash = match entry.hash {
                    Some(hash) => format!("blake3:{hash}"),
                    None => format!("{:<71}", "(not hashed yet)"),
                };
                let _ = writeln!(out, "  {:>12}  {hash}  {name}", entry.size);
            }
            if *truncated {
                let _ = writeln!(out, "  ... (more files than one listing holds)");
            }
        }
        let _ = out.flush();
        if self.nodes.is_empty() {
            self.report.status("no active nodes");
        }
        EXIT_OK
    }

    fn prompt(&mut self) -> u8 {
        self.at_prompt = true;
        let mut input = Input::open();
        let mut code = EXIT_OK;
        while let Some(line) = input.next_line() {
            let command = Command::parse(&line);
            let needs_nodes = match &command {
                Command::Peers => true,
                Command::List { per_node, .. } => *per_node || self.no_index,
                Command::Get { .. } | Command::Search { .. } => self.no_index,
                _ => false,
            };
            if needs_nodes && let Err(e) = self.refresh_nodes() {
                self.report.error(&format!("{e}; using the last list"));
            }
            match command {
                Command::Nothing => {}
                Command::Quit => break,
                Command::Help => report::stderr_line(prompt::HELP),
                Command::Invalid(why) => self.report.error(&why),
                Command::Peers => {
                    self.print_peers(&mut std::io::stderr().lock());
                }
                Command::List { long, per_node } => {
                    if let Err(e) = self.list(long, per_node, &mut std::io::stderr().lock()) {
                        self.report.error(&e);
                    }
                }
                Command::Search { text } => {
                    if let Err(e) = self.search(&text, &mut std::io::stderr().lock()) {
                        self.report.error(&e);
                    }
                }
                Command::Get { name, output } => match self.get(&name, output.as_deref()) {
                    Ok(true) => {}
                    Ok(false) => code = EXIT_MISSING,
                    Err(e) => {
                        self.report.error(&e);
                        code = EXIT_MISSING;
                    }
                },
            }
        }
        code
    }
}

/// `1 file`, `2 files`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
