//! Verified transfers, end to end: every byte a client prints or saves is
//! checked against the content's BLAKE3 hash, so a fetch never joins two
//! versions of a file, never delivers a file torn by a rewrite, and refuses
//! a node that lies; content can be fetched by its hash; and old nodes and
//! old clients still work with new ones.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use harness::content::pseudo_random;
use harness::{Cluster, FakeNode, Node, Relay, frame_of};
use net::exchange::{Connection, Timeouts};
use proto::content::{ByteRange, MemorySink, encode_range, outboard_to_vec};
use proto::{
    ContentHash, ErrorKind, FileEntry, FileHeader, FileList, FileRequest, RangeHeader, Request,
    Response,
};

const MIB: usize = 1024 * 1024;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A client whose stdout the test reads at its own pace: a slow consumer,
/// so the node is still sending when the test acts. Killed on drop.
struct SlowClient {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<thread::JoinHandle<String>>,
}

impl SlowClient {
    fn start(mut cmd: Command) -> SlowClient {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the client");
        let stdout = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        SlowClient {
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Reads exactly `n` bytes of the client's stdout (fewer at its end).
    fn read(&mut self, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        (&mut self.stdout)
            .take(n as u64)
            .read_to_end(&mut got)
            .unwrap();
        got
    }

    /// Reads the rest, waits for the exit; returns status and stderr.
    fn finish(mut self, got: &mut Vec<u8>) -> (ExitStatus, String) {
        self.stdout.read_to_end(got).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            thread::sleep(Duration::from_millis(5));
        };
        (status, self.stderr.take().unwrap().join().unwrap())
    }
}

impl Drop for SlowClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `node` has hashed its directory (its startup scan), so a
/// test that changes a file knows which version the node hashed first: the
/// summary line ("hashed N shared files (...)"), not "still being hashed
/// here", which comes before it (a test that waited for that one rewrote
/// the file while the node was hashing it).
fn until_hashed(node: &Node) {
    node.proc.wait_for(" shared files (", harness::READY);
}

/// (a) Two nodes share data.bin with different contents. The first dies in
/// the middle of a fetch; the second holds another version, so it cannot
/// continue the first's hash: the client stops with a clear message and
/// never outputs a mix.
#[test]
fn a_mixed_resume_never_joins_two_versions() {
    let a = pseudo_random(1, 64 * MIB);
    let b = pseudo_random(2, 64 * MIB);
    let mut cluster = Cluster::start(2, |i, dir| {
        write(dir, "data.bin", if i == 0 { &a } else { &b })
    });
    until_hashed(&cluster.nodes[1]);
    // Node by node: the index would ask only the holders of A's hash, so
    // the node holding B would never be asked to continue it.
    let mut cmd = cluster.client();
    cmd.args(["--no-index", "data.bin", "--timeout", "10"]);
    let mut client = SlowClient::start(cmd);
    let mut got = client.read(MIB);
    assert_eq!(got.len(), MIB);
    cluster.nodes[0].proc.kill();
    let (status, stderr) = client.finish(&mut got);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        got.len() < a.len(),
        "the killed node cannot have sent it all"
    );
    assert_eq!(got, a[..got.len()], "only verified bytes of A came out");
    let hash_a = ContentHash::of(&a);
    assert!(
        stderr.contains(&format!(
            "no other node could continue blake3 {}",
            hash_a.short()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("not on"), "{stderr}");
    assert!(!stderr.contains("found on"), "{stderr}");
    cluster.nodes[1].proc.wait_for(
        &format!("blake3:{}: not here", hash_a.short()),
        harness::READY,
    );
}

/// (a) With -o: the first node's transfer breaks at 1 MiB (it sends a bad
/// chunk there), and the only other node holds another version under the
/// same name. Nothing is saved: no partial file, no mix.
#[test]
fn a_broken_transfer_with_dash_o_saves_nothing_when_no_node_has_the_same_content() {
    let a = pseudo_random(3, 2 * MIB);
    let b = pseudo_random(4, 2 * MIB);
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&[]);
    let _first = liar(&relay, a.clone());
    let dir = tmp.path().join("b");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "data.bin", &b);
    let second = Node::start(&relay, &dir, &[]);
    let out = tmp.path().join("out.bin");
    // Node by node (`--no-index`): the liar sends no catalog, so only the
    // walk asks it before the holder.
    let mut cmd = harness::client(relay.port());
    cmd.args(["--no-index", "data.bin", "-o", out.to_str().unwrap()]);
    let run = harness::run(cmd, b"", Duration::from_secs(60));
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(!out.exists(), "{}", run.stderr);
    // Nothing at the target; what was verified is kept as a part, for the
    // same command to resume (never a mix: a part is only ever resumed
    // against the content hash it records).
    let mut leftovers: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("out.bin"))
        .collect();
    leftovers.sort();
    assert_eq!(
        leftovers,
        [".out.bin.part", ".out.bin.part.rec"],
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("chunk at byte 1048576 does not match"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("not on {}, node 2 of 2", second.listed)),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("incomplete, 1048576 of 2097152 bytes"),
        "{}",
        run.stderr
    );
}

/// A file rewritten after it was hashed (between requests) is hashed again
/// and served whole in its new version, with the new hash.
#[test]
fn a_file_changed_after_hashing_is_served_whole_in_its_new_version() {
    let a = pseudo_random(11, 3 * MIB);
    let b = pseudo_random(12, 3 * MIB);
    let cluster = Cluster::start(1, |_, dir| write(dir, "data.bin", &a));
    until_hashed(&cluster.nodes[0]);
    rewrite_in_place(&cluster.nodes[0].dir.join("data.bin"), &b);
    // At once, through the index: the relay may still name the version
    // hashed first (the node's catalog delta is on its way), and the node
    // answers not-found for it; the client then asks the holder by name.
    let run = cluster.fetch(&["data.bin"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stdout == b, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("blake3 {}", ContentHash::of(&b).short())),
        "{}",
        run.stderr
    );
}

fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// (b) The file is rewritten in place while the first node sends it. The
/// client detects the first changed chunk, refuses it, and gets the rest of
/// the original from the second node: the output is the original, whole.
/// The first node, asked again, no longer has the original: the client says
/// its copy changed, not that it sent corrupt data (issue 24).
#[test]
fn a_torn_read_is_refused_and_the_file_comes_whole_from_an_honest_node() {
    let original = pseudo_random(5, 48 * MIB);
    let rewrite = pseudo_random(6, 48 * MIB);
    let cluster = Cluster::start(2, |_, dir| write(dir, "data.bin", &original));
    until_hashed(&cluster.nodes[0]);
    until_hashed(&cluster.nodes[1]);
    let mut cmd = cluster.client();
    // One node at a time: which node serves which bytes is the subject
    // (tests/multisource.rs catches a lying holder of a parallel fetch).
    cmd.args(["data.bin", "--timeout", "10", "--sources", "1"]);
    let mut client = SlowClient::start(cmd);
    let mut got = client.read(MIB);
    rewrite_in_place(&cluster.nodes[0].dir.join("data.bin"), &rewrite);
    let (status, stderr) = client.finish(&mut got);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        got == original,
        "the output is not the original file\n{stderr}"
    );
    let first = cluster.nodes[0].listed;
    assert!(
        stderr.contains(&format!(
            "{first}, node 1 of 2's copy changed during the transfer: chunk at byte "
        )),
        "{stderr}"
    );
    assert!(stderr.contains("does not match"), "{stderr}");
    assert!(!stderr.contains("corrupt data"), "{stderr}");
    let second = cluster.nodes[1].listed;
    assert!(
        stderr.contains(&format!(
            "found on {second}, node 2 of 2 ({} bytes, blake3 {})",
            original.len(),
            ContentHash::of(&original).short()
        )),
        "{stderr}"
    );
    cluster.nodes[0]
        .proc
        .wait_for("changed while it was sent", harness::READY);
}

/// A fake node that answers every range request with `content`'s true
/// header and proof, but with one byte of the group at 1 MiB flipped.
fn liar(relay: &Relay, content: Vec<u8>) -> FakeNode {
    let (hash, outboard) = outboard_to_vec(&content);
    let mut corrupt = content.clone();
    corrupt[MIB + 5] ^= 0x40;
    FakeNode::start(relay, move |request| match request {
        Request::GetRange(req) => {
            let size = content.len() as u64;
            let Some(range) = ByteRange::clamp(size, req.offset, req.len) else {
                return frame_of(&Response::error(ErrorKind::BadRequest, "offset"));
            };
            let mut out = frame_of(&Response::Range(RangeHeader {
                size,
                hash,
                offset: range.offset,
                len: range.len,
            }));
            let mut sink = MemorySink {
                data: &corrupt,
                out: Vec::new(),
            };
            encode_range(size, range, &outboard[..], &mut sink).unwrap();
            out.extend_from_slice(&sink.out);
            out
        }
        _ => frame_of(&Response::NotFound),
    })
}

/// (c) A node that sends bytes which do not match the hash it announced is
/// named, and the file comes from an honest node, from the last good byte.
#[test]
fn a_lying_node_is_refused_and_an_honest_node_completes_the_file() {
    let content = pseudo_random(7, 2 * MIB);
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&[]);
    let fake = liar(&relay, content.clone());
    let dir = tmp.path().join("honest");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "data.bin", &content);
    let honest = Node::start(&relay, &dir, &[]);
    // Node by node (`--no-index`): the liar sends no catalog, so only the
    // walk asks it before the honest node.
    let mut cmd = harness::client(relay.port());
    // One node at a time, as in the torn read above.
    cmd.args(["--no-index", "data.bin", "--sources", "1"]);
    let run = harness::run(cmd, b"", Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stdout == content, "wrong bytes\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "corrupt data from {}, node 1 of 2: chunk at byte 1048576 does not match",
            fake.addr
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "found on {}, node 2 of 2 (2097152 bytes, blake3 {})",
            honest.listed,
            ContentHash::of(&content).short()
        )),
        "{}",
        run.stderr
    );
    // The honest node was asked by hash for the rest only.
    honest
        .proc
        .wait_for("bytes 1048576..2097152 verified", harness::READY);
}

/// (d) Fetch by content hash, whatever the name; two names for one content
/// are both listed with the same hash.
#[test]
fn fetch_by_hash_finds_the_content_under_any_name() {
    let same = b"one content, two names\n".to_vec();
    let other = pseudo_random(8, 300_000);
    let cluster = Cluster::start(2, |i, dir| {
        if i == 0 {
            write(dir, "one.txt", &same);
            write(dir, "two.txt", &same);
        } else {
            write(dir, "other.bin", &other);
        }
    });
    let h_same = ContentHash::of(&same);
    let h_other = ContentHash::of(&other);

    // Node by node (`--no-index`), so the walk's order and "not on" lines
    // are the nodes', whether or not their catalogs reached the relay yet.
    let run = cluster.fetch(&["--no-index", &format!("blake3:{h_same}")]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout, same);
    assert!(
        run.stderr.contains(&format!(
            "found on {}, node 1 of 2 ({} bytes, blake3 {})",
            cluster.nodes[0].listed,
            same.len(),
            h_same.short()
        )),
        "{}",
        run.stderr
    );

    let run = cluster.fetch(&["--no-index", &format!("blake3:{h_other}")]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stdout == other);
    assert!(run.stderr.contains("not on"), "{}", run.stderr);

    let missing = ContentHash::of(b"nobody has this");
    let run = cluster.fetch(&["--no-index", &format!("blake3:{missing}")]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("not found on any of 2 active nodes"),
        "{}",
        run.stderr
    );

    let run = cluster.fetch(&["blake3:1234"]);
    // Not a hash at all: a usage error.
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("64 hex digits"), "{}", run.stderr);

    // Both names carry the same hash in the long listing.
    let run = cluster.fetch(&["--list", "--long", "--nodes"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let listing = run.stdout_text();
    for name in ["one.txt", "two.txt"] {
        let line = listing
            .lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listing}"));
        assert!(line.contains(&format!("blake3:{h_same}")), "{listing}");
    }
    assert!(listing.contains(&format!("blake3:{h_other}")), "{listing}");
}

/// A fake older node: it knows only the first five requests, and answers
/// the new ones as an older node does (bad request: unknown tag).
fn old_node(relay: &Relay, name: &'static str, content: Vec<u8>) -> FakeNode {
    FakeNode::start(relay, move |request| match request {
        Request::GetFile(FileRequest { name: n, offset }) if n == name => {
            let mut out = frame_of(&Response::File(FileHeader {
                size: content.len() as u64,
                offset,
            }));
            out.extend_from_slice(&content[offset as usize..]);
            out
        }
        Request::GetFile(_) => frame_of(&Response::NotFound),
        Request::ListFiles => frame_of(&Response::Files(FileList {
            entries: vec![FileEntry {
                name: name.into(),
                size: content.len() as u64,
            }],
            truncated: false,
        })),
        Request::GetRange(_) => frame_of(&Response::error(
            ErrorKind::BadRequest,
            "unknown message tag 5",
        )),
        Request::ListFilesLong => frame_of(&Response::error(
            ErrorKind::BadRequest,
            "unknown message tag 6",
        )),
        _ => frame_of(&Response::error(ErrorKind::BadRequest, "not a relay")),
    })
}

/// (e) An older node without range requests still serves, and the client
/// says the result is unverified; its listing falls back to the plain one.
#[test]
fn an_old_node_still_serves_marked_unverified() {
    let content = pseudo_random(9, 200_000);
    let relay = Relay::start(&[]);
    let old = old_node(&relay, "old.bin", content.clone());
    let mut cmd = harness::client(relay.port());
    cmd.arg("old.bin");
    let run = harness::run(cmd, b"", Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stdout == content);
    assert!(
        run.stderr.contains(&format!(
            "found on {}, node 1 of 1 (200000 bytes, unverified: an older node without content hashes)",
            old.addr
        )),
        "{}",
        run.stderr
    );
    // It sends no catalog: only the per-node listing asks it.
    let mut cmd = harness::client(relay.port());
    cmd.args(["--list", "--long", "--nodes"]);
    let run = harness::run(cmd, b"", Duration::from_secs(60));
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        run.stdout_text().contains("(not hashed yet)"),
        "{}",
        run.stdout_text()
    );
    assert!(run.stdout_text().contains("old.bin"));
    // By hash, an old node cannot help.
    let mut cmd = harness::client(relay.port());
    cmd.arg(format!("blake3:{}", ContentHash::of(&content)));
    let run = harness::run(cmd, b"", Duration::from_secs(60));
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot serve by content hash"),
        "{}",
        run.stderr
    );
}

/// (f) An older client, which asks with GetFile, still gets the file from a
/// new node, from any offset.
#[test]
fn an_old_client_still_gets_files_from_a_new_node() {
    let content = pseudo_random(10, 300_000);
    let cluster = Cluster::start(1, |_, dir| write(dir, "f.bin", &content));
    for offset in [0u64, 1, 299_999, 300_000] {
        let mut conn = Connection::open(cluster.nodes[0].listen, &Timeouts::default()).unwrap();
        let request = Request::GetFile(FileRequest {
            name: "f.bin".into(),
            offset,
        });
        let Ok(Response::File(header)) = conn.request(&request) else {
            panic!("no file header for offset {offset}");
        };
        assert_eq!(header.size, content.len() as u64);
        let mut body = Vec::new();
        conn.body(header.body_len()).read_to_end(&mut body).unwrap();
        assert!(body == content[offset as usize..], "offset {offset}");
    }
    let answer = net::exchange::call(
        cluster.nodes[0].listen,
        &Request::ListFiles,
        &Timeouts::default(),
    )
    .unwrap();
    assert!(matches!(answer, Response::Files(list) if list.entries.len() == 1));
}
