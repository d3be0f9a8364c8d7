//! Status for the user on stderr: which node served a file, which did not
//! have it, which could not be reached. These are results shown to a person,
//! not log events, so they are plain lines; `-q` keeps only errors, and a
//! file not found is one ([`Report::missing`]). They
//! are written by the thread that has them, in order with the client's log
//! lines, which are written directly too (main.rs says why).
//!
//! After Ctrl-C stopped a `get` at the prompt, its lines are held back: the
//! failures that follow are the interrupt's doing, and one line says it
//! stopped ([`crate::interrupt`]).

use std::fmt::Display;
use std::io::Write;

use crate::output::end_terminal_line;

/// Writes one line to stderr, dropping it if stderr is gone. `eprintln!`
/// panics when stderr is a closed pipe (`peer-client ... 2>&1 | head -1`),
/// and a status line nobody can read is no reason to abandon a download.
pub fn stderr_line(line: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Like [`stderr_line`], without the newline (the prompt).
pub fn stderr_text(text: impl Display) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{text}");
    let _ = err.flush();
}

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub quiet: bool,
}

impl Report {
    pub fn status(&self, line: &str) {
        if !self.quiet && !crate::interrupt::stopped() {
            end_terminal_line();
            stderr_line(line);
        }
    }

    /// A requested file (or node) that is not there: kept under `-q`, which
    /// means "errors only", since the exit status alone does not say which
    /// of several names was missing.
    pub fn missing(&self, line: &str) {
        if crate::interrupt::stopped() {
            return;
        }
        end_terminal_line();
        stderr_line(line);
    }

    pub fn error(&self, line: &str) {
        if crate::interrupt::stopped() {
            return;
        }
        end_terminal_line();
        stderr_line(format_args!("error: {line}"));
    }
}

/// `1 file`, `2 files`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
