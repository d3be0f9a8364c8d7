//! The relay's command line: the flags, and the [`RelayConfig`] they make.
//! Here rather than in main.rs so that `cargo xtask` can write the shell
//! completions and the man page from it (contrib/).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use net::secure::Key;
use plumbing::flags::{LogArgs, SecretArgs, ServerArgs, parse_secs};

use crate::RelayConfig;

/// The directory of active peer nodes: nodes register here, clients ask here
/// which nodes are active.
#[derive(Parser)]
#[command(name = "relay")]
#[command(
    version,
    after_help = "Example:\n  relay 7000                      listen on port 7000, all interfaces\n  relay 0 --bind 127.0.0.1        a free port on loopback only"
)]
pub struct Cli {
    /// TCP port to listen on (0 takes a free port, printed at start).
    port: u16,
    /// Address to listen on (default: all interfaces, IPv6 and IPv4).
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// Seconds after which a node that has not refreshed is dropped (at
    /// least 1; nodes refresh at least three times per TTL).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_ttl)]
    ttl: Duration,
    /// List nodes under the host they advertise even when it differs from
    /// the address the relay sees (only behind port forwarding you control).
    #[arg(long)]
    trust_advertised: bool,
    /// Nodes one IP address may register (at least 1). Past it that address
    /// gets `busy`; a full table still takes a node from an address that
    /// holds fewer (docs/SECURITY.md).
    #[arg(long, value_name = "N", default_value_t = crate::registry::DEFAULT_MAX_NODES_PER_IP,
          value_parser = parse_at_least_one)]
    max_nodes_per_ip: usize,
    /// Secret that nodes must present to register (crosses the network in clear).
    #[arg(long, env = "RELAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Most files the index holds for one node; a node with more is still
    /// listed, and its other files are found by asking nodes in turn.
    #[arg(long, value_name = "N", default_value_t = crate::index::DEFAULT_NODE_FILES)]
    max_node_files: usize,
    /// Most files the index holds in all (about 140 bytes of memory each;
    /// in a private network, whose index is blind, about 240).
    #[arg(long, value_name = "N", default_value_t = crate::index::DEFAULT_INDEX_ENTRIES)]
    max_index_entries: usize,
    /// Never help a client and a relayed node connect directly (hole
    /// punching): carry all their bytes through circuits.
    #[arg(long)]
    no_punch: bool,
    /// Neither check registrations by dialling them back nor relay for
    /// nodes that cannot be reached: every registration is listed as it
    /// comes (docs/SECURITY.md).
    #[arg(long)]
    no_relaying: bool,
    /// Relayed circuits open at once, in all.
    #[arg(long, value_name = "N", default_value_t = 128)]
    max_circuits: usize,
    /// Relayed circuits open at once to one node.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_circuits_per_node: usize,
    /// Relayed circuits open at once from one client IP address.
    #[arg(long, value_name = "N", default_value_t = 8)]
    max_circuits_per_client: usize,
    /// Close a circuit after this many bytes (default: no cap).
    #[arg(long, value_name = "BYTES")]
    circuit_max_bytes: Option<u64>,
    /// Close a circuit after this many seconds (default: no cap).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    circuit_max_secs: Option<Duration>,
    #[command(flatten)]
    secret: SecretArgs,
    /// Private network with only the relay key (64 hex digits, from
    /// `peer-client --show-relay-key`): for a relay that must carry a
    /// network without being able to read it (docs/SECURITY.md).
    #[arg(long, value_name = "HEX", conflicts_with_all = ["secret", "secret_file", "relay_key_file"])]
    relay_key: Option<String>,
    /// Like --relay-key, read from PATH. Without it (and without a secret),
    /// a systemd credential named `relay-key` is read if the service has one.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["secret", "secret_file"])]
    relay_key_file: Option<std::path::PathBuf>,
    /// Announce this relay on the BitTorrent Mainline DHT under an id only
    /// members of its private network can derive, so a client whose relays
    /// are all down finds it (needs --secret or --relay-key). Starts from
    /// the public routers unless --dht-bootstrap is given.
    #[arg(long)]
    dht: bool,
    /// A DHT node to bootstrap from instead of the public routers
    /// (repeatable; turns --dht on).
    #[arg(long, value_name = "HOST:PORT", value_parser = dht::bootstrap::parse_host_port)]
    dht_bootstrap: Vec<String>,
    /// UDP port of the DHT node (0 takes a free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    dht_port: u16,
    /// Serve metrics for Prometheus (`/metrics`) and a status page
    /// (`/status`) over HTTP at ADDR:PORT, such as 127.0.0.1:9100 (port 0
    /// takes a free port). Off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The name of the relay key among systemd's credentials
/// (`LoadCredential=relay-key:/etc/p2p-share/relay-key`, contrib/systemd).
pub const RELAY_KEY_CREDENTIAL: &str = "relay-key";

/// The relay key: from --relay-key or --relay-key-file, or derived from the
/// secret (of which the relay keeps nothing else), or from a systemd
/// credential named `relay-key`; None in the clear.
fn relay_key(cli: &Cli) -> Result<Option<Key>, String> {
    if let Some(hex) = &cli.relay_key {
        return Key::from_hex(hex)
            .map(Some)
            .map_err(|why| format!("--relay-key: {why}"));
    }
    if let Some(path) = &cli.relay_key_file {
        return read_relay_key(path).map(Some);
    }
    if let Some(keys) = cli.secret.keys_warning_if_weak()? {
        return Ok(Some(keys.relay));
    }
    plumbing::flags::credential(RELAY_KEY_CREDENTIAL)
        .map(|path| read_relay_key(&path))
        .transpose()
}

fn read_relay_key(path: &std::path::Path) -> Result<Key, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read relay key file {}: {}",
            path.display(),
            proto::error::io_reason(&e)
        )
    })?;
    Key::from_hex(&text).map_err(|why| format!("relay key file {}: {why}", path.display()))
}

/// A number of seconds, at least [`crate::MIN_TTL`].
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_secs(text)?;
    if ttl < crate::MIN_TTL {
        return Err(format!(
            "`{text}` is under 1 second: nodes are told the TTL in whole seconds, \
             so it must be at least 1"
        ));
    }
    Ok(ttl)
}

/// A count of at least 1.
fn parse_at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{text}` is not a number of at least 1")),
    }
}

impl Cli {
    /// The configuration these flags make, or why they make none.
    pub fn config(self) -> Result<RelayConfig, String> {
        let relay_key = relay_key(&self)?;
        let dht = (self.dht || !self.dht_bootstrap.is_empty()).then(|| crate::dht::DhtConfig {
            bootstrap: dht::Bootstrap::from_given(self.dht_bootstrap),
            port: self.dht_port,
        });
        if dht.is_some() && relay_key.is_none() {
            return Err(
                "--dht announces the relay of a private network (under an id derived \
                        from its relay key), and this relay has none: give --secret or \
                        --relay-key, or leave --dht out"
                    .into(),
            );
        }
        Ok(RelayConfig {
            dht,
            relay_key,
            bind: self.bind,
            port: self.port,
            ttl: self.ttl,
            max_nodes_per_ip: self.max_nodes_per_ip,
            policy: crate::Policy {
                token: self.token.filter(|t| !t.is_empty()),
                trust_advertised: self.trust_advertised,
            },
            index: crate::IndexLimits {
                node_files: self.max_node_files,
                entries: self.max_index_entries.min(u32::MAX as usize - 1),
                ..Default::default()
            },
            server: net::server::ServerConfig::from(&self.server),
            punching: !self.no_punch,
            relaying: (!self.no_relaying).then(|| crate::CircuitLimits {
                max_total: self.max_circuits.max(1),
                max_per_node: self.max_circuits_per_node.max(1),
                max_per_client: self.max_circuits_per_client.max(1),
                join: crate::splice::JoinLimits {
                    idle: self.server.io_timeout,
                    max_bytes: self.circuit_max_bytes,
                    max_duration: self.circuit_max_secs,
                },
            }),
            metrics: self.metrics,
        })
    }
}
