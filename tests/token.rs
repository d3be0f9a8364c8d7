//! The registration secret: a relay started with `--token` lists only nodes
//! that present the same token (by `--token` or the `RELAY_TOKEN`
//! environment variable), refuses and logs the others, and refuses an
//! unregistration without it, so nobody else can drop a node from the list.

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use harness::{Node, Proc, READY, Relay};
use net::exchange::{self, Timeouts};
use proto::{ErrorKind, Registration, Request, Response};

const SECRET: &str = "s3cret";

fn relay_with_token() -> Relay {
    Relay::start(&["--token", SECRET])
}

/// A node over an empty directory with `args` and `env`; RELAY_TOKEN is
/// cleared unless given, so the test's own environment cannot leak in.
fn spawn_node(relay: &Relay, dir: &Path, args: &[&str], token_env: Option<&str>) -> Node {
    Node::spawn_with("127.0.0.1", relay.port(), dir, args, |cmd| {
        cmd.env_remove("RELAY_TOKEN");
        if let Some(token) = token_env {
            cmd.env("RELAY_TOKEN", token);
        }
    })
}

/// Waits until `proc` has logged `n` lines containing `needle` (its log is
/// read by another thread, which may lag behind what it already wrote).
fn until_count(proc: &Proc, needle: &str, n: usize) {
    let deadline = Instant::now() + READY;
    while proc.count(needle) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} lines with {needle:?}:\n{}",
            proc.log()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The nodes the relay lists now.
fn listed(relay: &Relay) -> Vec<SocketAddr> {
    match exchange::call(relay.addr, &Request::ListNodes, &Timeouts::default()) {
        Ok(Response::Nodes(nodes)) => nodes.into_iter().map(|n| n.addr).collect(),
        other => panic!("the relay did not list: {other:?}"),
    }
}

/// A node without a token, or with a wrong one, exits with a clear error
/// (status 2, no retrying), the relay logs the refusal, and lists nothing.
#[test]
fn a_node_without_the_token_or_with_a_wrong_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_with_token();
    let cases: [(&str, &[&str], Option<&str>, &str); 3] = [
        ("no token", &[], None, "no token"),
        (
            "a wrong --token",
            &["--token", "guess"],
            None,
            "wrong token",
        ),
        ("a wrong RELAY_TOKEN", &[], Some("guess"), "wrong token"),
    ];
    for (what, args, env, why) in cases {
        let mut node = spawn_node(&relay, tmp.path(), args, env);
        let status = node
            .proc
            .wait_exit(READY)
            .unwrap_or_else(|| panic!("{what}: the node kept running:\n{}", node.proc.log()));
        assert_eq!(status.code(), Some(2), "{what}: {status:?}");
        node.proc.wait_for("registration refused", READY);
        let log = node.proc.log();
        assert!(
            log.contains(&format!("registration refused: {why}")) && log.contains("--token"),
            "{what}: the node's error is not clear:\n{log}"
        );
        assert_eq!(
            node.proc.count("refused"),
            1,
            "{what}: the node retried:\n{log}"
        );
    }
    until_count(&relay.proc, "registration refused", cases.len());
    assert_eq!(relay.proc.count("registration refused: no token"), 1);
    assert_eq!(relay.proc.count("registration refused: wrong token"), 2);
    assert!(listed(&relay).is_empty());
}

/// The right token registers, given as a flag or in the environment.
#[test]
fn the_right_token_registers_by_flag_or_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_with_token();
    let by_flag = spawn_node(&relay, tmp.path(), &["--token", SECRET], None).until_registered();
    let by_env = spawn_node(&relay, tmp.path(), &[], Some(SECRET)).until_registered();
    let nodes = listed(&relay);
    assert!(nodes.contains(&by_flag.listed), "{nodes:?}");
    assert!(nodes.contains(&by_env.listed), "{nodes:?}");
    assert_eq!(relay.proc.count("refused"), 0, "{}", relay.proc.log());
}

/// Nobody without the token can drop a registered node from the list; the
/// node itself, with the token, can.
#[test]
fn an_unregistration_without_the_token_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let relay = relay_with_token();
    let mut node = spawn_node(&relay, tmp.path(), &["--token", SECRET], None).until_registered();
    let port = node.listed.port();
    let unregister = |token: Option<&str>| {
        let request = Request::Unregister(Registration {
            port,
            advertised_ip: None,
            token: token.map(String::from),
        });
        exchange::call(relay.addr, &request, &Timeouts::default()).unwrap()
    };
    for token in [None, Some("guess")] {
        match unregister(token) {
            Response::Error(e) => {
                assert_eq!(e.kind, ErrorKind::Unauthorized, "{e:?}");
                assert!(e.message.contains("refused"), "{e:?}");
            }
            other => panic!("an unregistration with {token:?} was accepted: {other:?}"),
        }
        assert!(
            listed(&relay).contains(&node.listed),
            "the node was dropped"
        );
    }
    until_count(&relay.proc, "refused", 2);

    // The node leaving on SIGTERM unregisters with its token.
    node.proc.signal(libc::SIGTERM);
    node.proc
        .wait_exit(READY)
        .expect("the node did not exit on SIGTERM");
    relay.proc.wait_for("node left", READY);
    assert!(listed(&relay).is_empty());
}
