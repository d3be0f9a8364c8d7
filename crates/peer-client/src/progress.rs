//! A progress bar for saving with `-o` when stderr is a terminal; nothing
//! otherwise, so logs and pipes stay clean.
//!
//! A finished bar is left on the screen as a one-line summary (size, time,
//! rate), the way curl leaves its last meter line: a fast transfer would
//! otherwise flash a bar too briefly to read, or not draw one at all.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const RUNNING: &str = "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}";
const DONE: &str = "{bar:30} {bytes}/{total_bytes} in {elapsed}";
/// A fetch from several nodes: the total rate, and how many nodes send now.
const SOURCES: &str = "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} from {msg} eta {eta}";

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `size` bytes, drawn only when `show` (saving to a file,
    /// without `-q`) and stderr is a terminal.
    pub fn new(show: bool, size: u64) -> Progress {
        if !show || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(RUNNING) {
            bar.set_style(style);
        }
        Progress { bar }
    }

    pub fn set_position(&self, done: u64) {
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

    /// Leaves the full bar with the time taken as the transfer's summary.
    pub fn finish(self) {
        if let Ok(style) = ProgressStyle::with_template(DONE) {
            self.bar.set_style(style);
        }
        self.bar.finish();
    }

    /// Leaves the bar where the transfer stopped.
    pub fn abandon(self) {
        self.bar.abandon();
    }
}
