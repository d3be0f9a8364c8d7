//! One log line per event on stderr, with time and level, the same in all
//! three programs. `RUST_LOG` wins over `-v`/`-q` when it is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `default` is the level with neither flag;
/// each `-v` raises it one step (info, debug, trace) and `-q` lowers it to errors.
pub fn init(verbose: u8, quiet: bool, default: tracing::Level) {
    let level = if quiet {
        tracing::Level::ERROR
    } else {
        match (default, verbose) {
            (level, 0) => level,
            (tracing::Level::ERROR | tracing::Level::WARN, 1) => tracing::Level::INFO,
            (tracing::Level::ERROR | tracing::Level::WARN | tracing::Level::INFO, 1 | 2) => {
                tracing::Level::DEBUG
            }
            _ => tracing::Level::TRACE,
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.as_str().to_ascii_lowercase()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
