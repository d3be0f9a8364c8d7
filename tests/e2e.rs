//! The whole system as a user meets it: a relay, three peer nodes over temp
//! dirs and the peer client, all real processes on free ports.
//!
//! Each test reads like a session: put files in the nodes' directories, run
//! `peer-client`, and check the exact bytes on stdout, the status on stderr
//! and the exit code.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::{Cluster, Node, Relay, Run, bin, start_client};

/// How long one client run may take before the test fails.
const CLIENT: Duration = Duration::from_secs(60);

/// 32 MiB of bytes that do not repeat in any short period, so a chunk sent
/// twice, dropped or reordered cannot compare equal by accident.
fn large_content() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(32 << 20);
    while bytes.len() < 32 << 20 {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes
}

fn all_byte_values() -> Vec<u8> {
    (0..=255u8).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, bytes).unwrap();
}

/// Asserts equal bytes without printing megabytes when they differ.
fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

/// Compares two files in chunks, never holding either whole.
fn assert_same_file(what: &str, got: &Path, want: &Path) {
    let mut a = fs::File::open(got).unwrap_or_else(|e| panic!("{}: {e}", got.display()));
    let mut b = fs::File::open(want).unwrap();
    let (mut abuf, mut bbuf) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut a, &mut abuf);
        let m = read_full(&mut b, &mut bbuf);
        if abuf[..n] != bbuf[..m] {
            let at = abuf[..n].iter().zip(&bbuf[..m]).position(|(x, y)| x != y);
            panic!(
                "{what}: differs from the original in the chunk at {offset} (at {at:?}, {n} vs {m} bytes)"
            );
        }
        if n == 0 {
            return;
        }
        offset += n as u64;
    }
}

fn read_full(file: &mut fs::File, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]).unwrap() {
            0 => break,
            n => filled += n,
        }
    }
    filled
}

/// The status line the client prints for the node that served a file (its
/// place in the list of nodes asked: the holders, through the relay's index).
fn found_on(cluster: &Cluster, index: usize) -> String {
    format!("found on {}, node ", cluster.nodes[index].listed)
}

fn assert_found(run: &Run, want: &[u8], line: &str) {
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(line),
        "no {line:?} in stderr:\n{}",
        run.stderr
    );
    assert_same("stdout", &run.stdout, want);
}

fn assert_missing(run: &Run, total: usize) {
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr);
    assert!(run.stdout.is_empty(), "stdout: {:?}", run.stdout_text());
    let line = format!("not found on any of {total} active nodes");
    assert!(
        run.stderr.contains(&line),
        "no {line:?} in stderr:\n{}",
        run.stderr
    );
}

/// Names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_file_is_found_on_the_node_that_has_it_and_missing_everywhere_else() {
    let cluster = Cluster::start(3, |i, dir| {
        write(
            dir,
            &format!("only-on-{}.txt", i + 1),
            format!("node {} says hi\n", i + 1).as_bytes(),
        );
    });
    for i in 0..3 {
        let name = format!("only-on-{}.txt", i + 1);
        // Node by node, as against a relay without an index.
        let run = cluster.fetch(&["--no-index", &name]);
        assert_found(
            &run,
            format!("node {} says hi\n", i + 1).as_bytes(),
            &found_on(&cluster, i),
        );
        // The nodes before it said they do not have it.
        for before in 0..i {
            let line = format!(
                "not on {}, node {} of 3",
                cluster.nodes[before].listed,
                before + 1
            );
            assert!(
                run.stderr.contains(&line),
                "no {line:?} in:\n{}",
                run.stderr
            );
        }
    }

    let run = cluster.fetch(&["--no-index", "nowhere.txt"]);
    assert_missing(&run, 3);
    for (i, node) in cluster.nodes.iter().enumerate() {
        let line = format!("not on {}, node {} of 3", node.listed, i + 1);
        assert!(
            run.stderr.contains(&line),
            "no {line:?} in:\n{}",
            run.stderr
        );
    }

    // Several names in one run: each is fetched in order; one missing makes it exit 1.
    let run = cluster.fetch(&["only-on-3.txt", "nowhere.txt", "only-on-1.txt"]);
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout_text(), "node 3 says hi\nnode 1 says hi\n");
}

#[test]
fn binary_empty_and_large_files_arrive_byte_for_byte() {
    let large = large_content();
    let cluster = Cluster::start(3, |i, dir| match i {
        0 => write(dir, "large.bin", &large),
        1 => write(dir, "bytes.bin", &all_byte_values()),
        _ => {
            write(dir, "empty.txt", b"");
            write(dir, "sub/dir/inner.txt", b"inside a subdirectory\n");
        }
    });

    assert_found(
        &cluster.fetch(&["bytes.bin"]),
        &all_byte_values(),
        &found_on(&cluster, 1),
    );
    let run = cluster.fetch(&["empty.txt"]);
    assert_found(&run, b"", &found_on(&cluster, 2));
    assert!(run.stderr.contains("(0 bytes, blake3 "), "{}", run.stderr);
    assert_found(
        &cluster.fetch(&["large.bin"]),
        &large,
        &found_on(&cluster, 0),
    );
    assert_found(
        &cluster.fetch(&["sub/dir/inner.txt"]),
        b"inside a subdirectory\n",
        &found_on(&cluster, 2),
    );
}

#[test]
fn dash_o_saves_the_file_and_leaves_nothing_when_it_is_missing() {
    let large = large_content();
    let cluster = Cluster::start(3, |i, dir| {
        if i == 1 {
            write(dir, "large.bin", &large);
            write(dir, "bytes.bin", &all_byte_values());
        }
    });
    let out = cluster.tmp.path().join("downloads");
    fs::create_dir(&out).unwrap();

    let saved = out.join("copy.bin");
    let run = cluster.fetch(&["large.bin", "-o", saved.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert!(run.stdout.is_empty(), "-o must keep stdout empty");
    assert!(
        run.stderr.contains(&found_on(&cluster, 1)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("saved large.bin to"), "{}", run.stderr);
    assert_same("the saved file", &fs::read(&saved).unwrap(), &large);

    // A second save over an existing file replaces it.
    let run = cluster.fetch(&["bytes.bin", "--output", saved.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert_same(
        "the replaced file",
        &fs::read(&saved).unwrap(),
        &all_byte_values(),
    );

    let missing = out.join("missing.bin");
    let run = cluster.fetch(&["missing.bin", "-o", missing.to_str().unwrap()]);
    assert_missing(&run, 3);
    // No file, and no temporary file either: only the earlier download is there.
    assert_eq!(entries(&out), ["copy.bin"]);
}

#[test]
fn twenty_clients_fetching_a_large_file_at_once_all_get_identical_bytes() {
    let cluster = Cluster::start(3, |i, dir| {
        if i == 2 {
            write(dir, "large.bin", &large_content());
            write(dir, "small.txt", b"still here\n");
        }
    });
    let original = cluster.nodes[2].dir.join("large.bin");
    let copies: Vec<PathBuf> = (0..20)
        .map(|i| cluster.tmp.path().join(format!("copy-{i}.bin")))
        .collect();
    let clients: Vec<_> = copies
        .iter()
        .map(|copy| {
            let mut cmd = cluster.client();
            cmd.arg("large.bin");
            start_client(cmd, b"", Some(copy))
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let run = client.finish(CLIENT);
        assert_eq!(run.code(), 0, "client {i}: {}", run.stderr);
        assert!(
            run.stderr.contains(&found_on(&cluster, 2)),
            "client {i}: {}",
            run.stderr
        );
    }
    for (i, copy) in copies.iter().enumerate() {
        assert_same_file(&format!("client {i}'s copy"), copy, &original);
    }
    // The node is still serving after all of that.
    assert_found(
        &cluster.fetch(&["small.txt"]),
        b"still here\n",
        &found_on(&cluster, 2),
    );
}

#[test]
fn a_node_killed_after_registering_is_skipped() {
    let mut cluster = Cluster::start(3, |i, dir| {
        write(
            dir,
            "shared.txt",
            format!("copy on node {}\n", i + 1).as_bytes(),
        );
    });
    // Every catalog at the relay, hashes included, so that the holders
    // come in registration order and node 1 is asked first.
    for node in &cluster.nodes {
        node.proc.wait_for("catalog at relay", harness::READY);
    }
    let dead = cluster.nodes[0].listed;
    cluster.nodes[0].proc.kill(); // SIGKILL: no chance to unregister

    let run = cluster.fetch(&["shared.txt"]);
    assert_found(&run, b"copy on node 2\n", &found_on(&cluster, 1));
    let skipped = format!("could not reach {dead}, node 1 of ");
    assert!(
        run.stderr.contains(&skipped),
        "no {skipped:?} in:\n{}",
        run.stderr
    );

    // A file only the dead node had is reported missing, not an error.
    let run = cluster.fetch(&["--no-index", "other.txt"]);
    assert_missing(&run, 3);
    assert!(run.stderr.contains(&skipped), "{}", run.stderr);
}

#[test]
fn relay_down_gives_exit_2_and_one_clear_line() {
    let mut relay = Relay::start(&[]);
    let port = relay.port();
    relay.proc.kill();

    for args in [&["hello.txt"][..], &[], &["--peers"]] {
        let mut cmd = harness::client(port);
        cmd.args(args);
        let run = harness::run(cmd, b"", CLIENT);
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.is_empty(),
            "{args:?}: stdout {:?}",
            run.stdout_text()
        );
        assert_eq!(
            run.stderr,
            format!("error: could not reach relay 127.0.0.1:{port}: connection refused\n"),
            "{args:?}"
        );
    }
}

#[test]
fn names_outside_the_shared_directory_are_refused() {
    const SECRET: &[u8] = b"TOP SECRET: outside every shared directory\n";
    let cluster = Cluster::start(3, |i, dir| {
        // The nodes share tmp/node1..3; tmp/secret sits next to them.
        fs::write(dir.parent().unwrap().join("secret"), SECRET).unwrap();
        write(dir, "inside.txt", b"inside\n");
        fs::create_dir(dir.join("a-directory")).unwrap();
        std::os::unix::fs::symlink("../secret", dir.join("escape.txt")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd.txt")).unwrap();
        if i == 2 {
            // A symlink that stays inside DIR is fine.
            std::os::unix::fs::symlink("inside.txt", dir.join("alias.txt")).unwrap();
        }
    });
    let passwd = fs::read("/etc/passwd").unwrap();
    for name in [
        "../secret",
        "/etc/passwd",
        "escape.txt",
        "passwd.txt",
        "a-directory",
        "node1/../../secret",
    ] {
        // Node by node, so that every node is asked and refuses.
        let run = cluster.fetch(&["--no-index", name]);
        assert_missing(&run, 3);
        assert_eq!(
            run.stderr.lines().filter(|l| l.contains("refused")).count(),
            3,
            "{name}: every node should refuse it:\n{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("TOP SECRET") && !run.stderr.contains("root:"),
            "{}",
            run.stderr
        );
    }
    // Nothing outside DIR came back, even in one run asking for all of them.
    let run = cluster.fetch(&[
        "../secret",
        "/etc/passwd",
        "escape.txt",
        "passwd.txt",
        "inside.txt",
    ]);
    assert_eq!(run.code(), 1);
    assert_eq!(run.stdout_text(), "inside\n");
    assert!(!passwd.is_empty());
    for node in &cluster.nodes {
        assert!(node.proc.count("refused") >= 5, "{}", node.proc.log());
    }

    assert_found(
        &cluster.fetch(&["alias.txt"]),
        b"inside\n",
        &found_on(&cluster, 2),
    );
}

#[test]
fn the_prompt_reads_names_from_stdin_until_quit() {
    let cluster = Cluster::start(3, |i, dir| match i {
        0 => write(dir, "a.txt", b"alpha\n"),
        1 => write(dir, "b.txt", b"bravo\n"),
        _ => write(dir, "c.txt", b"charlie\n"),
    });
    let run = harness::run(
        cluster.client(),
        b"a.txt\nb.txt\nmissing.txt\n\nquit\nc.txt\n",
        CLIENT,
    );
    // The missing name makes the exit code 1; c.txt after quit is never fetched.
    assert_eq!(run.code(), 1, "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout_text(), "alpha\nbravo\n");
    // Lines from a pipe get no prompt, as python and sqlite3 print none.
    assert!(!run.stderr.contains("file name>"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&found_on(&cluster, 0)),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&found_on(&cluster, 1)),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not found on any of 3 active nodes"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("charlie") && !run.stderr.contains(&found_on(&cluster, 2)));

    // End of input ends the prompt as quit does.
    let run = harness::run(cluster.client(), b"c.txt\n", CLIENT);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout_text(), "charlie\n");
    assert!(!run.stdout_text().contains("file name>"));
}

/// Every name that can be shared can be fetched and saved from the prompt:
/// spaces, quotes, spaces at either end, and names that spell commands.
#[test]
fn the_prompt_reads_quoted_names_as_a_shell_does() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    write(&share, "my file.txt", b"spaced\n");
    write(&share, "ls", b"not a command\n");
    write(&share, " edge.txt ", b"edges\n");
    write(&share, "search results.txt", b"results\n");
    let relay = Relay::start(&[]);
    let _node = Node::start(&relay, &share, &[]).until_indexed();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let script = format!(
        "get \"my file.txt\" -o {dir}/a.txt\n\
         get 'my file.txt' -o {dir}/b.txt\n\
         get my\\ file.txt -o {dir}/c.txt\n\
         \"ls\"\n\
         get ls\n\
         ' edge.txt '\n\
         get 'search results.txt'\n\
         quit\n",
        dir = out.display()
    );
    let run = harness::run(harness::client(relay.port()), script.as_bytes(), CLIENT);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    for copy in ["a.txt", "b.txt", "c.txt"] {
        assert_eq!(
            std::fs::read(out.join(copy)).unwrap(),
            b"spaced\n",
            "{copy}"
        );
    }
    assert_eq!(
        run.stdout_text(),
        "not a command\nnot a command\nedges\nresults\n"
    );
    assert!(!run.stderr.contains("usage:"), "{}", run.stderr);
}

#[test]
fn peers_lists_the_nodes_and_a_host_name_reaches_the_relay() {
    let cluster = Cluster::start(3, |i, dir| write(dir, &format!("f{i}.txt"), b"x"));
    let run = cluster.fetch(&["--peers"]);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    let lines: Vec<String> = run.stdout_text().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, node) in lines.iter().zip(&cluster.nodes) {
        let first = line.split_whitespace().next().unwrap();
        assert_eq!(first, node.listed.to_string(), "{line:?}");
    }

    let mut cmd = Command::new(bin("peer-client"));
    cmd.arg("localhost")
        .arg(cluster.relay.port().to_string())
        .arg("f1.txt");
    let run = run_cmd(cmd);
    assert_found(&run, b"x", &found_on(&cluster, 1));
}

fn run_cmd(cmd: Command) -> Run {
    harness::run(cmd, b"", CLIENT)
}

#[test]
fn usage_errors_exit_2() {
    let peer_client = || Command::new(bin("peer-client"));
    let cases: [(&[&str], &str); 5] = [
        (&[], "required arguments"),
        (&["127.0.0.1"], "<RELAY_PORT>"),
        (&["127.0.0.1", "seven"], "invalid value"),
        (
            &["127.0.0.1", "1", "a.txt", "b.txt", "-o", "out"],
            "with several NAMEs, -o PATH must be a directory",
        ),
        (
            &["127.0.0.1", "1", "--peers", "a.txt"],
            "cannot be used with",
        ),
    ];
    for (args, says) in cases {
        let mut cmd = peer_client();
        cmd.args(args);
        let run = run_cmd(cmd);
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
        assert!(
            run.stderr.contains(says),
            "{args:?}: no {says:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn peer_node_refuses_a_missing_dir_or_a_file_as_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let file = tmp.path().join("a-file.txt");
    fs::write(&file, b"not a directory").unwrap();
    for (dir, why) in [
        (&missing, "no such file or directory"),
        (&file, "not a directory"),
    ] {
        let mut cmd = Command::new(bin("peer-node"));
        cmd.arg("127.0.0.1").arg("1").arg(dir);
        let run = run_cmd(cmd);
        assert_ne!(run.code(), 0, "{}", run.stderr);
        let line = format!("cannot share {}: {why}", dir.display());
        assert!(
            run.stderr.contains(&line),
            "no {line:?} in:\n{}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

/// The README's table of sample files: (name, node number) per row.
fn readme_sample_table(readme: &str) -> Vec<(String, usize)> {
    let mut rows = Vec::new();
    for line in readme.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let dir = cells
            .iter()
            .find_map(|c| c.strip_prefix("`sample_files/node"));
        if let (Some(name), Some(dir)) = (cells.get(1), dir) {
            let node = dir
                .trim_end_matches('`')
                .parse()
                .expect("sample_files/nodeN");
            rows.push((name.trim_matches('`').to_string(), node));
        }
    }
    rows
}

#[test]
fn every_sample_file_in_the_readme_is_served_by_its_node() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let table = readme_sample_table(&readme);
    // The table lists exactly what is on disk.
    let mut on_disk = Vec::new();
    for n in 1..=3 {
        for name in entries(&root.join(format!("sample_files/node{n}"))) {
            on_disk.push((name, n));
        }
    }
    let mut listed = table.clone();
    listed.sort();
    on_disk.sort();
    assert_eq!(listed, on_disk, "the README's sample file table");

    let relay = Relay::start(&[]);
    let nodes: Vec<Node> = (1..=3)
        .map(|n| Node::start(&relay, &root.join(format!("sample_files/node{n}")), &[]))
        .collect();
    let names: Vec<&str> = table.iter().map(|(name, _)| name.as_str()).collect();
    let mut want = Vec::new();
    for (name, n) in &table {
        want.extend(fs::read(root.join(format!("sample_files/node{n}")).join(name)).unwrap());
    }
    // All of them in one run, in the table's order.
    let mut cmd = harness::client(relay.port());
    cmd.args(&names);
    let run = run_cmd(cmd);
    assert_eq!(run.code(), 0, "stderr:\n{}", run.stderr);
    assert_same("every sample file", &run.stdout, &want);
    for (_, n) in &table {
        let line = format!("found on {}, node ", nodes[n - 1].listed);
        assert!(
            run.stderr.contains(&line),
            "no {line:?} in:\n{}",
            run.stderr
        );
    }
}
