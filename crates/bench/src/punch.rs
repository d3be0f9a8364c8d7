//! Section 11 (`--only punch`, root): hole punching (issue 28), on separate
//! hosts behind nftables NAT routers (crate::lab).
//!
//! - **A large file punched, direct and relayed.** The client and the node
//!   each behind a home router (masquerade, unsolicited packets dropped);
//!   the same node process serves three ways: through a port forward on its
//!   router (listed as direct: the baseline, the very same path), punched
//!   (a second node process on the same host, relayed mode, reached by
//!   simultaneous open), and through the relay's circuit (the client with
//!   `--no-punch`). 1 GiB (`--quick`: 256 MiB) to `-o /dev/null`, every
//!   byte verified; the three in turn each run, rotating which goes first.
//!   Target: punched at most 1.1x direct.
//! - **How often a punch gets through, and how fast**, per kind of NAT:
//!   the fraction of tries that punch, and the median time from the
//!   client's `Punch` to the greeted connection (its `-v` log), in tries of a
//!   small fetch each: a node behind a router and a client the relay can
//!   dial (reversal); both behind home routers; both behind Linux routers
//!   without a firewall, which answer an early SYN with a reset, once on
//!   veth (microseconds apart) and once 5 ms from the bridge each (a delay
//!   line, as routers are apart on the Internet); the node behind a router
//!   that gives each connection a random port (a symmetric NAT). After a failed try the relay is restarted, so that it does not
//!   remember the pair and relay the next try at once.

use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::Settings;
use crate::lab::{Lab, Nat, in_ns};
use crate::procs::{Proc, addr_after};
use crate::report::{Row, Table, median, show_runs};
use crate::swarm::make_file;

const RELAY_IP: &str = "10.80.0.1";
/// The relay that lists the port-forwarded node (direct), and the one that
/// lists the same share's relayed node.
const DIRECT_RELAY: u16 = 7000;
const PUNCH_RELAY: u16 = 7001;
/// The port forwarded to the node on its router.
const FORWARDED: u16 = 7100;

const HOME: Nat = Nat {
    random_ports: false,
    drop_unsolicited: true,
    forward: None,
    delay: None,
};

pub fn run(settings: &Settings, table: &mut Table) -> Result<(), String> {
    transfers(settings, table)?;
    kinds(settings, table)
}

/// One client run on `ns`: `peer-client RELAY PORT ARGS -v`; its time from
/// spawn to exit and its stderr. Fails unless it exits 0.
fn client(
    settings: &Settings,
    ns: &str,
    port: u16,
    args: &[&str],
) -> Result<(f64, String), String> {
    let mut cmd = in_ns(ns, &settings.bins.path("peer-client"));
    cmd.arg(RELAY_IP).arg(port.to_string()).args(args).arg("-v");
    let started = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run peer-client: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!("peer-client {args:?} failed:\n{stderr}"));
    }
    Ok((elapsed, stderr))
}

/// The time from `Punch` to the greeted connection, if the run punched.
fn punch_time(stderr: &str) -> Option<f64> {
    let line = stderr.lines().find(|l| l.contains("hole-punched to "))?;
    line.split(" in ").nth(1)?.split(" ms").next()?.parse().ok()
}

fn relay(settings: &Settings, ns: &str, port: u16, log: &str) -> Result<Proc, String> {
    let mut cmd = in_ns(ns, &settings.bins.path("relay"));
    cmd.arg(port.to_string()).args(["--ttl", "3600", "-v"]);
    let mut relay = Proc::spawn("relay", cmd, settings.tmp.join(log))?;
    relay.wait_for("listening on")?;
    Ok(relay)
}

/// A node on `ns` sharing `dir`, registered with the relay at `port` and
/// done hashing; `args` add `--relayed` or `--port`.
fn node(
    settings: &Settings,
    ns: &str,
    port: u16,
    dir: &Path,
    args: &[&str],
    log: &str,
) -> Result<Proc, String> {
    let mut cmd = in_ns(ns, &settings.bins.path("peer-node"));
    cmd.arg(RELAY_IP)
        .arg(port.to_string())
        .arg(dir)
        .arg("--cache")
        .arg(settings.tmp.join(format!("{log}.cache")))
        .args(args);
    let mut node = Proc::spawn("peer-node", cmd, settings.tmp.join(format!("{log}.log")))?;
    node.wait_for("registered with relay")?;
    node.wait_for("shared files")?;
    Ok(node)
}

fn transfers(settings: &Settings, table: &mut Table) -> Result<(), String> {
    let mut lab = Lab::create("punch")?;
    let relay_ns = lab.host("relay", RELAY_IP)?;
    let client_ns = lab.nat("c", "10.80.0.3", "10.83.0", "10.83.0.2", HOME)?;
    let node_ns = lab.nat(
        "n",
        "10.80.0.2",
        "10.82.0",
        "10.82.0.2",
        Nat {
            forward: Some(FORWARDED),
            ..HOME
        },
    )?;
    let share = settings.tmp.join("punch-share");
    fs::create_dir_all(&share).map_err(|e| format!("{}: {e}", share.display()))?;
    make_file(&share.join("big.bin"), settings.file_mib)?;

    let _relays = [
        relay(settings, &relay_ns, DIRECT_RELAY, "punch-relay-direct.log")?,
        relay(settings, &relay_ns, PUNCH_RELAY, "punch-relay.log")?,
    ];
    let mut direct = node(
        settings,
        &node_ns,
        DIRECT_RELAY,
        &share,
        &["--port", &FORWARDED.to_string()],
        "punch-node-direct",
    )?;
    let listed = addr_after(&direct.wait_for("registered with relay")?, " as ")?;
    if listed.port() != FORWARDED {
        return Err(format!(
            "the port-forwarded node is listed as {listed}, not direct"
        ));
    }
    let _relayed = node(
        settings,
        &node_ns,
        PUNCH_RELAY,
        &share,
        &["--relayed"],
        "punch-node-relayed",
    )?;

    let fetch = |port: u16, extra: &[&str]| -> Result<(f64, String), String> {
        let mut args = vec!["big.bin", "-o", "/dev/null", "--sources", "1"];
        args.extend_from_slice(extra);
        client(settings, &client_ns, port, &args)
    };
    let (mut d, mut p, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..settings.runs {
        for k in 0..3 {
            match (run + k) % 3 {
                0 => d.push(fetch(DIRECT_RELAY, &[])?.0),
                1 => {
                    let (ms, log) = fetch(PUNCH_RELAY, &[])?;
                    if !log.contains("(direct, hole-punched)") {
                        return Err(format!("the fetch was not punched:\n{log}"));
                    }
                    p.push(ms);
                }
                _ => {
                    let (ms, log) = fetch(PUNCH_RELAY, &["--no-punch"])?;
                    if !log.contains("(via relay)") {
                        return Err(format!("the fetch was not relayed:\n{log}"));
                    }
                    r.push(ms);
                }
            }
        }
    }
    show_runs("ms, punched/direct", &p, &d);
    show_runs("ms, relayed/direct", &r, &d);
    let mib = settings.file_mib;
    let ratio = median(&p) / median(&d);
    table.add(Row {
        what: format!("{mib} MiB punched (both behind NAT, veth) vs the same path forwarded"),
        ours: format!("{:.0} ms", median(&p)),
        baseline: format!("{:.0} ms", median(&d)),
        ratio: Some(ratio),
        target: "<= 1.10".into(),
        met: Some(ratio <= 1.10),
    });
    table.add(Row {
        what: format!("{mib} MiB through the relay (`--no-punch`) vs the same path forwarded"),
        ours: format!("{:.0} ms", median(&r)),
        baseline: format!("{:.0} ms", median(&d)),
        ratio: Some(median(&r) / median(&d)),
        target: "-".into(),
        met: None,
    });
    Ok(())
}

/// One kind of NAT pair for the success fraction.
struct Kind {
    what: &'static str,
    /// The client's router, or None: on the open network.
    client: Option<Nat>,
    node: Nat,
}

fn kinds(settings: &Settings, table: &mut Table) -> Result<(), String> {
    let linux = Nat {
        random_ports: false,
        drop_unsolicited: false,
        forward: None,
        delay: None,
    };
    let linux_far = Nat {
        delay: Some(std::time::Duration::from_millis(5)),
        ..linux
    };
    let symmetric = Nat {
        random_ports: true,
        ..HOME
    };
    let kinds = [
        Kind {
            what: "node behind NAT, client reachable (reversal)",
            client: None,
            node: linux,
        },
        Kind {
            what: "both behind home routers (drop unsolicited)",
            client: Some(HOME),
            node: HOME,
        },
        Kind {
            what: "both behind Linux routers that reset an early SYN, on veth",
            client: Some(linux),
            node: linux,
        },
        Kind {
            what: "the same routers 5 ms from the bridge (a delay line)",
            client: Some(linux_far),
            node: linux_far,
        },
        Kind {
            what: "node behind a symmetric NAT (`masquerade fully-random`)",
            client: Some(HOME),
            node: symmetric,
        },
    ];
    let tries = (settings.runs * 3).max(10);
    let share = settings.tmp.join("punch-small");
    fs::create_dir_all(&share).map_err(|e| format!("{}: {e}", share.display()))?;
    fs::write(share.join("small.txt"), b"a small file\n")
        .map_err(|e| format!("{}: {e}", share.display()))?;
    for (k, kind) in kinds.iter().enumerate() {
        let mut lab = Lab::create(&format!("k{k}"))?;
        let relay_ns = lab.host("relay", RELAY_IP)?;
        let client_ns = match kind.client {
            Some(nat) => lab.nat("c", "10.80.0.3", "10.83.0", "10.83.0.2", nat)?,
            None => lab.host("client", "10.80.0.100")?,
        };
        let node_ns = lab.nat("n", "10.80.0.2", "10.82.0", "10.82.0.2", kind.node)?;
        let mut relay_proc = relay(settings, &relay_ns, PUNCH_RELAY, &format!("kind{k}-0.log"))?;
        let _node = node(
            settings,
            &node_ns,
            PUNCH_RELAY,
            &share,
            &["--relayed"],
            &format!("kind{k}-node"),
        )?;
        relay_proc.wait_for("catalog of ")?;
        let mut through = Vec::new();
        for t in 0..tries {
            let (_, log) = client(settings, &client_ns, PUNCH_RELAY, &["small.txt"])?;
            match punch_time(&log) {
                Some(ms) => through.push(ms),
                None => {
                    if !log.contains("failed in") {
                        return Err(format!("no punch was tried:\n{log}"));
                    }
                    // A fresh relay, which does not remember the pair.
                    drop(relay_proc);
                    relay_proc = relay(
                        settings,
                        &relay_ns,
                        PUNCH_RELAY,
                        &format!("kind{k}-{}.log", t + 1),
                    )?;
                    relay_proc.wait_for("catalog of ")?;
                }
            }
        }
        let time = if through.is_empty() {
            String::new()
        } else {
            format!(", median {:.1} ms", median(&through))
        };
        table.add(Row {
            what: format!(
                "punches through, and time to a punched connection: {}",
                kind.what
            ),
            ours: format!(
                "{}/{tries} ({:.0}%){time}",
                through.len(),
                100.0 * through.len() as f64 / tries as f64
            ),
            baseline: "-".into(),
            ratio: None,
            target: "-".into(),
            met: None,
        });
    }
    Ok(())
}
