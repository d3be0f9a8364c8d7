//! The relay's metrics (`relay --metrics ADDR:PORT`, crates/metrics) and
//! its status page.
//!
//! Counts are plain atomics, process-wide like a Prometheus client's
//! default registry: the code that sees an event adds one, with no lock
//! and no lookup by label, so the list path stays as fast as without
//! metrics (docs/BENCHMARKS.md). Levels (nodes, index, circuits open) are
//! read from the live tables at scrape time, so they never drift.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use metrics::families::{self, level};
use metrics::prometheus_client::collector::Collector;
use metrics::prometheus_client::encoding::DescriptorEncoder;
use metrics::prometheus_client::registry::{Registry as Families, Unit};
use net::server::{Handler, Metered, OUTCOMES, RequestCounts, stats};
use proto::Request;

use crate::circuit::Circuits;
use crate::control::Controls;
use crate::{Indexes, Registry};

/// Request kinds, as the `kind` label.
const KINDS: [&str; 14] = [
    "register",
    "unregister",
    "list_nodes",
    "list_nodes_long",
    "catalog",
    "who_has",
    "search",
    "hello",
    "control",
    "open_circuit",
    "join_circuit",
    "keepalive",
    "for_a_node",
    "punch",
];

fn kind(request: &Request) -> usize {
    match request {
        Request::Register(_) => 0,
        Request::Unregister(_) => 1,
        Request::ListNodes => 2,
        Request::ListNodesLong => 3,
        // The long forms are the same requests with pending hashes.
        // The blind index's are the same requests in a private network;
        // its listing takes the place of search.
        Request::Catalog(_) | Request::CatalogLong(_) | Request::BlindCatalog(_) => 4,
        Request::WhoHas(_) | Request::WhoHasLong(_) | Request::BlindWhoHas(_) => 5,
        Request::Search(_) | Request::BlindList(_) => 6,
        Request::Hello => 7,
        Request::Control(_) | Request::ControlPunch(_) => 8,
        Request::OpenCircuit(_) => 9,
        Request::JoinCircuit(_) => 10,
        Request::Keepalive => 11,
        Request::Punch(_) | Request::JoinPunch(_) | Request::ListPunchable => 13,
        Request::GetFile(_)
        | Request::ListFiles
        | Request::GetRange(_)
        | Request::ListFilesLong => 12,
    }
}

/// Why the relay refused something, as the `reason` label. The server
/// skeleton counts two more: `connection_cap` and `handshake`.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// A registration without the right `--token`.
    Token = 0,
    /// `--max-nodes-per-ip` reached.
    NodesPerAddress = 1,
    /// The table is full and nobody holds more entries than the caller.
    TableFull = 2,
    /// A circuit past one of the circuit caps.
    CircuitCap = 3,
}

const REASONS: [&str; 4] = ["token", "nodes_per_address", "table_full", "circuit_cap"];

const fn zero() -> AtomicU64 {
    AtomicU64::new(0)
}

struct Counts {
    requests: RequestCounts<{ KINDS.len() }>,
    refusals: [AtomicU64; REASONS.len()],
    /// Dial-backs that reached the node, and that did not.
    dialbacks: [AtomicU64; 2],
    circuits: AtomicU64,
    relayed_bytes: AtomicU64,
}

static COUNTS: Counts = Counts {
    requests: [const { [const { zero() }; OUTCOMES.len()] }; KINDS.len()],
    refusals: [const { zero() }; REASONS.len()],
    dialbacks: [const { zero() }; 2],
    circuits: zero(),
    relayed_bytes: zero(),
};

/// Counts a refusal.
pub fn refused(why: Refusal) {
    COUNTS.refusals[why as usize].fetch_add(1, Relaxed);
}

/// Counts a dial-back that was made (not one answered from its cache).
pub fn dialed_back(reached: bool) {
    COUNTS.dialbacks[usize::from(!reached)].fetch_add(1, Relaxed);
}

/// Counts a circuit that was open and has closed, with what it carried.
pub fn circuit_closed(bytes: u64) {
    COUNTS.circuits.fetch_add(1, Relaxed);
    COUNTS.relayed_bytes.fetch_add(bytes, Relaxed);
}

/// The relay's service with each request counted by kind and outcome.
pub fn metered<H: Handler>(service: H) -> Metered<H, { KINDS.len() }> {
    Metered {
        handler: service,
        kind,
        counts: &COUNTS.requests,
    }
}

/// What a scrape reads besides the counts: the live tables.
#[derive(Clone)]
pub struct Tables {
    pub registry: Registry,
    pub index: Indexes,
    /// None with `--no-relaying`.
    pub relaying: Option<(Circuits, Controls)>,
    pub started: Instant,
}

impl fmt::Debug for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tables")
    }
}

impl Tables {
    /// Nodes listed (direct, relayed). A relayed node is one with a control
    /// connection, so the count needs no walk over the table.
    fn nodes(&self) -> (usize, usize) {
        let all = self.registry.len();
        let relayed = self.relaying.as_ref().map_or(0, |(_, c)| c.len()).min(all);
        (all - relayed, relayed)
    }

    fn circuits_open(&self) -> usize {
        self.relaying.as_ref().map_or(0, |(c, _)| c.open_count())
    }
}

impl Collector for Tables {
    fn encode(&self, mut out: DescriptorEncoder) -> fmt::Result {
        let (direct, relayed) = self.nodes();
        families::gauges(
            &mut out,
            "p2p_relay_nodes",
            "Nodes listed now, by how clients reach them.",
            None,
            [
                (&[("mode", "direct")][..], level(direct)),
                (&[("mode", "relayed")][..], level(relayed)),
            ],
        )?;
        let index = self.index.stats();
        families::gauge(
            &mut out,
            "p2p_relay_index_entries",
            "Files in the index (one per file per node).",
            None,
            level(index.entries),
        )?;
        families::gauge(
            &mut out,
            "p2p_relay_index_names",
            "Distinct file names in the index.",
            None,
            level(index.names),
        )?;
        families::gauge(
            &mut out,
            "p2p_relay_index_name",
            "Bytes of the distinct names in the index.",
            Some(Unit::Bytes),
            level(index.name_bytes),
        )?;
        families::gauge(
            &mut out,
            "p2p_relay_index_hashes",
            "Distinct contents (BLAKE3 hashes) in the index.",
            None,
            level(index.contents),
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
            "p2p_relay_requests",
            "Requests answered, by kind and outcome (failed: the exchange broke off).",
            None,
            requests.iter().map(|(labels, n)| (&labels[..], *n)),
        )?;
        let server = stats();
        let mut refusals: Vec<([(&str, &str); 1], u64)> = REASONS
            .iter()
            .zip(&COUNTS.refusals)
            .map(|(reason, n)| ([("reason", *reason)], n.load(Relaxed)))
            .collect();
        refusals.push(([("reason", "connection_cap")], server.refused_busy()));
        refusals.push(([("reason", "handshake")], server.handshakes_failed()));
        families::counters(
            &mut out,
            "p2p_relay_refusals",
            "Connections, registrations and circuits refused, by reason.",
            None,
            refusals.iter().map(|(labels, n)| (&labels[..], *n)),
        )?;
        families::counters(
            &mut out,
            "p2p_relay_dialbacks",
            "Dial-backs made to registering nodes, by result.",
            None,
            [
                (&[("result", "ok")][..], COUNTS.dialbacks[0].load(Relaxed)),
                (
                    &[("result", "failed")][..],
                    COUNTS.dialbacks[1].load(Relaxed),
                ),
            ],
        )?;
        families::gauge(
            &mut out,
            "p2p_relay_circuits_open",
            "Relayed circuits open or being set up now.",
            None,
            level(self.circuits_open()),
        )?;
        families::counter(
            &mut out,
            "p2p_relay_circuits",
            "Relayed circuits that were open and have closed.",
            None,
            COUNTS.circuits.load(Relaxed),
        )?;
        families::counter(
            &mut out,
            "p2p_relay_relayed",
            "Bytes carried by closed circuits, both directions.",
            Some(Unit::Bytes),
            COUNTS.relayed_bytes.load(Relaxed),
        )?;
        families::gauge(
            &mut out,
            "p2p_relay_connections_in_flight",
            "Protocol connections being served now.",
            None,
            level(server.in_flight()),
        )?;
        families::counter(
            &mut out,
            "p2p_relay_log_lines_dropped",
            "Log lines dropped because stderr was not read.",
            None,
            plumbing::logging::dropped_lines(),
        )
    }
}

/// The registry `/metrics` serves.
pub fn families(tables: &Tables) -> Families {
    let mut families = Families::default();
    families.register_collector(Box::new(tables.clone()));
    families
}

/// The `/status` page: what an operator without Prometheus wants to know.
pub fn status(tables: &Tables) -> String {
    let mut page = String::new();
    let (direct, relayed) = tables.nodes();
    let index = tables.index.stats();
    let server = stats();
    let answered: u64 = COUNTS
        .requests
        .iter()
        .flatten()
        .map(|n| n.load(Relaxed))
        .sum();
    let _ = writeln!(
        page,
        "relay {}, up {}",
        env!("CARGO_PKG_VERSION"),
        metrics::status::uptime(tables.started.elapsed())
    );
    let _ = writeln!(
        page,
        "nodes      {} active ({direct} direct, {relayed} relayed)",
        direct + relayed
    );
    let _ = writeln!(
        page,
        "index      {} files from {} nodes, {} names ({} bytes), {} contents",
        index.entries, index.nodes, index.names, index.name_bytes, index.contents
    );
    match &tables.relaying {
        Some((circuits, _)) => {
            let _ = writeln!(
                page,
                "circuits   {} open (at most {}), {} closed, {} bytes relayed",
                circuits.open_count(),
                circuits.limits().max_total,
                COUNTS.circuits.load(Relaxed),
                COUNTS.relayed_bytes.load(Relaxed)
            );
        }
        None => {
            let _ = writeln!(page, "circuits   none: relaying is off (--no-relaying)");
        }
    }
    let _ = writeln!(
        page,
        "requests   {answered} answered, {} connections in flight",
        server.in_flight()
    );
    let mut by_kind: Vec<String> = KINDS
        .iter()
        .zip(&COUNTS.requests)
        .filter_map(|(kind, row)| {
            let n: u64 = row.iter().map(|n| n.load(Relaxed)).sum();
            (n > 0).then(|| format!("{kind} {n}"))
        })
        .collect();
    if by_kind.is_empty() {
        by_kind.push("none yet".into());
    }
    let _ = writeln!(page, "           {}", by_kind.join(", "));
    let refusals: u64 = COUNTS.refusals.iter().map(|n| n.load(Relaxed)).sum::<u64>()
        + server.refused_busy()
        + server.handshakes_failed();
    let _ = writeln!(
        page,
        "refused    {refusals} (connection cap {}, handshake {}, token {}, per-address cap {}, full table {}, circuit caps {})",
        server.refused_busy(),
        server.handshakes_failed(),
        COUNTS.refusals[0].load(Relaxed),
        COUNTS.refusals[1].load(Relaxed),
        COUNTS.refusals[2].load(Relaxed),
        COUNTS.refusals[3].load(Relaxed),
    );
    let _ = writeln!(
        page,
        "dial-backs {} reached, {} failed",
        COUNTS.dialbacks[0].load(Relaxed),
        COUNTS.dialbacks[1].load(Relaxed)
    );
    let _ = writeln!(
        page,
        "log        {} lines dropped",
        plumbing::logging::dropped_lines()
    );
    page
}
