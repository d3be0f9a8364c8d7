//! Against a real DHT client: libtorrent 2.0 (Debian's python3-libtorrent,
//! driven by tests/dht_libtorrent.py) and our nodes on one DHT, both ways:
//! - a `peer-node --dht` announce is found by libtorrent's `dht_get_peers`;
//! - an announce made through libtorrent (an info-hash-only magnet of a
//!   file's derived id) is found by our lookup.
//!
//! The DHT is our loopback one (`dht::LocalDht`: patched mainline server
//! nodes, which libtorrent can use only because of the patch, see
//! docs/MAINLINE_TID.md), and everything runs in a network namespace of its
//! own with only `lo` ([`harness::netns::loopback_only`]), so nothing can
//! reach a public address. Needs root and python3-libtorrent; without them
//! the test says why and skips, unless `P2P_REQUIRE_NETNS` is set (as
//! `.ci/run` does, which installs python3-libtorrent).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use dht::{Bootstrap, DhtId, DhtNode, LocalDht, Lookup, NodeConfig};
use harness::netns::{loopback_only, skip_or_fail};
use harness::{Node, READY};
use proto::ContentHash;
use serde_json::Value;

/// Debian's interpreter: python3-libtorrent is installed for it, not for
/// another python3 that may come first on PATH.
const PYTHON: &str = "/usr/bin/python3";

/// How long libtorrent or our side may take to see the other's announce.
const FIND: Duration = Duration::from_secs(30);

/// One libtorrent session, driven through the script's stdin and stdout;
/// killed on drop.
struct Libtorrent {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Its listen port (TCP, and UDP for the DHT).
    port: u16,
}

impl Libtorrent {
    fn start(bootstrap: &[String]) -> Libtorrent {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dht_libtorrent.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(bootstrap.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the libtorrent script");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lt = Libtorrent {
            child,
            stdin,
            lines,
            port: 0,
        };
        let ready = lt.answer();
        assert_eq!(ready["ready"], true, "{ready}");
        lt.port = ready["port"].as_u64().unwrap() as u16;
        lt
    }

    fn answer(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(FIND)
            .unwrap_or_else(|_| panic!("libtorrent said nothing within {FIND:?}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn call(&mut self, command: &str) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.answer()
    }

    /// What libtorrent's `dht_get_peers` finds for `id`, asked again until
    /// `want` is among them or [`FIND`] passed.
    fn get_peers_until(&mut self, id: DhtId, want: SocketAddr) -> Vec<String> {
        let deadline = Instant::now() + FIND;
        loop {
            let answer = self.call(&format!("get_peers {id}"));
            let peers: Vec<String> = answer["peers"]
                .as_array()
                .unwrap_or_else(|| panic!("{answer}"))
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
            if peers.contains(&want.to_string()) || Instant::now() >= deadline {
                return peers;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Libtorrent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn libtorrent_missing() -> Option<String> {
    let ok = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| format!("{PYTHON} cannot import libtorrent (apt-get install python3-libtorrent)"))
}

#[test]
fn libtorrent_finds_our_announces_and_we_find_libtorrents() {
    if let Some(why) = libtorrent_missing() {
        skip_or_fail::<()>(&why);
        return;
    }
    let outcome = loopback_only(|| {
        let net = LocalDht::start(6).unwrap();
        // One bootstrap node only: libtorrent treats its bootstrap nodes
        // as routers and never puts them in its routing table, so it needs
        // nodes beyond them to be "ready".
        let mut lt = Libtorrent::start(&net.bootstrap()[..1]);

        // Ours, found by libtorrent.
        let dir = tempfile::tempdir().unwrap();
        let content = b"announced by a peer-node\n";
        fs::write(dir.path().join("f.txt"), content).unwrap();
        let boot: Vec<String> = net
            .bootstrap()
            .into_iter()
            .flat_map(|b| ["--dht-bootstrap".to_string(), b])
            .collect();
        let mut args: Vec<&str> = boot.iter().map(String::as_str).collect();
        args.extend(["--bind", "127.0.0.1"]);
        // No relay: the DHT needs none (the node retries it quietly).
        let node = Node::spawn("127.0.0.1", 9, dir.path(), &args);
        // The relay is down: it announces once it has waited 5 s for the
        // relay's verdict on its address.
        node.proc
            .wait_for("announced 1 shared files on the DHT", READY);
        let id = DhtId::derive(&ContentHash::of(content).0, None);
        let holder = SocketAddr::from((Ipv4Addr::LOCALHOST, node.listen.port()));
        let peers = lt.get_peers_until(id, holder);
        assert!(
            peers.contains(&holder.to_string()),
            "libtorrent found {peers:?}"
        );

        // libtorrent's, found by our lookup.
        let hash = ContentHash::of(b"announced through libtorrent\n").0;
        let id = DhtId::derive(&hash, None);
        let answer = lt.call(&format!("announce {id}"));
        assert_eq!(answer["announcing"], id.to_hex(), "{answer}");
        let theirs = SocketAddr::from((Ipv4Addr::LOCALHOST, lt.port));
        let mut config = NodeConfig::new(Bootstrap::Given(net.bootstrap()));
        config.bind = Ipv4Addr::LOCALHOST;
        let lookup = Lookup::new(DhtNode::start(&config).unwrap());
        let deadline = Instant::now() + FIND;
        let found = loop {
            let found = lookup.find(&hash, None, Instant::now() + Duration::from_secs(5));
            if found.contains(&theirs) || Instant::now() >= deadline {
                break found;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            found.contains(&theirs),
            "our lookup found {found:?}, not {theirs}"
        );
    });
    if let Err(why) = outcome {
        skip_or_fail::<()>(&format!("cannot make a network namespace ({why})"));
    }
}
