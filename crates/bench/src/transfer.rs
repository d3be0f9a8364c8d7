//! Sections 1 and 2: one large file from a node to a client, beside the raw
//! floor over the same loopback (see [`crate::raw`]), and the peak memory of
//! node and client, which must not grow with the file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::Settings;
use crate::nginx::Nginx;
use crate::procs::{self, Proc};
use crate::raw;
use crate::report::{Row, Table, median, mib, show_runs};

/// The second, smaller file: memory must be the same for both.
const SMALL: u64 = 64 << 20;

/// Peak RSS each program must stay under, in KiB.
const RSS_LIMIT_KIB: u64 = 16 * 1024;

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let share = s.tmp.join("share");
    fs::create_dir_all(&share).map_err(|e| format!("cannot create {}: {e}", share.display()))?;
    let big_len = s.file_mib << 20;
    let big = share.join("big.bin");
    let small = share.join("small.bin");
    eprintln!(
        "writing a {} MiB and a 64 MiB file of real bytes...",
        s.file_mib
    );
    write_file(&big, big_len).map_err(|e| format!("cannot write {}: {e}", big.display()))?;
    write_file(&small, SMALL).map_err(|e| format!("cannot write {}: {e}", small.display()))?;
    // Both sides read from the page cache: the file is read once before.
    warm(&big)?;
    warm(&small)?;

    let (_relay, relay) = procs::start_relay(&s.bins, s.tmp.join("transfer-relay.log"))?;
    let node = procs::start_node(&s.bins, relay, &share, s.tmp.join("transfer-node.log"))?;
    let fetcher = Fetcher {
        s,
        relay,
        node: &node,
    };
    let sender = raw::Sender::start(&big, s.tmp.join("raw-sender.log"))?;
    let raw_log = s.tmp.join("raw-receiver.log");
    let size = size_label(big_len);

    // The second baseline, for the transfer to /dev/null only: curl has
    // nothing like -o's fsync.
    let nginx = match Nginx::missing() {
        Some(why) => {
            table.note(format!("nginx + curl baseline skipped: {why}"));
            None
        }
        None => {
            let nginx = Nginx::start(&share, &s.tmp.join("nginx"))?;
            table.note(format!(
                "nginx + curl: {} serving the same file with sendfile on and tcp_nopush on (one \
                 process), fetched with `curl -s -o /dev/null`, timed from start to exit",
                nginx.versions()
            ));
            Some(nginx)
        }
    };
    let curl_log = s.tmp.join("curl.log");

    // 1. To /dev/null, then to a file, each run interleaved with the
    // baselines, in an order that turns each run.
    let mut peaks = Peaks::default();
    for (sink, label) in [(false, "/dev/null"), (true, "-o FILE (fsync)")] {
        eprintln!("transfer of {size} to {label}, {} runs...", s.runs);
        let nginx = nginx.as_ref().filter(|_| !sink);
        // Wall times in seconds.
        let (mut ours, mut raw, mut curl) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..s.runs {
            let out = sink.then(|| s.tmp.join("out.bin"));
            let raw_out = sink.then(|| s.tmp.join("raw-out.bin"));
            let mut steps: Vec<Box<dyn FnMut() -> Result<(), String>>> = vec![
                Box::new(|| {
                    let t = fetcher.fetch("big.bin", out.as_deref(), big_len, &mut peaks.big)?;
                    ours.push(t.as_secs_f64());
                    Ok(())
                }),
                Box::new(|| {
                    let t = raw::receive_once(&sender, big_len, raw_out.as_deref(), &raw_log)?;
                    if let Some(out) = &raw_out {
                        let _ = fs::remove_file(out);
                    }
                    raw.push(t.elapsed.as_secs_f64());
                    Ok(())
                }),
            ];
            if let Some(nginx) = nginx {
                steps.push(Box::new(|| {
                    curl.push(nginx.fetch("big.bin", &curl_log)?.elapsed.as_secs_f64());
                    Ok(())
                }));
            }
            let n = steps.len();
            steps.rotate_left(run % n);
            for step in &mut steps {
                step()?;
            }
        }
        let rate =
            |secs: &[f64]| -> Vec<f64> { secs.iter().map(|t| mib_per_sec(big_len, *t)).collect() };
        show_runs("MiB/s, ours/raw", &rate(&ours), &rate(&raw));
        let (o, r) = (
            mib_per_sec(big_len, median(&ours)),
            mib_per_sec(big_len, median(&raw)),
        );
        table.add(Row {
            what: format!("1. transfer {size} to {label}"),
            ours: format!("{o:.0} MiB/s"),
            baseline: format!("{r:.0} MiB/s raw"),
            ratio: Some(o / r),
            target: ">= 0.85".into(),
            met: Some(o / r >= 0.85),
        });
        if nginx.is_some() {
            show_runs("ms, ours/nginx+curl", &millis_of(&ours), &millis_of(&curl));
            let (o, c) = (median(&ours), median(&curl));
            table.add(Row {
                what: format!("1. transfer {size} to {label}, wall time"),
                ours: format!("{:.0} ms", o * 1000.0),
                baseline: format!("{:.0} ms nginx+curl", c * 1000.0),
                ratio: Some(o / c),
                target: "<= 1.0".into(),
                met: Some(o / c <= 1.0),
            });
        }
    }

    table.note(format!(
        "transfer: a {size} file of pseudo-random bytes, written, synced and read once before, so \
         both sides read it from the page cache; each -o output is deleted after its run; \
         times are from process start to exit, for peer-client and for the raw receiver alike"
    ));

    // 2. The same with a 64 MiB file: the peaks must not move.
    eprintln!(
        "transfer of 64 MiB, {} runs each to /dev/null and to a file...",
        s.runs
    );
    for _ in 0..s.runs {
        fetcher.fetch("small.bin", None, SMALL, &mut peaks.small)?;
        fetcher.fetch(
            "small.bin",
            Some(&s.tmp.join("out.bin")),
            SMALL,
            &mut peaks.small,
        )?;
    }
    for (who, big, small) in [
        ("peer-node", peaks.big.node, peaks.small.node),
        ("peer-client", peaks.big.client, peaks.small.client),
    ] {
        // Flat: within 1 MiB of each other (allocator and page-table noise).
        let flat = big <= small + 1024;
        table.add(Row {
            what: format!("2. {who} peak RSS, {size} file"),
            ours: format!("{:.1} MiB", mib(big)),
            baseline: format!("{:.1} MiB at 64 MiB", mib(small)),
            ratio: Some(big as f64 / small as f64),
            target: "< 16 MiB, flat".into(),
            met: Some(big < RSS_LIMIT_KIB && small < RSS_LIMIT_KIB && flat),
        });
    }
    Ok(())
}

/// Peak RSS seen for node and client, in KiB, over every run of one size.
#[derive(Default)]
struct Peaks {
    big: Peak,
    small: Peak,
}

#[derive(Default)]
struct Peak {
    node: u64,
    client: u64,
}

/// Runs peer-client against the node under test.
struct Fetcher<'a> {
    s: &'a Settings,
    relay: SocketAddr,
    node: &'a Proc,
}

impl Fetcher<'_> {
    /// One peer-client fetch of `name` to /dev/null or to `out`; returns
    /// the client's wall time and records the peaks of both programs.
    fn fetch(
        &self,
        name: &str,
        out: Option<&Path>,
        len: u64,
        peak: &mut Peak,
    ) -> Result<Duration, String> {
        self.node.reset_peak()?;
        let mut args = vec![
            "127.0.0.1".to_string(),
            self.relay.port().to_string(),
            name.to_string(),
        ];
        if let Some(out) = out {
            args.push("-o".into());
            args.push(out.display().to_string());
        }
        let run = procs::run_client(&self.s.bins, &args, &self.s.tmp.join("client.log"))?;
        peak.client = peak.client.max(run.peak_kib);
        peak.node = peak.node.max(self.node.memory()?.peak_kib);
        if let Some(out) = out {
            check_len(out, len)?;
            let _ = fs::remove_file(out);
        }
        Ok(run.elapsed)
    }
}

/// Writes `len` pseudo-random bytes (not a sparse file: every page is real)
/// and syncs them, so writeback does not run during the measurements.
pub(crate) fn write_file(path: &Path, len: u64) -> io::Result<()> {
    let mut file = File::create(path)?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ len;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            // xorshift64: cheap, and no page is all zeros or a repeat.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// The shared directory of `section` (`TMP/SECTION-share`) holding `big.bin`
/// of the settings' size, written and read once into the page cache;
/// returns the directory, the file and its length.
pub(crate) fn shared_big_file(
    s: &crate::Settings,
    section: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf, u64), String> {
    let share = s.tmp.join(format!("{section}-share"));
    fs::create_dir_all(&share).map_err(|e| format!("cannot create {}: {e}", share.display()))?;
    let len = s.file_mib << 20;
    let big = share.join("big.bin");
    eprintln!("{section}: writing a {} MiB file...", s.file_mib);
    write_file(&big, len).map_err(|e| format!("cannot write {}: {e}", big.display()))?;
    warm(&big)?;
    Ok((share, big, len))
}

/// Reads the whole file once, so every measurement finds it in the page cache.
pub(crate) fn warm(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    io::copy(&mut file, &mut io::sink())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(())
}

fn check_len(path: &Path, len: u64) -> Result<(), String> {
    let got = fs::metadata(path)
        .map_err(|e| format!("{} was not saved: {e}", path.display()))?
        .len();
    if got != len {
        return Err(format!("{} has {got} bytes, not {len}", path.display()));
    }
    Ok(())
}

fn mib_per_sec(len: u64, secs: f64) -> f64 {
    len as f64 / (1024.0 * 1024.0) / secs
}

fn millis_of(secs: &[f64]) -> Vec<f64> {
    secs.iter().map(|t| t * 1000.0).collect()
}

fn size_label(len: u64) -> String {
    if len >= 1 << 30 && len.is_multiple_of(1 << 30) {
        format!("{} GiB", len >> 30)
    } else {
        format!("{} MiB", len >> 20)
    }
}
