//! The peer client: finds who holds a file, fetches it from them, and
//! prints or saves it.
//!
//! A name typed at the prompt (or given on the command line) goes:
//! 1. to the sources of holders ([`holders`]): the relay's index says who
//!    holds it, with each holder's version ([`index`]); against an older
//!    relay, or with `--no-index`, every active node is a candidate
//!    ([`relay`]);
//! 2. to the one fetch path ([`fetch`]), once per version to try: the first
//!    holder that answers fixes the content ([`find`]), a range plan shares
//!    it among up to `--sources` holders at once ([`plan`]), and workers
//!    fetch the ranges ([`worker`]) through one way of reaching a node,
//!    directly or through a circuit at the relay ([`dial`]). One worker
//!    asks the holders in turn, each resuming where the last one stopped;
//! 3. through the proof ([`verify`]): only bytes checked against the
//!    content hash pass (an older node's are marked unverified);
//! 4. to the output ([`output`]): stdout, a file renamed into place when
//!    complete, or a device or FIFO written in place.
//!
//! Module map:
//! - [`cli`]: the command line.
//! - [`relay`]: reaching the relay, and its list of active nodes.
//! - [`index`]: the relay's index: who holds a name or a content, search,
//!   and the network-wide listing; `None` from an older relay without one.
//! - [`holders`]: holders come from sources (who-has, the node list):
//!   candidates, grouped into the versions to try in turn.
//! - [`fetch`]: the one fetch path: find, plan, workers, the closing line.
//! - [`find`]: the holders in turn until one answers for the content.
//! - [`plan`]: the range plan as data: which holders, which ranges, what
//!   each gave, and resume on another holder.
//! - [`worker`]: the workers that carry the plan out, and where their
//!   verified bytes go.
//! - [`holder`]: one holder: its label, a connection, a range or file
//!   request.
//! - [`failure`]: why a holder's part failed, and how the user is told.
//! - [`verify`]: the proof: answers checked, only verified bytes pass.
//! - [`dial`]: reaching a node, directly or through a circuit at the relay.
//! - [`output`]: stdout (guarded when it is a terminal), an atomic file, or
//!   a device or FIFO written in place; the reorder window.
//! - [`target`]: what `-o PATH` names (file, link, directory, device).
//! - [`progress`]: the progress bar when saving to a file on a terminal.
//! - [`listing`]: node-by-node listings, search hits and the node list,
//!   printed.
//! - [`prompt`]: the interactive prompt and its commands, read as a shell
//!   reads words.
//! - [`complete`]: Tab completion of commands and the index's names.
//! - [`report`]: status lines for the user on stderr.

pub mod cli;
pub mod complete;
pub mod dial;
pub mod failure;
pub mod fetch;
pub mod find;
pub mod holder;
pub mod holders;
pub mod index;
pub mod listing;
pub mod output;
pub mod plan;
pub mod progress;
pub mod prompt;
pub mod relay;
pub mod report;
pub mod target;
pub mod verify;
pub mod worker;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use net::exchange::Timeouts;
use proto::{ContentHash, NodeInfo, NodeMode, Target};

use dial::Dialer;
use fetch::Fetched;
use holders::Holders;
use output::Output;
use prompt::{Command, Input};
pub use relay::Relay;
use report::{Report, count};

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
    /// Most holders one fetch pulls from at once: its workers (1: one
    /// worker, which asks the holders in turn).
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
            Task::Peers => {
                listing::print_peers(&self.nodes, &mut stdout, &self.report);
                Ok(EXIT_OK)
            }
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
                Some(found) => {
                    listing::print_found(&found, long, "", out, &self.report);
                    return Ok(EXIT_OK);
                }
                None => self.older_relay("listing node by node")?,
            }
        }
        let all = listing::list_all(&self.nodes, long, &self.dialer(), &self.report);
        listing::print_listing(&all, long, out);
        if self.nodes.is_empty() {
            self.report.status("no active nodes");
        }
        Ok(EXIT_OK)
    }

    /// Files whose names contain `text`, across the network.
    fn search(&mut self, text: &str, out: &mut dyn Write) -> Result<u8, String> {
        if !self.no_index {
            match index::search(&self.relay, text, index::SEARCH_LIMIT)
                .map_err(|e| e.to_string())?
            {
                Some(found) => {
                    listing::print_found(&found, false, text, out, &self.report);
                    return Ok(EXIT_OK);
                }
                None => self.older_relay("searching node by node")?,
            }
        }
        // Node by node: every listing, filtered here.
        let all = listing::list_all(&self.nodes, true, &self.dialer(), &self.report);
        let shown = listing::print_matches(&all, text, out);
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
    /// The sources name the holders ([`Session::holders`]); each version
    /// they name is then fetched in turn ([`holders::Holders::attempts`])
    /// until one gets a byte out, on the one fetch path ([`fetch::fetch`]).
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
        let Some(holders) = self.holders(name, &target)? else {
            return Ok(false);
        };
        let mut out = match Output::open(output, name, !self.report.quiet) {
            Ok(out) => out,
            Err(e) => {
                self.report.error(&proto::error::describe(e.chain()));
                return Ok(false);
            }
        };
        let dialer = self.dialer();
        let mut fetched = Fetched::Nothing;
        for attempt in holders.attempts(name, &target) {
            if !matches!(fetched, Fetched::Nothing) {
                break;
            }
            if let Some(note) = &attempt.note {
                self.report.status(note);
            }
            fetched = fetch::fetch(
                &attempt.want,
                &attempt.nodes,
                &dialer,
                self.sources,
                &mut out,
                &self.report,
            );
        }
        Ok(self.finish(name, out, fetched))
    }

    /// The candidate holders of `target` (typed as `name`), from the
    /// sources: the relay's index, so that a missing file costs that one
    /// round trip and only holders are contacted; against an older relay
    /// (or `--no-index`), every active node. None when the index says
    /// nobody has it (said here).
    fn holders(&mut self, name: &str, target: &Target) -> Result<Option<Holders>, String> {
        if self.no_index {
            return Ok(Some(holders::of_nodes(&self.nodes)));
        }
        let Some(list) = index::who_has(&self.relay, target).map_err(|e| e.to_string())? else {
            self.older_relay("asking nodes in turn")?;
            return Ok(Some(holders::of_nodes(&self.nodes)));
        };
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
        let holders = holders::of_who_has(&list, node_of);
        if holders.is_empty() {
            self.report.status(&format!(
                "{name}: not found on any of {} (the relay's index)",
                count(list.nodes as usize, "active node")
            ));
            return Ok(None);
        }
        // Nodes that sent no catalog (just started, or older nodes): asked
        // directly, after the holders.
        let unindexed = list.unindexed.len();
        if unindexed > 0 {
            self.report.status(&format!(
                "{} sent the relay no catalog yet (just started, or older); asking {} too",
                count(unindexed, "active node"),
                if unindexed == 1 { "it" } else { "them" }
            ));
        }
        Ok(Some(holders))
    }

    /// Ends a fetch of `name`: commits the output when it is complete, or
    /// says what was left. True if the file is whole where it should be.
    fn finish(&self, name: &str, out: Output, fetched: Fetched) -> bool {
        match fetched {
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
        }
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
    fn dialer(&self) -> Dialer {
        Dialer {
            timeouts: self.timeouts,
            ..self.relay.dialer()
        }
    }

    fn prompt(&mut self) -> u8 {
        self.at_prompt = true;
        let relay = self.relay.clone();
        let mut input = Input::open(Box::new(move || {
            let limit = proto::MAX_LIST_FILES as u32;
            match index::search(&relay, "", limit) {
                Ok(Some(found)) => found.hits.into_iter().map(|hit| hit.name).collect(),
                _ => Vec::new(),
            }
        }));
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
                    listing::print_peers(&self.nodes, &mut std::io::stderr().lock(), &self.report);
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
