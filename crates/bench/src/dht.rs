//! Section 11: the DHT (issue 27). On a DHT of 50 mainline server nodes on
//! loopback (`dht::LocalDht`): how long a client takes to find a file's
//! holder, from a DHT node started for the lookup (as a `peer-client`
//! would), median and 95th percentile; and what one announce and one
//! lookup cost in packets and bytes, from which the cost of keeping 10 000
//! files announced follows.
//!
//! Packets are counted on `lo` in a network namespace of this section's own
//! (root only; `unshare(CLONE_NEWNET)` on one thread), where nothing else
//! sends: every datagram between the nodes, queries and answers both. Bytes
//! are IP bytes (lo's counter less its 14-byte link header per packet).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dht::{
    AnnounceConfig, Announcer, Bootstrap, DhtId, DhtNode, LocalDht, Lookup, NodeConfig,
    ScheduleConfig,
};

use crate::Settings;
use crate::report::{Row, Table, median, millis};

/// Nodes in the DHT.
const NODES: usize = 50;

/// Average re-announce interval of the default schedule: 80 % to 100 % of
/// 25 minutes.
fn mean_interval() -> Duration {
    let s = ScheduleConfig::default();
    s.reannounce.mul_f64(1.0 - s.spread / 2.0)
}

/// lo's transmit counters in this thread's namespace: (bytes, packets).
fn lo_counters() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/net/dev").ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("lo:"))?;
    let fields: Vec<u64> = line
        .split_once(':')?
        .1
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Some((*fields.get(8)?, *fields.get(9)?))
}

/// Packets and IP bytes sent on lo while `work` runs (None outside a
/// namespace of our own, where others' traffic would be counted).
fn counted<T>(private: bool, work: impl FnOnce() -> T) -> (T, Option<(u64, u64)>) {
    let before = private.then(lo_counters).flatten();
    let out = work();
    let after = private.then(lo_counters).flatten();
    let delta = before.zip(after).map(|((b0, p0), (b1, p1))| {
        let packets = p1 - p0;
        (packets, (b1 - b0).saturating_sub(14 * packets))
    });
    (out, delta)
}

/// The 95th percentile (nearest rank).
fn p95(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() as f64) * 0.95).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn client(net: &LocalDht, nodes: usize) -> Result<DhtNode, String> {
    let mut config = NodeConfig::new(Bootstrap::Given(net.bootstrap()[..nodes].to_vec()));
    config.bind = Ipv4Addr::LOCALHOST;
    DhtNode::start(&config).map_err(|e| e.to_string())
}

struct Figures {
    first: Vec<f64>,
    whole: Vec<f64>,
    announce: Option<(u64, u64)>,
    lookup: Option<(u64, u64)>,
    files: usize,
}

fn measure(s: &Settings, private: bool) -> Result<Figures, String> {
    let files = s.runs * 10;
    let net = LocalDht::start(NODES).map_err(|e| format!("cannot start the DHT: {e}"))?;
    let ids: Vec<DhtId> = (0..files)
        .map(|i| DhtId::derive(&blake3_of(i), None))
        .collect();

    // Announce every id from one holder, one at a time, and count.
    let holder = client(&net, 1)?;
    let port = 4000;
    let config = AnnounceConfig {
        in_flight: 1,
        ..AnnounceConfig::default()
    };
    eprintln!("announcing {files} ids on a {NODES}-node DHT...");
    let (announced, announce) = counted(private, || -> Result<(), String> {
        let announcer = Announcer::new(holder, config);
        announcer
            .replace(ids.iter().map(|id| (*id, port)))
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60 + files as u64);
        loop {
            let r = announcer.report();
            if r.fresh == files {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("announces did not finish: {r:?}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    announced?;

    // Look each up from a DHT node started for it, bootstrapped from one
    // node, as a client starting cold.
    eprintln!("{files} lookups, each from a new DHT node...");
    let (mut first, mut whole) = (Vec::new(), Vec::new());
    let (looked, lookup) = counted(private, || -> Result<(), String> {
        for id in &ids {
            let lookup = Lookup::new(client(&net, 1)?);
            let started = Instant::now();
            let mut holders = lookup.stream(*id, started + Duration::from_secs(10));
            if holders.next().is_none() {
                return Err(format!("no holder found for {id}"));
            }
            first.push(millis(started.elapsed()));
            holders.for_each(drop);
            whole.push(millis(started.elapsed()));
        }
        Ok(())
    });
    looked?;
    Ok(Figures {
        first,
        whole,
        announce,
        lookup,
        files,
    })
}

/// A stand-in content hash for file `i`.
fn blake3_of(i: usize) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&(i as u64).to_le_bytes());
    h[8..16].copy_from_slice(b"dhtbench");
    h
}

/// Runs `work` on a thread in a new network namespace with lo up, when this
/// process may make one (root).
fn in_private_net<T: Send>(work: impl FnOnce(bool) -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: moves only this thread into a new network namespace.
                let private = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0
                    && std::process::Command::new("ip")
                        .args(["link", "set", "lo", "up"])
                        .status()
                        .is_ok_and(|s| s.success());
                if !private {
                    eprintln!("not root: DHT packet counts left out");
                }
                work(private)
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let f = in_private_net(|private| measure(s, private))?;
    let (first, whole) = (median(&f.first), median(&f.whole));
    table.add(Row {
        what: format!("12. find a file's holder on a {NODES}-node DHT, from a new DHT node"),
        ours: format!("{first:.1} ms median"),
        baseline: format!("{:.1} ms 95th percentile", p95(&f.first)),
        ratio: None,
        target: "-".into(),
        met: None,
    });
    table.note(format!(
        "DHT: {} lookups, each from a DHT node started for it (bootstrapped from one node); \
         first holder in {first:.1} ms median, {:.1} ms p95; the lookup ends (every node it \
         will ask has answered) in {whole:.1} ms median, {:.1} ms p95",
        f.files,
        p95(&f.first),
        p95(&f.whole)
    ));
    if let (Some((ap, ab)), Some((lp, lb))) = (f.announce, f.lookup) {
        let n = f.files as f64;
        let (ap, ab, lp, lb) = (ap as f64 / n, ab as f64 / n, lp as f64 / n, lb as f64 / n);
        let per_hour = 10_000.0 * 3600.0 / mean_interval().as_secs_f64();
        table.note(format!(
            "DHT cost on {NODES} nodes: one announce {ap:.0} packets, {:.1} KB (IP); one lookup \
             from a new node {lp:.0} packets, {:.1} KB; 10 000 files re-announced every {:.1} \
             min on average: {per_hour:.0} announces/h, {:.2} M packets/h, {:.0} MB/h \
             ({:.0} kbit/s)",
            ab / 1000.0,
            lb / 1000.0,
            mean_interval().as_secs_f64() / 60.0,
            per_hour * ap / 1e6,
            per_hour * ab / 1e6,
            per_hour * ab * 8.0 / 3600.0 / 1000.0,
        ));
    }
    Ok(())
}
