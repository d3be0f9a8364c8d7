//! Several relays per network (issue 27): a node registers with every relay
//! it is given (`--relay HOST:PORT` beside the positional one, as BEP 12
//! lists several trackers) and sends each its catalog; a client asks its
//! relays in order, and the next when one cannot be reached. Kill the
//! first relay: fetches go on through the second.

use std::fs;
use std::time::Duration;

use harness::{Node, READY, Relay};

#[test]
fn nodes_are_listed_on_both_relays_and_fetches_go_on_when_the_first_dies() {
    let mut first = Relay::start(&[]);
    let second = Relay::start(&[]);
    let also = format!("127.0.0.1:{}", second.port());
    let tmp = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..3u32 << 20).map(|i| (i % 253) as u8).collect();
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("shared.bin"), &content).unwrap();
        fs::write(dir.join(format!("{name}.txt")), format!("only on {name}\n")).unwrap();
        let node = Node::spawn("127.0.0.1", first.port(), &dir, &["--relay", &also]);
        // Listed, with its catalog, at each relay.
        for relay in [&first, &second] {
            node.proc.wait_for(
                &format!("catalog at relay 127.0.0.1:{}", relay.port()),
                READY,
            );
        }
        nodes.push(node);
    }
    // The second relay alone knows both nodes and their files.
    let run = harness::run(
        {
            let mut cmd = harness::client(second.port());
            cmd.args(["--list", "--long"]);
            cmd
        },
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let listing = run.stdout_text();
    for name in ["a.txt", "b.txt", "shared.bin"] {
        assert!(listing.contains(name), "{name} not in\n{listing}");
    }

    let first_port = first.port();
    let client = |args: &[&str]| {
        let mut cmd = harness::client(first_port);
        cmd.args(["--relay", &also]).args(args);
        harness::run(cmd, b"", Duration::from_secs(60))
    };
    let run = client(&["a.txt"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "only on a\n");

    first.proc.kill();
    let out = tmp.path().join("out.bin");
    let run = client(&["shared.bin", "-o", out.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(fs::read(&out).unwrap(), content);
    // The second relay named both holders: both gave ranges, or (on a busy
    // machine, where one worker can finish 3 MiB before the other starts)
    // one of the two did it all.
    assert!(
        run.stderr.contains("found on 2 nodes") || run.stderr.contains(" of 2 ("),
        "{}",
        run.stderr
    );
    let run = client(&["b.txt"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout_text(), "only on b\n");

    // With both relays down, a name cannot be found anywhere: a clear line
    // naming both, and the exit status of an unreachable relay.
    drop(second);
    let run = client(&["a.txt", "--no-dht"]);
    assert_eq!(run.code(), 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not reach any of 2 relays"),
        "{}",
        run.stderr
    );
}

#[test]
fn relay_flags_are_checked() {
    for bad in ["nowhere", "host:0", ":7000", "[::1:7000"] {
        let mut cmd = harness::client(1);
        cmd.args(["--relay", bad, "x"]);
        let run = harness::run(cmd, b"", Duration::from_secs(30));
        assert_eq!(run.code(), 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("--relay"), "{bad}: {}", run.stderr);
    }
}
