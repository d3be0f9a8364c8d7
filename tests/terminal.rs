//! peer-client as a person meets it: in a real terminal. Each test starts a
//! relay and nodes through the harness, runs the client in a tmux session of
//! its own (own socket, own temp dir, server killed on drop), types with
//! `send-keys` and reads the screen with `capture-pane`, polling the screen
//! until a deadline rather than sleeping.
//!
//! tmux must be installed (`.ci/run` installs it: `apt-get install tmux`).

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use harness::tmux::{Setup, Tmux, last_line};
use harness::{Cluster, Node, Relay, bin};

/// How long the screen may take to show what a test waits for.
const SCREEN: Duration = Duration::from_secs(15);

const PROMPT: &str = "file name>";

/// A terminal running `command` (a shell command line) in /bin/sh; see
/// [`Tmux::start`].
fn terminal(command: &str) -> Tmux {
    let setup = Setup {
        shell: "/bin/sh",
        cwd: None,
        env: Vec::new(),
        // The pane gets a clean environment for what the tests check.
        remove: &["RUST_LOG"],
    };
    Tmux::start(command, setup).unwrap()
}

/// The screen from the `n`th prompt (1-based) to the next one.
fn after_prompt(screen: &str, n: usize) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    let start = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(PROMPT))
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no prompt {n} on the screen:\n{screen}"));
    lines[start..]
        .iter()
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.starts_with(PROMPT))
        .map(|(_, l)| format!("{l}\n"))
        .collect()
}

/// `'text'` for sh.
fn quote(text: impl AsRef<Path>) -> String {
    let text = text.as_ref().to_str().expect("UTF-8 path");
    assert!(!text.contains('\''), "{text}");
    format!("'{text}'")
}

/// The shell command that runs peer-client against `cluster` with `args`.
fn client_command(cluster: &Cluster, args: &str) -> String {
    format!(
        "{} 127.0.0.1 {} {args}",
        quote(bin("peer-client")),
        cluster.relay.port()
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Something a terminal must not be fed: a PNG header, NULs, an escape.
fn binary() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..4088).map(|i| (i * 7 % 256) as u8));
    bytes
}

fn found_on(node: &Node) -> String {
    format!("found on {}", node.listed)
}

/// The prompt session of a new user: a name, a binary file, `ls`, `peers`,
/// `get -o`, history, Ctrl-C, `quit`.
#[test]
fn the_prompt_in_a_terminal() {
    let logo = binary();
    let cluster = Cluster::start(3, |i, dir| match i {
        0 => {
            write(dir, "hello.txt", b"hello from node one\n");
            write(dir, "sub/deeper/notes.txt", b"deep\n");
        }
        1 => write(dir, "logo.png", &logo),
        _ => write(dir, "three.txt", b"no newline at the end"),
    });
    let [n1, n2, n3] = &cluster.nodes[..] else {
        unreachable!()
    };
    let saved = cluster.tmp.path().join("saved");
    fs::create_dir(&saved).unwrap();
    let tmux = terminal(&client_command(&cluster, ""));
    tmux.wait_prompt(PROMPT, 1, SCREEN).unwrap();

    // A typed name shows the file, and which node served it.
    tmux.type_line("hello.txt").unwrap();
    let screen = tmux.wait_prompt(PROMPT, 2, SCREEN).unwrap();
    let answer = after_prompt(&screen, 1);
    assert!(answer.contains("\nhello from node one\n"), "{answer}");
    assert!(answer.contains(&found_on(n1)), "{answer}");

    // A text without a final newline still leaves the status on its own line.
    tmux.type_line("three.txt").unwrap();
    let screen = tmux.wait_prompt(PROMPT, 3, SCREEN).unwrap();
    let answer = after_prompt(&screen, 2);
    assert!(
        answer.contains("\nno newline at the end\nfound on"),
        "{answer}"
    );

    // A binary file is refused, with the hint to save it instead.
    tmux.type_line("logo.png").unwrap();
    let screen = tmux.wait_prompt(PROMPT, 4, SCREEN).unwrap();
    let answer = after_prompt(&screen, 3);
    assert!(
        answer.contains(
            "error: logo.png is not text; refusing to print it to the terminal \
             (use `get logo.png -o FILE` to save it)"
        ),
        "{answer}"
    );
    assert!(
        !answer.contains("PNG"),
        "binary bytes reached the screen:\n{answer}"
    );

    // ls --nodes: every node's own files, grouped under its address.
    tmux.type_line("ls --nodes").unwrap();
    let screen = tmux.wait_prompt(PROMPT, 5, SCREEN).unwrap();
    let answer = after_prompt(&screen, 4);
    for (node, lines) in [
        (n1, &["20 B  hello.txt", "5 B  sub/deeper/notes.txt"][..]),
        (n2, &["4.0 KiB  logo.png"][..]),
        (n3, &["21 B  three.txt"][..]),
    ] {
        let files = lines.len();
        let header = format!(
            "{} ({files} file{})",
            node.listed,
            if files == 1 { "" } else { "s" }
        );
        let block: Vec<&str> = answer
            .lines()
            .skip_while(|l| *l != header)
            .skip(1)
            .take(files)
            .collect();
        assert_eq!(block.len(), files, "no {header:?} group in:\n{answer}");
        for (got, want) in block.iter().zip(lines) {
            assert_eq!(got.trim_start(), *want, "in:\n{answer}");
        }
    }

    // peers: the three nodes.
    tmux.type_line("peers").unwrap();
    let screen = tmux.wait_prompt(PROMPT, 6, SCREEN).unwrap();
    let answer = after_prompt(&screen, 5);
    for node in [n1, n2, n3] {
        assert!(
            answer.contains(&format!("\n{}  refreshed", node.listed)),
            "{answer}"
        );
    }
    assert!(answer.contains("\n3 active nodes\n"), "{answer}");

    // get NAME -o PATH saves the binary file whole.
    let target = saved.join("logo.png");
    tmux.type_line(&format!("get logo.png -o {}", target.display()))
        .unwrap();
    let screen = tmux.wait_prompt(PROMPT, 7, SCREEN).unwrap();
    let answer = after_prompt(&screen, 6);
    assert!(
        answer.contains(&format!("saved logo.png to {}", target.display())),
        "{answer}"
    );
    assert_eq!(fs::read(&target).unwrap(), logo);

    // History: Up recalls the last lines, newest first; Enter runs one again.
    tmux.keys(&["Up"]).unwrap();
    let get_line = format!("file name> get logo.png -o {}", target.display());
    tmux.wait_until("the get line recalled", SCREEN, |s| {
        last_line(s) == get_line
    })
    .unwrap();
    tmux.keys(&["Up"]).unwrap();
    tmux.wait_until("the peers line recalled", SCREEN, |s| {
        last_line(s) == "file name> peers"
    })
    .unwrap();
    tmux.keys(&["Enter"]).unwrap();
    let screen = tmux.wait_prompt(PROMPT, 8, SCREEN).unwrap();
    assert!(
        after_prompt(&screen, 7).contains("\n3 active nodes\n"),
        "{screen}"
    );

    // Ctrl-C drops the line being typed and keeps the prompt.
    tmux.keys(&["-l", "half a na"]).unwrap();
    tmux.wait_until("the half-typed line", SCREEN, |s| {
        last_line(s) == "file name> half a na"
    })
    .unwrap();
    tmux.keys(&["C-c"]).unwrap();
    let screen = tmux.wait_prompt(PROMPT, 9, SCREEN).unwrap();
    assert!(
        screen.contains("(type quit or press Ctrl-D to leave)"),
        "{screen}"
    );
    assert!(
        !screen.contains("not found on any"),
        "Ctrl-C ran the line:\n{screen}"
    );
    assert_eq!(tmux.exit_status().unwrap(), None, "Ctrl-C ended the client");

    // quit ends it; the refused logo.png makes the status 1, as a missing
    // file would.
    tmux.type_line("quit").unwrap();
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 1, "{screen}");
}

/// Tab completes commands and the names in the relay's index; a name that
/// needs quotes is inserted quoted, and Enter fetches it.
#[test]
fn tab_completes_commands_and_the_index_names() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "my report.txt", b"quarterly\n");
    write(tmp.path(), "zebra.txt", b"stripes\n");
    let relay = Relay::start(&[]);
    let _node = Node::start(&relay, tmp.path(), &[]).until_indexed();
    let tmux = terminal(&format!(
        "{} 127.0.0.1 {}",
        quote(bin("peer-client")),
        relay.port()
    ));
    tmux.wait_prompt(PROMPT, 1, SCREEN).unwrap();

    // One candidate: completed in place, quoted because of its space.
    tmux.keys(&["-l", "get my"]).unwrap();
    tmux.keys(&["Tab"]).unwrap();
    tmux.wait_until("the completed name", SCREEN, |s| {
        last_line(s) == "file name> get 'my report.txt'"
    })
    .unwrap();
    tmux.keys(&["Enter"]).unwrap();
    let screen = tmux.wait_prompt(PROMPT, 2, SCREEN).unwrap();
    assert!(
        after_prompt(&screen, 1).contains("\nquarterly\n"),
        "{screen}"
    );

    // A command completes too.
    tmux.keys(&["-l", "pee"]).unwrap();
    tmux.keys(&["Tab"]).unwrap();
    tmux.wait_until("the completed command", SCREEN, |s| {
        last_line(s) == "file name> peers"
    })
    .unwrap();
    tmux.keys(&["Enter"]).unwrap();
    let screen = tmux.wait_prompt(PROMPT, 3, SCREEN).unwrap();
    assert!(
        after_prompt(&screen, 2).contains("1 active node"),
        "{screen}"
    );

    // A bare name completes without quotes.
    tmux.keys(&["-l", "zeb"]).unwrap();
    tmux.keys(&["Tab"]).unwrap();
    tmux.wait_until("the completed bare name", SCREEN, |s| {
        last_line(s) == "file name> zebra.txt"
    })
    .unwrap();
    tmux.keys(&["Enter"]).unwrap();
    let screen = tmux.wait_prompt(PROMPT, 4, SCREEN).unwrap();
    assert!(after_prompt(&screen, 3).contains("\nstripes\n"), "{screen}");
    tmux.type_line("quit").unwrap();
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 0, "{screen}");
}

/// With stdout redirected to a file, the prompt, listings and statuses stay
/// on the terminal and the file gets exactly the fetched bytes; Ctrl-D ends.
#[test]
fn the_prompt_never_reaches_stdout() {
    let logo = binary();
    let cluster = Cluster::start(2, |i, dir| match i {
        0 => write(dir, "hello.txt", b"hello\n"),
        _ => write(dir, "logo.png", &logo),
    });
    let out = cluster.tmp.path().join("out.bin");
    let command = format!("{} > {}", client_command(&cluster, ""), quote(&out));
    let tmux = terminal(&command);
    tmux.wait_prompt(PROMPT, 1, SCREEN).unwrap();
    for (n, line) in ["hello.txt", "logo.png", "ls --nodes", "peers", "help"]
        .iter()
        .enumerate()
    {
        tmux.type_line(line).unwrap();
        tmux.wait_prompt(PROMPT, n + 2, SCREEN).unwrap();
    }
    tmux.keys(&["C-d"]).unwrap();
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 0, "{screen}");
    assert!(screen.contains(&found_on(&cluster.nodes[1])), "{screen}");
    assert!(
        screen.contains(&format!("{} (1 file)", cluster.nodes[1].listed)),
        "{screen}"
    );
    assert!(screen.contains("get NAME [-o PATH]"), "{screen}");
    let mut want = b"hello\n".to_vec();
    want.extend_from_slice(&logo);
    let got = fs::read(&out).unwrap();
    assert!(
        got == want,
        "stdout holds more than the two files: {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// A binary file named on the command line is refused on a terminal with
/// the command line's hint, and exits 2 (a local error: the file is
/// there).
#[test]
fn a_binary_file_on_the_command_line_is_refused_on_a_terminal() {
    let logo = binary();
    let cluster = Cluster::start(1, |_, dir| write(dir, "logo.png", &logo));
    let tmux = terminal(&client_command(&cluster, "logo.png"));
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 2, "{screen}");
    assert!(
        screen.contains("use -o FILE to save it, or redirect stdout"),
        "{screen}"
    );
    assert!(!screen.contains("PNG"), "{screen}");
}

/// The line a finished bar leaves: the size, the time and the mean rate
/// (`64.00 MiB in 1.2 s, 53.33 MiB/s`).
fn summary_line<'s>(screen: &'s str, size: &str) -> Option<&'s str> {
    screen.lines().find(|l| {
        l.split_once(&format!(" {size} in "))
            .is_some_and(|(_, rest)| rest.contains(" s, ") || rest.contains(" ms, "))
            && l.trim_end().ends_with("/s")
    })
}

/// 64 MiB saved with -o, or with stdout redirected to a file: a progress
/// bar on a terminal, left as the transfer's summary line (size, time,
/// mean rate); none with -q; nothing of it on a pipe.
#[test]
fn the_progress_bar_is_drawn_on_a_terminal_only() {
    const SIZE: usize = 64 << 20;
    let big: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let cluster = Cluster::start(1, |_, dir| write(dir, "big.bin", &big));
    let saved = cluster.tmp.path();

    let target = saved.join("tty.bin");
    let tmux = terminal(&client_command(
        &cluster,
        &format!("big.bin -o {}", quote(&target)),
    ));
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 0, "{screen}");
    assert!(
        summary_line(&screen, "64.00 MiB").is_some(),
        "no summary of the finished bar:\n{screen}"
    );
    assert!(screen.contains("saved big.bin to"), "{screen}");
    assert_eq!(fs::metadata(&target).unwrap().len(), SIZE as u64);

    // stdout redirected to a file: the bar shows all the same, as curl's.
    let target = saved.join("redirected.bin");
    let tmux = terminal(&client_command(
        &cluster,
        &format!("big.bin > {}", quote(&target)),
    ));
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 0, "{screen}");
    assert!(
        summary_line(&screen, "64.00 MiB").is_some(),
        "no bar with stdout redirected:\n{screen}"
    );
    assert_eq!(fs::read(&target).unwrap(), big);

    let target = saved.join("quiet.bin");
    let tmux = terminal(&client_command(
        &cluster,
        &format!("-q big.bin -o {}", quote(&target)),
    ));
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 0, "{screen}");
    assert!(!screen.contains("MiB"), "a bar with -q:\n{screen}");
    assert_eq!(fs::metadata(&target).unwrap().len(), SIZE as u64);

    // stderr a pipe: plain status lines, no bar, no carriage return, no escape.
    let target = saved.join("pipe.bin");
    let run = cluster.fetch(&["big.bin", "-o", target.to_str().unwrap()]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("saved big.bin to"), "{}", run.stderr);
    for bad in ["\r", "\x1b", "MiB", "█", "░"] {
        assert!(
            !run.stderr.contains(bad),
            "{bad:?} on a pipe:\n{:?}",
            run.stderr
        );
    }
    assert_eq!(fs::metadata(&target).unwrap().len(), SIZE as u64);
}

/// Text without a final newline, printed to the terminal through stdout
/// or through `-o /dev/tty`: the status line after it starts on a line of
/// its own, and no bar is drawn over the text.
#[test]
fn a_status_line_after_text_without_a_newline_starts_its_own_line() {
    let cluster = Cluster::start(1, |_, dir| {
        write(dir, "three.txt", b"no newline at the end");
    });
    let found = found_on(&cluster.nodes[0]);
    for args in ["three.txt", "three.txt -o /dev/tty", "three.txt -o -"] {
        let tmux = terminal(&client_command(&cluster, args));
        let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
        assert_eq!(status, 0, "{args}: {screen}");
        let lines: Vec<&str> = screen.lines().collect();
        assert!(
            lines
                .windows(2)
                .any(|w| w[0] == "no newline at the end" && w[1].starts_with(&found)),
            "{args}:\n{screen}"
        );
        assert!(
            !screen.contains("21 B"),
            "a bar over the text: {args}:\n{screen}"
        );
    }
}

/// The size of `huge.bin` in [`huge_file_cluster`].
const HUGE: u64 = 1 << 30;

/// One node sharing a sparse 1 GiB `huge.bin` (no disk), hashed and in the
/// relay's index, and the path to save it to (in a directory of its own).
fn huge_file_cluster() -> (Cluster, std::path::PathBuf) {
    let cluster = Cluster::start(1, |_, dir| {
        let file = fs::File::create(dir.join("huge.bin")).unwrap();
        file.set_len(HUGE).unwrap();
    });
    let node = &cluster.nodes[0].proc;
    node.wait_for("hashed 1 shared files", Duration::from_secs(120));
    node.wait_for("catalog at relay", Duration::from_secs(120));
    let saved = cluster.tmp.path().join("saved");
    fs::create_dir(&saved).unwrap();
    let target = saved.join("huge.bin");
    (cluster, target)
}

/// Ctrl-C in the middle of a download with -o: the client exits 130,
/// leaves no file at the path, keeps its `.part` and record for the next
/// run, and says how to resume.
#[test]
fn ctrl_c_during_a_download_keeps_its_part_and_says_how_to_resume() {
    // Sparse: 1 GiB that takes no disk. The node hashes a file before it
    // sends a byte (docs/PROTOCOL.md, "Verified ranges"), so the test waits
    // for that first. The download is held in the middle by stopping the
    // node as soon as the first bytes reach the `.part` file, so the file
    // need only be far bigger than what is still on its way then (socket
    // buffers, a few MiB); hashing it is most of the test's time.
    let (cluster, target) = huge_file_cluster();
    let saved = target.parent().unwrap().to_path_buf();
    let node = &cluster.nodes[0].proc;
    let tmux = terminal(&client_command(
        &cluster,
        &format!("huge.bin -o {}", quote(&target)),
    ));
    let part = ".huge.bin.part".to_string();
    let deadline = Instant::now() + SCREEN;
    while !fs::metadata(saved.join(&part)).is_ok_and(|m| m.len() > 0) {
        assert!(Instant::now() < deadline, "no bytes in {part}");
        thread::sleep(Duration::from_millis(2));
    }
    node.signal(libc::SIGSTOP);
    let partial = fs::metadata(saved.join(&part)).map(|m| m.len());
    assert!(
        part.ends_with(".part") && partial.as_ref().is_ok_and(|&len| len < HUGE),
        "the download was not held in the middle: {part} ({partial:?} bytes)"
    );
    // The bar shows the transfer under way.
    tmux.wait_until("the progress bar", SCREEN, |s| s.contains("/1.00 GiB"))
        .unwrap();
    tmux.keys(&["C-c"]).unwrap();
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 130, "{screen}");
    assert!(
        screen.contains("interrupted at") && screen.contains("run the same command to resume"),
        "{screen}"
    );
    let mut left: Vec<_> = fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".huge.bin.part", ".huge.bin.part.rec"]);
}

/// Ctrl-C during a `get` at the prompt stops that transfer, not the client:
/// one line says so and what the save kept, `file name> ` comes back with
/// its history, and the same line resumes the save. Ctrl-C at the idle
/// prompt only drops the line, as before.
#[test]
fn ctrl_c_during_a_get_at_the_prompt_stops_only_that_transfer() {
    // As in the test above: a sparse 1 GiB, held in the middle by stopping
    // the node once the first bytes reach the part.
    let (cluster, target) = huge_file_cluster();
    let saved = target.parent().unwrap().to_path_buf();
    let node = &cluster.nodes[0].proc;
    let tmux = terminal(&client_command(&cluster, ""));
    tmux.wait_prompt(PROMPT, 1, SCREEN).unwrap();
    let get = format!("get huge.bin -o {}", target.display());
    tmux.type_line(&get).unwrap();
    let part = saved.join(".huge.bin.part");
    let deadline = Instant::now() + SCREEN;
    while !fs::metadata(&part).is_ok_and(|m| m.len() > 0) {
        assert!(Instant::now() < deadline, "no bytes in {}", part.display());
        thread::sleep(Duration::from_millis(2));
    }
    node.signal(libc::SIGSTOP);
    tmux.wait_until("the progress bar", SCREEN, |s| s.contains("/1.00 GiB"))
        .unwrap();

    // The node sends nothing now: the fetch waits on its socket, and
    // Ctrl-C must cut it rather than wait for the 30 s timeout.
    tmux.keys(&["C-c"]).unwrap();
    let screen = tmux.wait_prompt(PROMPT, 2, SCREEN).unwrap();
    let answer = after_prompt(&screen, 1);
    let stopped: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("huge.bin: stopped (Ctrl-C); interrupted at "))
        .collect();
    assert_eq!(stopped.len(), 1, "not one stopped line:\n{answer}");
    assert!(
        stopped[0].ends_with("of 1.0 GiB; run the same command to resume"),
        "{answer}"
    );
    assert!(
        !answer.contains("error") && !answer.contains("not found"),
        "more than the stopped line:\n{answer}"
    );
    assert_eq!(tmux.exit_status().unwrap(), None, "Ctrl-C ended the client");
    assert!(!target.exists());
    assert!(part.exists(), "the part was not kept");
    node.signal(libc::SIGCONT);

    // History intact: Up recalls the get, and Enter resumes it.
    tmux.keys(&["Up"]).unwrap();
    let recalled = format!("{PROMPT} {get}");
    tmux.wait_until("the get line recalled", SCREEN, |s| {
        last_line(s) == recalled
    })
    .unwrap();
    tmux.keys(&["Enter"]).unwrap();
    // The third prompt comes once the resumed save is done.
    let screen = tmux.wait_prompt(PROMPT, 3, SCREEN).unwrap();
    let answer = after_prompt(&screen, 2);
    assert!(answer.contains("huge.bin: resuming at"), "{answer}");
    assert!(answer.contains("saved huge.bin to"), "{answer}");
    assert_eq!(fs::metadata(&target).unwrap().len(), HUGE);

    // Ctrl-C at the idle prompt drops the line being typed, as before.
    tmux.keys(&["-l", "half"]).unwrap();
    tmux.wait_until("the half-typed line", SCREEN, |s| {
        last_line(s) == format!("{PROMPT} half")
    })
    .unwrap();
    tmux.keys(&["C-c"]).unwrap();
    let screen = tmux.wait_prompt(PROMPT, 4, SCREEN).unwrap();
    assert!(
        after_prompt(&screen, 3).contains("(type quit or press Ctrl-D to leave)"),
        "{screen}"
    );
    // The stopped get counts as a file not fetched.
    tmux.type_line("quit").unwrap();
    let (screen, status) = tmux.wait_exit(SCREEN).unwrap();
    assert_eq!(status, 1, "{screen}");
}
