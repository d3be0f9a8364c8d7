//! A file just put into a node's directory is found at once (issue 24):
//! the node sends its name to the relay's index the moment its watcher sees
//! it, before its hash, and a client asks that node for it by name.

use std::fs;
use std::time::Duration;

use harness::{FakeNode, Node, READY, Relay, run};

/// 32 MiB whose bytes depend on `seed`, so no two files share a content.
fn content(seed: u8) -> Vec<u8> {
    let block: Vec<u8> = (0..251u8).map(|b| b ^ seed.wrapping_mul(37)).collect();
    let mut bytes = block.repeat((32 << 20) / block.len() + 1);
    bytes.truncate(32 << 20);
    bytes
}

/// Write a 32 MiB file, fetch it at once: found, 20 times in a row. (The
/// index used to learn of a file only once it was hashed, about a second
/// later: "not found on any of 1 active node (the relay's index)".) The
/// client asks who-has in its second form: the node still hashing the file
/// is named as its holder, without a hash, and asked by name. (The node
/// used to hold a new name back for the duty cycle of its catalog rounds
/// when a round for a removal had just run, and a client started right
/// after the write asked the relay first, now and then.)
#[test]
fn a_file_written_is_found_at_once_twenty_times_in_a_row() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, &dir, &[]).until_indexed();
    for i in 0..20u8 {
        let name = format!("new-{i}.bin");
        let bytes = content(i);
        fs::write(dir.join(&name), &bytes).unwrap();
        let copy = out.join(&name);
        let mut cmd = harness::client(relay.port());
        cmd.arg(&name).arg("-o").arg(&copy);
        let got = run(cmd, b"", Duration::from_secs(60));
        assert_eq!(
            got.code(),
            0,
            "{name}, round {i}: {}\nnode:\n{}\nrelay:\n{}",
            got.stderr,
            node.proc.log(),
            relay.proc.log()
        );
        assert!(
            fs::read(&copy).unwrap() == bytes,
            "{name}: the copy differs"
        );
        fs::remove_file(dir.join(&name)).unwrap();
        fs::remove_file(&copy).unwrap();
    }
    // Each file reached the index without its hash first, then with it.
    // (Whether a client asked in between is a race this test does not
    // rely on; tests/faults.rs has a relay that always answers so.)
    node.proc
        .wait_for("1 of them still being hashed here", READY);
}

/// `--list` answers from the relay's index, which has no catalog from a
/// node that just started (or an older node): the listing says how many
/// such nodes it left out, and how to ask them (issue 24: they were left
/// out without a word).
#[test]
fn a_listing_says_which_nodes_sent_no_catalog_yet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("a.txt"), b"listed\n").unwrap();
    let relay = Relay::start(&[]);
    let _node = Node::start(&relay, &dir, &[]).until_indexed();
    // Registered, and never sends a catalog.
    let _silent = FakeNode::start(&relay, |_| harness::frame_of(&proto::Response::NotFound));

    let mut cmd = harness::client(relay.port());
    cmd.arg("--list");
    let got = run(cmd, b"", Duration::from_secs(60));
    assert_eq!(got.code(), 0, "{}", got.stderr);
    assert!(got.stdout_text().contains("a.txt"), "{}", got.stdout_text());
    assert!(
        got.stderr.contains(
            "1 active node sent the relay no catalog yet (just started, or older) and is not \
             listed; `--list --nodes` asks every node"
        ),
        "{}",
        got.stderr
    );
}
