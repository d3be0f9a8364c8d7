//! Several hosts, end to end: the relay, three nodes and the client each in
//! its own Linux network namespace with its own 10.x address, joined by veth
//! pairs on a bridge (the lab of `harness::netns`). Traffic only ever goes
//! to addresses inside the namespaces this test created.
//!
//! Namespaces need root. Where they cannot be created the test says why and
//! skips, unless `P2P_REQUIRE_NETNS` is set (as `.ci/run` does): then it
//! fails, so CI always runs it.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::netns::Lab;
use harness::{Proc, READY, Run, addr_after, run};

/// The port the relay listens on inside its namespace.
const RELAY_PORT: u16 = 7000;
/// The client's connect timeout when a node is unreachable.
const CONNECT_TIMEOUT: &str = "1";
/// How long one client run may take before the test fails.
const CLIENT: Duration = Duration::from_secs(20);

fn share(root: &Path, dir: &str, name: &str) -> PathBuf {
    let dir = root.join(dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), format!("{name} from {dir:?}\n")).unwrap();
    dir
}

/// `peer-client` in the client's namespace against the relay.
fn client(lab: &Lab, host: usize, relay_ip: &str, args: &[&str]) -> Run {
    let mut cmd = lab.command(host, "peer-client");
    cmd.arg(relay_ip).arg(RELAY_PORT.to_string()).args(args);
    run(cmd, b"", CLIENT)
}

#[test]
fn relay_nodes_and_client_on_separate_hosts() {
    let tag = format!("p2p{}", std::process::id());
    // Declared first, so it is dropped last: after every process in it.
    let Some(mut lab) = Lab::or_skip(&tag) else {
        return;
    };
    let relay_host = lab.host("relay", "10.77.0.1");
    let node_hosts: Vec<usize> = (1..=3)
        .map(|i| lab.host(&format!("n{i}"), &format!("10.77.0.1{i}")))
        .collect();
    let client_host = lab.host("client", "10.77.0.100");
    let relay_ip = lab.hosts[relay_host].ip.clone();

    let mut cmd = lab.command(relay_host, "relay");
    cmd.arg(RELAY_PORT.to_string());
    let relay = Proc::spawn("relay", cmd);
    relay.wait_for("listening on", READY);

    // Nodes listen on all interfaces and register one after the other, so
    // the relay lists them in this order: node 1, the one cut later, first.
    let tmp = tempfile::tempdir().unwrap();
    let names = ["a.txt", "b.txt", "c.txt"];
    let mut nodes: Vec<(Proc, SocketAddr)> = Vec::new();
    for (i, &h) in node_hosts.iter().enumerate() {
        let dir = share(tmp.path(), &format!("n{}", i + 1), names[i]);
        let mut cmd = lab.command(h, "peer-node");
        cmd.arg(&relay_ip)
            .arg(RELAY_PORT.to_string())
            .arg(&dir)
            .args(["--heartbeat", "1"]);
        let node = Proc::spawn("peer-node", cmd);
        let line = node.wait_for("registered with relay", READY);
        let listed = addr_after(&line, " as ");
        assert_eq!(
            listed.ip().to_string(),
            lab.hosts[h].ip,
            "a node is listed under its real address: {line}"
        );
        nodes.push((node, listed));
    }
    let listed: Vec<SocketAddr> = nodes.iter().map(|(_, a)| *a).collect();

    // The client, on a host of its own, sees the nodes' real addresses.
    let out = client(&lab, client_host, &relay_ip, &["--peers"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let shown: Vec<SocketAddr> = out
        .stdout_text()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(shown, listed, "{}", out.stdout_text());

    // It fetches a file from each node.
    for (i, name) in names.iter().enumerate() {
        let out = client(&lab, client_host, &relay_ip, &[name]);
        assert_eq!(out.code(), 0, "{}", out.stderr);
        let want = fs::read(tmp.path().join(format!("n{}", i + 1)).join(name)).unwrap();
        assert_eq!(out.stdout, want);
        let from = format!("found on {}, node ", listed[i]);
        assert!(out.stderr.contains(&from), "{}", out.stderr);
    }

    // Node 1's link is cut; the relay still lists it first (its TTL has not
    // run out), so a client asking nodes in turn tries it, pays the connect
    // timeout once, and gets b.txt from node 2. (Through the relay's index
    // only node 2, the holder, would be asked.)
    lab.cut(node_hosts[0]);
    let start = Instant::now();
    let out = client(
        &lab,
        client_host,
        &relay_ip,
        &["--no-index", "b.txt", "--connect-timeout", CONNECT_TIMEOUT],
    );
    let took = start.elapsed();
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, fs::read(tmp.path().join("n2/b.txt")).unwrap());
    let tried = format!("could not reach {}, node 1 of 3", listed[0]);
    assert!(out.stderr.contains(&tried), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("found on {}, node 2 of 3", listed[1])),
        "{}",
        out.stderr
    );
    assert!(
        took < Duration::from_secs(3),
        "the dead node should cost at most the 1 s connect timeout; the run took {took:?}:\n{}",
        out.stderr
    );
    eprintln!("fetch past the dead node took {took:?}");
    drop(nodes);
    drop(relay);
}
