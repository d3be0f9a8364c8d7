//! Running it as a service: metrics that a real Prometheus scrapes (and
//! `promtool` checks), the status pages, the systemd units in
//! contrib/systemd, and the secret from a systemd credential.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Node, Proc, READY, Relay, addr_after, bin};
use net::exchange::{Timeouts, call};
use proto::{Request, Response, Target};

/// The address in a program's `metrics on http://ADDR/metrics` line.
fn metrics_addr(proc: &Proc) -> SocketAddr {
    let line = proc.wait_for("metrics on http://", READY);
    let rest = &line[line.find("http://").unwrap() + "http://".len()..];
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

/// One HTTP GET; returns the status code and the body.
fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// `promtool check metrics` on what `addr` serves in the classic format,
/// which is what promtool 2.42 parses.
fn promtool_check(addr: SocketAddr) {
    let (status, body) = get(addr, "/metrics", "text/plain; version=0.0.4");
    assert_eq!(status, 200, "{body}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on {addr}: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of a PromQL query with one result, as Prometheus's HTTP API
/// gives it; None while it has no result.
fn query(prometheus: SocketAddr, promql: &str) -> Option<String> {
    let (status, body) = get(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
        "application/json",
    );
    assert_eq!(status, 200, "{body}");
    // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[1.7e9,"5"]}]}}
    let value = body.split("\"value\":[").nth(1)?;
    let text = value.split(',').nth(1)?;
    Some(
        text.trim_matches(|c| c == '"' || c == ']' || c == '}')
            .to_string(),
    )
}

#[test]
fn a_real_prometheus_scrapes_relay_and_node_and_sees_what_the_test_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    let relay = Relay::start(&["--metrics", "127.0.0.1:0"]);
    let relay_metrics = metrics_addr(&relay.proc);
    let node = Node::start(&relay, &dir, &["--metrics", "127.0.0.1:0"]).until_indexed();
    let node_metrics = metrics_addr(&node.proc);

    // What the test causes: five who-has requests.
    for _ in 0..5 {
        let target = Target::Name("hello.txt".into());
        match call(relay.addr, &Request::WhoHas(target), &Timeouts::default()) {
            Ok(Response::Holders(list)) => assert_eq!(list.holders.len(), 1),
            other => panic!("who-has: {other:?}"),
        }
    }
    promtool_check(relay_metrics);
    promtool_check(node_metrics);

    let port = harness::free_port();
    let prometheus_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n\
             \x20 - job_name: relay\n    static_configs:\n      - targets: ['{relay_metrics}']\n\
             \x20 - job_name: node\n    static_configs:\n      - targets: ['{node_metrics}']\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={prometheus_addr}"));
    let prometheus = Proc::spawn("prometheus", cmd);
    prometheus.wait_for("Server is ready to receive web requests", READY);

    let wanted = [
        (
            r#"p2p_relay_requests_total{kind="who_has",outcome="ok"}"#,
            "5",
        ),
        (r#"p2p_relay_nodes{mode="direct"}"#, "1"),
        (r#"p2p_node_registration_state{state="registered"}"#, "1"),
        (r#"p2p_node_shared_files"#, "1"),
        (r#"up{job="relay"}"#, "1"),
        (r#"up{job="node"}"#, "1"),
    ];
    let started = Instant::now();
    for (promql, value) in wanted {
        loop {
            let got = query(prometheus_addr, promql);
            if got.as_deref() == Some(value) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Prometheus has {promql} = {got:?}, not {value}\nprometheus log:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn the_status_pages_sum_up_nodes_index_and_circuits() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.txt"), "a").unwrap();
    let relay = Relay::start(&["--metrics", "127.0.0.1:0"]);
    let node = Node::start(&relay, tmp.path(), &["--metrics", "127.0.0.1:0"]).until_indexed();
    let (status, page) = get(metrics_addr(&relay.proc), "/status", "*/*");
    assert_eq!(status, 200);
    assert!(
        page.contains("nodes      1 active (1 direct, 0 relayed)"),
        "{page}"
    );
    assert!(page.contains("index      1 files from 1 nodes"), "{page}");
    assert!(page.contains("circuits   0 open (at most 128)"), "{page}");
    let (status, page) = get(metrics_addr(&node.proc), "/status", "*/*");
    assert_eq!(status, 200);
    assert!(page.contains("(registered)"), "{page}");
    assert!(page.contains("sharing    1 files, 1 bytes"), "{page}");
}

#[test]
fn the_secret_comes_from_a_systemd_credential() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("secret"), "a secret shared by this test only\n").unwrap();
    let share = tmp.path().join("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("a.txt"), "from a private network\n").unwrap();
    let mut cmd = Command::new(bin("relay"));
    cmd.args(["0", "--bind", "127.0.0.1"])
        .env("CREDENTIALS_DIRECTORY", &creds);
    let relay = Proc::spawn("relay", cmd);
    let line = relay.wait_for("listening on", READY);
    relay.wait_for("private network", READY);
    let port = addr_after(&line, "listening on ").port();
    let node = Node::spawn_with("127.0.0.1", port, &share, &[], |cmd| {
        cmd.env("CREDENTIALS_DIRECTORY", &creds)
            .arg("--key")
            .arg(tmp.path().join("node.key"));
    });
    // Registered: the node's handshake under the same secret worked.
    node.until_registered();
}

/// A copy of each unit in contrib/systemd with `ExecStart=` pointed at the
/// binary just built (systemd-analyze wants it to exist).
fn units_at_built_binaries(dir: &Path) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        ("p2p-relay.service", "relay"),
        ("p2p-node.service", "peer-node"),
    ]
    .iter()
    .map(|(unit, program)| {
        let text = std::fs::read_to_string(root.join("contrib/systemd").join(unit)).unwrap();
        let installed = format!("/usr/local/bin/{program} ");
        assert!(text.contains(&installed), "{unit} runs {installed}");
        let text = text.replace(&installed, &format!("{} ", bin(program).display()));
        let path = dir.join(unit);
        std::fs::write(&path, text).unwrap();
        path
    })
    .collect()
}

#[test]
fn the_systemd_units_verify_and_their_exposure_is_what_the_readme_says() {
    let tmp = tempfile::tempdir().unwrap();
    let units = units_at_built_binaries(tmp.path());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        // Documentation=man:relay(1): the pages in contrib/man.
        .env("MANPATH", root.join("contrib/man"))
        .current_dir(tmp.path())
        .output()
        .expect("systemd-analyze (Debian package systemd; .ci/run installs it)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.contains("p2p-"),
        "systemd-analyze verify: {said}"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for unit in &units {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(unit)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let name = unit.file_name().unwrap().to_string_lossy();
        let marker = format!("Overall exposure level for {name}: ");
        let score = text
            .split(&marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no score for {name}: {text}"));
        let value: f64 = score.parse().unwrap();
        assert!(value <= 2.0, "{name} exposure {value}: {text}");
        let stated = format!("`{name}`: {score} OK");
        assert!(
            readme.contains(&stated),
            "README.md should state {stated:?} (systemd-analyze security --offline=true)"
        );
    }
}
