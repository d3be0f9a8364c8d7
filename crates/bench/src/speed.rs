//! Section `speed` (issue 31): every way a large file travels, in one run,
//! turn by turn, so that each ratio compares figures taken moments apart:
//! the verified fetch to /dev/null beside nginx + curl and beside the
//! unverified GetFile of the same node; the encrypted fetch (`--secret`)
//! beside the plain one; `-o FILE` beside the raw receiver writing a file;
//! and the CPU seconds (user + system, from wait4) of each client.
//!
//! Each run takes every step once, in an order that turns by one each run,
//! so a burst of load from elsewhere falls on a different step each time.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::Settings;
use crate::nginx::Nginx;
use crate::procs::{self, ClientRun, Proc};
use crate::raw;
use crate::report::{Row, Table, median, mib};
use crate::transfer::shared_big_file;
use crate::verified::GETFILE;

const SECRET: &str = "p2p-bench speed section secret, long and random enough";

/// What one step measured in every run.
#[derive(Default)]
struct Series {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    peak_kib: u64,
}

impl Series {
    fn push(&mut self, run: &ClientRun) {
        self.wall.push(run.elapsed.as_secs_f64());
        self.cpu.push(run.cpu.as_secs_f64());
        self.peak_kib = self.peak_kib.max(run.peak_kib);
    }
    fn wall(&self) -> f64 {
        median(&self.wall)
    }
    fn cpu(&self) -> f64 {
        median(&self.cpu)
    }
}

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let (share, big, len) = shared_big_file(s, "speed")?;
    let size = format!("{} MiB", s.file_mib);

    // A plain relay and node, and a private relay and node, on the same
    // directory; each node's hash cache of its own, both hashed before the
    // first run.
    let (_relay, relay) = procs::start_relay(&s.bins, s.tmp.join("speed-relay.log"))?;
    let node = |relay: std::net::SocketAddr, name: &str, secret: bool| {
        let mut cmd = Command::new(s.bins.path("peer-node"));
        cmd.arg("127.0.0.1")
            .arg(relay.port().to_string())
            .arg(&share)
            .args(["--bind", "127.0.0.1", "--cache"])
            .arg(s.tmp.join(format!("{name}-cache")));
        if secret {
            cmd.args(["--secret", SECRET, "--key"])
                .arg(s.tmp.join(format!("{name}.key")));
        }
        let mut node = Proc::spawn("peer-node", cmd, s.tmp.join(format!("{name}.log")))?;
        let addr = node.wait_for_addr("listening on ")?;
        node.wait_for("registered with relay")?;
        node.wait_hashed()?;
        Ok::<_, String>((node, addr))
    };
    let (_plain_node, plain_addr) = node(relay, "speed-node", false)?;
    let (_secret_relay, secret_relay) = procs::start_relay_with(
        &s.bins,
        s.tmp.join("speed-secret-relay.log"),
        &["--secret", SECRET],
    )?;
    let (_secret_node, _) = node(secret_relay, "speed-secret-node", true)?;
    let sender = raw::Sender::start(&big, s.tmp.join("speed-raw-sender.log"))?;
    let nginx = match Nginx::missing() {
        Some(why) => {
            table.note(format!("speed: nginx + curl left out: {why}"));
            None
        }
        None => Some(Nginx::start(&share, &s.tmp.join("speed-nginx"))?),
    };
    // The same over HTTPS, beside `--secret`: what encryption costs the
    // pair a user would compare us with.
    let nginx_tls = match nginx {
        Some(_) => match Nginx::start_tls(&share, &s.tmp.join("speed-nginx-tls")) {
            Ok(nginx) => Some(nginx),
            Err(why) => {
                table.note(format!("speed: nginx over TLS left out: {why}"));
                None
            }
        },
        None => None,
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
    let log = s.tmp.join("speed-client.log");
    let out = s.tmp.join("speed-out.bin");

    let client = |relay: std::net::SocketAddr, extra: &[&str]| -> Result<ClientRun, String> {
        let mut args = vec![
            "127.0.0.1".to_string(),
            relay.port().to_string(),
            "big.bin".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let run = procs::run_client(&s.bins, &args, &log)?;
        let text = fs::read_to_string(&log).unwrap_or_default();
        if !text.contains(", blake3 ") {
            return Err(format!("the fetch was not verified:\n{text}"));
        }
        Ok(run)
    };
    let out_arg = out.display().to_string();
    let (mut verified, mut getfile, mut curl, mut secret, mut to_file, mut raw_file) = (
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
    );
    let mut curl_tls = Series::default();
    eprintln!(
        "speed: {size}: verified, GetFile, nginx+curl (and over TLS), --secret, -o FILE, raw -o; {} runs...",
        s.runs
    );
    for run in 0..s.runs {
        let mut steps: Vec<Box<dyn FnMut() -> Result<(), String>>> = vec![
            Box::new(|| {
                verified.push(&client(relay, &[])?);
                Ok(())
            }),
            Box::new(|| {
                let args = [
                    GETFILE.to_string(),
                    plain_addr.to_string(),
                    "big.bin".into(),
                ];
                getfile.push(&procs::run_to_exit(&exe, &args, &log)?);
                Ok(())
            }),
            Box::new(|| {
                secret.push(&client(secret_relay, &["--secret", SECRET])?);
                Ok(())
            }),
            Box::new(|| {
                to_file.push(&client(relay, &["-o", &out_arg])?);
                check_len(&out, len)?;
                let _ = fs::remove_file(&out);
                Ok(())
            }),
            Box::new(|| {
                raw_file.push(&raw::receive_once(&sender, len, Some(&out), &log)?);
                let _ = fs::remove_file(&out);
                Ok(())
            }),
        ];
        if let Some(nginx) = &nginx {
            let (curl, log) = (&mut curl, &log);
            steps.push(Box::new(move || {
                curl.push(&nginx.fetch("big.bin", log)?);
                Ok(())
            }));
        }
        if let Some(nginx) = &nginx_tls {
            let (curl, log) = (&mut curl_tls, &log);
            steps.push(Box::new(move || {
                curl.push(&nginx.fetch("big.bin", log)?);
                Ok(())
            }));
        }
        let n = steps.len();
        steps.rotate_left(run % n);
        for step in &mut steps {
            step()?;
        }
    }

    let ms = |series: &Series| -> String {
        let runs: Vec<String> = series
            .wall
            .iter()
            .zip(&series.cpu)
            .map(|(w, c)| format!("{:.0}/{:.0}", w * 1e3, c * 1e3))
            .collect();
        runs.join(" ")
    };
    for (name, series) in [
        ("verified", &verified),
        ("getfile", &getfile),
        ("nginx+curl", &curl),
        ("nginx+curl TLS", &curl_tls),
        ("secret", &secret),
        ("-o FILE", &to_file),
        ("raw -o", &raw_file),
    ] {
        if !series.wall.is_empty() {
            eprintln!("    runs ({name}, wall/cpu ms): {}", ms(series));
        }
    }
    let row = |what: String, ours: &Series, base: &Series, label: &str, target: f64| Row {
        what,
        ours: format!("{:.0} ms, {:.2} s CPU", ours.wall() * 1e3, ours.cpu()),
        baseline: format!(
            "{:.0} ms, {:.2} s CPU {label}",
            base.wall() * 1e3,
            base.cpu()
        ),
        ratio: Some(ours.wall() / base.wall()),
        target: format!("<= {target}"),
        met: Some(ours.wall() / base.wall() <= target),
    };
    if nginx.is_some() {
        table.add(row(
            format!("speed. verified {size} to /dev/null vs nginx+curl (time)"),
            &verified,
            &curl,
            "nginx+curl",
            1.0,
        ));
    }
    table.add(row(
        format!("speed. verified {size} to /dev/null vs unverified (time)"),
        &verified,
        &getfile,
        "GetFile",
        1.05,
    ));
    table.add(row(
        format!("speed. --secret {size} to /dev/null vs plain (time)"),
        &secret,
        &verified,
        "plain",
        1.3,
    ));
    if nginx_tls.is_some() {
        table.add(row(
            format!("speed. --secret {size} to /dev/null vs nginx+curl over TLS (time)"),
            &secret,
            &curl_tls,
            "nginx+curl TLS",
            1.0,
        ));
        // What encryption costs nginx + curl, beside what it costs us.
        let (t, p) = (curl_tls.wall(), curl.wall());
        table.add(Row {
            what: format!("speed. nginx+curl over TLS vs plain, {size} (time)"),
            ours: format!("{:.0} ms, {:.2} s CPU", t * 1e3, curl_tls.cpu()),
            baseline: format!("{:.0} ms, {:.2} s CPU plain", p * 1e3, curl.cpu()),
            ratio: Some(t / p),
            target: "(figure)".into(),
            met: None,
        });
    }
    // The file's rate against the raw receiver's: higher is better here.
    let (o, r) = (to_file.wall(), raw_file.wall());
    table.add(Row {
        what: format!("speed. -o FILE {size} (fsync) vs raw receiver (rate)"),
        ours: format!("{:.0} ms, {:.2} s CPU", o * 1e3, to_file.cpu()),
        baseline: format!("{:.0} ms, {:.2} s CPU raw -o", r * 1e3, raw_file.cpu()),
        ratio: Some(r / o),
        target: ">= 0.9".into(),
        met: Some(r / o >= 0.9),
    });
    for (what, series) in [
        ("verified", &verified),
        ("--secret", &secret),
        ("-o FILE", &to_file),
    ] {
        table.add(Row {
            what: format!("speed. peer-client peak RSS, {what} {size}"),
            ours: format!("{:.1} MiB", mib(series.peak_kib)),
            baseline: "-".into(),
            ratio: None,
            target: "<= 16 MiB".into(),
            met: Some(series.peak_kib <= 16 * 1024),
        });
    }
    table.note(format!(
        "speed: each run takes every step once (verified, GetFile, --secret, -o FILE, raw -o{}{}), \
         the order turned by one each run; times from process start to exit; CPU is the \
         client's user + system time from wait4 (curl's for nginx+curl)",
        if nginx.is_some() { ", nginx+curl" } else { "" },
        if nginx_tls.is_some() {
            ", nginx+curl over TLS 1.3 (nginx's defaults: no kernel TLS)"
        } else {
            ""
        }
    ));
    Ok(())
}

fn check_len(path: &Path, len: u64) -> Result<(), String> {
    let got = fs::metadata(path)
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
        .len();
    if got != len {
        return Err(format!("{} has {got} bytes, not {len}", path.display()));
    }
    Ok(())
}
