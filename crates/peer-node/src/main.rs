use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use proto::cli::{LogArgs, SecretArgs, ServerArgs, parse_secs};
use proto::exchange::Timeouts;
use proto::logging::Delivery;
use proto::secure::NetworkKeys;

/// Shares one directory: registers with the relay, then serves its files to
/// peer clients.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example:\n  peer-node 127.0.0.1 7000 ./sample_files/node1\n  peer-node relay.lan 7000 ~/share --port 4000 --advertise 203.0.113.7:4000\n  peer-node relay.lan 7000 ~/share --dht-bootstrap 192.0.2.9:6881   (also found on the DHT)"
)]
struct Cli {
    /// Host name or IP address of the relay.
    relay_ip: String,
    /// Port of the relay.
    relay_port: u16,
    /// Directory to share (only files inside it are ever served).
    dir: PathBuf,
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
    /// The node's key file, made (mode 0600) on first use (default:
    /// $XDG_CONFIG_HOME/p2p-share/node.key or ~/.config/p2p-share/node.key).
    /// Only used with a secret.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    log: LogArgs,
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
    let ip = proto::exchange::resolve(host, port)
        .map_err(|e| format!("cannot resolve `{host}`: {}", proto::error::io_reason(&e)))?[0]
        .ip();
    Ok((Some(ip), port))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Queued: a log reader that stops reading must not stop the serving.
    // Kept to the end of main, so that an error logged on the way out is seen.
    let _log = cli.log.init(tracing::Level::INFO, Delivery::Queued);
    let server = cli.server.config();
    let secret = match cli.secret.secret() {
        Ok(secret) => secret,
        Err(why) => {
            tracing::error!("{why}");
            return ExitCode::from(2);
        }
    };
    let keys = secret.as_deref().map(NetworkKeys::from_secret);
    let dht = (cli.dht || cli.dht_server || !cli.dht_bootstrap.is_empty()).then(|| {
        peer_node::dht::DhtConfig {
            bootstrap: dht::Bootstrap::from_given(cli.dht_bootstrap),
            port: cli.dht_port,
            server: cli.dht_server,
            key: secret.as_deref().map(dht::NetworkKey::from_secret),
        }
    });
    let config = peer_node::NodeConfig {
        keys,
        key_file: cli.key,
        relay_host: cli.relay_ip,
        relay_port: cli.relay_port,
        dir: cli.dir,
        cache: cli.cache,
        bind: cli.bind,
        port: cli.port,
        advertise: cli.advertise,
        heartbeat: cli.heartbeat,
        token: cli.token.filter(|t| !t.is_empty()),
        relayed: cli.relayed,
        dht,
        timeouts: Timeouts {
            connect: cli.connect_timeout,
            io: server.io_timeout,
        },
        server,
    };
    match peer_node::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", proto::error::describe(e.chain()));
            ExitCode::from(2)
        }
    }
}
