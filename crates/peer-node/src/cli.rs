//! The node's command line: the flags, and the [`NodeConfig`] they make.
//! Here rather than in main.rs so that `cargo xtask` can write the shell
//! completions and the man page from it (contrib/).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use net::exchange::Timeouts;
use net::secure::NetworkKeys;
use plumbing::flags::{LogArgs, SecretArgs, ServerArgs, parse_secs};

use crate::NodeConfig;

/// Shares one directory: registers with the relay, then serves its files to
/// peer clients.
#[derive(Parser)]
#[command(name = "peer-node")]
#[command(
    version,
    after_help = "Example:\n  peer-node 127.0.0.1 7000 ./sample_files/node1\n  peer-node relay.lan 7000 ~/share --port 4000 --advertise 203.0.113.7:4000\n  peer-node relay.lan 7000 ~/share --dht-bootstrap 192.0.2.9:6881   (also found on the DHT)"
)]
pub struct Cli {
    /// Host name or IP address of the relay.
    relay_ip: String,
    /// Port of the relay.
    relay_port: u16,
    /// Directory to share (only files inside it are ever served; files
    /// whose names start with `.` are shared too, as rsync and nginx do).
    dir: PathBuf,
    /// Keep out of the share (not listed, not indexed, not served) every
    /// file or directory matching GLOB: `.git` or `*.tmp` at any depth, a
    /// pattern with `/` from DIR (`build/*.o`); repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Directory for the hash trees (outboards, 0.1% of each file's size)
    /// of shared files; must be outside DIR. Default:
    /// $XDG_CACHE_HOME/p2p-share or $HOME/.cache/p2p-share.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Port to serve on (0 takes a free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to serve on (default: all interfaces, IPv6 and IPv4).
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// Announce HOST:PORT instead (port forwarding, multi-homed hosts). The
    /// relay honours the host only if it runs with --trust-advertised.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_advertise)]
    advertise: Option<(Option<IpAddr>, u16)>,
    /// Seconds between refreshes of the registration (shortened to a third
    /// of the relay's TTL when that is shorter).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    heartbeat: Duration,
    /// Secret the relay requires to register (crosses the network in clear).
    #[arg(long, env = "RELAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Be relayed even if the relay could connect to this node: keep a
    /// control connection to the relay and serve clients through it (for
    /// tests and benchmarks; a node behind NAT switches by itself).
    #[arg(long)]
    relayed: bool,
    /// Seconds to wait for the relay to accept a connection.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_secs)]
    connect_timeout: Duration,
    /// Announce every shared file on the BitTorrent Mainline DHT, so clients
    /// find this node without a relay (off by default: it tells the public
    /// DHT what this node shares). Starts from the public routers unless
    /// --dht-bootstrap is given.
    #[arg(long)]
    dht: bool,
    /// A DHT node to bootstrap from instead of the public routers
    /// (repeatable; turns --dht on).
    #[arg(long, value_name = "HOST:PORT", value_parser = dht::bootstrap::parse_host_port)]
    dht_bootstrap: Vec<String>,
    /// UDP port of the DHT node (0 takes a free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    dht_port: u16,
    /// Answer other DHT nodes' queries from the start, so they can
    /// bootstrap from this node (a DHT of your own, on a LAN without the
    /// public routers: give each such node the others with --dht-bootstrap
    /// and a fixed --dht-port). Without it a node serves the DHT only once
    /// it has run 15 minutes and found itself reachable. Turns --dht on.
    #[arg(long)]
    dht_server: bool,
    #[command(flatten)]
    secret: SecretArgs,
    /// The node's key file, made (mode 0600) on first use. Default: one
    /// per shared directory, $XDG_CONFIG_HOME/p2p-share/nodes/NAME-HASH.key
    /// (else under ~/.config), named after DIR's canonical path. Only used
    /// with a secret.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Serve metrics for Prometheus (`/metrics`) and a status page
    /// (`/status`) over HTTP at ADDR:PORT, such as 127.0.0.1:9101 (port 0
    /// takes a free port). Off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<SocketAddr>,
    /// Another relay of the network to register with too (repeatable), as
    /// a torrent lists several trackers: each one lists this node and gets
    /// its catalog, so clients can ask any of them.
    #[arg(long = "relay", value_name = "HOST:PORT", value_parser = parse_relay)]
    relays: Vec<(String, u16)>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// `HOST:PORT`, `[V6]:PORT` or `:PORT`; a host name is resolved here.
fn parse_advertise(text: &str) -> Result<(Option<IpAddr>, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{port}` is not a port (1-65535)"))?;
    if host.is_empty() {
        return Ok((None, port));
    }
    let ip = net::exchange::resolve(host, port)
        .map_err(|e| format!("cannot resolve `{host}`: {}", proto::error::io_reason(&e)))?[0]
        .ip();
    Ok((Some(ip), port))
}

/// `HOST:PORT`, or `[V6]:PORT`, for `--relay`; resolved when registering.
fn parse_relay(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not HOST:PORT"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(['[', ']']) {
        return Err(format!("`{text}` has no host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{port}` is not a port (1-65535)"))?;
    Ok((host.to_string(), port))
}

impl Cli {
    /// The configuration these flags make, or why they make none.
    pub fn config(self) -> Result<NodeConfig, String> {
        let server = net::server::ServerConfig::from(&self.server);
        let secret = self.secret.secret_warning_if_weak()?;
        let dht = (self.dht || self.dht_server || !self.dht_bootstrap.is_empty()).then(|| {
            crate::dht::DhtConfig {
                bootstrap: dht::Bootstrap::from_given(self.dht_bootstrap),
                port: self.dht_port,
                server: self.dht_server,
                key: secret.as_deref().map(dht::NetworkKey::from_secret),
            }
        });
        Ok(NodeConfig {
            keys: secret.as_deref().map(NetworkKeys::from_secret),
            dht,
            key_file: self.key,
            excludes: self.exclude,
            relay_host: self.relay_ip,
            relay_port: self.relay_port,
            more_relays: self.relays,
            dir: self.dir,
            cache: self.cache,
            bind: self.bind,
            port: self.port,
            advertise: self.advertise,
            heartbeat: self.heartbeat,
            token: self.token.filter(|t| !t.is_empty()),
            relayed: self.relayed,
            timeouts: Timeouts {
                connect: self.connect_timeout,
                io: server.io_timeout,
            },
            server,
            metrics: self.metrics,
        })
    }
}
