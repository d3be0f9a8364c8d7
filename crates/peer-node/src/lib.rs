//! A peer node: shares one directory with clients and keeps itself listed at
//! the relay.
//!
//! Module map:
//! - [`share`]: the shared directory: a requested name in, a file inside DIR
//!   out, or a refusal; and the listing of what is shared.
//! - [`announce`]: register, heartbeat, unregister.
//! - [`catalog`]: what the relay's index gets: every shared file's name,
//!   size and hash, diffed and sent in frames that fit, in order.
//! - [`watch`]: when to send it: a watcher on DIR, and a periodic rescan.
//! - [`service`]: how each request is answered.
//! - [`ranges`]: the verified answers: a range with its proof, by name or by
//!   content hash, and the listing with hashes.
//! - [`hashes`]: the content index: each file's BLAKE3 hash per version on
//!   disk, hashed on demand and by a low-priority startup scan.
//! - [`cache`]: where the outboards (hash trees) live, outside DIR.
//!
//! [`run`] binds the listener first (so the announced port is real), starts
//! announcing, and serves on the shared skeleton in `proto::server`.

pub mod announce;
pub mod cache;
pub mod catalog;
pub mod hashes;
pub mod ranges;
pub mod service;
pub mod share;
pub mod watch;

use std::net::IpAddr;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use proto::Registration;
use proto::exchange::Timeouts;
use proto::server::{Server, ServerConfig};

pub use announce::{AnnounceError, Announcer};
pub use hashes::ContentIndex;
pub use service::NodeService;
pub use share::SharedDir;

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub relay_host: String,
    pub relay_port: u16,
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
    pub server: ServerConfig,
    pub timeouts: Timeouts,
}

/// Serves DIR until the process ends; SIGINT or SIGTERM unregisters first.
pub fn run(config: NodeConfig) -> anyhow::Result<()> {
    let share = SharedDir::open(&config.dir)
        .with_context(|| format!("cannot share {}", config.dir.display()))?;
    let (server, local) = Server::listen(config.bind, config.port, config.server.clone())?;
    let cache = cache::choose(config.cache.as_deref(), share.root())?;
    let index = ContentIndex::new(cache.clone());
    tracing::info!(
        "listening on {local}, sharing {} (hash cache {})",
        share.root().display(),
        cache.display()
    );
    index
        .start_scanner(share.clone())
        .context("could not start the hashing thread")?;

    let (advertised_ip, port) = config.advertise.unwrap_or((None, local.port()));
    let announcer = Announcer::new(
        config.relay_host.clone(),
        config.relay_port,
        Registration {
            port,
            advertised_ip,
            token: config.token.clone(),
        },
        config.heartbeat,
        config.timeouts,
    );
    unregister_on_signal(announcer.clone())?;
    let wake = watch::Wake::default();
    watch::start(
        share.clone(),
        index.clone(),
        announcer.clone(),
        wake.clone(),
        config.heartbeat.max(Duration::from_millis(100)),
    )
    .context("could not start the catalog thread")?;
    thread::Builder::new()
        .name("announce".into())
        .spawn(move || match announcer.run_with(|| wake.registered()) {
            // The signal handler unregisters and ends the process.
            AnnounceError::Leaving => {}
            refusal => {
                tracing::error!("{refusal}");
                std::process::exit(2);
            }
        })
        .context("could not start the announce thread")?;
    server
        .serve(NodeService::new(share, index))
        .context("node stopped")
}

/// How long leaving may take: a heartbeat on the wire to finish, then the
/// unregister exchange, each bounded by this, so a dead relay never keeps a
/// stopping node alive for long.
const LEAVE_WITHIN: Duration = Duration::from_secs(2);

/// On SIGINT or SIGTERM, tell the relay we are leaving, then exit 0.
fn unregister_on_signal(announcer: Announcer) -> anyhow::Result<()> {
    ctrlc::set_handler(move || {
        let relay = announcer.relay_label();
        let mut quick = announcer.clone();
        quick.timeouts = Timeouts {
            connect: LEAVE_WITHIN,
            io: LEAVE_WITHIN,
        };
        match quick.leave(LEAVE_WITHIN) {
            Ok(()) => tracing::info!("unregistered from relay {relay}; exiting"),
            Err(e) => tracing::warn!("could not unregister from relay {relay}: {e}; exiting"),
        }
        std::process::exit(0);
    })
    .context("could not install the signal handler")
}
