//! The peer client: asks the relay for the active nodes, then asks them one
//! at a time for a file, and prints or saves it.
//!
//! Module map:
//! - [`lookup`]: the relay's node list, then the nodes in turn (with resume
//!   of a broken transfer from the next node), and file listings.
//! - [`dial`]: reaching a node, directly or through a circuit at the relay.
//! - [`output`]: stdout (guarded when it is a terminal), an atomic file, or
//!   a device or FIFO written in place.
//! - [`target`]: what `-o PATH` names (file, link, directory, device).
//! - [`prompt`]: the interactive prompt and its commands.
//! - [`progress`]: the progress bar when saving to a file on a terminal.
//! - [`report`]: status lines for the user on stderr.

pub mod dial;
pub mod lookup;
pub mod output;
pub mod progress;
pub mod prompt;
pub mod report;
pub mod target;

use std::io::Write;
use std::path::{Path, PathBuf};

use proto::exchange::Timeouts;
use proto::{NodeInfo, NodeMode};

use lookup::Fetched;
pub use lookup::Relay;
use output::Output;
use prompt::{Command, Input};
use report::Report;

/// How this client meets the network: plain without keys; with them, a
/// throwaway static key pair of its own (nodes do not check clients'
/// keys: the peer key is what admits a client).
pub fn security(
    keys: Option<proto::secure::NetworkKeys>,
) -> Result<proto::secure::Security, String> {
    match keys {
        None => Ok(proto::secure::Security::Plain),
        Some(keys) => {
            let identity = proto::secure::Identity::generate().map_err(|e| e.to_string())?;
            Ok(proto::secure::Security::private(keys, identity))
        }
    }
}

/// Exit codes.
pub const EXIT_OK: u8 = 0;
pub const EXIT_MISSING: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

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
    /// Print what every node shares.
    List,
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
}

impl Session {
    pub fn new(relay: Relay, timeouts: Timeouts, report: Report) -> Session {
        Session {
            relay,
            timeouts,
            report,
            nodes: Vec::new(),
            at_prompt: false,
        }
    }

    /// Runs the task; returns the process exit code.
    pub fn run(mut self, task: Task) -> u8 {
        if let Err(e) = self.refresh_nodes() {
            self.report.error(&e);
            return EXIT_USAGE;
        }
        match task {
            Task::Peers => self.print_peers(&mut std::io::stdout().lock()),
            Task::List => self.print_listing(&mut std::io::stdout().lock()),
            Task::Fetch { names, output } => {
                let mut code = EXIT_OK;
                for (i, name) in names.iter().enumerate() {
                    if i > 0
                        && let Err(e) = self.refresh_nodes()
                    {
                        self.report.error(&e);
                        return EXIT_USAGE;
                    }
                    if !self.get(name, output.as_deref()) {
                        code = EXIT_MISSING;
                    }
                }
                code
            }
            Task::Prompt => self.prompt(),
        }
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

    /// Fetches one name to stdout or `output`; true if it was found whole.
    fn get(&mut self, name: &str, output: Option<&Path>) -> bool {
        let mut out = match Output::open(output, name, !self.report.quiet) {
            Ok(out) => out,
            Err(e) => {
                self.report.error(&proto::error::describe(e.chain()));
                return false;
            }
        };
        let dialer = self.dialer();
        match lookup::fetch(name, &self.nodes, &dialer, &mut out, &self.report) {
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
            Fetched::Missing | Fetched::OutputFailed => {
                if let Some(line) = out.abandoned_line(name) {
                    self.report.error(&line);
                }
                false
            }
        }
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
    /// `out` (as for [`Session::print_peers`]).
    fn print_listing(&self, out: &mut dyn Write) -> u8 {
        let listing = lookup::list_all(&self.nodes, &self.dialer(), &self.report);
        for (addr, entries, truncated) in &listing {
            let _ = writeln!(out, "{addr} ({})", count(entries.len(), "file"));
            for entry in entries {
                let _ = writeln!(out, "  {:>12}  {}", entry.size, entry.name.escape_debug());
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
            if !matches!(command, Command::Nothing | Command::Help | Command::Quit)
                && let Err(e) = self.refresh_nodes()
            {
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
                Command::List => {
                    self.print_listing(&mut std::io::stderr().lock());
                }
                Command::Get { name, output } => {
                    if !self.get(&name, output.as_deref()) {
                        code = EXIT_MISSING;
                    }
                }
            }
        }
        code
    }
}

/// `1 file`, `2 files`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
