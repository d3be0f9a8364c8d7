//! Hostile input and floods against a live relay and a live node, over raw
//! sockets: every bad input gets an error response or a clean close (never a
//! hang, never a reset), the server logs exactly one line for it, and a
//! normal request works right after. Connection caps answer `busy` and the
//! request deadline closes silent and trickling connections. docs/SECURITY.md
//! lists the limits these tests prove.
//!
//! Every wait has a deadline: reads have timeouts, and readiness is read from
//! the logs or polled.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use harness::{AnyoneBin, Node, Proc, READY, Relay};
use net::exchange::{self, Connection, Timeouts};
use proto::{
    ErrorKind, FileRequest, MAGIC, MAX_NAME_LEN, MAX_TOKEN_LEN, RangeRequest, Registration,
    Request, Response, VERSION, frame,
};

/// Longest any read waits before the test calls it a hang.
const HANG: Duration = Duration::from_secs(10);

const HELLO: &[u8] = b"hello, world\n";

/// A server under test: its address and its log.
#[derive(Clone, Copy)]
struct Target<'a> {
    name: &'static str,
    addr: SocketAddr,
    proc: &'a Proc,
}

/// A relay and one node sharing `hello.txt`, both on loopback.
struct Pair {
    relay: Relay,
    node: Node,
    _tmp: tempfile::TempDir,
}

impl Pair {
    fn start(args: &[&str]) -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("hello.txt"), HELLO).unwrap();
        let relay = Relay::start(args);
        let node = Node::start(&relay, &dir, args);
        Pair {
            relay,
            node,
            _tmp: tmp,
        }
    }

    fn targets(&self) -> [Target<'_>; 2] {
        [
            Target {
                name: "relay",
                addr: self.relay.addr,
                proc: &self.relay.proc,
            },
            Target {
                name: "node",
                addr: loopback(&self.node),
                proc: &self.node.proc,
            },
        ]
    }

    /// A normal request to `target` succeeds: the relay lists the node, the
    /// node serves hello.txt.
    fn assert_serves(&self, target: &Target<'_>) {
        if target.name == "relay" {
            assert_lists(target.addr, self.node.listed);
        } else {
            assert_eq!(get(target.addr, "hello.txt").unwrap(), HELLO);
        }
    }
}

/// Where a node listens, as an IPv4 loopback address.
fn loopback(node: &Node) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, node.listen.port()))
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        io: HANG,
    }
}

/// Asks the relay for its list and checks that `node` is on it.
fn assert_lists(relay: SocketAddr, node: SocketAddr) {
    match exchange::call(relay, &Request::ListNodes, &timeouts()) {
        Ok(Response::Nodes(nodes)) => assert!(
            nodes.iter().any(|n| n.addr == node),
            "{node} is not listed: {nodes:?}"
        ),
        other => panic!("the relay did not list its nodes: {other:?}"),
    }
}

/// Fetches `name` whole from a node, as a client does.
fn get(node: SocketAddr, name: &str) -> Result<Vec<u8>, String> {
    let mut conn = Connection::open(node, &timeouts()).map_err(|e| e.to_string())?;
    let request = Request::GetFile(FileRequest {
        name: name.into(),
        offset: 0,
    });
    match conn.request(&request) {
        Ok(Response::File(header)) => {
            let mut body = Vec::new();
            conn.body(header.body_len())
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
            if body.len() as u64 != header.body_len() {
                return Err(format!("{} of {} bytes", body.len(), header.body_len()));
            }
            conn.finish();
            Ok(body)
        }
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// One raw exchange.

/// What the test does once its bytes are written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Then {
    /// Waits for the answer and the server's close.
    Wait,
    /// Half-closes (shutdown(Write)), then waits for the answer.
    HalfClose,
    /// Closes the socket at once; there is nothing to read.
    Close,
}

/// What the server should do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Close without answering: the peer does not speak the protocol.
    NoAnswer,
    /// Answer an error of this kind whose message contains this text.
    Error(ErrorKind, &'static str),
    /// Answer normally (any response but an error).
    Answer,
    /// Nothing can be read: the test closed first.
    Unread,
}

/// Connects, writes `bytes`, and reads everything up to the server's close.
/// Returns the local address (the log names it) and the bytes received.
fn exchange_raw(addr: SocketAddr, bytes: &[u8], then: Then) -> (SocketAddr, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream.set_write_timeout(Some(HANG)).unwrap();
    let local = stream.local_addr().unwrap();
    // The server may answer and close before it has read everything (a
    // refused header); the write may then fail, and the answer is still read.
    let _ = stream.write_all(bytes);
    match then {
        Then::Close => return (local, Vec::new()),
        Then::HalfClose => stream.shutdown(Shutdown::Write).unwrap(),
        Then::Wait => {}
    }
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => (local, got),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            panic!("{addr} hung: nothing for {HANG:?} after {bytes:02x?}")
        }
        Err(e) => panic!("{addr} did not close cleanly ({e}) after {bytes:02x?}"),
    }
}

/// Checks what came back against `expect`: one frame, then the close.
fn check_answer(got: &[u8], expect: Expect, what: &str) {
    let parsed = || {
        let mut rest = got;
        let response = frame::read::<Response>(&mut rest)
            .unwrap_or_else(|e| panic!("{what}: the answer does not decode: {e}"));
        assert!(
            rest.is_empty(),
            "{what}: {} bytes after the answer",
            rest.len()
        );
        response
    };
    match expect {
        Expect::NoAnswer | Expect::Unread => {
            assert!(got.is_empty(), "{what}: unexpected answer {got:02x?}")
        }
        Expect::Error(kind, text) => match parsed() {
            Response::Error(e) => {
                assert_eq!(e.kind, kind, "{what}: {e:?}");
                assert!(e.message.contains(text), "{what}: {:?}", e.message);
            }
            other => panic!("{what}: expected an error, got {other:?}"),
        },
        Expect::Answer => {
            let response = parsed();
            assert!(
                !matches!(response, Response::Error(_)),
                "{what}: {response:?}"
            );
        }
    }
}

/// Waits for the server's line about the connection from `local` and checks
/// that it is the only one and says `text`.
fn check_one_log_line(proc: &Proc, local: SocketAddr, text: &str, what: &str) {
    let prefix = format!("{local}: ");
    let line = proc.wait_for(&prefix, READY);
    assert!(
        line.contains(text),
        "{what}: log line {line:?} lacks {text:?}"
    );
    assert_eq!(
        proc.count(&prefix),
        1,
        "{what}: more than one log line:\n{}",
        proc.log()
    );
}

/// Header and body as the wire has them, with any version and length.
fn raw_frame(version: u16, len: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&version.to_be_bytes());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn framed(body: &[u8]) -> Vec<u8> {
    raw_frame(VERSION, body.len() as u32, body)
}

fn encode(request: &Request) -> Vec<u8> {
    frame::encode(request).unwrap()
}

/// One hostile input.
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    then: Then,
    expect: Expect,
    /// What the server's log line says (empty: anything).
    log: &'static str,
}

/// Every bad input that does not depend on the kind of server.
fn frame_cases(normal: &Request) -> Vec<Case> {
    use Expect::*;
    let bad = ErrorKind::BadRequest;
    // A GetFile with a name that is not UTF-8: tag 3, length 2, ff fe, offset 0.
    let mut not_utf8 = 3u32.to_be_bytes().to_vec();
    not_utf8.extend_from_slice(&2u64.to_be_bytes());
    not_utf8.extend_from_slice(&[0xff, 0xfe]);
    not_utf8.extend_from_slice(&0u64.to_be_bytes());
    let mut junk_inside = encode(normal)[frame::HEADER_LEN..].to_vec();
    junk_inside.extend_from_slice(b"junk");
    let mut junk_after = encode(normal);
    junk_after.extend_from_slice(b"junk after the frame");
    let too_long_name = Request::GetFile(FileRequest {
        name: "n".repeat(MAX_NAME_LEN + 1),
        offset: 0,
    });
    let too_long_token = Request::Register(Registration {
        port: 4000,
        advertised_ip: None,
        token: Some("t".repeat(MAX_TOKEN_LEN + 1)),
    });
    // The first bytes of a TLS 1.2 ClientHello record.
    let client_hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x5a, 0x5a, 0x5a,
    ];
    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 7919 % 251) as u8).collect();
    vec![
        Case {
            what: "garbage bytes",
            bytes: garbage,
            then: Then::Wait,
            expect: NoAnswer,
            log: "not a p2p-share peer",
        },
        Case {
            what: "an HTTP request",
            bytes: b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            then: Then::Wait,
            expect: NoAnswer,
            log: "(HTTP)",
        },
        Case {
            what: "a TLS ClientHello",
            bytes: client_hello,
            then: Then::Wait,
            expect: NoAnswer,
            log: "(a TLS handshake)",
        },
        Case {
            what: "an unknown version",
            bytes: raw_frame(2, 4, &2u32.to_be_bytes()),
            then: Then::Wait,
            expect: Error(ErrorKind::UnsupportedVersion, "version 2 is not supported"),
            log: "version 2 is not supported",
        },
        Case {
            what: "an unknown version with a length of 4 GiB",
            bytes: raw_frame(2, u32::MAX, b"body never read"),
            then: Then::Wait,
            expect: Error(ErrorKind::UnsupportedVersion, "version 2 is not supported"),
            log: "version 2 is not supported",
        },
        Case {
            what: "an option tag other than 00 or 01",
            // Register { port 4000, advertised_ip: <tag 02> }
            bytes: framed(&[0, 0, 0, 0, 0x0f, 0xa0, 0x02, 0x00]),
            then: Then::Wait,
            expect: Error(bad, "invalid option tag 02"),
            log: "invalid option tag 02",
        },
        Case {
            what: "an unknown message tag",
            bytes: framed(&999u32.to_be_bytes()),
            then: Then::Wait,
            expect: Error(bad, "unknown message tag 999"),
            log: "unknown message tag 999",
        },
        Case {
            what: "a length of 4 GiB",
            bytes: raw_frame(VERSION, u32::MAX, b"xxxx"),
            then: Then::Wait,
            expect: Error(bad, "frame of 4294967295 bytes refused"),
            log: "frame of 4294967295 bytes refused",
        },
        Case {
            what: "an empty body",
            bytes: framed(b""),
            then: Then::Wait,
            expect: Error(bad, "malformed"),
            log: "malformed",
        },
        Case {
            what: "a truncated frame, half-closed",
            bytes: raw_frame(VERSION, 20, b"short"),
            then: Then::HalfClose,
            expect: Error(bad, "in the middle of a message"),
            log: "in the middle of a message",
        },
        Case {
            what: "a truncated frame, then close",
            bytes: raw_frame(VERSION, 20, b"short"),
            then: Then::Close,
            expect: Unread,
            log: "in the middle of a message",
        },
        Case {
            what: "a half-closed socket inside the header",
            bytes: b"P2P".to_vec(),
            then: Then::HalfClose,
            expect: Error(bad, "in the middle of a message"),
            log: "in the middle of a message",
        },
        Case {
            what: "junk inside the frame, after the message",
            bytes: framed(&junk_inside),
            then: Then::Wait,
            expect: Error(bad, "unexpected bytes after the message"),
            log: "unexpected bytes after the message",
        },
        Case {
            what: "a frame followed by junk",
            bytes: junk_after,
            then: Then::Wait,
            expect: Answer,
            log: "",
        },
        Case {
            what: "a name that is not UTF-8",
            bytes: framed(&not_utf8),
            then: Then::Wait,
            expect: Error(bad, "malformed"),
            log: "malformed",
        },
        Case {
            what: "an over-long name",
            bytes: encode(&too_long_name),
            then: Then::Wait,
            expect: Error(bad, "file name of 4097 bytes refused (limit 4096)"),
            log: "file name of 4097 bytes refused",
        },
        Case {
            what: "an over-long token",
            bytes: encode(&too_long_token),
            then: Then::Wait,
            expect: Error(bad, "token of 257 bytes refused (limit 256)"),
            log: "token of 257 bytes refused",
        },
    ]
}

#[test]
fn bad_frames_get_an_error_or_a_clean_close_and_service_goes_on() {
    let pair = Pair::start(&[]);
    for target in pair.targets() {
        let normal = match target.name {
            "relay" => Request::ListNodes,
            _ => Request::ListFiles,
        };
        for case in frame_cases(&normal) {
            let what = format!("{}: {}", target.name, case.what);
            let (local, got) = exchange_raw(target.addr, &case.bytes, case.then);
            check_answer(&got, case.expect, &what);
            check_one_log_line(target.proc, local, case.log, &what);
            pair.assert_serves(&target);
        }
    }
    // And the real client still works end to end.
    let mut cmd = harness::client(pair.relay.port());
    cmd.arg("hello.txt");
    let out = harness::run(cmd, b"", HANG);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stdout, HELLO);
}

/// Bad magic gets no answer, but the same close as any refused request:
/// half-close, then drain (docs/PROTOCOL.md, "One exchange per connection").
/// The peer goes on sending after the server has refused it; a server that
/// closed at once would answer those bytes with a reset, and the peer would
/// read an error instead of a clean end-of-file.
#[test]
fn bad_magic_gets_no_answer_and_a_clean_close_after_a_drain() {
    let pair = Pair::start(&[]);
    for target in pair.targets() {
        let what = format!("{}: bad magic, then more", target.name);
        let mut stream = TcpStream::connect(target.addr).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        let local = stream.local_addr().unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        // The server refuses on the first bytes and half-closes: the peer
        // reads end-of-file while its own side is still open.
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        assert!(got.is_empty(), "{what}: answered {got:02x?}");
        check_one_log_line(target.proc, local, "(HTTP)", &what);
        // Still draining: more bytes are taken, not reset.
        for _ in 0..8 {
            stream
                .write_all(&[b'x'; 4096])
                .unwrap_or_else(|e| panic!("{what}: write after the refusal: {e}"));
            thread::sleep(Duration::from_millis(20));
        }
        stream.shutdown(Shutdown::Write).unwrap();
        match stream.read(&mut [0u8; 16]) {
            Ok(0) => {}
            other => panic!("{what}: expected a clean end-of-file, got {other:?}"),
        }
        pair.assert_serves(&target);
    }
}

// ---------------------------------------------------------------------------
// Names a node must refuse, and files it cannot serve.

/// Starts a node over `dir`; as root, as the unprivileged user `nobody`
/// (uid 65534), so that file permissions apply to it. `nobody` runs a copy
/// of the binary from a temp dir anyone may enter, with `dir` as its working
/// directory: the checkout (and target/) may be where `nobody` cannot go,
/// such as a clone in /root. The copy is returned to be kept until the end.
fn start_unprivileged_node(relay: &Relay, dir: &Path) -> (Node, Option<AnyoneBin>) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let node = Node::spawn_with("127.0.0.1", relay.port(), dir, &[], |_| {});
        return (node.until_registered(), None);
    }
    let program = AnyoneBin::copy("peer-node");
    harness::assert_anyone_can_reach(&dir.join("hello.txt"));
    let node = Node::spawn_program(&program.path, "127.0.0.1", relay.port(), dir, &[], |cmd| {
        cmd.uid(65534).gid(65534).current_dir(dir);
    });
    (node.until_registered(), Some(program))
}

/// A shared directory with every kind of thing a node must not serve, and
/// a secret next to it.
fn hostile_share(root: &Path) -> std::path::PathBuf {
    // Readable by the unprivileged node.
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("secret"), b"secret").unwrap();
    let dir = root.join("share");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("hello.txt"), HELLO).unwrap();
    fs::write(dir.join("sub/inner.txt"), b"inner").unwrap();
    symlink(root.join("secret"), dir.join("out")).unwrap();
    symlink("loop", dir.join("loop")).unwrap();
    let fifo =
        std::ffi::CString::new(dir.join("fifo").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: mkfifo only reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // The socket file stays when the listener is dropped; it is the file
    // the node is asked for.
    drop(std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap());
    fs::write(dir.join("locked.txt"), b"locked").unwrap();
    fs::set_permissions(dir.join("locked.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    dir
}

#[test]
fn bad_names_and_unservable_files_are_refused_and_service_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = hostile_share(tmp.path());
    let relay = Relay::start(&[]);
    let (node, _program) = start_unprivileged_node(&relay, &dir);
    let addr = loopback(&node);
    use ErrorKind::*;
    use Expect::Error;
    let long_component = "x".repeat(300);
    let cases: Vec<(&str, String, u64, Expect, &str)> = vec![
        (
            "an absolute name",
            "/etc/passwd".into(),
            0,
            Error(Forbidden, "absolute paths are not served"),
            "refused",
        ),
        (
            "a name with ..",
            "../secret".into(),
            0,
            Error(Forbidden, "`..` is not allowed"),
            "refused",
        ),
        (
            "a name with .. inside",
            "sub/../../secret".into(),
            0,
            Error(Forbidden, "`..` is not allowed"),
            "refused",
        ),
        (
            "a name with NUL",
            "hello.txt\0.jpg".into(),
            0,
            Error(Forbidden, "NUL"),
            "refused",
        ),
        (
            "a name with a backslash",
            "sub\\inner.txt".into(),
            0,
            Error(Forbidden, "backslash"),
            "refused",
        ),
        (
            "an empty name",
            String::new(),
            0,
            Error(Forbidden, "empty file name"),
            "refused",
        ),
        (
            "an over-long name",
            "n".repeat(MAX_NAME_LEN + 1),
            0,
            Error(BadRequest, "file name of 4097 bytes refused"),
            "bad request",
        ),
        (
            "a symlink out of DIR",
            "out".into(),
            0,
            Error(Forbidden, "outside the shared directory"),
            "refused",
        ),
        (
            "a directory",
            "sub".into(),
            0,
            Error(Forbidden, "a directory is not a file"),
            "refused",
        ),
        (
            "a FIFO",
            "fifo".into(),
            0,
            Error(Forbidden, "not a regular file"),
            "refused",
        ),
        (
            "a socket",
            "socket".into(),
            0,
            Error(Forbidden, "not a regular file"),
            "refused",
        ),
        (
            "a symlink loop",
            "loop".into(),
            0,
            Error(Internal, "cannot read the file"),
            "cannot open",
        ),
        (
            "an unreadable file",
            "locked.txt".into(),
            0,
            Error(Internal, "permission denied"),
            "cannot open",
        ),
        (
            "an offset past the end",
            "hello.txt".into(),
            HELLO.len() as u64 + 1,
            Error(OutOfRange, "past the end"),
            "past the end",
        ),
        (
            "a name through a file",
            "hello.txt/".into(),
            0,
            Expect::Answer,
            "not here",
        ),
        (
            "a name with .. that would stay inside",
            "sub/../hello.txt".into(),
            0,
            Error(Forbidden, "`..` is not allowed"),
            "refused",
        ),
        (
            "the shared directory itself",
            ".".into(),
            0,
            Error(Forbidden, "a directory is not a file"),
            "refused",
        ),
        (
            "a name too long for the file system",
            long_component,
            0,
            Expect::Answer,
            "not here",
        ),
    ];
    for (what, name, offset, expect, log) in cases {
        let request = Request::GetFile(FileRequest { name, offset });
        let (local, got) = exchange_raw(addr, &encode(&request), Then::Wait);
        check_answer(&got, expect, what);
        check_one_log_line(&node.proc, local, log, what);
        assert_eq!(get(addr, "hello.txt").unwrap(), HELLO, "after {what}");
    }
    // At the end of the file: a File header and no body (docs/PROTOCOL.md,
    // "Offsets"); then a clean end-of-file.
    let at_end = Request::GetFile(FileRequest {
        name: "hello.txt".into(),
        offset: HELLO.len() as u64,
    });
    let (_, got) = exchange_raw(addr, &encode(&at_end), Then::Wait);
    let mut rest = &got[..];
    let header = frame::read::<Response>(&mut rest).unwrap();
    let size = HELLO.len() as u64;
    assert_eq!(
        header,
        Response::File(proto::FileHeader { size, offset: size })
    );
    assert!(rest.is_empty(), "{} bytes after an empty body", rest.len());
    // A request meant for the relay.
    let (local, got) = exchange_raw(addr, &encode(&Request::ListNodes), Then::Wait);
    check_answer(
        &got,
        Error(BadRequest, "ask the relay"),
        "ListNodes to a node",
    );
    check_one_log_line(
        &node.proc,
        local,
        "meant for the relay",
        "ListNodes to a node",
    );
    assert_eq!(get(addr, "sub/inner.txt").unwrap(), b"inner");
}

/// Lists `addr`'s files; the names, once the node has logged the listing.
fn list_names(node: &Node, addr: SocketAddr) -> Vec<String> {
    let before = node.proc.count(": listed ");
    let names = match exchange::call(addr, &Request::ListFiles, &timeouts()) {
        Ok(Response::Files(list)) => list.entries.into_iter().map(|e| e.name).collect(),
        other => panic!("the node did not list its files: {other:?}"),
    };
    let start = Instant::now();
    while node.proc.count(": listed ") == before {
        assert!(start.elapsed() < READY, "the listing was not logged");
        thread::sleep(Duration::from_millis(10));
    }
    names
}

/// A file whose name no request can carry is left out of a listing, and the
/// node says so: once per name, with the reason, not at every listing.
#[test]
fn names_that_cannot_be_shared_are_logged_once_each() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello.txt"), HELLO).unwrap();
    fs::write(dir.join(".hidden"), b"dot").unwrap();
    fs::write(dir.join(OsStr::from_bytes(b"caf\xe9.txt")), b"latin-1").unwrap();
    fs::write(dir.join("back\\slash.txt"), b"x").unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, &dir, &[]);
    let addr = loopback(&node);

    for _ in 0..3 {
        assert_eq!(list_names(&node, addr), [".hidden", "hello.txt"]);
    }
    let log = node.proc.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("cannot share")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""caf\xE9.txt""#) && l.contains("not valid UTF-8")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""back\\slash.txt""#) && l.contains("backslash")),
        "{log}"
    );

    // A new one is reported at the next listing, once.
    fs::write(dir.join("new\\one"), b"x").unwrap();
    for _ in 0..2 {
        assert_eq!(list_names(&node, addr), [".hidden", "hello.txt"]);
    }
    assert_eq!(node.proc.count("cannot share"), 3, "{}", node.proc.log());
    assert_eq!(node.proc.count("new\\\\one"), 1, "{}", node.proc.log());
}

// ---------------------------------------------------------------------------
// Files that change while they are sent.

/// A node shares a 64 MiB file; the test reads the header, truncates the file
/// to 1 MiB, then reads on. The node cannot have sent the whole file before
/// the truncation: the test's receive buffer is capped at 64 KiB, so no more
/// than a few MiB are in flight. The body ends short, the connection closes
/// cleanly, the node logs it, and serves the next request.
#[test]
fn a_file_that_shrinks_during_the_transfer_ends_short_and_the_node_goes_on() {
    let request = Request::GetFile(FileRequest {
        name: "big.bin".into(),
        offset: 0,
    });
    shrink_while_sending(request, "shrank while it was sent");
}

/// The same with a verified range: the node gathers the range in a pipe and
/// splices it onto the socket; a file that ends before the range does ends
/// the stream short too, and the node says the file changed (the client
/// refuses what does not match) and goes on.
#[test]
fn a_file_that_shrinks_during_a_range_transfer_ends_short_and_the_node_goes_on() {
    let request = Request::GetRange(RangeRequest {
        target: proto::Target::Name("big.bin".into()),
        offset: 0,
        len: u64::MAX,
    });
    shrink_while_sending(request, "big.bin changed while it was sent");
}

/// Sends `request` for a 64 MiB big.bin over a socket with a small receive
/// buffer, cuts the file to 1 MiB once the header is in, reads on to the
/// close, and checks the node's one log line (`logged`) and that it serves on.
fn shrink_while_sending(request: Request, logged: &str) {
    const SIZE: u64 = 64 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello.txt"), HELLO).unwrap();
    // Sparse: instant to make, read as zeroes.
    let big = fs::File::create(dir.join("big.bin")).unwrap();
    big.set_len(SIZE).unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, &dir, &[]);
    let addr = loopback(&node);

    let mut stream = harness::connect_from(None, addr, Some(64 * 1024)).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    let local = stream.local_addr().unwrap();
    frame::write(&mut stream, &request).unwrap();
    match frame::read::<Response>(&mut stream).unwrap() {
        Response::File(header) => assert_eq!(header.body_len(), SIZE),
        Response::Range(header) => assert_eq!(header.len, SIZE),
        other => panic!("expected a file or a range, got {other:?}"),
    }
    big.set_len(1 << 20).unwrap();
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n as u64,
            Err(e) => panic!("after {got} bytes the node did not close cleanly: {e}"),
        }
    }
    assert!(got < SIZE, "all {SIZE} bytes arrived");
    check_one_log_line(&node.proc, local, logged, "shrunk file");
    assert_eq!(get(addr, "hello.txt").unwrap(), HELLO);
}

/// Asks `addr` for `name` over a socket with a small receive buffer (so the
/// node is still sending while the test acts) and reads the file header.
/// Returns the stream, its local address (to find the node's log line) and
/// the header.
fn start_slow_download(addr: SocketAddr, name: &str) -> (TcpStream, SocketAddr, proto::FileHeader) {
    let mut stream = harness::connect_from(None, addr, Some(64 * 1024)).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    let local = stream.local_addr().unwrap();
    let request = Request::GetFile(FileRequest {
        name: name.into(),
        offset: 0,
    });
    frame::write(&mut stream, &request).unwrap();
    match frame::read::<Response>(&mut stream).unwrap() {
        Response::File(header) => (stream, local, header),
        other => panic!("expected a file, got {other:?}"),
    }
}

/// A file removed while it is sent is sent whole: the node holds it open, so
/// the client gets the file as it was when asked for, never a mix.
#[test]
fn a_file_that_vanishes_during_the_transfer_is_sent_whole() {
    let content: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello.txt"), HELLO).unwrap();
    fs::write(dir.join("gone.bin"), &content).unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, &dir, &[]);
    let addr = loopback(&node);

    let (mut stream, local, header) = start_slow_download(addr, "gone.bin");
    assert_eq!(header.body_len(), content.len() as u64);
    fs::remove_file(dir.join("gone.bin")).unwrap();
    let mut body = Vec::new();
    stream.read_to_end(&mut body).unwrap();
    assert!(body == content, "the body differs from the file");
    check_one_log_line(&node.proc, local, "sent gone.bin", "vanished file");
    assert_eq!(
        get(addr, "gone.bin"),
        Err("NotFound".to_string()),
        "the file is gone now"
    );
    assert_eq!(get(addr, "hello.txt").unwrap(), HELLO);
}

// ---------------------------------------------------------------------------
// Slow peers.

/// Writes `bytes` one at a time, `every` apart, until done or a write fails;
/// returns how many were written and when the first write failed.
fn trickle(mut stream: TcpStream, bytes: Vec<u8>, every: Duration) -> (usize, Option<Instant>) {
    for (i, byte) in bytes.iter().enumerate() {
        if stream.write_all(&[*byte]).is_err() {
            return (i, Some(Instant::now()));
        }
        thread::sleep(every);
    }
    (bytes.len(), None)
}

/// A request sent one byte every 150 ms cannot hold a connection past the
/// request deadline (1 s here): the server answers and closes at the deadline.
#[test]
fn a_trickled_request_is_cut_at_the_deadline() {
    let pair = Pair::start(&["--request-timeout", "1"]);
    thread::scope(|scope| {
        for target in pair.targets() {
            let pair = &pair;
            scope.spawn(move || {
                let mut stream = TcpStream::connect(target.addr).unwrap();
                stream.set_read_timeout(Some(HANG)).unwrap();
                let local = stream.local_addr().unwrap();
                let start = Instant::now();
                let bytes = encode(&Request::ListFiles);
                let writer = stream.try_clone().unwrap();
                let trickler =
                    thread::spawn(move || trickle(writer, bytes, Duration::from_millis(150)));
                let mut got = Vec::new();
                stream.read_to_end(&mut got).unwrap();
                let took = start.elapsed();
                let what = format!("{}: trickled request", target.name);
                check_answer(
                    &got,
                    Expect::Error(ErrorKind::BadRequest, "no complete request within 1000 ms"),
                    &what,
                );
                assert!(
                    took >= Duration::from_millis(900) && took < Duration::from_secs(4),
                    "{what}: closed after {took:?}"
                );
                drop(stream);
                let _ = trickler.join();
                check_one_log_line(target.proc, local, "timed out", &what);
                pair.assert_serves(&target);
            });
        }
    });
}

/// After answering, a server drains what the peer still sends for a short
/// while (so its close does not turn into a reset), but for 2 s in all: a
/// peer trickling junk cannot keep the connection, or its slot, longer. Both
/// after a refused request (an unknown tag), where the server always drains,
/// and after a served one.
#[test]
fn junk_trickled_after_a_request_does_not_hold_the_connection() {
    let pair = Pair::start(&[]);
    thread::scope(|scope| {
        for target in pair.targets() {
            for refused in [true, false] {
                let pair = &pair;
                scope.spawn(move || {
                    let (request, expect) = match (refused, target.name) {
                        (true, _) => (
                            framed(&999u32.to_be_bytes()),
                            Expect::Error(ErrorKind::BadRequest, "unknown message tag 999"),
                        ),
                        (false, "relay") => (encode(&Request::ListNodes), Expect::Answer),
                        (false, _) => (encode(&Request::ListFiles), Expect::Answer),
                    };
                    let what = format!("{}: junk after {request:02x?}", target.name);
                    let mut stream = TcpStream::connect(target.addr).unwrap();
                    stream.set_read_timeout(Some(HANG)).unwrap();
                    stream.write_all(&request).unwrap();
                    let mut got = Vec::new();
                    stream.read_to_end(&mut got).unwrap();
                    check_answer(&got, expect, &what);
                    let answered = Instant::now();
                    let (sent, failed) =
                        trickle(stream, vec![b'j'; 100], Duration::from_millis(100));
                    let failed = failed.unwrap_or_else(|| {
                        panic!("{what}: the server still read after {sent} bytes in 10 s")
                    });
                    let held = failed - answered;
                    assert!(held < Duration::from_secs(4), "{what}: held for {held:?}");
                    pair.assert_serves(&target);
                });
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Floods.

/// One connection the test holds open without sending anything.
struct Held {
    stream: TcpStream,
    got: Vec<u8>,
    /// When the server's close was seen.
    closed: Option<Instant>,
}

impl Held {
    fn open(from: Option<Ipv4Addr>, to: SocketAddr) -> Held {
        let stream = harness::connect_from(from, to, None)
            .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
        stream.set_nonblocking(true).unwrap();
        Held {
            stream,
            got: Vec::new(),
            closed: None,
        }
    }

    /// Reads what has arrived, without waiting (or, once the stream is
    /// blocking again, up to the server's close).
    fn poll(&mut self) {
        let mut buf = [0u8; 512];
        while self.closed.is_none() {
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = Some(Instant::now()),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("a held connection failed: {e}"),
            }
        }
    }

    /// The error the server answered, once it has closed; None for no
    /// answer yet, or a normal one.
    fn error(&self) -> Option<proto::ErrorReply> {
        self.closed?;
        let mut rest = &self.got[..];
        match frame::read::<Response>(&mut rest) {
            Ok(Response::Error(e)) if rest.is_empty() => Some(e),
            Ok(_) if rest.is_empty() => None,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    fn is_busy(&self) -> bool {
        self.error().is_some_and(|e| e.kind == ErrorKind::Busy)
    }
}

/// Polls every held connection until `done` holds, or panics after `within`.
fn poll_until(held: &mut [Held], within: Duration, what: &str, done: impl Fn(&[Held]) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        held.iter_mut().for_each(Held::poll);
        if done(held) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// 300 silent connections from 127.0.0.2 against a node with a per-IP cap of
/// 256 and a 3 s request deadline: 44 are answered `busy` at once, a client
/// on 127.0.0.1 is served within a second while the 256 are held, and the
/// 256 are answered and closed when their deadline passes.
#[test]
fn silent_connections_past_the_per_ip_cap_get_busy_and_are_closed_at_the_deadline() {
    const OPEN: usize = 300;
    const CAP: usize = 256;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello.txt"), HELLO).unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(
        &relay,
        &dir,
        &["--max-per-ip", "256", "--request-timeout", "3"],
    );
    let addr = loopback(&node);
    let flooder = Ipv4Addr::new(127, 0, 0, 2);

    let opened = Instant::now();
    let mut held: Vec<Held> = (0..OPEN).map(|_| Held::open(Some(flooder), addr)).collect();
    poll_until(
        &mut held,
        Duration::from_millis(2500),
        "44 busy answers",
        |h| h.iter().filter(|h| h.closed.is_some()).count() >= OPEN - CAP,
    );
    assert_eq!(held.iter().filter(|h| h.is_busy()).count(), OPEN - CAP);
    let busy = held.iter().find(|h| h.is_busy()).unwrap().error().unwrap();
    assert!(
        busy.message.contains("too many connections from 127.0.0.2"),
        "{busy:?}"
    );
    node.proc
        .wait_for("too many connections from 127.0.0.2", READY);

    // The flood holds 256 slots; a client from another address is served.
    let start = Instant::now();
    assert_eq!(get(addr, "hello.txt").unwrap(), HELLO);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "the fetch took {took:?}");
    held.iter_mut().for_each(Held::poll);
    let silent = held.iter().filter(|h| h.closed.is_none()).count();
    assert_eq!(silent, CAP, "connections closed before their deadline");

    // At the deadline each silent connection is answered and closed.
    poll_until(&mut held, Duration::from_secs(10), "the deadline", |h| {
        h.iter().all(|h| h.closed.is_some())
    });
    let mut timed_out = 0;
    for h in &held {
        let e = h.error().unwrap();
        if e.kind == ErrorKind::Busy {
            continue;
        }
        assert_eq!(e.kind, ErrorKind::BadRequest, "{e:?}");
        assert!(
            e.message.contains("no complete request within 3000 ms"),
            "{e:?}"
        );
        let after = h.closed.unwrap() - opened;
        assert!(
            after >= Duration::from_millis(2900),
            "closed after {after:?}"
        );
        timed_out += 1;
    }
    assert_eq!(timed_out, CAP);
    drop(held);
    assert_eq!(get(addr, "hello.txt").unwrap(), HELLO);
}

/// A relay and a node with --max-connections 8: of 20 connections held
/// open, those past the cap are answered `busy` and the admitted ones are
/// served; a burst of 40 parallel clients gets answers or `busy`, never a
/// hang; the servers keep running and serve normally once the burst is over.
#[test]
fn a_burst_past_the_connection_cap_gets_busy_and_service_resumes() {
    const CAP: usize = 8;
    const OPEN: usize = 20;
    let mut pair = Pair::start(&["--max-connections", "8"]);
    for target in pair.targets() {
        let normal = match target.name {
            "relay" => Request::ListNodes,
            _ => Request::ListFiles,
        };
        let mut held: Vec<Held> = (0..OPEN).map(|_| Held::open(None, target.addr)).collect();
        poll_until(&mut held, HANG, "12 busy answers", |h| {
            h.iter().filter(|h| h.closed.is_some()).count() >= OPEN - CAP
        });
        let busy = held.iter().find(|h| h.is_busy()).unwrap().error().unwrap();
        assert!(busy.message.contains("(limit 8)"), "{busy:?}");
        // Each connection is now busy or admitted, and the admitted are
        // served. (The relay may still hold a slot for the node's own
        // registration, which makes one more connection busy.)
        let mut served = 0;
        for h in held.iter_mut().filter(|h| h.closed.is_none()) {
            h.stream.set_nonblocking(false).unwrap();
            h.stream.set_read_timeout(Some(HANG)).unwrap();
            let _ = frame::write(&mut h.stream, &normal);
            h.poll();
            assert!(h.closed.is_some(), "{}: no answer in {HANG:?}", target.name);
            match h.error() {
                Some(e) if e.kind == ErrorKind::Busy => {}
                Some(e) => panic!("{}: {e:?}", target.name),
                None => served += 1,
            }
        }
        let busy = held.iter().filter(|h| h.is_busy()).count();
        assert_eq!(busy + served, OPEN, "{}", target.name);
        assert!(
            busy >= OPEN - CAP && served <= CAP && served + 1 >= CAP,
            "{}: {busy} busy, {served} served",
            target.name
        );
        drop(held);

        // A burst of parallel clients: each is served or told `busy`.
        let (addr, name) = (target.addr, target.name);
        let served: Vec<bool> = thread::scope(|scope| {
            let clients: Vec<_> = (0..40)
                .map(|_| {
                    let normal = normal.clone();
                    scope.spawn(move || match exchange::call(addr, &normal, &timeouts()) {
                        Ok(Response::Error(e)) if e.kind == ErrorKind::Busy => false,
                        Ok(Response::Error(e)) => panic!("{name}: {e:?}"),
                        Ok(_) => true,
                        Err(e) => panic!("{name}: a burst client failed: {e}"),
                    })
                })
                .collect();
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        assert!(
            served.iter().any(|s| *s),
            "{}: nobody was served",
            target.name
        );

        // Service resumes once the slots are given back.
        let deadline = Instant::now() + HANG;
        loop {
            match exchange::call(target.addr, &normal, &timeouts()) {
                Ok(Response::Error(e)) if e.kind == ErrorKind::Busy => {
                    assert!(Instant::now() < deadline, "{}: still busy", target.name);
                    thread::sleep(Duration::from_millis(20));
                }
                Ok(_) => break,
                Err(e) => panic!("{}: {e}", target.name),
            }
        }
        pair.assert_serves(&target);
        target.proc.wait_for("refused", READY);
    }
    assert!(
        pair.relay.proc.wait_exit(Duration::ZERO).is_none(),
        "the relay died"
    );
    assert!(
        pair.node.proc.wait_exit(Duration::ZERO).is_none(),
        "the node died"
    );
}

/// 1 100 files with 4 000-byte names (a deep path) make a listing larger than
/// one response frame: the node sends the most that fits, marked truncated,
/// instead of failing to answer.
#[test]
fn a_listing_too_big_for_one_frame_is_cut_and_marked_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    let mut deep = dir.clone();
    for level in 0..15 {
        deep.push(format!("{level:0>255}"));
    }
    fs::create_dir_all(&deep).unwrap();
    for i in 0..1100 {
        fs::write(deep.join(format!("{i:0>150}")), b"x").unwrap();
    }
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, &dir, &[]);
    match exchange::call(loopback(&node), &Request::ListFiles, &timeouts()) {
        Ok(Response::Files(list)) => {
            assert!(list.truncated);
            assert!(list.entries.len() > 1000 && list.entries.len() < 1100);
        }
        other => panic!("no listing: {other:?}"),
    }
    node.proc.wait_for("(truncated)", READY);
    let mut cmd = harness::client(relay.port());
    cmd.args(["--list", "--nodes"]);
    let out = harness::run(cmd, b"", HANG);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout_text().contains(&node.listed.to_string()));
}

/// Starts a node whose open-file limit is `soft` (hard: `hard`) before it
/// runs, with `args`.
fn start_node_with_fd_limit(
    relay: &Relay,
    dir: &Path,
    soft: u64,
    hard: u64,
    args: &[&str],
) -> Node {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    Node::spawn_with("127.0.0.1", relay.port(), dir, args, |cmd| {
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
    .until_registered()
}

/// Many systems start processes with a soft limit of 1 024 open files, below
/// what the default caps need; past it, accept fails and connections wait
/// unanswered instead of being served or told `busy`. A node started with a
/// soft limit of 64 and --max-connections 100 raises its own limit: of 120
/// held connections, 100 are admitted and 20 answered `busy`. With a hard
/// limit too low to raise to, it says so at start.
#[test]
fn a_low_open_file_limit_is_raised_to_what_the_caps_need() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello.txt"), HELLO).unwrap();
    let relay = Relay::start(&[]);
    let node = start_node_with_fd_limit(&relay, &dir, 64, 4096, &["--max-connections", "100"]);
    let addr = loopback(&node);
    let mut held: Vec<Held> = (0..120).map(|_| Held::open(None, addr)).collect();
    poll_until(&mut held, HANG, "20 busy answers", |h| {
        h.iter().filter(|h| h.closed.is_some()).count() >= 20
    });
    assert_eq!(held.iter().filter(|h| h.is_busy()).count(), 20);
    assert!(
        !node.proc.log().contains("accept failed"),
        "{}",
        node.proc.log()
    );
    drop(held);
    assert_eq!(node.proc.count("open files allowed"), 0);

    let low = start_node_with_fd_limit(&relay, &dir, 64, 64, &["--max-connections", "100"]);
    low.proc.wait_for("open files allowed", READY);
    assert_eq!(get(loopback(&low), "hello.txt").unwrap(), HELLO);
}

/// A socket that keeps a copy of every byte written through it: a real
/// client's handshake, recorded for replay.
struct Recording {
    tcp: TcpStream,
    sent: Vec<u8>,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tcp.write(buf)?;
        self.sent.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends `bytes` to `addr`, half-closes, and returns whatever comes back
/// before the server closes (bounded by the test's timeouts).
fn send_and_read(addr: SocketAddr, bytes: &[u8], close: bool) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(READY)).unwrap();
    let _ = tcp.write_all(bytes);
    if close {
        let _ = tcp.shutdown(Shutdown::Write);
    }
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    got
}

/// Handshake garbage, truncation and replays at a private network's relay
/// and node: each connection gets a plain refusal or a clean close, the
/// server logs one line and goes on serving real clients.
#[test]
fn handshake_garbage_truncation_and_replays_leave_a_private_network_serving() {
    use net::secure::{Identity, KeyKind, NetworkKeys, handshake};
    const SECRET: &str = "hostile secret";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a.txt"), "still here\n").unwrap();
    let relay = Relay::start(&["--secret", SECRET, "--request-timeout", "1"]);
    let key = tmp.path().join("node.key");
    let node = Node::spawn_with(
        "127.0.0.1",
        relay.port(),
        &dir,
        &[
            "--secret",
            SECRET,
            "--key",
            key.to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--request-timeout",
            "1",
        ],
        |cmd| {
            cmd.env_remove("P2P_SECRET");
        },
    )
    .until_registered();
    let keys = NetworkKeys::from_secret(SECRET.as_bytes());

    // A real handshake with the relay, recorded, then its request.
    let mut rec = Recording {
        tcp: TcpStream::connect(relay.addr).unwrap(),
        sent: Vec::new(),
    };
    rec.tcp.set_read_timeout(Some(READY)).unwrap();
    let me = Identity::generate().unwrap();
    let session = handshake::initiate(&mut rec, KeyKind::Relay, &keys.relay, &me, None).unwrap();
    let mut stream = session.over(rec);
    proto::frame::write(&mut stream, &Request::ListNodes).unwrap();
    assert!(matches!(
        proto::frame::read::<Response>(&mut stream).unwrap(),
        Response::Nodes(_)
    ));
    let recorded = stream.into_inner().sent;

    let mut preamble = b"P2PN\x00\x01\x01".to_vec();
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "replayed handshake and request",
            recorded.clone(),
            true,
            "wrong or missing secret",
        ),
        (
            "garbage after the preamble",
            {
                let mut g = preamble.clone();
                g.extend_from_slice(&[0x00, 0x30]);
                g.extend((0..48u8).map(|i| i.wrapping_mul(37)));
                g.extend_from_slice(&[0x00, 0x40]);
                g.extend([0xee; 64]);
                g
            },
            true,
            "message 1 is not a handshake message",
        ),
        (
            "a message 1 of the wrong length",
            {
                let mut g = preamble.clone();
                g.extend_from_slice(&[0xff, 0xff]);
                g
            },
            true,
            "a handshake message of 65535 bytes",
        ),
        (
            "an unknown key byte",
            b"P2PN\x00\x01\x09\x00\x30".to_vec(),
            true,
            "unknown key 9",
        ),
        (
            "another handshake version",
            b"P2PN\x00\x07\x01".to_vec(),
            true,
            "handshake version 7",
        ),
        ("truncated in message 1", recorded[..20].to_vec(), true, ""),
        ("truncated preamble", b"P2P".to_vec(), true, ""),
        ("a stalled handshake", recorded[..7].to_vec(), false, ""),
    ];
    preamble.clear();
    for (what, bytes, close, answer) in &cases {
        for target in [relay.addr, node.listen] {
            let got = send_and_read(target, bytes, *close);
            if answer.is_empty() {
                assert!(
                    got.is_empty() || got.starts_with(b"P2PF"),
                    "{what} at {target}: {got:02x?}"
                );
            } else {
                // The refusal may follow message 2 (when message 3 fails).
                let at = got.windows(4).position(|w| w == b"P2PF").unwrap_or(0);
                let mut r = &got[at..];
                match proto::frame::read::<Response>(&mut r) {
                    Ok(Response::Error(e)) => {
                        assert!(
                            e.message.contains(answer),
                            "{what} at {target}: {}",
                            e.message
                        )
                    }
                    other => panic!("{what} at {target}: {other:?} from {got:02x?}"),
                }
            }
        }
    }
    // Both still serve a real client.
    let mut client = harness::client(relay.port());
    client
        .env_remove("P2P_SECRET")
        .args(["a.txt", "--secret", SECRET]);
    let got = harness::run(client, b"", Duration::from_secs(60));
    assert_eq!(got.stdout_text(), "still here\n", "{}", got.stderr);
    assert!(relay.proc.log().contains("handshake failed"));
    assert!(node.proc.log().contains("handshake failed"));
}
