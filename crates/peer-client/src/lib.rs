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
//! - [`relay`]: reaching the relays (the next when one is unreachable),
//!   and their list of active nodes.
//! - [`index`]: the relay's index: who holds a name or a content, search,
//!   and the network-wide listing; `None` from an older relay without one.
//! - [`blind`]: the same in a private network, by tags and sealed records
//!   only: the relay is never sent a name, a hash or a search text.
//! - [`holders`]: holders come from sources (who-has, the node list, the
//!   DHT): candidates, grouped into the versions to try in turn.
//! - [`dht_source`]: the Mainline DHT as a source of holders of a hash,
//!   with `--dht`, or when every relay is unreachable.
//! - [`link`]: what a typed word asks for (name, hash or `p2p-share:?`
//!   link), a link's relays, and the links printed.
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
//! - [`recheck`]: a resumed part's kept groups checked against the
//!   content's tree before the rest is fetched.
//! - [`output`]: stdout (guarded when it is a terminal), an atomic file, or
//!   a device or FIFO written in place; the reorder window.
//! - [`target`]: what `-o PATH` names (file, link, directory, device).
//! - [`progress`]: the progress bar on a terminal, and its summary line.
//! - [`listing`]: node-by-node listings, search hits and the node list,
//!   printed.
//! - [`json`]: the same as one JSON document (`--json`).
//! - [`prompt`]: the interactive prompt and its commands, read as a shell
//!   reads words.
//! - [`complete`]: Tab completion of commands and the index's names.
//! - [`report`]: status lines for the user on stderr.
//! - [`short_hash`]: `blake3:275ba016`, a hash prefix looked up in the
//!   index.
//! - [`suggest`]: "did you mean" for a name the index does not have.
//! - [`signals`]: SIGINT, SIGTERM and SIGHUP told apart, for the exit
//!   status.
//! - [`interrupt`]: Ctrl-C during a `get` at the prompt stops that
//!   transfer, not the client.

pub mod blind;
pub mod cli;
pub mod complete;
pub mod dht_source;
pub mod dial;
pub mod failure;
pub mod fetch;
pub mod find;
pub mod holder;
pub mod holders;
pub mod index;
pub mod interrupt;
pub mod json;
pub mod link;
pub mod listing;
pub mod output;
pub mod part;
pub mod plan;
pub mod progress;
pub mod prompt;
pub mod recheck;
pub mod relay;
pub mod report;
pub mod short_hash;
pub mod signals;
pub mod suggest;
pub mod target;
pub mod verify;
pub mod worker;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use net::exchange::Timeouts;
use proto::blind::IndexKey;
use proto::{HolderListLong, NodeInfo, NodeMode, SearchResults, Target};

use dht_source::{DhtSettings, DhtSource};
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

/// Exit codes (README, "Exit status"). Of several names, the worst one's.
/// A signal ends the client with 128+N (main.rs).
pub const EXIT_OK: u8 = 0;
/// Some file (or the pinned node) was not found.
pub const EXIT_MISSING: u8 = 1;
/// A usage or local error (a bad hash, `-o` into a missing directory, a
/// binary file refused on a terminal), or the relay could not be reached
/// or is not a relay.
pub const EXIT_USAGE: u8 = 2;

/// Holders a fetch pulls from at once unless told otherwise (`--sources`).
pub const DEFAULT_SOURCES: usize = 4;

/// What the user asked for on the command line.
#[derive(Debug, Clone)]
pub enum Task {
    /// Fetch each name (to `output` if given: a directory for several),
    /// then exit.
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
    /// Start saves from scratch, removing any part kept (`--no-resume`).
    pub no_resume: bool,
    /// Listings on stdout as one JSON document (`--json`).
    pub json: bool,
    /// The DHT as a source of holders of a hash.
    dht: DhtSource,
    /// The holders of the fetch under way that only the DHT named.
    found_on_dht: Vec<SocketAddr>,
    /// The DHT was asked for the network's other relays this session.
    relays_looked_up: bool,
    /// In a private network, the index key: the relay's index is the
    /// blind one, asked by tags ([`blind`]).
    index_key: Option<IndexKey>,
}

impl Session {
    /// The relayed nodes the relay would punch through to, asked only when
    /// some node is relayed and punching is on.
    fn punchable(&self) -> Vec<SocketAddr> {
        let relayed = self.nodes.iter().any(|n| n.mode == NodeMode::Relayed);
        if self.relay.punch && relayed {
            self.relay.punchable()
        } else {
            Vec::new()
        }
    }

    pub fn new(relay: Relay, timeouts: Timeouts, report: Report) -> Session {
        Session {
            index_key: blind::index_key(&relay),
            relay,
            timeouts,
            report,
            nodes: Vec::new(),
            at_prompt: false,
            no_index: false,
            no_resume: false,
            json: false,
            sources: DEFAULT_SOURCES,
            dht: DhtSource::new(DhtSettings::default()),
            found_on_dht: Vec::new(),
            relays_looked_up: false,
        }
    }

    /// How the session uses the DHT (`--dht`, `--dht-bootstrap`,
    /// `--no-dht`).
    pub fn with_dht(mut self, settings: DhtSettings) -> Session {
        self.dht = DhtSource::new(settings);
        self
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
                let show = self.show(false);
                let punchable = self.punchable();
                listing::print_peers(&self.nodes, &punchable, show, &mut stdout, &self.report);
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
                        Ok(got) => code = code.max(got),
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
            // A blind listing is gathered whole, not cut at one frame.
            let limit = match self.index_key {
                Some(_) => blind::MAX_LISTED,
                None => proto::MAX_LIST_FILES,
            };
            let found = self.via_relays(|s| s.index_search("", limit));
            match found.map_err(|e| e.to_string())? {
                Some(found) => {
                    listing::print_found(&found, &self.show(long), "", out, &self.report);
                    self.say_uncataloged();
                    return Ok(EXIT_OK);
                }
                None => self.older_relay("listing node by node")?,
            }
        }
        // --json gives whole hashes, whatever --long says.
        let show = self.show(long);
        let hashes = long || show.json;
        let all = listing::list_all(&self.nodes, hashes, &self.dialer(), &self.report);
        listing::print_listing(&all, &show, out);
        if self.nodes.is_empty() {
            self.report.status("no active nodes");
        }
        Ok(EXIT_OK)
    }

    /// Says how many nodes the index's listing left out: those that sent
    /// no catalog yet (their files are still found by name).
    fn say_uncataloged(&self) {
        // Every who-has answer names them; this one asks for a content
        // nobody holds (the all-zero hash), through the blind index too.
        let nothing = Target::Hash(proto::ContentHash([0; 32]));
        let asked = self.index_who_has(&nothing);
        match asked.map(|list| list.map(|l| (l.unindexed.len(), l.truncated))) {
            Ok(Some((0, _))) | Ok(None) => {}
            Ok(Some((n, more))) => self.report.status(&format!(
                "{}{} sent the relay no catalog yet (just started, or older) and {} not \
                 listed; `{}` asks every node",
                if more { "over " } else { "" },
                count(n, "active node"),
                if n == 1 && !more { "is" } else { "are" },
                if self.at_prompt {
                    "ls --nodes"
                } else {
                    "--list --nodes"
                }
            )),
            Err(e) => tracing::debug!("cannot count the nodes without a catalog: {e}"),
        }
    }

    /// Files whose names contain `text`, across the network.
    fn search(&mut self, text: &str, out: &mut dyn Write) -> Result<u8, String> {
        if !self.no_index {
            let found = self.via_relays(|s| s.index_search(text, index::SEARCH_LIMIT as usize));
            match found.map_err(|e| e.to_string())? {
                Some(found) => {
                    listing::print_found(&found, &self.show(false), text, out, &self.report);
                    // Nothing found is status 1, as grep gives it.
                    return Ok(if found.hits.is_empty() {
                        EXIT_MISSING
                    } else {
                        EXIT_OK
                    });
                }
                None => self.older_relay("searching node by node")?,
            }
        }
        // Node by node: every listing, filtered here.
        let all = listing::list_all(&self.nodes, true, &self.dialer(), &self.report);
        let shown = listing::print_matches(&all, text, &self.show(false), out);
        self.report.status(&format!(
            "{} (asked {} node by node)",
            count(shown, "result"),
            count(self.nodes.len(), "active node")
        ));
        Ok(if shown == 0 { EXIT_MISSING } else { EXIT_OK })
    }

    /// How listings print: `--long`, and `--json` (never at the prompt,
    /// whose listings go to the terminal).
    fn show(&self, long: bool) -> listing::Show {
        listing::Show {
            long,
            json: self.json && !self.at_prompt,
            links: if long {
                link::relays_of(&self.relay)
            } else {
                Vec::new()
            },
        }
    }

    /// The relay index's search (the empty text lists everything): in a
    /// private network the blind index, searched here ([`blind`]).
    pub(crate) fn index_search(
        &self,
        text: &str,
        limit: usize,
    ) -> anyhow::Result<Option<SearchResults>> {
        match &self.index_key {
            Some(key) => blind::search(&self.relay, key, text, limit, &self.report),
            None => index::search(&self.relay, text, u32::try_from(limit).unwrap_or(u32::MAX)),
        }
    }

    /// The relay index's holders of `target`: in a private network the
    /// blind index's, opened here ([`blind`]). None from an older relay.
    pub(crate) fn index_who_has(&self, target: &Target) -> anyhow::Result<Option<HolderListLong>> {
        match &self.index_key {
            // A sealed record names a hash: no holder is pending there.
            Some(key) => {
                Ok(blind::who_has(&self.relay, key, target, &self.report)?.map(index::long_form))
            }
            None => index::who_has(&self.relay, target),
        }
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
        let nodes = self.via_relays(|s| s.relay.nodes());
        match nodes {
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

    /// Fetches one name (or `blake3:HASH`) to stdout or `output`; its exit
    /// code ([`EXIT_OK`] if it was found whole), Err if the relay could not
    /// be asked.
    ///
    /// The sources name the holders ([`Session::holders`]); each version
    /// they name is then fetched in turn ([`holders::Holders::attempts`])
    /// until one gets a byte out, on the one fetch path ([`fetch::fetch`]).
    fn get(&mut self, typed: &str, output: Option<&Path>) -> Result<u8, String> {
        // A hash may be a prefix, resolved through the relay's index.
        let parsed: Result<link::Wanted, String> = if proto::ContentHash::looks_like(typed) {
            match self.content_named(typed) {
                Ok(hash) => Ok(link::Wanted {
                    name: typed.to_string(),
                    target: Target::Hash(hash),
                    link: None,
                    saved_as: None,
                }),
                Err(code) => return Ok(code),
            }
        } else {
            link::Wanted::parse(typed)
        };
        let mut wanted = match parsed {
            Ok(wanted) => wanted,
            Err(e) => {
                self.report.error(&e);
                return Ok(EXIT_USAGE);
            }
        };
        if let Some(found) = &wanted.link {
            link::add_relays(&mut self.relay, found);
        }
        let target = wanted.target.clone();
        let Some(holders) = self.holders(&wanted.name, &target)? else {
            return Ok(EXIT_MISSING);
        };
        // A hash saved into a directory takes the index's name for it,
        // unless its link named it (`dn`).
        let unnamed = wanted.display_name().is_none();
        wanted.saved_as = match &target {
            Target::Hash(hash) if unnamed && output.is_some_and(Path::is_dir) => self.name_of(hash),
            _ => None,
        };
        let name = wanted.name.as_str();
        let saved_name = wanted.saved_as.as_deref().unwrap_or(name);
        let mut out = match Output::open_for(output, saved_name, !self.report.quiet, self.no_resume)
        {
            Ok(out) => out,
            Err(e) => {
                self.report.error(&proto::error::describe(e.chain()));
                return Ok(EXIT_USAGE);
            }
        };
        let dialer = Dialer {
            admitted_by_peer_key: Arc::new(std::mem::take(&mut self.found_on_dht)),
            ..self.dialer()
        };
        let mut fetched = Fetched::Nothing;
        let misses = find::Misses::default();
        for attempt in holders.attempts(name, &target) {
            // Found, or the holders that do not have it took the bound.
            if !matches!(fetched, Fetched::Nothing) || misses.exhausted() {
                break;
            }
            if let Some(note) = &attempt.note {
                self.report.status(note);
            }
            fetched = fetch::fetch(
                &attempt,
                &dialer,
                self.sources,
                &misses,
                &mut out,
                &self.report,
            );
        }
        Ok(self.finish(&wanted, out, fetched))
    }

    /// The candidate holders of `target` (typed as `name`), from the
    /// sources: the relays ([`Session::relay_holders`]) and, for a hash,
    /// the DHT: with `--dht` beside the relays, and in their place when
    /// none of them can be reached. None when no source names anyone (said
    /// here).
    fn holders(&mut self, name: &str, target: &Target) -> Result<Option<Holders>, String> {
        self.found_on_dht.clear();
        let hash = match target {
            Target::Hash(hash) => Some(*hash),
            Target::Name(_) => None,
        };
        let with_dht = hash.is_some() && self.dht.always();
        let asked = self.via_relays(|s| {
            if link::has_relay(&s.relay) {
                s.relay_holders(name, target, with_dht)
            } else {
                Err(relay::Unreachable("no relay given".to_string()).into())
            }
        });
        let (from_relays, ask_dht) = match asked {
            Ok(found) => (found, with_dht),
            Err(e) => match (hash, e.downcast_ref::<relay::Unreachable>()) {
                (Some(_), Some(why)) if self.dht.as_fallback() => {
                    self.report.status(&format!(
                        "{why}; looking for {name} on the DHT (bootstrap: {})",
                        self.dht.bootstrap_label()
                    ));
                    (None, true)
                }
                _ => return Err(e.to_string()),
            },
        };
        let (Some(hash), true) = (hash, ask_dht) else {
            return Ok(from_relays);
        };
        let mut holders = from_relays.unwrap_or_default();
        let found = match self.dht.holders(&hash) {
            Ok(found) => found,
            Err(why) => {
                self.report.error(&why);
                Vec::new()
            }
        };
        let added = holders.add_found(&found);
        if found.is_empty() {
            self.report.status(&format!(
                "{name}: no holder on the DHT (bootstrap: {})",
                self.dht.bootstrap_label()
            ));
        } else {
            self.report.status(&format!(
                "{name}: the DHT names {}: {}",
                count(found.len(), "holder"),
                dht_source::addrs_line(&found)
            ));
        }
        self.found_on_dht = added;
        Ok((!holders.is_empty()).then_some(holders))
    }

    /// Asks the relays through `ask`; when none of them can be reached
    /// ([`relay::Unreachable`]), asks again once the DHT has named other
    /// relays of the network ([`Session::other_relays`]). Every question
    /// to the relays (who-has, listing, search, the node list) goes
    /// through here.
    fn via_relays<T>(
        &mut self,
        mut ask: impl FnMut(&mut Session) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let asked = ask(self);
        let unreachable = match &asked {
            Err(e) => e
                .downcast_ref::<relay::Unreachable>()
                .map(|why| why.to_string()),
            Ok(_) => None,
        };
        match unreachable {
            Some(why) if self.other_relays(&why) => ask(self),
            _ => asked,
        }
    }

    /// When no relay given can be reached (`why`), in a private network:
    /// the other relays of the network the DHT names (`relay --dht`), added
    /// after the ones given; true when some were. Asked once a session.
    fn other_relays(&mut self, why: &str) -> bool {
        if !self.dht.finds_relays() || self.relays_looked_up {
            return false;
        }
        self.relays_looked_up = true;
        self.report.status(&format!(
            "{why}; looking for other relays of this network on the DHT (bootstrap: {})",
            self.dht.bootstrap_label()
        ));
        let found = match self.dht.relays() {
            Ok(found) => found,
            Err(why) => {
                self.report.error(&why);
                return false;
            }
        };
        let added: Vec<SocketAddr> = found
            .into_iter()
            .filter(|addr| self.relay.add(&addr.ip().to_string(), addr.port()))
            .collect();
        if added.is_empty() {
            self.report
                .status("the DHT names no other relay of this network");
            return false;
        }
        self.report.status(&format!(
            "the DHT names {} of this network: {}",
            count(added.len(), "other relay"),
            dht_source::addrs_line(&added)
        ));
        true
    }

    /// The candidate holders of `target` from the relays: their index, so
    /// that a missing file costs that one round trip and only holders are
    /// contacted; against an older relay (or `--no-index`), every active
    /// node. None when the index says nobody has it (said here, as a step
    /// when `more` sources follow). A relay.rs [`relay::Unreachable`] error
    /// when no relay can be reached.
    fn relay_holders(
        &mut self,
        name: &str,
        target: &Target,
        more: bool,
    ) -> anyhow::Result<Option<Holders>> {
        // `--node KEY`: only that node's copy, so a pin that matches no
        // active node is one line, and nobody else is asked.
        if let Some(pin) = self.relay.pin {
            if !self.no_index {
                self.refresh_nodes().map_err(anyhow::Error::msg)?;
            }
            if !self.nodes.iter().any(|n| n.key == Some(pin)) {
                self.report.missing(&format!(
                    "no active node has key {}...",
                    &pin.to_string()[..8]
                ));
                return Ok(None);
            }
        }
        if self.no_index {
            return Ok(Some(holders::of_nodes(&self.pinned(&self.nodes))));
        }
        let Some(mut list) = self.index_who_has(target)? else {
            self.older_relay("asking nodes in turn")
                .map_err(anyhow::Error::msg)?;
            return Ok(Some(holders::of_nodes(&self.pinned(&self.nodes))));
        };
        let listed = list.holders.iter().map(|h| h.addr);
        let known = self
            .nodes_of(listed.chain(list.unindexed.iter().copied()))
            .map_err(anyhow::Error::msg)?;
        let node_of = |addr| {
            known.get(&addr).copied().unwrap_or(NodeInfo {
                addr,
                age_secs: 0,
                mode: NodeMode::Direct,
                key: None,
            })
        };
        if let Some(pin) = self.relay.pin {
            let pinned = |addr: &SocketAddr| node_of(*addr).key == Some(pin);
            list.holders.retain(|h| pinned(&h.addr));
            list.unindexed.retain(pinned);
        }
        let holders = holders::of_who_has(&list, node_of);
        if holders.is_empty() {
            let nodes = match self.relay.pin {
                Some(pin) => format!("the node with key {}...", &pin.to_string()[..8]),
                None => format!("any of {}", count(list.nodes as usize, "active node")),
            };
            let hint = match target {
                Target::Name(_) => self.did_you_mean(name),
                Target::Hash(_) => String::new(),
            };
            self.report.missing(&format!(
                "{name}: not found on {nodes} (the relay's index){hint}{}",
                if more { "; asking the DHT" } else { "" }
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

    /// The nodes `--node KEY` allows: all of them without a pin.
    fn pinned(&self, nodes: &[NodeInfo]) -> Vec<NodeInfo> {
        let allowed = |n: &&NodeInfo| self.relay.pin.is_none_or(|pin| n.key == Some(pin));
        nodes.iter().filter(allowed).copied().collect()
    }

    /// Ends a fetch of `name`: commits the output when it is complete, or
    /// says what was left. Its exit code: [`EXIT_OK`] if the file is whole
    /// where it should be, [`EXIT_USAGE`] for a local error.
    fn finish(&self, wanted: &link::Wanted, out: Output, fetched: Fetched) -> u8 {
        let name = wanted.name.as_str();
        if interrupt::stopped() && !matches!(fetched, Fetched::Found { .. }) {
            interrupt::say_stopped(name, out.abandoned_line(name));
            return EXIT_MISSING;
        }
        match fetched {
            Fetched::Found { size, hash } => {
                let done = out.done_line(name, size);
                // A saved file's last line names its link, to pass on. A
                // printed one ends with the content itself: the link would
                // be one more long line after every `cat`.
                let relays = link::relays_of(&self.relay);
                let link = hash.map(|h| link::printed(h, wanted.display_name(), size, &relays));
                let done = match (done, link) {
                    (Some(line), Some(link)) => Some(format!("{line}: {link}")),
                    (done, _) => done,
                };
                match out.commit() {
                    Ok(()) => {
                        if let Some(line) = done {
                            self.report.status(&line);
                        }
                        EXIT_OK
                    }
                    Err(e) => {
                        self.report.error(&proto::error::describe(e.chain()));
                        EXIT_USAGE
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
                EXIT_USAGE
            }
            Fetched::OutputFailed => {
                if let Some(line) = out.abandoned_line(name) {
                    self.report.error(&line);
                }
                EXIT_USAGE
            }
            Fetched::Missing | Fetched::Nothing => {
                if let Some(line) = out.abandoned_line(name) {
                    self.report.error(&line);
                }
                EXIT_MISSING
            }
            // Said already; a part kept is of a content held nowhere now.
            // Bytes already printed are said, as they cannot be taken back.
            Fetched::Changed => {
                if out.positioned().is_none()
                    && let Some(line) = out.abandoned_line(name)
                {
                    self.report.error(&line);
                }
                EXIT_MISSING
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
        let key = self.index_key.clone();
        let mut input = Input::open(Box::new(move || {
            let limit = proto::MAX_LIST_FILES;
            // Completing a name names no bad node: the listing will.
            let quiet = Report { quiet: true };
            let found = match &key {
                Some(key) => blind::search(&relay, key, "", limit, &quiet),
                None => index::search(&relay, "", limit as u32),
            };
            match found {
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
                    listing::print_peers(
                        &self.nodes,
                        &self.punchable(),
                        self.show(false),
                        &mut std::io::stderr().lock(),
                        &self.report,
                    );
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
                Command::Get { name, output } => {
                    // Ctrl-C stops a `get` a person typed, not the client.
                    let transfer = input.interactive().then(interrupt::Transfer::start);
                    let got = self.get(&name, output.as_deref());
                    let done = matches!(got, Ok(EXIT_OK));
                    if transfer.is_some_and(|t| t.end(&name, done)) {
                        code = code.max(EXIT_MISSING);
                        continue;
                    }
                    match got {
                        Ok(got) => code = code.max(got.min(EXIT_MISSING)),
                        Err(e) => {
                            self.report.error(&e);
                            code = EXIT_MISSING;
                        }
                    }
                }
            }
        }
        code
    }
}
