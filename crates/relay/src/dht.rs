//! `relay --dht`: a private network's relay announces itself on the
//! BitTorrent Mainline DHT, so that a client whose relays are all down can
//! find another relay of its network (issue 27, optional part).
//!
//! The id is derived from the relay key ([`DhtId::relays`]), the one key a
//! relay may hold: every member can derive it from the secret, and
//! outsiders cannot, so they cannot even tell that this address is a relay
//! of that network. A plain relay has no network to announce under, and a
//! stranger found on the DHT could answer a name with any content: `--dht`
//! is refused there. In a private network, what a client finds is only a
//! candidate until it completes the handshake under the relay key.
//!
//! The announce runs on the `dht` crate's announcer (one entry: the id and
//! this relay's TCP port), watched by a crucial thread that says when it is
//! announced and when announces fail.

use std::net::IpAddr;
use std::time::Duration;

use ::dht::{AnnounceConfig, Announcer, Bootstrap, DhtId, DhtNode, NodeConfig, Tell, Telling};
use anyhow::Context;

/// `--dht`, `--dht-bootstrap`, `--dht-port`.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    pub bootstrap: Bootstrap,
    pub port: u16,
}

/// How often the announcer's report is looked at.
const POLL: Duration = Duration::from_secs(1);

/// How often failing announces are told, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Starts the DHT node and keeps this relay (listening on `port`)
/// announced under the id of the network whose relay key is `relay_key`.
pub fn start(
    config: &DhtConfig,
    bind: Option<IpAddr>,
    relay_key: &[u8; 32],
    port: u16,
) -> anyhow::Result<()> {
    let node = DhtNode::start(&NodeConfig {
        port: config.port,
        ..NodeConfig::new(config.bootstrap.clone()).bound_like(bind)
    })
    .context("cannot start the DHT node")?;
    tracing::info!(
        "DHT node on UDP {} (bootstrap: {}); this relay is announced with port {port} under \
         its network's relays id",
        node.local_addr(),
        config.bootstrap.label()
    );
    let id = DhtId::relays(relay_key);
    // Crucial: a relay started with --dht whose announces silently stopped
    // would look fine and be found by nobody.
    plumbing::crucial::spawn("dht", move || {
        // The first announce once the node knows its neighbours: sent at
        // once, it waits for the same lookup, and slower.
        if !node.wait_bootstrapped() {
            tracing::warn!("DHT: no bootstrap node answered yet; announcing anyway");
        }
        let announcer = Announcer::new(node, AnnounceConfig::default());
        if let Err(e) = announcer.replace([(id, port)]) {
            panic!("cannot start a DHT announce thread: {e}");
        }
        watch(&announcer)
    })
    .context("could not start the DHT thread")?;
    Ok(())
}

fn watch(announcer: &Announcer) -> ! {
    let mut telling = Telling::new(WARN_EVERY);
    loop {
        match telling
            .look(announcer)
            .unwrap_or_else(|why| panic!("{why}"))
        {
            Some(Tell::Complete(_)) => tracing::info!("announced this relay on the DHT"),
            Some(Tell::Failing(report)) => tracing::warn!(
                "DHT: this relay is not announced yet; {} announces failed so far ({}); retrying",
                report.failed,
                report.last_error.as_deref().unwrap_or("no reason given")
            ),
            None => {}
        }
        std::thread::sleep(POLL);
    }
}
