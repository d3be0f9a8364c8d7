//! What a relay and a node say when they start, and when they are started
//! wrong (issues 23 and 24): a node pointed at something that is no relay,
//! or refused its handshake, stops with one line and status 2; a secret
//! where none is expected, or a weak one, is named; each shared directory
//! has its own key, and a second node over the same directory or key is
//! told of the first.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use harness::{Node, READY, Relay, bin, run};

const SECRET: &str = "correct horse battery staple";

/// A node that must stop: its exit status, and its log.
fn stopped(mut node: Node) -> (Option<i32>, String) {
    let status = node
        .proc
        .wait_exit(READY)
        .unwrap_or_else(|| panic!("the node kept running:\n{}", node.proc.log()));
    (status.code(), node.proc.log())
}

/// Asserts that a stopped node said why in exactly one error line
/// containing `why`, and never that it would retry.
fn one_line(log: &str, why: &str) {
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(errors[0].contains(why), "no {why:?} in:\n{log}");
    assert!(!log.contains("retrying"), "{log}");
}

/// A node whose "relay" is another node, or an HTTP server, stops at once
/// with one line and status 2, as for a wrong token; before, it retried
/// forever with a warning every few seconds.
#[test]
fn a_node_pointed_at_a_node_or_an_http_server_stops_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&[]);
    let first = Node::start(&relay, tmp.path(), &["--bind", "127.0.0.1"]);
    let at_node = Node::spawn("127.0.0.1", first.listen.port(), tmp.path(), &[]);
    let (code, log) = stopped(at_node);
    assert_eq!(code, Some(2), "{log}");
    one_line(
        &log,
        &format!(
            "127.0.0.1:{} is not a relay: it answered the registration with \"this is a \
             peer-node: ask the relay\"",
            first.listen.port()
        ),
    );

    // An HTTP server answers whatever it is sent with an HTTP response.
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let http_port = http.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut conn in http.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = conn.read(&mut [0u8; 1024]);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let at_http = Node::spawn("127.0.0.1", http_port, tmp.path(), &[]);
    let (code, log) = stopped(at_http);
    assert_eq!(code, Some(2), "{log}");
    one_line(
        &log,
        &format!(
            "127.0.0.1:{http_port} is not a p2p-share peer: expected magic \"P2PF\", got \
             [48, 54, 54, 50] (HTTP)"
        ),
    );
}

/// A relayed node whose relay refuses its handshake (the wrong secret, so
/// the wrong relay key) stops with status 2, as a direct node does; before,
/// it retried its control connection forever.
#[test]
fn a_relayed_node_refused_its_handshake_stops_as_a_direct_one_does() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&["--secret", SECRET]);
    for mode in [&[][..], &["--relayed"][..]] {
        let mut args = vec!["--secret", "not the network's secret"];
        args.extend_from_slice(mode);
        let node = Node::spawn_with("127.0.0.1", relay.port(), tmp.path(), &args, |cmd| {
            cmd.env_remove("P2P_SECRET");
        });
        let (code, log) = stopped(node);
        assert_eq!(code, Some(2), "{mode:?}: {log}");
        one_line(
            &log,
            &format!(
                "relay 127.0.0.1:{} refused the handshake: wrong or missing secret",
                relay.port()
            ),
        );
    }
}

/// A client with a secret at a relay or node without one: their logs say
/// so, instead of `bad request: not a p2p-share peer: expected magic
/// "P2PF", got [50, 32, 50, 4e]`.
#[test]
fn a_client_with_a_secret_at_a_plain_relay_or_node_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(&relay, tmp.path(), &["--bind", "127.0.0.1"]);
    for (port, server, log) in [
        (relay.port(), "relay", &relay.proc),
        (node.listen.port(), "node", &node.proc),
    ] {
        let mut cmd = harness::client(port);
        cmd.env_remove("P2P_SECRET")
            .args(["hello.txt", "--secret", SECRET]);
        let got = run(cmd, b"", Duration::from_secs(60));
        assert_eq!(got.code(), 2, "{}", got.stderr);
        log.wait_for(
            &format!("a client with a secret connected; this {server} has none"),
            READY,
        );
        assert!(!log.log().contains("expected magic"), "{}", log.log());
    }
}

/// A secret shorter than 16 bytes starts with a warning that says how to
/// make a good one; a good one starts quietly. Every program's `--help`
/// names P2P_SECRET as it names RELAY_TOKEN.
#[test]
fn a_weak_secret_is_warned_about_and_help_names_p2p_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let weak = Relay::start(&["--secret", "hunter2"]);
    let warning = "the secret is only 7 bytes long";
    weak.proc.wait_for(warning, READY);
    assert!(weak.proc.log().contains("head -c 32 /dev/urandom | base64"));
    let node = Node::spawn_with(
        "127.0.0.1",
        weak.port(),
        tmp.path(),
        &["--secret", "hunter2"],
        |cmd| {
            cmd.env_remove("P2P_SECRET");
        },
    )
    .until_registered();
    assert!(node.proc.log().contains(warning), "{}", node.proc.log());
    let good = Relay::start(&["--secret", SECRET]);
    good.proc.wait_for("private network", READY);
    assert!(
        !good.proc.log().contains("the secret is only"),
        "{}",
        good.proc.log()
    );

    for program in ["relay", "peer-node", "peer-client"] {
        let out = Command::new(bin(program)).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("or P2P_SECRET) [env: P2P_SECRET]\n"),
            "{program}:\n{help}"
        );
    }
}

/// The key a node printed at start.
fn printed_key(node: &Node) -> String {
    let line = node.proc.wait_for("node key ", READY);
    line.split("node key ").nth(1).unwrap()[..64].to_string()
}

/// A private node over `dir`, with `config` as its config dir and `args`.
fn private_node(relay: &Relay, dir: &Path, config: &Path, args: &[&str]) -> Node {
    let mut all = vec!["--bind", "127.0.0.1", "--secret", SECRET];
    all.extend_from_slice(args);
    Node::spawn_with("127.0.0.1", relay.port(), dir, &all, |cmd| {
        cmd.env_remove("P2P_SECRET").env("XDG_CONFIG_HOME", config);
    })
    .until_registered()
}

fn dirs(tmp: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| {
            let dir = tmp.join(n);
            fs::create_dir_all(&dir).unwrap();
            dir.canonicalize().unwrap()
        })
        .collect()
}

/// Two nodes of one user over two directories have two keys, each kept
/// under the config dir and found again at the next start; a second node
/// over the same directory, or with the same --key, is told of the first
/// (its pid, directory and address), in a private network and without one.
#[test]
fn each_directory_has_its_own_key_and_a_second_node_is_told_of_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    let d = dirs(tmp.path(), &["one", "two", "three"]);
    let relay = Relay::start(&["--secret", SECRET, "--max-nodes-per-ip", "64"]);
    let one = private_node(&relay, &d[0], &config, &[]);
    let two = private_node(&relay, &d[1], &config, &[]);
    let (k1, k2) = (printed_key(&one), printed_key(&two));
    assert_ne!(k1, k2, "two directories, one key");
    let keys: Vec<String> = fs::read_dir(config.join("p2p-share/nodes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".key"))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("one-") || k.starts_with("two-"))
    );

    // The same directory again, while the first node runs.
    let again = private_node(&relay, &d[0], &config, &[]);
    assert_eq!(printed_key(&again), k1, "a directory keeps its key");
    let warning = again.proc.wait_for("another node shares", READY);
    assert!(
        warning.contains(&format!(
            "another node shares {} too (pid {}, sharing {}, listening on {})",
            d[0].display(),
            one.proc.pid(),
            d[0].display(),
            one.listen
        )),
        "{warning}"
    );
    assert!(
        !one.proc.log().contains("another node"),
        "{}",
        one.proc.log()
    );

    // Another directory with the first node's key file.
    let key_file = one.proc.wait_for("node key ", READY);
    let key_file = key_file
        .split("(from ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let borrowed = private_node(&relay, &d[2], &config, &["--key", key_file]);
    assert_eq!(printed_key(&borrowed), k1);
    let warning = borrowed
        .proc
        .wait_for("another node uses the key file", READY);
    assert!(
        warning.contains(&format!(
            "another node uses the key file {key_file} too (pid {}, sharing {}",
            one.proc.pid(),
            d[0].display()
        )),
        "{warning}"
    );
    drop((again, borrowed, two));

    // Without a secret nodes have no key, but one directory is still one.
    let plain_relay = Relay::start(&[]);
    let plain = |dir: &Path| {
        Node::spawn_with("127.0.0.1", plain_relay.port(), dir, &[], |cmd| {
            cmd.env("XDG_CONFIG_HOME", &config);
        })
        .until_registered()
    };
    let first = plain(&d[1]);
    assert!(
        !first.proc.log().contains("another node"),
        "{}",
        first.proc.log()
    );
    let second = plain(&d[1]);
    second.proc.wait_for(
        &format!(
            "another node shares {} too (pid {}",
            d[1].display(),
            first.proc.pid()
        ),
        READY,
    );
    drop((first, second));

    // Once the first node is gone, its directory is free again.
    drop(one);
    let restarted = private_node(&relay, &d[0], &config, &[]);
    assert_eq!(printed_key(&restarted), k1);
    assert!(
        !restarted.proc.log().contains("another node"),
        "{}",
        restarted.proc.log()
    );
}
