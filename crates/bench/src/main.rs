//! p2p-bench: the relay, peer-node and peer-client measured side by side
//! with the floor, each figure beside a baseline run in the same process,
//! interleaved with it, medians of several runs. See docs/BENCHMARKS.md.
//!
//! Module map:
//! - [`procs`]: the release binaries as child processes: start, readiness
//!   from their logs, memory from /proc and wait4.
//! - [`transfer`]: sections 1 and 2, a large file node to client beside
//!   the raw floor, and the peak memory of both.
//! - [`raw`]: that floor: a sendfile server and a read-until-EOF receiver,
//!   this binary re-executed in hidden modes.
//! - [`nginx`]: the transfer's second baseline, nginx + curl, when both
//!   are installed.
//! - [`load`]: the load generator, the bare baseline server, fake
//!   registrations from loopback addresses.
//! - [`relay`]: sections 3 and 5, list requests per second and one list
//!   answer at 100 000 nodes.
//! - [`lookup`]: section 4, a file on the last of 50 nodes versus the first.
//! - [`verified`]: section 6, verified transfers beside unverified ones,
//!   hashing rate and first-fetch latency.
//! - [`index`]: section 7, the relay's index at 1 000 nodes x 1 000 files.
//! - [`relayed`]: section 8, a fetch through the relay versus direct, the
//!   relay's CPU per relayed GiB, and its memory with 1 000 relayed nodes.
//! - [`swarm`]: section 9 (`--only multi`, root), one file from three
//!   shaped holders at once beside one holder and beside aria2c.
//! - [`secure`]: section 10, private networks: an encrypted transfer beside
//!   a plain one, memory with the secret, handshake cost, cipher choice.
//! - [`scrape`]: section 11, `--metrics`: list requests per second with
//!   metrics on beside off, and one scrape at 100 000 nodes.
//! - [`dht`]: section 12, the DHT: time to find a holder on 50 nodes, and
//!   what announces and lookups cost in packets and bytes.
//! - [`punch`]: section 13 (`--only punch`, root), hole punching: a punched
//!   transfer beside the same path forwarded and beside the relay; per
//!   kind of NAT, how often punches get through and how fast.
//! - [`blind`]: section 14, the blind index beside the plain one: relay
//!   memory and who-has at 1 000 x 1 000, listing 10 000 and 100 000 records.
//! - [`dht_fetch`]: section 15, a fetch by hash with the relay dead (the
//!   holder found on a 50-node DHT) against the same fetch through the relay.
//! - [`resume`]: section 16 (`--only resume`, root), resuming a broken
//!   `-o`: at 90 % over a shaped link beside a full fetch, the re-verify
//!   rate of kept bytes, and an uninterrupted `-o` beside `--no-resume`.
//! - [`speed`]: section `speed` (issue 31), every way a large file travels
//!   in one run: verified vs nginx + curl and vs unverified, encrypted vs
//!   plain, `-o FILE` vs the raw receiver, with each client's CPU seconds.
//! - [`hosts`]: section `hosts` (`--only hosts`, root), the verified fetch
//!   between two hosts (namespaces over veth) beside nginx + curl and GetFile.
//! - [`lab`]: network namespaces and NAT routers for sections 9 and 13.
//! - [`report`]: medians and the Markdown table.

mod blind;
mod dht;
mod dht_fetch;
mod hosts;
mod index;
mod lab;
mod load;
mod lookup;
mod nginx;
mod procs;
mod punch;
mod raw;
mod relay;
mod relayed;
mod report;
mod resume;
mod scrape;
mod secure;
mod speed;
mod swarm;
mod transfer;
mod verified;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use procs::Bins;
use report::Table;

const USAGE: &str = "\
usage: p2p-bench [--quick] [--runs N] [--only SECTIONS] [--bin-dir DIR] [--no-build] [--busy N]

  --quick         fewer runs, a 256 MiB file, shorter load windows, 20 lookup nodes
  --runs N        runs per measurement (default 7, quick 3)
  --only LIST     comma-separated sections: transfer, relay, lookup, scale, verified,
                  index, relayed, secure, metrics, dht, blind, dhtfetch, speed; multi (root:
                  namespaces, tc; aria2c and nginx for its anchor), punch (root: namespaces,
                  nftables), resume (root: namespaces, tc) and hosts (root: namespaces;
                  nginx and curl beside) only when named
  --bin-dir DIR   measure the relay, peer-node and peer-client in DIR
  --no-build      do not run `cargo build --release` first
  --busy N        N threads spinning beside the benchmark for its whole run (a loaded machine)";

/// What every section needs.
pub struct Settings {
    pub bins: Bins,
    /// A temp dir for files, logs and outputs; removed at the end.
    pub tmp: PathBuf,
    pub runs: usize,
    /// Size of the large file, in MiB.
    pub file_mib: u64,
    /// How long each load window lasts.
    pub window: Duration,
    /// Concurrent clients of the load generator.
    pub clients: usize,
    /// The larger table of section 3.
    pub many_nodes: usize,
    pub lookup_nodes: usize,
    pub scale_nodes: usize,
    /// Nodes and files per node of the index section.
    pub index_nodes: usize,
    pub index_files: usize,
}

const SECTIONS: [&str; 13] = [
    "transfer", "relay", "lookup", "scale", "verified", "index", "relayed", "secure", "metrics",
    "dht", "blind", "dhtfetch", "speed",
];
/// Sections run only when named with --only (they need root).
const EXTRA_SECTIONS: [&str; 4] = ["multi", "punch", "resume", "hosts"];

struct Args {
    quick: bool,
    runs: Option<usize>,
    only: Vec<String>,
    bin_dir: Option<PathBuf>,
    build: bool,
    busy: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        runs: None,
        only: SECTIONS.map(String::from).to_vec(),
        bin_dir: None,
        build: true,
        busy: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--no-build" => args.build = false,
            "--runs" => {
                let n = value("--runs")?;
                args.runs = Some(
                    n.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("bad --runs {n}"))?,
                );
            }
            "--only" => {
                args.only = value("--only")?.split(',').map(str::to_string).collect();
                if let Some(bad) = args.only.iter().find(|s| {
                    !SECTIONS.contains(&s.as_str()) && !EXTRA_SECTIONS.contains(&s.as_str())
                }) {
                    return Err(format!(
                        "unknown section {bad}; sections: {}",
                        [&SECTIONS[..], &EXTRA_SECTIONS[..]].concat().join(", ")
                    ));
                }
            }
            "--busy" => {
                let n = value("--busy")?;
                args.busy = n.parse().map_err(|_| format!("bad --busy {n}"))?;
            }
            "--bin-dir" => args.bin_dir = Some(value("--bin-dir")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if raw::dispatch(&args) || load::dispatch(&args) || verified::dispatch(&args) {
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2p-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let began = Instant::now();
    let bins = Bins::prepare(args.bin_dir, args.build)?;
    let _busy = Busy::start(args.busy);
    let tmp = tempfile::Builder::new()
        .prefix("p2p-bench.")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let settings = Settings {
        bins,
        tmp: tmp.path().to_path_buf(),
        runs: args.runs.unwrap_or(if args.quick { 3 } else { 7 }),
        file_mib: if args.quick { 256 } else { 1024 },
        window: Duration::from_millis(if args.quick { 500 } else { 1500 }),
        clients: 32,
        many_nodes: 10_000,
        lookup_nodes: if args.quick { 20 } else { 50 },
        scale_nodes: 100_000,
        index_nodes: if args.quick { 200 } else { 1000 },
        index_files: if args.quick { 200 } else { 1000 },
    };
    eprintln!("binaries: {}", settings.bins.dir().display());
    let mut table = Table::default();
    for section in &args.only {
        let result = match section.as_str() {
            "transfer" => transfer::run(&settings, &mut table),
            "relay" => relay::throughput(&settings, &mut table),
            "lookup" => lookup::run(&settings, &mut table),
            "scale" => relay::scale(&settings, &mut table),
            "verified" => verified::run(&settings, &mut table),
            "index" => index::run(&settings, &mut table),
            "relayed" => relayed::run(&settings, &mut table),
            "multi" => swarm::run(&settings, &mut table),
            "punch" => punch::run(&settings, &mut table),
            "secure" => secure::run(&settings, &mut table),
            "metrics" => scrape::run(&settings, &mut table),
            "dht" => dht::run(&settings, &mut table),
            "blind" => blind::run(&settings, &mut table),
            "dhtfetch" => dht_fetch::run(&settings, &mut table),
            "resume" => resume::run(&settings, &mut table),
            "speed" => speed::run(&settings, &mut table),
            "hosts" => hosts::run(&settings, &mut table),
            _ => unreachable!("sections are checked when parsed"),
        };
        result.map_err(|e| format!("{section}: {e}"))?;
    }
    println!("{}", machine());
    println!(
        "medians of {} runs, each beside its baseline from the same run; took {:.0} s\n",
        settings.runs,
        began.elapsed().as_secs_f64()
    );
    println!("{}", table.render());
    Ok(())
}

/// Threads that spin until dropped: the "loaded" figures of issue 31 (two
/// busy loops beside the benchmark, as on a user's machine that is not idle).
struct Busy {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Busy {
    fn start(threads: usize) -> Busy {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for _ in 0..threads {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            });
        }
        if threads > 0 {
            eprintln!("{threads} busy threads spinning beside the benchmark");
        }
        Busy { stop }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One line about the machine: cores, CPU model, memory, kernel, load.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    let load = read("/proc/loadavg");
    format!(
        "machine: {cores} cores, {model}, {:.1} GiB memory, Linux {}; load average {}",
        mem_kib as f64 / (1024.0 * 1024.0),
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
