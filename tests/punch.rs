//! Hole punching end to end, on separate hosts (network namespaces and
//! nftables NAT routers, see `harness::netns`): a client and a relayed node
//! connect directly with the relay's help, and the relay carries their
//! bytes only when that fails.
//!
//! - a node behind NAT and a client on the open network: the relay can dial
//!   the client back, so the node connects out to it (reversal); the relay
//!   carries no file bytes, counted on its own link;
//! - node and client each behind a router: both connect at once
//!   (simultaneous open);
//! - behind a router that gives each connection a random port (a symmetric
//!   NAT): the punch fails within its bound and the relay carries the file,
//!   intact, and does not make the pair wait again;
//! - a punched transfer in a private network: nothing readable on the wire;
//! - one fetch from a punched holder and a relayed one at once.
//!
//! And on loopback, without namespaces: the relay can always dial the client
//! back there, so every relayed node is reached by reversal, unless the
//! client or the relay says `--no-punch`; an older node (plain `Control`)
//! is reached through a circuit, and a node asks an older relay, which does
//! not know `ControlPunch`, for plain relayed mode.
//!
//! Namespaces need root and nftables. Where they are missing the test says
//! why and skips, unless `P2P_REQUIRE_NETNS` is set (as `.ci/run` does).

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::netns::{Lab, NatKind, skip_or_fail};
use harness::{Node, Proc, READY, Relay, Run, addr_after, client, run};
use net::exchange::{Connection, Route, Timeouts};
use net::secure::Dial;
use proto::{ErrorKind, Registered, Registration, Request, Response, frame};

/// The relay's port inside its namespace.
const RELAY_PORT: u16 = 7000;
/// How long one client run may take before the test fails.
const CLIENT: Duration = Duration::from_secs(60);
/// The file fetched: big enough that relaying it would show at the relay.
const SIZE: usize = 16 << 20;
/// What the relay may carry for a punched fetch: the requests, the
/// rendezvous, handshakes in a private network; not the file.
const CONTROL_BYTES: u64 = 256 << 10;

/// `SIZE` bytes that do not repeat in any short period.
fn content() -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..SIZE / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

fn write(dir: &Path, name: &str, content: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), content).unwrap();
}

/// A lab with a relay on the bridge at 10.66.0.1. A test makes it before
/// its processes, so it is dropped after them; its namespaces go with it,
/// also when the test fails.
struct World {
    lab: Lab,
    relay_h: usize,
    relay_ip: String,
    tmp: tempfile::TempDir,
}

impl World {
    fn new(name: &str) -> Option<World> {
        let mut lab = Lab::or_skip(name)?;
        let relay_h = lab.host("relay", "10.66.0.1");
        let relay_ip = lab.ip_of(relay_h).to_string();
        Some(World {
            lab,
            relay_h,
            relay_ip,
            tmp: tempfile::tempdir().unwrap(),
        })
    }

    /// A host `name` behind a router of `kind` at 10.66.0.`n` (the inner
    /// host is 10.6`n`.0.2 on the router's LAN); None (after saying why)
    /// when nftables is missing.
    fn behind_nat(&mut self, name: &str, n: u8, kind: NatKind) -> Option<usize> {
        let outside = format!("10.66.0.{n}");
        let router_ip = format!("10.{}.0.1", 66 + n);
        let inner_ip = format!("10.{}.0.2", 66 + n);
        let router = format!("g{name}");
        match self
            .lab
            .nat_with(&router, &outside, &router_ip, name, &inner_ip, kind)
        {
            Ok((_, inner)) => Some(inner),
            Err(why) => skip_or_fail(&why),
        }
    }

    fn relay(&self, args: &[&str]) -> Proc {
        let mut cmd = self.lab.command(self.relay_h, "relay");
        cmd.arg(RELAY_PORT.to_string()).arg("-v").args(args);
        let relay = Proc::spawn("relay", cmd);
        relay.wait_for("listening on", READY);
        relay
    }

    /// A node on host `h` sharing `dir`; returns once the relay lists it
    /// as relayed and has its catalog.
    fn node(&self, relay: &Proc, h: usize, dir: &Path, args: &[&str]) -> (Proc, SocketAddr) {
        let mut cmd = self.lab.command(h, "peer-node");
        cmd.arg(&self.relay_ip)
            .arg(RELAY_PORT.to_string())
            .arg(dir)
            .args(["--heartbeat", "1", "--cache"])
            .arg(dir.with_extension("cache"))
            .args(args);
        let node = Proc::spawn("peer-node", cmd);
        let line = node.wait_for("(relayed;", READY);
        let listed = addr_after(&line, " as ");
        relay.wait_for(&format!("catalog of {listed}: reset"), READY);
        (node, listed)
    }

    fn client_cmd(&self, h: usize, args: &[&str]) -> Command {
        let mut cmd = self.lab.command(h, "peer-client");
        cmd.arg(&self.relay_ip)
            .arg(RELAY_PORT.to_string())
            .args(args);
        cmd
    }

    fn client(&self, h: usize, args: &[&str]) -> Run {
        run(self.client_cmd(h, args), b"", CLIENT)
    }

    /// Fetches `name` on host `h` into a file, `-v`, with `args`; checks it
    /// is `want`, byte for byte; returns the run.
    fn fetch(&self, h: usize, name: &str, want: &[u8], args: &[&str]) -> Run {
        let saved = self.tmp.path().join(format!("{name}.out"));
        let _ = fs::remove_file(&saved);
        let mut all = vec![name, "-o", saved.to_str().unwrap(), "-v"];
        all.extend_from_slice(args);
        let out = self.client(h, &all);
        assert_eq!(out.code(), 0, "{}", out.stderr);
        assert!(fs::read(&saved).unwrap() == want, "{name} differs");
        out
    }
}

/// The `(direct, hole-punched)` status line for `listed`.
fn punched(listed: SocketAddr) -> String {
    format!("found on {listed} (direct, hole-punched)")
}

/// The `--peers` line of `listed`.
fn peers_line(world: &World, h: usize, listed: SocketAddr) -> String {
    let out = world.client(h, &["--peers"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    out.stdout_text()
        .lines()
        .find(|l| l.starts_with(&format!("{listed}  ")))
        .unwrap_or_else(|| panic!("{listed} not in --peers:\n{}", out.stdout_text()))
        .to_string()
}

#[test]
fn a_node_behind_nat_connects_out_to_a_client_the_relay_can_reach() {
    let Some(mut world) = World::new("rv") else {
        return;
    };
    let client_h = world.lab.host("client", "10.66.0.100");
    let Some(node_h) = world.behind_nat("node", 2, NatKind::default()) else {
        return;
    };
    let big = content();
    let dir = world.tmp.path().join("share");
    write(&dir, "big.bin", &big);
    let relay = world.relay(&[]);
    let (_node, listed) = world.node(&relay, node_h, &dir, &[]);
    let line = peers_line(&world, client_h, listed);
    assert!(line.contains("  relayed, punchable  "), "{line}");

    let before = world.lab.traffic(world.relay_h);
    let out = world.fetch(client_h, "big.bin", &big, &["--sources", "1"]);
    let carried = world.lab.traffic(world.relay_h) - before;
    assert!(out.stderr.contains(&punched(listed)), "{}", out.stderr);
    assert!(
        out.stderr.contains("answered the relay's dial-back"),
        "{}",
        out.stderr
    );
    relay.wait_for(&format!("to {listed}: direct by reversal"), READY);
    assert!(
        carried < CONTROL_BYTES,
        "the relay's link carried {carried} bytes for a {SIZE}-byte punched fetch:\n{}",
        relay.log()
    );
    assert!(
        !relay.log().contains("circuit"),
        "no circuit expected:\n{}",
        relay.log()
    );
}

/// A home router: masquerade, and a WAN firewall that drops what comes
/// unasked (docs/BENCHMARKS.md has routers that answer with a reset).
const HOME: NatKind = NatKind {
    random_ports: false,
    drop_unsolicited: true,
    delay: None,
};

/// A router that gives every connection a random port: a symmetric NAT.
const SYMMETRIC: NatKind = NatKind {
    random_ports: true,
    drop_unsolicited: true,
    delay: None,
};

#[test]
fn a_client_and_a_node_each_behind_a_router_punch_through_both() {
    let Some(mut world) = World::new("so") else {
        return;
    };
    let Some(client_h) = world.behind_nat("client", 3, HOME) else {
        return;
    };
    let Some(node_h) = world.behind_nat("node", 2, HOME) else {
        return;
    };
    let big = content();
    let dir = world.tmp.path().join("share");
    write(&dir, "big.bin", &big);
    let relay = world.relay(&[]);
    let (_node, listed) = world.node(&relay, node_h, &dir, &[]);

    let before = world.lab.traffic(world.relay_h);
    let out = world.fetch(client_h, "big.bin", &big, &["--sources", "1"]);
    let carried = world.lab.traffic(world.relay_h) - before;
    assert!(out.stderr.contains(&punched(listed)), "{}", out.stderr);
    relay.wait_for(&format!("to {listed}: direct by simultaneous open"), READY);
    assert!(
        carried < CONTROL_BYTES,
        "the relay's link carried {carried} bytes for a {SIZE}-byte punched fetch:\n{}",
        relay.log()
    );
}

#[test]
fn behind_a_symmetric_nat_the_punch_fails_within_its_bound_and_the_relay_carries_it() {
    let Some(mut world) = World::new("sy") else {
        return;
    };
    let Some(client_h) = world.behind_nat("client", 3, HOME) else {
        return;
    };
    let Some(node_h) = world.behind_nat("node", 2, SYMMETRIC) else {
        return;
    };
    let big = content();
    let dir = world.tmp.path().join("share");
    write(&dir, "big.bin", &big);
    let relay = world.relay(&[]);
    let (_node, listed) = world.node(&relay, node_h, &dir, &[]);
    assert!(peers_line(&world, client_h, listed).contains("  relayed, punchable  "));

    // The node's connections leave from ports nobody can predict: the
    // client's SYNs meet a closed NAT, and the node's a port the client's
    // NAT never opened. Both give up within the bound; the file comes
    // through the relay, intact.
    let out = world.fetch(client_h, "big.bin", &big, &["--sources", "1"]);
    assert!(
        out.stderr
            .contains(&format!("found on {listed} (via relay), node 1 of 1")),
        "{}",
        out.stderr
    );
    let failed = out
        .stderr
        .lines()
        .find(|l| l.contains("by simultaneous open failed in "))
        .unwrap_or_else(|| panic!("no failed punch:\n{}", out.stderr));
    let ms: f64 = failed
        .split("failed in ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no time in {failed:?}"));
    let bound = (net::punch::WITHIN + net::punch::GREETING).as_secs_f64() * 1000.0;
    assert!(ms <= bound + 50.0, "{ms} ms past the bound: {failed}");
    relay.wait_for(
        &format!("to {listed} by simultaneous open failed: relaying"),
        READY,
    );

    // The relay remembers: the next fetch is relayed at once, and --peers
    // no longer offers the node to this client for punching.
    let out = world.fetch(client_h, "big.bin", &big, &["--sources", "1"]);
    assert!(
        out.stderr.contains("a circuit instead"),
        "relayed at once expected:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("by simultaneous open failed"),
        "{}",
        out.stderr
    );
    relay.wait_for("failed 0 s ago", READY);
    let line = peers_line(&world, client_h, listed);
    assert!(line.contains("  relayed  refreshed "), "{line}");
}

#[test]
fn a_punched_transfer_in_a_private_network_shows_nothing_on_the_wire() {
    let Some(mut world) = World::new("sc") else {
        return;
    };
    let Some(client_h) = world.behind_nat("client", 3, HOME) else {
        return;
    };
    let Some(node_h) = world.behind_nat("node", 2, HOME) else {
        return;
    };
    let secret = ["--secret", "open sesame, but only for us"];
    let name = "plans-for-the-heist.txt";
    let plain: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("THE-PLAINTEXT line {i:06}\n").into_bytes())
        .collect();
    let dir = world.tmp.path().join("share");
    write(&dir, name, &plain);
    let key = world.tmp.path().join("node.key");
    let relay = world.relay(&secret);
    let mut node_args = secret.to_vec();
    node_args.extend(["--key", key.to_str().unwrap()]);
    let (_node, listed) = world.node(&relay, node_h, &dir, &node_args);

    let pcap = world.tmp.path().join("bridge.pcap");
    let mut tcpdump = world.lab.on_bridge("tcpdump");
    tcpdump
        .args(["-i", "br0", "-U", "--immediate-mode", "-n", "-w"])
        .arg(&pcap)
        .arg("tcp");
    let mut capture = Proc::spawn("tcpdump", tcpdump);
    capture.wait_for("listening on", READY);
    let out = world.fetch(client_h, name, &plain, &secret);
    capture.signal(libc::SIGINT);
    capture.wait_exit(READY);
    assert!(out.stderr.contains(&punched(listed)), "{}", out.stderr);

    // Packets still in tcpdump's buffer when it stops are lost: most of
    // the transfer is enough to judge it.
    let wire = fs::read(&pcap).unwrap();
    assert!(
        wire.len() > plain.len() / 2,
        "the capture ({} bytes) missed the transfer ({} bytes): {}",
        wire.len(),
        plain.len(),
        capture.log()
    );
    let seen = |needle: &[u8]| wire.windows(needle.len()).any(|w| w == needle);
    assert!(
        !seen(b"THE-PLAINTEXT"),
        "file content readable on the bridge"
    );
    assert!(
        !seen(name.as_bytes()),
        "the file name readable on the bridge"
    );
    assert!(!seen(b"line 000"), "file content readable on the bridge");
}

#[test]
fn one_fetch_takes_pieces_from_a_punched_holder_and_a_relayed_one() {
    let Some(mut world) = World::new("ms") else {
        return;
    };
    let Some(client_h) = world.behind_nat("client", 3, HOME) else {
        return;
    };
    let Some(near_h) = world.behind_nat("near", 2, HOME) else {
        return;
    };
    let Some(far_h) = world.behind_nat("far", 4, SYMMETRIC) else {
        return;
    };
    let big = content();
    let near_dir = world.tmp.path().join("near");
    let far_dir = world.tmp.path().join("far");
    write(&near_dir, "big.bin", &big);
    write(&far_dir, "big.bin", &big);
    write(&far_dir, "far.txt", b"only behind the symmetric NAT\n");
    let relay = world.relay(&[]);
    let (_near, near) = world.node(&relay, near_h, &near_dir, &[]);
    let (_far, far) = world.node(&relay, far_h, &far_dir, &[]);

    // The relay learns that this client cannot punch to the far node...
    let out = world.fetch(client_h, "far.txt", b"only behind the symmetric NAT\n", &[]);
    assert!(
        out.stderr.contains(&format!("found on {far} (via relay)")),
        "{}",
        out.stderr
    );
    // ...so one fetch from both holders punches to one and is relayed to
    // the other, at once; byte-identical.
    let out = world.fetch(client_h, "big.bin", &big, &["--sources", "2"]);
    let both = out
        .stderr
        .lines()
        .find(|l| l.starts_with("found on 2 nodes"))
        .unwrap_or_else(|| panic!("not from both holders:\n{}", out.stderr));
    assert!(
        both.contains(&format!("{near} (direct, hole-punched)"))
            && both.contains(&format!("{far} (via relay)")),
        "{both}"
    );
}

/// `peer-client` on loopback against `relay`, with `args`.
fn fetch_here(relay: &Relay, args: &[&str]) -> Run {
    let mut cmd = client(relay.port());
    cmd.args(args);
    run(cmd, b"", CLIENT)
}

#[test]
fn on_loopback_a_relayed_node_is_reached_by_reversal_unless_punching_is_off() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    write(&dir, "r.txt", b"not through the relay\n");
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, &dir, &["--relayed"]).until_indexed();
    let listed = node.listed;
    relay
        .proc
        .wait_for(&format!("node joined: {listed}, relayed, can punch"), READY);

    let out = fetch_here(&relay, &["r.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"not through the relay\n");
    assert!(out.stderr.contains(&punched(listed)), "{}", out.stderr);
    relay
        .proc
        .wait_for(&format!("to {listed}: direct by reversal"), READY);
    let out = fetch_here(&relay, &["--peers"]);
    assert!(
        out.stdout_text()
            .contains(&format!("{listed}  relayed, punchable  refreshed ")),
        "{}",
        out.stdout_text()
    );

    // The client says no: a circuit.
    let out = fetch_here(&relay, &["r.txt", "--no-punch"]);
    assert_eq!(out.stdout, b"not through the relay\n", "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("found on {listed} (via relay)")),
        "{}",
        out.stderr
    );
    relay.proc.wait_for(&format!("to {listed} open"), READY);

    // The relay says no: the client's punch request gets a circuit at once.
    let plain = Relay::start(&["--no-punch"]);
    let node = Node::start(&plain, &dir, &["--relayed"]).until_indexed();
    let out = fetch_here(&plain, &["r.txt", "-v"]);
    assert_eq!(out.stdout, b"not through the relay\n", "{}", out.stderr);
    assert!(
        out.stderr.contains("a circuit instead")
            && out
                .stderr
                .contains(&format!("found on {} (via relay)", node.listed)),
        "{}",
        out.stderr
    );
    let out = fetch_here(&plain, &["--peers"]);
    assert!(
        out.stdout_text()
            .contains(&format!("{}  relayed  refreshed ", node.listed)),
        "{}",
        out.stdout_text()
    );
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs(10),
    }
}

/// A node from before hole punching opens its control connection with
/// `Control`: the relay never asks it to punch, and a client's punch
/// request is answered with a circuit to it.
#[test]
fn an_older_node_is_reached_through_a_circuit() {
    let relay = Relay::start(&[]);
    let mut control = Connection::open(relay.addr, &timeouts()).unwrap();
    let registration = Registration {
        port: 4000,
        advertised_ip: None,
        token: None,
    };
    let Response::Registered(Registered { addr: listed, .. }) =
        control.request(&Request::Control(registration)).unwrap()
    else {
        panic!("not registered");
    };
    let relay_addr = relay.addr;
    let old_node = std::thread::spawn(move || {
        let mut stream = control.into_stream();
        // The first word from the relay is about a circuit, never a punch.
        let Ok(Response::OpenData(id)) = frame::read::<Response>(&mut stream) else {
            panic!("expected OpenData");
        };
        let mut data = net::circuit::join(relay_addr, id, &timeouts(), &Dial::Plain).unwrap();
        assert_eq!(frame::read::<Request>(&mut data).unwrap(), Request::Hello);
        frame::write(&mut data, &Response::Hello).unwrap();
    });
    let mut conn = net::punch::open(
        &[relay.addr],
        listed,
        &timeouts(),
        &Dial::Plain,
        &Dial::Plain,
    )
    .unwrap();
    assert_eq!(conn.route(), Route::Relayed);
    assert_eq!(conn.request(&Request::Hello).unwrap(), Response::Hello);
    old_node.join().unwrap();
}

/// A relay from before hole punching does not know `ControlPunch`: the
/// node asks again with `Control`, on a new connection, and is relayed.
#[test]
fn a_node_asks_an_older_relay_for_plain_relayed_mode() {
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&asked);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let peer = stream.peer_addr().unwrap();
                let registered = Response::Registered(Registered {
                    addr: peer,
                    ttl_secs: 30,
                });
                match frame::read::<Request>(&mut stream) {
                    Ok(Request::Control(_)) => {
                        log.lock().unwrap().push("Control".into());
                        let _ = frame::write(&mut stream, &registered);
                        // Keepalives until the node goes.
                        while let Ok(Request::Keepalive) = frame::read::<Request>(&mut stream) {
                            let _ = frame::write(&mut stream, &registered);
                        }
                    }
                    // What an older relay answers to a tag it does not know.
                    Ok(Request::ControlPunch(_)) => {
                        log.lock().unwrap().push("tag 16".into());
                        let _ = frame::write(
                            &mut stream,
                            &Response::error(ErrorKind::BadRequest, "unknown message tag 16"),
                        );
                    }
                    other => {
                        log.lock().unwrap().push(format!("{other:?}"));
                        let _ = frame::write(
                            &mut stream,
                            &Response::error(ErrorKind::BadRequest, "not here"),
                        );
                    }
                }
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    write(&dir, "a.txt", b"a\n");
    let node = Node::spawn("127.0.0.1", port, &dir, &["--relayed"]);
    node.proc.wait_for("(relayed;", READY);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.get(..2),
        Some(&["tag 16".to_string(), "Control".to_string()][..]),
        "{asked:?}"
    );
}

/// Linux routers without a firewall answer a SYN that comes before their
/// own side's with a reset, and then forget the connection their side had
/// begun: on veth, where a hop takes microseconds, two SYNs cannot cross
/// (docs/BENCHMARKS.md). A few milliseconds apart, as routers are on the
/// Internet, they do, and the first attempt gets through.
#[test]
fn routers_that_reset_are_punched_through_when_they_are_milliseconds_apart() {
    let Some(mut world) = World::new("rs") else {
        return;
    };
    let linux = NatKind {
        random_ports: false,
        drop_unsolicited: false,
        delay: Some(Duration::from_millis(5)),
    };
    let Some(client_h) = world.behind_nat("client", 3, linux) else {
        return;
    };
    let Some(node_h) = world.behind_nat("node", 2, linux) else {
        return;
    };
    // Small: the point is the punch, and the delay line is no fast wire.
    let small = &content()[..256 << 10];
    let dir = world.tmp.path().join("share");
    write(&dir, "small.bin", small);
    let relay = world.relay(&[]);
    let (_node, listed) = world.node(&relay, node_h, &dir, &[]);

    let out = world.fetch(client_h, "small.bin", small, &[]);
    assert!(out.stderr.contains(&punched(listed)), "{}", out.stderr);
    relay.wait_for(&format!("to {listed}: direct by simultaneous open"), READY);
}
