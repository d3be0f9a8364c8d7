//! The node's metrics (`peer-node --metrics ADDR:PORT`, crates/metrics)
//! and its status page.
//!
//! Counts and levels are plain atomics, process-wide like a Prometheus
//! client's default registry: the code that sees an event sets or adds,
//! with no lock, so serving never waits for a scrape.

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use metrics::families::{self, level};
use metrics::prometheus_client::collector::Collector;
use metrics::prometheus_client::encoding::DescriptorEncoder;
use metrics::prometheus_client::registry::{Registry as Families, Unit};
use net::server::{Handler, Metered, OUTCOMES, RequestCounts, stats};
use proto::Request;

/// Request kinds, as the `kind` label.
const KINDS: [&str; 6] = [
    "get_file",
    "get_range",
    "list_files",
    "list_files_long",
    "hello",
    "for_the_relay",
];

fn kind(request: &Request) -> usize {
    match request {
        Request::GetFile(_) => 0,
        Request::GetRange(_) => 1,
        Request::ListFiles => 2,
        Request::ListFilesLong => 3,
        Request::Hello => 4,
        Request::Register(_)
        | Request::Unregister(_)
        | Request::ListNodes
        | Request::Catalog(_)
        | Request::CatalogLong(_)
        | Request::WhoHas(_)
        | Request::WhoHasLong(_)
        | Request::Search(_)
        | Request::ListNodesLong
        | Request::Control(_)
        | Request::ControlPunch(_)
        | Request::Punch(_)
        | Request::JoinPunch(_)
        | Request::ListPunchable
        | Request::Keepalive
        | Request::OpenCircuit(_)
        | Request::JoinCircuit(_)
        | Request::BlindCatalog(_)
        | Request::BlindWhoHas(_)
        | Request::BlindList(_) => 5,
    }
}

/// How a file's bytes went out, as the `mode` label.
#[derive(Debug, Clone, Copy)]
pub enum Served {
    /// A verified range, checked by the client against the hash.
    Verified = 0,
    /// A whole file or a tail of it, as older clients ask.
    Plain = 1,
}

/// Where the node stands with its relay, as the `state` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Not registered yet: the first attempt is on its way.
    Starting = 0,
    /// Listed as a direct node, refreshing.
    Registered = 1,
    /// Listed as a relayed node, over its control connection.
    Relayed = 2,
    /// The relay could not be reached or the connection was lost; trying again.
    Retrying = 3,
}

const STATES: [&str; 4] = ["starting", "registered", "relayed", "retrying"];

const fn zero() -> AtomicU64 {
    AtomicU64::new(0)
}

struct Counts {
    requests: RequestCounts<{ KINDS.len() }>,
    served_bytes: [AtomicU64; 2],
    hashed_bytes: AtomicU64,
    hashing_nanos: AtomicU64,
    shared_files: AtomicU64,
    shared_bytes: AtomicU64,
    to_hash: AtomicU64,
    registration: AtomicU8,
}

static COUNTS: Counts = Counts {
    requests: [const { [const { zero() }; OUTCOMES.len()] }; KINDS.len()],
    served_bytes: [const { zero() }; 2],
    hashed_bytes: zero(),
    hashing_nanos: zero(),
    shared_files: zero(),
    shared_bytes: zero(),
    to_hash: zero(),
    registration: AtomicU8::new(Registration::Starting as u8),
};

/// Counts bytes of files sent.
pub fn served(how: Served, bytes: u64) {
    COUNTS.served_bytes[how as usize].fetch_add(bytes, Relaxed);
}

/// Counts a file version hashed (read from disk, not recalled).
pub fn hashed(bytes: u64, took: Duration) {
    COUNTS.hashed_bytes.fetch_add(bytes, Relaxed);
    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    COUNTS.hashing_nanos.fetch_add(nanos, Relaxed);
}

/// What the node shares now (hashed, and so in its catalog).
pub fn sharing(files: usize, bytes: u64) {
    COUNTS.shared_files.store(files as u64, Relaxed);
    COUNTS.shared_bytes.store(bytes, Relaxed);
}

/// Files the running scan has still to look at.
pub fn to_hash(files: usize) {
    COUNTS.to_hash.store(files as u64, Relaxed);
}

/// Where the node stands with its relay now.
pub fn registration(state: Registration) {
    COUNTS.registration.store(state as u8, Relaxed);
}

/// The node's service with each request counted by kind and outcome.
pub fn metered<H: Handler>(service: H) -> Metered<H, { KINDS.len() }> {
    Metered {
        handler: service,
        kind,
        counts: &COUNTS.requests,
    }
}

/// What the status page names besides the counts.
#[derive(Debug, Clone)]
pub struct About {
    pub dir: PathBuf,
    pub relay: String,
    pub started: Instant,
}

#[derive(Debug)]
struct Collect;

impl Collector for Collect {
    fn encode(&self, mut out: DescriptorEncoder) -> fmt::Result {
        families::gauge(
            &mut out,
            "p2p_node_shared_files",
            "Files shared and hashed, as in the catalog.",
            None,
            level(COUNTS.shared_files.load(Relaxed)),
        )?;
        families::gauge(
            &mut out,
            "p2p_node_shared",
            "Bytes of the files shared and hashed.",
            Some(Unit::Bytes),
            level(COUNTS.shared_bytes.load(Relaxed)),
        )?;
        families::gauge(
            &mut out,
            "p2p_node_files_to_hash",
            "Files the running scan of the directory has still to look at.",
            None,
            level(COUNTS.to_hash.load(Relaxed)),
        )?;
        families::counter(
            &mut out,
            "p2p_node_hashed",
            "Bytes hashed (files read for their BLAKE3 hash, not recalled from the cache).",
            Some(Unit::Bytes),
            COUNTS.hashed_bytes.load(Relaxed),
        )?;
        let nanos = COUNTS.hashing_nanos.load(Relaxed);
        families::counter_f64(
            &mut out,
            "p2p_node_hashing",
            "Time spent hashing; hashed bytes over it is the hashing rate.",
            Some(Unit::Seconds),
            nanos as f64 / 1e9,
        )?;
        let served: Vec<([(&str, &str); 1], u64)> = ["verified", "plain"]
            .iter()
            .zip(&COUNTS.served_bytes)
            .map(|(mode, n)| ([("mode", *mode)], n.load(Relaxed)))
            .collect();
        families::counters(
            &mut out,
            "p2p_node_served",
            "Bytes of files sent to clients, by mode.",
            Some(Unit::Bytes),
            served.iter().map(|(labels, n)| (&labels[..], *n)),
        )?;
        let requests: Vec<([(&str, &str); 2], u64)> = KINDS
            .iter()
            .zip(&COUNTS.requests)
            .flat_map(|(kind, row)| {
                OUTCOMES.iter().zip(row).filter_map(|(outcome, n)| {
                    let n = n.load(Relaxed);
                    (n > 0).then_some(([("kind", *kind), ("outcome", *outcome)], n))
                })
            })
            .collect();
        families::counters(
            &mut out,
            "p2p_node_requests",
            "Requests answered, by kind and outcome (failed: the exchange broke off).",
            None,
            requests.iter().map(|(labels, n)| (&labels[..], *n)),
        )?;
        let server = stats();
        families::counters(
            &mut out,
            "p2p_node_refusals",
            "Connections refused before a request was read, by reason.",
            None,
            [
                (&[("reason", "connection_cap")][..], server.refused_busy()),
                (&[("reason", "handshake")][..], server.handshakes_failed()),
            ],
        )?;
        families::gauge(
            &mut out,
            "p2p_node_connections_in_flight",
            "Connections accepted and being served now (not those through a relay).",
            None,
            level(server.in_flight()),
        )?;
        let now = COUNTS.registration.load(Relaxed);
        let states: Vec<([(&str, &str); 1], i64)> = STATES
            .iter()
            .enumerate()
            .map(|(i, state)| ([("state", *state)], i64::from(usize::from(now) == i)))
            .collect();
        families::gauges(
            &mut out,
            "p2p_node_registration_state",
            "Where the node stands with its relay: 1 for the state it is in.",
            None,
            states.iter().map(|(labels, n)| (&labels[..], *n)),
        )?;
        families::counter(
            &mut out,
            "p2p_node_log_lines_dropped",
            "Log lines dropped because stderr was not read.",
            None,
            plumbing::logging::dropped_lines(),
        )
    }
}

/// The registry `/metrics` serves.
pub fn families() -> Families {
    let mut families = Families::default();
    families.register_collector(Box::new(Collect));
    families
}

/// The `/status` page: what an operator without Prometheus wants to know.
pub fn status(about: &About) -> String {
    let mut page = String::new();
    let server = stats();
    let state = STATES[usize::from(COUNTS.registration.load(Relaxed)).min(STATES.len() - 1)];
    let answered: u64 = COUNTS
        .requests
        .iter()
        .flatten()
        .map(|n| n.load(Relaxed))
        .sum();
    let hashed = COUNTS.hashed_bytes.load(Relaxed);
    let hashing = Duration::from_nanos(COUNTS.hashing_nanos.load(Relaxed));
    let _ = writeln!(
        page,
        "peer-node {}, up {}",
        env!("CARGO_PKG_VERSION"),
        metrics::status::uptime(about.started.elapsed())
    );
    let _ = writeln!(page, "relay      {} ({state})", about.relay);
    let _ = writeln!(
        page,
        "sharing    {} files, {} bytes, from {}",
        COUNTS.shared_files.load(Relaxed),
        COUNTS.shared_bytes.load(Relaxed),
        about.dir.display()
    );
    let _ = writeln!(
        page,
        "hashing    {} files to go; {hashed} bytes hashed in {:.1} s",
        COUNTS.to_hash.load(Relaxed),
        hashing.as_secs_f64()
    );
    let _ = writeln!(
        page,
        "served     {} bytes verified, {} bytes plain",
        COUNTS.served_bytes[0].load(Relaxed),
        COUNTS.served_bytes[1].load(Relaxed)
    );
    let _ = writeln!(
        page,
        "requests   {answered} answered, {} connections in flight; refused {} at the cap, {} handshakes",
        server.in_flight(),
        server.refused_busy(),
        server.handshakes_failed()
    );
    let _ = writeln!(
        page,
        "log        {} lines dropped",
        plumbing::logging::dropped_lines()
    );
    page
}
