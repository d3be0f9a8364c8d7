//! A resumed part's kept groups are checked against the content's tree
//! before the rest is fetched: one damaged group is fetched again, and the
//! node serves nothing else of the kept bytes but the few groups whose
//! proofs pinned the damage down.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use harness::content::pseudo_random;
use harness::{Node, Relay};
use peer_client::part::{self, Record};
use proto::ContentHash;
use proto::content::{ByteRange, CHUNK_GROUP};

const SIZE: u64 = 16 << 20;
const G: u64 = CHUNK_GROUP;

/// The byte ranges the node's log says it sent whole: `sent NAME bytes
/// A..B verified`.
fn served(log: &str) -> Vec<ByteRange> {
    log.lines()
        .filter(|l| l.contains(": sent ") && l.contains(" verified"))
        .filter_map(|l| {
            let (_, rest) = l.split_once(" bytes ")?;
            let (span, _) = rest.split_once(' ')?;
            let (a, b) = span.split_once("..")?;
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            Some(ByteRange {
                offset: a,
                len: b - a,
            })
        })
        .collect()
}

/// Bytes of `ranges` within `within`.
fn overlap(ranges: &[ByteRange], within: ByteRange) -> u64 {
    ranges
        .iter()
        .map(|r| {
            r.end()
                .min(within.end())
                .saturating_sub(r.offset.max(within.offset))
        })
        .sum()
}

/// Leaves the part of `target` as a run would: `content`'s first `kept`
/// bytes, with a record saying they are verified.
fn leave_part(target: &Path, content: &[u8], kept: u64) -> std::path::PathBuf {
    let (part, rec) = part::paths(target).unwrap();
    fs::write(&part, &content[..kept as usize]).unwrap();
    let size = content.len() as u64;
    let mut record = Record::new(ContentHash::of(content), size, "big.bin");
    record.groups.mark(
        ByteRange {
            offset: 0,
            len: kept,
        },
        size,
    );
    fs::write(&rec, record.encode()).unwrap();
    part
}

#[test]
fn a_damaged_group_is_the_only_kept_group_fetched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    fs::create_dir(&dir).unwrap();
    let content = pseudo_random(0x5eed, SIZE as usize);
    fs::write(dir.join("big.bin"), &content).unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let target = out.join("big.bin");
    let t = target.to_str().unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, &dir, &[]).until_indexed();

    for (sources, damaged) in [("1", 77u64), ("4", 3)] {
        let kept = SIZE * 3 / 4;
        let part = leave_part(&target, &content, kept);
        let mut bad = fs::read(&part).unwrap();
        bad[(damaged * G + 1000) as usize] ^= 0x10;
        fs::write(&part, bad).unwrap();
        let before = node.proc.log().len();

        let mut cmd = harness::client(relay.port());
        cmd.args(["big.bin", "-o", t, "--sources", sources]);
        let run = harness::run(cmd, b"", Duration::from_secs(60));
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(fs::read(&target).unwrap() == content, "the file differs");
        assert!(
            run.stderr.contains("resuming at 12 MiB of 16 MiB"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("fetched again (1 damaged chunk group)"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("cannot check"), "{}", run.stderr);

        let kept_range = ByteRange {
            offset: 0,
            len: kept,
        };
        let rest = ByteRange {
            offset: kept,
            len: SIZE - kept,
        };
        // The node logs a range once it is sent: its last lines may trail
        // the client's exit.
        let deadline = Instant::now() + Duration::from_secs(10);
        let sent = loop {
            let sent = served(&node.proc.log()[before..]);
            if overlap(&sent, rest) >= SIZE - kept || Instant::now() > deadline {
                break sent;
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The missing quarter once, and of the kept bytes only the damaged
        // group and the groups whose proofs found it: one per tree level
        // at most (8 levels of 256 groups), out of 192 kept groups.
        // The first exchange proved the size (an empty range), with one
        // source as with four: a resume never asks for the whole content
        // only to cut it off.
        assert_eq!(
            sent.first(),
            Some(&ByteRange { offset: 0, len: 0 }),
            "{sent:?}"
        );
        assert_eq!(overlap(&sent, rest), SIZE - kept, "{sent:?}");
        let again = overlap(&sent, kept_range);
        assert!(
            (G..=9 * G).contains(&again),
            "{again} kept bytes served again: {sent:?}\n{}",
            run.stderr
        );
        assert!(
            overlap(
                &sent,
                ByteRange {
                    offset: damaged * G,
                    len: G
                }
            ) == G,
            "the damaged group was not fetched: {sent:?}"
        );
        fs::remove_file(&target).unwrap();
    }

    // A part kept whole is hashed against the content hash, and needs no
    // proof at all.
    leave_part(&target, &content, SIZE);
    let mut cmd = harness::client(relay.port());
    cmd.args(["big.bin", "-o", t]);
    let run = harness::run(cmd, b"", Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(fs::read(&target).unwrap() == content, "the file differs");
    assert!(
        run.stderr
            .contains("16 MiB of the 16 MiB kept verified against blake3"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(", 0 bytes fetched again"),
        "{}",
        run.stderr
    );
}
