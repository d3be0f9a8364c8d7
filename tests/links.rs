//! Links (`p2p-share:?xt=blake3:...&dn=...&xl=...&tr=...`), end to end:
//! `--list --long` prints one under each file and a fetch's last line names
//! it; `peer-client LINK` fetches it with no relay argument (through the
//! link's relay), with a dead relay on the command line (the link's relay
//! is asked next), and with every relay dead (the DHT, on a local testnet
//! only); `-o DIR/` saves under the link's name. A malformed link is a
//! usage error.

use std::fs;
use std::process::Command;
use std::time::Duration;

use dht::LocalDht;
use harness::{Node, Relay, Run, bin};
use proto::{ContentHash, Link, LinkRelay};

const CLIENT: Duration = Duration::from_secs(60);

/// `--dht-bootstrap` for each node of `net`.
fn bootstrap_args(net: &LocalDht) -> Vec<String> {
    net.bootstrap()
        .into_iter()
        .flat_map(|b| ["--dht-bootstrap".to_string(), b])
        .collect()
}

fn client(args: &[&str]) -> Run {
    let mut cmd = Command::new(bin("peer-client"));
    cmd.args(args);
    harness::run(cmd, b"", CLIENT)
}

/// The links in a listing: the lines that are one.
fn links_in(listing: &str) -> Vec<Link> {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("p2p-share:"))
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn a_listed_link_fetches_its_file_through_its_relay_or_the_dht() {
    let net = LocalDht::start(8).unwrap();
    let boot = bootstrap_args(&net);
    let boot: Vec<&str> = boot.iter().map(String::as_str).collect();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let hash = ContentHash::of(&content);
    let shared = tempfile::tempdir().unwrap();
    fs::write(shared.path().join("my report (final).bin"), &content).unwrap();
    let mut relay = Relay::start(&[]);
    let node = Node::start(&relay, shared.path(), &boot).until_indexed();
    node.proc
        .wait_for("announced 1 shared files on the DHT", harness::READY);
    let port = relay.port().to_string();

    // The index's listing: each file's link on the line after it.
    let run = client(&["127.0.0.1", &port, "--list", "--long"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let listing = run.stdout_text();
    let links = links_in(&listing);
    let expected = Link {
        hash,
        name: Some("my report (final).bin".to_string()),
        size: Some(content.len() as u64),
        relays: vec![LinkRelay {
            host: "127.0.0.1".to_string(),
            port: relay.port(),
        }],
    };
    assert_eq!(links, std::slice::from_ref(&expected), "{listing}");
    let link = expected.to_string();
    assert!(listing.contains(&format!("    {link}\n")), "{listing}");
    // Node by node too.
    let run = client(&["127.0.0.1", &port, "--list", "--long", "--nodes"]);
    assert_eq!(
        links_in(&run.stdout_text()),
        std::slice::from_ref(&expected)
    );

    // The link alone, no relay argument: through the link's relay, saved
    // under its name.
    let out = tempfile::tempdir().unwrap();
    let into = format!("{}/", out.path().display());
    let run = client(&[&link, "-o", &into]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let saved = out.path().join("my report (final).bin");
    assert_eq!(fs::read(&saved).unwrap(), content, "{}", run.stderr);
    // The last line names the link, to pass on.
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("saved my report (final).bin to "),
        "{last}"
    );
    assert!(last.ends_with(&link), "{last}");
    assert!(!run.stderr.contains("DHT"), "{}", run.stderr);

    // Two links, no relay argument: both are NAMEs (here the same content
    // under another name), both saved.
    let renamed = Link {
        name: Some("copy two.bin".to_string()),
        ..expected.clone()
    }
    .to_string();
    let run = client(&[&link, &renamed, "-o", &into]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(
        fs::read(out.path().join("copy two.bin")).unwrap(),
        content,
        "{}",
        run.stderr
    );
    assert_eq!(fs::read(&saved).unwrap(), content);

    // A dead relay on the command line: the link's relay is asked next.
    let dead = harness::free_port().to_string();
    let run = client(&["127.0.0.1", &dead, &link, "-o", "-"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout, content);
    // Printed to stdout, the content is the answer: no link line.
    assert!(!run.stderr.contains("p2p-share:?"), "{}", run.stderr);
    // Saved, the last status line names the link, with both relays.
    let saved = tempfile::tempdir().unwrap();
    let copy = saved.path().join("copy.bin");
    let run = client(&["127.0.0.1", &dead, &link, "-o", copy.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(fs::read(&copy).unwrap(), content);
    let last = run.stderr.lines().last().unwrap_or_default();
    let named: Link = last
        .split_once("): ")
        .map(|(_, l)| l.parse().unwrap())
        .unwrap_or_else(|| panic!("{last}"));
    assert_eq!(named.hash, hash);
    assert_eq!(named.relays.len(), 2, "{last}");

    // Every relay dead: the hash goes to the DHT.
    relay.proc.kill();
    let out = tempfile::tempdir().unwrap();
    let into = format!("{}/", out.path().display());
    let mut args = vec![&link[..], "-o", &into];
    args.extend(&boot);
    let run = client(&args);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(
        fs::read(out.path().join("my report (final).bin")).unwrap(),
        content
    );
    assert!(run.stderr.contains("on the DHT"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the DHT names 1 holder"),
        "{}",
        run.stderr
    );

    // A link without relays, and no relay given: straight to the DHT.
    let bare = Link {
        relays: Vec::new(),
        ..expected
    }
    .to_string();
    let mut args = vec![&bare[..], "-o", "-"];
    args.extend(&boot);
    let run = client(&args);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout, content);
    assert!(
        run.stderr
            .contains("no relay given; looking for my report (final).bin on the DHT"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_malformed_link_or_a_missing_port_is_a_usage_error() {
    let hex = "00".repeat(32);
    let link = format!("p2p-share:?xt=blake3:{hex}");
    let cases: [(&[&str], &str); 7] = [
        (
            &["p2p-share:?dn=a.txt"],
            "not a p2p-share link: xt=blake3:<64 hex digits> is missing",
        ),
        (
            &[
                "127.0.0.1",
                "1",
                &format!("p2p-share:?xt=blake3:{hex}&tr=host"),
            ],
            "not a p2p-share link: tr=\"host\": not HOST:PORT",
        ),
        // Only a link may stand without a relay.
        (&["a.txt"], "<RELAY_PORT>"),
        (&[&format!("blake3:{hex}")], "<RELAY_PORT>"),
        (
            &[&format!("p2p-share:?xt=blake3:{hex}"), "--peers"],
            "<RELAY_PORT>",
        ),
        // With no relay, every NAME must be a link.
        (
            &[&link, "a.txt"],
            "'a.txt' is not a p2p-share: link: with no relay",
        ),
        (
            &["127.0.0.1", "x", "a.txt"],
            "invalid value 'x' for '[RELAY_PORT]'",
        ),
    ];
    for (args, says) in cases {
        let run = client(args);
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}");
        assert!(
            run.stderr.contains(says),
            "{args:?}: no {says:?} in:\n{}",
            run.stderr
        );
    }
}
