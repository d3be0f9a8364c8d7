//! The programs under test as child processes: the release binaries, each
//! child's stderr in a log file that is polled for readiness (a file, not a
//! pipe, so no reader thread of ours competes for the CPU during a
//! measurement and a chatty relay never blocks on a full pipe), and memory
//! figures from /proc and wait4.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a program may take to print its readiness line.
const READY: Duration = Duration::from_secs(20);

/// Longest wait for a node's startup scan of a big file.
const HASHED: Duration = Duration::from_secs(180);

/// Where the release binaries of relay, peer-node and peer-client are.
pub struct Bins {
    dir: PathBuf,
}

impl Bins {
    /// `dir` if given; otherwise `target/release` beside this benchmark's own
    /// binary, after `cargo build --release` of the three programs when
    /// `build` is set.
    pub fn prepare(dir: Option<PathBuf>, build: bool) -> Result<Bins, String> {
        let dir = match dir {
            Some(dir) => dir,
            None => {
                if build {
                    build_release()?;
                }
                release_dir()?
            }
        };
        for name in ["relay", "peer-node", "peer-client"] {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(format!(
                    "{} is missing: run `cargo build --release` first, or pass --bin-dir",
                    path.display()
                ));
            }
        }
        Ok(Bins { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The workspace root: two levels above this crate's manifest.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/release`, found from our own path (`target/<profile>/p2p-bench`)
/// so that `CARGO_TARGET_DIR` is honoured.
fn release_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not inside a target directory", exe.display()))?;
    Ok(target.join("release"))
}

fn build_release() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the release binaries (cargo build --release)...");
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet"])
        .args(["-p", "relay", "-p", "peer-node", "-p", "peer-client"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed: {status}"));
    }
    Ok(())
}

/// A long-running child (relay or node); killed and reaped on drop.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `cmd` with stderr going to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Result<Proc, String> {
        let stderr =
            File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// Waits for a log line containing `needle`; returns that line.
    pub fn wait_for(&mut self, needle: &str) -> Result<String, String> {
        self.wait_within(needle, READY)
    }

    /// Waits for a node's startup scan to have hashed its one file. The
    /// scan runs at nice 19: beside `--busy` threads a 1 GiB file took
    /// longer than [`READY`] to hash.
    pub fn wait_hashed(&mut self) -> Result<String, String> {
        self.wait_within("hashed 1 shared files", HASHED)
    }

    fn wait_within(&mut self, needle: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            // Whole lines only: the program may be writing the last one
            // right now (a busy machine once showed "listening on " alone).
            let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
            if let Some(line) = whole.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before {needle:?}:\n{text}",
                    self.name
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not print {needle:?} within {within:?}:\n{text}",
                    self.name
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Fails with the log if the process has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}):\n{}",
                self.name,
                fs::read_to_string(&self.log).unwrap_or_default()
            )),
            Err(e) => Err(format!("cannot wait for {}: {e}", self.name)),
        }
    }

    /// The address printed after `marker` on the first line containing it.
    pub fn wait_for_addr(&mut self, marker: &str) -> Result<SocketAddr, String> {
        let line = self.wait_for(marker)?;
        addr_after(&line, marker)
    }

    /// Current and peak resident memory.
    pub fn memory(&self) -> Result<Memory, String> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let field = |name: &str| -> Result<u64, String> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .ok_or_else(|| format!("no {name} in {path}"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    /// Resets the peak (VmHWM) to the current RSS, so the next peak read
    /// covers only what happens from now on.
    pub fn reset_peak(&self) -> Result<(), String> {
        let path = format!("/proc/{}/clear_refs", self.child.id());
        fs::write(&path, "5").map_err(|e| format!("cannot reset the peak RSS through {path}: {e}"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Parses the address that follows `marker` in a log line such as
/// `... listening on 127.0.0.1:4000 (ttl 30s)`.
pub fn addr_after(line: &str, marker: &str) -> Result<SocketAddr, String> {
    let start = line
        .find(marker)
        .ok_or_else(|| format!("no {marker:?} in {line:?}"))?
        + marker.len();
    let word = line[start..].split_whitespace().next().unwrap_or("");
    let word = word.trim_end_matches([',', ')']);
    word.parse()
        .map_err(|e| format!("cannot parse an address from {word:?} in {line:?}: {e}"))
}

/// A run of a short-lived program (peer-client, the raw receiver) that has ended.
pub struct ClientRun {
    /// From spawn to exit: process start, the relay's list, the transfer.
    pub elapsed: Duration,
    /// Peak resident memory (ru_maxrss), in KiB.
    pub peak_kib: u64,
    /// CPU time, user and system, of the process and its threads.
    pub cpu: Duration,
}

/// Runs peer-client with `args` and stdout on /dev/null; fails unless it
/// exits 0. Its stderr goes to `log`.
pub fn run_client<S: AsRef<OsStr>>(
    bins: &Bins,
    args: &[S],
    log: &Path,
) -> Result<ClientRun, String> {
    run_to_exit(&bins.path("peer-client"), args, log)
}

/// Runs `program` with stdout on /dev/null and stderr to `log`, timed
/// from spawn to exit; fails unless it exits 0.
pub fn run_to_exit<S: AsRef<OsStr>>(
    program: &Path,
    args: &[S],
    log: &Path,
) -> Result<ClientRun, String> {
    let stderr = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let stdout = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let name = program
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    // Reaped here with wait4 for its rusage; std's Child never waits on drop.
    let (status, usage) = wait4(child.id()).map_err(|e| format!("wait4 failed: {e}"))?;
    let elapsed = start.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let text = fs::read_to_string(log).unwrap_or_default();
        return Err(format!("{name} failed (wait status {status:#x}):\n{text}"));
    }
    Ok(ClientRun {
        elapsed,
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
    })
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

/// Waits for child `pid` and returns its wait status and resource usage.
fn wait4(pid: u32) -> io::Result<(i32, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    let mut status = 0;
    // SAFETY: rusage is plain old data, for which all zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r >= 0 {
            return Ok((status, usage));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Starts a relay on a free loopback port with a TTL long enough that no
/// node expires during a run.
pub fn start_relay(bins: &Bins, log: PathBuf) -> Result<(Proc, SocketAddr), String> {
    start_relay_with(bins, log, &[])
}

/// Like [`start_relay`], with more arguments (`--no-relaying` for a table
/// of fake nodes, which dial-back would refuse: nothing listens there).
pub fn start_relay_with(
    bins: &Bins,
    log: PathBuf,
    args: &[&str],
) -> Result<(Proc, SocketAddr), String> {
    let mut cmd = Command::new(bins.path("relay"));
    cmd.args(["0", "--bind", "127.0.0.1", "--ttl", "3600"])
        .args(args);
    let mut relay = Proc::spawn("relay", cmd, log)?;
    let addr = relay.wait_for_addr("listening on ")?;
    Ok((relay, addr))
}

/// Starts a node sharing `dir` and waits until the relay lists it, so
/// nodes started one after another are listed in that order.
pub fn start_node(
    bins: &Bins,
    relay: SocketAddr,
    dir: &Path,
    log: PathBuf,
) -> Result<Proc, String> {
    let mut cmd = Command::new(bins.path("peer-node"));
    cmd.arg("127.0.0.1")
        .arg(relay.port().to_string())
        .arg(dir)
        .args(["--bind", "127.0.0.1"]);
    // Its hash cache and claims beside the log, not in the home directory.
    if let Some(logs) = log.parent() {
        cmd.env("XDG_CACHE_HOME", logs.join("node-cache"));
        cmd.env("XDG_CONFIG_HOME", logs.join("node-config"));
    }
    let mut node = Proc::spawn("peer-node", cmd, log)?;
    node.wait_for("registered with relay")?;
    Ok(node)
}
