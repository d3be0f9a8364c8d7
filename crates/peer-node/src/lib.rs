//! A peer node: shares one directory with clients and keeps itself listed at
//! the relay.
//!
//! Module map:
//! - [`share`]: the shared directory: a requested name in, a file inside DIR
//!   out, or a refusal; and the listing of what is shared.
//! - [`exclude`]: what `--exclude GLOB` keeps out of the share.
//! - [`announce`]: register, heartbeat, unregister.
//! - [`catalog`]: what the relay's index gets: every shared file's name,
//!   size and hash (once known), diffed and sent in frames that fit, in
//!   order (in a private network as tags and sealed records: the blind
//!   index).
//! - [`watch`]: when to send it: a watcher on DIR, and a periodic rescan.
//! - [`backlog`]: the files the catalog names before their hash, hashed
//!   in the background.
//! - [`control`]: relayed mode, for a node the relay cannot connect to: the
//!   control connection, and the data connections of circuits.
//! - [`service`]: how each request is answered.
//! - [`ranges`]: the verified answers: a range with its proof, by name or by
//!   content hash, and the listing with hashes.
//! - [`hashes`]: the content index: each file's BLAKE3 hash per version on
//!   disk, hashed on demand and by a low-priority startup scan.
//! - [`cache`]: where the outboards (hash trees) live, outside DIR.
//! - [`identity`]: the node's key, from a key file outside DIR, one per
//!   shared directory by default.
//! - [`claim`]: one node per directory and per key file on this host: a
//!   second one is told who holds them.
//! - [`metrics`]: what `--metrics` serves: requests, bytes served and
//!   hashed, what is shared, the state of the registration; `/status`.
//! - [`cli`]: the command line, and the [`NodeConfig`] it makes.
//! - [`dht`]: `--dht`: every hashed file announced on the Mainline DHT,
//!   unless the node is relayed.
//!
//! [`run`] binds the listener first (so the announced port is real), starts
//! announcing, and serves on the shared skeleton in `net::server`. When
//! the relay answers that it cannot connect back (or with `--relayed`), the
//! node switches to relayed mode and keeps serving the same way.

pub mod announce;
pub mod backlog;
pub mod cache;
pub mod catalog;
pub mod claim;
pub mod cli;
pub mod control;
pub mod dht;
pub mod exclude;
pub mod hashes;
pub mod identity;
pub mod metrics;
pub mod ranges;
pub mod service;
pub mod share;
pub mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use net::exchange::Timeouts;
use net::secure::{NetworkKeys, Security};
use net::server::{Server, ServerConfig};
use proto::Registration;

pub use announce::{AnnounceError, Announcer};
pub use control::Relayed;
pub use hashes::ContentIndex;
pub use service::NodeService;
pub use share::SharedDir;

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub relay_host: String,
    pub relay_port: u16,
    /// The network's other relays (`--relay HOST:PORT`): the node registers
    /// with each as with the first.
    pub more_relays: Vec<(String, u16)>,
    pub dir: PathBuf,
    /// Where outboards are kept (`--cache`); None picks the default
    /// (see [`cache`]).
    pub cache: Option<PathBuf>,
    pub bind: Option<IpAddr>,
    pub port: u16,
    /// Announce this IP and port instead of the listener's port (and the IP
    /// the relay sees, which the relay keeps unless it trusts advertised hosts).
    pub advertise: Option<(Option<IpAddr>, u16)>,
    pub heartbeat: Duration,
    pub token: Option<String>,
    /// Go straight to relayed mode, without trying to be listed as direct.
    pub relayed: bool,
    pub server: ServerConfig,
    pub timeouts: Timeouts,
    /// In a private network, the keys from the secret.
    pub keys: Option<NetworkKeys>,
    /// `--exclude` patterns: kept out of the share (see [`exclude`]).
    pub excludes: Vec<String>,
    /// The node's key file (`--key`); default: one per shared directory,
    /// under the user's config dir (see [`identity`]).
    pub key_file: Option<PathBuf>,
    /// Where to serve metrics and the status page (`--metrics`); None: off.
    pub metrics: Option<SocketAddr>,
    /// `--dht`: announce shared files on the DHT.
    pub dht: Option<dht::DhtConfig>,
}

/// Serves DIR until the process ends; SIGINT or SIGTERM unregisters first.
pub fn run(mut config: NodeConfig) -> anyhow::Result<()> {
    let excludes = exclude::Excludes::new(&config.excludes).map_err(anyhow::Error::msg)?;
    let share = SharedDir::open(&config.dir)
        .with_context(|| format!("cannot share {}", config.dir.display()))?
        .excluding(excludes.clone());
    if let Some(token) = &config.token {
        anyhow::ensure!(
            token.len() <= proto::MAX_TOKEN_LEN,
            "the token is {} bytes long; a relay takes at most {}",
            token.len(),
            proto::MAX_TOKEN_LEN
        );
    }
    let mut key_file = None;
    if let Some(keys) = config.keys.clone() {
        let (identity, path) = identity::load(config.key_file.as_deref(), share.root())?;
        key_file = Some(path);
        config.server.security = Security::private(keys, identity);
    }
    let (server, local) = Server::listen(config.bind, config.port, config.server.clone())?;
    let cache = cache::choose(config.cache.as_deref(), share.root())?;
    let index = ContentIndex::new(cache.clone());
    tracing::info!(
        "listening on {local}, sharing {} (hash cache {})",
        share.root().display(),
        cache.display()
    );
    if !excludes.is_empty() {
        tracing::info!("not shared: {}", excludes.patterns().join(", "));
    }
    // Held until the process ends.
    let _claims = claim::stake(share.root(), key_file.as_deref(), local);
    index
        .start_scanner(share.clone())
        .context("could not start the hashing thread")?;

    let (advertised_ip, port) = config.advertise.unwrap_or((None, local.port()));
    let registration = Registration {
        port,
        advertised_ip,
        token: config.token.clone(),
    };
    // One registration per relay, as a BitTorrent client announces to
    // every tracker of a torrent (BEP 12): each relay lists the node and
    // gets its catalog, so any one of them can answer for the network.
    let relays: Vec<(String, u16)> =
        std::iter::once((config.relay_host.clone(), config.relay_port))
            .chain(config.more_relays.iter().cloned())
            .collect();
    let announcers: Vec<Announcer> = relays
        .iter()
        .map(|(host, port)| {
            Announcer::new(
                host.clone(),
                *port,
                registration.clone(),
                config.heartbeat,
                config.timeouts,
            )
            .with_dial(config.server.security.to_relay())
        })
        .collect();
    let announcer = announcers[0].clone();
    if let Some(addr) = config.metrics {
        let about = metrics::About {
            dir: share.root().to_path_buf(),
            relay: announcer.relay_label(),
            started: std::time::Instant::now(),
        };
        let pages = ::metrics::Pages {
            registry: metrics::families(),
            status: Box::new(move || metrics::status(&about)),
        };
        let endpoint = ::metrics::Endpoint::start(addr, pages, Default::default())?;
        tracing::info!(
            "metrics on http://{}/metrics, status on http://{}/status",
            endpoint.addr,
            endpoint.addr
        );
    }
    let service = Arc::new(metrics::metered(NodeService::new(
        share.clone(),
        index.clone(),
    )));
    let dht = dht::start(
        config.dht.as_ref(),
        config.bind,
        port,
        config.relayed,
        share.clone(),
        index.clone(),
    )?;
    unregister_on_signal(announcers.clone())?;
    for announcer in announcers {
        let relayed = Relayed {
            relay_host: announcer.relay_host.clone(),
            relay_port: announcer.relay_port,
            registration: registration.clone(),
            heartbeat: config.heartbeat,
            timeouts: config.timeouts,
            service: Arc::clone(&service),
            server: config.server.clone(),
        };
        keep_listed(
            announcer,
            relayed,
            config.relayed,
            &share,
            &index,
            &dht,
            config.heartbeat,
        )?;
    }
    server.serve(service).context("node stopped")
}

/// Keeps the node listed at one relay, with its catalog: the catalog
/// thread, and the announce thread (registration and heartbeats, or the
/// control connection of relayed mode).
fn keep_listed<H: net::server::Handler + 'static>(
    announcer: Announcer,
    relayed: Relayed<H>,
    force_relayed: bool,
    share: &SharedDir,
    index: &ContentIndex,
    dht: &dht::DhtPresence,
    heartbeat: Duration,
) -> anyhow::Result<()> {
    // A private network's relay keeps only a blind index: the node's keys
    // say which form its catalog takes.
    let form = catalog::CatalogForm::of(match &relayed.server.security {
        Security::Private(private) => Some(&private.keys),
        Security::Plain => None,
    });
    let dht = dht.clone();
    let wake = watch::Wake::default();
    watch::start(
        share.clone(),
        index.clone(),
        announcer.clone(),
        wake.clone(),
        heartbeat.max(Duration::from_millis(100)),
        form,
    )
    .context("could not start the catalog thread")?;
    // Crucial: a node that serves but no longer refreshes its entry (or
    // keeps its control connection) drops off the list while it looks alive.
    plumbing::crucial::spawn("announce", move || {
        // Listed anew: the catalog thread sends the whole catalog, naming
        // the node as the relay lists it (a relayed node by its control
        // connection's address, see watch::Wake::relayed).
        let relayed_listed = |listed_as| {
            metrics::registration(metrics::Registration::Relayed);
            dht.relayed();
            wake.relayed(listed_as)
        };
        let outcome = if force_relayed {
            relayed.run_with(&relayed_listed)
        } else {
            let listed = || {
                metrics::registration(metrics::Registration::Registered);
                dht.direct();
                wake.registered()
            };
            match announcer.run_with(listed) {
                AnnounceError::NeedsRelay(why) => {
                    tracing::warn!("{why}; switching to relayed mode");
                    relayed.run_with(&relayed_listed)
                }
                other => other,
            }
        };
        match outcome {
            // The signal handler unregisters and ends the process.
            AnnounceError::Leaving => {}
            refusal => {
                tracing::error!("{refusal}");
                plumbing::logging::exit(2);
            }
        }
    })
    .context("could not start the announce thread")?;
    Ok(())
}

/// How long leaving may take: a heartbeat on the wire to finish, then the
/// unregister exchange, each bounded by this, so a dead relay never keeps a
/// stopping node alive for long.
const LEAVE_WITHIN: Duration = Duration::from_secs(2);

/// The hard bound on leaving, whatever blocks it: a relay that accepts and
/// never answers, a resolver that hangs. Past it the node exits without the
/// goodbye; the relay drops the entry after its TTL. It includes the last
/// [`plumbing::logging::LAST_WORDS`], in which the log's queue is written out
/// (or, if nobody reads stderr, given up on).
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// On SIGINT or SIGTERM, tell every relay we are leaving (at once), then
/// exit 0.
fn unregister_on_signal(announcers: Vec<Announcer>) -> anyhow::Result<()> {
    // The handler runs once, on ctrlc's thread: if it died half way, no
    // later signal would be handled, so a panic in it still exits.
    ctrlc::set_handler(move || {
        let _ = std::thread::Builder::new()
            .name("exit-deadline".into())
            .spawn(|| {
                let leaving = EXIT_WITHIN - plumbing::logging::LAST_WORDS;
                std::thread::sleep(leaving);
                tracing::warn!(
                    "could not leave within {}s; exiting without unregistering",
                    leaving.as_secs_f64()
                );
                plumbing::logging::exit(0);
            });
        plumbing::crucial::run("signal", || {
            std::thread::scope(|scope| {
                for announcer in &announcers {
                    scope.spawn(move || {
                        let relay = announcer.relay_label();
                        let mut quick = announcer.clone();
                        quick.timeouts = Timeouts {
                            connect: LEAVE_WITHIN,
                            io: LEAVE_WITHIN,
                        };
                        match quick.leave(LEAVE_WITHIN) {
                            Ok(()) => tracing::info!("unregistered from relay {relay}; exiting"),
                            Err(e) => tracing::warn!(
                                "could not unregister from relay {relay}: {e}; exiting"
                            ),
                        }
                    });
                }
            });
        });
        plumbing::logging::exit(0);
    })
    .context("could not install the signal handler")
}
