//! The interactive prompt: reads commands until `quit` or end of input.
//! With a terminal, line editing and history (rustyline); with a pipe, plain
//! lines, so `printf 'a.txt\nb.txt\n' | peer-client ...` works the same.
//!
//! The prompt, listings and help go to the terminal or stderr, never to
//! stdout: `peer-client 127.0.0.1 7000 > saved.txt` at the prompt leaves only
//! the fetched files' bytes in saved.txt.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::{Behavior, Config, DefaultEditor};

pub const PROMPT: &str = "file name> ";

pub const HELP: &str = "\
commands:
  NAME               fetch NAME and print it (blake3:HASH: the content with
                     that hash, whatever its name)
  get NAME -o PATH   fetch NAME and save it to PATH (as -o does: a directory
                     gets it inside, a device or FIFO is written in place,
                     a symlink is followed, - is stdout)
  ls [-l|--long] [--nodes]
                     list the network's files from the relay's index (-l:
                     with whole hashes; --nodes: ask each node for its own
                     listing)
  search TEXT        files whose names contain TEXT, across the network
  peers              list the active nodes
  help               this text
  quit               leave (Ctrl-D works too)
Up and down arrows recall earlier lines.";

/// One line typed at the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Get {
        name: String,
        output: Option<PathBuf>,
    },
    List {
        long: bool,
        per_node: bool,
    },
    Search {
        text: String,
    },
    Peers,
    Help,
    Quit,
    Nothing,
    /// A line that looks like a command but is not well formed.
    Invalid(String),
}

impl Command {
    pub fn parse(line: &str) -> Command {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            None => Command::Nothing,
            Some("quit" | "exit") if words.next().is_none() => Command::Quit,
            Some("help" | "?") if words.next().is_none() => Command::Help,
            Some("ls") => {
                let (mut long, mut per_node) = (false, false);
                for word in words {
                    match word {
                        "-l" | "--long" => long = true,
                        "--nodes" => per_node = true,
                        _ => return Command::Invalid("usage: ls [-l|--long] [--nodes]".into()),
                    }
                }
                Command::List { long, per_node }
            }
            Some("search") => match line["search".len()..].trim() {
                "" => Command::Invalid("usage: search TEXT".into()),
                text => Command::Search {
                    text: text.to_string(),
                },
            },
            Some("peers") if words.next().is_none() => Command::Peers,
            Some("get") => {
                let rest: Vec<&str> = words.collect();
                match rest.as_slice() {
                    [name] => Command::Get {
                        name: name.to_string(),
                        output: None,
                    },
                    [name, "-o" | "--output", path] => Command::Get {
                        name: name.to_string(),
                        output: Some(PathBuf::from(path)),
                    },
                    _ => Command::Invalid("usage: get NAME [-o PATH]".into()),
                }
            }
            // Anything else is a file name, spaces and all.
            Some(_) => Command::Get {
                name: line.to_string(),
                output: None,
            },
        }
    }
}

/// Where lines come from.
pub enum Input {
    Editor(Box<DefaultEditor>),
    Plain(io::StdinLock<'static>),
}

impl Input {
    /// Line editing when a person is typing, plain reading otherwise.
    pub fn open() -> Input {
        // PreferTerm reads and draws on /dev/tty, never on stdout, which
        // carries file content only; but when /dev/tty cannot be opened
        // (no controlling terminal) rustyline falls back to stdout, so
        // that case reads plain lines instead.
        if io::stdin().is_terminal() && controlling_terminal() {
            let config = Config::builder()
                .behavior(Behavior::PreferTerm)
                .auto_add_history(true)
                .build();
            if let Ok(editor) = DefaultEditor::with_config(config) {
                return Input::Editor(Box::new(editor));
            }
        }
        Input::Plain(io::stdin().lock())
    }

    /// The next line, or None at end of input.
    pub fn next_line(&mut self) -> Option<String> {
        match self {
            Input::Editor(editor) => loop {
                match editor.readline(PROMPT) {
                    Ok(line) => return Some(line),
                    // Ctrl-C drops the line being typed, as in a shell.
                    Err(ReadlineError::Interrupted) => {
                        crate::report::stderr_line("(type quit or press Ctrl-D to leave)");
                    }
                    Err(_) => return None,
                }
            },
            Input::Plain(stdin) => {
                crate::report::stderr_text(PROMPT);
                let _ = io::stderr().flush();
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(line),
                }
            }
        }
    }
}

/// Whether this process has a terminal of its own to talk to.
fn controlling_terminal() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_bare_names() {
        assert_eq!(Command::parse("  "), Command::Nothing);
        assert_eq!(Command::parse("quit"), Command::Quit);
        let ls = |long, per_node| Command::List { long, per_node };
        assert_eq!(Command::parse("ls"), ls(false, false));
        assert_eq!(Command::parse("ls -l"), ls(true, false));
        assert_eq!(Command::parse("ls --long"), ls(true, false));
        assert_eq!(Command::parse("ls --nodes -l"), ls(true, true));
        assert_eq!(
            Command::parse("search  my report "),
            Command::Search {
                text: "my report".into()
            }
        );
        assert!(matches!(Command::parse("search"), Command::Invalid(_)));
        assert!(matches!(Command::parse("ls x"), Command::Invalid(_)));
        assert_eq!(Command::parse("peers\n"), Command::Peers);
        assert_eq!(
            Command::parse("hello.txt\n"),
            Command::Get {
                name: "hello.txt".into(),
                output: None
            }
        );
        assert_eq!(
            Command::parse("my notes.txt"),
            Command::Get {
                name: "my notes.txt".into(),
                output: None
            }
        );
        assert_eq!(
            Command::parse("get a.bin -o /tmp/a.bin"),
            Command::Get {
                name: "a.bin".into(),
                output: Some("/tmp/a.bin".into())
            }
        );
        assert!(matches!(Command::parse("get"), Command::Invalid(_)));
    }
}
