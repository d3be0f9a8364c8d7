//! Relayed mode on loopback: nodes started with `--relayed` serve through
//! circuits at the relay; the circuit caps answer `busy`; dial-back keeps a
//! registration for a port where nothing listens out of the list. (The same
//! over real NAT, on separate hosts, is tests/nat.rs.) The relays here run
//! with `--no-punch`: on loopback the relay can always dial a client back,
//! so it would reach every relayed node by reversal instead (tests/punch.rs).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use harness::{Node, Relay, client, run, start_held};
use net::exchange::{self, Timeouts};
use proto::{ContentHash, ErrorKind, NodeMode, Registration, Request, Response, Target};

const CLIENT: Duration = Duration::from_secs(60);

fn share(dir: &Path, name: &str, content: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), content).unwrap();
}

fn fetch(relay: &Relay, args: &[&str]) -> harness::Run {
    let mut cmd = client(relay.port());
    cmd.args(args);
    run(cmd, b"", CLIENT)
}

fn ask(relay: &Relay, request: &Request) -> Response {
    exchange::call(relay.addr, request, &Timeouts::default()).expect("the relay answers")
}

fn long_list(relay: &Relay) -> Vec<(SocketAddr, NodeMode)> {
    match ask(relay, &Request::ListNodesLong) {
        Response::NodesLong(nodes) => nodes.iter().map(|n| (n.addr, n.mode)).collect(),
        other => panic!("not a long list: {other:?}"),
    }
}

#[test]
fn a_relayed_node_serves_files_and_listings_through_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&["--no-punch"]);
    let relayed_dir = tmp.path().join("relayed");
    let direct_dir = tmp.path().join("direct");
    share(&relayed_dir, "r.txt", b"through the relay\n");
    share(&direct_dir, "d.txt", b"straight\n");
    let relayed = Node::start(&relay, &relayed_dir, &["--relayed"]);
    let direct = Node::start(&relay, &direct_dir, &[]);
    assert!(
        relayed.proc.log().contains("(relayed;"),
        "{}",
        relayed.proc.log()
    );
    // Listed under its control connection's address, not its listener's.
    assert_ne!(relayed.listed, relayed.listen);

    assert_eq!(
        long_list(&relay),
        [
            (relayed.listed, NodeMode::Relayed),
            (direct.listed, NodeMode::Direct)
        ]
    );
    // An older client, which cannot open circuits, is shown direct nodes only.
    match ask(&relay, &Request::ListNodes) {
        Response::Nodes(nodes) => {
            assert_eq!(nodes.len(), 1);
            assert_eq!(nodes[0].addr, direct.listed);
        }
        other => panic!("not a list: {other:?}"),
    }

    let out = fetch(&relay, &["--peers"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines: Vec<String> = out.stdout_text().lines().map(String::from).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("{}  relayed  refreshed ", relayed.listed)),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("{}  refreshed ", direct.listed)),
        "{lines:?}"
    );

    // Node by node (--no-index): the walk dials each node its own way.
    let out = fetch(&relay, &["--no-index", "r.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"through the relay\n");
    let via = format!("found on {} (via relay), node 1 of 2", relayed.listed);
    assert!(out.stderr.contains(&via), "{}", out.stderr);
    // Through the index, only the holder is asked.
    let out = fetch(&relay, &["r.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"through the relay\n");
    let via = format!("found on {} (via relay), node 1 of 1", relayed.listed);
    assert!(out.stderr.contains(&via), "{}", out.stderr);

    let out = fetch(&relay, &["--no-index", "d.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "not on {} (via relay), node 1 of 2",
            relayed.listed
        )),
        "{}",
        out.stderr
    );

    let out = fetch(&relay, &["--list", "--nodes"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let listing = out.stdout_text();
    assert!(
        listing.contains(&format!("{} (1 file)\n", relayed.listed)) && listing.contains("r.txt"),
        "{listing}"
    );
    relay
        .proc
        .wait_for(&format!("to {} closed", relayed.listed), harness::READY);
}

#[test]
fn circuit_caps_answer_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&["--no-punch", "--max-circuits-per-node", "1"]);
    let dir = tmp.path().join("n");
    // Large enough that a held transfer fills every buffer on the way.
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 253) as u8).collect();
    share(&dir, "big.bin", &big);
    share(&dir, "small.txt", b"small\n");
    let node = Node::start(&relay, &dir, &["--relayed"]);

    let mut cmd = client(relay.port());
    cmd.arg("big.bin");
    let mut held = start_held(cmd);
    held.read_at_least(64 * 1024);
    assert!(held.got.len() >= 64 * 1024, "the transfer did not start");

    // The one circuit the node may have is taken: a second one is refused.
    let out = fetch(&relay, &["small.txt"]);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    let refused = format!(
        "{} (via relay), node 1 of 1 refused: relay refused the circuit: relay busy: 1 \
         circuits open to node {} (limit 1 per node) (busy)",
        node.listed, node.listed
    );
    assert!(out.stderr.contains(&refused), "{}", out.stderr);
    relay.proc.wait_for("refused: relay busy", harness::READY);

    // The held transfer is unharmed, and once it ends the place is free.
    let out = held.finish(CLIENT);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == big, "the held transfer's bytes differ");
    relay
        .proc
        .wait_for(&format!("to {} closed", node.listed), harness::READY);
    let out = fetch(&relay, &["small.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"small\n");
}

#[test]
fn a_registration_for_a_port_where_nothing_listens_is_not_listed() {
    let relay = Relay::start(&[]);
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let registration = Registration {
        port,
        advertised_ip: None,
        token: None,
    };
    match ask(&relay, &Request::Register(registration)) {
        Response::Error(e) => {
            assert_eq!(e.kind, ErrorKind::Unreachable, "{e:?}");
            assert!(
                e.message
                    .contains(&format!("could not connect back to 127.0.0.1:{port}")),
                "{}",
                e.message
            );
        }
        other => panic!("a dead port was accepted: {other:?}"),
    }
    assert_eq!(long_list(&relay), []);
    relay.proc.wait_for("unreachable", harness::READY);

    // A relay that does not relay lists it as before (nothing checked).
    let unchecked = Relay::start(&["--no-relaying"]);
    let registration = Registration {
        port,
        advertised_ip: None,
        token: None,
    };
    assert!(matches!(
        ask(&unchecked, &Request::Register(registration)),
        Response::Registered(_)
    ));
    match ask(&unchecked, &Request::OpenCircuit(relay.addr)) {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::Forbidden, "{e:?}"),
        other => panic!("a circuit without relaying: {other:?}"),
    }
}

#[test]
fn a_relayed_nodes_catalog_is_indexed_and_holders_are_fetched_through_the_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&["--no-punch"]);
    let relayed_dir = tmp.path().join("relayed");
    let direct_dir = tmp.path().join("direct");
    let content: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    share(&relayed_dir.join("deep"), "data.bin", &content);
    share(&direct_dir, "other.txt", b"not this one\n");
    let direct = Node::start(&relay, &direct_dir, &[]);
    direct.proc.wait_for("catalog at relay", harness::READY);
    let mut relayed = Node::start(&relay, &relayed_dir, &["--relayed"]);
    // The catalog travels in short exchanges, under the address the node is
    // listed at (its control connection's), and lands on the relayed entry.
    relayed.proc.wait_for("catalog at relay", harness::READY);
    relay.proc.wait_for(
        &format!(
            "catalog of {}: reset, +1 -0, 1 files indexed",
            relayed.listed
        ),
        harness::READY,
    );

    let who_has = |target: Target| match ask(&relay, &Request::WhoHas(target)) {
        Response::Holders(list) => list,
        other => panic!("not a holder list: {other:?}"),
    };
    let list = who_has(Target::Name("deep/data.bin".into()));
    let holders: Vec<SocketAddr> = list.holders.iter().map(|h| h.addr).collect();
    assert_eq!(holders, [relayed.listed]);
    assert!(list.unindexed.is_empty(), "{list:?}");
    assert_eq!(list.nodes, 2);

    // By name, through the index: only the holder is contacted, through a
    // circuit, and the bytes are verified.
    let out = fetch(&relay, &["deep/data.bin"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout == content, "the fetched bytes differ");
    let via = format!("found on {} (via relay), node 1 of 1", relayed.listed);
    assert!(out.stderr.contains(&via), "{}", out.stderr);
    assert!(out.stderr.contains("blake3 "), "{}", out.stderr);
    relayed.proc.wait_for(
        &format!("verified (blake3 {})", ContentHash::of(&content).short()),
        harness::READY,
    );
    assert!(
        !direct.proc.log().contains("data.bin"),
        "{}",
        direct.proc.log()
    );

    // By content hash, to a file.
    let hash = ContentHash::of(&content);
    let saved = tmp.path().join("saved.bin");
    let out = fetch(
        &relay,
        &[&format!("blake3:{hash}"), "-o", saved.to_str().unwrap()],
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        std::fs::read(&saved).unwrap() == content,
        "saved bytes differ"
    );
    assert!(out.stderr.contains(&via), "{}", out.stderr);

    // The catalog lives as long as the control connection.
    relayed.proc.kill();
    relay.proc.wait_for(
        &format!("node left: {}, relayed", relayed.listed),
        harness::READY,
    );
    let list = who_has(Target::Hash(hash));
    assert!(list.holders.is_empty(), "{list:?}");
    assert_eq!(list.nodes, 1);
    let out = fetch(&relay, &["deep/data.bin"]);
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("not found on any of 1 active node (the relay's index)"),
        "{}",
        out.stderr
    );
}
