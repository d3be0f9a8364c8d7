//! The interactive prompt: reads commands until `quit` or end of input.
//! With a terminal, line editing and history (rustyline); with a pipe, plain
//! lines, so `printf 'a.txt\nb.txt\n' | peer-client ...` works the same.
//!
//! The prompt, listings and help go to the terminal or stderr, never to
//! stdout: `peer-client 127.0.0.1 7000 > saved.txt` at the prompt leaves only
//! the fetched files' bytes in saved.txt.

use std::io::{self, BufRead, IsTerminal};
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Behavior, CompletionType, Config, Editor};

use crate::complete::{Completion, Names};

pub const PROMPT: &str = "file name> ";

pub const HELP: &str = "\
commands:
  NAME               fetch NAME and print it (blake3:HASH: the content with
                     that hash, whatever its name; a unique prefix of 8 or
                     more hex digits will do)
  get NAME [-o PATH] fetch NAME (and save it to PATH, as -o does: a directory
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
Names are read as a shell reads words: quote a name with spaces or quotes
in it (\"my file.txt\", 'it''s', my\\ file.txt), and quote a name that is
also a command (\"ls\", \"help\"); `get NAME` always means the file.
An unquoted line that is not a command is one name, spaces and all.
Tab completes commands and the names in the relay's index; up and down
arrows recall earlier lines; Ctrl-C stops a transfer.";

/// The words that start a command; an unquoted line starting with one of
/// them is that command, never a file name.
pub const COMMANDS: [&str; 8] = ["get", "ls", "search", "peers", "help", "quit", "exit", "?"];

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
    /// Reads a line as a shell reads words (`shell-words`: quotes and
    /// backslashes), so that every name that can be shared can be typed:
    /// spaces, quotes, leading and trailing spaces inside quotes, and names
    /// that are also commands. A line without quotes or backslashes that is
    /// not a command is one name as typed, spaces and all, as before.
    pub fn parse(line: &str) -> Command {
        let line = line.trim_end_matches(['\n', '\r']);
        let plain = !line.contains(['"', '\'', '\\']);
        let words = match shell_words::split(line) {
            Ok(words) => words,
            Err(_) => return Command::Invalid("unbalanced quotes: close the quote".into()),
        };
        let Some(first) = words.first() else {
            return Command::Nothing;
        };
        // A quoted first word is a name, even when it spells a command.
        let first_quoted = !line.trim_start().starts_with(first.as_str());
        let rest = &words[1..];
        if !first_quoted {
            match (first.as_str(), rest) {
                ("quit" | "exit", []) => return Command::Quit,
                ("help" | "?", []) => return Command::Help,
                ("peers", []) => return Command::Peers,
                ("ls", flags) => return list(flags),
                ("search", []) => return Command::Invalid("usage: search TEXT".into()),
                ("search", text) => {
                    return Command::Search {
                        text: if plain {
                            // The text as typed after the command, inner
                            // spaces kept: `search my  report`.
                            line.trim()["search".len()..].trim().to_string()
                        } else {
                            text.join(" ")
                        },
                    };
                }
                ("get", args) => return get(args),
                _ => {}
            }
        }
        if plain {
            return Command::Get {
                name: line.trim().to_string(),
                output: None,
            };
        }
        get(&words)
    }
}

/// `ls [-l|--long] [--nodes]`.
fn list(flags: &[String]) -> Command {
    let (mut long, mut per_node) = (false, false);
    for flag in flags {
        match flag.as_str() {
            "-l" | "--long" => long = true,
            "--nodes" => per_node = true,
            _ => return Command::Invalid("usage: ls [-l|--long] [--nodes]".into()),
        }
    }
    Command::List { long, per_node }
}

/// `NAME [-o PATH]`, the words after `get` (or a quoted name's words).
fn get(args: &[String]) -> Command {
    let named = |name: &String, output: Option<&String>| Command::Get {
        name: name.clone(),
        output: output.map(PathBuf::from),
    };
    match args {
        [name] => named(name, None),
        [name, flag, path] if flag == "-o" || flag == "--output" => named(name, Some(path)),
        [flag, path, name] if flag == "-o" || flag == "--output" => named(name, Some(path)),
        _ => Command::Invalid(
            "usage: get NAME [-o PATH] (quote a name with spaces: get \"my file.txt\")".into(),
        ),
    }
}

/// Where lines come from.
pub enum Input {
    Editor(Box<Editor<Completion, DefaultHistory>>),
    /// Lines from a pipe or a file: no prompt is printed, as python and
    /// sqlite3 print none when stdin is not a terminal.
    Plain(io::StdinLock<'static>),
}

impl Input {
    /// Line editing when a person is typing (Tab completes commands and
    /// `names`), plain reading otherwise.
    pub fn open(names: Names) -> Input {
        // PreferTerm reads and draws on /dev/tty, never on stdout, which
        // carries file content only; but when /dev/tty cannot be opened
        // (no controlling terminal) rustyline falls back to stdout, so
        // that case reads plain lines instead.
        if io::stdin().is_terminal() && controlling_terminal() {
            let config = Config::builder()
                .behavior(Behavior::PreferTerm)
                .auto_add_history(true)
                .completion_type(CompletionType::List)
                .build();
            if let Ok(mut editor) = Editor::with_config(config) {
                editor.set_helper(Some(Completion::new(names)));
                return Input::Editor(Box::new(editor));
            }
        }
        Input::Plain(io::stdin().lock())
    }

    /// Whether a person is typing (line editing on a terminal): then
    /// Ctrl-C during a `get` stops it and the prompt goes on.
    pub fn interactive(&self) -> bool {
        matches!(self, Input::Editor(_))
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

    fn get(name: &str, output: Option<&str>) -> Command {
        Command::Get {
            name: name.into(),
            output: output.map(PathBuf::from),
        }
    }

    #[test]
    fn names_with_spaces_and_quotes_read_as_a_shell_reads_them() {
        let saved = get("my file.txt", Some("copy.txt"));
        assert_eq!(Command::parse("get \"my file.txt\" -o copy.txt"), saved);
        assert_eq!(Command::parse("get 'my file.txt' -o copy.txt"), saved);
        assert_eq!(Command::parse("get my\\ file.txt -o copy.txt"), saved);
        assert_eq!(Command::parse("\"my file.txt\" -o copy.txt"), saved);
        assert_eq!(Command::parse("get -o copy.txt 'my file.txt'"), saved);
        assert_eq!(Command::parse("'my file.txt'"), get("my file.txt", None));
        assert_eq!(Command::parse("my\\ file.txt"), get("my file.txt", None));
        assert_eq!(Command::parse("\"it's.txt\""), get("it's.txt", None));
        // Quoted spaces at either end are part of the name.
        assert_eq!(Command::parse("' spaced.txt '"), get(" spaced.txt ", None));
        assert_eq!(Command::parse("get \" x\""), get(" x", None));
        assert!(matches!(Command::parse("get 'open"), Command::Invalid(_)));
        assert!(matches!(Command::parse("get a b"), Command::Invalid(_)));
    }

    #[test]
    fn a_name_that_spells_a_command_is_a_file_when_quoted_or_after_get() {
        for name in ["ls", "peers", "help", "quit", "search results.txt"] {
            assert_eq!(Command::parse(&format!("get '{name}'")), get(name, None));
            assert_eq!(Command::parse(&format!("\"{name}\"")), get(name, None));
        }
        assert_eq!(Command::parse("get ls"), get("ls", None));
        assert_eq!(
            Command::parse("get help -o h.txt"),
            get("help", Some("h.txt"))
        );
        assert_eq!(
            Command::parse("ls"),
            Command::List {
                long: false,
                per_node: false
            }
        );
        assert_eq!(
            Command::parse("search \"my  report\""),
            Command::Search {
                text: "my  report".into()
            }
        );
    }
}
