//! Tab completion at the prompt: the commands, and the names in the relay's
//! index. Names come from a function the session gives (one listing of the
//! index), asked at most every few seconds, so a Tab pressed twice costs
//! one request and a file shared a minute ago still shows up.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::prompt::COMMANDS;

/// How long a listing of the index is reused for completion.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// Where the names to complete come from (the relay's index).
pub type Names = Box<dyn Fn() -> Vec<String>>;

pub struct Completion {
    names: Names,
    cache: RefCell<Option<(Instant, Vec<String>)>>,
}

impl Completion {
    pub fn new(names: Names) -> Completion {
        Completion {
            names,
            cache: RefCell::new(None),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut cache = self.cache.borrow_mut();
        match &*cache {
            Some((at, names)) if at.elapsed() < FRESH_FOR => names.clone(),
            _ => {
                let names = (self.names)();
                *cache = Some((Instant::now(), names.clone()));
                names
            }
        }
    }

    /// The candidates for the line up to the cursor: where the replaced
    /// text starts, and what may replace it.
    pub fn candidates(&self, before: &str) -> (usize, Vec<Pair>) {
        let get = before
            .strip_prefix("get")
            .filter(|rest| rest.starts_with(char::is_whitespace));
        let (start, partial) = match get {
            Some(rest) => {
                let start = before.len() - rest.trim_start().len();
                (start, &before[start..])
            }
            None => (0, before),
        };
        let opened = partial.starts_with(['"', '\'']);
        let typed = partial
            .trim_start_matches(['"', '\''])
            .replace("\\ ", " ")
            .replace("\\\\", "\\");
        let mut out = Vec::new();
        if start == 0 && !opened {
            for command in COMMANDS.iter().filter(|c| c.starts_with(typed.as_str())) {
                if *command != "?" {
                    out.push(Pair {
                        display: command.to_string(),
                        replacement: format!("{command} "),
                    });
                }
            }
        }
        let mut names = self.names();
        names.sort();
        names.dedup();
        for name in names.into_iter().filter(|n| n.starts_with(typed.as_str())) {
            let quote = get.is_some() || opened || needs_quotes_alone(&name);
            let replacement = if quote { quoted(&name) } else { name.clone() };
            out.push(Pair {
                display: name,
                replacement,
            });
        }
        (start, out)
    }
}

/// The name quoted as a shell would read it back, always in quotes (a name
/// that spells a command must be, and the others then look alike).
fn quoted(name: &str) -> String {
    match shell_words::quote(name) {
        std::borrow::Cow::Borrowed(_) => format!("'{name}'"),
        std::borrow::Cow::Owned(quoted) => quoted,
    }
}

/// Whether a name typed alone on a line must be quoted to be read as that
/// name: it holds quotes or backslashes, it has leading or trailing spaces,
/// or its first word is a command.
fn needs_quotes_alone(name: &str) -> bool {
    let first = name.split_whitespace().next().unwrap_or("");
    name.contains(['"', '\'', '\\'])
        || name.trim() != name
        || name.is_empty()
        || COMMANDS.contains(&first)
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(&line[..pos]))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Command;

    fn completion() -> Completion {
        Completion::new(Box::new(|| {
            [
                "hello.txt",
                "help notes.txt",
                "my file.txt",
                "ls",
                "hello.txt",
            ]
            .map(String::from)
            .to_vec()
        }))
    }

    fn replacements(before: &str) -> (usize, Vec<String>) {
        let (start, pairs) = completion().candidates(before);
        (start, pairs.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn commands_and_names_complete_and_what_is_inserted_parses_back() {
        assert_eq!(
            replacements("hel"),
            (
                0,
                vec![
                    "help ".into(),
                    "hello.txt".into(),
                    "'help notes.txt'".into()
                ]
            )
        );
        assert_eq!(replacements("p"), (0, vec!["peers ".into()]));
        assert_eq!(replacements("get my"), (4, vec!["'my file.txt'".into()]));
        assert_eq!(replacements("get hello."), (4, vec!["'hello.txt'".into()]));
        assert_eq!(replacements("my"), (0, vec!["my file.txt".into()]));
        assert_eq!(replacements("\"l"), (0, vec!["'ls'".into()]));
        // Every inserted name reads back as that name.
        for name in ["hello.txt", "help notes.txt", "my file.txt", "ls"] {
            for before in ["", "get "] {
                let (start, pairs) = completion().candidates(before);
                // Names come after commands (a file may be called `ls`).
                let pair = pairs.iter().rfind(|p| p.display == name).unwrap();
                let line = format!("{}{}", &before[..start], pair.replacement);
                assert_eq!(
                    Command::parse(&line),
                    Command::Get {
                        name: name.into(),
                        output: None
                    },
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn the_index_is_asked_once_for_several_tabs() {
        let asked = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = asked.clone();
        let completion = Completion::new(Box::new(move || {
            counter.set(counter.get() + 1);
            vec!["a.txt".into()]
        }));
        for _ in 0..5 {
            completion.candidates("a");
        }
        assert_eq!(asked.get(), 1);
    }
}
