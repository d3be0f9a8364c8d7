use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cli::flags::{LogArgs, SecretArgs, parse_secs};
use cli::logging::Delivery;
use net::exchange::Timeouts;
use net::secure::NodeKey;
use peer_client::{EXIT_USAGE, Relay, Session, Task, report::Report};

/// What `-o` does with each kind of PATH (peer_client::target has the why).
const OUTPUT_HELP: &str = "\
Save the file to PATH instead of printing it (one NAME only). By what PATH is:
  missing or a file   saved beside it, renamed into place when complete
                      (a failed transfer leaves nothing); a new file gets
                      mode 0666 less the umask, a replaced one keeps its mode
  a directory         saved inside it, under NAME's last part
  a symlink           saved where it points; the link stays
  a device or FIFO    written in place, never replaced (e.g. -o /dev/null)
  -                   stdout";

/// Finds a file among the active peer nodes and prints it (or saves it).
/// With no NAME, an interactive prompt reads names until `quit` or EOF.
#[derive(Parser)]
#[command(
    version,
    after_help = "\
Examples:
  peer-client 127.0.0.1 7000 hello.txt             print hello.txt
  peer-client 127.0.0.1 7000 logo.png -o logo.png  save logo.png (progress bar on a terminal)
  peer-client 127.0.0.1 7000 blake3:3f2a...        fetch by content hash, whatever the name
  peer-client 127.0.0.1 7000 a.iso --sources 8     from up to 8 of its holders at once (default 4)
  peer-client 127.0.0.1 7000 --search report       files named *report* across the network
  peer-client 127.0.0.1 7000 --list --long         what the network shares (the relay's index), with hashes
  peer-client 127.0.0.1 7000 --list --nodes        each node's own listing
  peer-client 127.0.0.1 7000 --peers               the active nodes
  peer-client 127.0.0.1 7000                       the prompt: NAME, get NAME -o PATH, search TEXT, ls [-l], peers, help, quit

The relay's index says who holds a file, so only holders are contacted and a missing
file costs one question to the relay; against an older relay without an index (or with
--no-index) every active node is asked in turn. When holders disagree on a file's
content, the earliest-registered holder's version is fetched and the others are named.

A file held by several nodes comes from up to --sources of them at once, in ranges.
Every byte is checked against the file's BLAKE3 hash before it is printed or saved;
only an older node without hashes serves unverified, and the status line says so.

Exit status: 0 all found, 1 some file not found, 2 usage error or relay unreachable."
)]
struct Cli {
    /// Host name or IP address of the relay (IPv6 literals work).
    #[arg(required_unless_present = "show_relay_key")]
    relay_ip: Option<String>,
    /// Port of the relay.
    #[arg(required_unless_present = "show_relay_key")]
    relay_port: Option<u16>,
    /// Files to fetch, by name or as blake3:<64 hex digits>; none opens the prompt.
    names: Vec<String>,
    /// Save the file to PATH instead of printing it (one NAME only).
    #[arg(short, long, value_name = "PATH", long_help = OUTPUT_HELP)]
    output: Option<PathBuf>,
    /// Print the active nodes, one per line, then exit.
    #[arg(long, conflicts_with_all = ["names", "output", "list"])]
    peers: bool,
    /// Print what the network shares (from the relay's index), then exit.
    #[arg(long, conflicts_with_all = ["names", "output", "search"])]
    list: bool,
    /// With --list: show each file's whole content hash.
    #[arg(short = 'l', long, requires = "list")]
    long: bool,
    /// With --list: ask each active node for its own listing instead.
    #[arg(long = "nodes", requires = "list")]
    per_node: bool,
    /// Print the files whose names contain TEXT (either case) across the
    /// network: size, short hash, number of holders, name. Then exit.
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["names", "output", "peers"])]
    search: Option<String>,
    /// Do not use the relay's index: ask every active node in turn.
    #[arg(long)]
    no_index: bool,
    /// Reach relayed nodes only through the relay's circuits: no hole
    /// punching (by default the relay first helps the client and the node
    /// connect directly).
    #[arg(long)]
    no_punch: bool,
    /// Seconds to wait for a relay or node to accept a connection.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    connect_timeout: Duration,
    /// Seconds any read or write may wait for a relay or node.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    timeout: Duration,
    /// Holders to download from at once: each file is fetched in verified
    /// ranges from up to N nodes that hold it. 1 asks one node at a time,
    /// in the relay's order.
    #[arg(long, value_name = "N", default_value_t = peer_client::DEFAULT_SOURCES,
          value_parser = parse_sources)]
    sources: usize,
    #[command(flatten)]
    secret: SecretArgs,
    /// Fetch (and list) only from the node holding this static key (64 hex
    /// digits, as `peer-node` prints it and `--peers` shows it). Needs a secret.
    #[arg(long, value_name = "KEY")]
    node: Option<NodeKey>,
    /// Print the relay key derived from the secret, for `relay --relay-key`
    /// on a relay someone else runs (it cannot read the network), then exit.
    #[arg(long, conflicts_with_all = ["names", "output", "list", "peers", "node"])]
    show_relay_key: bool,
    #[command(flatten)]
    log: LogArgs,
}

/// 1 to 64 holders at once.
fn parse_sources(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a number of holders from 1 to 64")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Direct, not queued as in the relay and the node. The client's stderr
    // is its user's screen: beside its few log lines it carries the results
    // (report.rs: which node served, what was missing, errors) and the
    // prompt, written straight. A queued warning could show up after the
    // status line that followed it, or after the next prompt, and a line
    // dropped from a full queue would be a result the user never sees. A
    // client whose stderr stops being read just waits, as it would on its
    // stdout; unlike a server, nobody else waits for it.
    let _log = cli.log.init(tracing::Level::WARN, Delivery::Direct);
    // Ctrl-C in the middle of a transfer: no partial file left behind, and
    // the shell's prompt starts on a fresh line. (At the line-editing prompt
    // Ctrl-C is a key, not a signal: it only drops the line being typed.)
    let _ = ctrlc::set_handler(|| {
        peer_client::output::remove_partial_files();
        if std::io::stderr().is_terminal() {
            peer_client::report::stderr_line("");
        }
        cli::logging::exit(130);
    });
    let keys = match cli.secret.keys() {
        Ok(keys) => keys,
        Err(why) => {
            peer_client::report::stderr_line(format!("error: {why}"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if cli.show_relay_key {
        return match &keys {
            Some(keys) => {
                println!("{}", keys.relay.to_hex());
                ExitCode::SUCCESS
            }
            None => {
                peer_client::report::stderr_line(
                    "error: --show-relay-key needs the secret (--secret, --secret-file or P2P_SECRET)",
                );
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    if cli.node.is_some() && keys.is_none() {
        peer_client::report::stderr_line(
            "error: --node pins a node's key, which only a private network has: give the secret too",
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let security = match peer_client::security(keys) {
        Ok(security) => security,
        Err(why) => {
            peer_client::report::stderr_line(format!("error: {why}"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if cli.output.is_some() && cli.names.len() != 1 {
        peer_client::report::stderr_line("error: -o/--output takes exactly one NAME");
        return ExitCode::from(EXIT_USAGE);
    }
    let timeouts = Timeouts {
        connect: cli.connect_timeout,
        io: cli.timeout,
    };
    let relay = Relay {
        host: cli.relay_ip.unwrap_or_default(),
        port: cli.relay_port.unwrap_or_default(),
        timeouts,
        security,
        pin: cli.node,
        punch: !cli.no_punch,
    };
    let task = if cli.peers {
        Task::Peers
    } else if cli.list {
        Task::List {
            long: cli.long,
            per_node: cli.per_node,
        }
    } else if let Some(text) = cli.search {
        Task::Search { text }
    } else if cli.names.is_empty() {
        Task::Prompt
    } else {
        Task::Fetch {
            names: cli.names,
            output: cli.output,
        }
    };
    let mut session = Session::new(
        relay,
        timeouts,
        Report {
            quiet: cli.log.quiet,
        },
    )
    .with_sources(cli.sources);
    session.no_index = cli.no_index;
    ExitCode::from(session.run(task))
}
