//! A progress bar on stderr when it is a terminal, whatever stdout is
//! (`-o FILE`, or `> FILE`, as curl draws one), except while the text
//! itself goes to that terminal; nothing otherwise, so logs and pipes stay
//! clean.
//!
//! A finished bar is left on the screen as a one-line summary (size, time,
//! mean rate), the way curl leaves its last meter line: a fast transfer
//! would otherwise flash a bar too briefly to read, or not draw one at all.
//! The rate is the mean over the whole transfer (bytes fetched in this run
//! over its time), not the last moments' rate the running bar shows.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

const RUNNING: &str = "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}";
const DONE: &str = "{bar:30} {msg}";
/// A fetch from several nodes: the total rate, and how many nodes send now.
const SOURCES: &str = "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} from {msg} eta {eta}";

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Where the bar started (a resumed save starts past 0): the bytes
    /// fetched in this run are the rest. `u64::MAX` until the first
    /// position.
    from: AtomicU64,
}

impl Progress {
    /// A bar for `size` bytes, drawn only when `show` (saving to a file,
    /// without `-q`) and stderr is a terminal.
    pub fn new(show: bool, size: u64) -> Progress {
        if !show || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
                started: Instant::now(),
                from: AtomicU64::new(u64::MAX),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(RUNNING) {
            bar.set_style(style);
        }
        Progress {
            bar,
            started: Instant::now(),
            from: AtomicU64::new(u64::MAX),
        }
    }

    pub fn set_position(&self, done: u64) {
        let _ = self
            .from
            .compare_exchange(u64::MAX, done, Ordering::Relaxed, Ordering::Relaxed);
        self.bar.set_position(done);
    }

    /// Shows how many nodes are sending now (a multi-source fetch).
    pub fn set_sources(&self, n: usize) {
        if self.bar.is_hidden() {
            return;
        }
        if self.bar.message().is_empty()
            && let Ok(style) = ProgressStyle::with_template(SOURCES)
        {
            self.bar.set_style(style);
        }
        self.bar.set_message(if n == 1 {
            "1 node".to_string()
        } else {
            format!("{n} nodes")
        });
    }

    /// Leaves the full bar with the size, the time taken and the mean rate
    /// as the transfer's summary.
    pub fn finish(self) {
        if self.bar.is_hidden() {
            return;
        }
        let size = self.bar.length().unwrap_or(0);
        let from = self.from.load(Ordering::Relaxed);
        let fetched = size.saturating_sub(if from == u64::MAX { 0 } else { from });
        self.bar.set_position(size);
        if let Ok(style) = ProgressStyle::with_template(DONE) {
            self.bar.set_style(style);
        }
        self.bar
            .finish_with_message(summary(size, fetched, self.started.elapsed()));
    }

    /// Leaves the bar where the transfer stopped; after Ctrl-C at the
    /// prompt, clears it: one line says the transfer stopped and what it
    /// kept ([`crate::interrupt`]).
    pub fn abandon(self) {
        if crate::interrupt::stopped() {
            self.bar.finish_and_clear();
        } else {
            self.bar.abandon();
        }
    }
}

/// `64.00 MiB in 2s, 31.97 MiB/s`: the size, the time, and the mean rate
/// of the `fetched` bytes (a resumed save fetched only part of `size`).
pub fn summary(size: u64, fetched: u64, took: Duration) -> String {
    let secs = took.as_secs_f64().max(0.001);
    let rate = (fetched as f64 / secs) as u64;
    let took = if took < Duration::from_secs(1) {
        format!("{} ms", took.as_millis())
    } else if took < Duration::from_secs(60) {
        format!("{:.1} s", took.as_secs_f64())
    } else {
        HumanDuration(took).to_string()
    };
    format!("{} in {took}, {}/s", HumanBytes(size), HumanBytes(rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_size_time_and_mean_rate() {
        assert_eq!(
            summary(64 << 20, 64 << 20, Duration::from_secs(2)),
            "64.00 MiB in 2.0 s, 32.00 MiB/s"
        );
        assert_eq!(
            summary(64 << 20, 32 << 20, Duration::from_millis(500)),
            "64.00 MiB in 500 ms, 64.00 MiB/s"
        );
        assert_eq!(
            summary(1 << 30, 1 << 30, Duration::from_secs(120)),
            "1.00 GiB in 2 minutes, 8.53 MiB/s"
        );
    }
}
