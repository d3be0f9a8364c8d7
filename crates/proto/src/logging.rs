//! One log line per event on stderr, with time and level, the same in all
//! three programs. `RUST_LOG` wins over `-v`/`-q` when it is set.
//!
//! A log line that cannot be written is dropped: see [`Stderr`].

use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber. `default` is the level with neither flag;
/// `-v` is debug and `-vv` trace in every program (so `--help` can say so
/// once), and `-q` lowers it to errors.
///
/// An empty `RUST_LOG` counts as unset: an empty filter would silence even
/// errors. A `RUST_LOG` that does not parse is reported (as the first log
/// line) and the flags apply instead, rather than being dropped in silence.
pub fn init(verbose: u8, quiet: bool, default: tracing::Level) {
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
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        // A failed write is reported by tracing-subscriber with eprintln!,
        // which panics when stderr is gone. Stderr never fails, but be sure.
        .log_internal_errors(false)
        .try_init()
        .is_ok();
    if installed && let Some((spec, e)) = bad_env {
        tracing::warn!(
            "ignoring RUST_LOG={spec:?}: {e}; logging at {}",
            level_name(level)
        );
    }
}

/// Where log lines go: stderr, where a line that cannot be written is
/// dropped. Logs outlive their readers: under `relay 7000 2>&1 | head -1`,
/// or a supervisor whose log reader died, every write fails with EPIPE. The
/// default writer reports that failure, and reporting it panics ("failed
/// printing to stderr"), on whichever thread happened to log: a connection
/// thread, the node's heartbeat, the signal handler. A server must go on
/// serving without its log, so the error is swallowed here, once, for every
/// event.
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
    use tracing::Level;

    /// Set in the child process that [`a_closed_stderr_drops_log_lines_and_nothing_panics`] starts.
    const CHILD: &str = "PROTO_LOGGING_TEST_CHILD";

    #[test]
    fn a_closed_stderr_drops_log_lines_and_nothing_panics() {
        if std::env::var_os(CHILD).is_some() {
            init(0, false, Level::INFO);
            for i in 0..100 {
                tracing::info!("line {i} into a pipe nobody reads");
                tracing::error!("line {i}, an error, also dropped");
            }
            std::process::exit(0);
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "logging::tests::a_closed_stderr_drops_log_lines_and_nothing_panics",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the only read end: every write to the child's stderr fails.
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "logging into a closed pipe panicked"
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
