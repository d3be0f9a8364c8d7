//! Section 16 (`--only resume`, root): resuming a broken `-o` save
//! (issue 26). A part is left as a run broken at 90 % leaves it (the
//! content's first 90 % in whole chunk groups, and a record saying they
//! were verified); the same command then resumes it, checking every kept
//! byte against the content's tree first.
//!
//! - On separate hosts (network namespaces on a bridge), the holder's
//!   uplink shaped to 100 Mbit/s (`tbf rate 100mbit burst 256kb latency
//!   100ms`): the resume beside a full fetch of the same file, in time
//!   (target <= 0.2x) and in bytes received by the client's interface
//!   (target <= 0.12x).
//! - On loopback, 1 GiB: the resume at 90 % beside the full fetch (the
//!   check of the kept bytes is most of its cost); a part kept whole,
//!   which is only hashed, as a re-verify rate beside blake3 hashing the
//!   same file in this process on one core; and an uninterrupted `-o`
//!   beside `-o --no-resume` (target: within noise).
//!
//! Each run takes the two fetches of a row in turn, alternating which goes
//! first; medians of all runs. Not in the default sections.

use std::fs;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use peer_client::part::{self, Record};
use proto::ContentHash;
use proto::content::{ByteRange, CHUNK_GROUP};

use crate::Settings;
use crate::lab::{Lab, in_ns, tool};
use crate::procs::{self, Proc};
use crate::report::{Row, Table, median, millis, show_runs};
use crate::swarm::make_file;

/// The shaped file: 256 MiB is 21 s at 100 Mbit/s.
const SHAPED_MIB: u64 = 256;
const RATE: &str = "100mbit";
const RELAY_IP: &str = "10.81.0.1";
const HOLDER_IP: &str = "10.81.0.11";
const CLIENT_IP: &str = "10.81.0.100";
const RELAY_PORT: u16 = 7000;
const NODE_PORT: u16 = 7100;
/// Where the part breaks: 90 % of the content, cut to whole groups.
const KEPT_PERCENT: u64 = 90;

pub fn run(settings: &Settings, table: &mut Table) -> Result<(), String> {
    shaped(settings, table)?;
    loopback(settings, table)
}

/// Leaves the part of a save of `file` to `target` as a run broken at
/// `percent` % leaves it: the bytes and a record. Returns the kept bytes.
fn leave_part(file: &Path, target: &Path, percent: u64) -> Result<u64, String> {
    let bytes = fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let size = bytes.len() as u64;
    let kept = (size * percent / 100).min(size) / CHUNK_GROUP * CHUNK_GROUP;
    let kept = if percent >= 100 { size } else { kept };
    let (part, rec) = part::paths(target).map_err(|e| e.to_string())?;
    // Synced, as a part left by an earlier run long since is: the client's
    // own sync before the rename must not pay for writing it.
    let mut f = fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    f.write_all(&bytes[..kept as usize])
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", part.display()))?;
    let mut record = Record::new(ContentHash::of(&bytes), size, "big.bin");
    record.groups.mark(
        ByteRange {
            offset: 0,
            len: kept,
        },
        size,
    );
    fs::write(&rec, record.encode()).map_err(|e| format!("{}: {e}", rec.display()))?;
    Ok(kept)
}

/// Checks that a save ended whole, then removes it.
fn check_saved(saved: &Path, size: u64) -> Result<(), String> {
    let got = fs::metadata(saved).map(|m| m.len()).unwrap_or(0);
    let _ = fs::remove_file(saved);
    if got != size {
        return Err(format!("{} has {got} bytes, not {size}", saved.display()));
    }
    Ok(())
}

/// Bytes received on the client namespace's eth0 so far.
fn rx_bytes(ns: &str) -> Result<u64, String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "cat",
            "/sys/class/net/eth0/statistics/rx_bytes",
        ])
        .output()
        .map_err(|e| format!("cannot read rx_bytes in {ns}: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("rx_bytes in {ns}: {e}"))
}

fn shaped(settings: &Settings, table: &mut Table) -> Result<(), String> {
    let mut lab = Lab::create("resume")?;
    let relay_ns = lab.host("relay", RELAY_IP)?;
    let holder_ns = lab.host("holder", HOLDER_IP)?;
    let client_ns = lab.host("client", CLIENT_IP)?;
    let share = settings.tmp.join("resume-share");
    fs::create_dir_all(&share).map_err(|e| format!("{}: {e}", share.display()))?;
    let file = share.join("big.bin");
    make_file(&file, SHAPED_MIB)?;
    let size = SHAPED_MIB << 20;

    let mut cmd = in_ns(&relay_ns, &settings.bins.path("relay"));
    cmd.arg(RELAY_PORT.to_string()).args(["--ttl", "3600"]);
    let mut relay = Proc::spawn("relay", cmd, settings.tmp.join("resume-relay.log"))?;
    relay.wait_for("listening on")?;
    let mut cmd = in_ns(&holder_ns, &settings.bins.path("peer-node"));
    cmd.arg(RELAY_IP)
        .arg(RELAY_PORT.to_string())
        .arg(&share)
        .args(["--port", &NODE_PORT.to_string(), "--cache"])
        .arg(settings.tmp.join("cache-resume"));
    let mut node = Proc::spawn("peer-node", cmd, settings.tmp.join("resume-node.log"))?;
    node.wait_for("registered with relay")?;
    node.wait_hashed()?;
    tool(
        "tc",
        &[
            "-n", &holder_ns, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", RATE, "burst",
            "256kb", "latency", "100ms",
        ],
    )?;

    let out = settings.tmp.join("resume-out");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let saved = out.join("big.bin");
    let client = settings.bins.path("peer-client");
    // (ms, bytes received)
    let fetch = |resume: bool| -> Result<(f64, u64), String> {
        if resume {
            leave_part(&file, &saved, KEPT_PERCENT)?;
        }
        let mut args: Vec<String> = ["netns", "exec", &client_ns].map(String::from).to_vec();
        args.push(client.to_string_lossy().into_owned());
        args.extend(
            [
                RELAY_IP,
                &RELAY_PORT.to_string(),
                "big.bin",
                "-o",
                &saved.to_string_lossy(),
            ]
            .map(String::from),
        );
        let before = rx_bytes(&client_ns)?;
        let run = procs::run_to_exit(
            Path::new("ip"),
            &args,
            &settings.tmp.join("resume-client.log"),
        )?;
        let moved = rx_bytes(&client_ns)? - before;
        check_saved(&saved, size)?;
        Ok((millis(run.elapsed), moved))
    };
    fetch(false)?;
    let (mut full, mut resumed) = (Vec::new(), Vec::new());
    for run in 0..settings.runs {
        if run % 2 == 0 {
            full.push(fetch(false)?);
            resumed.push(fetch(true)?);
        } else {
            resumed.push(fetch(true)?);
            full.push(fetch(false)?);
        }
    }
    let ms = |v: &[(f64, u64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let mb = |v: &[(f64, u64)]| v.iter().map(|x| x.1 as f64).collect::<Vec<_>>();
    show_runs("ms, resume/full", &ms(&resumed), &ms(&full));
    let (r, f) = (median(&ms(&resumed)), median(&ms(&full)));
    let (rb, fb) = (median(&mb(&resumed)), median(&mb(&full)));
    table.add(Row {
        what: format!(
            "16. {SHAPED_MIB} MiB -o broken at {KEPT_PERCENT} %, resumed over 100 Mbit/s, vs full fetch"
        ),
        ours: format!("{:.2} s", r / 1000.0),
        baseline: format!("{:.2} s full", f / 1000.0),
        ratio: Some(r / f),
        target: "<= 0.2".into(),
        met: Some(r / f <= 0.2),
    });
    table.add(Row {
        what: "16. the same, bytes received by the client's interface".into(),
        ours: format!("{:.1} MiB", rb / (1 << 20) as f64),
        baseline: format!("{:.1} MiB full", fb / (1 << 20) as f64),
        ratio: Some(rb / fb),
        target: "<= 0.12".into(),
        met: Some(rb / fb <= 0.12),
    });
    table.note(format!(
        "resume: the part is left as a run broken at {KEPT_PERCENT} % leaves it (the first \
         {KEPT_PERCENT} % in whole chunk groups, and its record); namespaces on a bridge, the \
         holder's uplink `tbf rate {RATE} burst 256kb latency 100ms`; wall time from spawn to \
         exit of `ip netns exec`, bytes from eth0's rx_bytes in the client's namespace \
         (headers and proofs included); medians of {} runs, alternating which goes first",
        settings.runs
    ));
    drop((node, relay, lab));
    Ok(())
}

fn loopback(settings: &Settings, table: &mut Table) -> Result<(), String> {
    let share = settings.tmp.join("resume-loop");
    fs::create_dir_all(&share).map_err(|e| format!("{}: {e}", share.display()))?;
    let file = share.join("big.bin");
    make_file(&file, settings.file_mib)?;
    let size = settings.file_mib << 20;
    let (_relay, relay) = procs::start_relay(&settings.bins, settings.tmp.join("rl-relay.log"))?;
    let mut node = procs::start_node(
        &settings.bins,
        relay,
        &share,
        settings.tmp.join("rl-node.log"),
    )?;
    node.wait_hashed()?;
    let out = settings.tmp.join("resume-loop-out");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let saved = out.join("big.bin");
    let fetch = |relay: SocketAddr, kept: Option<u64>, extra: &[&str]| -> Result<f64, String> {
        if let Some(percent) = kept {
            leave_part(&file, &saved, percent)?;
        }
        let mut args = vec![
            "127.0.0.1".to_string(),
            relay.port().to_string(),
            "big.bin".into(),
            "-o".into(),
            saved.to_string_lossy().into_owned(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = procs::run_client(&settings.bins, &args, &settings.tmp.join("rl-client.log"))?;
        check_saved(&saved, size)?;
        Ok(millis(run.elapsed))
    };
    fetch(relay, None, &[])?;

    // Resume at 90 % beside the full fetch.
    let pair = |a: &dyn Fn() -> Result<f64, String>,
                b: &dyn Fn() -> Result<f64, String>|
     -> Result<(Vec<f64>, Vec<f64>), String> {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for run in 0..settings.runs {
            if run % 2 == 0 {
                x.push(a()?);
                y.push(b()?);
            } else {
                y.push(b()?);
                x.push(a()?);
            }
        }
        Ok((x, y))
    };
    let (resumed, full) = pair(&|| fetch(relay, Some(KEPT_PERCENT), &[]), &|| {
        fetch(relay, None, &[])
    })?;
    show_runs("ms, resume/full", &resumed, &full);
    let (r, f) = (median(&resumed), median(&full));
    table.add(Row {
        what: format!(
            "16. loopback {} MiB -o broken at {KEPT_PERCENT} %, resumed, vs full fetch",
            settings.file_mib
        ),
        ours: format!("{r:.0} ms"),
        baseline: format!("{f:.0} ms full"),
        ratio: Some(r / f),
        target: "(figure)".into(),
        met: None,
    });

    // A part kept whole: only hashed, beside blake3 over the same file here.
    let hash_here = || -> Result<f64, String> {
        let started = Instant::now();
        let mut f = fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        std::hint::black_box(hasher.finalize());
        Ok(millis(started.elapsed()))
    };
    let (whole, hashed) = pair(&|| fetch(relay, Some(100), &[]), &hash_here)?;
    show_runs("ms, re-verify whole part/blake3 here", &whole, &hashed);
    let gib = size as f64 / (1u64 << 30) as f64;
    let (w, h) = (median(&whole), median(&hashed));
    table.add(Row {
        what: format!(
            "16. re-verify a kept {} MiB part (the whole client run), GiB/s",
            settings.file_mib
        ),
        ours: format!("{:.2} GiB/s", gib / (w / 1000.0)),
        baseline: format!("{:.2} GiB/s blake3, one core", gib / (h / 1000.0)),
        ratio: Some(h / w),
        target: ">= 1 GB/s".into(),
        met: Some(size as f64 / (w / 1000.0) >= 1e9),
    });

    // No cost when nothing breaks: -o beside -o --no-resume.
    let (with, without) = pair(&|| fetch(relay, None, &[]), &|| {
        fetch(relay, None, &["--no-resume"])
    })?;
    show_runs("ms, -o/-o --no-resume", &with, &without);
    let (a, b) = (median(&with), median(&without));
    table.add(Row {
        what: format!(
            "16. loopback {} MiB -o, uninterrupted, vs -o --no-resume",
            settings.file_mib
        ),
        ours: format!("{a:.0} ms"),
        baseline: format!("{b:.0} ms --no-resume"),
        ratio: Some(a / b),
        target: "<= 1.05".into(),
        met: Some(a / b <= 1.05),
    });
    table.note(
        "resume (loopback): the re-verify row times the whole client run (start, the relay, the \
         holder's first answer, hashing the kept part, the rename) against blake3 hashing the \
         same file in the benchmark's process (page cache, one core); its ratio is hashing's \
         time over the client's"
            .into(),
    );
    Ok(())
}
