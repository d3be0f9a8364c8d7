//! The README's exit-status table, row by row (issue 23): 0 all found, 1
//! some file not found, 2 a usage or local error or no relay, 128+N for a
//! signal. (A binary file refused on a terminal, exit 2, is in
//! terminal.rs; `--node` with an unknown key, exit 1, in secret.rs.)

use std::fs;
use std::net::TcpListener;
use std::time::Duration;

use harness::{Cluster, Proc, READY};

const CLIENT: Duration = Duration::from_secs(60);

#[test]
fn found_not_found_and_usage_errors_have_their_own_status() {
    let cluster = Cluster::start(1, |_, dir| {
        fs::write(dir.join("hello.txt"), b"hello\n").unwrap();
    });
    cluster.nodes[0].proc.wait_for("catalog at relay", READY);

    // 0: every requested file was found.
    let run = cluster.fetch(&["hello.txt"]);
    assert_eq!((run.code(), run.stdout_text().as_str()), (0, "hello\n"));

    // 1: some file was not found; -q still names it.
    let run = cluster.fetch(&["-q", "hello.txt", "missing.txt"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "missing.txt: not found on any of 1 active node (the relay's index)\n"
    );

    // 2: -o into a directory that does not exist.
    let nosuchdir = cluster.tmp.path().join("nosuchdir");
    let run = cluster.fetch(&["hello.txt", "-o", &format!("{}/", nosuchdir.display())]);
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(!nosuchdir.exists());

    // 2: a malformed hash (not hex; too few digits).
    for bad in ["blake3:zzzzzzzzzzzz", "blake3:1234"] {
        let run = cluster.fetch(&[bad]);
        assert_eq!(run.code(), 2, "{bad}: {}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!("error: {bad}: ")),
            "{}",
            run.stderr
        );
    }

    // 2: the address is a node's, not a relay's: said once.
    let port = cluster.nodes[0].listen.port();
    let mut cmd = harness::client(port);
    cmd.arg("hello.txt");
    let run = harness::run(cmd, b"", CLIENT);
    assert_eq!(
        (run.code(), run.stderr.as_str()),
        (
            2,
            format!("error: 127.0.0.1:{port} is a peer-node, not a relay\n").as_str()
        )
    );
}

#[test]
fn no_relay_is_status_2() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut cmd = harness::client(port);
    cmd.arg("hello.txt");
    let run = harness::run(cmd, b"", CLIENT);
    assert_eq!(run.code(), 2, "{}", run.stderr);
}

/// SIGINT, SIGTERM and SIGHUP end the client with 128+N, as shells and
/// curl do: 130, 143, 129. The client is held waiting on a "relay" that
/// accepts and never answers.
#[test]
fn a_signal_ends_the_client_with_128_plus_its_number() {
    for (signal, status) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ] {
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cmd = harness::client(silent.local_addr().unwrap().port());
        cmd.arg("hello.txt");
        let mut client = Proc::spawn("peer-client", cmd);
        // Connected: the handler was set long before.
        let (_held, _) = silent.accept().unwrap();
        client.signal(signal);
        let exit = client
            .wait_exit(Duration::from_secs(10))
            .expect("the client did not exit on the signal");
        assert_eq!(
            exit.code(),
            Some(status),
            "signal {signal}: {}",
            client.log()
        );
    }
}
