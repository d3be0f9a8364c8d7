//! The programs keep working when the world around them fails: a log pipe
//! whose reader went away or hangs, and a flood of registrations from hosts without
//! a token.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use harness::{Node, Proc, READY, Relay, addr_after, bin};
use net::exchange::{self, Timeouts};
use proto::{ErrorKind, Registration, Request, Response, frame};

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs(10),
    }
}

/// The addresses the relay lists now.
fn listed(relay: SocketAddr) -> Vec<SocketAddr> {
    match exchange::call(relay, &Request::ListNodes, &timeouts()) {
        Ok(Response::Nodes(nodes)) => nodes.iter().map(|n| n.addr).collect(),
        other => panic!("the relay at {relay} did not list its nodes: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// A broken log pipe.

/// The relay's TTL in the test below, in seconds: short, so that three of
/// them pass quickly and the node refreshes three times a second.
const TTL_SECS: u64 = 1;

/// As under `relay 7000 2>&1 | head -1`: the relay's and the node's stderr
/// are pipes whose read end the test closes once the node has registered.
/// With `-v` every request and every heartbeat is a log line that meets the
/// broken pipe. Both serve 40 fetches, the node stays listed for 3 TTLs (so
/// its heartbeat lives), and SIGTERM still ends it within 2 s, unregistered.
#[test]
fn a_relay_and_a_node_whose_log_pipe_broke_serve_stay_listed_and_stop_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    let content = b"served without anyone reading the log\n";
    fs::write(dir.join("hello.txt"), content).unwrap();

    let (relay, relay_addr, mut node, node_addr) =
        start_verbose_pair(tmp.path(), &dir, Proc::spawn_then_close_stderr);
    // From here on, neither has anyone reading its stderr.

    for i in 1..=40 {
        let mut cmd = harness::client(relay_addr.port());
        cmd.arg("hello.txt");
        let run = harness::run(cmd, b"", Duration::from_secs(30));
        assert_eq!(
            run.code(),
            0,
            "fetch {i} of 40 failed ({}): {}",
            states(&relay, &node),
            run.stderr
        );
        assert_eq!(run.stdout, content, "fetch {i} of 40");
    }

    // Listed all along for three TTLs: the heartbeat survived its log lines.
    stays_listed(&relay, relay_addr, &node, node_addr);

    leaves_on_sigterm(
        &relay,
        relay_addr,
        &mut node,
        node_addr,
        Duration::from_secs(2),
    );
    assert_eq!(relay.state(), "still running");
}

// ---------------------------------------------------------------------------
// A registration flood.

/// What one flooding thread got back.
#[derive(Default, Debug)]
struct Tally {
    registered: usize,
    busy: usize,
    failed: usize,
    last_refusal: Option<String>,
}

/// Registers `from:port` the way a node does, from the loopback address
/// `from`: one connection, one request, the answer, the relay's close.
fn register_from(from: Ipv4Addr, relay: SocketAddr, port: u16, tally: &mut Tally) {
    let attempt = || -> std::io::Result<Response> {
        let mut stream = harness::connect_from(Some(from), relay, None)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request = Request::Register(Registration {
            port,
            advertised_ip: None,
            token: None,
        });
        frame::write(&mut stream, &request).map_err(std::io::Error::other)?;
        let response = frame::read::<Response>(&mut stream).map_err(std::io::Error::other)?;
        // The relay closes first, so the connection's TIME_WAIT is the
        // relay's and this address's ports are free again at once.
        let _ = stream.read(&mut [0u8; 16]);
        Ok(response)
    };
    match attempt() {
        Ok(Response::Registered(_)) => tally.registered += 1,
        Ok(Response::Error(e)) if e.kind == ErrorKind::Busy => {
            tally.busy += 1;
            tally.last_refusal = Some(e.message);
        }
        Ok(other) => panic!("{from}: unexpected answer {other:?}"),
        Err(_) => tally.failed += 1,
    }
}

/// Two hosts without a token (127.0.0.2 and 127.0.0.3) send 60 000
/// registrations each, with made-up ports. The relay lists at most 1 000
/// nodes afterwards (its per-address cap leaves 16 each), it logs the
/// refusals a line a second, not one each, and a real node from 127.0.0.1
/// then registers and is listed. The relay runs with `--no-relaying`, so
/// that the cap alone is tested: with dial-back none of the made-up ports
/// would be listed at all (relayed.rs tests that).
#[test]
fn a_registration_flood_from_two_addresses_leaves_room_for_a_real_node() {
    const PER_FLOODER: usize = 60_000;
    const THREADS_PER_FLOODER: usize = 8;
    let relay = Relay::start(&["--no-relaying"]);
    let flooders = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];

    let started = Instant::now();
    let tallies: Vec<(Ipv4Addr, Tally)> = thread::scope(|s| {
        let workers: Vec<_> = flooders
            .iter()
            .flat_map(|&from| (0..THREADS_PER_FLOODER).map(move |t| (from, t)))
            .map(|(from, t)| {
                let relay = relay.addr;
                s.spawn(move || {
                    let mut tally = Tally::default();
                    for i in (t..PER_FLOODER).step_by(THREADS_PER_FLOODER) {
                        let port = u16::try_from(1 + i).unwrap();
                        register_from(from, relay, port, &mut tally);
                    }
                    (from, tally)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let took = started.elapsed();
    let sent = flooders.len() * PER_FLOODER;
    eprintln!(
        "{sent} registrations in {:.1} s ({:.0}/s)",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64()
    );

    for from in flooders {
        let (mut registered, mut busy, mut failed) = (0, 0, 0);
        let mut refusal = None;
        for (_, t) in tallies.iter().filter(|(f, _)| *f == from) {
            registered += t.registered;
            busy += t.busy;
            failed += t.failed;
            refusal = refusal.or(t.last_refusal.clone());
        }
        eprintln!("{from}: {registered} registered, {busy} busy, {failed} failed");
        assert!(registered <= 1_000, "{from} registered {registered} nodes");
        assert!(
            failed <= PER_FLOODER / 100,
            "{from}: {failed} registrations failed outright"
        );
        let refusal = refusal.unwrap_or_else(|| panic!("{from} was never refused"));
        assert!(
            refusal.contains(&format!("too many nodes registered from {from}")),
            "{refusal}"
        );
    }
    let count = listed(relay.addr).len();
    eprintln!("the relay lists {count} nodes after the flood");
    assert!(count <= 1_000, "the relay lists {count} nodes");
    let log_lines = relay.proc.count("refused");
    let allowed = took.as_secs() as usize + 3;
    assert!(
        log_lines <= allowed,
        "{log_lines} log lines about refusals in {took:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    let node = Node::spawn("127.0.0.1", relay.port(), &dir, &[]);
    if node
        .proc
        .try_wait_for("registered with relay", READY)
        .is_none()
    {
        panic!(
            "a real node from 127.0.0.1 did not register after the flood; its log:\n{}",
            node.proc.log()
        );
    }
    let node = node.until_registered();
    assert!(
        listed(relay.addr).contains(&node.listed),
        "{} is not listed",
        node.listed
    );
}

// ---------------------------------------------------------------------------
// A client whose stderr is gone.

/// `peer-client ... 2>&1 | head -1`: status lines and errors go to stderr,
/// and a closed stderr must not turn a fetch into a panic (exit 101). The
/// file still arrives whole, and a missing one still exits 1.
#[test]
fn a_client_whose_stderr_is_closed_still_fetches_and_exits_with_its_code() {
    let cluster = harness::Cluster::start(1, |_, dir| {
        fs::write(dir.join("hello.txt"), b"hello through a closed stderr\n").unwrap();
    });
    for (name, code, stdout) in [
        ("hello.txt", 0, &b"hello through a closed stderr\n"[..]),
        ("missing.txt", 1, &b""[..]),
    ] {
        let mut cmd = cluster.client();
        cmd.arg(name)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start the client");
        // Close the read end of stderr before the client writes a line.
        drop(child.stderr.take());
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{name}: {status:?}");
        assert_eq!(out, stdout, "{name}");
    }
}

// ---------------------------------------------------------------------------
// A log reader that hangs.

/// Requests sent to each of relay and node once their log pipes are full:
/// each is a log line of some 70 bytes, so together more than the 256 KiB a
/// program queues while nobody reads its stderr, and lines are dropped.
const FLOOD: usize = 5_000;

/// Fetches through the real client, also with both logs stuck.
const FETCHES: usize = 200;

/// Under a supervisor whose log reader hangs, or `2>&1 | less` left paused,
/// stderr is a pipe that stays open and is never read. Here the relay's and
/// the node's are full to the last byte once the node has registered, and
/// at `-v` every request is a log line at both ends. The node still answers
/// 5 000 listings and serves 200 fetches through the real client, the relay
/// still answers 5 000 lists, the node stays listed for 3 TTLs (its
/// heartbeat lives), and SIGTERM still unregisters it and ends it within
/// its 5 s deadline. When the relay's reader comes back, its log says how
/// many lines were dropped, and goes on.
#[test]
fn a_relay_and_a_node_whose_log_reader_hangs_serve_stay_listed_and_stop_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    const FILES: usize = 20;
    let name = |i: usize| format!("f{:02}.txt", i % FILES);
    let content = |i: usize| format!("file {}, served while nobody reads the log\n", i % FILES);
    for i in 0..FILES {
        fs::write(dir.join(name(i)), content(i)).unwrap();
    }

    let (relay, relay_addr, mut node, node_addr) =
        start_verbose_pair(tmp.path(), &dir, Proc::spawn_then_stall_stderr);
    // From here on, neither's stderr is read, and neither has room left.
    relay.fill_stderr();
    node.fill_stderr();

    let started = Instant::now();
    for i in 1..=FLOOD {
        match exchange::call(node_addr, &Request::ListFiles, &timeouts()) {
            Ok(Response::Files(_)) => {}
            other => panic!(
                "listing {i} of {FLOOD} at the node: {other:?} ({})",
                states(&relay, &node)
            ),
        }
        match exchange::call(relay_addr, &Request::ListNodes, &timeouts()) {
            Ok(Response::Nodes(_)) => {}
            other => panic!(
                "list {i} of {FLOOD} at the relay: {other:?} ({})",
                states(&relay, &node)
            ),
        }
    }
    for i in 0..FETCHES {
        let mut cmd = harness::client(relay_addr.port());
        cmd.arg(name(i));
        let run = harness::run(cmd, b"", Duration::from_secs(30));
        assert_eq!(
            run.code(),
            0,
            "fetch {} of {FETCHES} failed ({}): {}",
            i + 1,
            states(&relay, &node),
            run.stderr
        );
        assert_eq!(run.stdout, content(i).as_bytes(), "fetch {}", i + 1);
    }
    let took = started.elapsed();
    eprintln!("{FLOOD} requests at each end and {FETCHES} fetches in {took:?}, logs stuck");
    assert!(
        took < Duration::from_secs(300),
        "{FLOOD} requests at each end and {FETCHES} fetches took {took:?}"
    );

    // Listed all along for three TTLs: the heartbeat survived its log lines.
    stays_listed(&relay, relay_addr, &node, node_addr);

    // Its last log lines cannot get out: the exit gives up on them.
    leaves_on_sigterm(
        &relay,
        relay_addr,
        &mut node,
        node_addr,
        Duration::from_secs(5),
    );

    // The relay's reader comes back: first what was queued, then how many
    // lines did not fit, then the log goes on.
    relay.resume_stderr();
    let gap = relay.wait_for("log lines dropped here", READY);
    eprintln!("the relay's log where its reader came back: {gap}");
    assert_eq!(relay.state(), "still running");
    assert_eq!(listed(relay_addr), Vec::<SocketAddr>::new());
    relay.wait_for("listed 0 active nodes", READY);
    let log = relay.log();
    assert!(
        log.find(&gap) < log.rfind("listed 0 active nodes"),
        "the relay's log does not go on after the gap:\n{gap}\n...\n{}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
}

/// A relay and a node sharing `dir`, both at `-v` (every request is a log
/// line), each started with `spawn`, which stops reading its stderr once the
/// line given to it has come. Returns once the relay has seen the node join:
/// relay, its address, node, the address it is listed under.
fn start_verbose_pair(
    tmp: &Path,
    dir: &Path,
    spawn: fn(&str, Command, &str) -> Proc,
) -> (Proc, SocketAddr, Proc, SocketAddr) {
    let mut cmd = Command::new(bin("relay"));
    cmd.args([
        "0",
        "--bind",
        "127.0.0.1",
        "-v",
        "--ttl",
        &TTL_SECS.to_string(),
    ]);
    let relay = spawn("relay", cmd, "node joined");
    let relay_addr = addr_after(&relay.wait_for("listening on", READY), "listening on ");
    let mut cmd = Command::new(bin("peer-node"));
    cmd.arg("127.0.0.1")
        .arg(relay_addr.port().to_string())
        .arg(dir)
        .arg("-v")
        .env("XDG_CACHE_HOME", tmp.join("cache"))
        .env("XDG_CONFIG_HOME", tmp.join("config"));
    let node = spawn("peer-node", cmd, "registered with relay");
    let node_addr = addr_after(&node.wait_for("registered with relay", READY), " as ");
    relay.wait_for("node joined", READY);
    (relay, relay_addr, node, node_addr)
}

/// How both programs are, for a failure message.
fn states(relay: &Proc, node: &Proc) -> String {
    format!("relay {}, node {}", relay.state(), node.state())
}

/// The node stays on the relay's list for three TTLs and a half: its
/// heartbeat lives.
fn stays_listed(relay: &Proc, relay_addr: SocketAddr, node: &Proc, node_addr: SocketAddr) {
    let ttl = Duration::from_secs(TTL_SECS);
    let until = Instant::now() + 3 * ttl + ttl / 2;
    while Instant::now() < until {
        assert!(
            listed(relay_addr).contains(&node_addr),
            "{node_addr} dropped off the relay's list ({})",
            states(relay, node)
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM ends the node within `within`, with success, unregistered.
fn leaves_on_sigterm(
    relay: &Proc,
    relay_addr: SocketAddr,
    node: &mut Proc,
    node_addr: SocketAddr,
    within: Duration,
) {
    node.signal(libc::SIGTERM);
    let status = node.wait_exit(within).unwrap_or_else(|| {
        panic!(
            "the node did not end within {within:?} of SIGTERM ({})",
            states(relay, node)
        )
    });
    assert!(status.success(), "the node ended with {status}");
    assert!(
        !listed(relay_addr).contains(&node_addr),
        "the node did not unregister on its way out"
    );
}
