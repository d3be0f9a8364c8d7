//! peer-client as a person meets it: in a real terminal. Each test starts a
//! relay and nodes through the harness, runs the client in a tmux session of
//! its own (own socket, own temp dir, server killed on drop), types with
//! `send-keys` and reads the screen with `capture-pane`, polling the screen
//! until a deadline rather than sleeping.
//!
//! tmux must be installed (`.ci/run` installs it: `apt-get install tmux`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use harness::{Cluster, Node, Relay, bin};

/// How long the screen may take to show what a test waits for.
const SCREEN: Duration = Duration::from_secs(15);

const PROMPT: &str = "file name>";

/// What the shell around the client prints when it exits: `[exit status 0]`.
const EXITED: &str = "[exit status ";

/// A tmux server with one session, `t`, running one command; the server is
/// killed on drop, also when a test panics.
struct Tmux {
    sock: PathBuf,
    /// Holds the socket and the config; removed after the server is killed.
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a detached 200x50 session,
    /// followed by a line with its exit status.
    ///
    /// Then the pane's shell stays, parked (`exec sleep infinity`), until the
    /// server is killed: the pane's process never exits while a test reads
    /// the screen. tmux 3.3 discards the output of a pane it has not read
    /// yet when it reaps the pane's process, and on a loaded machine it may
    /// reap first: the client's last lines and the status line were lost,
    /// and the screen showed only `Pane is dead (status 0, ...)`. The client
    /// is the shell's child, not tmux's, so its exit cannot race tmux's
    /// reading. (`remain-on-exit` only keeps the screen readable should the
    /// pane die anyway.)
    fn start(command: &str) -> Tmux {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("sock");
        let conf = dir.path().join("tmux.conf");
        fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g history-limit 5000\nset -g default-shell /bin/sh\n",
        )
        .unwrap();
        let tmux = Tmux { sock, _dir: dir };
        let conf = conf.to_str().unwrap().to_string();
        // The trap keeps the shell alive through a Ctrl-C meant for the
        // client (which gets the default disposition back when it starts).
        let command =
            format!("trap true INT; {command}; echo \"{EXITED}$?]\"; exec sleep infinity");
        let out = tmux.run(&[
            "-f",
            &conf,
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "200",
            "-y",
            "50",
            &command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .args(args)
            // The pane gets a clean environment for what the tests check.
            .env_remove("RUST_LOG")
            .env("TERM", "xterm-256color")
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux ({e}); install it: apt-get install tmux"))
    }

    /// Types `text` literally, then Enter.
    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
        self.keys(&["Enter"]);
    }

    /// Presses keys by tmux name (`Up`, `C-c`, `C-d`, `Enter`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "send-keys {keys:?} failed");
    }

    /// The whole screen and its scrollback.
    fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-S", "-", "-t", "t"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `done` holds; panics with the screen if it
    /// does not within [`SCREEN`].
    fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!("the screen did not show {what} within {SCREEN:?}:\n{screen}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the `n`th prompt to be the empty line the cursor is on: the
    /// command typed before it has finished.
    fn wait_prompt(&self, n: usize) -> String {
        self.wait_until(&format!("prompt number {n}, empty"), |s| {
            prompts(s) == n && last_line(s) == PROMPT
        })
    }

    /// The client's exit status once it has exited, as the shell around it
    /// reports it. (tmux's own `#{pane_dead_status}` cannot tell it: the
    /// pane does not die when the client exits, see [`Tmux::start`].)
    fn exit_status(&self) -> Option<i32> {
        exit_status(&self.screen())
    }

    fn wait_exit(&self) -> i32 {
        let screen = self.wait_until("the client's exit", |s| exit_status(s).is_some());
        exit_status(&screen).unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("kill-server")
            .output();
    }
}

fn exit_status(screen: &str) -> Option<i32> {
    let line = screen.lines().find(|l| l.starts_with(EXITED))?;
    line[EXITED.len()..].trim_end_matches(']').parse().ok()
}

fn prompts(screen: &str) -> usize {
    screen.lines().filter(|l| l.starts_with(PROMPT)).count()
}

fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end()
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
    let tmux = Tmux::start(&client_command(&cluster, ""));
    tmux.wait_prompt(1);

    // A typed name shows the file, and which node served it.
    tmux.type_line("hello.txt");
    let screen = tmux.wait_prompt(2);
    let answer = after_prompt(&screen, 1);
    assert!(answer.contains("\nhello from node one\n"), "{answer}");
    assert!(answer.contains(&found_on(n1)), "{answer}");

    // A text without a final newline still leaves the status on its own line.
    tmux.type_line("three.txt");
    let screen = tmux.wait_prompt(3);
    let answer = after_prompt(&screen, 2);
    assert!(
        answer.contains("\nno newline at the end\nfound on"),
        "{answer}"
    );

    // A binary file is refused, with the hint to save it instead.
    tmux.type_line("logo.png");
    let screen = tmux.wait_prompt(4);
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
    tmux.type_line("ls --nodes");
    let screen = tmux.wait_prompt(5);
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
    tmux.type_line("peers");
    let screen = tmux.wait_prompt(6);
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
    tmux.type_line(&format!("get logo.png -o {}", target.display()));
    let screen = tmux.wait_prompt(7);
    let answer = after_prompt(&screen, 6);
    assert!(
        answer.contains(&format!("saved logo.png to {}", target.display())),
        "{answer}"
    );
    assert_eq!(fs::read(&target).unwrap(), logo);

    // History: Up recalls the last lines, newest first; Enter runs one again.
    tmux.keys(&["Up"]);
    let get_line = format!("file name> get logo.png -o {}", target.display());
    tmux.wait_until("the get line recalled", |s| last_line(s) == get_line);
    tmux.keys(&["Up"]);
    tmux.wait_until("the peers line recalled", |s| {
        last_line(s) == "file name> peers"
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_prompt(8);
    assert!(
        after_prompt(&screen, 7).contains("\n3 active nodes\n"),
        "{screen}"
    );

    // Ctrl-C drops the line being typed and keeps the prompt.
    tmux.run(&["send-keys", "-t", "t", "-l", "half a na"]);
    tmux.wait_until("the half-typed line", |s| {
        last_line(s) == "file name> half a na"
    });
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_prompt(9);
    assert!(
        screen.contains("(type quit or press Ctrl-D to leave)"),
        "{screen}"
    );
    assert!(
        !screen.contains("not found on any"),
        "Ctrl-C ran the line:\n{screen}"
    );
    assert_eq!(tmux.exit_status(), None, "Ctrl-C ended the client");

    // quit ends it; the refused logo.png makes the status 1, as a missing
    // file would.
    tmux.type_line("quit");
    assert_eq!(tmux.wait_exit(), 1, "{}", tmux.screen());
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
    let tmux = Tmux::start(&format!(
        "{} 127.0.0.1 {}",
        quote(bin("peer-client")),
        relay.port()
    ));
    tmux.wait_prompt(1);

    // One candidate: completed in place, quoted because of its space.
    tmux.run(&["send-keys", "-t", "t", "-l", "get my"]);
    tmux.keys(&["Tab"]);
    tmux.wait_until("the completed name", |s| {
        last_line(s) == "file name> get 'my report.txt'"
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_prompt(2);
    assert!(
        after_prompt(&screen, 1).contains("\nquarterly\n"),
        "{screen}"
    );

    // A command completes too.
    tmux.run(&["send-keys", "-t", "t", "-l", "pee"]);
    tmux.keys(&["Tab"]);
    tmux.wait_until("the completed command", |s| {
        last_line(s) == "file name> peers"
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_prompt(3);
    assert!(
        after_prompt(&screen, 2).contains("1 active node"),
        "{screen}"
    );

    // A bare name completes without quotes.
    tmux.run(&["send-keys", "-t", "t", "-l", "zeb"]);
    tmux.keys(&["Tab"]);
    tmux.wait_until("the completed bare name", |s| {
        last_line(s) == "file name> zebra.txt"
    });
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_prompt(4);
    assert!(after_prompt(&screen, 3).contains("\nstripes\n"), "{screen}");
    tmux.type_line("quit");
    assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen());
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
    let tmux = Tmux::start(&command);
    tmux.wait_prompt(1);
    for (n, line) in ["hello.txt", "logo.png", "ls --nodes", "peers", "help"]
        .iter()
        .enumerate()
    {
        tmux.type_line(line);
        tmux.wait_prompt(n + 2);
    }
    tmux.keys(&["C-d"]);
    assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen());
    let screen = tmux.screen();
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
    let tmux = Tmux::start(&client_command(&cluster, "logo.png"));
    assert_eq!(tmux.wait_exit(), 2);
    let screen = tmux.screen();
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
    let tmux = Tmux::start(&client_command(
        &cluster,
        &format!("big.bin -o {}", quote(&target)),
    ));
    assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        summary_line(&screen, "64.00 MiB").is_some(),
        "no summary of the finished bar:\n{screen}"
    );
    assert!(screen.contains("saved big.bin to"), "{screen}");
    assert_eq!(fs::metadata(&target).unwrap().len(), SIZE as u64);

    // stdout redirected to a file: the bar shows all the same, as curl's.
    let target = saved.join("redirected.bin");
    let tmux = Tmux::start(&client_command(
        &cluster,
        &format!("big.bin > {}", quote(&target)),
    ));
    assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(
        summary_line(&screen, "64.00 MiB").is_some(),
        "no bar with stdout redirected:\n{screen}"
    );
    assert_eq!(fs::read(&target).unwrap(), big);

    let target = saved.join("quiet.bin");
    let tmux = Tmux::start(&client_command(
        &cluster,
        &format!("-q big.bin -o {}", quote(&target)),
    ));
    assert_eq!(tmux.wait_exit(), 0, "{}", tmux.screen());
    let screen = tmux.screen();
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
        let tmux = Tmux::start(&client_command(&cluster, args));
        assert_eq!(tmux.wait_exit(), 0, "{args}: {}", tmux.screen());
        let screen = tmux.screen();
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
    let tmux = Tmux::start(&client_command(
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
    tmux.wait_until("the progress bar", |s| s.contains("/1.00 GiB"));
    tmux.keys(&["C-c"]);
    assert_eq!(tmux.wait_exit(), 130, "{}", tmux.screen());
    let screen = tmux.screen();
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
    let tmux = Tmux::start(&client_command(&cluster, ""));
    tmux.wait_prompt(1);
    let get = format!("get huge.bin -o {}", target.display());
    tmux.type_line(&get);
    let part = saved.join(".huge.bin.part");
    let deadline = Instant::now() + SCREEN;
    while !fs::metadata(&part).is_ok_and(|m| m.len() > 0) {
        assert!(Instant::now() < deadline, "no bytes in {}", part.display());
        thread::sleep(Duration::from_millis(2));
    }
    node.signal(libc::SIGSTOP);
    tmux.wait_until("the progress bar", |s| s.contains("/1.00 GiB"));

    // The node sends nothing now: the fetch waits on its socket, and
    // Ctrl-C must cut it rather than wait for the 30 s timeout.
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_prompt(2);
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
    assert_eq!(tmux.exit_status(), None, "Ctrl-C ended the client");
    assert!(!target.exists());
    assert!(part.exists(), "the part was not kept");
    node.signal(libc::SIGCONT);

    // History intact: Up recalls the get, and Enter resumes it.
    tmux.keys(&["Up"]);
    let recalled = format!("{PROMPT} {get}");
    tmux.wait_until("the get line recalled", |s| last_line(s) == recalled);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_until("the resumed save", |s| {
        prompts(s) == 3 && last_line(s) == PROMPT
    });
    let answer = after_prompt(&screen, 2);
    assert!(answer.contains("huge.bin: resuming at"), "{answer}");
    assert!(answer.contains("saved huge.bin to"), "{answer}");
    assert_eq!(fs::metadata(&target).unwrap().len(), HUGE);

    // Ctrl-C at the idle prompt drops the line being typed, as before.
    tmux.run(&["send-keys", "-t", "t", "-l", "half"]);
    tmux.wait_until("the half-typed line", |s| {
        last_line(s) == format!("{PROMPT} half")
    });
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_prompt(4);
    assert!(
        after_prompt(&screen, 3).contains("(type quit or press Ctrl-D to leave)"),
        "{screen}"
    );
    // The stopped get counts as a file not fetched.
    tmux.type_line("quit");
    assert_eq!(tmux.wait_exit(), 1, "{}", tmux.screen());
}
