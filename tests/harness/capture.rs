//! What a private network lets out, gathered for a test to search: a
//! tcpdump capture on loopback ([`Capture`]), and a core dump of a running
//! process ([`core_of`], gdb's gcore). The private-network tests
//! (tests/secret.rs, tests/blind.rs) look in them for names, contents and
//! hashes that must not be there.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::{Proc, READY};

/// tcpdump on loopback, for the packets to and from some ports; stopped
/// and read back by [`Capture::bytes`].
pub struct Capture {
    proc: Proc,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing to a file in `dir` the packets to and from `ports`,
    /// and returns once tcpdump listens.
    pub fn start(dir: &Path, ports: &[u16]) -> Capture {
        let file = dir.join("capture.pcap");
        let filter = ports
            .iter()
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut cmd = Command::new("tcpdump");
        // Immediate mode: each packet is written as it comes, not when a
        // kernel buffer block fills or times out. A 64 MiB buffer: a busy
        // machine's default overflows.
        cmd.args([
            "-i",
            "lo",
            "--immediate-mode",
            "-U",
            "-n",
            "-s",
            "0",
            "-B",
            "65536",
            "-w",
        ])
        .arg(&file)
        .arg(filter);
        let proc = Proc::spawn("tcpdump", cmd);
        proc.wait_for("listening on lo", READY);
        Capture { proc, file }
    }

    /// Stops the capture (SIGINT, so the file is complete) once it holds
    /// at least `min` bytes (or after a while), and returns it.
    pub fn bytes(self, min: usize) -> Vec<u8> {
        self.bytes_and_log(min).0
    }

    /// The capture, and what tcpdump said.
    pub fn bytes_and_log(mut self, min: usize) -> (Vec<u8>, String) {
        let deadline = Instant::now() + READY;
        while fs::metadata(&self.file).map_or(0, |m| m.len() as usize) < min
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(10));
        }
        self.proc.signal(libc::SIGINT);
        self.proc.wait_for("packets captured", READY);
        let _ = self.proc.wait_exit(READY);
        (fs::read(&self.file).unwrap(), self.proc.log())
    }
}

/// A core dump of `pid`, through gdb's gcore, in `dir`; the process goes
/// on. The file is removed once read.
pub fn core_of(pid: u32, dir: &Path) -> Vec<u8> {
    let prefix = dir.join("core");
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .expect("gcore (Debian's gdb) must be installed to run this test");
    let core = PathBuf::from(format!("{}.{pid}", prefix.display()));
    assert!(
        out.status.success() && core.exists(),
        "gcore failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = fs::read(&core).unwrap();
    fs::remove_file(&core).unwrap();
    bytes
}

/// Whether `needle` occurs in `haystack` (memchr's: a core dump is tens of
/// MiB).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}
