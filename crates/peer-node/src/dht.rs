//! The node on the DHT (`--dht`): every hashed shared file's DHT id
//! (`::dht::id`, keyed in a private network) announced with the port the
//! node serves on, so clients find it without any relay.
//!
//! What is announced follows the content index: a thread looks at it once a
//! second and, when anything was hashed since, or every 5 s (files added or
//! removed), makes the set of ids the announcer keeps ([`::dht::Announcer`])
//! the ids of the files in DIR whose hash is known now. So a file's first
//! announce goes out within about a second of its hash (the startup scan's,
//! or the catalog's), or of the relay's verdict at the start (below), well
//! inside 10 s, and the announcer spreads and rate-limits the rest. A file found without a hash makes it ask the
//! low-priority scanner for a scan: with the relay down, nothing else
//! would hash a file added since the start.
//!
//! **A relayed node announces nothing.** Storing nodes record the address
//! an announce comes from, with the port it names; behind NAT that is the
//! router's address, where nobody can connect. So a node stops announcing
//! (and says so once) as soon as it is relayed: from the start with
//! `--relayed`, or when the relay answers that it cannot connect back.
//! Its files are found through the relay's index, as before. A node waits
//! up to [`VERDICT_WAIT`] for the relay's verdict (its dial-back) before its
//! first announce; if the relay has said nothing by then (it may be down),
//! the node announces, and stops if the relay later says it is relayed:
//! what it announced meanwhile expires on its own (32 to 45 minutes), and
//! a wrong guess costs a client one refused connection.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::dht::{
    AnnounceConfig, Announcer, Bootstrap, DhtId, DhtNode, NetworkKey, NodeConfig, Tell, Telling,
};
use anyhow::Context;

use crate::hashes::ContentIndex;
use crate::share::SharedDir;

/// How often the content index is checked for new hashes.
const POLL: Duration = Duration::from_secs(1);

/// How often the set is rebuilt anyway (files added, removed or changed
/// without a new hash in between): one stat per shared file.
const REBUILD: Duration = Duration::from_secs(5);

/// How long a node waits for the relay to say whether it can be reached
/// before it announces anyway: the dial-back takes 1.5 s at most, and the
/// first announces must still go out within 10 s of the start.
const VERDICT_WAIT: Duration = Duration::from_secs(5);

/// Shortest time between two warnings about failed announces.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// `--dht` and its companions.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    pub bootstrap: Bootstrap,
    /// The UDP port (0: a free one).
    pub port: u16,
    /// Answer other nodes' queries from the start (`--dht-server`).
    pub server: bool,
    /// In a private network, the key from the secret: ids are keyed.
    pub key: Option<NetworkKey>,
}

/// Whether the node can be reached at the address it would announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The relay has said nothing yet.
    Unknown,
    /// The relay listed the node as direct.
    Direct,
    /// Relayed: nothing is announced.
    Relayed,
}

/// A handle on the node's DHT presence; does nothing when `--dht` is off.
#[derive(Clone, Default)]
pub struct DhtPresence {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    reach: Mutex<Reach>,
    changed: Condvar,
}

impl DhtPresence {
    /// The relay lists this node as direct: announce.
    pub fn direct(&self) {
        self.set(Reach::Direct);
    }

    /// This node is relayed: announce nothing.
    pub fn relayed(&self) {
        self.set(Reach::Relayed);
    }

    fn set(&self, reach: Reach) {
        if let Some(shared) = &self.shared {
            *lock(&shared.reach) = reach;
            shared.changed.notify_all();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the DHT node and the thread that keeps DIR's files announced
/// with `serving_port`; a handle that does nothing without `config`.
pub fn start(
    config: Option<&DhtConfig>,
    bind: Option<IpAddr>,
    serving_port: u16,
    relayed: bool,
    share: SharedDir,
    index: ContentIndex,
) -> anyhow::Result<DhtPresence> {
    let Some(config) = config else {
        return Ok(DhtPresence::default());
    };
    let node = DhtNode::start(&NodeConfig {
        port: config.port,
        server: config.server,
        ..NodeConfig::new(config.bootstrap.clone()).bound_like(bind)
    })
    .context("cannot start the DHT node")?;
    tracing::info!(
        "DHT {} on UDP {} (bootstrap: {}); shared files announced with port {serving_port}{}",
        if config.server { "server node" } else { "node" },
        node.local_addr(),
        config.bootstrap.label(),
        if config.key.is_some() {
            ", under ids keyed with the network's secret"
        } else {
            ""
        }
    );
    let shared = Arc::new(Shared {
        reach: Mutex::new(if relayed {
            Reach::Relayed
        } else {
            Reach::Unknown
        }),
        changed: Condvar::new(),
    });
    let announcer = Announcer::new(node, AnnounceConfig::default());
    let key = config.key.clone();
    let watched = Arc::clone(&shared);
    // Crucial: a node started with --dht whose announces silently stopped
    // would look fine and be found by nobody.
    plumbing::crucial::spawn("dht", move || {
        run(
            &watched,
            &announcer,
            &share,
            &index,
            key.as_ref(),
            serving_port,
        );
    })
    .context("could not start the DHT thread")?;
    Ok(DhtPresence {
        shared: Some(shared),
    })
}

fn run(
    shared: &Shared,
    announcer: &Announcer,
    share: &SharedDir,
    index: &ContentIndex,
    key: Option<&NetworkKey>,
    port: u16,
) {
    let started = Instant::now();
    // The reach at the last look, and what the set was last built from.
    let mut seen: Option<Reach> = None;
    let mut last: Option<(Reach, u64)> = None;
    let mut built = Instant::now();
    let mut telling = Telling::new(WARN_EVERY);
    loop {
        let reach = {
            let reach = lock(&shared.reach);
            // Woken early by a change of reach; otherwise once per POLL.
            if seen == Some(*reach) {
                *shared
                    .changed
                    .wait_timeout(reach, POLL)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            } else {
                *reach
            }
        };
        seen = Some(reach);
        // No verdict within the wait: the relay is down or slow; announce.
        let reach = match reach {
            Reach::Unknown if started.elapsed() < VERDICT_WAIT => continue,
            Reach::Unknown => Reach::Direct,
            known => known,
        };
        let generation = index.generation();
        if last != Some((reach, generation)) || built.elapsed() >= REBUILD {
            if reach == Reach::Relayed && last.is_none_or(|(r, _)| r != reach) {
                tracing::info!(
                    "relayed: this node's files are not announced on the DHT (the address \
                     storing nodes would record cannot be reached); clients find them through \
                     the relay"
                );
            }
            let ids = match reach {
                Reach::Direct | Reach::Unknown => {
                    let (ids, unhashed) = hashed_ids(share, index, key);
                    if unhashed {
                        index.request_scan();
                    }
                    ids
                }
                Reach::Relayed => HashSet::new(),
            };
            if let Err(e) = announcer.replace(ids.into_iter().map(|id| (id, port))) {
                tracing::warn!("cannot start a DHT announce thread: {e}");
            }
            last = Some((reach, generation));
            built = Instant::now();
        }

        match telling
            .look(announcer)
            .unwrap_or_else(|why| panic!("{why}"))
        {
            Some(Tell::Complete(n)) => tracing::info!("announced {n} shared files on the DHT"),
            Some(Tell::Failing(report)) => tracing::warn!(
                "DHT: {} of {} shared files announced; {} announces failed so far ({}); retrying",
                report.fresh,
                report.entries,
                report.failed,
                report.last_error.as_deref().unwrap_or("no reason given")
            ),
            None => {}
        }
    }
}

/// The DHT ids of the files in DIR whose current version is hashed (one
/// stat per file; files not hashed yet come in a later round), and whether
/// some file is not hashed yet.
fn hashed_ids(
    share: &SharedDir,
    index: &ContentIndex,
    key: Option<&NetworkKey>,
) -> (HashSet<DhtId>, bool) {
    let (entries, _) = share.list();
    let mut unhashed = false;
    let ids = entries
        .iter()
        .filter_map(|entry| {
            let known = index.known(&share.root().join(&entry.name));
            unhashed |= known.is_none();
            known
        })
        .map(|hash| DhtId::derive(&hash.0, key))
        .collect();
    (ids, unhashed)
}
