//! Process plumbing the three programs share, kept apart from the wire
//! (`proto`) and the network (`net`), as ripgrep keeps `grep-cli` apart.
//! Nothing here knows a socket; the network crate builds on it.
//!
//! Module map:
//! - [`logging`]: one log line per event, with time and level, on stderr;
//!   servers queue lines for a writer thread so a stuck log reader never
//!   stalls them (past a bound, lines are dropped and counted), exits wait
//!   for the queue a bounded time; a line that cannot be written is dropped.
//! - [`crucial`]: threads a program cannot live without; a panic on one
//!   ends the process instead of leaving it half alive.
//! - [`panic_text`]: the text a panic carries, for the log and for crucial
//!   threads alike.
//! - [`flags`]: command-line flags every binary shares (server limits, the
//!   secret, `-v`/`-q`, durations).
//! - [`secret_file`]: a network's secret read from a file.

pub mod crucial;
pub mod flags;
pub mod logging;
pub mod panic_text;
pub mod secret_file;
