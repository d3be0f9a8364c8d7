//! The harness every end-to-end test shares: it starts the real `relay`,
//! `peer-node` and `peer-client` binaries as processes on free ports, waits
//! for readiness by reading their output (never by sleeping), gives each test
//! its own temp dir, and kills every child on drop, also when a test panics.
//!
//! [`Client`] is a client the test drives by hand (signals mid-transfer).
//!
//! [`tmux`] is a terminal for tests of what a person sees.
//!
//! [`netns`] is the lab for tests on separate hosts (network namespaces on a
//! bridge, routers with NAT, shaped links); [`capture`] gathers what a
//! private network lets out (loopback captures, core dumps).

pub mod capture;
pub mod content;
pub mod delay;
mod driven;
pub mod netns;
pub mod tmux;

pub use driven::Client;

use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for a program to become ready before failing.
pub const READY: Duration = Duration::from_secs(20);

/// The path of one of the workspace's binaries, built on first use in the
/// same profile as the running test.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile>/deps/<test-binary>
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps")
            .to_path_buf();
        if std::env::var_os("P2P_SKIP_BUILD").is_none() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "relay",
                    "-p",
                    "peer-node",
                    "-p",
                    "peer-client",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cannot run cargo build");
            assert!(status.success(), "cargo build of the binaries failed");
        }
        profile_dir
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A copy of one of the workspace's binaries that any user may run: for a
/// test that runs it as another user (as root, `nobody`, so that file
/// permissions apply). The build's own `target/` can sit where only its
/// owner may enter (a clone in /root, mode 0700), so the copy lives in a
/// temp dir of its own, mode 0755, removed on drop.
pub struct AnyoneBin {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl AnyoneBin {
    pub fn copy(name: &str) -> AnyoneBin {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("p2p-bin-")
            .tempdir()
            .expect("temp dir for a binary");
        let public = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dir.path(), public.clone()).unwrap();
        let path = dir.path().join(name);
        std::fs::copy(bin(name), &path)
            .unwrap_or_else(|e| panic!("cannot copy {name} to {}: {e}", path.display()));
        std::fs::set_permissions(&path, public).unwrap();
        assert_anyone_can_reach(&path);
        AnyoneBin { path, _dir: dir }
    }
}

/// Panics, naming the directory, unless every directory above `path` lets
/// any user through (others may search it): otherwise another user cannot
/// start or open `path`, and the test would fail with a bare "Permission
/// denied".
pub fn assert_anyone_can_reach(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for dir in path.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is mode {:o}: another user cannot reach {} (set TMPDIR to a directory anyone \
             may enter, such as /tmp)",
            dir.display(),
            mode & 0o7777,
            path.display()
        );
    }
}

/// Lines a child wrote, shared with the thread that reads them.
#[derive(Default)]
struct Captured {
    text: Mutex<String>,
    grew: Condvar,
    /// Set when a reader told to stall may read again.
    resume: Mutex<bool>,
    resumed: Condvar,
}

impl Captured {
    /// Reads lines from `stream` until its end or, with `stop_after`, until
    /// a line containing that text; then drops `stream` (its read end), or
    /// stalls until [`Captured::resume`] and then reads on to the end.
    fn spawn_reader(
        self: &Arc<Self>,
        stream: impl Read + Send + 'static,
        stop_after: Option<(String, AfterLast)>,
    ) -> thread::JoinHandle<()> {
        let me = Arc::clone(self);
        thread::spawn(move || {
            let mut stop_after = stop_after;
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let piece = String::from_utf8_lossy(&line);
                let stop = stop_after
                    .as_ref()
                    .filter(|(last, _)| piece.contains(last.as_str()))
                    .map(|(_, after)| *after);
                let mut text = me.text.lock().unwrap();
                text.push_str(&piece);
                match stop {
                    Some(AfterLast::Close) => {
                        text.push_str("(here the test closed the read end of stderr)\n")
                    }
                    Some(AfterLast::Stall) => {
                        text.push_str("(here the test stopped reading stderr)\n")
                    }
                    None => {}
                }
                me.grew.notify_all();
                match stop {
                    Some(AfterLast::Close) => return,
                    Some(AfterLast::Stall) => {
                        drop(text);
                        // Hold the read end open, unread, until resumed.
                        let mut resume = me.resume.lock().unwrap();
                        while !*resume {
                            resume = me.resumed.wait(resume).unwrap();
                        }
                        drop(resume);
                        // Once: from here on it reads to the end.
                        stop_after = None;
                        me.text
                            .lock()
                            .unwrap()
                            .push_str("(here the test read stderr again)\n");
                        line.clear();
                        continue;
                    }
                    None => {}
                }
                drop(text);
                line.clear();
            }
        })
    }

    /// Waits until the text contains `needle` in a line; returns that line.
    fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut text = self.text.lock().unwrap();
        loop {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Some(line.to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            text = self.grew.wait_timeout(text, left).unwrap().0;
        }
    }

    /// Lets a stalled reader read again.
    fn resume(&self) {
        *self.resume.lock().unwrap() = true;
        self.resumed.notify_all();
    }

    fn count(&self, needle: &str) -> usize {
        self.text
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

/// What the stderr reader does after the line it was told to stop at.
#[derive(Debug, Clone, Copy)]
enum AfterLast {
    /// Closes the read end: writes fail with EPIPE.
    Close,
    /// Keeps the read end open and reads no more until told to (see
    /// [`Proc::resume_stderr`]): once the pipe is full, writes block.
    Stall,
}

/// A running child process with its stderr captured; killed on drop.
pub struct Proc {
    name: String,
    child: Option<Child>,
    stderr: Arc<Captured>,
    /// A copy of the read end of a stderr the test stalls, to fill it.
    stalled: Option<OwnedFd>,
}

impl Proc {
    /// Starts `cmd` with stderr captured and stdin, stdout discarded.
    pub fn spawn(name: &str, cmd: Command) -> Proc {
        Proc::spawn_reading(name, cmd, None)
    }

    /// Like [`Proc::spawn`], but stops reading stderr after the first line
    /// containing `last` and closes the pipe's read end, as `2>&1 | head -1`
    /// or a log reader that died would: from then on every write the child
    /// makes to stderr fails with EPIPE. Its log ends at that line.
    pub fn spawn_then_close_stderr(name: &str, cmd: Command, last: &str) -> Proc {
        Proc::spawn_reading(name, cmd, Some(last.to_string()))
    }

    /// Like [`Proc::spawn_then_close_stderr`], but keeps the pipe open and
    /// just stops reading it, as a log reader that hangs would: once the
    /// pipe's buffer is full, every write the child makes to stderr blocks
    /// (see [`Proc::fill_stderr`]), until [`Proc::resume_stderr`].
    pub fn spawn_then_stall_stderr(name: &str, cmd: Command, last: &str) -> Proc {
        Proc::spawn_with(name, cmd, Some((last.to_string(), AfterLast::Stall)))
    }

    fn spawn_reading(name: &str, cmd: Command, stop_after: Option<String>) -> Proc {
        Proc::spawn_with(name, cmd, stop_after.map(|s| (s, AfterLast::Close)))
    }

    fn spawn_with(name: &str, mut cmd: Command, stop_after: Option<(String, AfterLast)>) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let pipe = child.stderr.take().unwrap();
        let stalled = match stop_after {
            Some((_, AfterLast::Stall)) => Some(
                pipe.as_fd()
                    .try_clone_to_owned()
                    .expect("a copy of the stderr pipe"),
            ),
            _ => None,
        };
        let stderr = Arc::new(Captured::default());
        stderr.spawn_reader(pipe, stop_after);
        Proc {
            name: name.to_string(),
            child: Some(child),
            stderr,
            stalled,
        }
    }

    /// Fills the pipe of a stderr the test stalls (or will stall) to its
    /// last byte, with empty lines: from then on, until the test reads
    /// again, any write the child makes to stderr blocks, as under a log
    /// reader that stopped long ago.
    pub fn fill_stderr(&self) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let pipe = self
            .stalled
            .as_ref()
            .expect("only a stderr from spawn_then_stall_stderr can be filled");
        // A write end of its own (another open file description of the same
        // pipe), so that O_NONBLOCK does not reach the child's write end.
        let mut filler = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(format!("/proc/self/fd/{}", pipe.as_raw_fd()))
            .expect("a write end on the stderr pipe");
        let newlines = [b'\n'; 4096];
        // Writes of up to 4 KiB (PIPE_BUF) are all or nothing: halve the
        // size down to a byte, and the pipe has no room left at all.
        let mut size = newlines.len();
        loop {
            match filler.write(&newlines[..size]) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && size > 1 => size /= 2,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("cannot fill the stderr pipe of {}: {e}", self.name),
            }
        }
    }

    /// A stalled stderr is read again, from where the test stopped.
    pub fn resume_stderr(&self) {
        self.stderr.resume();
    }

    /// Waits for a stderr line containing `needle`; panics with the log if
    /// it does not come within `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        self.stderr.wait_for(needle, timeout).unwrap_or_else(|| {
            panic!(
                "{} ({}) did not print {needle:?} within {timeout:?}; its log:\n{}",
                self.name,
                self.state(),
                self.log()
            )
        })
    }

    /// Whether the process still runs, or how it ended, without reaping it:
    /// for failure messages.
    pub fn state(&self) -> String {
        let Some(child) = &self.child else {
            return "killed by the test".into();
        };
        // SAFETY: waitid with WNOWAIT only inspects our own child's state and
        // writes into the zeroed siginfo we own.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            if libc::waitid(libc::P_PID, child.id(), &mut info, flags) != 0 || info.si_pid() == 0 {
                return "still running".into();
            }
            match info.si_code {
                libc::CLD_EXITED => format!("exited with status {}", info.si_status()),
                _ => format!("killed by signal {}", info.si_status()),
            }
        }
    }

    /// Like [`Proc::wait_for`] but returns None instead of panicking.
    pub fn try_wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.stderr.wait_for(needle, timeout)
    }

    /// How many stderr lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.stderr.count(needle)
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.text.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal (SIGTERM, SIGINT, SIGKILL...).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) with our own child's pid has no memory effects.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        // A stalled reader reads what is left, to the end, and its thread
        // ends rather than wait for the rest of the test process.
        self.stderr.resume();
    }
}

/// A port nothing listens on right now: a relay that is down, or one to
/// start later. (Another process may take it meanwhile; tests use it only
/// where that would fail loudly, not silently.)
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("a bound address").port()
}

/// Parses the address at the end of a log line such as
/// `... listening on 127.0.0.1:4000 (ttl 30s)` after `marker`.
pub fn addr_after(line: &str, marker: &str) -> SocketAddr {
    let rest = &line[line
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {line:?}"))
        + marker.len()..];
    let word = rest.split_whitespace().next().unwrap_or("");
    let word = word.trim_end_matches([',', ')']);
    word.parse()
        .unwrap_or_else(|e| panic!("cannot parse an address from {word:?} in {line:?}: {e}"))
}

/// A running relay.
pub struct Relay {
    pub proc: Proc,
    /// Where it listens (its bind address with the chosen port).
    pub addr: SocketAddr,
}

impl Relay {
    /// `relay 0 --bind 127.0.0.1` plus `args`; returns once it listens.
    pub fn start(args: &[&str]) -> Relay {
        Relay::start_on("127.0.0.1", args)
    }

    /// Like [`Relay::start`], bound to `bind` (an IP, `::` for all interfaces).
    pub fn start_on(bind: &str, args: &[&str]) -> Relay {
        Relay::start_on_port(bind, 0, args)
    }

    /// On a given port (to restart a relay where it was).
    pub fn start_on_port(bind: &str, port: u16, args: &[&str]) -> Relay {
        let mut cmd = Command::new(bin("relay"));
        cmd.arg(port.to_string()).args(["--bind", bind]).args(args);
        let proc = Proc::spawn("relay", cmd);
        let line = proc.wait_for("listening on", READY);
        let addr = addr_after(&line, "listening on ");
        Relay { proc, addr }
    }

    /// The port clients and nodes should use.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A running peer node.
pub struct Node {
    pub proc: Proc,
    /// Where it listens.
    pub listen: SocketAddr,
    /// The address the relay listed it under.
    pub listed: SocketAddr,
    pub dir: PathBuf,
    /// The node's hash cache (its default, through XDG_CACHE_HOME) and
    /// config dir (XDG_CONFIG_HOME), so no test writes to the real home;
    /// removed after the process is killed.
    _cache: Option<tempfile::TempDir>,
}

impl Node {
    /// `peer-node 127.0.0.1 RELAY_PORT DIR` plus `args`; returns once registered.
    pub fn start(relay: &Relay, dir: &Path, args: &[&str]) -> Node {
        let node = Node::spawn("127.0.0.1", relay.port(), dir, args);
        node.until_registered()
    }

    /// Starts without waiting for registration (the relay may be down).
    pub fn spawn(relay_host: &str, relay_port: u16, dir: &Path, args: &[&str]) -> Node {
        Node::spawn_with(relay_host, relay_port, dir, args, |_| {})
    }

    /// Like [`Node::spawn`], letting `adjust` change the command first
    /// (environment, user) before it starts.
    pub fn spawn_with(
        relay_host: &str,
        relay_port: u16,
        dir: &Path,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Node {
        Node::spawn_program(&bin("peer-node"), relay_host, relay_port, dir, args, adjust)
    }

    /// Like [`Node::spawn_with`], running `program` (a copy of peer-node,
    /// such as an [`AnyoneBin`]).
    pub fn spawn_program(
        program: &Path,
        relay_host: &str,
        relay_port: u16,
        dir: &Path,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Node {
        let mut cmd = Command::new(program);
        cmd.arg(relay_host)
            .arg(relay_port.to_string())
            .arg(dir)
            .args(args);
        let cache = tempfile::tempdir().expect("temp dir for the hash cache");
        cmd.env("XDG_CACHE_HOME", cache.path());
        // Key files and claims (peer-node's identity and claim) too.
        cmd.env("XDG_CONFIG_HOME", cache.path().join("config"));
        adjust(&mut cmd);
        let proc = Proc::spawn("peer-node", cmd);
        let line = proc.wait_for("listening on", READY);
        let listen = addr_after(&line, "listening on ");
        Node {
            proc,
            listen,
            listed: listen,
            dir: dir.to_path_buf(),
            _cache: Some(cache),
        }
    }

    /// Waits until the node has registered; records the listed address.
    pub fn until_registered(mut self) -> Node {
        let line = self.proc.wait_for("registered with relay", READY);
        self.listed = addr_after(&line, " as ");
        self
    }

    /// Waits until the relay has this node's catalog: from then on the
    /// relay's index names it among a file's holders, in registration order.
    /// A test that needs holders asked in a known order waits for every one.
    pub fn until_indexed(self) -> Node {
        self.proc.wait_for("catalog at relay", READY);
        self
    }
}

/// A test-only node: it registers with the relay like a peer-node, then
/// answers each request with whatever bytes `answer` returns for it (a
/// frame, and what follows one), so a test can play a node that lies, or an
/// older node. Stops accepting on drop.
pub struct FakeNode {
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeNode {
    pub fn start(
        relay: &Relay,
        answer: impl Fn(proto::Request) -> Vec<u8> + Send + Sync + 'static,
    ) -> FakeNode {
        use net::exchange::{Timeouts, call};
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a fake node");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let stopping = Arc::clone(&stop);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let answer = Arc::clone(&answer);
                thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
                    let Ok(request) = proto::frame::read::<proto::Request>(&mut stream) else {
                        return;
                    };
                    let _ = std::io::Write::write_all(&mut stream, &answer(request));
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    let _ = std::io::copy(&mut stream, &mut std::io::sink());
                });
            }
        });
        let registration = proto::Request::Register(proto::Registration {
            port: addr.port(),
            advertised_ip: None,
            token: None,
        });
        match call(relay.addr, &registration, &Timeouts::default()) {
            Ok(proto::Response::Registered(_)) => {}
            other => panic!("the fake node could not register: {other:?}"),
        }
        FakeNode { addr, stop }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// `frame` of `response`, as a fake node sends it.
pub fn frame_of(response: &proto::Response) -> Vec<u8> {
    proto::frame::encode(response).expect("encode a response")
}

/// A finished client run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A `peer-client` command against `relay`, ready for more arguments.
pub fn client(relay_port: u16) -> Command {
    let mut cmd = Command::new(bin("peer-client"));
    cmd.arg("127.0.0.1").arg(relay_port.to_string());
    cmd
}

/// Runs a client command to completion with `stdin` as its input, killing
/// it if it takes longer than `timeout`.
pub fn run(cmd: Command, stdin: &[u8], timeout: Duration) -> Run {
    start_client(cmd, stdin, None).finish(timeout)
}

/// A relay and `n` nodes over their own temp dirs (`node1`, `node2`, ...).
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub relay: Relay,
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    /// Starts a relay and `n` nodes over empty directories; `fill` writes
    /// each node's files before it starts (index from 0). Returns once every
    /// node is registered (its catalog may still be on its way). All the
    /// nodes register from 127.0.0.1, so the relay's per-address cap is
    /// raised to fit them (it stays at its default of 16 for fewer).
    pub fn start(n: usize, fill: impl Fn(usize, &Path)) -> Cluster {
        let tmp = tempfile::tempdir().expect("temp dir");
        let cap = n.max(16).to_string();
        let relay = Relay::start(&["--max-nodes-per-ip", &cap]);
        let mut nodes = Vec::new();
        for i in 0..n {
            let dir = tmp.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(&dir).unwrap();
            fill(i, &dir);
            let node = Node::spawn("127.0.0.1", relay.port(), &dir, &[]);
            if node
                .proc
                .try_wait_for("registered with relay", READY)
                .is_none()
            {
                panic!(
                    "node {} did not register within {READY:?}.\nnode log:\n{}\nrelay ({}) log:\n{}",
                    i + 1,
                    node.proc.log(),
                    relay.proc.state(),
                    relay.proc.log()
                );
            }
            nodes.push(node.until_registered());
        }
        Cluster { nodes, relay, tmp }
    }

    /// A client command against this cluster's relay.
    pub fn client(&self) -> Command {
        client(self.relay.port())
    }

    /// Runs the client with `args` and no stdin.
    pub fn fetch(&self, args: &[&str]) -> Run {
        let mut cmd = self.client();
        cmd.args(args);
        run(cmd, b"", Duration::from_secs(60))
    }
}

/// A client started by [`start_client`] and not yet finished; killed on drop.
pub struct Running {
    child: Option<Child>,
    stdout: Option<thread::JoinHandle<Vec<u8>>>,
    stderr: Option<thread::JoinHandle<String>>,
}

/// Starts a client command with `stdin` as its input, without waiting for
/// it. Its stdout goes to the file `stdout_file` (created or truncated) when
/// given, so many large downloads need not sit in memory; otherwise it is
/// captured as [`run`] does.
pub fn start_client(mut cmd: Command, stdin: &[u8], stdout_file: Option<&Path>) -> Running {
    let stdout = match stdout_file {
        Some(path) => Stdio::from(
            std::fs::File::create(path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display())),
        ),
        None => Stdio::piped(),
    };
    cmd.stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start the client");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Dropping `input` at the end closes the client's stdin (end of input).
    thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut input, &stdin);
    });
    let stdout = child.stdout.take().map(|mut out| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        })
    });
    let stderr = collect_stderr(&mut child);
    Running {
        child: Some(child),
        stdout,
        stderr: Some(stderr),
    }
}

/// A thread that reads all of a child's stderr, for the test's messages.
fn collect_stderr(child: &mut Child) -> thread::JoinHandle<String> {
    let mut err = child.stderr.take().expect("stderr is piped");
    thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Waits for a client to exit; kills it and panics with its stderr (the
/// thread collecting it) if that takes longer than `timeout`.
fn wait_or_kill(
    mut child: Child,
    stderr: &mut Option<thread::JoinHandle<String>>,
    timeout: Duration,
) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.take().unwrap().join().unwrap();
            panic!("client did not finish within {timeout:?}; its stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

impl Running {
    /// Waits for the client to exit; kills it and panics with its stderr if
    /// that takes longer than `timeout`. `Run::stdout` is empty when stdout
    /// went to a file.
    pub fn finish(mut self, timeout: Duration) -> Run {
        let child = self.child.take().unwrap();
        let status = wait_or_kill(child, &mut self.stderr, timeout);
        Run {
            status,
            stdout: self
                .stdout
                .take()
                .map(|h| h.join().unwrap())
                .unwrap_or_default(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client whose stdout is read only as the test asks, so that a transfer
/// can be held in the middle (the client blocks on a full pipe, and the
/// node and any relay between them on full socket buffers). Killed on drop.
pub struct Held {
    child: Option<Child>,
    stdout: std::process::ChildStdout,
    stderr: Option<thread::JoinHandle<String>>,
    /// What was read from its stdout so far.
    pub got: Vec<u8>,
}

/// Starts `cmd` with stdin closed and stdout held (see [`Held`]).
pub fn start_held(mut cmd: Command) -> Held {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start the client");
    let stdout = child.stdout.take().unwrap();
    let stderr = collect_stderr(&mut child);
    Held {
        child: Some(child),
        stdout,
        stderr: Some(stderr),
        got: Vec::new(),
    }
}

impl Held {
    /// Reads until at least `n` bytes came in all (or stdout ended; the
    /// client's own timeouts bound how long that takes).
    pub fn read_at_least(&mut self, n: usize) {
        let mut buf = vec![0u8; 64 * 1024];
        while self.got.len() < n {
            match self.stdout.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(k) => self.got.extend_from_slice(&buf[..k]),
            }
        }
    }

    /// Reads the rest and waits for the exit, at most `timeout`.
    pub fn finish(mut self, timeout: Duration) -> Run {
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        self.got.extend_from_slice(&rest);
        let child = self.child.take().unwrap();
        let status = wait_or_kill(child, &mut self.stderr, timeout);
        Run {
            status,
            stdout: std::mem::take(&mut self.got),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP connection to `to` from the address `from` (any port: 127/8 is
/// all loopback, so a test can be many hosts), with the receive buffer
/// capped at `rcvbuf` bytes when given. std cannot bind a client socket
/// before connecting, so this speaks to libc directly.
pub fn connect_from(
    from: Option<Ipv4Addr>,
    to: SocketAddr,
    rcvbuf: Option<i32>,
) -> io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        panic!("{to} is not IPv4")
    };
    let check = |ret: libc::c_int| {
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    };
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor that `stream` owns from the
    // start (so it is closed on every error path); each pointer passed
    // points to a live local of the size passed with it.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let stream = TcpStream::from_raw_fd(fd);
        if let Some(size) = rcvbuf {
            check(libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&raw const size).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            ))?;
        }
        if let Some(ip) = from {
            // Without this, bind picks a port before it knows the
            // destination, and one source address runs out of ports after
            // some 28 000 connections.
            let one: libc::c_int = 1;
            check(libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            ))?;
            let local = sockaddr(ip, 0);
            check(libc::bind(fd, (&raw const local).cast(), len))?;
        }
        let remote = sockaddr(*to.ip(), to.port());
        check(libc::connect(fd, (&raw const remote).cast(), len))?;
        Ok(stream)
    }
}

fn sockaddr(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data, for which all zeroes is valid.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    sa.sin_addr = libc::in_addr {
        s_addr: u32::from(ip).to_be(),
    };
    sa
}
