//! The client's command line. Here rather than in main.rs so that `cargo
//! xtask` can write the shell completions and the man page from it
//! (contrib/).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use net::secure::NodeKey;
use plumbing::flags::{LogArgs, SecretArgs, parse_secs};

/// What `-o` does with each kind of PATH (peer_client::target has the why).
const OUTPUT_HELP: &str = "\
Save the file to PATH instead of printing it (several NAMEs: into the
directory PATH). By what PATH is:
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
#[command(name = "peer-client")]
#[command(group(clap::ArgGroup::new("listing").args(["peers", "list", "search"])))]
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
  peer-client 127.0.0.1 7000 --list --json         the same listing as one JSON document, for scripts
  peer-client 127.0.0.1 7000                       the prompt: NAME, get NAME -o PATH, search TEXT, ls [-l], peers, help, quit
  peer-client 127.0.0.1 7000 --relay 10.0.0.9:7000 a.txt   a second relay, asked when the first is down
  peer-client 127.0.0.1 7000 --dht-bootstrap 10.0.0.5:6881 blake3:3f2a...   holders from the DHT too
  peer-client 'p2p-share:?xt=blake3:3f2a...&dn=a.iso&tr=10.0.0.9:7000' -o dl/   a link: its relays, else the DHT

The relay's index says who holds a file, so only holders are contacted and a missing
file costs one question to the relay; against an older relay without an index (or with
--no-index) every active node is asked in turn. When holders disagree on a file's
content, the earliest-registered holder's version is fetched and the others are named.

With several relays (--relay), each request goes to the one that answered last, and to
the next when it cannot be reached. When none can, a blake3: hash is looked up on the
BitTorrent Mainline DHT (the public routers, or the --dht-bootstrap nodes given);
holders found there are checked like any other (--no-dht: never).

A link (`--list --long` prints one under each file, and the line that says a file
was saved names it) carries a file's hash, name, size and relays: its relays are
asked after the command line's, its hash alone decides which bytes are accepted,
and -o DIR/ saves under its name. Quote it: the shell takes & and ? for its own.

A file held by several nodes comes from up to --sources of them at once, in ranges.
Every byte is checked against the file's BLAKE3 hash before it is printed or saved;
only an older node without hashes serves unverified, and the status line says so.

Exit status: 0 all found, 1 some file not found, 2 usage or local error or relay
unreachable, 128+N on signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."
)]
pub struct Cli {
    /// Host name or IP address of the relay (IPv6 literals work). Or, with
    /// no relay, a p2p-share: link, and then every NAME is a link too (their
    /// relays, else the DHT).
    #[arg(required_unless_present = "show_relay_key")]
    pub relay_ip: Option<String>,
    /// Port of the relay (required unless RELAY_IP is a link).
    // Text here, checked once the arguments are read (link::link_alone):
    // with no relay, the second place may hold another link.
    #[arg(value_name = "RELAY_PORT")]
    pub relay_port: Option<String>,
    /// RELAY_PORT as a number, once checked.
    #[arg(skip)]
    pub port: u16,
    /// Files to fetch, by name, as blake3:<64 hex digits> or as a
    /// p2p-share:?xt=... link; none opens the prompt.
    pub names: Vec<String>,
    /// Save the file to PATH instead of printing it (several NAMEs: into the
    /// directory PATH).
    #[arg(short, long, value_name = "PATH", long_help = OUTPUT_HELP)]
    pub output: Option<PathBuf>,
    /// Print the active nodes, one per line, then exit.
    #[arg(long, conflicts_with_all = ["names", "output", "list"])]
    pub peers: bool,
    /// Print what the network shares (from the relay's index), then exit.
    #[arg(long, conflicts_with_all = ["names", "output", "search"])]
    pub list: bool,
    /// With --list: show each file's whole content hash.
    #[arg(short = 'l', long, requires = "list")]
    pub long: bool,
    /// With --list: ask each active node for its own listing instead.
    #[arg(long = "nodes", requires = "list")]
    pub per_node: bool,
    /// Print the files whose names contain TEXT (either case) across the
    /// network: size, short hash, number of holders, name. Then exit.
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["names", "output", "peers"])]
    pub search: Option<String>,
    /// With --peers, --list or --search: print one JSON document on stdout
    /// instead of columns, with exact sizes in bytes and whole hashes
    /// (field names: README, "Output for scripts").
    #[arg(long, requires = "listing")]
    pub json: bool,
    /// Do not use the relay's index: ask every active node in turn.
    #[arg(long)]
    pub no_index: bool,
    /// Reach relayed nodes only through the relay's circuits: no hole
    /// punching (by default the relay first helps the client and the node
    /// connect directly).
    #[arg(long)]
    pub no_punch: bool,
    /// Start a save from scratch: remove the part an earlier run kept.
    #[arg(long)]
    pub no_resume: bool,
    /// Seconds to wait for a relay or node to accept a connection.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    pub connect_timeout: Duration,
    /// Seconds any read or write may wait for a relay or node.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub timeout: Duration,
    /// Holders to download from at once: each file is fetched in verified
    /// ranges from up to N nodes that hold it. 1 asks one node at a time,
    /// in the relay's order.
    #[arg(long, value_name = "N", default_value_t = crate::DEFAULT_SOURCES,
          value_parser = parse_sources)]
    pub sources: usize,
    /// Another relay of the network, asked when the ones before it cannot
    /// be reached (repeatable; asked in order after the positional one).
    #[arg(long = "relay", value_name = "HOST:PORT", value_parser = crate::relay::parse_relay)]
    pub relays: Vec<(String, u16)>,
    /// Look for holders of blake3: hashes on the BitTorrent Mainline DHT
    /// too, beside the relays. Without it the DHT is asked only when no
    /// relay can be reached. In a private network, when no relay can be
    /// reached, also look for its other relays there (`relay --dht`).
    #[arg(long)]
    pub dht: bool,
    /// A DHT node to start from instead of the public routers (repeatable;
    /// turns --dht on).
    #[arg(long, value_name = "HOST:PORT", value_parser = dht::bootstrap::parse_host_port)]
    pub dht_bootstrap: Vec<String>,
    /// Never use the DHT, not even when no relay can be reached.
    #[arg(long, conflicts_with_all = ["dht", "dht_bootstrap"])]
    pub no_dht: bool,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Fetch (and list) only from the node holding this static key (64 hex
    /// digits, as `peer-node` prints it and `--peers` shows it). Needs a secret.
    #[arg(long, value_name = "KEY")]
    pub node: Option<NodeKey>,
    /// Print the relay key derived from the secret, for `relay --relay-key`
    /// on a relay someone else runs (it cannot read the network), then exit.
    #[arg(long, conflicts_with_all = ["names", "output", "list", "peers", "node"])]
    pub show_relay_key: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

/// 1 to 64 holders at once.
fn parse_sources(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a number of holders from 1 to 64")),
    }
}
