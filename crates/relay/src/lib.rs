//! The relay: the directory of active peer nodes.
//!
//! Module map:
//! - [`registry`]: the table of nodes (registration order, refresh, expiry,
//!   the cap per source address and eviction from a full table,
//!   the cached list answer).
//! - [`catalogs`]: what both indexes are made of: every active node's
//!   catalog as entries keyed by a name and a content, living and going
//!   with the node's registry entry, updated in seq order, within limits.
//! - [`index`]: the plain index (names, hashes, sizes): who-has and search.
//! - [`blind`]: the blind index of a private network (tags and sealed
//!   records the relay cannot read): who-has by tag, listing in pages.
//! - [`service`]: how each request is answered, and who may register as what.
//! - [`dialback`]: the check that a registering node can be reached at the
//!   address it would be listed under, with its cache.
//! - [`control`]: relayed nodes' long-lived control connections.
//! - [`circuit`]: the circuit table (caps, pending joins) and the two ends
//!   of a circuit being joined.
//! - [`splice`]: joining two connections byte for byte, with splice(2).
//! - [`rendezvous`]: hole punching: introducing a client and a relayed
//!   node to each other, and remembering which pairs got through.
//! - [`dht`]: `--dht`: a private network's relay announced on the
//!   Mainline DHT, for clients whose relays are all down.
//! - [`metrics`]: what `--metrics` serves: counts by request, refusal and
//!   circuit, levels read from the tables above, the `/status` page.
//! - [`cli`]: the command line, and the [`RelayConfig`] it makes.
//!
//! [`run`] wires them to the shared server skeleton in `net::server`.

pub mod blind;
pub mod catalogs;
pub mod circuit;
pub mod cli;
pub mod control;
pub mod dht;
pub mod dialback;
pub mod index;
pub mod metrics;
pub mod registry;
pub mod rendezvous;
pub mod service;
pub mod splice;

use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use net::secure::{Identity, Key, NetworkKeys, Security};
use net::server::{Server, ServerConfig};

pub use blind::BlindIndex;
pub use catalogs::IndexLimits;
pub use circuit::CircuitLimits;
pub use index::Index;
pub use registry::{Limits, Registry};
pub use service::{Indexes, Policy, RelayService, Relaying};

/// Shortest TTL a relay accepts. `Registered` tells nodes the TTL in whole
/// seconds (rounded down, so they refresh early rather than late); a TTL
/// under one second would reach them as 0, which says nothing.
pub const MIN_TTL: Duration = Duration::from_secs(1);

/// Most nodes a private network's relay lists: each long-list entry carries
/// a 32-byte key, and 65 000 IPv6 entries (63 bytes each) still fit in one
/// frame of `proto::MAX_FRAME`.
pub const MAX_PRIVATE_NODES: usize = 65_000;

/// Everything the relay needs to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub bind: Option<IpAddr>,
    pub port: u16,
    pub ttl: Duration,
    /// Entries one source IP address may hold in the table.
    pub max_nodes_per_ip: usize,
    pub policy: Policy,
    pub index: IndexLimits,
    pub server: ServerConfig,
    /// None with `--no-relaying`: registrations are listed without
    /// dial-back and nothing is relayed.
    pub relaying: Option<CircuitLimits>,
    /// False with `--no-punch`: relayed nodes are always reached through
    /// circuits.
    pub punching: bool,
    /// In a private network, the relay key: every connection must complete
    /// a handshake under it. A relay never holds the peer key.
    pub relay_key: Option<Key>,
    /// Where to serve metrics and the status page (`--metrics`); None: off.
    pub metrics: Option<SocketAddr>,
    /// `--dht`: announce this relay on the DHT (a private network's only).
    pub dht: Option<dht::DhtConfig>,
}

/// Binds, logs where it listens, and serves until the process ends.
pub fn run(config: RelayConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.ttl >= MIN_TTL,
        "a TTL of {:?} is too short: nodes are told it in whole seconds, so it must be at least 1 s",
        config.ttl
    );
    let mut config = config;
    if let Some(key) = config.relay_key.clone() {
        // The relay's own static key is new at every start: nobody pins it.
        let identity = Identity::generate().context("cannot make the relay's key pair")?;
        config.server.security = Security::private(NetworkKeys::relay_only(key), identity);
    }
    let (server, local) = Server::listen(config.bind, config.port, config.server.clone())?;
    anyhow::ensure!(
        config.max_nodes_per_ip >= 1,
        "--max-nodes-per-ip must be at least 1"
    );
    let mut limits = Limits {
        per_source: config.max_nodes_per_ip,
        ..Limits::default()
    };
    if config.server.security.is_private() {
        limits.total = MAX_PRIVATE_NODES;
    }
    // One index, one code path: in a private network the blind one only.
    let index: Indexes = if config.server.security.is_private() {
        BlindIndex::new(config.index).into()
    } else {
        Index::new(config.index).into()
    };
    let registry = Registry::with_membership(config.ttl, limits, Some(index.membership()));
    spawn_expiry(registry.clone())?;
    tracing::info!(
        "listening on {local} (ttl {}s, at most {} nodes per address, index up to {} files \
         per node, {} in all)",
        config.ttl.as_secs_f64(),
        limits.per_source,
        config.index.node_files,
        config.index.entries
    );
    if config.server.security.is_private() {
        tracing::info!(
            "private network: every connection must complete a handshake under the relay key; \
             the index is blind (tags and sealed records only)"
        );
    }
    let mut tables = metrics::Tables {
        registry: registry.clone(),
        index: index.clone(),
        relaying: None,
        started: Instant::now(),
    };
    let mut service = RelayService::new(registry, index, config.policy);
    match config.relaying {
        Some(limits) => {
            let (controls, circuits) =
                (control::Controls::default(), circuit::Circuits::new(limits));
            tables.relaying = Some((circuits.clone(), controls.clone()));
            service = service.with_relaying(Relaying {
                dialback: dialback::DialBack::with_security(
                    dialback::TIMEOUT,
                    config.server.security.clone(),
                ),
                controls,
                circuits,
                punches: config
                    .punching
                    .then(|| rendezvous::Punches::new(config.server.security.clone())),
                io_timeout: config.server.io_timeout,
            });
        }
        None => tracing::info!("relaying is off: registrations are listed unchecked"),
    }
    if config.relaying.is_some() && !config.punching {
        tracing::info!("hole punching is off: relayed nodes are reached through circuits");
    }
    if let (Some(dht), Some(key)) = (&config.dht, &config.relay_key) {
        dht::start(dht, config.bind, key.bytes(), local.port())?;
    }
    if let Some(addr) = config.metrics {
        let pages = ::metrics::Pages {
            registry: metrics::families(&tables),
            status: Box::new(move || metrics::status(&tables)),
        };
        let endpoint = ::metrics::Endpoint::start(addr, pages, Default::default())?;
        tracing::info!(
            "metrics on http://{}/metrics, status on http://{}/status",
            endpoint.addr,
            endpoint.addr
        );
    }
    server
        .serve(metrics::metered(service))
        .context("relay stopped")
}

/// Drops silent nodes even when nobody asks for the list, so the log shows
/// each expiry when it happens.
fn spawn_expiry(registry: Registry) -> anyhow::Result<()> {
    let period = (registry.ttl() / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    // Without it the table would only shrink when someone asks for the list.
    plumbing::crucial::spawn("expiry", move || {
        loop {
            thread::sleep(period);
            service::log_expired(&registry.expire(Instant::now()));
        }
    })
    .context("could not start the expiry thread")?;
    Ok(())
}
