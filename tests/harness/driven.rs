//! A client process a test drives by hand: started with its arguments, then
//! frozen, thawed or interrupted by signals while a transfer runs, and
//! finished with its exit code and stderr. Killed on drop.

use std::io::Read;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Relay;

/// Longest a driven client may take to finish before the test fails.
const FINISH: Duration = Duration::from_secs(60);

/// `peer-client` against a relay, driven by the test; killed on drop.
pub struct Client {
    /// The process; its stdout is piped for the test to read (take it).
    pub child: Child,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Client {
    /// `peer-client` against `relay` with `args`, stdin closed, stdout
    /// piped to the test (read it, or keep the client off stdout with
    /// `-o`), stderr collected for [`Client::finish`].
    pub fn start(relay: &Relay, args: &[&str]) -> Client {
        let mut cmd = crate::client(relay.port());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start peer-client");
        let mut err = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Client {
            child,
            stderr: Some(stderr),
        }
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, SIGINT...) to the client.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// Waits for the exit (at most a minute); the exit code, or minus the
    /// signal that ended it, and stderr.
    pub fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + FINISH;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the client did not finish");
            thread::sleep(Duration::from_millis(5));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| -status.signal().unwrap_or(0));
        (code, stderr)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
