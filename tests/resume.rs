//! Resume across runs: a broken `-o` save keeps its part and record, the
//! same command continues it (from any holder), and every kept byte is
//! checked again: a damaged or truncated part, a part for other content, or
//! an unreadable record still end in the right file, never a mix.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use harness::content::pseudo_random;
use harness::{Client, Node, Relay, Run};
use peer_client::part::{self, Record};
use proto::ContentHash;
use proto::content::{ByteRange, CHUNK_GROUP};

const CLIENT: Duration = Duration::from_secs(60);
const BIG: usize = 48 << 20;
/// The file of the tests that fetch it many times: small enough to be
/// quick in a debug build, large enough for several pieces.
const MID: usize = 12 << 20;

fn big() -> &'static [u8] {
    static CONTENT: OnceLock<Vec<u8>> = OnceLock::new();
    CONTENT.get_or_init(|| pseudo_random(0x9e37_79b9_7f4a_7c15, BIG))
}

fn mid() -> &'static [u8] {
    &big()[..MID]
}

fn share(dir: &Path, name: &str, content: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), content).unwrap();
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Polls until the part of `target` holds some bytes.
fn until_partial(target: &Path) {
    let (part, _) = part::paths(target).unwrap();
    let deadline = Instant::now() + CLIENT;
    while !fs::metadata(&part).is_ok_and(|m| m.len() > 0) {
        assert!(Instant::now() < deadline, "no part at {part:?}");
        thread::sleep(Duration::from_millis(1));
    }
}

fn fetch(relay: &Relay, args: &[&str]) -> Run {
    let mut cmd = harness::client(relay.port());
    cmd.args(args);
    harness::run(cmd, b"", CLIENT)
}

/// Writes the part of `target` as a run would leave it: `content`'s first
/// `kept` bytes (whole groups), and a record saying they are verified.
fn leave_part(target: &Path, record_for: &[u8], content: &[u8], kept: u64) -> PathBuf {
    let (part, rec) = part::paths(target).unwrap();
    fs::write(&part, &content[..kept as usize]).unwrap();
    let mut record = Record::new(
        ContentHash::of(record_for),
        record_for.len() as u64,
        "big.bin",
    );
    record.groups.mark(
        ByteRange {
            offset: 0,
            len: kept,
        },
        record_for.len() as u64,
    );
    fs::write(&rec, record.encode()).unwrap();
    part
}

fn assert_saved(target: &Path, content: &[u8], run: &Run) {
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        fs::read(target).unwrap() == content,
        "the saved file differs"
    );
    assert_eq!(files(target.parent().unwrap()), [target.to_path_buf()]);
}

/// A holder killed mid-transfer with no other holder: the part is kept and
/// the client says how to go on (exit 1). The same command, once another
/// node holds the file, resumes from it and the file is whole.
#[test]
fn a_part_left_by_a_killed_holder_is_resumed_from_another_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("node1"), tmp.path().join("node2"));
    share(&d1, "big.bin", big());
    share(&d2, "big.bin", big());
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let target = out.join("big.bin");
    let t = target.to_str().unwrap();
    let relay = Relay::start(&[]);
    let mut node1 = Node::start(&relay, &d1, &[]).until_indexed();

    let client = Client::start(&relay, &["big.bin", "-o", t, "--sources", "1"]);
    until_partial(&target);
    client.signal(libc::SIGSTOP);
    node1.proc.kill();
    client.signal(libc::SIGCONT);
    let (code, stderr) = client.finish();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("interrupted at "), "{stderr}");
    assert!(
        stderr.contains("run the same command to resume"),
        "{stderr}"
    );
    assert!(!target.exists());
    assert_eq!(files(&out).len(), 2, "the part and its record");

    let _node2 = Node::start(&relay, &d2, &[]).until_indexed();
    let run = fetch(&relay, &["big.bin", "-o", t]);
    assert!(run.stderr.contains("resuming at "), "{}", run.stderr);
    assert_saved(&target, big(), &run);
}

/// Kept parts that are wrong in every way a run can find them: each ends in
/// the right file, and only a good part is resumed.
#[test]
fn damaged_truncated_stale_and_unreadable_parts_end_in_the_right_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    share(&dir, "big.bin", mid());
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let target = out.join("big.bin");
    let t = target.to_str().unwrap();
    let relay = Relay::start(&[]);
    let _node = Node::start(&relay, &dir, &[]).until_indexed();
    let kept = (MID as u64 / 2 / CHUNK_GROUP) * CHUNK_GROUP;

    // A flipped byte in a kept group: found by the check, fetched again.
    let part = leave_part(&target, mid(), mid(), kept);
    let mut damaged = fs::read(&part).unwrap();
    damaged[12345] ^= 0x40;
    fs::write(&part, damaged).unwrap();
    let run = fetch(&relay, &["big.bin", "-o", t]);
    assert!(
        run.stderr.contains("resuming at 6 MiB of 12 MiB"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("fetched again (1 damaged chunk group)"),
        "{}",
        run.stderr
    );
    assert_saved(&target, mid(), &run);
    fs::remove_file(&target).unwrap();

    // A part shorter than its record says: only what it holds is kept.
    let part = leave_part(&target, mid(), mid(), kept);
    let f = fs::OpenOptions::new().write(true).open(&part).unwrap();
    f.set_len(kept / 3 + 7).unwrap();
    drop(f);
    let run = fetch(&relay, &["big.bin", "-o", t]);
    assert!(run.stderr.contains("resuming at "), "{}", run.stderr);
    assert!(!run.stderr.contains("damaged"), "{}", run.stderr);
    assert_saved(&target, mid(), &run);
    fs::remove_file(&target).unwrap();

    // A part of another content under the same name: a fresh start.
    let old = pseudo_random(7, MID);
    leave_part(&target, &old, &old, kept);
    let run = fetch(&relay, &["big.bin", "-o", t]);
    assert!(run.stderr.contains("starting over"), "{}", run.stderr);
    assert!(!run.stderr.contains("resuming at"), "{}", run.stderr);
    assert_saved(&target, mid(), &run);
    fs::remove_file(&target).unwrap();

    // An unreadable record is never used.
    let part = leave_part(&target, mid(), &old, kept);
    let (_, rec) = part::paths(&target).unwrap();
    let mut bad = fs::read(&rec).unwrap();
    bad[20] ^= 1;
    fs::write(&rec, bad).unwrap();
    assert!(part.exists());
    let run = fetch(&relay, &["big.bin", "-o", t]);
    assert!(run.stderr.contains("starting over"), "{}", run.stderr);
    assert_saved(&target, mid(), &run);
    fs::remove_file(&target).unwrap();

    // --no-resume removes a good part and starts from scratch.
    leave_part(&target, mid(), mid(), kept);
    let run = fetch(&relay, &["big.bin", "-o", t, "--no-resume"]);
    assert!(!run.stderr.contains("resuming at"), "{}", run.stderr);
    assert_saved(&target, mid(), &run);
    fs::remove_file(&target).unwrap();

    // By hash: the same part resumes.
    leave_part(&target, mid(), mid(), kept);
    let by_hash = format!("blake3:{}", ContentHash::of(mid()));
    let run = fetch(&relay, &[&by_hash, "-o", t]);
    assert!(run.stderr.contains("resuming at "), "{}", run.stderr);
    assert_saved(&target, mid(), &run);
}

/// Breaks at random points (SIGINT, SIGTERM, SIGKILL, the holder killed),
/// then runs the same command until it succeeds: the file is always right,
/// and nothing but it is left.
#[test]
fn breaks_at_random_points_always_resume_to_the_right_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    share(&dir, "big.bin", mid());
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let target = out.join("big.bin");
    let t = target.to_str().unwrap();
    let relay = Relay::start(&[]);
    let mut node = Node::start(&relay, &dir, &[]).until_indexed();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = pseudo_random(seed, 64).into_iter();
    for round in 0..6 {
        let how = rng.next().unwrap() % 4;
        let sources = if rng.next().unwrap().is_multiple_of(2) {
            "1"
        } else {
            "4"
        };
        let client = Client::start(&relay, &["big.bin", "-o", t, "--sources", sources]);
        until_partial(&target);
        match how {
            0 => client.signal(libc::SIGINT),
            1 => client.signal(libc::SIGTERM),
            2 => client.signal(libc::SIGKILL),
            _ => {
                client.signal(libc::SIGSTOP);
                node.proc.kill();
                client.signal(libc::SIGCONT);
            }
        }
        let (code, stderr) = client.finish();
        let ctx = format!("seed {seed} round {round} how {how}: code {code}\n{stderr}");
        // It may have finished before the signal landed.
        if code != 0 {
            assert!(!target.exists(), "{ctx}");
            match how {
                // 128 + the signal, as shells give it.
                0 => assert_eq!(code, 130, "{ctx}"),
                1 => assert_eq!(code, 143, "{ctx}"),
                2 => assert_eq!(code, -libc::SIGKILL, "{ctx}"),
                _ => assert_eq!(code, 1, "{ctx}"),
            }
            if how != 2 && files(&out).len() == 2 {
                assert!(stderr.contains("interrupted at"), "{ctx}");
            }
        }
        if how == 3 {
            node = Node::start(&relay, &dir, &[]).until_indexed();
        }
        if code != 0 {
            let run = fetch(&relay, &["big.bin", "-o", t]);
            assert_eq!(run.code(), 0, "{ctx}\nresumed: {}", run.stderr);
        }
        assert!(
            fs::read(&target).unwrap() == mid(),
            "{ctx}: the file differs"
        );
        assert_eq!(files(&out), std::slice::from_ref(&target), "{ctx}");
        fs::remove_file(&target).unwrap();
    }
}
