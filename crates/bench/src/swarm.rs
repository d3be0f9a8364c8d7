//! Section 9 (`--only multi`): one file from several holders at once
//! (issue 12), on separate hosts: network namespaces on a bridge, each
//! holder's uplink shaped to 100 Mbit/s (`tc qdisc add dev eth0 root tbf
//! rate 100mbit burst 256kb latency 100ms` in its namespace).
//!
//! - 48 MiB with `-o` from three shaped holders beside the same from one
//!   shaped holder (target <= 0.40x; ideal 0.33);
//! - the same beside `aria2c -s 3 -x 1` pulling it from three nginx servers,
//!   one in each holder's namespace behind the same shaping (target <= 1.0x);
//! - on loopback, 1 GiB from three holders beside one (target <= 1.0x).
//!
//! Each run takes the three fetches in turn, rotating which goes first;
//! medians of all runs. Needs root (namespaces, tc), and aria2c and nginx
//! for the anchor (`apt-get install aria2 nginx-light`); without them that
//! row is skipped with a note. Not in the default sections.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::lab::{Lab, in_ns, tool};
use crate::nginx;
use crate::procs::{self, Proc};
use crate::report::{Row, Table, median, millis};

/// The shaped file's size, and the loopback one's.
const SHAPED_MIB: u64 = 48;
const LOOPBACK_MIB: u64 = 1024;
const RATE: &str = "100mbit";
const RELAY_PORT: u16 = 7000;
/// The one-holder relay: a second relay with a fourth node process on
/// holder 1's host, sharing the same directory.
const SOLO_RELAY_PORT: u16 = 7001;
const NODE_PORT: u16 = 7100;
const SOLO_NODE_PORT: u16 = 7101;
const NGINX_PORT: u16 = 8080;
/// How long nginx and the nodes may take to come up.
const READY: Duration = Duration::from_secs(30);

pub fn run(settings: &Settings, table: &mut Table) -> Result<(), String> {
    shaped(settings, table)?;
    loopback(settings, table)
}

/// `size` MiB of pseudo-random bytes at `path`, written once.
pub(crate) fn make_file(path: &Path, mib: u64) -> Result<(), String> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut bytes = Vec::with_capacity((mib << 20) as usize);
    while (bytes.len() as u64) < mib << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A peer-node in namespace `ns` sharing `dir`, registered with `relay` and
/// done hashing.
fn node(
    settings: &Settings,
    ns: &str,
    relay: (&str, u16),
    port: u16,
    dir: &Path,
    name: &str,
) -> Result<Proc, String> {
    let mut cmd = in_ns(ns, &settings.bins.path("peer-node"));
    cmd.arg(relay.0)
        .arg(relay.1.to_string())
        .arg(dir)
        .args(["--port", &port.to_string(), "--cache"])
        .arg(settings.tmp.join(format!("cache-{name}")));
    let mut proc = Proc::spawn("peer-node", cmd, settings.tmp.join(format!("{name}.log")))?;
    proc.wait_for("registered with relay")?;
    proc.wait_hashed()?;
    Ok(proc)
}

fn shaped(settings: &Settings, table: &mut Table) -> Result<(), String> {
    let mut lab = Lab::create("multi")?;
    let relay_ns = lab.host("relay", "10.79.0.1")?;
    let mut holders = Vec::new();
    for i in 1..=3 {
        let ip = format!("10.79.0.1{i}");
        holders.push((lab.host(&format!("n{i}"), &ip)?, ip));
    }
    let client_ns = lab.host("client", "10.79.0.100")?;
    let share = settings.tmp.join("multi-share");
    fs::create_dir_all(&share).map_err(|e| format!("cannot create {}: {e}", share.display()))?;
    make_file(&share.join("big.bin"), SHAPED_MIB)?;

    let mut procs: Vec<Proc> = Vec::new();
    for port in [RELAY_PORT, SOLO_RELAY_PORT] {
        let mut cmd = in_ns(&relay_ns, &settings.bins.path("relay"));
        cmd.arg(port.to_string()).args(["--ttl", "3600"]);
        let mut relay = Proc::spawn("relay", cmd, settings.tmp.join(format!("relay{port}.log")))?;
        relay.wait_for("listening on")?;
        procs.push(relay);
    }
    for (i, (ns, _)) in holders.iter().enumerate() {
        procs.push(node(
            settings,
            ns,
            ("10.79.0.1", RELAY_PORT),
            NODE_PORT,
            &share,
            &format!("multi-n{}", i + 1),
        )?);
    }
    procs.push(node(
        settings,
        &holders[0].0,
        ("10.79.0.1", SOLO_RELAY_PORT),
        SOLO_NODE_PORT,
        &share,
        "multi-solo",
    )?);
    for (ns, _) in &holders {
        tool(
            "tc",
            &[
                "-n", ns, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", RATE, "burst",
                "256kb", "latency", "100ms",
            ],
        )?;
    }
    // The anchor: nginx in each holder's namespace, aria2c in the client's.
    let anchor = match (nginx::find("nginx"), nginx::find("aria2c")) {
        (Some(nginx), Some(aria2c)) => {
            for (i, (ns, ip)) in holders.iter().enumerate() {
                let dir = settings.tmp.join(format!("nginx{i}"));
                let addr =
                    SocketAddr::new(ip.parse().map_err(|e| format!("{ip}: {e}"))?, NGINX_PORT);
                procs.push(nginx::spawn_in(ns, &nginx, &share, &dir, addr)?);
                wait_http(&client_ns, ip)?;
            }
            Some(aria2c)
        }
        _ => {
            table.note("multi: aria2c or nginx not installed (apt-get install aria2 nginx-light); the anchor row is skipped".into());
            None
        }
    };

    let client = settings.bins.path("peer-client");
    let out = settings.tmp.join("multi-out");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let saved = out.join("big.bin");
    let fetch = |port: u16| -> Result<f64, String> {
        let mut args: Vec<String> = ["netns", "exec", &client_ns].map(String::from).to_vec();
        args.push(client.to_string_lossy().into_owned());
        args.extend(
            [
                "10.79.0.1",
                &port.to_string(),
                "big.bin",
                "-o",
                &saved.to_string_lossy(),
            ]
            .map(String::from),
        );
        let run = procs::run_to_exit(
            Path::new("ip"),
            &args,
            &settings.tmp.join("multi-client.log"),
        )?;
        let _ = fs::remove_file(&saved);
        Ok(millis(run.elapsed))
    };
    let aria = |aria2c: &Path| -> Result<f64, String> {
        let mut args: Vec<String> = ["netns", "exec", &client_ns].map(String::from).to_vec();
        args.push(aria2c.to_string_lossy().into_owned());
        args.extend(["-s", "3", "-x", "1", "-q", "--allow-overwrite=true", "-d"].map(String::from));
        args.push(out.to_string_lossy().into_owned());
        args.extend(["-o", "big.bin"].map(String::from));
        for (_, ip) in &holders {
            args.push(format!("http://{ip}:{NGINX_PORT}/big.bin"));
        }
        let run = procs::run_to_exit(
            Path::new("ip"),
            &args,
            &settings.tmp.join("multi-aria2.log"),
        )?;
        let size = fs::metadata(&saved).map(|m| m.len()).unwrap_or(0);
        let _ = fs::remove_file(&saved);
        if size != SHAPED_MIB << 20 {
            return Err(format!("aria2c saved {size} bytes"));
        }
        Ok(millis(run.elapsed))
    };
    // Warm-up: each path once, unmeasured.
    fetch(SOLO_RELAY_PORT)?;
    fetch(RELAY_PORT)?;
    if let Some(a) = &anchor {
        aria(a)?;
    }
    let (mut one, mut three, mut anchored) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..settings.runs {
        for k in 0..3 {
            match (run + k) % 3 {
                0 => one.push(fetch(SOLO_RELAY_PORT)?),
                1 => three.push(fetch(RELAY_PORT)?),
                _ => {
                    if let Some(a) = &anchor {
                        anchored.push(aria(a)?);
                    }
                }
            }
        }
        eprintln!(
            "    run {}: one {:.0} ms, three {:.0} ms{}",
            run + 1,
            one.last().unwrap_or(&0.0),
            three.last().unwrap_or(&0.0),
            anchored
                .last()
                .map(|a| format!(", aria2c {a:.0} ms"))
                .unwrap_or_default()
        );
    }
    let (o, t) = (median(&one), median(&three));
    table.add(Row {
        what: format!("9. {SHAPED_MIB} MiB -o from three 100 Mbit/s holders vs one"),
        ours: format!("{:.2} s", t / 1000.0),
        baseline: format!("{:.2} s one holder", o / 1000.0),
        ratio: Some(t / o),
        target: "<= 0.40".into(),
        met: Some(t / o <= 0.40),
    });
    if anchor.is_some() {
        let a = median(&anchored);
        table.add(Row {
            what: format!("9. {SHAPED_MIB} MiB from three 100 Mbit/s holders vs aria2c -s 3 -x 1"),
            ours: format!("{:.2} s", t / 1000.0),
            baseline: format!("{:.2} s aria2c + 3 nginx", a / 1000.0),
            ratio: Some(t / a),
            target: "<= 1.0".into(),
            met: Some(t / a <= 1.0),
        });
    }
    table.note(format!(
        "multi: namespaces on a bridge, each holder's uplink `tbf rate {RATE} burst 256kb latency \
         100ms`; peer-client --sources 4 (default) -o; wall time from spawn to exit of \
         `ip netns exec` (the same wrapper for aria2c); medians of {} runs, the three fetches \
         taking turns",
        settings.runs
    ));
    drop(procs);
    Ok(())
}

/// Waits until nginx at `ip` answers, from the client's namespace.
fn wait_http(client_ns: &str, ip: &str) -> Result<(), String> {
    let deadline = Instant::now() + READY;
    loop {
        let ok = Command::new("ip")
            .args(["netns", "exec", client_ns, "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{ip}/{NGINX_PORT}"))
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("nginx at {ip} did not accept within {READY:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 1 GiB on loopback from three holders beside one, to stdout (/dev/null:
/// the in-order window) and with -o (positioned writes).
fn loopback(settings: &Settings, table: &mut Table) -> Result<(), String> {
    let share = settings.tmp.join("multi-loop");
    fs::create_dir_all(&share).map_err(|e| format!("{}: {e}", share.display()))?;
    make_file(&share.join("big.bin"), LOOPBACK_MIB)?;
    let (_r3, three_relay) = procs::start_relay(&settings.bins, settings.tmp.join("loop-r3.log"))?;
    let (_r1, one_relay) = procs::start_relay(&settings.bins, settings.tmp.join("loop-r1.log"))?;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut n = procs::start_node(
            &settings.bins,
            three_relay,
            &share,
            settings.tmp.join(format!("loop-n{i}.log")),
        )?;
        n.wait_hashed()?;
        nodes.push(n);
    }
    let mut solo = procs::start_node(
        &settings.bins,
        one_relay,
        &share,
        settings.tmp.join("loop-solo.log"),
    )?;
    solo.wait_hashed()?;
    let saved = settings.tmp.join("loop-out.bin");
    for to_file in [false, true] {
        let fetch = |relay: std::net::SocketAddr| -> Result<f64, String> {
            let mut args = vec![
                "127.0.0.1".to_string(),
                relay.port().to_string(),
                "big.bin".into(),
            ];
            if to_file {
                args.extend(["-o".to_string(), saved.to_string_lossy().into_owned()]);
            }
            let run =
                procs::run_client(&settings.bins, &args, &settings.tmp.join("loop-client.log"))?;
            let _ = fs::remove_file(&saved);
            Ok(millis(run.elapsed))
        };
        fetch(three_relay)?;
        let (mut one, mut three) = (Vec::new(), Vec::new());
        for run in 0..settings.runs {
            if run % 2 == 0 {
                one.push(fetch(one_relay)?);
                three.push(fetch(three_relay)?);
            } else {
                three.push(fetch(three_relay)?);
                one.push(fetch(one_relay)?);
            }
        }
        crate::report::show_runs("ms, three holders/one", &three, &one);
        let (o, t) = (median(&one), median(&three));
        let to = if to_file {
            "-o FILE"
        } else {
            "stdout (/dev/null)"
        };
        table.add(Row {
            what: format!("9. loopback {LOOPBACK_MIB} MiB to {to}, three holders vs one"),
            ours: format!("{:.0} ms", t),
            baseline: format!("{:.0} ms one holder", o),
            ratio: Some(t / o),
            target: "<= 1.0".into(),
            met: Some(t / o <= 1.0),
        });
    }
    Ok(())
}
