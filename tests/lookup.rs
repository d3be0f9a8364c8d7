//! Names and hashes as people type them back (issue 25): a short hash
//! from a listing resolved through the relay's index, a content saved into
//! a directory under the index's name for it, "did you mean" for a name
//! not found, and `--json` listings for scripts.

use std::fs;

use harness::{Cluster, READY};
use serde_json::Value;

/// Two contents whose BLAKE3 hashes share their first eight hex digits
/// (`502f9d9f`): a birthday search over `twin N\n` found them.
const TWIN_A: &[u8] = b"twin 5962\n";
const TWIN_B: &[u8] = b"twin 24518\n";

fn hex(bytes: &[u8]) -> String {
    proto::ContentHash::of(bytes).to_string()
}

#[test]
fn short_hashes_resolve_through_the_index_as_git_resolves_them() {
    assert_eq!(hex(TWIN_A)[..8], hex(TWIN_B)[..8]);
    let cluster = Cluster::start(2, |i, dir| match i {
        0 => {
            fs::write(dir.join("a.txt"), TWIN_A).unwrap();
            fs::write(dir.join("hello.txt"), b"hello\n").unwrap();
        }
        _ => {
            fs::write(dir.join("b.txt"), TWIN_B).unwrap();
            // The same content under another name, registered later.
            fs::write(dir.join("greeting.txt"), b"hello\n").unwrap();
        }
    });
    for node in &cluster.nodes {
        node.proc.wait_for("catalog at relay", READY);
    }

    // The eight digits a listing prints, pasted back.
    let hello = hex(b"hello\n");
    let run = cluster.fetch(&[&format!("blake3:{}", &hello[..8])]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout, b"hello\n");
    // More digits, in capitals, do too.
    let run = cluster.fetch(&[&format!("blake3:{}", hello[..20].to_uppercase())]);
    assert_eq!(run.code(), 0, "{}", run.stderr);

    // Ambiguous: both contents listed with their names, status 1.
    let twin = format!("blake3:{}", &hex(TWIN_A)[..8]);
    let run = cluster.fetch(&[&twin]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains(&format!("{twin} is ambiguous")),
        "{}",
        run.stderr
    );
    for (bytes, name) in [(TWIN_A, "a.txt"), (TWIN_B, "b.txt")] {
        assert!(
            run.stderr
                .contains(&format!("  blake3:{}  {name}\n", hex(bytes))),
            "{}",
            run.stderr
        );
    }
    // One more digit tells them apart.
    let longer = format!("blake3:{}", &hex(TWIN_B)[..12]);
    let run = cluster.fetch(&[&longer]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout, TWIN_B);

    // Unknown: said, status 1.
    let unknown = if hello.starts_with("0000") {
        "blake3:ffffffff"
    } else {
        "blake3:00000000"
    };
    let run = cluster.fetch(&[unknown]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("no content in the relay's index"),
        "{}",
        run.stderr
    );

    // Too short, or not hex: usage errors.
    for bad in [
        format!("blake3:{}", &hello[..7]),
        "blake3:2g5ba016".to_string(),
    ] {
        let run = cluster.fetch(&[&bad]);
        assert_eq!(run.code(), 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    }

    // Saved into a directory: under the earliest holder's name for it,
    // whole hash or prefix.
    for (i, typed) in [hello.clone(), hello[..8].to_string()].iter().enumerate() {
        let dir = cluster.tmp.path().join(format!("dl{i}"));
        fs::create_dir(&dir).unwrap();
        let run = cluster.fetch(&[&format!("blake3:{typed}"), "-o", dir.to_str().unwrap()]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        let saved: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(saved, ["hello.txt"], "{}", run.stderr);
        assert_eq!(fs::read(dir.join("hello.txt")).unwrap(), b"hello\n");
    }
}

#[test]
fn a_name_not_found_gets_the_near_names_of_the_index() {
    let cluster = Cluster::start(1, |_, dir| {
        for name in [
            "hello.txt",
            "Hello.md",
            "help.txt",
            "hallo.txt",
            "world.txt",
        ] {
            fs::write(dir.join(name), name).unwrap();
        }
    });
    cluster.nodes[0].proc.wait_for("catalog at relay", READY);
    let run = cluster.fetch(&["hello.tx"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("hello.tx: not found on any of 1 active node (the relay's index); did you mean hello.txt, Hello.md or hallo.txt?\n"),
        "{}",
        run.stderr
    );
    // Case alone: the name in its case comes first; at most three.
    let run = cluster.fetch(&["HELLO.TXT"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("did you mean hello.txt, hallo.txt or help.txt?\n"),
        "{}",
        run.stderr
    );
    // Nothing near: no hint.
    let run = cluster.fetch(&["zzzzzz.bin"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
}

#[test]
fn json_listings_for_scripts() {
    const BIG: usize = 3 << 20;
    let cluster = Cluster::start(2, |i, dir| {
        fs::write(dir.join("big.bin"), vec![7u8; BIG]).unwrap();
        if i == 0 {
            fs::write(dir.join("note \"quoted\".txt"), b"n\n").unwrap();
        }
    });
    for node in &cluster.nodes {
        node.proc.wait_for("catalog at relay", READY);
    }
    let doc = |args: &[&str]| -> Value {
        let run = cluster.fetch(args);
        assert_eq!(run.code(), 0, "{args:?}: {}", run.stderr);
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not one JSON document ({e}):\n{}",
                run.stdout_text()
            )
        })
    };
    let big_hash = format!("blake3:{}", hex(&vec![7u8; BIG]));

    let peers = doc(&["--peers", "--json"]);
    let addrs: Vec<&str> = peers["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["addr"].as_str().unwrap())
        .collect();
    let want: Vec<String> = cluster.nodes.iter().map(|n| n.listed.to_string()).collect();
    assert_eq!(addrs, want);
    assert_eq!(peers["nodes"][0]["mode"], "direct");

    for args in [&["--list", "--json"][..], &["--list", "--long", "--json"]] {
        let list = doc(args);
        assert_eq!(list["source"], "index");
        assert_eq!(list["active_nodes"], 2);
        let files = list["files"].as_array().unwrap();
        assert_eq!(files.len(), 2, "{list}");
        assert_eq!(files[0]["name"], "big.bin");
        assert_eq!(files[0]["size"], BIG as u64);
        assert_eq!(files[0]["hash"], big_hash.as_str());
        assert_eq!(files[0]["holders"], 2);
        assert_eq!(files[1]["name"], "note \"quoted\".txt");
    }

    let per_node = doc(&["--list", "--nodes", "--json"]);
    assert_eq!(per_node["source"], "nodes");
    let first = &per_node["nodes"][0];
    assert_eq!(first["addr"], want[0].as_str());
    assert_eq!(first["files"][0]["size"], BIG as u64);
    assert_eq!(first["files"][0]["hash"], big_hash.as_str());

    let found = doc(&["--search", "BIG", "--json"]);
    assert_eq!(found["query"], "BIG");
    assert_eq!(found["files"].as_array().unwrap().len(), 1);

    // The plain listing: sizes for people; --long keeps bytes.
    let run = cluster.fetch(&["--list"]);
    assert!(
        run.stdout_text().contains("3.0 MiB  blake3:"),
        "{}",
        run.stdout_text()
    );
    let run = cluster.fetch(&["--list", "--long"]);
    assert!(
        run.stdout_text().contains(&format!("{BIG}  {big_hash}")),
        "{}",
        run.stdout_text()
    );

    // --json without a listing is a usage error.
    let run = cluster.fetch(&["--json", "big.bin"]);
    assert_eq!(run.code(), 2, "{}", run.stderr);
}
