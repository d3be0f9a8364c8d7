//! Private networks (issues 14 and 17): with a secret, every connection is
//! a Noise handshake and then ciphertext; without the right secret nothing
//! but a clear refusal; a node must prove the key the relay listed; a relay
//! that holds only the relay key serves the network and can neither read
//! it nor pose as a node.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use harness::capture::{Capture, contains, core_of};
use harness::{Node, Proc, READY, Relay, Run, bin, run};
use net::secure::{Identity, NetworkKeys, NodeKey, Security, handshake};
use net::server::{Handler, Reply, Server, ServerConfig};
use proto::blind::{BlindCatalogUpdate, BlindEntry, IndexKey, Record, SealedPage, SealedRecord};
use proto::{ContentHash, ErrorKind, NodeInfo, NodeMode, ProtoError, Request, Response};

const SECRET: &str = "correct horse battery staple";

/// A peer-client command against `relay`, with `args`; P2P_SECRET comes only
/// from the test, never from the environment it runs in.
fn client(relay: u16, args: &[&str]) -> Command {
    let mut cmd = harness::client(relay);
    cmd.env_remove("P2P_SECRET").args(args);
    cmd
}

fn fetch(relay: u16, args: &[&str]) -> Run {
    run(client(relay, args), b"", Duration::from_secs(60))
}

/// A node over `dir` with its own key file in `keys` and `args`.
fn node(relay: &Relay, dir: &Path, keys: &Path, args: &[&str]) -> Node {
    let key = keys.join(format!(
        "{}.key",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let mut all = vec!["--bind", "127.0.0.1", "--key", key.to_str().unwrap()];
    all.extend_from_slice(args);
    Node::spawn_with("127.0.0.1", relay.port(), dir, &all, |cmd| {
        cmd.env_remove("P2P_SECRET");
    })
    .until_registered()
}

/// The key a node printed at start.
fn printed_key(node: &Node) -> NodeKey {
    let line = node.proc.wait_for("node key ", READY);
    let hex = line
        .split("node key ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    hex.parse().unwrap()
}

fn secret_relay(args: &[&str]) -> Relay {
    let mut all = vec!["--secret", SECRET];
    all.extend_from_slice(args);
    Relay::start(&all)
}

/// Two directories with a file each: `direct.txt` in node1, `relayed.txt`
/// in node2.
fn shares(tmp: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (tmp.join("node1"), tmp.join("node2"));
    for (dir, name) in [(&a, "direct.txt"), (&b, "relayed.txt")] {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), format!("the content of {name}\n")).unwrap();
    }
    (a, b)
}

/// Fetch, list and peers through a direct and a relayed node, with the
/// secret on every program; then the same with a relay that holds only the
/// relay key (`--relay-key`, as `peer-client --show-relay-key` prints it).
#[test]
fn fetch_list_and_relayed_fetch_with_the_secret_and_with_a_relay_key_only_relay() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = shares(tmp.path());
    let shown = fetch(0, &["--show-relay-key", "--secret", SECRET]);
    assert_eq!(shown.code(), 0, "{}", shown.stderr);
    let relay_key = shown.stdout_text().trim().to_string();
    assert_eq!(
        relay_key,
        NetworkKeys::from_secret(SECRET.as_bytes()).relay.to_hex()
    );

    // Circuits (--no-punch): punched fetches in a private network are in
    // tests/punch.rs.
    for relay_args in [
        vec!["--secret", SECRET, "--no-punch"],
        vec!["--relay-key", relay_key.as_str(), "--no-punch"],
    ] {
        let relay = Relay::start(&relay_args);
        let n1 = node(&relay, &d1, tmp.path(), &["--secret", SECRET]);
        let n2 = node(&relay, &d2, tmp.path(), &["--secret", SECRET, "--relayed"]);
        let (k1, k2) = (printed_key(&n1), printed_key(&n2));
        let port = relay.port();

        let got = fetch(port, &["direct.txt", "--secret", SECRET]);
        assert_eq!(
            got.stdout_text(),
            "the content of direct.txt\n",
            "{}",
            got.stderr
        );
        let got = fetch(port, &["relayed.txt", "--secret", SECRET]);
        assert_eq!(
            got.stdout_text(),
            "the content of relayed.txt\n",
            "{}",
            got.stderr
        );
        assert!(got.stderr.contains("(via relay)"), "{}", got.stderr);

        let list = fetch(port, &["--list", "--secret", SECRET]);
        assert_eq!(list.code(), 0, "{}", list.stderr);
        assert!(
            list.stdout_text().contains("direct.txt"),
            "{}",
            list.stdout_text()
        );
        assert!(
            list.stdout_text().contains("relayed.txt"),
            "{}",
            list.stdout_text()
        );

        let peers = fetch(port, &["--peers", "--secret", SECRET]).stdout_text();
        assert!(peers.contains(&format!("key {k1}")), "{peers}");
        assert!(peers.contains(&format!("key {k2}")), "{peers}");

        // Pinned: only the node holding the key is asked.
        let k2s = k2.to_string();
        let pinned = fetch(port, &["relayed.txt", "--secret", SECRET, "--node", &k2s]);
        assert_eq!(
            pinned.stdout_text(),
            "the content of relayed.txt\n",
            "{}",
            pinned.stderr
        );
        let pinned = fetch(port, &["direct.txt", "--secret", SECRET, "--node", &k2s]);
        assert_eq!(pinned.code(), 1, "{}", pinned.stderr);
        assert!(pinned.stdout.is_empty());
        // Only the pinned node is asked, so only its absence is told: the
        // blind index says it holds no direct.txt.
        assert_eq!(
            pinned.stderr,
            format!(
                "direct.txt: not found on the node with key {}... (the relay's index)\n",
                &k2s[..8]
            )
        );
        // A key no active node has: one line, exit 1, nobody asked.
        let nobody = NodeKey([0x81; 32]).to_string();
        let unknown = fetch(port, &["direct.txt", "--secret", SECRET, "--node", &nobody]);
        assert_eq!(
            (unknown.code(), unknown.stderr.as_str()),
            (1, "no active node has key 81818181...\n")
        );
        assert!(unknown.stdout.is_empty());
    }
}

/// A wrong secret, or none, against a private network, and a secret against
/// a plain one: one clear line, nothing on stdout, exit status 2, and for a
/// node, no listing.
#[test]
fn a_wrong_or_missing_secret_is_told_plainly_either_way_round() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, _) = shares(tmp.path());
    let relay = secret_relay(&[]);
    let _n1 = node(&relay, &d1, tmp.path(), &["--secret", SECRET]);
    let port = relay.port();
    let label = format!("relay 127.0.0.1:{port}");
    let cases: [(&[&str], String); 3] = [
        (
            &["direct.txt", "--secret", "wrong"],
            format!("{label} refused the handshake: wrong or missing secret"),
        ),
        (
            &["direct.txt"],
            format!("{label} refused the handshake: it requires a secret"),
        ),
        (
            &["--list", "--secret", "wrong"],
            format!("{label} refused the handshake: wrong or missing secret"),
        ),
    ];
    for (args, want) in cases {
        let got = fetch(port, args);
        assert_eq!(got.code(), 2, "{args:?}: {}", got.stderr);
        assert!(
            got.stdout.is_empty(),
            "{args:?}: stdout {:?}",
            got.stdout_text()
        );
        assert!(got.stderr.contains(&want), "{args:?}: {}", got.stderr);
        assert_eq!(got.stderr.lines().count(), 1, "{args:?}: {}", got.stderr);
    }

    // A node with the wrong secret is refused for good (status 2).
    let mut wrong = Node::spawn_with(
        "127.0.0.1",
        port,
        &d1,
        &[
            "--secret",
            "wrong",
            "--key",
            tmp.path().join("w.key").to_str().unwrap(),
        ],
        |cmd| {
            cmd.env_remove("P2P_SECRET");
        },
    );
    wrong
        .proc
        .wait_for("refused the handshake: wrong or missing secret", READY);
    let status = wrong.proc.wait_exit(READY).expect("the node exits");
    assert_eq!(status.code(), Some(2));

    // A client with a secret at a plain relay.
    let plain = Relay::start(&[]);
    let got = fetch(plain.port(), &["direct.txt", "--secret", SECRET]);
    assert_eq!(got.code(), 2, "{}", got.stderr);
    assert!(got.stdout.is_empty());
    assert!(
        got.stderr.contains(&format!(
            "relay 127.0.0.1:{} refused the handshake: it does not use a secret",
            plain.port()
        )),
        "{}",
        got.stderr
    );
}

/// The secret from P2P_SECRET, and from --secret-file (less one trailing
/// newline), on every program.
#[test]
fn the_secret_comes_from_the_environment_and_from_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, _) = shares(tmp.path());
    let file = tmp.path().join("secret");
    fs::write(&file, format!("{SECRET}\n")).unwrap();
    let file = file.to_str().unwrap();
    let mut cmd = Command::new(bin("relay"));
    cmd.args(["0", "--bind", "127.0.0.1"])
        .env("P2P_SECRET", SECRET);
    let relay_proc = Proc::spawn("relay", cmd);
    let line = relay_proc.wait_for("listening on", READY);
    let relay = Relay {
        addr: harness::addr_after(&line, "listening on "),
        proc: relay_proc,
    };
    relay.proc.wait_for("private network", READY);
    let _n1 = node(&relay, &d1, tmp.path(), &["--secret-file", file]);
    let mut from_env = client(relay.port(), &["direct.txt"]);
    from_env.env("P2P_SECRET", SECRET);
    let got = run(from_env, b"", Duration::from_secs(60));
    assert_eq!(
        got.stdout_text(),
        "the content of direct.txt\n",
        "{}",
        got.stderr
    );
    let got = fetch(relay.port(), &["direct.txt", "--secret-file", file]);
    assert_eq!(
        got.stdout_text(),
        "the content of direct.txt\n",
        "{}",
        got.stderr
    );
}

/// What a test-only hostile relay lists, and how it treats a circuit.
struct HostileRelay {
    nodes: Vec<NodeInfo>,
    /// Where it sends a client that asks for a punch: the impostor's own
    /// port ([`impostor_punch_port`]). None: it refuses punches.
    punch_to: Option<SocketAddr>,
    /// Its own static key pair, and the keys it holds: the relay key, and
    /// in the peer key's place whatever it has (here the relay key again).
    impostor: Arc<(NetworkKeys, Identity)>,
}

impl Handler for HostileRelay {
    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        match request {
            Request::ListNodesLong => reply.send(&Response::NodesLong(self.nodes.clone())),
            // The circuit: say it is ready, then answer the client's
            // end-to-end handshake itself, as the node it claims to reach.
            Request::OpenCircuit(_) => {
                reply.send(&Response::CircuitReady)?;
                let mut tcp = reply.tcp().try_clone()?;
                let (keys, id) = &*self.impostor;
                if let Err(refusal) = handshake::respond(&mut tcp, keys, id)
                    && let Some(answer) = refusal.answer
                {
                    proto::frame::write(&mut tcp, &*answer)?;
                }
                // Its own bytes into the circuit, in place of the node's.
                use std::io::Write;
                let _ = tcp.write_all(&[0, 32]);
                let _ = tcp.write_all(&[0x55; 32]);
                Ok(())
            }
            Request::Punch(_) if self.punch_to.is_some() => {
                reply.send(&Response::Rendezvous(proto::Rendezvous {
                    id: IMPOSTOR_PUNCH,
                    peer: self.punch_to.unwrap(),
                    way: proto::PunchWay::Simultaneous,
                }))
            }
            _ => reply.send(&Response::error(ErrorKind::BadRequest, "not here")),
        }
    }
}

/// The punch id a hostile relay hands out.
const IMPOSTOR_PUNCH: u64 = 0x5eed;

/// An impostor's punching port: it greets whoever connects as the node of
/// the hostile relay's punch would, then answers the client's end-to-end
/// handshake itself. Returns its address.
fn impostor_punch_port(keys: NetworkKeys, identity: Identity) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = proto::frame::write(&mut stream, &Request::JoinPunch(IMPOSTOR_PUNCH));
            let _ = proto::frame::read::<Response>(&mut stream);
            if let Err(refusal) = handshake::respond(&mut stream, &keys, &identity)
                && let Some(answer) = refusal.answer
            {
                let _ = proto::frame::write(&mut stream, &*answer);
            }
        }
    });
    addr
}

/// Starts a server for `handler` on loopback with the relay key only (and
/// `identity`); returns its address. The thread serves until the test ends.
fn serve_hostile(handler: impl Handler, keys: NetworkKeys, identity: Identity) -> SocketAddr {
    let config = ServerConfig {
        security: Security::private(keys, identity),
        ..ServerConfig::default()
    };
    let (server, addr) = Server::listen(Some([127, 0, 0, 1].into()), 0, config).unwrap();
    thread::spawn(move || server.serve(handler));
    addr
}

/// A hostile relay holding only the relay key lists a real node (1) with a
/// key that is not the node's, (2) under its own address and its own key,
/// and (3) as relayed, then answers the client's end-to-end handshake in
/// the circuit itself and splices its own bytes, (4) as relayed, and
/// sends the client to punch through to its own port. Each time the client
/// refuses with a clear line and saves nothing.
#[test]
fn a_relay_with_only_the_relay_key_cannot_pose_as_a_node() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, _) = shares(tmp.path());
    let relay = secret_relay(&[]);
    let real = node(&relay, &d1, tmp.path(), &["--secret", SECRET]);
    let real_key = printed_key(&real);
    let keys = NetworkKeys::from_secret(SECRET.as_bytes());
    let relay_only = NetworkKeys::relay_only(keys.relay.clone());
    let impostor_keys = NetworkKeys {
        relay: keys.relay.clone(),
        peer: Some(keys.relay.clone()),
    };
    let impostor = Identity::generate().unwrap();
    let impostor_key = impostor.public();
    let impostor_at = serve_hostile(
        HostileRelay {
            nodes: vec![],
            punch_to: None,
            impostor: Arc::new((impostor_keys.clone(), impostor.clone())),
        },
        impostor_keys.clone(),
        impostor.clone(),
    );
    let entry = |addr, mode, key| NodeInfo {
        addr,
        age_secs: 0,
        mode,
        key: Some(key),
    };
    let punch_port = impostor_punch_port(impostor_keys.clone(), impostor.clone());
    let cases = [
        (
            entry(real.listen, NodeMode::Direct, impostor_key),
            None,
            format!("answered with key {real_key}, not with the key {impostor_key}"),
        ),
        (
            entry(impostor_at, NodeMode::Direct, impostor_key),
            None,
            "refused the handshake: wrong or missing secret".to_string(),
        ),
        (
            entry(real.listen, NodeMode::Relayed, impostor_key),
            None,
            "refused the handshake: wrong or missing secret".to_string(),
        ),
        // (4) It "punches" the client through to its own port: the
        // connection opens, but the node's end must still prove the peer key.
        (
            entry(real.listen, NodeMode::Relayed, impostor_key),
            Some(punch_port),
            "refused the handshake: wrong or missing secret".to_string(),
        ),
    ];
    for (listed, punch_to, want) in cases {
        let hostile = serve_hostile(
            HostileRelay {
                nodes: vec![listed],
                punch_to,
                impostor: Arc::new((impostor_keys.clone(), impostor.clone())),
            },
            relay_only.clone(),
            Identity::generate().unwrap(),
        );
        let out = tmp.path().join("saved.txt");
        let got = fetch(
            hostile.port(),
            &[
                "direct.txt",
                "--secret",
                SECRET,
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(got.code(), 1, "{listed:?}: {}", got.stderr);
        assert!(got.stderr.contains(&want), "{listed:?}: {}", got.stderr);
        assert!(!out.exists(), "{listed:?}: something was saved");
        assert!(
            fs::read_dir(tmp.path())
                .unwrap()
                .all(|e| { !e.unwrap().file_name().to_string_lossy().contains("saved") }),
            "a partial file was left"
        );
    }
}

/// Captures of a direct and of a relayed encrypted transfer (the relayed
/// one on the relay's port: everything the relay carries) hold neither the
/// file's name nor any 16-byte piece of its content; a plain transfer
/// captured the same way holds both, so the capture does see the traffic.
#[test]
fn captures_of_encrypted_transfers_hold_neither_name_nor_content() {
    let tmp = tempfile::tempdir().unwrap();
    let name = "quarterly-confidential-figures.txt";
    let content: Vec<u8> = (0..64 * 1024u32)
        .map(|i| b"0123456789abcdefSECRETCONTENT"[(i % 29) as usize] ^ ((i / 29 % 7) as u8))
        .collect();
    let (d1, d2) = (tmp.path().join("node1"), tmp.path().join("node2"));
    for d in [&d1, &d2] {
        fs::create_dir_all(d).unwrap();
        fs::write(d.join(name), &content).unwrap();
    }
    let pieces: Vec<&[u8]> = content.chunks(16).step_by(97).collect();
    let leaks = |capture: &[u8]| -> Vec<String> {
        let mut found = Vec::new();
        if contains(capture, name.as_bytes()) {
            found.push("the file name".to_string());
        }
        let n = pieces.iter().filter(|p| contains(capture, p)).count();
        if n > 0 {
            found.push(format!("{n} pieces of the content"));
        }
        found
    };

    // Plain, as a control: the capture must see name and content (the
    // name in the who-has to the relay: a fetch by the index asks the
    // holder by content hash).
    let plain = Relay::start(&[]);
    let pn = Node::spawn_with(
        "127.0.0.1",
        plain.port(),
        &d1,
        &["--bind", "127.0.0.1"],
        |_| {},
    )
    .until_registered();
    let cap = Capture::start(tmp.path(), &[pn.listen.port(), plain.port()]);
    let got = fetch(plain.port(), &[name]);
    assert!(got.stdout == content, "{}", got.stderr);
    let (bytes, log) = cap.bytes_and_log(content.len());
    assert_eq!(
        leaks(&bytes).len(),
        2,
        "the plain capture missed the transfer ({} bytes); tcpdump said:\n{log}",
        bytes.len()
    );
    drop(pn);

    // Through a circuit (--no-punch), so the capture on the relay's port
    // holds the whole transfer.
    let relay = secret_relay(&["--no-punch"]);
    let direct = node(&relay, &d1, tmp.path(), &["--secret", SECRET]);
    let cap = Capture::start(tmp.path(), &[direct.listen.port(), relay.port()]);
    let got = fetch(relay.port(), &[name, "--secret", SECRET]);
    assert!(got.stdout == content, "{}", got.stderr);
    let bytes = cap.bytes(content.len());
    assert!(
        bytes.len() > content.len(),
        "capture of {} bytes",
        bytes.len()
    );
    assert_eq!(leaks(&bytes), Vec::<String>::new(), "direct transfer");
    drop(direct);

    let relayed = node(&relay, &d2, tmp.path(), &["--secret", SECRET, "--relayed"]);
    let cap = Capture::start(tmp.path(), &[relay.port()]);
    let got = fetch(relay.port(), &[name, "--secret", SECRET]);
    assert!(got.stdout == content, "{}", got.stderr);
    assert!(got.stderr.contains("(via relay)"), "{}", got.stderr);
    let bytes = cap.bytes(content.len());
    assert!(
        bytes.len() > content.len(),
        "capture of {} bytes",
        bytes.len()
    );
    assert_eq!(leaks(&bytes), Vec::<String>::new(), "relayed transfer");
    drop(relayed);
}

/// Another member (the relay key, another static key) cannot drop a node's
/// entry nor rewrite its catalog: only the node listed with the key may
/// unregister it or send its catalog.
#[test]
fn only_the_node_holding_its_key_may_unregister_it_or_send_its_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, _) = shares(tmp.path());
    let relay = secret_relay(&[]);
    let real = node(&relay, &d1, tmp.path(), &["--secret", SECRET]);
    let keys = NetworkKeys::from_secret(SECRET.as_bytes());
    let other = Security::private(keys, Identity::generate().unwrap());
    real.proc.wait_for("catalog at relay", READY);
    let registration = proto::Registration {
        port: real.listed.port(),
        advertised_ip: None,
        token: None,
    };
    let unregister = Request::Unregister(registration.clone());
    // A private network's relay keeps only the blind index.
    let catalog = Request::BlindCatalog(proto::blind::BlindCatalogUpdate {
        registration,
        base_seq: 0,
        seq: 1,
        reset: true,
        added: Vec::new(),
        removed: Vec::new(),
    });
    let timeouts = net::exchange::Timeouts::default();
    for request in [unregister, catalog] {
        match net::exchange::call_via(relay.addr, &request, &timeouts, &other.to_relay()) {
            Ok(Response::Error(e)) => {
                assert_eq!(e.kind, ErrorKind::Unauthorized);
                assert!(
                    e.message.contains("listed with another key"),
                    "{}",
                    e.message
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // Still listed, its catalog whole.
    let got = fetch(relay.port(), &["direct.txt", "--secret", SECRET]);
    assert_eq!(
        got.stdout_text(),
        "the content of direct.txt\n",
        "{}",
        got.stderr
    );
    assert!(got.stderr.contains("node 1 of 1"), "{}", got.stderr);
    let peers = fetch(relay.port(), &["--peers", "--secret", SECRET]).stdout_text();
    assert!(peers.contains(&real.listed.to_string()), "{peers}");
}

/// The relay's index and verified ranges in a private network, with a relay
/// holding the secret and with one holding only the relay key: catalogs
/// reach the relay under the relay key as tags and sealed records (the
/// blind index: a member asking it by tag finds each file's holder), a
/// fetch gets verified ranges (one of several chunk groups, encrypted)
/// from a direct and from a relayed holder, and `--search` answers;
/// without the secret, the index tells nothing.
#[test]
fn fetch_via_the_index_search_and_relayed_ranges_with_the_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = shares(tmp.path());
    // Large enough for many chunk groups and hash pairs; not text.
    let big: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(d2.join("big.bin"), &big).unwrap();
    let relay_key = NetworkKeys::from_secret(SECRET.as_bytes()).relay.to_hex();

    for relay_args in [
        vec!["--secret", SECRET, "--no-punch"],
        vec!["--relay-key", relay_key.as_str(), "--no-punch"],
    ] {
        let relay = Relay::start(&relay_args);
        let n1 = node(&relay, &d1, tmp.path(), &["--secret", SECRET]);
        let n2 = node(&relay, &d2, tmp.path(), &["--secret", SECRET, "--relayed"]);
        for n in [&n1, &n2] {
            n.proc.wait_for("catalog at relay", READY);
        }
        let port = relay.port();

        let index_key = IndexKey::of(&NetworkKeys::from_secret(SECRET.as_bytes())).unwrap();
        for (name, via) in [("direct.txt", false), ("relayed.txt", true)] {
            let got = fetch(port, &[name, "--secret", SECRET]);
            assert_eq!(
                got.stdout_text(),
                format!("the content of {name}\n"),
                "{relay_args:?}: {}",
                got.stderr
            );
            // Only the holder, by the blind index, with a proof.
            assert!(got.stderr.contains("node 1 of 1"), "{}", got.stderr);
            assert!(got.stderr.contains("blake3 "), "{}", got.stderr);
            assert_eq!(got.stderr.contains("(via relay)"), via, "{}", got.stderr);
            let tag = index_key.name_tag(name).short();
            relay
                .proc
                .wait_for(&format!("who has name tag {tag}"), READY);
        }

        let out = tmp.path().join("big.out");
        let got = fetch(
            port,
            &["big.bin", "-o", out.to_str().unwrap(), "--secret", SECRET],
        );
        assert_eq!(got.code(), 0, "{relay_args:?}: {}", got.stderr);
        assert!(got.stderr.contains("(via relay)"), "{}", got.stderr);
        assert!(got.stderr.contains("blake3 "), "{}", got.stderr);
        assert!(fs::read(&out).unwrap() == big, "big.bin arrived altered");
        fs::remove_file(&out).unwrap();

        let found = fetch(port, &["--search", ".txt", "--secret", SECRET]);
        assert_eq!(found.code(), 0, "{relay_args:?}: {}", found.stderr);
        let text = found.stdout_text();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("direct.txt"), "{text}");
        assert!(text.contains("relayed.txt"), "{text}");
        assert!(
            found.stderr.contains("(the relay's index)"),
            "{}",
            found.stderr
        );

        // Without the secret the index answers nothing: a handshake refusal.
        let refused = fetch(port, &["--search", ".txt"]);
        assert_eq!(refused.code(), 2, "{}", refused.stderr);
        assert!(refused.stdout.is_empty());
        assert!(
            refused.stderr.contains("refused the handshake"),
            "{}",
            refused.stderr
        );
        // Every catalog was taken: the nodes proved their listed keys.
        assert!(
            !relay.proc.log().contains(": not the key it is listed with"),
            "{}",
            relay.proc.log()
        );
    }
}

/// Files with names nobody would mistake for anything else in a core dump:
/// two on `d1`, two on `d2`, one content under two names (one on each).
fn telling_files<'a>(d1: &'a Path, d2: &'a Path) -> [(&'a Path, &'static str, &'static [u8]); 4] {
    let files: [(&Path, &str, &[u8]); 4] = [
        (d1, "payroll-qzx-2026.csv", b"alice,100\nbob,200\n"),
        (d1, "board-minutes-qzx.txt", b"minutes of the board\n"),
        (d2, "diagnosis-qzx.txt", b"a diagnosis\n"),
        (
            d2,
            "copy-of-board-minutes-qzx.txt",
            b"minutes of the board\n",
        ),
    ];
    for (dir, name, content) in &files {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), content).unwrap();
    }
    files
}

/// The real client in a private network asks the relay's blind index, and
/// a relay holding only the relay key learns no name and no hash from it:
/// fetch by name (from a direct and from a relayed holder, each the only
/// node asked) and by hash, `--list --long` and `--search` all answer from
/// the blind index, and afterwards the relay's `-v` log, a capture of its
/// port and a core dump of its process hold none of the shared names and
/// none of the content hashes (hex or raw). An older client asked the
/// relay `WhoHas` by name and `Search` by text, which put them in the
/// relay's memory.
#[test]
fn the_client_asks_the_blind_index_and_a_relay_key_only_relay_learns_no_name_or_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("node1"), tmp.path().join("node2"));
    let files = telling_files(&d1, &d2);
    let keys = NetworkKeys::from_secret(SECRET.as_bytes());
    let index_key = IndexKey::of(&keys).unwrap();
    let relay = Relay::start(&["--relay-key", &keys.relay.to_hex(), "--no-punch", "-v"]);
    let capture = Capture::start(tmp.path(), &[relay.port()]);
    let n1 = node(&relay, &d1, tmp.path(), &["--secret", SECRET]).until_indexed();
    let n2 = node(&relay, &d2, tmp.path(), &["--secret", SECRET, "--relayed"]).until_indexed();
    let port = relay.port();

    for (dir, name, content) in &files {
        let got = fetch(port, &[name, "--secret", SECRET]);
        assert_eq!(got.stdout, *content, "{name}: {}", got.stderr);
        // Only its holder, named by the blind index, with a proof.
        assert!(got.stderr.contains("node 1 of 1"), "{}", got.stderr);
        assert!(got.stderr.contains("blake3 "), "{}", got.stderr);
        let relayed = *dir == d2.as_path();
        assert_eq!(
            got.stderr.contains("(via relay)"),
            relayed,
            "{}",
            got.stderr
        );
        let tag = index_key.name_tag(name).short();
        relay
            .proc
            .wait_for(&format!("who has name tag {tag}"), READY);
    }
    // By hash: the content tag; either holder of the minutes serves it.
    let minutes = ContentHash::of(b"minutes of the board\n");
    let got = fetch(port, &[&format!("blake3:{minutes}"), "--secret", SECRET]);
    assert_eq!(got.stdout, b"minutes of the board\n", "{}", got.stderr);
    let tag = index_key.content_tag(&minutes).short();
    relay
        .proc
        .wait_for(&format!("who has content tag {tag}"), READY);

    // The listing, with whole hashes: every file once, with its holders.
    let list = fetch(port, &["--list", "--long", "--secret", SECRET]);
    assert_eq!(list.code(), 0, "{}", list.stderr);
    let text = list.stdout_text();
    assert_eq!(text.lines().count(), files.len(), "{text}");
    for (_, name, content) in &files {
        let line = text.lines().find(|l| l.ends_with(name)).unwrap_or_else(|| {
            panic!("{name} is not listed:\n{text}");
        });
        assert!(
            line.contains(&format!("blake3:{}", ContentHash::of(content))),
            "{line}"
        );
    }
    assert!(
        list.stderr
            .contains("4 results (files) on 2 active nodes (the relay's index)"),
        "{}",
        list.stderr
    );
    relay.proc.wait_for("list from 0", READY);
    // Searched here, in either case.
    let found = fetch(port, &["--search", "BOARD-minutes", "--secret", SECRET]);
    assert_eq!(found.code(), 0, "{}", found.stderr);
    let names: Vec<&str> = found
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| std::str::from_utf8(l).unwrap().rsplit("  ").next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["board-minutes-qzx.txt", "copy-of-board-minutes-qzx.txt"]
    );
    let missing = fetch(port, &["--search", "nothing-like-it", "--secret", SECRET]);
    assert_eq!(missing.code(), 1, "{}", missing.stderr);

    let core = core_of(relay.proc.pid(), tmp.path());
    let wire = capture.bytes(10_000);
    let log = relay.proc.log();
    assert!(core.len() > 1 << 20, "a core of {} bytes", core.len());
    for (_, name, content) in &files {
        let hash = ContentHash::of(content);
        let hex = hash.to_string();
        for (what, bytes) in [("core dump", &core), ("capture", &wire)] {
            assert!(!contains(bytes, name.as_bytes()), "the {what} holds {name}");
            assert!(
                !contains(bytes, &hash.0),
                "the {what} holds the hash of {name}"
            );
            assert!(
                !contains(bytes, hex.as_bytes()),
                "the {what} holds the hex hash of {name}"
            );
        }
        assert!(!log.contains(name), "the log names {name}:\n{log}");
        assert!(
            !log.contains(&hash.short()),
            "the log holds the hash of {name}:\n{log}"
        );
    }
    assert!(!contains(&core, b"nothing-like-it"), "the search text");
    // The control: the relay's memory does hold what it was given.
    let tag = index_key.name_tag(files[0].1);
    assert!(contains(&core, &tag.0), "the core dump misses the tags");
    drop((n1, n2));
}

/// A member that sends garbage records under an honest file's tags (bytes
/// that are no record, and a record sealed with another secret): the real
/// client names it in one line for each request (`node 127.0.0.1:4999 sent
/// a bad index record: ...; skipped`) and still finds the honest node's
/// file, by name, by hash, in the listing and in a search.
#[test]
fn the_client_names_a_node_sending_garbage_records_and_still_finds_the_others_files() {
    let tmp = tempfile::tempdir().unwrap();
    let honest_dir = tmp.path().join("honest");
    fs::create_dir_all(&honest_dir).unwrap();
    fs::write(honest_dir.join("good.txt"), b"good content\n").unwrap();
    let keys = NetworkKeys::from_secret(SECRET.as_bytes());
    // No dial-back: the liar below is this test, not a server.
    let relay = Relay::start(&["--relay-key", &keys.relay.to_hex(), "--no-relaying"]);
    let _honest = node(&relay, &honest_dir, tmp.path(), &["--secret", SECRET]).until_indexed();

    let liar = Security::private(keys.clone(), Identity::generate().unwrap());
    let ask = |request: &Request| {
        net::exchange::call_via(
            relay.addr,
            request,
            &net::exchange::Timeouts::default(),
            &liar.to_relay(),
        )
        .unwrap()
    };
    let registration = proto::Registration {
        port: 4999,
        advertised_ip: None,
        token: None,
    };
    let registered = ask(&Request::Register(registration.clone()));
    assert!(
        matches!(registered, Response::Registered(_)),
        "{registered:?}"
    );
    let k = IndexKey::of(&keys).unwrap();
    let good = ContentHash::of(b"good content\n");
    let alien = IndexKey::of(&NetworkKeys::from_secret(b"another secret")).unwrap();
    let added = vec![
        BlindEntry {
            name_tag: k.name_tag("good.txt"),
            content_tag: k.content_tag(&good),
            record: SealedRecord(vec![0x55; 128]),
        },
        BlindEntry {
            name_tag: k.name_tag("alien.txt"),
            content_tag: k.content_tag(&good),
            record: alien
                .seal(&Record {
                    name: "alien.txt".into(),
                    size: 13,
                    hash: good,
                })
                .unwrap(),
        },
    ];
    let ack = ask(&Request::BlindCatalog(BlindCatalogUpdate {
        registration,
        base_seq: 0,
        seq: 1,
        reset: true,
        added,
        removed: vec![],
    }));
    assert!(
        matches!(ack, Response::CatalogAck(ref a) if a.files == 2),
        "{ack:?}"
    );

    let port = relay.port();
    let named = |run: &Run, records: &str| {
        let lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("127.0.0.1:4999"))
            .collect();
        let want = format!(
            "node 127.0.0.1:4999 sent a bad index record: the record does not open with this \
             network's index key (altered, or sealed with another secret){records}; skipped"
        );
        assert_eq!(lines, [want.as_str()], "{}", run.stderr);
    };
    for target in ["good.txt".to_string(), format!("blake3:{good}")] {
        let got = fetch(port, &[&target, "--secret", SECRET]);
        assert_eq!(got.stdout, b"good content\n", "{target}: {}", got.stderr);
        named(&got, "");
    }
    let list = fetch(port, &["--list", "--secret", SECRET]);
    assert_eq!(list.code(), 0, "{}", list.stderr);
    assert!(
        list.stdout_text().ends_with("  good.txt\n"),
        "{}",
        list.stdout_text()
    );
    assert_eq!(list.stdout_text().lines().count(), 1);
    named(&list, " (2 bad records in all)");
    let found = fetch(port, &["--search", "GOOD", "--secret", SECRET]);
    assert_eq!(found.code(), 0, "{}", found.stderr);
    assert!(
        found.stdout_text().ends_with("  good.txt\n"),
        "{}",
        found.stdout_text()
    );
    named(&found, " (2 bad records in all)");
}

/// A relay that hands out listing pages whose next cursor never moves on.
struct StuckPager;

impl Handler for StuckPager {
    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        match request {
            Request::BlindList(page) => reply.send(&Response::SealedPage(SealedPage {
                nodes: 1,
                hits: vec![],
                next: Some(page.cursor),
            })),
            _ => reply.send(&Response::error(ErrorKind::BadRequest, "not here")),
        }
    }
}

/// A relay holding the relay key that pages the client round in circles:
/// `--list` and `--search` stop at the first page that does not move on,
/// with one line naming the relay, exit 2.
#[test]
fn a_listing_that_does_not_move_on_is_refused() {
    let keys = NetworkKeys::from_secret(SECRET.as_bytes());
    let relay = serve_hostile(
        StuckPager,
        NetworkKeys::relay_only(keys.relay.clone()),
        Identity::generate().unwrap(),
    );
    for args in [&["--list"][..], &["--search", "x"][..]] {
        let mut all = args.to_vec();
        all.extend(["--secret", SECRET]);
        let got = fetch(relay.port(), &all);
        assert_eq!(got.code(), 2, "{args:?}: {}", got.stderr);
        assert!(got.stdout.is_empty());
        assert_eq!(
            got.stderr,
            format!(
                "error: relay 127.0.0.1:{} sent a listing page whose next cursor (0) does not \
                 follow its own (0)\n",
                relay.port()
            )
        );
    }
}
