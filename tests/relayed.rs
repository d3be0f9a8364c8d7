//! Relayed mode on loopback: nodes started with `--relayed` serve through
//! circuits at the relay; the circuit caps answer `busy`; dial-back keeps a
//! registration for a port where nothing listens out of the list. (The same
//! over real NAT, on separate hosts, is tests/nat.rs.)

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use harness::{Node, Relay, client, run, start_held};
use proto::exchange::{self, Timeouts};
use proto::{ErrorKind, NodeMode, Registration, Request, Response};

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
    let relay = Relay::start(&[]);
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

    let out = fetch(&relay, &["r.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, b"through the relay\n");
    let via = format!("found on {} (via relay), node 1 of 2", relayed.listed);
    assert!(out.stderr.contains(&via), "{}", out.stderr);

    let out = fetch(&relay, &["d.txt"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "not on {} (via relay), node 1 of 2",
            relayed.listed
        )),
        "{}",
        out.stderr
    );

    let out = fetch(&relay, &["--list"]);
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
    let relay = Relay::start(&["--max-circuits-per-node", "1"]);
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
