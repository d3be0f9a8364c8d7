//! A progress bar for saving with `-o` when stderr is a terminal; nothing
//! otherwise, so logs and pipes stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `size` bytes, drawn only when saving to a file and stderr
    /// is a terminal.
    pub fn new(saving: bool, size: u64) -> Progress {
        if !saving || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        Progress { bar }
    }

    pub fn set_position(&self, done: u64) {
        self.bar.set_position(done);
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }

    pub fn abandon(self) {
        self.bar.abandon();
    }
}
