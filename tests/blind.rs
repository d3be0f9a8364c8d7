//! The blind index (issue 29): in a private network the relay finds holders
//! for names it cannot read. Real relays and nodes; the member asking the
//! index is this test, through proto's blind API (what peer-client
//! uses; the real client against the blind index is in tests/secret.rs):
//! tags computed from the secret, records opened and checked.
//!
//! - A relay holding only the relay key serves who-has by name and by
//!   hash, listing and search to a member, with a direct and a relayed
//!   node; its log at `-v`, a capture of its port and a core dump of its
//!   process (gcore, from gdb) hold none of the shared names and none of
//!   the content hashes, in hex or raw.
//! - A member node that sends garbage records is named by the member's
//!   opener, and the other node's files are still found.
//! - A file written as its node starts is in the node's first catalog.
//! - Plain requests to a private relay, and blind ones to a plain relay,
//!   get a plain refusal.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use harness::capture::{Capture, contains, core_of};
use harness::{Node, READY, Relay};
use net::exchange::{self, Timeouts};
use net::secure::{Identity, NetworkKeys, Security};
use proto::blind::{
    BlindCatalogUpdate, BlindEntry, BlindTarget, IndexKey, Listing, PageRequest, Record,
    RecordProblem, SealedRecord,
};
use proto::{ContentHash, ErrorKind, HolderList, Registration, Request, Response, Target};

const SECRET: &str = "blind index secret";

/// A member of the network (the secret, a throwaway identity) asking the
/// relay as peer-client will.
struct Member {
    security: Security,
    key: IndexKey,
    relay: SocketAddr,
}

impl Member {
    fn new(relay: SocketAddr) -> Member {
        let keys = NetworkKeys::from_secret(SECRET.as_bytes());
        Member {
            key: IndexKey::of(&keys).unwrap(),
            security: Security::private(keys, Identity::generate().unwrap()),
            relay,
        }
    }

    fn ask(&self, request: &Request) -> Response {
        exchange::call_via(
            self.relay,
            request,
            &Timeouts::default(),
            &self.security.to_relay(),
        )
        .unwrap_or_else(|e| panic!("{request:?}: {e}"))
    }

    /// Who holds `target`, opened; and the nodes whose records failed.
    fn who_has(&self, target: BlindTarget) -> (HolderList, Vec<proto::blind::BadRecord>) {
        match self.ask(&Request::BlindWhoHas(target)) {
            Response::BlindHolders(list) => self.key.open_holders(&target, &list),
            other => panic!("who-has answered {other:?}"),
        }
    }

    fn holders_by_name(&self, name: &str) -> Vec<(SocketAddr, String, ContentHash)> {
        let (list, bad) = self.who_has(self.key.by_name(name));
        assert!(bad.is_empty(), "{bad:?}");
        list.holders
            .into_iter()
            .map(|h| (h.addr, h.name, h.hash))
            .collect()
    }

    /// Every record, page by page (pages of `limit`).
    fn listing(&self, limit: u32) -> Listing {
        let mut listing = Listing::default();
        let mut cursor = 0;
        loop {
            let page = match self.ask(&Request::BlindList(PageRequest { cursor, limit })) {
                Response::SealedPage(page) => page,
                other => panic!("list answered {other:?}"),
            };
            listing.add_page(&self.key, &page);
            match page.next {
                Some(next) => cursor = next,
                None => return listing,
            }
        }
    }
}

fn node(relay: &Relay, dir: &Path, keys: &Path, args: &[&str]) -> Node {
    spawn_node(relay, dir, keys, args)
        .until_registered()
        .until_indexed()
}

/// A member node, just started.
fn spawn_node(relay: &Relay, dir: &Path, keys: &Path, args: &[&str]) -> Node {
    let key = keys.join(format!(
        "{}.key",
        dir.file_name().unwrap().to_string_lossy()
    ));
    let mut all = vec![
        "--bind",
        "127.0.0.1",
        "--key",
        key.to_str().unwrap(),
        "--secret",
        SECRET,
    ];
    all.extend_from_slice(args);
    Node::spawn_with("127.0.0.1", relay.port(), dir, &all, |cmd| {
        cmd.env_remove("P2P_SECRET");
    })
}

fn write(dir: &Path, name: &str, content: &[u8]) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A relay given only the relay key serves the blind index: who-has by
/// name and by content, listing and search, for a direct and a relayed
/// node, records opened by the member. What it logged at -v, what crossed
/// its port, and its whole memory hold no shared name and no content hash.
#[test]
fn a_relay_key_only_relay_serves_the_blind_index_and_holds_no_name_or_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("node1"), tmp.path().join("node2"));
    // Names nobody would mistake for anything else in a core dump.
    let files: [(&Path, &str, Vec<u8>); 5] = [
        (&d1, "tax-return-2026-qzx.pdf", b"tax figures\n".to_vec()),
        (
            &d1,
            "shared/minutes-of-the-board-qzx.txt",
            b"minutes\n".to_vec(),
        ),
        (&d2, "medical-notes-qzx.txt", b"notes\n".to_vec()),
        (&d2, "copy-of-minutes-qzx.txt", b"minutes\n".to_vec()),
        (
            &d2,
            // 244 bytes: a record of the third size.
            &format!("{}deep-qzx.bin", "a-rather-long-directory-name/".repeat(8)),
            vec![7u8; 100_000],
        ),
    ];
    for (dir, name, content) in &files {
        write(dir, name, content);
    }
    let relay_key = NetworkKeys::from_secret(SECRET.as_bytes()).relay.to_hex();
    let relay = Relay::start(&["--relay-key", &relay_key, "-v"]);
    let capture = Capture::start(tmp.path(), &[relay.port()]);
    let n1 = node(&relay, &d1, tmp.path(), &[]);
    let n2 = node(&relay, &d2, tmp.path(), &["--relayed"]);
    let member = Member::new(relay.addr);
    let hash = |content: &[u8]| ContentHash::of(content);

    // By name: the holder, its name for the file, the hash.
    for (dir, name, content) in &files {
        let holder = if *dir == d1.as_path() {
            n1.listed
        } else {
            n2.listed
        };
        assert_eq!(
            member.holders_by_name(name),
            [(holder, name.to_string(), hash(content))],
            "{name}"
        );
    }
    assert!(member.holders_by_name("nope.txt").is_empty());
    // By content: both holders of the minutes, each under its own name.
    let (list, bad) = member.who_has(member.key.by_content(&hash(b"minutes\n")));
    assert!(bad.is_empty(), "{bad:?}");
    let mut holders: Vec<(SocketAddr, &str)> = list
        .holders
        .iter()
        .map(|h| (h.addr, h.name.as_str()))
        .collect();
    holders.sort();
    let mut want = vec![
        (n1.listed, "shared/minutes-of-the-board-qzx.txt"),
        (n2.listed, "copy-of-minutes-qzx.txt"),
    ];
    want.sort();
    assert_eq!(holders, want);
    assert_eq!(list.nodes, 2);

    // Listing in pages of two, and searching it.
    let listing = member.listing(2);
    assert!(listing.bad.is_empty(), "{:?}", listing.bad);
    assert_eq!(listing.len(), files.len());
    let found = listing.search("MINUTES", 100);
    let names: Vec<&str> = found.hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "copy-of-minutes-qzx.txt",
            "shared/minutes-of-the-board-qzx.txt"
        ]
    );
    assert_eq!(found.nodes, 2);
    relay.proc.wait_for("who has content tag", READY);
    relay.proc.wait_for("list from", READY);

    let core = core_of(relay.proc.pid(), tmp.path());
    let wire = capture.bytes(10_000);
    let log = relay.proc.log();
    assert!(core.len() > 1 << 20, "a core of {} bytes", core.len());
    assert!(wire.len() > 10_000, "a capture of {} bytes", wire.len());
    for (_, name, content) in &files {
        let h = hash(content);
        let hex_hash = h.to_string();
        let leaks: Vec<&str> = [
            ("the name", contains(&core, name.as_bytes())),
            ("the raw hash", contains(&core, &h.0)),
            ("the hex hash", contains(&core, hex_hash.as_bytes())),
        ]
        .into_iter()
        .filter(|(_, found)| *found)
        .map(|(what, _)| what)
        .collect();
        assert!(
            leaks.is_empty(),
            "the relay's memory holds {leaks:?} of {name}"
        );
        for (what, bytes) in [("capture", &wire), ("log", &log.as_bytes().to_vec())] {
            assert!(!contains(bytes, name.as_bytes()), "{what} holds {name}");
            assert!(!contains(bytes, &h.0), "{what} holds the hash of {name}");
            assert!(
                !contains(bytes, hex_hash.as_bytes()) && !contains(bytes, h.short().as_bytes()),
                "{what} holds the hex hash of {name}"
            );
        }
    }
    // The control: the core dump does hold what the relay was given, the
    // tags and the records.
    let tag = member.key.name_tag(files[0].1);
    assert!(contains(&core, &tag.0), "the core dump misses the tags");
    drop((n1, n2));
}

/// A member node that sends garbage records (bytes that are no record, a
/// record sealed with another secret, a good record under another name's
/// tag) is named by the member's opener, and the honest node's file is
/// still found, by name, by content and in the listing.
#[test]
fn a_node_sending_garbage_records_is_named_and_other_files_are_still_found() {
    let tmp = tempfile::tempdir().unwrap();
    let d1 = tmp.path().join("honest");
    write(&d1, "good.txt", b"good content\n");
    // No dial-back: the garbage node below is this test, not a server.
    let relay = Relay::start(&["--secret", SECRET, "--no-relaying"]);
    let honest = node(&relay, &d1, tmp.path(), &[]);
    let member = Member::new(relay.addr);

    // The liar: a member (it holds the secret) registering port 4999.
    let liar = Member::new(relay.addr);
    let registration = Registration {
        port: 4999,
        advertised_ip: None,
        token: None,
    };
    assert!(matches!(
        liar.ask(&Request::Register(registration.clone())),
        Response::Registered(_)
    ));
    let good = Record {
        name: "good.txt".into(),
        size: 13,
        hash: ContentHash::of(b"good content\n"),
    };
    let k = &liar.key;
    let other_network = IndexKey::of(&NetworkKeys::from_secret(b"another secret")).unwrap();
    let added = vec![
        BlindEntry {
            name_tag: k.name_tag("good.txt"),
            content_tag: k.content_tag(&good.hash),
            record: SealedRecord(vec![0x55; 128]),
        },
        BlindEntry {
            name_tag: k.name_tag("liar.txt"),
            content_tag: k.content_tag(&good.hash),
            record: k.seal(&good).unwrap(),
        },
        BlindEntry {
            name_tag: k.name_tag("alien.txt"),
            content_tag: k.content_tag(&good.hash),
            record: other_network
                .seal(&Record {
                    name: "alien.txt".into(),
                    ..good.clone()
                })
                .unwrap(),
        },
    ];
    let ack = liar.ask(&Request::BlindCatalog(BlindCatalogUpdate {
        registration,
        base_seq: 0,
        seq: 1,
        reset: true,
        added,
        removed: vec![],
    }));
    assert!(
        matches!(ack, Response::CatalogAck(a) if a.files == 3),
        "{ack:?}"
    );
    let liar_addr: SocketAddr = "127.0.0.1:4999".parse().unwrap();

    // By name: the honest holder; the liar named.
    let (list, bad) = member.who_has(member.key.by_name("good.txt"));
    let holders: Vec<SocketAddr> = list.holders.iter().map(|h| h.addr).collect();
    assert_eq!(holders, [honest.listed]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].addr, liar_addr);
    assert!(
        matches!(bad[0].problem, RecordProblem::Open(_)),
        "{:?}",
        bad[0]
    );
    assert!(
        bad[0]
            .to_string()
            .contains("node 127.0.0.1:4999 sent a bad index record"),
        "{}",
        bad[0]
    );
    // A good record under another name's tag does not answer that name.
    let (list, bad) = member.who_has(member.key.by_name("liar.txt"));
    assert!(list.holders.is_empty());
    assert_eq!(bad[0].problem, RecordProblem::NameMismatch);
    // By content: one entry per node (the relay picks one of the liar's
    // three, all under this content tag): the honest holder, and the liar
    // either as a holder (its "liar.txt" entry's record does carry that
    // content, and its bytes would be checked anyway) or named.
    let (list, bad) = member.who_has(member.key.by_content(&good.hash));
    let holders: Vec<SocketAddr> = list.holders.iter().map(|h| h.addr).collect();
    assert!(holders.contains(&honest.listed), "{holders:?}");
    let liar_seen = holders.iter().filter(|a| **a == liar_addr).count()
        + bad.iter().filter(|b| b.addr == liar_addr).count();
    assert_eq!(liar_seen, 1, "{holders:?} {bad:?}");
    assert_eq!(holders.len() + bad.len(), 2);

    // The listing: good.txt once, from the honest node (the liar's copy
    // of its record came under another name's tag); the three bad ones
    // named.
    let listing = member.listing(10);
    let found = listing.search("", 100);
    let hits: Vec<(&str, u32)> = found
        .hits
        .iter()
        .map(|h| (h.name.as_str(), h.holders))
        .collect();
    assert_eq!(hits, [("good.txt", 1)]);
    assert_eq!(listing.bad.len(), 3, "{:?}", listing.bad);
    assert!(listing.bad.iter().all(|b| b.addr == liar_addr));
}

/// One index per relay: a private relay refuses the plain index's
/// requests (a name or hash must never reach it), a plain relay the blind
/// ones, each with a plain `BadRequest` an older program reads as "no
/// index".
/// A file written just before its node starts is in the node's first
/// blind catalog. A blind record needs the hash, and the first round does
/// not leave such a file (written within the last timestamp tick, whose
/// hash waits for the tick to pass) to the backlog as a plain catalog does:
/// it was missing until the backlog's round, and a client started with the
/// node found nothing (tests/secret.rs, 1 CI run in a few).
#[test]
fn a_file_written_as_its_node_starts_is_in_the_first_blind_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&["--secret", SECRET]);
    let member = Member::new(relay.addr);
    for round in 0..5 {
        let dir = tmp.path().join(format!("share{round}"));
        // A name of its own: the nodes of earlier rounds stay listed
        // until their registration expires.
        let name = format!("new-{round}.txt");
        write(&dir, &name, format!("written in round {round}").as_bytes());
        let node = spawn_node(&relay, &dir, tmp.path(), &[]);
        let first = node.proc.wait_for("indexe", READY);
        assert!(
            first.contains("1 files indexed"),
            "round {round}: the first catalog: {first}\n{}",
            node.proc.log()
        );
        let holders = member.holders_by_name(&name);
        assert_eq!(holders.len(), 1, "round {round}: {holders:?}");
        assert_eq!(
            holders[0].2,
            ContentHash::of(format!("written in round {round}").as_bytes())
        );
    }
}

#[test]
fn each_relay_refuses_the_other_kind_of_index() {
    let private = Relay::start(&["--secret", SECRET]);
    let member = Member::new(private.addr);
    for request in [
        Request::WhoHas(Target::Name("a.txt".into())),
        Request::Search(proto::SearchQuery {
            text: "a".into(),
            limit: 10,
        }),
    ] {
        match member.ask(&request) {
            Response::Error(e) => {
                assert_eq!(e.kind, ErrorKind::BadRequest);
                assert!(e.message.contains("blind index"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
    }
    let plain = Relay::start(&[]);
    let timeouts = Timeouts::default();
    for request in [
        Request::BlindWhoHas(member.key.by_name("a.txt")),
        Request::BlindList(PageRequest {
            cursor: 0,
            limit: 10,
        }),
    ] {
        match exchange::call(plain.addr, &request, &timeouts) {
            Ok(Response::Error(e)) => {
                assert_eq!(e.kind, ErrorKind::BadRequest);
                assert!(e.message.contains("plain index"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
    }
    // Both still serve after refusing.
    assert!(matches!(
        exchange::call(plain.addr, &Request::ListNodes, &timeouts),
        Ok(Response::Nodes(_))
    ));
    assert!(matches!(
        member.ask(&Request::ListNodes),
        Response::Nodes(_)
    ));
}
