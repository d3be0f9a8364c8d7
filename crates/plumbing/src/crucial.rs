//! Threads a program cannot live without: the node's heartbeat, the
//! relay's expiry, the server's closer. If one of them panics, the process
//! would go on half alive (a node that serves but is no longer listed, a
//! relay whose table never expires), which is worse than no process: a
//! supervisor restarts a dead one, nobody notices a half-alive one. So a
//! panic on such a thread ends the process, with one line saying which
//! thread failed and why, and a non-zero status.
//!
//! Threads serving one connection are not crucial: a panic there drops that
//! connection only (`server::workers`).

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::thread::{self, JoinHandle};

pub use crate::panic_text::panic_message;

/// Exit status when a crucial thread failed.
pub const EXIT_STATUS: i32 = 2;

/// Starts `work` on a thread named `name`; if it panics, the process exits
/// with [`EXIT_STATUS`]. Returning normally ends only the thread.
pub fn spawn<F>(name: &str, work: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let label = name.to_string();
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || run(&label, work))
}

/// Runs `work` on this thread; if it panics, the process exits with
/// [`EXIT_STATUS`]. For code that must finish once it started, such as a
/// signal handler that unregisters and exits.
pub fn run<F: FnOnce()>(name: &str, work: F) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(work)) {
        report_panic(|| {
            tracing::error!(
                "the {name} thread failed ({}); exiting",
                panic_message(&*payload)
            );
        });
        // The line above is what a supervisor's log will show: out first.
        crate::logging::exit(EXIT_STATUS);
    }
}

/// Runs `log`, which reports a panic that was caught, ignoring a panic in
/// it: if logging is what panicked, reporting may panic too, and what comes
/// after the report (an exit, a thread going back to work) must happen
/// whatever the log does.
pub fn report_panic(log: impl FnOnce()) {
    let _ = panic::catch_unwind(AssertUnwindSafe(log));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Set in the child process that [`a_panic_on_a_crucial_thread_ends_the_process`] starts.
    const CHILD: &str = "PROTO_CRUCIAL_TEST_CHILD";

    #[test]
    fn a_panic_on_a_crucial_thread_ends_the_process() {
        if std::env::var_os(CHILD).is_some() {
            // The child: the main thread would live on forever.
            spawn("heartbeat", || panic!("boom")).unwrap();
            thread::sleep(Duration::from_secs(30));
            std::process::exit(0);
        }
        let started = Instant::now();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crucial::tests::a_panic_on_a_crucial_thread_ends_the_process",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(EXIT_STATUS), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_crucial_thread_that_returns_ends_only_itself() {
        spawn("done", || {}).unwrap().join().unwrap();
        run("done", || {});
    }

    #[test]
    fn panic_messages_are_read_from_str_and_string() {
        let text = panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(&*text), "plain");
        let formatted = panic::catch_unwind(|| panic!("{}", 42)).unwrap_err();
        assert_eq!(panic_message(&*formatted), "42");
    }
}
