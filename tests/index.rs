//! The relay's index, end to end: catalogs reach the relay and follow DIR,
//! a fetch asks the relay who has a file and contacts only holders, a
//! missing file costs one relay round trip, search, versions, limits,
//! expiry, and the fallback against an older relay without an index.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use harness::{Cluster, Node, Relay, client, run};
use proto::{ErrorKind, NodeEntry, Registered, Request, Response, frame};

const CLIENT: Duration = Duration::from_secs(30);

/// Polls `probe` until it is true or `within` passes; true if it became true.
fn poll(within: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if probe() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn fetch(relay: &Relay, args: &[&str]) -> harness::Run {
    let mut cmd = client(relay.port());
    cmd.args(args);
    run(cmd, b"", CLIENT)
}

/// Lines a node logs without any client: startup, registration, catalog.
fn only_startup_lines(log: &str) -> bool {
    log.lines().all(|l| {
        [
            "listening on",
            "hashed ",
            "registered with relay",
            "catalog at relay",
        ]
        .iter()
        .any(|m| l.contains(m))
    })
}

#[test]
fn fetch_from_node_50_of_50_contacts_only_the_holder_and_a_missing_file_is_one_relay_question() {
    let started = Instant::now();
    let cluster = Cluster::start(50, |i, dir| {
        std::fs::write(dir.join(format!("common-{i}.txt")), "x").unwrap();
        if i == 49 {
            std::fs::write(dir.join("only-here.txt"), "from node 50\n").unwrap();
        }
    });
    let last = &cluster.nodes[49];
    last.proc.wait_for("catalog at relay", harness::READY);
    eprintln!("50 nodes up in {:?}", started.elapsed());

    let run = cluster.fetch(&["only-here.txt"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "from node 50\n");
    assert!(run.stderr.contains("node 1 of 1"), "{}", run.stderr);
    // The node's log line goes through its queue: it may come a moment
    // after the client is done.
    last.proc.wait_for("sent only-here.txt", harness::READY);
    assert_eq!(last.proc.count("sent only-here.txt"), 1);
    for (i, node) in cluster.nodes[..49].iter().enumerate() {
        assert!(
            only_startup_lines(&node.proc.log()),
            "node {} was contacted:\n{}",
            i + 1,
            node.proc.log()
        );
    }

    let run = cluster.fetch(&["nope.txt"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("nope.txt: not found on any of 50 active nodes (the relay's index)"),
        "{}",
        run.stderr
    );
    // The relay's log is one queue: once a later client's line is out,
    // every line of this fetch is out too, and none of them is a listing.
    let marker = cluster.fetch(&["marker-after-nope.txt"]);
    assert_eq!(marker.code(), 1, "{}", marker.stderr);
    cluster
        .relay
        .proc
        .wait_for("who has marker-after-nope.txt", CLIENT);
    assert_eq!(cluster.relay.proc.count("who has nope.txt"), 1);
    let log = cluster.relay.proc.log();
    let from = log.find("who has nope.txt").unwrap();
    let to = log.find("who has marker-after-nope.txt").unwrap();
    assert!(
        !log[from..to].contains("listed"),
        "no node list was asked for:\n{}",
        &log[from..to]
    );
    for node in &cluster.nodes[..49] {
        assert!(only_startup_lines(&node.proc.log()), "{}", node.proc.log());
    }
    assert!(!last.proc.log().contains("nope.txt"));
}

#[test]
fn a_file_added_to_or_removed_from_dir_is_found_or_not_within_2s() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, tmp.path(), &[]);
    node.proc.wait_for("catalog at relay", harness::READY);
    let path = tmp.path().join("sub/new.txt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "fresh\n").unwrap();
    let written = Instant::now();
    let found = poll(Duration::from_secs(2), || {
        fetch(&relay, &["sub/new.txt"]).code() == 0
    });
    assert!(
        found,
        "not found 2 s after it was written:\n{}",
        node.proc.log()
    );
    eprintln!("found after {:?}", written.elapsed());
    std::fs::remove_file(&path).unwrap();
    let gone = poll(Duration::from_secs(2), || {
        let run = fetch(&relay, &["sub/new.txt"]);
        run.code() == 1 && run.stderr.contains("the relay's index")
    });
    assert!(
        gone,
        "still listed 2 s after it was removed:\n{}",
        relay.proc.log()
    );
}

#[test]
fn expiry_drops_the_catalog_and_a_node_back_sends_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.txt"), "a\n").unwrap();
    let relay = Relay::start(&["--ttl", "1"]);
    let node = Node::start(&relay, tmp.path(), &["--heartbeat", "0.2"]);
    node.proc.wait_for("catalog at relay", harness::READY);
    assert_eq!(fetch(&relay, &["a.txt"]).code(), 0);
    node.proc.signal(libc::SIGSTOP);
    relay.proc.wait_for("node expired", Duration::from_secs(5));
    let run = fetch(&relay, &["a.txt"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("not found on any of 0 active nodes (the relay's index)"),
        "{}",
        run.stderr
    );
    node.proc.signal(libc::SIGCONT);
    let back = poll(Duration::from_secs(5), || {
        fetch(&relay, &["a.txt"]).code() == 0
    });
    assert!(back, "the catalog did not come back:\n{}", relay.proc.log());
}

#[test]
fn search_lists_matches_across_nodes_and_says_when_cut() {
    let cluster = Cluster::start(2, |i, dir| {
        for n in 0..150 {
            std::fs::write(dir.join(format!("doc-{n}.txt")), format!("{i}")).unwrap();
        }
        std::fs::write(dir.join("Annual Report.pdf"), "same").unwrap();
    });
    for node in &cluster.nodes {
        node.proc.wait_for("catalog at relay", harness::READY);
    }
    let run = cluster.fetch(&["--search", "report"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let lines: Vec<&str> = run
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(words[..2], ["4", "B"], "size: {lines:?}");
    assert!(words[2].starts_with("blake3:") && words[2].len() == "blake3:".len() + 8);
    assert_eq!(words[3], "2", "two holders: {lines:?}");
    assert!(lines[0].ends_with("Annual Report.pdf"));
    assert!(run.stderr.contains("1 result"), "{}", run.stderr);

    // doc-7 and doc-70 to doc-79, each in two versions (one per node).
    let run = cluster.fetch(&["--search", "DOC-7"]);
    assert_eq!(
        run.stdout_text().lines().count(),
        22,
        "{}",
        run.stdout_text()
    );
    assert!(!run.stderr.contains("cut at"), "{}", run.stderr);

    let run = cluster.fetch(&["--search", "doc-"]);
    assert_eq!(run.code(), 0);
    assert_eq!(run.stdout_text().lines().count(), 100);
    assert!(run.stderr.contains("cut at 100"), "{}", run.stderr);

    // The listing comes from the index too: no node is asked.
    let run = cluster.fetch(&["--list"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text().lines().count(), 301);
    for node in &cluster.nodes {
        assert!(only_startup_lines(&node.proc.log()), "{}", node.proc.log());
    }
}

#[test]
fn two_versions_of_one_name_fetch_the_earliest_holders_and_name_the_other() {
    let cluster = Cluster::start(2, |i, dir| {
        std::fs::write(dir.join("notes.txt"), ["first\n", "second\n"][i]).unwrap();
    });
    for node in &cluster.nodes {
        node.proc.wait_for("catalog at relay", harness::READY);
    }
    let run = cluster.fetch(&["notes.txt"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "first\n");
    let second = proto::ContentHash::of(b"second\n");
    let other = format!("blake3:{second}");
    assert!(
        run.stderr.contains("other versions exist"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&other), "{}", run.stderr);
    let run = cluster.fetch(&[&other]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "second\n");
}

#[test]
fn a_node_over_the_relays_limit_announces_what_fits_and_stays_listed() {
    let tmp = tempfile::tempdir().unwrap();
    for n in 0..5 {
        std::fs::write(tmp.path().join(format!("f{n}")), format!("{n}")).unwrap();
    }
    let relay = Relay::start(&["--max-node-files", "3"]);
    let node = Node::start(&relay, tmp.path(), &[]);
    let line = node.proc.wait_for("its limits left", harness::READY);
    assert!(line.contains("indexed 3 of 5 files"), "{line}");
    relay.proc.wait_for("2 entries not indexed", harness::READY);
    let run = fetch(&relay, &["--peers"]);
    assert!(run.stdout_text().contains(&node.listed.to_string()));
    let run = fetch(&relay, &["--list"]);
    assert_eq!(
        run.stdout_text().lines().count(),
        3,
        "{}",
        run.stdout_text()
    );
    // The rest is still served, to a client that asks nodes in turn.
    let run = fetch(&relay, &["--no-index", "f4"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "4");
}

/// A relay from before the index: registers and lists nodes, and answers
/// every newer request `BadRequest`, as an older relay does.
struct OldRelay {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
}

impl OldRelay {
    fn start() -> OldRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let nodes: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = asked.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let nodes = nodes.clone();
                let log = log.clone();
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let Ok(peer) = stream.peer_addr() else { return };
                    let Ok(request) = frame::read::<Request>(&mut stream) else {
                        return;
                    };
                    let answer = match request {
                        Request::Register(reg) => {
                            let addr = SocketAddr::new(peer.ip(), reg.port);
                            let mut nodes = nodes.lock().unwrap();
                            if !nodes.contains(&addr) {
                                nodes.push(addr);
                            }
                            Response::Registered(Registered { addr, ttl_secs: 30 })
                        }
                        Request::Unregister(_) => Response::Unregistered,
                        Request::ListNodes => Response::Nodes(
                            nodes
                                .lock()
                                .unwrap()
                                .iter()
                                .map(|&addr| NodeEntry { addr, age_secs: 0 })
                                .collect(),
                        ),
                        other => {
                            let tag = frame::encode(&other).unwrap()[10..14].to_vec();
                            let tag = u32::from_be_bytes(tag.try_into().unwrap());
                            log.lock().unwrap().push(format!("tag {tag}"));
                            Response::error(
                                ErrorKind::BadRequest,
                                format!("unknown message tag {tag}"),
                            )
                        }
                    };
                    let _ = frame::write(&mut stream, &answer);
                });
            }
        });
        OldRelay { addr, asked }
    }
}

#[test]
fn against_an_older_relay_the_client_asks_nodes_in_turn() {
    let old = OldRelay::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = |n: &str| -> std::path::PathBuf {
        let d = tmp.path().join(n);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let (a, b) = (dir("a"), dir("b"));
    std::fs::write(b.join("b.txt"), "bee\n").unwrap();
    let start = |d: &Path| Node::spawn("127.0.0.1", old.addr.port(), d, &[]).until_registered();
    let node_a = start(&a);
    let node_b = start(&b);
    node_b.proc.wait_for("keeps no index", harness::READY);
    node_a.proc.wait_for("keeps no index", harness::READY);

    let mut cmd = client(old.addr.port());
    cmd.arg("b.txt");
    let run = run(cmd, b"", CLIENT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "bee\n");
    assert!(
        run.stderr
            .contains("keeps no index (an older relay); asking nodes in turn"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not on"),
        "node a was asked first: {}",
        run.stderr
    );

    let mut cmd = client(old.addr.port());
    cmd.args(["--search", "b.t"]);
    let run = harness::run(cmd, b"", CLIENT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stdout_text().contains("b.txt"), "{}", run.stdout_text());
    let asked = old.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&"tag 8".to_string()) && asked.contains(&"tag 9".to_string()),
        "{asked:?}"
    );
}
