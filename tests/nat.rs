//! A node behind NAT, end to end on separate hosts (network namespaces, see
//! `harness::netns`): the relay, the client and a direct node on a bridge;
//! a second node behind a home router that masquerades with nftables, with
//! no port forward and no route inward. The relay cannot dial the NATed
//! node back, so it is listed as relayed and served through circuits (the
//! relay runs with `--no-punch`: hole punching is tests/punch.rs).
//!
//! Namespaces need root and nftables. Where they are missing the test says
//! why and skips, unless `P2P_REQUIRE_NETNS` is set (as `.ci/run` does).

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::netns::{Lab, skip_or_fail};
use harness::{Proc, READY, Run, addr_after, run, start_held};

/// The relay's port inside its namespace.
const RELAY_PORT: u16 = 7000;
/// The relay's TTL: short, so that "back within one TTL" is quick to check.
const TTL_SECS: u64 = 3;
/// How long one client run may take before the test fails.
const CLIENT: Duration = Duration::from_secs(60);
/// The large file: 64 MiB of bytes that do not repeat in any short period.
const BIG: usize = 64 << 20;

fn big_content() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BIG / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

/// `peer-client` on host `h` against the relay, with `args`.
fn client_cmd(lab: &Lab, h: usize, relay_ip: &str, args: &[&str]) -> Command {
    let mut cmd = lab.command(h, "peer-client");
    cmd.arg(relay_ip).arg(RELAY_PORT.to_string()).args(args);
    cmd
}

fn client(lab: &Lab, h: usize, relay_ip: &str, args: &[&str]) -> Run {
    run(client_cmd(lab, h, relay_ip, args), b"", CLIENT)
}

fn start_relay(lab: &Lab, h: usize) -> Proc {
    let mut cmd = lab.command(h, "relay");
    cmd.arg(RELAY_PORT.to_string())
        .args(["--ttl", &TTL_SECS.to_string(), "--no-punch"]);
    let relay = Proc::spawn("relay", cmd);
    relay.wait_for("listening on", READY);
    relay
}

/// The last address a node logged being registered as.
fn last_listed(node: &Proc) -> SocketAddr {
    let log = node.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("registered with relay"))
        .unwrap_or_else(|| panic!("never registered:\n{log}"));
    addr_after(line, " as ")
}

/// `--peers` as (address, relayed?) pairs.
fn peers(lab: &Lab, h: usize, relay_ip: &str) -> Vec<(SocketAddr, bool)> {
    let out = client(lab, h, relay_ip, &["--peers"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    out.stdout_text()
        .lines()
        .map(|l| {
            let addr = l.split_whitespace().next().unwrap().parse().unwrap();
            let relayed = l.contains("  relayed  refreshed ");
            assert!(l.ends_with("s ago"), "unexpected --peers line {l:?}");
            (addr, relayed)
        })
        .collect()
}

fn write(dir: &Path, name: &str, content: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), content).unwrap();
}

#[test]
fn a_node_behind_nat_is_relayed() {
    // Declared first, so it is dropped last: after every process in it.
    let Some(mut lab) = Lab::or_skip("nt") else {
        return;
    };
    let relay_h = lab.host("relay", "10.62.0.1");
    let direct_h = lab.host("direct", "10.62.0.11");
    let client_h = lab.host("client", "10.62.0.100");
    let (_router_h, nat_h) = match lab.nat("gw", "10.62.0.2", "10.63.0.1", "natted", "10.63.0.2") {
        Ok(hosts) => hosts,
        Err(why) => {
            skip_or_fail::<()>(&why);
            return;
        }
    };
    let relay_ip = lab.hosts[relay_h].ip.clone();

    let tmp = tempfile::tempdir().unwrap();
    let big = big_content();
    let nat_dir = tmp.path().join("natted");
    let direct_dir = tmp.path().join("direct");
    write(&nat_dir, "small.txt", b"hello from behind the router\n");
    write(&nat_dir, "big.bin", &big);
    write(&direct_dir, "big.bin", &big);

    let mut relay = start_relay(&lab, relay_h);
    let node = |h: usize, dir: &Path| {
        let mut cmd = lab.command(h, "peer-node");
        cmd.arg(&relay_ip)
            .arg(RELAY_PORT.to_string())
            .arg(dir)
            .args(["--heartbeat", "1"]);
        let node = Proc::spawn("peer-node", cmd);
        node.wait_for("registered with relay", READY);
        node
    };
    // The NATed node first, so that clients try it first.
    let natted = node(nat_h, &nat_dir);
    let mut direct = node(direct_h, &direct_dir);

    // The relay could not dial the NATed node back, said so, and the node
    // switched to relayed mode: listed under the router's address.
    natted.wait_for("switching to relayed mode", READY);
    let nat_listed = last_listed(&natted);
    assert_eq!(nat_listed.ip().to_string(), "10.62.0.2", "{}", natted.log());
    relay.wait_for("unreachable", READY);
    let direct_listed = last_listed(&direct);
    assert_eq!(direct_listed.ip().to_string(), "10.62.0.11");
    assert_eq!(
        peers(&lab, client_h, &relay_ip),
        [(nat_listed, true), (direct_listed, false)],
        "the NATed node relayed, the direct one direct under its own address"
    );

    // Both catalogs reach the relay's index, the NATed node's in exchanges
    // through the router, under the address its control connection has.
    relay.wait_for(&format!("catalog of {nat_listed}: reset"), READY);
    relay.wait_for(&format!("catalog of {direct_listed}: reset"), READY);
    // And with every hash: a file still hashing is asked for after the
    // holders whose hash is known, which would change the order below.
    natted.wait_for("catalog at relay", READY);
    direct.wait_for("catalog at relay", READY);

    // A small file that only the NATed node has: the index names it as the
    // one holder, reached through a circuit.
    let out = client(&lab, client_h, &relay_ip, &["small.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"hello from behind the router\n");
    let via = format!("found on {nat_listed} (via relay), node 1 of 1");
    assert!(out.stderr.contains(&via), "{}", out.stderr);
    // Both hold big.bin: the direct holder comes first, whatever the
    // registration order (a direct path is cheaper than a circuit).
    let via = format!("found on {direct_listed}, node 1 of 2");

    // 64 MiB, byte-identical, from the direct node (one node at a time:
    // the first holder serves it all).
    let saved = tmp.path().join("big.out");
    let out = client(
        &lab,
        client_h,
        &relay_ip,
        &["big.bin", "-o", saved.to_str().unwrap(), "--sources", "1"],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains(&via), "{}", out.stderr);
    assert!(fs::read(&saved).unwrap() == big, "64 MiB differ");

    // From both holders at once: the NATed one through a circuit, the
    // direct one straight; byte-identical.
    fs::remove_file(&saved).unwrap();
    let out = client(
        &lab,
        client_h,
        &relay_ip,
        &["big.bin", "-o", saved.to_str().unwrap()],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let both = format!("{nat_listed} (via relay)");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("found on 2 nodes") && l.contains(&both)),
        "{}",
        out.stderr
    );
    assert!(fs::read(&saved).unwrap() == big, "64 MiB differ");

    // The relay restarts. Its table starts empty and lists nodes in the order
    // they join again (docs/PROTOCOL.md, "When the relay is down or
    // restarts"); which one gets there first is a race between the NATed
    // node's reconnect backoff and the direct node's heartbeat, and under
    // load the direct node often wins. The failover below needs the NATed
    // node to be the first holder, so the direct node is held (SIGSTOP)
    // across the restart and let go once the NATed node is back: the order
    // is then the one the test asks for, not the one the scheduler gives.
    direct.signal(libc::SIGSTOP);
    relay.kill();
    let relay = start_relay(&lab, relay_h);
    let restarted = Instant::now();
    // The NATed node is back within one TTL, on its own.
    let back_after = loop {
        let listed = peers(&lab, client_h, &relay_ip);
        if listed.iter().any(|(_, relayed)| *relayed) {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(TTL_SECS),
            "the NATed node was not back within one TTL; its log:\n{}",
            natted.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("NATed node back {back_after:?} after the restart");
    let nat_listed = loop {
        let again = last_listed(&natted);
        if again != nat_listed {
            break again;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The direct node is back at its next heartbeat (both must be, for the
    // failover below), listed after the NATed node.
    direct.signal(libc::SIGCONT);
    loop {
        let listed = peers(&lab, client_h, &relay_ip);
        if listed.len() == 2 {
            assert_eq!(
                listed,
                [(nat_listed, true), (direct_listed, false)],
                "after the restart: the NATed node first, relayed; the direct one after it; \
                 the relay's log:\n{}",
                relay.log()
            );
            break;
        }
        assert!(
            listed.len() < 2 && restarted.elapsed() < READY,
            "the direct node did not come back: {listed:?}; its log:\n{}",
            direct.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The restarted relay's index has both catalogs again, so the holders
    // come in registration order: the NATed node first.
    relay.wait_for(&format!("catalog of {nat_listed}: reset"), READY);
    relay.wait_for(&format!("catalog of {direct_listed}: reset"), READY);

    // Killed mid-transfer: the client (one node at a time) says so plainly
    // and gets the rest from the NATed node, through a circuit: the direct
    // holder comes first, the relayed one takes over.
    let mut held = start_held(client_cmd(
        &lab,
        client_h,
        &relay_ip,
        &["big.bin", "--sources", "1"],
    ));
    held.read_at_least(1 << 20);
    assert!(held.got.len() >= 1 << 20, "the transfer did not start");
    direct.kill();
    let out = held.finish(CLIENT);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == big, "the resumed file differs");
    let broke = format!("transfer from {direct_listed}, node 1 of 2 failed after");
    assert!(out.stderr.contains(&broke), "{}", out.stderr);
    let resumed = format!("found on {nat_listed} (via relay), node 2 of 2");
    assert!(out.stderr.contains(&resumed), "{}", out.stderr);
    drop(direct);
    drop(relay);
}
