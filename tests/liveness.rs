//! Active means alive: what the relay lists follows the nodes that are up
//! now, at addresses a client can reach.
//!
//! Every test runs real processes on free ports with short TTLs and
//! heartbeats, and waits by polling `peer-client --peers` or reading logs
//! against a deadline, never by sleeping a fixed time.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use harness::{Node, READY, Relay, Run, bin, run};

/// How long one client run may take before the test fails.
const CLIENT: Duration = Duration::from_secs(20);
/// Room for a loaded machine on top of what a rule promises.
const SLACK: Duration = Duration::from_millis(1500);

/// A client command against the relay at `host`:`port`.
fn client(host: &str, port: u16) -> Command {
    let mut cmd = Command::new(bin("peer-client"));
    cmd.arg(host).arg(port.to_string());
    cmd
}

/// `peer-client HOST PORT --peers`: the listed addresses, in order. Checks
/// that each line reads `IP:PORT  refreshed Ns ago`.
fn peers(host: &str, port: u16) -> Vec<SocketAddr> {
    let mut cmd = client(host, port);
    cmd.arg("--peers");
    let out = run(cmd, b"", CLIENT);
    assert_eq!(out.code(), 0, "--peers failed: {}", out.stderr);
    out.stdout_text()
        .lines()
        .map(|line| {
            let (addr, age) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("unexpected --peers line {line:?}"));
            let secs = age
                .strip_prefix("refreshed ")
                .and_then(|a| a.strip_suffix("s ago"))
                .unwrap_or_else(|| panic!("unexpected --peers line {line:?}"));
            secs.parse::<u32>()
                .unwrap_or_else(|_| panic!("no age in {line:?}"));
            addr.parse()
                .unwrap_or_else(|_| panic!("no address in {line:?}"))
        })
        .collect()
}

/// Polls `--peers` until `done` holds for the list; returns how long that
/// took, or panics with the last list after `within`.
fn until_peers(
    host: &str,
    port: u16,
    within: Duration,
    what: &str,
    done: impl Fn(&[SocketAddr]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let list = peers(host, port);
        if done(&list) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what}: not within {within:?}; the relay lists {list:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Fetches `name` through the relay and returns the client's run.
fn fetch(host: &str, port: u16, name: &str) -> Run {
    let mut cmd = client(host, port);
    cmd.arg(name);
    run(cmd, b"", CLIENT)
}

/// A directory holding one file, `name`, whose content is `name` itself.
fn share(root: &Path, dir: &str, name: &str) -> std::path::PathBuf {
    let dir = root.join(dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), name).unwrap();
    dir
}

#[test]
fn a_killed_node_leaves_the_list_after_the_ttl() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&["--ttl", "2"]);
    let dir = share(tmp.path(), "n1", "a.txt");
    let doomed = Node::start(&relay, &dir, &["--heartbeat", "0.5"]);
    let other = Node::start(&relay, &dir, &["--heartbeat", "0.5"]);
    let both = peers("127.0.0.1", relay.port());
    assert_eq!(both, [doomed.listed, other.listed]);

    doomed.proc.signal(libc::SIGKILL);
    let gone = doomed.listed;
    let took = until_peers(
        "127.0.0.1",
        relay.port(),
        Duration::from_secs(2) + SLACK,
        "the killed node should expire after the 2 s TTL",
        |list| !list.contains(&gone),
    );
    // It refreshed at most 2/3 s before it died: gone by the TTL, not sooner.
    assert!(
        took >= Duration::from_secs(1),
        "gone after {took:?}, before its TTL"
    );
    relay.proc.wait_for(&format!("node expired: {gone}"), READY);
    assert_eq!(peers("127.0.0.1", relay.port()), [other.listed]);
    // Joins and expiries are logged at info; refreshes only at debug.
    assert_eq!(relay.proc.count("node joined"), 2, "{}", relay.proc.log());
    assert_eq!(
        relay.proc.count("node refreshed"),
        0,
        "{}",
        relay.proc.log()
    );
}

#[test]
fn a_stopped_node_leaves_at_once_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    // A TTL far longer than the test: only the unregister can remove it.
    let relay = Relay::start(&["--ttl", "60"]);
    let dir = share(tmp.path(), "n1", "a.txt");
    let mut term = Node::start(&relay, &dir, &["--heartbeat", "0.2"]);
    let mut int = Node::start(&relay, &dir, &["--heartbeat", "0.2"]);
    assert_eq!(peers("127.0.0.1", relay.port()), [term.listed, int.listed]);

    for (node, signal) in [(&mut term, libc::SIGTERM), (&mut int, libc::SIGINT)] {
        node.proc.signal(signal);
        let status = node
            .proc
            .wait_exit(Duration::from_secs(5))
            .expect("the node should exit soon after the signal");
        assert_eq!(status.code(), Some(0), "{}", node.proc.log());
        node.proc.wait_for("unregistered from relay", READY);
        relay
            .proc
            .wait_for(&format!("node left: {}", node.listed), READY);
        let listed = peers("127.0.0.1", relay.port());
        assert!(
            !listed.contains(&node.listed),
            "{} still listed after it left: {listed:?}",
            node.listed
        );
    }
    assert!(peers("127.0.0.1", relay.port()).is_empty());
}

#[test]
fn after_a_relay_restart_every_live_node_is_back_within_one_heartbeat() {
    let tmp = tempfile::tempdir().unwrap();
    let heartbeat = Duration::from_secs(1);
    let mut relay = Relay::start(&["-v"]);
    let port = relay.port();
    let nodes: Vec<Node> = ["one.txt", "two.txt"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let dir = share(tmp.path(), &format!("n{i}"), name);
            Node::start(&relay, &dir, &["--heartbeat", "1"])
        })
        .collect();
    relay.proc.wait_for("node refreshed", READY);

    // The relay dies; its table, kept in memory only, dies with it.
    relay.proc.kill();
    for node in &nodes {
        node.proc.wait_for("could not register with relay", READY);
    }
    let relay = Relay::start_on_port("127.0.0.1", port, &[]);
    let expected: Vec<SocketAddr> = nodes.iter().map(|n| n.listed).collect();
    let took = until_peers(
        "127.0.0.1",
        port,
        heartbeat + SLACK,
        "every node should be listed again within one heartbeat",
        |list| expected.iter().all(|a| list.contains(a)),
    );
    eprintln!("nodes back {took:?} after the restart");
    for node in &nodes {
        // The node says so: it saw the relay down, then registered again.
        let deadline = Instant::now() + READY;
        while node.proc.count("registered with relay") < 2 {
            assert!(Instant::now() < deadline, "{}", node.proc.log());
            thread::sleep(Duration::from_millis(20));
        }
    }
    for name in ["one.txt", "two.txt"] {
        let out = fetch("127.0.0.1", port, name);
        assert_eq!(out.code(), 0, "{}", out.stderr);
        assert_eq!(out.stdout, name.as_bytes());
    }
    drop(relay);
}

#[test]
fn a_node_started_before_its_relay_registers_once_it_is_up() {
    let tmp = tempfile::tempdir().unwrap();
    let port = harness::free_port();
    let dir = share(tmp.path(), "n1", "early.txt");
    let node = Node::spawn("127.0.0.1", port, &dir, &["--heartbeat", "1"]);
    // It serves meanwhile, and says it keeps trying.
    node.proc.wait_for("could not register with relay", READY);
    node.proc.wait_for("retrying in", READY);

    let relay = Relay::start_on_port("127.0.0.1", port, &[]);
    let node = node.until_registered();
    until_peers(
        "127.0.0.1",
        port,
        Duration::from_secs(1) + SLACK,
        "the early node should register as soon as the relay is up",
        |list| list == [node.listed],
    );
    let out = fetch("127.0.0.1", relay.port(), "early.txt");
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"early.txt");
}

#[test]
fn an_advertised_host_is_listed_only_when_the_relay_trusts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = share(tmp.path(), "n1", "a.txt");
    // Port 45678 is only announced, never dialled: the port is always
    // honoured, the host only with --trust-advertised. No traffic ever goes
    // to 10.9.9.9.
    // The relays run with --no-relaying: dial-back would connect to the
    // advertised address, and nothing listens on the advertised port.
    let advertise = ["--advertise", "10.9.9.9:45678"];

    let relay = Relay::start(&["--no-relaying"]);
    let node = Node::start(&relay, &dir, &advertise);
    assert_eq!(node.listed, "127.0.0.1:45678".parse().unwrap());
    assert_eq!(
        peers("127.0.0.1", relay.port()),
        [node.listed],
        "listed under the IP the relay sees, with the advertised port"
    );
    relay.proc.wait_for(
        "advertised host 10.9.9.9; listing it as 127.0.0.1:45678",
        READY,
    );
    relay.proc.wait_for("--trust-advertised", READY);
    node.proc.wait_for("was not honoured", READY);

    let trusting = Relay::start(&["--trust-advertised", "--no-relaying"]);
    let node = Node::start(&trusting, &dir, &advertise);
    assert_eq!(node.listed, "10.9.9.9:45678".parse().unwrap());
    assert_eq!(peers("127.0.0.1", trusting.port()), [node.listed]);
    assert_eq!(trusting.proc.count("advertised host"), 0);
}

#[test]
fn relay_nodes_and_client_work_over_ipv6_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start_on("::1", &[]);
    let dir = share(tmp.path(), "n1", "six.txt");
    let node = Node::spawn("::1", relay.port(), &dir, &["--bind", "::1"]).until_registered();
    assert!(
        node.listed.ip().is_loopback() && node.listed.is_ipv6(),
        "{}",
        node.listed
    );
    assert_eq!(node.listed.port(), node.listen.port());
    assert_eq!(peers("::1", relay.port()), [node.listed]);
    let out = fetch("::1", relay.port(), "six.txt");
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"six.txt");
    assert!(out.stderr.contains("found on [::1]:"), "{}", out.stderr);
}

#[test]
fn a_dual_stack_relay_lists_ipv4_nodes_as_plain_ipv4() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start_on("::", &[]);
    let dir = share(tmp.path(), "n1", "four.txt");
    // The node dials the relay over IPv4; the relay's socket is IPv6.
    let node = Node::spawn("127.0.0.1", relay.port(), &dir, &[]).until_registered();
    let expected: SocketAddr = format!("127.0.0.1:{}", node.listen.port()).parse().unwrap();
    assert_eq!(node.listed, expected);
    assert_eq!(peers("127.0.0.1", relay.port()), [expected]);
    let out = fetch("127.0.0.1", relay.port(), "four.txt");
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"four.txt");
    assert!(
        !relay.proc.log().contains("::ffff:"),
        "{}",
        relay.proc.log()
    );
}

#[test]
fn a_ttl_under_one_second_is_refused() {
    let out = Command::new(bin("relay"))
        .args(["0", "--bind", "127.0.0.1", "--ttl", "0.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--ttl") && stderr.contains("at least 1"),
        "{stderr}"
    );
}
