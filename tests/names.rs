//! Names and listings as people's hands expect them (issue 25): several
//! names saved into a directory, a search that finds nothing is status 1,
//! and with --no-index the last line names the file not found.

use std::fs;

use harness::{Cluster, READY};

#[test]
fn several_names_into_a_directory_an_empty_search_and_no_index_misses() {
    let cluster = Cluster::start(1, |_, dir| {
        fs::write(dir.join("a.txt"), b"a\n").unwrap();
        fs::write(dir.join("café.txt"), b"b\n").unwrap();
    });
    cluster.nodes[0].proc.wait_for("catalog at relay", READY);

    // a.txt café.txt -o dir/: both saved into dir, as `cp a b dir/` does.
    let dir = cluster.tmp.path().join("dl");
    fs::create_dir(&dir).unwrap();
    let run = cluster.fetch(&["a.txt", "café.txt", "-o", dir.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(fs::read(dir.join("a.txt")).unwrap(), b"a\n");
    assert_eq!(fs::read(dir.join("café.txt")).unwrap(), b"b\n");
    // Several names and a PATH that is not a directory: a usage error.
    let file = dir.join("a.txt");
    let run = cluster.fetch(&["a.txt", "café.txt", "-o", file.to_str().unwrap()]);
    assert_eq!(run.code(), 2, "{}", run.stderr);

    // Search folds case beyond ASCII; finding nothing is status 1.
    let run = cluster.fetch(&["--search", "CAFÉ"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(
        run.stdout_text().contains("café.txt"),
        "{}",
        run.stdout_text()
    );
    let run = cluster.fetch(&["--search", "nowhere"]);
    assert_eq!(run.code(), 1, "{}", run.stderr);

    // --no-index: the last line names the file.
    let run = cluster.fetch(&["--no-index", "nope.txt"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr
            .ends_with("nope.txt: not found on any of 1 active node\n"),
        "{}",
        run.stderr
    );
}
