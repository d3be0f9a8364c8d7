//! The three programs' command lines as a user meets them: `--list`,
//! `--help` and `--version`, log verbosity (`-v`, `-q`, `RUST_LOG`), and the
//! one-line errors of expected failures.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use harness::{Cluster, READY, Relay, bin};

const CLIENT: Duration = Duration::from_secs(30);

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Runs a program that exits by itself (help, version, a startup error).
fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).env_remove("RUST_LOG");
    let out = cmd.output().expect("cannot run the program");
    assert!(out.status.code().is_some(), "killed by a signal: {out:?}");
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--list` output: each node's address with its `(name, size)` entries, in
/// the order printed.
fn parse_listing(stdout: &str) -> Vec<(String, Vec<(String, u64)>)> {
    let mut groups: Vec<(String, Vec<(String, u64)>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(entry) = line.strip_prefix("  ") {
            let (size, name) = entry
                .trim_start()
                .split_once("  ")
                .unwrap_or_else(|| panic!("not an entry line: {line:?}"));
            let group = groups.last_mut().expect("an entry before any node");
            group.1.push((name.to_string(), bytes(size)));
        } else {
            let (addr, count) = line
                .split_once(" (")
                .unwrap_or_else(|| panic!("not a node line: {line:?}"));
            let count: usize = count.split(' ').next().unwrap().parse().unwrap();
            groups.push((addr.to_string(), Vec::with_capacity(count)));
        }
    }
    groups
}

/// A size as the plain listing prints it for people (`512 B`, `4.0 KiB`),
/// back in bytes; exact for the sizes these tests share.
fn bytes(size: &str) -> u64 {
    let (number, unit) = size
        .split_once(' ')
        .unwrap_or_else(|| panic!("not a size: {size:?}"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {size:?}"),
    };
    (number.parse::<f64>().unwrap() * scale) as u64
}

#[test]
fn list_shows_every_nodes_files_grouped_by_node() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", b"not shared");
    write(outside.path(), "dir/also-secret.txt", b"not shared either");
    let cluster = Cluster::start(3, |i, dir| match i {
        0 => {
            write(dir, "top.txt", b"12345");
            write(dir, "sub/mid.txt", &[b'm'; 100]);
            write(dir, "sub/deeper/low.bin", &[0u8; 4096]);
            // Symlinks out of DIR, to a file and to a directory: never listed.
            std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.join("out.txt"))
                .unwrap();
            std::os::unix::fs::symlink(outside.path().join("dir"), dir.join("outdir")).unwrap();
            // A symlink to a file inside DIR is.
            std::os::unix::fs::symlink(dir.join("top.txt"), dir.join("alias.txt")).unwrap();
        }
        1 => write(dir, "a/b/c/d.txt", b"four levels down\n"),
        _ => {
            write(dir, "my notes.txt", b"spaces are fine");
            write(dir, "empty.txt", b"");
        }
    });
    let run = cluster.fetch(&["--list", "--nodes"]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let stdout = run.stdout_text();
    let groups = parse_listing(&stdout);
    let mut by_node: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (addr, mut entries) in groups {
        entries.sort();
        assert!(
            by_node.insert(addr.clone(), entries).is_none(),
            "{addr} twice:\n{stdout}"
        );
    }
    let want = |entries: &[(&str, u64)]| -> Vec<(String, u64)> {
        let mut v: Vec<_> = entries.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        v.sort();
        v
    };
    let [n1, n2, n3] = &cluster.nodes[..] else {
        unreachable!()
    };
    assert_eq!(by_node.len(), 3, "{stdout}");
    assert_eq!(
        by_node[&n1.listed.to_string()],
        want(&[
            ("alias.txt", 5),
            ("sub/deeper/low.bin", 4096),
            ("sub/mid.txt", 100),
            ("top.txt", 5)
        ]),
        "{stdout}"
    );
    assert_eq!(
        by_node[&n2.listed.to_string()],
        want(&[("a/b/c/d.txt", 17)]),
        "{stdout}"
    );
    assert_eq!(
        by_node[&n3.listed.to_string()],
        want(&[("empty.txt", 0), ("my notes.txt", 15)]),
        "{stdout}"
    );
    // Each header counts its entries, in English.
    assert!(
        stdout.contains(&format!("{} (4 files)\n", n1.listed)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{} (1 file)\n", n2.listed)),
        "{stdout}"
    );
    assert!(!stdout.contains("secret"), "{stdout}");
    // The nodes come in the relay's order, the order of --peers.
    let peers = cluster.fetch(&["--peers"]);
    let order: Vec<String> = peers
        .stdout_text()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let listed: Vec<String> = parse_listing(&stdout).into_iter().map(|(a, _)| a).collect();
    assert_eq!(listed, order);
}

#[test]
fn list_reports_a_node_that_cannot_answer_and_goes_on() {
    let cluster = Cluster::start(2, |i, dir| write(dir, &format!("f{i}.txt"), b"x"));
    // A registered node that no longer answers: the listing says so on
    // stderr and still prints the other node's files.
    let mut nodes = cluster.nodes;
    let mut gone = nodes.remove(0);
    let gone_addr = gone.listed;
    gone.proc.kill();
    let mut cmd = harness::client(cluster.relay.port());
    cmd.args(["--list", "--nodes", "--connect-timeout", "2"]);
    let run = harness::run(cmd, b"", CLIENT);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        run.stdout_text()
            .contains(&format!("{} (1 file)", nodes[0].listed))
    );
    if run.stderr.contains(&gone_addr.to_string()) {
        // Still listed by the relay (it was killed, so it did not unregister).
        assert!(
            run.stderr.contains(&format!("could not reach {gone_addr}")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn help_shows_a_real_example_and_version_works_for_all_three() {
    let version = env!("CARGO_PKG_VERSION");
    for (name, example) in [
        ("relay", "relay 7000"),
        ("peer-node", "peer-node 127.0.0.1 7000 "),
        ("peer-client", "peer-client 127.0.0.1 7000 hello.txt"),
    ] {
        for flag in ["--version", "-V"] {
            let out = output(Command::new(bin(name)).arg(flag));
            assert!(out.status.success(), "{name} {flag}: {out:?}");
            assert_eq!(text(&out.stdout), format!("{name} {version}\n"));
        }
        let out = output(Command::new(bin(name)).arg("--help"));
        assert!(out.status.success(), "{name} --help: {out:?}");
        let help = text(&out.stdout);
        assert!(help.contains(&format!("Usage: {name} ")), "{help}");
        assert!(help.contains("Example"), "{name}: no example:\n{help}");
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(example)),
            "{name}: no `{example}` example:\n{help}"
        );
        for flag in ["-v, --verbose", "-q, --quiet"] {
            assert!(help.contains(flag), "{name}: no {flag}:\n{help}");
        }
        // -h is the short summary, and still a success.
        let out = output(Command::new(bin(name)).arg("-h"));
        assert!(out.status.success());
    }
    let out = output(Command::new(bin("peer-client")).arg("--help"));
    let help = text(&out.stdout);
    for example in ["--list", "--peers", "-o logo.png"] {
        assert!(
            help.contains(example),
            "peer-client help lacks {example}:\n{help}"
        );
    }
}

/// Asserts that `stderr` is exactly one line, containing `want`, with
/// nothing of Rust's debug formatting.
fn one_line_error(what: &str, stderr: &str, want: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line:\n{stderr}");
    let line = lines[0];
    assert!(line.contains(want), "{what}: {line:?} lacks {want:?}");
    for debug in [
        "os error",
        "Os {",
        "kind:",
        "Custom {",
        "panicked",
        "backtrace",
        "\"",
    ] {
        assert!(
            !line.contains(debug),
            "{what}: debug formatting {debug:?} in {line:?}"
        );
    }
}

#[test]
fn expected_failures_are_one_line_with_the_cause() {
    // The relay unreachable: a port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut cmd = harness::client(port);
    cmd.arg("hello.txt");
    let run = harness::run(cmd, b"", CLIENT);
    assert_eq!(run.code(), 2);
    one_line_error(
        "relay unreachable",
        &run.stderr,
        &format!("error: could not reach relay 127.0.0.1:{port}: connection refused"),
    );

    // A relay host name that does not resolve (.invalid never does).
    let mut cmd = Command::new(bin("peer-client"));
    cmd.args(["no-such-host.invalid", "7000", "hello.txt"]);
    let run = harness::run(cmd, b"", CLIENT);
    assert_eq!(run.code(), 2);
    one_line_error(
        "bad relay host",
        &run.stderr,
        "error: could not reach relay no-such-host.invalid:7000: cannot resolve",
    );

    // -o into a directory that does not exist: refused before any transfer.
    let cluster = Cluster::start(1, |_, dir| write(dir, "hello.txt", b"hello\n"));
    // Indexed, so the who-has before it says nothing of unindexed nodes.
    cluster.nodes[0]
        .proc
        .wait_for("catalog at relay", harness::READY);
    let missing = cluster.tmp.path().join("no/such/dir");
    let target = missing.join("hello.txt");
    let run = cluster.fetch(&["hello.txt", "-o", target.to_str().unwrap()]);
    assert_eq!(run.code(), 2);
    one_line_error(
        "-o into a missing directory",
        &run.stderr,
        &format!(
            "error: cannot create a file in {}: no such file or directory",
            missing.display()
        ),
    );

    // The relay's port already taken.
    let taken = cluster.relay.addr;
    let out =
        output(Command::new(bin("relay")).args([&taken.port().to_string(), "--bind", "127.0.0.1"]));
    assert_eq!(out.status.code(), Some(2));
    one_line_error(
        "relay port in use",
        &text(&out.stderr),
        &format!("ERROR could not listen on {taken}: address already in use"),
    );

    // A node whose DIR does not exist.
    let nodir = cluster.tmp.path().join("not-there");
    let out = output(Command::new(bin("peer-node")).args([
        "127.0.0.1",
        &cluster.relay.port().to_string(),
        nodir.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(2));
    one_line_error(
        "node DIR missing",
        &text(&out.stderr),
        &format!(
            "ERROR cannot share {}: no such file or directory",
            nodir.display()
        ),
    );
}

/// A node started with `env` and `args`; its stderr once it has stopped.
/// It runs until the relay has seen it refresh twice, so each of its
/// startup, registration and refresh events has been logged or filtered.
fn node_log(relay: &Relay, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    // Its hash cache and claims in a temp dir, not in the home directory.
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("peer-node"));
    cmd.args(["127.0.0.1", &relay.port().to_string()])
        .arg(dir)
        .args(["--heartbeat", "0.05"])
        .args(args)
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("cannot start peer-node");
    let pid = child.id();
    let refreshed = relay.proc.count("node refreshed");
    // The relay logs refreshes at debug: it runs with -v.
    let deadline = std::time::Instant::now() + READY;
    while relay.proc.count("node refreshed") < refreshed + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh:\n{}",
            relay.proc.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    text(&out.stderr)
}

#[test]
fn verbosity_flags_and_rust_log_shape_the_node_log() {
    let relay = Relay::start(&["-v"]);
    let dir = tempfile::tempdir().unwrap();
    let levels = |log: &str| -> Vec<&'static str> {
        ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
            .into_iter()
            .filter(|l| log.lines().any(|line| line.contains(&format!(" {l} "))))
            .collect()
    };

    // Default: info, one line per event with a time and a level.
    let log = node_log(&relay, dir.path(), &[], &[]);
    assert_eq!(levels(&log), ["INFO"], "{log}");
    let first = log.lines().next().unwrap();
    assert!(first.contains("  INFO listening on"), "{first}");
    assert!(
        first.starts_with("20") && first.as_bytes()[10] == b'T',
        "no time: {first}"
    );

    // -v: debug (the heartbeat's refreshes); -vv: trace too if any.
    let log = node_log(&relay, dir.path(), &[], &["-v"]);
    assert!(log.contains(" DEBUG refreshed with relay"), "{log}");

    // -q: errors only, so nothing on a good run.
    let log = node_log(&relay, dir.path(), &[], &["-q"]);
    assert_eq!(log, "", "-q logged");

    // RUST_LOG is honoured, and wins over the flags.
    let log = node_log(&relay, dir.path(), &[("RUST_LOG", "debug")], &[]);
    assert!(log.contains(" DEBUG refreshed with relay"), "{log}");
    let log = node_log(&relay, dir.path(), &[("RUST_LOG", "warn")], &["-v"]);
    assert_eq!(log, "", "RUST_LOG=warn with -v logged");
    let log = node_log(&relay, dir.path(), &[("RUST_LOG", "info")], &["-q"]);
    assert_eq!(levels(&log), ["INFO"], "{log}");

    // An empty RUST_LOG is unset, not "log nothing"; a bad one is reported.
    let log = node_log(&relay, dir.path(), &[("RUST_LOG", "")], &[]);
    assert_eq!(levels(&log), ["INFO"], "{log}");
    let log = node_log(&relay, dir.path(), &[("RUST_LOG", "no such[level")], &[]);
    assert!(
        log.lines()
            .next()
            .unwrap()
            .contains(" WARN ignoring RUST_LOG"),
        "{log}"
    );
    assert!(log.contains(" INFO listening on"), "{log}");
}

#[test]
fn client_verbosity_flags() {
    let cluster = Cluster::start(1, |_, dir| write(dir, "a.txt", b"a"));
    // Default: results on stderr, no log lines.
    let run = cluster.fetch(&["--peers"]);
    assert_eq!(run.stderr, "1 active node\n");
    // -v: the log's debug lines too.
    let run = cluster.fetch(&["-v", "--peers"]);
    assert!(
        run.stderr.contains(" DEBUG relay 127.0.0.1:"),
        "{}",
        run.stderr
    );
    // -q: only errors, and the results on stdout are unchanged.
    let run = cluster.fetch(&["-q", "--peers"]);
    assert_eq!(run.stderr, "");
    assert!(
        run.stdout_text()
            .starts_with(&cluster.nodes[0].listed.to_string())
    );
    // -q keeps "not found": it is an error, and the status alone does not
    // say which name was missing.
    cluster.nodes[0]
        .proc
        .wait_for("catalog at relay", harness::READY);
    let run = cluster.fetch(&["-q", "missing.txt"]);
    assert_eq!(
        (run.code(), run.stderr.as_str()),
        (
            1,
            "missing.txt: not found on any of 1 active node (the relay's index)\n"
        )
    );
    // RUST_LOG reaches the client too.
    let mut cmd = cluster.client();
    cmd.arg("--peers").env("RUST_LOG", "debug");
    let run = harness::run(cmd, b"", CLIENT);
    assert!(run.stderr.contains(" DEBUG relay"), "{}", run.stderr);
}
