//! The relay: the directory of active peer nodes.
//!
//! Module map:
//! - [`registry`]: the table of nodes (registration order, refresh, expiry,
//!   the cached list answer).
//! - [`index`]: every active node's catalog, and who-has and search over
//!   them; a catalog lives and goes with its node's registry entry.
//! - [`service`]: how each request is answered, and who may register as what.
//!
//! [`run`] wires them to the shared server skeleton in `proto::server`.

pub mod index;
pub mod registry;
pub mod service;

use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use proto::server::{Server, ServerConfig};

pub use index::{Index, IndexLimits};
pub use registry::Registry;
pub use service::{Policy, RelayService};

/// Shortest TTL a relay accepts. `Registered` tells nodes the TTL in whole
/// seconds (rounded down, so they refresh early rather than late); a TTL
/// under one second would reach them as 0, which says nothing.
pub const MIN_TTL: Duration = Duration::from_secs(1);

/// Everything the relay needs to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub bind: Option<IpAddr>,
    pub port: u16,
    pub ttl: Duration,
    pub policy: Policy,
    pub index: IndexLimits,
    pub server: ServerConfig,
}

/// Binds, logs where it listens, and serves until the process ends.
pub fn run(config: RelayConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.ttl >= MIN_TTL,
        "a TTL of {:?} is too short: nodes are told it in whole seconds, so it must be at least 1 s",
        config.ttl
    );
    let (server, local) = Server::listen(config.bind, config.port, config.server.clone())?;
    let index = Index::new(config.index);
    let registry = Registry::with_membership(config.ttl, Some(Arc::new(index.clone())));
    spawn_expiry(registry.clone())?;
    tracing::info!(
        "listening on {local} (ttl {}s, index up to {} files per node, {} in all)",
        config.ttl.as_secs_f64(),
        config.index.node_files,
        config.index.entries
    );
    server
        .serve(RelayService::new(registry, index, config.policy))
        .context("relay stopped")
}

/// Drops silent nodes even when nobody asks for the list, so the log shows
/// each expiry when it happens.
fn spawn_expiry(registry: Registry) -> anyhow::Result<()> {
    let period = (registry.ttl() / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    thread::Builder::new()
        .name("expiry".into())
        .spawn(move || {
            loop {
                thread::sleep(period);
                service::log_expired(&registry.expire(Instant::now()));
            }
        })
        .context("could not start the expiry thread")?;
    Ok(())
}
