//! `peer-node --dht`, end to end: the real node announces its files on a
//! DHT of our own on loopback (`dht::LocalDht`, never the public routers),
//! and a lookup from another DHT node finds it, with the relay up, with the
//! relay dead, for a file added later, with keyed ids in a private network;
//! a relayed node announces nothing.
//!
//! The client side: with the relay dead, `peer-client --dht-bootstrap ...
//! blake3:HASH` fetches from the holders a lookup finds, two at once, and
//! drops a lying holder.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use dht::{Bootstrap, DhtNode, LocalDht, Lookup, NetworkKey, NodeConfig};
use harness::{Node, Relay};
use proto::ContentHash;

/// A file's first announce goes out within this long (issue 27).
const FIRST_ANNOUNCE: Duration = Duration::from_secs(10);

/// `--dht-bootstrap` for each node of `net`.
fn bootstrap_args(net: &LocalDht) -> Vec<String> {
    net.bootstrap()
        .into_iter()
        .flat_map(|b| ["--dht-bootstrap".to_string(), b])
        .collect()
}

/// A lookup through a DHT node of its own, bootstrapped from `net` only.
fn lookup(net: &LocalDht) -> Lookup {
    let mut config = NodeConfig::new(Bootstrap::Given(net.bootstrap()));
    config.bind = Ipv4Addr::LOCALHOST;
    Lookup::new(DhtNode::start(&config).unwrap())
}

fn hash_of(content: &[u8]) -> [u8; 32] {
    ContentHash::of(content).0
}

/// Looks `hash` up until `want` is among the holders or `within` passed;
/// the holders of the last lookup.
fn find_until(
    lookup: &Lookup,
    hash: &[u8; 32],
    key: Option<&NetworkKey>,
    want: SocketAddr,
    within: Duration,
) -> Vec<SocketAddr> {
    let deadline = Instant::now() + within;
    loop {
        let found = lookup.find(hash, key, Instant::now() + Duration::from_secs(5));
        if found.contains(&want) || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where the node can be reached on loopback.
fn loopback(node: &Node) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, node.listen.port()))
}

fn args<'a>(extra: &'a [&'a str], net: &'a [String]) -> Vec<&'a str> {
    extra
        .iter()
        .copied()
        .chain(net.iter().map(String::as_str))
        .collect()
}

#[test]
fn a_nodes_files_are_found_on_the_dht_with_the_relay_up_and_after_it_died() {
    let net = LocalDht::start(8).unwrap();
    let boot = bootstrap_args(&net);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), b"first file\n").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
    let mut relay = Relay::start(&[]);
    let started = Instant::now();
    let node = Node::start(&relay, dir.path(), &args(&["-v"], &boot));
    node.proc
        .wait_for("DHT node on UDP 0.0.0.0:", FIRST_ANNOUNCE);
    node.proc
        .wait_for("announced 2 shared files on the DHT", FIRST_ANNOUNCE);
    assert!(
        started.elapsed() < FIRST_ANNOUNCE,
        "{:?}",
        started.elapsed()
    );

    let lookup = lookup(&net);
    let holder = loopback(&node);
    for content in [&b"first file\n"[..], &[7u8; 300_000]] {
        let found = lookup.find(&hash_of(content), None, Instant::now() + FIRST_ANNOUNCE);
        assert!(found.contains(&holder), "{holder} not in {found:?}");
    }

    // The relay dies; a file added now is still hashed and announced.
    relay.proc.kill();
    fs::write(dir.path().join("c.txt"), b"added with the relay down\n").unwrap();
    let added = Instant::now();
    node.proc
        .wait_for("announced 3 shared files on the DHT", FIRST_ANNOUNCE);
    let c = hash_of(b"added with the relay down\n");
    let found = find_until(&lookup, &c, None, holder, FIRST_ANNOUNCE);
    assert!(found.contains(&holder), "{holder} not in {found:?}");
    assert!(added.elapsed() < FIRST_ANNOUNCE, "{:?}", added.elapsed());
}

#[test]
fn a_private_nodes_files_are_announced_under_keyed_ids_only() {
    let net = LocalDht::start(8).unwrap();
    let boot = bootstrap_args(&net);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("private.txt"), b"members only\n").unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("node.key");
    let key_arg = key_file.to_str().unwrap();
    // No relay at all (it is down): the DHT does not need one.
    let node = Node::spawn(
        "127.0.0.1",
        harness::free_port(),
        dir.path(),
        &args(&["--secret", "ours", "--key", key_arg], &boot),
    );
    node.proc
        .wait_for("under ids keyed with the network's secret", FIRST_ANNOUNCE);
    node.proc
        .wait_for("announced 1 shared files on the DHT", FIRST_ANNOUNCE);

    let lookup = lookup(&net);
    let hash = hash_of(b"members only\n");
    let ours = NetworkKey::from_secret(b"ours");
    let soon = || Instant::now() + Duration::from_secs(5);
    assert_eq!(lookup.find(&hash, Some(&ours), soon()), [loopback(&node)]);
    assert!(
        lookup.find(&hash, None, soon()).is_empty(),
        "plain id announced"
    );
    let theirs = NetworkKey::from_secret(b"theirs");
    assert!(
        lookup.find(&hash, Some(&theirs), soon()).is_empty(),
        "announced under another network's id"
    );
}

#[test]
fn a_relayed_node_announces_nothing_and_says_so() {
    let net = LocalDht::start(8).unwrap();
    let boot = bootstrap_args(&net);
    let relay = Relay::start(&[]);
    let (relayed_dir, direct_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fs::write(relayed_dir.path().join("r.txt"), b"behind a NAT\n").unwrap();
    fs::write(direct_dir.path().join("d.txt"), b"in the open\n").unwrap();
    let relayed = Node::spawn(
        "127.0.0.1",
        relay.port(),
        relayed_dir.path(),
        &args(&["--relayed"], &boot),
    );
    relayed.proc.wait_for(
        "relayed: this node's files are not announced",
        FIRST_ANNOUNCE,
    );
    relayed
        .proc
        .wait_for("hashed 1 shared files", FIRST_ANNOUNCE);
    // A direct node started after it is announced: the relayed one had as
    // long, and more.
    let direct = Node::start(
        &relay,
        direct_dir.path(),
        &boot.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    direct
        .proc
        .wait_for("announced 1 shared files on the DHT", FIRST_ANNOUNCE);
    let lookup = lookup(&net);
    let soon = || Instant::now() + Duration::from_secs(5);
    assert_eq!(
        lookup.find(&hash_of(b"in the open\n"), None, soon()),
        [loopback(&direct)]
    );
    assert!(
        lookup
            .find(&hash_of(b"behind a NAT\n"), None, soon())
            .is_empty()
    );
    assert_eq!(
        relayed.proc.count("shared files on the DHT"),
        0,
        "{}",
        relayed.proc.log()
    );
}

#[test]
fn dht_flags_are_checked_and_documented() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(harness::bin("peer-node"))
            .args(["127.0.0.1", "1"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--dht-bootstrap", "[::1]:6881"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IPv4 only"));
    let out = run(&["--dht-bootstrap", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not HOST:PORT"));
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).to_string();
    for flag in ["--dht ", "--dht-bootstrap <HOST:PORT>", "--dht-port <PORT>"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// A DHT that cannot start (its UDP port is taken) stops the node with one
/// clear line and exit status 2: the DHT was asked for and cannot be had.
#[test]
fn a_dht_port_already_taken_stops_the_node_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut node = Node::spawn(
        "127.0.0.1",
        harness::free_port(),
        dir.path(),
        &["--dht-bootstrap", "127.0.0.1:9", "--dht-port", &port],
    );
    let line = node
        .proc
        .wait_for("cannot start the DHT node", FIRST_ANNOUNCE);
    assert!(line.contains("cannot bind the DHT's UDP socket"), "{line}");
    let status = node.proc.wait_exit(FIRST_ANNOUNCE).expect("still running");
    assert_eq!(status.code(), Some(2));
}

/// Behind a real NAT (network namespaces and an nftables router, as in
/// tests/nat.rs): the relay cannot dial the node back, the node is relayed,
/// and it announces nothing, while a direct node on the same DHT is found.
/// Needs root and nftables; skips without them unless `P2P_REQUIRE_NETNS`.
#[test]
fn a_node_behind_nat_announces_nothing_on_the_dht() {
    use harness::netns::{Lab, skip_or_fail};
    use harness::{Proc, READY};

    let Some(mut lab) = Lab::or_skip("dn") else {
        return;
    };
    let relay_h = lab.host("relay", "10.64.0.1");
    let direct_h = lab.host("direct", "10.64.0.11");
    let (_router, nat_h) = match lab.nat("gw", "10.64.0.2", "10.65.0.1", "natted", "10.65.0.2") {
        Ok(hosts) => hosts,
        Err(why) => {
            skip_or_fail::<()>(&why);
            return;
        }
    };
    let relay_ip: Ipv4Addr = "10.64.0.1".parse().unwrap();
    // The DHT lives on the relay's host.
    let net = lab.within(relay_h, || LocalDht::start_on(relay_ip, 8).unwrap());
    let boot = bootstrap_args(&net);

    let mut relay_cmd = lab.command(relay_h, "relay");
    relay_cmd.arg("7000");
    let relay = Proc::spawn("relay", relay_cmd);
    relay.wait_for("listening on", READY);
    let tmp = tempfile::tempdir().unwrap();
    let node = |h: usize, name: &str, content: &[u8]| {
        let dir = tmp.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{name}.txt")), content).unwrap();
        let mut cmd = lab.command(h, "peer-node");
        cmd.arg(relay_ip.to_string())
            .arg("7000")
            .arg(&dir)
            .args(["--port", "4000"])
            .args(&boot)
            .env("XDG_CACHE_HOME", tmp.path().join(format!("{name}-cache")));
        Proc::spawn("peer-node", cmd)
    };
    let natted = node(nat_h, "natted", b"behind the router\n");
    let direct = node(direct_h, "direct", b"on the bridge\n");
    natted.wait_for("switching to relayed mode", READY);
    natted.wait_for("relayed: this node's files are not announced", READY);
    direct.wait_for("announced 1 shared files on the DHT", READY);

    let (theirs, ours) = lab.within(relay_h, || {
        let mut config = NodeConfig::new(Bootstrap::Given(net.bootstrap()));
        config.bind = relay_ip;
        let lookup = Lookup::new(DhtNode::start(&config).unwrap());
        let soon = || Instant::now() + Duration::from_secs(5);
        (
            lookup.find(&hash_of(b"behind the router\n"), None, soon()),
            lookup.find(&hash_of(b"on the bridge\n"), None, soon()),
        )
    });
    assert_eq!(ours, ["10.64.0.11:4000".parse::<SocketAddr>().unwrap()]);
    assert!(
        theirs.is_empty(),
        "the NATed node was announced: {theirs:?}"
    );
    assert_eq!(
        natted.count("shared files on the DHT"),
        0,
        "{}",
        natted.log()
    );
}

/// Two nodes with `--dht-server`, each bootstrapped from the other and no
/// one else, make a DHT of their own (a LAN without the public routers):
/// each file is found through either.
#[test]
fn nodes_with_dht_server_make_a_dht_of_their_own() {
    let free = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (pa, pb) = (free(), free());
    let tmp = tempfile::tempdir().unwrap();
    let node = |name: &str, port: u16, other: u16| {
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("f.txt"), format!("held by {name}\n")).unwrap();
        let (port, other) = (port.to_string(), format!("127.0.0.1:{other}"));
        let args = [
            "--bind",
            "127.0.0.1",
            "--dht-server",
            "--dht-port",
            &port,
            "--dht-bootstrap",
            &other,
        ];
        Node::spawn("127.0.0.1", harness::free_port(), &dir, &args)
    };
    let a = node("a", pa, pb);
    let b = node("b", pb, pa);
    for n in [&a, &b] {
        n.proc
            .wait_for("DHT server node on UDP 127.0.0.1:", FIRST_ANNOUNCE);
        n.proc
            .wait_for("announced 1 shared files on the DHT", harness::READY);
    }
    for via in [pa, pb] {
        let mut config = NodeConfig::new(Bootstrap::Given(vec![format!("127.0.0.1:{via}")]));
        config.bind = Ipv4Addr::LOCALHOST;
        let lookup = Lookup::new(DhtNode::start(&config).unwrap());
        for (holder, content) in [(&a, "held by a\n"), (&b, "held by b\n")] {
            let found = find_until(
                &lookup,
                &hash_of(content.as_bytes()),
                None,
                holder.listen,
                FIRST_ANNOUNCE,
            );
            assert_eq!(found, [holder.listen], "through 127.0.0.1:{via}");
        }
    }
}

/// A TCP listener that answers every connection with bytes that are not
/// our protocol (as a BitTorrent peer, or a liar, would), counting them.
struct Liar {
    addr: SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Liar {
    fn start() -> Liar {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = conn.read(&mut [0u8; 512]);
                let _ = conn.write_all(b"\x13BitTorrent protocol garbage garbage garbage");
            }
        });
        Liar { addr, connections }
    }
}

/// The client's side, end to end: two nodes announce a file, a lying
/// holder announces it too (through the dht crate, as anyone can), the
/// relay dies, and `peer-client --dht-bootstrap ... blake3:HASH` fetches
/// the file from the two real holders at once, verified, dropping the liar
/// with a line that names it.
#[test]
fn with_the_relay_dead_a_client_fetches_by_hash_from_dht_holders_and_drops_a_liar() {
    let net = LocalDht::start(8).unwrap();
    let boot = bootstrap_args(&net);
    let content: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let hash = hash_of(&content);
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&[]);
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("big.bin"), &content).unwrap();
        let node = Node::start(&relay, &dir, &args(&[], &boot));
        node.proc
            .wait_for("announced 1 shared files on the DHT", FIRST_ANNOUNCE);
        nodes.push(node);
    }
    let liar = Liar::start();
    let mut config = NodeConfig::new(Bootstrap::Given(net.bootstrap()));
    config.bind = Ipv4Addr::LOCALHOST;
    let announcer = dht::Announcer::new(DhtNode::start(&config).unwrap(), Default::default());
    announcer
        .replace([(dht::DhtId::derive(&hash, None), liar.addr.port())])
        .unwrap();
    let lookup = lookup(&net);
    find_until(&lookup, &hash, None, liar.addr, FIRST_ANNOUNCE);
    relay.proc.kill();

    let out = tmp.path().join("out.bin");
    let mut cmd = harness::client(relay.port());
    cmd.args(&boot)
        .arg(format!("blake3:{}", ContentHash(hash)))
        .arg("-o")
        .arg(&out);
    let run = harness::run(cmd, b"", Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(fs::read(&out).unwrap(), content, "{}", run.stderr);
    assert!(
        run.stderr.contains("looking for blake3:") && run.stderr.contains("on the DHT"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("found on 2 nodes"), "{}", run.stderr);
    for node in &nodes {
        assert!(
            run.stderr.contains(&loopback(node).to_string()),
            "{}",
            run.stderr
        );
    }
    assert!(liar.connections.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let dropped = run
        .stderr
        .lines()
        .find(|l| l.contains(&liar.addr.to_string()) && !l.contains("the DHT names"))
        .unwrap_or_else(|| panic!("no line about the liar:\n{}", run.stderr));
    assert!(!dropped.contains("found on"), "{dropped}");
}

/// A TCP listener that accepts every connection and never says a word (a
/// stranger's address announced on the DHT, or a holder that hung),
/// counting them. The connections stay open until the test ends.
struct Silent {
    addr: SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                held.push(conn);
            }
        });
        Silent { addr, connections }
    }
}

/// A holder found on the DHT that accepts a connection and never answers
/// costs the client `peer_client::dial::DHT_HOLDER_WAIT` (5 s) per wait,
/// not its `--timeout` (120 s here): the fetch moves on to the real holder
/// and ends long before one `--timeout` has passed.
#[test]
fn a_silent_dht_holder_costs_a_short_bound_not_the_timeout() {
    let net = LocalDht::start(8).unwrap();
    let boot = bootstrap_args(&net);
    // Big enough to be split between the holders (fetch.rs's MIN_SPLIT),
    // so the silent one is asked whichever order the DHT gives.
    let content: Vec<u8> = (0..2u32 << 20).map(|i| (i * 11 % 251) as u8).collect();
    let hash = hash_of(&content);
    let tmp = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(&[]);
    let dir = tmp.path().join("real");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("big.bin"), &content).unwrap();
    let node = Node::start(&relay, &dir, &args(&[], &boot));
    node.proc
        .wait_for("announced 1 shared files on the DHT", FIRST_ANNOUNCE);
    let silent = Silent::start();
    let mut config = NodeConfig::new(Bootstrap::Given(net.bootstrap()));
    config.bind = Ipv4Addr::LOCALHOST;
    let announcer = dht::Announcer::new(DhtNode::start(&config).unwrap(), Default::default());
    announcer
        .replace([(dht::DhtId::derive(&hash, None), silent.addr.port())])
        .unwrap();
    let lookup = lookup(&net);
    let found = find_until(&lookup, &hash, None, silent.addr, FIRST_ANNOUNCE);
    assert!(found.contains(&silent.addr), "{found:?}");
    let found = find_until(&lookup, &hash, None, loopback(&node), FIRST_ANNOUNCE);
    assert!(found.contains(&loopback(&node)), "{found:?}");
    relay.proc.kill();

    let out = tmp.path().join("out.bin");
    let mut cmd = harness::client(relay.port());
    cmd.args(&boot)
        .args(["--timeout", "120"])
        .arg(format!("blake3:{}", ContentHash(hash)))
        .arg("-o")
        .arg(&out);
    let started = Instant::now();
    let run = harness::run(cmd, b"", Duration::from_secs(110));
    let took = started.elapsed();
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(fs::read(&out).unwrap(), content, "{}", run.stderr);
    assert!(
        silent
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the silent holder was never asked:\n{}",
        run.stderr
    );
    let dropped = run
        .stderr
        .lines()
        .find(|l| l.contains(&silent.addr.to_string()) && !l.contains("the DHT names"))
        .unwrap_or_else(|| panic!("no line about the silent holder:\n{}", run.stderr));
    assert!(dropped.contains("timed out"), "{dropped}");
    // One --timeout is 120 s; the bound is 5 s a wait. 60 s leaves a busy
    // machine room, and still could not hold a single full --timeout.
    assert!(took < Duration::from_secs(60), "{took:?}\n{}", run.stderr);
}

/// `relay --dht` in a private network: the relay announces itself under
/// the network's relays id, and a client whose only relay is dead finds it
/// there and fetches by name through it; `--list`, `--search` and
/// `--peers` find it the same way. A client of another network finds
/// nothing; a plain relay refuses `--dht`.
#[test]
fn a_private_relay_on_the_dht_is_found_when_the_given_relay_is_dead() {
    let net = LocalDht::start(8).unwrap();
    let boot = bootstrap_args(&net);
    let secret = "the relays of this network, found on the DHT";
    let relay = Relay::start(&args(&["--secret", secret], &boot));
    relay
        .proc
        .wait_for("announced this relay on the DHT", FIRST_ANNOUNCE);
    let dir = tempfile::tempdir().unwrap();
    let content = b"found through a relay the client was never told about\n";
    fs::write(dir.path().join("report.txt"), content).unwrap();
    let node = Node::start(&relay, dir.path(), &["--secret", secret]).until_indexed();

    let dead = harness::free_port().to_string();
    let client = |secret: &str, task: &[&str]| {
        let mut cmd = std::process::Command::new(harness::bin("peer-client"));
        cmd.args(["127.0.0.1", &dead])
            .args(task)
            .args(["--secret", secret])
            .args(&boot);
        harness::run(cmd, b"", Duration::from_secs(60))
    };
    let fetch = |secret: &str| client(secret, &["report.txt"]);
    let run = fetch(secret);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout, content);
    assert!(
        run.stderr
            .contains("looking for other relays of this network on the DHT"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "the DHT names 1 other relay of this network: 127.0.0.1:{}",
            relay.port()
        )),
        "{}",
        run.stderr
    );

    // The listing, the search and the node list find it the same way.
    for task in [&["--list"][..], &["--search", "report"], &["--peers"]] {
        let run = client(secret, task);
        assert_eq!(run.code(), 0, "{task:?}: {}", run.stderr);
        let want = if task == ["--peers"] {
            node.listed.to_string()
        } else {
            "report.txt".to_string()
        };
        assert!(
            run.stdout_text().contains(&want),
            "{task:?}: {}\n{}",
            run.stdout_text(),
            run.stderr
        );
        assert!(
            run.stderr.contains("the DHT names 1 other relay"),
            "{task:?}: {}",
            run.stderr
        );
    }

    // Another network derives another id: nothing is found, and with no
    // relay a name cannot be looked up.
    let run = fetch("another network's secret");
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the DHT names no other relay of this network"),
        "{}",
        run.stderr
    );

    // A plain relay has no network to announce under (killed at the bound
    // should it ever start instead).
    let mut cmd = std::process::Command::new(harness::bin("relay"));
    cmd.args(["0", "--bind", "127.0.0.1", "--dht"]);
    let run = harness::run(cmd, b"", Duration::from_secs(10));
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--dht announces the relay of a private network"),
        "{}",
        run.stderr
    );
}
