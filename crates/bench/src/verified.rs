//! Section 6: verified transfers. A verified 1 GiB fetch (peer-client's
//! range request: hash pairs and spliced chunk groups, every group
//! checked) beside the unverified GetFile path to the same node in the same
//! run; the peak memory of node and client; BLAKE3 hashing on one core; and
//! how long the first fetch of a just-changed 1 GiB file waits for its hash.
//!
//! The unverified side is this binary re-executed as a GetFile client
//! (`__getfile`): what peer-client did before range requests, the same
//! 1 MiB reads to the same stdout (/dev/null), timed from process start to
//! exit like peer-client (which also asks the relay, about 2 ms).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use net::exchange::{Connection, Timeouts};
use proto::content::hash_and_outboard;
use proto::{FileRequest, RangeRequest, Request, Response, Target};

use crate::Settings;
use crate::procs::{self, Proc};
use crate::report::{Row, Table, median, mib, show_runs};
use crate::transfer::{warm, write_file};

pub(crate) const GETFILE: &str = "__getfile";

/// The client's read buffer (peer-client's verify::CHUNK).
const BUF: usize = 1024 * 1024;

/// Peak RSS each program must stay under, in KiB.
const RSS_LIMIT_KIB: u64 = 16 * 1024;

/// Runs the hidden GetFile client if asked; returns false otherwise.
pub fn dispatch(args: &[String]) -> bool {
    if args.first().map(String::as_str) != Some(GETFILE) || args.len() != 3 {
        return false;
    }
    if let Err(e) = get_file(&args[1], &args[2]) {
        eprintln!("{GETFILE}: {e}");
        std::process::exit(1);
    }
    true
}

/// One unverified fetch: GetFile, then the body to stdout, 256 KiB a read.
fn get_file(addr: &str, name: &str) -> Result<(), String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut conn = Connection::open(addr, &Timeouts::default()).map_err(|e| e.to_string())?;
    let request = Request::GetFile(FileRequest {
        name: name.into(),
        offset: 0,
    });
    let header = match conn.request(&request).map_err(|e| e.to_string())? {
        Response::File(h) => h,
        other => return Err(format!("unexpected answer {other:?}")),
    };
    let mut out = File::from(
        io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?,
    );
    let mut body = conn.body(header.body_len());
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        total += n as u64;
    }
    if total != header.body_len() {
        return Err(format!("received {total} of {} bytes", header.body_len()));
    }
    Ok(())
}

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let share = s.tmp.join("verified-share");
    let cache = s.tmp.join("verified-cache");
    for dir in [&share, &cache] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let len = s.file_mib << 20;
    let big = share.join("big.bin");
    eprintln!("verified: writing a {} MiB file...", s.file_mib);
    write_file(&big, len).map_err(|e| format!("cannot write {}: {e}", big.display()))?;
    warm(&big)?;
    let size = format!("{} MiB", s.file_mib);

    // Hashing on one core, in this process: read from the page cache, hash,
    // and write the outboard (to a sink here).
    let mut rates = Vec::new();
    for _ in 0..s.runs.min(5) {
        let file = File::open(&big).map_err(|e| e.to_string())?;
        let start = Instant::now();
        hash_and_outboard(file, len, io::sink()).map_err(|e| e.to_string())?;
        rates.push(len as f64 / 1e9 / start.elapsed().as_secs_f64());
    }
    let hash_rate = median(&rates);

    let (_relay, relay) = procs::start_relay(&s.bins, s.tmp.join("verified-relay.log"))?;
    let mut cmd = Command::new(s.bins.path("peer-node"));
    cmd.arg("127.0.0.1")
        .arg(relay.port().to_string())
        .arg(&share)
        .args(["--bind", "127.0.0.1", "--cache"])
        .arg(&cache);
    let mut node = Proc::spawn("peer-node", cmd, s.tmp.join("verified-node.log"))?;
    let addr = node.wait_for_addr("listening on ")?;
    node.wait_for("registered with relay")?;
    let scan_line = node.wait_hashed()?;
    let scan_ms: f64 = scan_line
        .split(" in ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::NAN);

    // Verified (peer-client) beside unverified (GetFile), interleaved.
    eprintln!(
        "verified: {size} to /dev/null, verified and not, {} runs...",
        s.runs
    );
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    let (mut node_peak, mut client_peak) = (0u64, 0u64);
    let log = s.tmp.join("verified-client.log");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
    for run in 0..s.runs {
        let mut verified = || -> Result<(), String> {
            node.reset_peak()?;
            let args = [
                "127.0.0.1".to_string(),
                relay.port().to_string(),
                "big.bin".into(),
            ];
            let r = procs::run_client(&s.bins, &args, &log)?;
            node_peak = node_peak.max(node.memory()?.peak_kib);
            client_peak = client_peak.max(r.peak_kib);
            let text = fs::read_to_string(&log).unwrap_or_default();
            if !text.contains(", blake3 ") {
                return Err(format!("the fetch was not verified:\n{text}"));
            }
            ours.push(r.elapsed.as_secs_f64());
            Ok(())
        };
        let mut unverified = || -> Result<(), String> {
            let args = [GETFILE.to_string(), addr.to_string(), "big.bin".into()];
            let r = procs::run_to_exit(&exe, &args, &log)?;
            plain.push(r.elapsed.as_secs_f64());
            Ok(())
        };
        if run % 2 == 0 {
            unverified()?;
            verified()?;
        } else {
            verified()?;
            unverified()?;
        }
    }
    let mibs =
        |secs: &[f64]| -> Vec<f64> { secs.iter().map(|t| len as f64 / 1048576.0 / t).collect() };
    show_runs("MiB/s, verified/GetFile", &mibs(&ours), &mibs(&plain));
    let (o, p) = (median(&ours), median(&plain));
    table.add(Row {
        what: format!("6. verified {size} to /dev/null (time)"),
        ours: format!(
            "{:.0} ms ({:.0} MiB/s)",
            o * 1e3,
            len as f64 / 1048576.0 / o
        ),
        baseline: format!("{:.0} ms unverified GetFile", p * 1e3),
        ratio: Some(o / p),
        target: "<= 1.1".into(),
        met: Some(o / p <= 1.1),
    });
    for (who, peak) in [("peer-node", node_peak), ("peer-client", client_peak)] {
        table.add(Row {
            what: format!("6. {who} peak RSS, verified {size}"),
            ours: format!("{:.1} MiB", mib(peak)),
            baseline: "-".into(),
            ratio: None,
            target: "< 16 MiB".into(),
            met: Some(peak < RSS_LIMIT_KIB),
        });
    }
    table.add(Row {
        what: "6. BLAKE3 tree hashing, one core".into(),
        ours: format!("{hash_rate:.2} GB/s"),
        baseline: format!(
            "{:.2} GB/s in the node's scan (nice 19)",
            len as f64 / 1e9 / (scan_ms / 1e3)
        ),
        ratio: None,
        target: ">= 1 GB/s".into(),
        met: Some(hash_rate >= 1.0),
    });

    // First fetch of a just-changed file: the node hashes it before it can
    // send the header. A new mtime (and so ctime) makes a new version.
    let mut first = Vec::new();
    let mut again = Vec::new();
    for _ in 0..s.runs.min(5) {
        let file = File::options()
            .write(true)
            .open(&big)
            .map_err(|e| e.to_string())?;
        file.set_modified(SystemTime::now())
            .map_err(|e| e.to_string())?;
        drop(file);
        first.push(time_to_header(addr)?);
        again.push(time_to_header(addr)?);
    }
    let (f, a) = (median(&first), median(&again));
    table.add(Row {
        what: format!("6. first fetch of a just-changed {size} file, to the header"),
        ours: format!("{:.0} ms", f * 1e3),
        baseline: format!("{:.2} ms once hashed", a * 1e3),
        ratio: None,
        target: "stated".into(),
        met: None,
    });
    table.note(
        "verified: proof overhead 64 bytes per 64 KiB chunk group (0.1%); the unverified side is \
         a GetFile client in this binary (1 MiB reads to /dev/null, no relay lookup); hashing \
         in this process reads the file from the page cache and builds the outboard"
            .into(),
    );
    Ok(())
}

/// Connect, ask for one byte of big.bin, read the range header: seconds.
fn time_to_header(addr: SocketAddr) -> Result<f64, String> {
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs(120),
    };
    let start = Instant::now();
    let mut conn = Connection::open(addr, &timeouts).map_err(|e| e.to_string())?;
    let request = Request::GetRange(RangeRequest {
        target: Target::Name("big.bin".into()),
        offset: 0,
        len: 1,
    });
    match conn.request(&request).map_err(|e| e.to_string())? {
        Response::Range(_) => Ok(start.elapsed().as_secs_f64()),
        other => Err(format!("unexpected answer {other:?}")),
    }
}
