//! The Mainline DHT as a source of holders (issue 27): the holders of a
//! content, found by `get_peers` for the DHT id derived from its hash
//! (`dht::id`; keyed with the network's key in a private network), without
//! any relay.
//!
//! When it is asked:
//! - with `--dht` (or `--dht-bootstrap HOST:PORT`, which turns it on), for
//!   every `blake3:` target, beside the relays' who-has;
//! - without either, only when every relay is unreachable and the target is
//!   a `blake3:` hash (a name means nothing on the DHT). The bootstrap nodes
//!   are then the public routers, unless the user named some.
//!   `--no-dht` turns this off.
//!
//! The DHT node starts on the first lookup and lives as long as the
//! session, so a prompt's second lookup starts warm.
//!
//! What a lookup returns are candidates, nothing more: anyone can announce
//! any address under any id. Each one is asked for verified ranges like any
//! other holder, so a holder that lies, or a BitTorrent peer that speaks
//! another protocol, costs one connection within `--timeout` and a line
//! saying it was dropped; never a byte out. In a private network a DHT
//! holder has no node key listed by a relay: completing the Noise handshake
//! under the network's peer key is what admits it (`crate::dial`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dht::{Bootstrap, DhtId, DhtNode, Lookup, NetworkKey, NodeConfig};
use proto::ContentHash;

/// The longest one lookup waits for holders. On loopback a lookup ends in
/// well under a second; on the internet a node that does not answer costs
/// mainline's 2 s request timeout, and a lookup some rounds of those.
pub const LOOKUP_WAIT: Duration = Duration::from_secs(10);

/// How the client uses the DHT, from the command line.
#[derive(Debug, Clone, Default)]
pub struct DhtSettings {
    /// `--dht`, or a bootstrap node given: ask it for every hash.
    pub always: bool,
    /// `--no-dht`: never, not even with every relay down.
    pub never: bool,
    /// `--dht-bootstrap`: the only bootstrap nodes (none: the public
    /// routers).
    pub bootstrap: Vec<String>,
    /// In a private network, the id its relays announce under (`relay
    /// --dht`): looked up, with `--dht`, when every relay given is
    /// unreachable.
    pub relays: Option<DhtId>,
    /// In a private network, the key that makes its ids its own.
    pub key: Option<NetworkKey>,
}

/// The DHT source of one session: its settings, and its node once started.
pub struct DhtSource {
    settings: DhtSettings,
    lookup: Option<Lookup>,
}

impl DhtSource {
    pub fn new(settings: DhtSettings) -> DhtSource {
        DhtSource {
            settings,
            lookup: None,
        }
    }

    /// Asked beside the relays for every hash.
    pub fn always(&self) -> bool {
        self.settings.always && !self.settings.never
    }

    /// Asked when every relay is unreachable.
    pub fn as_fallback(&self) -> bool {
        !self.settings.never
    }

    /// Where the lookups start, for status lines.
    pub fn bootstrap_label(&self) -> String {
        Bootstrap::from_given(self.settings.bootstrap.clone()).label()
    }

    /// The holders of the content `hash`, as the DHT names them, within
    /// [`LOOKUP_WAIT`]. Err when the DHT node cannot start.
    pub fn holders(&mut self, hash: &ContentHash) -> Result<Vec<SocketAddr>, String> {
        let key = self.settings.key.clone();
        let lookup = self.lookup()?;
        let started = Instant::now();
        let found = lookup.find(&hash.0, key.as_ref(), started + LOOKUP_WAIT);
        tracing::debug!(
            "DHT lookup of blake3:{} found {} in {:?}",
            hash.short(),
            found.len(),
            started.elapsed()
        );
        Ok(found)
    }

    /// The relays of this private network the DHT names (`relay --dht`),
    /// within [`LOOKUP_WAIT`]: candidates, each admitted only by the
    /// handshake under the relay key. Empty in a plain network; Err when
    /// the DHT node cannot start.
    pub fn relays(&mut self) -> Result<Vec<SocketAddr>, String> {
        let Some(id) = self.settings.relays else {
            return Ok(Vec::new());
        };
        let lookup = self.lookup()?;
        let started = Instant::now();
        let found = lookup.find_id(id, started + LOOKUP_WAIT);
        tracing::debug!(
            "DHT lookup of the network's relays found {} in {:?}",
            found.len(),
            started.elapsed()
        );
        Ok(found)
    }

    /// True when relays are looked up: a private network, with `--dht` or
    /// `--dht-bootstrap`. Not by default, unlike a hash's fallback: a name
    /// asked of a relay that is down (a mistyped port) would otherwise wait
    /// for a lookup on the public DHT before its error.
    pub fn finds_relays(&self) -> bool {
        self.settings.relays.is_some() && self.always()
    }

    fn lookup(&mut self) -> Result<&Lookup, String> {
        if self.lookup.is_none() {
            let bootstrap = Bootstrap::from_given(self.settings.bootstrap.clone());
            let node = DhtNode::start(&NodeConfig::new(bootstrap))
                .map_err(|e| format!("cannot start a DHT node: {e}"))?;
            self.lookup = Some(Lookup::new(node));
        }
        Ok(self.lookup.as_ref().expect("started above"))
    }
}

/// The holders a lookup found, for a status line: the first few.
pub fn addrs_line(found: &[SocketAddr]) -> String {
    const SHOWN: usize = 5;
    let mut line: Vec<String> = found.iter().take(SHOWN).map(|a| a.to_string()).collect();
    if found.len() > SHOWN {
        line.push(format!("and {} more", found.len() - SHOWN));
    }
    line.join(", ")
}
