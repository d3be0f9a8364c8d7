//! Status for the user on stderr: which node served a file, which did not
//! have it, which could not be reached. These are results shown to a person,
//! not log events, so they are plain lines; `-q` keeps only errors.

use crate::output::end_terminal_line;

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub quiet: bool,
}

impl Report {
    pub fn status(&self, line: &str) {
        if !self.quiet {
            end_terminal_line();
            eprintln!("{line}");
        }
    }

    pub fn error(&self, line: &str) {
        end_terminal_line();
        eprintln!("error: {line}");
    }
}
