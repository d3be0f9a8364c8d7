//! A download from every holder at once, end to end on separate hosts: the
//! relay, the holders and the client each in a network namespace of their
//! own ([`harness::netns`]), every holder's uplink shaped to 100 Mbit/s
//! (`tc ... tbf rate 100mbit burst 256kb latency 100ms`), so that three
//! holders are really three links.
//!
//! What is asserted is bytes, not time: the file is intact, and who gave
//! how much (the client's final line, `found on 3 nodes (...): 16.1 / 16.0 /
//! 15.9 MiB from A / B / C`). Every wait polls a log or a pipe.
//!
//! Namespaces need root; without them each test says why and skips, unless
//! `P2P_REQUIRE_NETNS` is set (as `.ci/run` does).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use std::{fs, thread};

use harness::netns::Lab;
use harness::{Proc, READY, Run, addr_after, run};
use net::exchange::{self, Timeouts};
use proto::content::{ByteRange, encoded_len};
use proto::{ContentHash, RangeHeader, Registration, Request, Response, Target, frame};

const MIB: usize = 1 << 20;
/// The port the relay listens on inside its namespace, and the nodes'.
const RELAY_PORT: u16 = 7000;
const NODE_PORT: u16 = 7100;
/// How long one client run may take before the test fails (48 MiB over one
/// 100 Mbit/s link take 4 s).
const CLIENT: Duration = Duration::from_secs(120);
/// The shaped rate of every holder's uplink.
const RATE: &str = "100mbit";

/// `size` bytes that do not repeat in any short period (xorshift), so a
/// range put at the wrong offset cannot compare equal.
fn content(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

/// A relay and holders of one file, each on a host of its own, and a host
/// for the client. Fields drop in order: processes first, the lab last.
struct Swarm {
    nodes: Vec<Proc>,
    /// The addresses the relay lists the holders under, in its order.
    listed: Vec<SocketAddr>,
    _relay: Proc,
    /// Host indexes in the lab.
    node_hosts: Vec<usize>,
    client_host: usize,
    relay_ip: String,
    content: Vec<u8>,
    tmp: tempfile::TempDir,
    lab: Lab,
}

impl Swarm {
    /// `holders` nodes sharing `size` bytes as big.bin, each uplink shaped;
    /// None if namespaces are unavailable (and not required).
    fn start(name: &str, holders: usize, size: usize) -> Option<Swarm> {
        let mut lab = Lab::or_skip(name)?;
        let relay_host = lab.host("relay", "10.78.0.1");
        let node_hosts: Vec<usize> = (1..=holders)
            .map(|i| lab.host(&format!("n{i}"), &format!("10.78.0.1{i}")))
            .collect();
        let client_host = lab.host("client", "10.78.0.100");
        let relay_ip = lab.ip_of(relay_host).to_string();
        let mut cmd = lab.command(relay_host, "relay");
        cmd.arg(RELAY_PORT.to_string());
        let relay = Proc::spawn("relay", cmd);
        relay.wait_for("listening on", READY);

        let tmp = tempfile::tempdir().unwrap();
        let content = content(size);
        let mut nodes = Vec::new();
        let mut listed = Vec::new();
        for (i, &h) in node_hosts.iter().enumerate() {
            let dir = tmp.path().join(format!("n{}", i + 1));
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("big.bin"), &content).unwrap();
            let node = Swarm::node(&lab, h, &relay_ip, &dir, &tmp.path().join(format!("c{i}")));
            listed.push(node.1);
            nodes.push(node.0);
            lab.shape(h, RATE).unwrap_or_else(|why| panic!("{why}"));
        }
        Some(Swarm {
            nodes,
            listed,
            _relay: relay,
            node_hosts,
            client_host,
            relay_ip,
            content,
            tmp,
            lab,
        })
    }

    /// A peer-node on host `h`, registered, done hashing its directory, and
    /// indexed with its hashes.
    fn node(lab: &Lab, h: usize, relay_ip: &str, dir: &Path, cache: &Path) -> (Proc, SocketAddr) {
        let mut cmd = lab.command(h, "peer-node");
        cmd.arg(relay_ip)
            .arg(RELAY_PORT.to_string())
            .arg(dir)
            .args(["--port", &NODE_PORT.to_string(), "--cache"])
            .arg(cache);
        let node = Proc::spawn("peer-node", cmd);
        let line = node.wait_for("registered with relay", READY);
        node.wait_for("hashed 1 shared files", READY);
        // And the relay has its hash (before, the file may be known to the
        // index by name only: docs/PROTOCOL.md, "Names before hashes").
        node.wait_for("catalog at relay", READY);
        (node, addr_after(&line, " as "))
    }

    /// `peer-client RELAY 7000 ARGS` on the client's host.
    fn client(&self, args: &[&str]) -> Command {
        let mut cmd = self.lab.command(self.client_host, "peer-client");
        cmd.arg(&self.relay_ip)
            .arg(RELAY_PORT.to_string())
            .args(args);
        cmd
    }

    /// Fetches big.bin with `-o` (plus `args`); the run and the saved path.
    fn save(&self, args: &[&str]) -> (Run, PathBuf) {
        let out = self.tmp.path().join("saved.bin");
        let mut cmd = self.client(&["big.bin", "-o", out.to_str().unwrap()]);
        cmd.args(args);
        (run(cmd, b"", CLIENT), out)
    }

    fn assert_intact(&self, got: &[u8], what: &str) {
        assert_eq!(got.len(), self.content.len(), "{what}: wrong length");
        if got != self.content {
            let at = got.iter().zip(&self.content).position(|(a, b)| a != b);
            panic!("{what}: differs from the original at byte {at:?}");
        }
    }
}

/// Who gave how many MiB, from the client's final line: `found on 3 nodes
/// (N bytes, blake3 X): a / b / c MiB from A / B / C`, or `found on A, node
/// i of n (N bytes, ...)` for one node.
fn given(stderr: &str) -> Vec<(SocketAddr, f64)> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("found on "))
        .unwrap_or_else(|| panic!("no 'found on' line:\n{stderr}"));
    if let Some((_, rest)) = line.split_once("): ") {
        let (mib, addrs) = rest.split_once(" MiB from ").unwrap();
        return addrs
            .split(" / ")
            .zip(mib.split(" / "))
            .map(|(a, m)| (a.parse().unwrap(), m.parse().unwrap()))
            .collect();
    }
    let addr = line["found on ".len()..].split(',').next().unwrap();
    let bytes: f64 = line
        .split_once(" (")
        .unwrap()
        .1
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    vec![(addr.parse().unwrap(), bytes / MIB as f64)]
}

fn gave(given: &[(SocketAddr, f64)], node: SocketAddr) -> f64 {
    given
        .iter()
        .find(|(a, _)| *a == node)
        .map_or(0.0, |(_, mib)| *mib)
}

/// Three shaped holders of 48 MiB: the saved file is intact, and each of
/// them gave a share (at least a piece: the pieces are 2 MiB).
#[test]
fn three_shaped_holders_each_give_a_share() {
    let Some(swarm) = Swarm::start("three", 3, 48 * MIB) else {
        return;
    };
    let (out, saved) = swarm.save(&[]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    swarm.assert_intact(&fs::read(&saved).unwrap(), "the saved file");
    let given = given(&out.stderr);
    assert_eq!(given.len(), 3, "{}", out.stderr);
    for &node in &swarm.listed {
        assert!(
            gave(&given, node) >= 2.0,
            "{node} gave too little:\n{}",
            out.stderr
        );
    }
    let total: f64 = given.iter().map(|(_, m)| m).sum();
    assert!((total - 48.0).abs() < 0.2, "{}", out.stderr);
}

/// One of three holders is killed once it has sent a range: the file is
/// still intact, the dead holder is given up after at most two failed
/// tries (so it costs the fetch nothing more), and the two others gave the
/// rest between them.
#[test]
fn a_holder_killed_mid_transfer_leaves_the_file_intact() {
    let Some(mut swarm) = Swarm::start("kill", 3, 48 * MIB) else {
        return;
    };
    let out = swarm.tmp.path().join("saved.bin");
    let cmd = swarm.client(&["big.bin", "-o", out.to_str().unwrap()]);
    let client = harness::start_client(cmd, b"", None);
    // Node 3 answered a range request: the transfer is under way.
    swarm.nodes[2].wait_for("verified (blake3", READY);
    swarm.nodes[2].kill();
    let run = client.finish(CLIENT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    swarm.assert_intact(&fs::read(&out).unwrap(), "the saved file");
    let dead = swarm.listed[2];
    let tries = run
        .stderr
        .lines()
        .filter(|l| l.contains(&dead.to_string()) && !l.starts_with("found on"))
        .count();
    assert!(
        (1..=2).contains(&tries),
        "{tries} failed tries of {dead}:\n{}",
        run.stderr
    );
    let given = given(&run.stderr);
    let (a, b) = (gave(&given, swarm.listed[0]), gave(&given, swarm.listed[1]));
    assert!(
        a > gave(&given, dead) && b > gave(&given, dead),
        "{}",
        run.stderr
    );
    assert!(a + b + gave(&given, dead) > 47.9, "{}", run.stderr);
}

/// A fake holder in a namespace of its own that answers every range
/// request by hash with the right header and wrong bytes. It registers
/// after the real holders and sends no catalog, so the relay's who-has
/// names it among the nodes without one: the client finds the file on the
/// real holders first and then asks the liar for ranges too.
fn lying_holder(swarm: &mut Swarm) -> SocketAddr {
    let h = swarm.lab.host("liar", "10.78.0.66");
    let size = swarm.content.len() as u64;
    let ip = swarm.lab.ip_of(h).to_string();
    let listener = swarm
        .lab
        .within(h, || TcpListener::bind((ip.as_str(), NODE_PORT)).unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || lie(stream, size));
        }
    });
    let relay: SocketAddr = format!("{}:{RELAY_PORT}", swarm.relay_ip).parse().unwrap();
    let request = Request::Register(Registration {
        port: NODE_PORT,
        advertised_ip: None,
        token: None,
    });
    match swarm
        .lab
        .within(h, || exchange::call(relay, &request, &Timeouts::default()))
    {
        Ok(Response::Registered(r)) => r.addr,
        other => panic!("the lying holder was not registered: {other:?}"),
    }
}

/// Answers one range request with a true header and a body of the right
/// length whose every byte is wrong; answers the relay's dial-back `Hello`
/// as a node does, so that it is listed.
fn lie(mut stream: TcpStream, size: u64) {
    let _ = stream.set_read_timeout(Some(CLIENT));
    let req = match frame::read::<Request>(&mut stream) {
        Ok(Request::GetRange(req)) => req,
        Ok(Request::Hello) => {
            let _ = frame::write(&mut stream, &Response::Hello);
            return;
        }
        _ => return,
    };
    let (Target::Hash(hash), Some(range)) =
        (req.target, ByteRange::clamp(size, req.offset, req.len))
    else {
        let _ = frame::write(&mut stream, &Response::NotFound);
        return;
    };
    let header = RangeHeader {
        size,
        hash,
        offset: range.offset,
        len: range.len,
    };
    if frame::write(&mut stream, &Response::Range(header)).is_err() {
        return;
    }
    let mut left = encoded_len(size, range);
    let junk = vec![0xa5u8; 64 * 1024];
    while left > 0 {
        let n = left.min(junk.len() as u64) as usize;
        if stream.write_all(&junk[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
}

/// A holder that lies is caught by the proof on its first range, named,
/// and dropped; its ranges come from the honest holders, and it gave
/// nothing to a file that is intact.
#[test]
fn a_lying_holder_is_caught_and_its_ranges_refetched() {
    let Some(mut swarm) = Swarm::start("liar", 2, 24 * MIB) else {
        return;
    };
    let liar = lying_holder(&mut swarm);
    let (out, saved) = swarm.save(&[]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    swarm.assert_intact(&fs::read(&saved).unwrap(), "the saved file");
    let caught = out
        .stderr
        .lines()
        .find(|l| l.contains(&format!("corrupt data from {liar}")))
        .unwrap_or_else(|| panic!("the liar was not caught:\n{}", out.stderr));
    assert!(caught.contains("does not match"), "{caught}");
    assert!(caught.contains("no more ranges from it"), "{caught}");
    let given = given(&out.stderr);
    assert_eq!(gave(&given, liar), 0.0, "{}", out.stderr);
    assert!(given.len() == 2, "{}", out.stderr);
}

/// A holder that stops sending but keeps its connections open (SIGSTOP:
/// the kernel still accepts for it): its range times out after the
/// client's --timeout of 1 s and moves on to the others; the stalled holder
/// gives nothing and the file is intact.
#[test]
fn a_stalled_holder_s_ranges_move_on_after_the_timeout() {
    let Some(swarm) = Swarm::start("stall", 3, 48 * MIB) else {
        return;
    };
    let stalled = swarm.listed[2];
    swarm.nodes[2].signal(libc::SIGSTOP);
    let (out, saved) = swarm.save(&["--timeout", "1"]);
    swarm.nodes[2].signal(libc::SIGCONT);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    swarm.assert_intact(&fs::read(&saved).unwrap(), "the saved file");
    let timed_out = out
        .stderr
        .lines()
        .find(|l| l.contains(&stalled.to_string()) && l.contains("timed out"))
        .unwrap_or_else(|| panic!("no timeout for {stalled}:\n{}", out.stderr));
    assert!(timed_out.contains("go back to the queue") || timed_out.contains("no more ranges"));
    assert_eq!(gave(&given(&out.stderr), stalled), 0.0, "{}", out.stderr);
}

/// To stdout through a pipe: the bytes come out in order, identical, and
/// the client's peak memory stays under 32 MiB for a 48 MiB file: the
/// reorder window is 16 MiB whatever the size. The peak is the client's
/// VmHWM, read from /proc while the client is blocked writing its last
/// MiB to the pipe (the test stops reading there): every byte has been
/// fetched by then. (wait4's ru_maxrss would not do: a child spawned by
/// vfork carries the test process's own peak.)
#[test]
fn to_a_pipe_in_order_identical_and_in_bounded_memory() {
    let Some(swarm) = Swarm::start("pipe", 3, 48 * MIB) else {
        return;
    };
    let mut cmd = swarm.client(&["big.bin"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Killed(cmd.spawn().expect("cannot start peer-client"));
    let mut stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut got = vec![0u8; swarm.content.len() - MIB];
    stdout.read_exact(&mut got).unwrap();
    let peak_kib = vm_hwm_kib(child.0.id());
    stdout.read_to_end(&mut got).unwrap();
    let status = child.0.wait().unwrap();
    let stderr = err.join().unwrap();
    assert!(status.success(), "{stderr}");
    swarm.assert_intact(&got, "stdout");
    assert_eq!(given(&stderr).len(), 3, "{stderr}");
    assert!(
        peak_kib < 32 * 1024,
        "peak memory {peak_kib} KiB for a 48 MiB file:\n{stderr}"
    );
    eprintln!("peer-client to a pipe: peak memory {peak_kib} KiB");
}

/// A child killed (and reaped) on drop, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The peak resident memory of running process `pid`, in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// With --sources 1 the fetch is today's: the first holder in the relay's
/// order sends the whole file, and the status line names it alone.
#[test]
fn one_source_fetches_from_the_first_holder_alone() {
    let Some(swarm) = Swarm::start("one", 3, 24 * MIB) else {
        return;
    };
    let (out, saved) = swarm.save(&["--sources", "1"]);
    assert_eq!(out.code(), 0, "{}", out.stderr);
    swarm.assert_intact(&fs::read(&saved).unwrap(), "the saved file");
    let line = format!("found on {}, node 1 of 3", swarm.listed[0]);
    assert!(
        out.stderr.contains(&line),
        "no {line:?} in:\n{}",
        out.stderr
    );
    for node in &swarm.nodes[1..] {
        assert_eq!(node.count("verified (blake3"), 0, "{}", node.log());
    }
    assert_eq!(swarm.node_hosts.len(), 3);
}

/// Content hashes are what the holders are found by: a fetch by hash gets
/// the same bytes from all three.
#[test]
fn a_fetch_by_hash_uses_every_holder() {
    let Some(swarm) = Swarm::start("hash", 3, 24 * MIB) else {
        return;
    };
    let hash = ContentHash::of(&swarm.content);
    let out = swarm.tmp.path().join("by-hash.bin");
    let cmd = swarm.client(&[&format!("blake3:{hash}"), "-o", out.to_str().unwrap()]);
    let run = run(cmd, b"", CLIENT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    swarm.assert_intact(&fs::read(&out).unwrap(), "the saved file");
    assert_eq!(given(&run.stderr).len(), 3, "{}", run.stderr);
}
