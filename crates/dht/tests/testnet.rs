//! The DHT crate against a DHT of its own on loopback (mainline server
//! nodes): announce, then look up from another node; keyed ids; deadlines;
//! and the server fix for short transaction ids.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use dht::{
    AnnounceConfig, Announcer, Bootstrap, DhtId, DhtNode, LocalDht, Lookup, NetworkKey, NodeConfig,
};

/// A client node bootstrapped only from `net`, on 127.0.0.1.
fn client(net: &LocalDht) -> DhtNode {
    let mut config = NodeConfig::new(Bootstrap::Given(net.bootstrap()));
    config.bind = Ipv4Addr::LOCALHOST;
    DhtNode::start(&config).unwrap()
}

/// Waits until every entry of `announcer` was announced once.
fn until_announced(announcer: &Announcer, within: Duration) {
    let started = Instant::now();
    loop {
        let report = announcer.report();
        if report.entries > 0 && report.fresh == report.entries {
            return;
        }
        assert!(
            started.elapsed() < within,
            "not announced within {within:?}: {report:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn an_announce_is_found_by_a_lookup_from_another_node_within_seconds() {
    let net = LocalDht::start(10).unwrap();
    let holder = client(&net);
    let announcer = Announcer::new(holder, AnnounceConfig::default());
    let hash = *blake3::hash(b"a file").as_bytes();
    let id = DhtId::derive(&hash, None);
    let started = Instant::now();
    announcer.replace([(id, 4321)]).unwrap();
    until_announced(&announcer, Duration::from_secs(10));
    let announced_in = started.elapsed();

    let lookup = Lookup::new(client(&net));
    let found = lookup.find(&hash, None, soon());
    let want: SocketAddr = "127.0.0.1:4321".parse().unwrap();
    assert!(found.contains(&want), "{found:?}");
    assert_eq!(
        found.iter().filter(|a| **a == want).count(),
        1,
        "each holder once"
    );
    eprintln!("announced in {announced_in:?}");

    // Another file's id finds nothing, and the lookup ends by itself, long
    // before its deadline (every node answers on loopback).
    let other = *blake3::hash(b"another file").as_bytes();
    let asked = Instant::now();
    assert!(lookup.find(&other, None, soon()).is_empty());
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
}

#[test]
fn keyed_ids_are_found_only_with_their_networks_key() {
    let net = LocalDht::start(10).unwrap();
    let hash = *blake3::hash(b"shared in two networks").as_bytes();
    let (ours, theirs) = (
        NetworkKey::from_secret(b"ours"),
        NetworkKey::from_secret(b"theirs"),
    );
    let plain = DhtId::derive(&hash, None);
    let keyed = DhtId::derive(&hash, Some(&ours));
    let other = DhtId::derive(&hash, Some(&theirs));
    assert!(plain != keyed && keyed != other && plain != other);

    let announcer = Announcer::new(client(&net), AnnounceConfig::default());
    announcer.replace([(keyed, 5000)]).unwrap();
    until_announced(&announcer, Duration::from_secs(10));

    let lookup = Lookup::new(client(&net));
    let holder: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    assert_eq!(lookup.find(&hash, Some(&ours), soon()), [holder]);
    assert!(
        lookup.find(&hash, None, soon()).is_empty(),
        "the plain id is not announced"
    );
    assert!(
        lookup.find(&hash, Some(&theirs), soon()).is_empty(),
        "nor another network's"
    );
}

#[test]
fn a_lookup_ends_at_its_deadline_when_nobody_answers() {
    // A bootstrap node that takes every query and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = NodeConfig::new(Bootstrap::Given(vec![
        silent.local_addr().unwrap().to_string(),
    ]));
    config.bind = Ipv4Addr::LOCALHOST;
    let lookup = Lookup::new(DhtNode::start(&config).unwrap());
    let started = Instant::now();
    let found = lookup.find(&[1; 32], None, Instant::now() + Duration::from_millis(300));
    let took = started.elapsed();
    assert!(found.is_empty());
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1000),
        "{took:?}"
    );
}

#[test]
fn announcing_with_no_reachable_node_fails_and_is_retried_not_lost() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = NodeConfig::new(Bootstrap::Given(vec![
        silent.local_addr().unwrap().to_string(),
    ]));
    config.bind = Ipv4Addr::LOCALHOST;
    config.request_timeout = Some(Duration::from_millis(200));
    let announcer = Announcer::new(DhtNode::start(&config).unwrap(), AnnounceConfig::default());
    announcer.replace([(DhtId([9; 20]), 1)]).unwrap();
    let started = Instant::now();
    while announcer.report().failed == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            announcer.report()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = announcer.report();
    assert_eq!(
        (report.entries, report.fresh, report.announced),
        (1, 0, 0),
        "{report:?}"
    );
    assert!(report.last_error.is_some(), "{report:?}");
    assert!(report.stopped.is_none());
}

/// A bencoded `ping` query with transaction id `tid`.
fn ping(tid: &[u8]) -> Vec<u8> {
    let mut q = b"d1:ad2:id20:".to_vec();
    q.extend_from_slice(&[0x41; 20]);
    q.extend_from_slice(format!("e1:q4:ping1:t{}:", tid.len()).as_bytes());
    q.extend_from_slice(tid);
    q.extend_from_slice(b"1:y1:qe");
    q
}

/// What a server node answers `ping(tid)` within a second, if anything.
fn answer_to(server: SocketAddr, tid: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    sock.send_to(&ping(tid), server).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// docs/MAINLINE_TID.md: libtorrent's queries carry 2-byte transaction ids;
/// an unpatched mainline 6.0+ server drops them. Ours answers any length
/// from 1 to 16 bytes and echoes it.
#[test]
fn a_server_node_answers_short_and_long_transaction_ids() {
    let mut config = NodeConfig::new(Bootstrap::Nobody);
    config.bind = Ipv4Addr::LOCALHOST;
    config.server = true;
    let server = DhtNode::start(&config).unwrap();
    let addr = SocketAddr::V4(server.local_addr());
    for tid in [
        &b"aa"[..],
        b"\x00\x01",
        b"abcd",
        b"x",
        b"eight by",
        b"sixteen bytes...",
    ] {
        let answer = answer_to(addr, tid).unwrap_or_else(|| panic!("no answer to t={tid:?}"));
        let mut echo = format!("1:t{}:", tid.len()).into_bytes();
        echo.extend_from_slice(tid);
        assert!(
            answer.windows(echo.len()).any(|w| w == echo),
            "t={tid:?} not echoed in {}",
            String::from_utf8_lossy(&answer)
        );
        assert!(
            answer.windows(6).any(|w| w == b"1:y1:r"),
            "not a response: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // Nothing at all, or longer than 16 bytes: no answer, no harm.
    assert!(answer_to(addr, b"").is_none());
    assert!(answer_to(addr, &[7; 17]).is_none());
    // Still serving.
    assert!(answer_to(addr, b"ok").is_some());
}

/// A port already taken is an error, never a panic (patched in mainline:
/// its Dht::new raced with its own thread when the bind failed).
#[test]
fn a_port_already_taken_is_an_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = NodeConfig::new(Bootstrap::Nobody);
    config.bind = Ipv4Addr::LOCALHOST;
    config.port = taken.local_addr().unwrap().port();
    for _ in 0..20 {
        let err = DhtNode::start(&config).unwrap_err();
        assert!(
            err.to_string().contains("cannot bind the DHT's UDP socket"),
            "{err}"
        );
    }
}

/// A datagram of 2 000 nested lists once overflowed the stack of
/// mainline's thread (debug build) and aborted the whole process: one
/// packet from anyone. Patched: refused before it is decoded.
#[test]
fn a_deeply_nested_datagram_does_not_bring_a_node_down() {
    let mut config = NodeConfig::new(Bootstrap::Nobody);
    config.bind = Ipv4Addr::LOCALHOST;
    config.server = true;
    let server = DhtNode::start(&config).unwrap();
    let addr = SocketAddr::V4(server.local_addr());
    let mut deep = b"d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:AAAAAAAAAAAAAAAAAAAA1:x".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 2000));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        sock.send_to(&deep, addr).unwrap();
    }
    assert!(
        answer_to(addr, b"up").is_some(),
        "the node stopped answering"
    );
}
