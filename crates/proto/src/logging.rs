//! One log line per event on stderr, with time and level, the same in all
//! three programs. `RUST_LOG` wins over `-v`/`-q` when it is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init()
        .is_ok();
    if installed && let Some((spec, e)) = bad_env {
        tracing::warn!(
            "ignoring RUST_LOG={spec:?}: {e}; logging at {}",
            level_name(level)
        );
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
