//! Section `hosts` (`--only hosts`, root; issue 31): the verified 1 GiB
//! fetch between two hosts, beside nginx + curl and beside the unverified
//! GetFile over the same link. The hosts are network namespaces on a bridge
//! (veth pairs, MTU 1500, nothing shaped): the node and nginx in one, the
//! client and curl in another, the relay in a third. Unlike loopback, every
//! byte crosses the veth as 1500-byte frames, and the client's hashing
//! competes with its own receiving, not with the node's sending.
//!
//! Each run takes every step once, the order turned by one each run, as in
//! section `speed`.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::lab::{Lab, in_ns};
use crate::nginx;
use crate::procs::{self, ClientRun, Proc};
use crate::report::{Row, Table, median};
use crate::transfer::shared_big_file;
use crate::verified::GETFILE;

const RELAY_IP: &str = "10.81.0.1";
const NODE_IP: &str = "10.81.0.2";
const CLIENT_IP: &str = "10.81.0.3";
// Fixed ports are safe here: the namespaces are this run's own.
const RELAY_PORT: u16 = 7000;
const NODE_PORT: u16 = 7100;
const NGINX_PORT: u16 = 8080;

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let nginx_bin = nginx::find("nginx");
    let curl = nginx::find("curl");
    let mut lab = Lab::create("hosts")?;
    let relay_ns = lab.host("relay", RELAY_IP)?;
    let node_ns = lab.host("node", NODE_IP)?;
    let client_ns = lab.host("client", CLIENT_IP)?;

    let (share, _, _) = shared_big_file(s, "hosts")?;

    let mut procs: Vec<Proc> = Vec::new();
    let mut cmd = in_ns(&relay_ns, &s.bins.path("relay"));
    cmd.arg(RELAY_PORT.to_string()).args(["--ttl", "3600"]);
    let mut relay = Proc::spawn("relay", cmd, s.tmp.join("hosts-relay.log"))?;
    relay.wait_for("listening on")?;
    procs.push(relay);
    let mut cmd = in_ns(&node_ns, &s.bins.path("peer-node"));
    cmd.arg(RELAY_IP)
        .arg(RELAY_PORT.to_string())
        .arg(&share)
        .args(["--port", &NODE_PORT.to_string(), "--cache"])
        .arg(s.tmp.join("hosts-node-cache"));
    let mut node = Proc::spawn("peer-node", cmd, s.tmp.join("hosts-node.log"))?;
    node.wait_for("registered with relay")?;
    node.wait_hashed()?;
    procs.push(node);
    let curl = match (nginx_bin, curl) {
        (Some(nginx_bin), Some(curl)) => {
            let addr = SocketAddr::new(NODE_IP.parse().expect("an address"), NGINX_PORT);
            let dir = s.tmp.join("hosts-nginx");
            procs.push(nginx::spawn_in(&node_ns, &nginx_bin, &share, &dir, addr)?);
            Some(curl)
        }
        _ => {
            table.note("hosts: nginx or curl not installed (apt-get install nginx-light curl); the nginx + curl row is left out".into());
            None
        }
    };

    let exe = std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
    let log = s.tmp.join("hosts-client.log");
    // `ip netns exec` execs the program in place: the times and CPU are
    // its own, for ours and for curl alike.
    let in_client = |program: &Path, args: &[&str]| -> Result<ClientRun, String> {
        let mut all = vec!["netns".to_string(), "exec".into(), client_ns.clone()];
        all.push(program.to_string_lossy().into_owned());
        all.extend(args.iter().map(|a| a.to_string()));
        procs::run_to_exit(Path::new("ip"), &all, &log)
    };
    let client = s.bins.path("peer-client");
    let relay_port = RELAY_PORT.to_string();
    let verified = || -> Result<ClientRun, String> {
        let run = in_client(&client, &[RELAY_IP, &relay_port, "big.bin"])?;
        let text = fs::read_to_string(&log).unwrap_or_default();
        if !text.contains(", blake3 ") {
            return Err(format!("the fetch was not verified:\n{text}"));
        }
        Ok(run)
    };
    let node_addr = format!("{NODE_IP}:{NODE_PORT}");
    let getfile = || in_client(&exe, &[GETFILE, &node_addr, "big.bin"]);
    let url = format!("http://{NODE_IP}:{NGINX_PORT}/big.bin");
    let fetch_curl = |curl: &Path| in_client(curl, &["-s", "--fail", "-o", "/dev/null", &url]);
    // Warm-up, unmeasured: the first fetch of each kind (nginx's is the
    // first that succeeds once it accepts).
    if let Some(curl) = &curl {
        wait_for(|| fetch_curl(curl).is_ok(), "nginx")?;
    }
    verified()?;
    getfile()?;

    let (mut ours, mut unverified, mut anchor) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_cpu, mut unverified_cpu, mut anchor_cpu) = (Vec::new(), Vec::new(), Vec::new());
    eprintln!(
        "hosts: {} MiB over veth: verified, GetFile{}; {} runs...",
        s.file_mib,
        if curl.is_some() { ", nginx+curl" } else { "" },
        s.runs
    );
    for run in 0..s.runs {
        for k in 0..3 {
            match (run + k) % 3 {
                0 => {
                    let r = verified()?;
                    ours.push(r.elapsed.as_secs_f64());
                    ours_cpu.push(r.cpu.as_secs_f64());
                }
                1 => {
                    let r = getfile()?;
                    unverified.push(r.elapsed.as_secs_f64());
                    unverified_cpu.push(r.cpu.as_secs_f64());
                }
                _ => {
                    if let Some(curl) = &curl {
                        let r = fetch_curl(curl)?;
                        anchor.push(r.elapsed.as_secs_f64());
                        anchor_cpu.push(r.cpu.as_secs_f64());
                    }
                }
            }
        }
    }
    let runs = |wall: &[f64], cpu: &[f64]| -> String {
        let each: Vec<String> = wall
            .iter()
            .zip(cpu)
            .map(|(w, c)| format!("{:.0}/{:.0}", w * 1e3, c * 1e3))
            .collect();
        each.join(" ")
    };
    eprintln!(
        "    runs (verified, wall/cpu ms): {}",
        runs(&ours, &ours_cpu)
    );
    eprintln!(
        "    runs (GetFile, wall/cpu ms): {}",
        runs(&unverified, &unverified_cpu)
    );
    if !anchor.is_empty() {
        eprintln!(
            "    runs (nginx+curl, wall/cpu ms): {}",
            runs(&anchor, &anchor_cpu)
        );
    }
    let size = format!("{} MiB", s.file_mib);
    let o = median(&ours);
    let row = |what: String, base: &[f64], base_cpu: &[f64], label: &str, target: f64| {
        let b = median(base);
        Row {
            what,
            ours: format!("{:.0} ms, {:.2} s CPU", o * 1e3, median(&ours_cpu)),
            baseline: format!("{:.0} ms, {:.2} s CPU {label}", b * 1e3, median(base_cpu)),
            ratio: Some(o / b),
            target: format!("<= {target}"),
            met: Some(o / b <= target),
        }
    };
    if !anchor.is_empty() {
        table.add(row(
            format!("hosts. verified {size} over veth vs nginx+curl (time)"),
            &anchor,
            &anchor_cpu,
            "nginx+curl",
            0.8,
        ));
    }
    table.add(row(
        format!("hosts. verified {size} over veth vs unverified (time)"),
        &unverified,
        &unverified_cpu,
        "GetFile",
        1.05,
    ));
    table.note(
        "hosts: three namespaces on a bridge (veth, MTU 1500, not shaped): relay, node + nginx, \
         client + curl; every step once per run, the order turned by one each run; times from \
         spawn to exit; CPU is the client's (curl's) user + system time from wait4"
            .into(),
    );
    drop(procs);
    drop(lab);
    Ok(())
}

/// Polls `ready` until it holds, for at most 10 s.
fn wait_for(mut ready: impl FnMut() -> bool, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        if Instant::now() >= deadline {
            return Err(format!("{what} was not ready within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
