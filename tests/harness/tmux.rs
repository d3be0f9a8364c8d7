//! A terminal for the tests of what a person sees (tests/terminal.rs, the
//! README's prompt sessions in tests/readme.rs): a tmux server of its own
//! with one 200x50 session, `t`, running one shell command line; killed on
//! drop, also when a test panics.
//!
//! tmux must be installed (`.ci/run` installs it: `apt-get install tmux`).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// What the shell around the command prints when it ends: `[exit status 0]`.
pub const EXITED: &str = "[exit status ";

/// Why the terminal failed a test: tmux's own error, or the screen that did
/// not show what was awaited. Its `Debug` is the text itself, so that an
/// `unwrap` shows the screen as it was, line by line.
pub struct Failed(pub String);

impl fmt::Debug for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Failed> for String {
    fn from(failed: Failed) -> String {
        failed.0
    }
}

/// How the session's shell starts.
pub struct Setup<'a> {
    /// The shell tmux runs the command line in (`/bin/sh`, `/bin/bash`).
    pub shell: &'a str,
    /// Its working directory (tmux's own when None).
    pub cwd: Option<&'a Path>,
    /// Variables set for it, after the ones removed below.
    pub env: Vec<(String, String)>,
    /// Variables taken away from it (TERM is always `xterm-256color`).
    pub remove: &'a [&'a str],
}

pub struct Tmux {
    sock: PathBuf,
    env: Vec<(String, String)>,
    remove: Vec<String>,
    /// Holds the socket and the config; removed after the server is killed.
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a detached 200x50 session,
    /// followed by a line with its exit status ([`EXITED`]).
    ///
    /// Then the pane's shell stays, parked (`exec sleep infinity`), until the
    /// server is killed: the pane's process never exits while a test reads
    /// the screen. tmux 3.3 discards the output of a pane it has not read
    /// yet when it reaps the pane's process, and on a loaded machine it may
    /// reap first: the command's last lines and the status line were lost,
    /// and the screen showed only `Pane is dead (status 0, ...)`. The
    /// command is the shell's child, not tmux's, so its exit cannot race
    /// tmux's reading. (`remain-on-exit` only keeps the screen readable
    /// should the pane die anyway.) The trap keeps the shell alive through
    /// a Ctrl-C meant for the command (which gets the default disposition
    /// back when it starts).
    pub fn start(command: &str, setup: Setup<'_>) -> Result<Tmux, Failed> {
        let failed = |e: std::io::Error| Failed(format!("cannot set up tmux: {e}"));
        let dir = tempfile::tempdir().map_err(failed)?;
        let conf = dir.path().join("tmux.conf");
        fs::write(
            &conf,
            format!(
                "set -g remain-on-exit on\nset -g history-limit 5000\nset -g default-shell {}\n",
                setup.shell
            ),
        )
        .map_err(failed)?;
        let tmux = Tmux {
            sock: dir.path().join("sock"),
            env: setup.env,
            remove: setup.remove.iter().map(|v| v.to_string()).collect(),
            _dir: dir,
        };
        let line = format!("trap true INT; {command}; echo \"{EXITED}$?]\"; exec sleep infinity");
        let conf = conf.to_string_lossy().into_owned();
        let mut args = vec![
            "-f",
            &conf,
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "200",
            "-y",
            "50",
        ];
        let cwd = setup.cwd.map(|p| p.to_string_lossy().into_owned());
        if let Some(cwd) = &cwd {
            args.extend(["-c", cwd]);
        }
        args.push(&line);
        tmux.run(&args)?;
        Ok(tmux)
    }

    /// Runs `tmux ARGS` against this server; its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String, Failed> {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.sock).args(args);
        for var in &self.remove {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("TERM", "xterm-256color");
        let out = cmd.output().map_err(|e| {
            Failed(format!(
                "cannot run tmux ({e}); install it: apt-get install tmux"
            ))
        })?;
        if !out.status.success() {
            return Err(Failed(format!(
                "tmux {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Presses keys by tmux name (`Up`, `C-c`, `C-d`, `Enter`), or types
    /// text after `-l`.
    pub fn keys(&self, keys: &[&str]) -> Result<(), Failed> {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args).map(drop)
    }

    /// Types `text` literally, then Enter.
    pub fn type_line(&self, text: &str) -> Result<(), Failed> {
        self.keys(&["-l", text])?;
        self.keys(&["Enter"])
    }

    /// The whole screen and its scrollback.
    pub fn screen(&self) -> Result<String, Failed> {
        self.run(&["capture-pane", "-p", "-S", "-", "-t", "t"])
    }

    /// Polls the screen until `done` holds; the screen then, or, after
    /// `within`, the screen as it was.
    pub fn wait_until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, Failed> {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen()?;
            if done(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                return Err(Failed(format!(
                    "the screen did not show {what} within {within:?}:\n{screen}"
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the `n`th line starting with `prompt` is the last line
    /// on the screen, empty after the prompt: what was typed before it is
    /// done, and the program waits for the next line.
    pub fn wait_prompt(&self, prompt: &str, n: usize, within: Duration) -> Result<String, Failed> {
        let prompt = prompt.trim_end();
        self.wait_until(&format!("prompt number {n}, empty"), within, |s| {
            s.lines().filter(|l| l.starts_with(prompt)).count() == n && last_line(s) == prompt
        })
    }

    /// The command's exit status once it has ended, as the shell around it
    /// reports it. (tmux's own `#{pane_dead_status}` cannot tell it: the
    /// pane does not die when the command ends, see [`Tmux::start`].)
    pub fn exit_status(&self) -> Result<Option<i32>, Failed> {
        Ok(exit_status(&self.screen()?))
    }

    /// Waits for the command to end; the screen then, and its exit status.
    pub fn wait_exit(&self, within: Duration) -> Result<(String, i32), Failed> {
        let screen = self.wait_until("the command's end", within, |s| exit_status(s).is_some())?;
        let status = exit_status(&screen).unwrap_or(-1);
        Ok((screen, status))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .arg("kill-server")
            .output();
    }
}

/// The exit status the screen's [`EXITED`] line shows, if it has one.
pub fn exit_status(screen: &str) -> Option<i32> {
    let line = screen.lines().find(|l| l.starts_with(EXITED))?;
    line[EXITED.len()..]
        .trim_end()
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The last line with anything on it, without trailing blanks.
pub fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end()
}
