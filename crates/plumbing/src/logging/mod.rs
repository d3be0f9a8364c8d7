//! One log line per event on stderr, with time and level, the same in all
//! three programs. `RUST_LOG` wins over `-v`/`-q` when it is set.
//!
//! How a line reaches stderr is the program's choice ([`Delivery`]): the
//! relay and the node hand each line to one writer thread through a bounded
//! queue (`queue.rs`), so that no thread that serves ever waits for stderr;
//! the client writes its lines itself. Either way, a line that cannot be
//! written is dropped: see [`Stderr`].
//!
//! Queued lines must still get out before the process ends, or the line a
//! user waits for ("unregistered", a fatal error) would die in the queue.
//! So every exit after logging goes through [`exit`], or returns from `main`
//! past the [`Guard`] that [`init`] gave it: both wait for the queue, for at
//! most [`LAST_WORDS`], so that a stuck reader cannot hold the exit either.

mod queue;

use std::backtrace::{Backtrace, BacktraceStatus};
use std::fmt::{Display, Write as _};
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

use queue::Queue;

/// How long an exit waits for queued lines to be written. Long enough for a
/// healthy pipe or terminal to take thousands of lines, short enough that a
/// reader that never reads delays a stop by no more than a second.
pub const LAST_WORDS: Duration = Duration::from_secs(1);

/// Bytes of log lines held at most while stderr is not read (a few
/// thousand lines): a burst rides it out, and memory stays bounded when the reader
/// never comes back.
const QUEUE_BYTES: usize = 256 * 1024;

/// How log lines reach stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Through a bounded queue to one writer thread, for servers. A log
    /// reader that stops reading (`2>&1 | less` left paused, a supervisor
    /// that stopped draining) fills the pipe, and a thread writing into a
    /// full pipe waits until it is read: queued, that costs log lines (past
    /// the queue's budget, dropped and counted), never service.
    Queued,
    /// Written by the thread that logs, before it goes on, for a
    /// short-lived command-line program whose stderr is its user's screen.
    Direct,
}

/// Installs the global subscriber. `default` is the level with neither flag;
/// `-v` is debug and `-vv` trace in every program (so `--help` can say so
/// once), and `-q` lowers it to errors. Keep the [`Guard`] until `main`
/// returns.
///
/// An empty `RUST_LOG` counts as unset: an empty filter would silence even
/// errors. A `RUST_LOG` that does not parse is reported (as the first log
/// line) and the flags apply instead, rather than being dropped in silence.
pub fn init(verbose: u8, quiet: bool, default: tracing::Level, delivery: Delivery) -> Guard {
    let level = level(verbose, quiet, default);
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (filter, bad_env) = match from_env {
        None => (EnvFilter::new(level_name(level)), None),
        Some(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(level_name(level)), Some((spec, e))),
        },
    };
    let out = match delivery {
        // Without a writer thread (none could be started), lines are
        // written directly: a log that can block beats no log at all.
        Delivery::Queued => start_writer().map_or(Out::Direct, Out::Queued),
        Delivery::Direct => Out::Direct,
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(out)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        // A failed write is reported by tracing-subscriber with eprintln!,
        // which panics when stderr is gone. Out never fails, but be sure.
        .log_internal_errors(false)
        .try_init()
        .is_ok();
    if installed && let Out::Queued(queue) = out {
        report_panics_through(queue);
    }
    if installed && let Some((spec, e)) = bad_env {
        tracing::warn!(
            "ignoring RUST_LOG={spec:?}: {e}; logging at {}",
            level_name(level)
        );
    }
    Guard(())
}

/// Log lines dropped because stderr was not read fast enough (the queue
/// was full), since the start.
pub fn dropped_lines() -> u64 {
    queue::DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Waits until the lines logged so far are written, at most `within`;
/// returns whether they were (false: stderr is stuck, or the lines are
/// still coming out). Returns at once when lines are not queued.
pub fn flush(within: Duration) -> bool {
    match QUEUE.get() {
        Some(queue) => queue.flush(within),
        None => true,
    }
}

/// Ends the process with `code` once the lines logged so far are written,
/// or after [`LAST_WORDS`] if stderr is stuck. Every `process::exit` that
/// follows a log line goes through here.
pub fn exit(code: i32) -> ! {
    flush(LAST_WORDS);
    std::process::exit(code)
}

/// What [`init`] returns to `main`: dropping it (on the way out of `main`,
/// also by a panic) waits for queued lines like [`exit`] does, so that an
/// error logged just before `main` returns is seen.
#[must_use = "dropped at once, it would not wait for the last lines at exit"]
#[derive(Debug)]
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        flush(LAST_WORDS);
    }
}

/// The queue of a process that logs through one, once its writer runs.
static QUEUE: OnceLock<&'static Queue> = OnceLock::new();

/// Starts the writer thread, once per process; None if it cannot start.
fn start_writer() -> Option<&'static Queue> {
    if let Some(queue) = QUEUE.get() {
        return Some(queue);
    }
    // It lives as long as the process, as does the thread writing from it.
    let queue: &'static Queue = Box::leak(Box::new(Queue::new(QUEUE_BYTES)));
    thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || queue.write_to(&mut Stderr))
        .ok()?;
    Some(QUEUE.get_or_init(|| queue))
}

/// Where tracing-subscriber writes each event: whole, in one call.
#[derive(Clone, Copy)]
enum Out {
    Queued(&'static Queue),
    Direct,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Queued(queue) => queue.push(buf),
            Out::Direct => Stderr.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Queued(_) => Ok(()),
            Out::Direct => Stderr.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Out {
    type Writer = Out;

    fn make_writer(&'a self) -> Out {
        *self
    }
}

/// A panic's report, which std's default hook writes straight to stderr,
/// goes through the queue instead. On a full pipe the default hook would
/// hold the panicking thread in write(2) before it unwinds: a connection
/// thread would never free its slot, and a crucial thread would never get
/// to end the process (`crucial`), which would then live on half alive.
fn report_panics_through(queue: &'static Queue) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = thread::current();
        let mut text = format!(
            "thread '{}' panicked at {}: {}",
            thread.name().unwrap_or("<unnamed>"),
            info.location()
                .map_or_else(|| "an unknown place".to_string(), |l| l.to_string()),
            crate::panic_text::panic_message(info.payload())
        );
        // Only with RUST_BACKTRACE=1 (or RUST_LIB_BACKTRACE), as std does.
        let backtrace = Backtrace::capture();
        if backtrace.status() == BacktraceStatus::Captured {
            let _ = write!(text, "\nstack backtrace:\n{backtrace}");
        }
        queue.push(own_line("ERROR", text).as_bytes());
    }));
}

/// A line this module writes itself, shaped as tracing-subscriber shapes
/// an event: time, level, text.
fn own_line(level: &str, text: impl Display) -> String {
    let mut line = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut line));
    let _ = writeln!(line, " {level:>5} {text}");
    line
}

/// Where log lines go: stderr, where a line that cannot be written is
/// dropped. Logs outlive their readers: under `relay 7000 2>&1 | head -1`,
/// or a supervisor whose log reader died, every write fails with EPIPE. The
/// default writer reports that failure, and reporting it panics ("failed
/// printing to stderr"), on whichever thread happened to log: a connection
/// thread, the node's heartbeat, the signal handler. A server must go on
/// serving without its log, so the error is swallowed here, once, for every
/// event. Queued lines are written through it too, by the writer thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The whole line or nothing more of it: a retry could only fail again.
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

/// The level the flags ask for.
fn level(verbose: u8, quiet: bool, default: tracing::Level) -> tracing::Level {
    match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => default,
        (false, 1) => tracing::Level::DEBUG.max(default),
        (false, _) => tracing::Level::TRACE,
    }
}

fn level_name(level: tracing::Level) -> String {
    level.as_str().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;
    use tracing::Level;

    /// Set in the child processes the tests below start, to what the child
    /// does (see [`child`]).
    const CHILD: &str = "PROTO_LOGGING_TEST_CHILD";

    /// The child's side: logs as the test named in [`CHILD`] asks, then
    /// exits. Returns in the parent.
    fn child() {
        let Ok(what) = std::env::var(CHILD) else {
            return;
        };
        let delivery = if what.ends_with("direct") {
            Delivery::Direct
        } else {
            Delivery::Queued
        };
        let _log = init(0, false, Level::INFO, delivery);
        match what.split('-').next().unwrap() {
            "closed" => {
                for i in 0..100 {
                    tracing::info!("line {i} into a pipe nobody reads");
                    tracing::error!("line {i}, an error, also dropped");
                }
                exit(0)
            }
            "stuck" => {
                // Far more than the pipe (64 KiB) and the queue hold.
                for i in 0..20_000 {
                    tracing::info!("line {i} of many into a pipe that is never read");
                }
                say("logged");
                exit(0)
            }
            "healthy" => {
                // Fewer than the queue holds: none may be dropped.
                for i in 0..1_000 {
                    tracing::info!("line {i} of many");
                }
                tracing::error!("the last line");
                exit(3)
            }
            "panic" => {
                crate::crucial::spawn("heartbeat", || panic!("boom")).unwrap();
                thread::sleep(Duration::from_secs(30));
                exit(0)
            }
            other => panic!("no such child: {other}"),
        }
    }

    /// The child says how far it got on stdout, which the parent reads.
    fn say(what: &str) {
        let _ = writeln!(io::stdout(), "{what}");
    }

    /// Starts this test binary as the child `what`, running `test`, with
    /// stderr a pipe.
    fn spawn_child(test: &str, what: &str) -> Child {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD, what)
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for `child` to exit, at most `within`; kills it if it does not.
    fn exit_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_closed_stderr_drops_log_lines_and_nothing_panics() {
        child();
        for what in ["closed-queued", "closed-direct"] {
            let mut child = spawn_child(
                "logging::tests::a_closed_stderr_drops_log_lines_and_nothing_panics",
                what,
            );
            // Close the only read end: every write to the child's stderr fails.
            drop(child.stderr.take());
            let status = exit_within(&mut child, Duration::from_secs(30));
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(0),
                "{what}: logging into a closed pipe panicked or hung"
            );
        }
    }

    /// A reader that keeps the pipe open and never reads: the thread that
    /// logs goes on (20 000 lines, several times what the pipe and the queue
    /// hold), and the exit waits for the stuck writer no longer than
    /// [`LAST_WORDS`].
    #[test]
    fn a_stderr_nobody_reads_blocks_neither_logging_nor_the_exit() {
        child();
        let started = Instant::now();
        let mut child = spawn_child(
            "logging::tests::a_stderr_nobody_reads_blocks_neither_logging_nor_the_exit",
            "stuck-queued",
        );
        let _unread = child.stderr.take();
        let status = exit_within(&mut child, Duration::from_secs(30));
        let mut out = String::new();
        io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        assert!(
            out.contains("logged"),
            "the child never got past its log lines: {out}"
        );
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "the child did not exit within 30 s of its start"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    /// With a reader that reads, every line is there at the exit, the last
    /// one too, and so is the exit status.
    #[test]
    fn an_exit_writes_the_queued_lines_first() {
        child();
        let out = spawn_child(
            "logging::tests::an_exit_writes_the_queued_lines_first",
            "healthy-queued",
        )
        .wait_with_output()
        .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            log.lines().filter(|l| l.contains(" of many")).count(),
            1_000
        );
        assert!(!log.contains("dropped"), "{log}");
        assert!(
            log.lines().last().unwrap().ends_with("ERROR the last line"),
            "{log}"
        );
    }

    /// A crucial thread's panic, with lines queued: the report of the panic
    /// and the line naming the thread are both out before the exit.
    #[test]
    fn a_crucial_panic_is_reported_through_the_queue_before_the_exit() {
        child();
        let out = spawn_child(
            "logging::tests::a_crucial_panic_is_reported_through_the_queue_before_the_exit",
            "panic-queued",
        )
        .wait_with_output()
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(crate::crucial::EXIT_STATUS),
            "{out:?}"
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("ERROR thread 'heartbeat' panicked at ") && log.contains(": boom"),
            "{log}"
        );
        assert!(
            log.contains("ERROR the heartbeat thread failed (boom); exiting"),
            "{log}"
        );
    }

    #[test]
    fn v_is_debug_and_vv_trace_whatever_the_default() {
        for default in [Level::WARN, Level::INFO] {
            assert_eq!(level(0, false, default), default);
            assert_eq!(level(1, false, default), Level::DEBUG);
            assert_eq!(level(2, false, default), Level::TRACE);
            assert_eq!(level(5, false, default), Level::TRACE);
            assert_eq!(level(0, true, default), Level::ERROR);
        }
    }
}
