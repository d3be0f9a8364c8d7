//! Dotfiles and `--exclude GLOB` (issue 25): files whose names start with
//! `.` are shared like any other (as rsync and nginx do); what `--exclude`
//! names is kept out of the listing, out of the relay's index, and refused
//! when asked for by name, by range, or through a symlink.

use std::fs;
use std::path::Path;
use std::time::Duration;

use harness::{Node, Relay, run};
use net::exchange::{Timeouts, call};
use proto::{ErrorKind, FileRequest, RangeRequest, Request, Response, SearchQuery, Target};

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn dotfiles_are_shared_and_excluded_files_are_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share");
    write(&dir, ".hidden", "a dotfile\n");
    write(&dir, "keep.txt", "kept\n");
    write(&dir, ".git/config", "[core]\n");
    write(&dir, "a.tmp", "scratch\n");
    write(&dir, "sub/b.tmp", "scratch\n");
    std::os::unix::fs::symlink(dir.join(".git/config"), dir.join("link")).unwrap();
    let relay = Relay::start(&[]);
    let node = Node::start(
        &relay,
        &dir,
        &[
            "--bind",
            "127.0.0.1",
            "--exclude",
            ".git",
            "--exclude",
            "*.tmp",
        ],
    )
    .until_indexed();
    node.proc
        .wait_for("not shared: .git, *.tmp", Duration::from_secs(1));
    let t = Timeouts::default();

    // The relay's index holds the shared files only.
    let everything = Request::Search(SearchQuery {
        text: String::new(),
        limit: 100,
    });
    let Ok(Response::SearchResults(found)) = call(relay.addr, &everything, &t) else {
        panic!("the relay did not search");
    };
    let names: Vec<&str> = found.hits.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, [".hidden", "keep.txt"]);

    // So does the node's own listing.
    let Ok(Response::Files(list)) = call(node.listen, &Request::ListFiles, &t) else {
        panic!("the node did not list");
    };
    let names: Vec<&str> = list.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [".hidden", "keep.txt"]);

    // A dotfile is fetched like any file.
    let mut cmd = harness::client(relay.port());
    cmd.arg(".hidden");
    let got = run(cmd, b"", Duration::from_secs(60));
    assert_eq!(got.stdout_text(), "a dotfile\n", "{}", got.stderr);

    // An excluded file: not in the index, and refused by the node itself.
    let mut cmd = harness::client(relay.port());
    cmd.arg(".git/config");
    let got = run(cmd, b"", Duration::from_secs(60));
    assert_eq!(got.code(), 1, "{}", got.stderr);
    assert!(got.stdout.is_empty());
    for name in [".git/config", "a.tmp", "sub/b.tmp", "link", ".git/nothing"] {
        let requests = [
            Request::GetFile(FileRequest {
                name: name.into(),
                offset: 0,
            }),
            Request::GetRange(RangeRequest {
                target: Target::Name(name.into()),
                offset: 0,
                len: u64::MAX,
            }),
        ];
        for request in requests {
            match call(node.listen, &request, &t) {
                Ok(Response::Error(e)) if e.kind == ErrorKind::Forbidden => {
                    assert!(e.message.contains("--exclude"), "{name}: {}", e.message)
                }
                other => panic!("{name}: {request:?} answered {other:?}"),
            }
        }
    }
}
