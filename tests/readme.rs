//! The README's transcripts, run (issue 23): every ```` ```console ```` block
//! in README.md is a session a newcomer could type, and this test types it,
//! in a fresh clone, with the real binaries, and checks that each command
//! prints what the README shows under it.
//!
//! The form of a transcript block:
//! - a line starting with `$ ` is a command, run by bash in the clone's
//!   directory (so pipes, redirections and `$?` work as they do for a
//!   user: `$?` is the status of the command before);
//! - the lines after it, up to the next command, are what it prints, stdout
//!   and stderr together, as a terminal shows them;
//! - a command ending in ` &` keeps running (a relay, a node) until the end
//!   of its section. Before the next command that runs to its end, the test
//!   waits, as a user would, until every line it shows has appeared (so a
//!   node's `catalog at relay` line means the relay has indexed it); at the
//!   end of its section what it printed is compared, its lines in any order
//!   (its threads log side by side). A last line `...` says it prints more
//!   later (a relay's line per question);
//! - a line starting with `file name> ` is the prompt with what the user
//!   types after it (`^C` is Ctrl-C): such a command runs in a terminal of
//!   its own (tmux), and what it prints is the screen.
//!
//! Each `## ` section is a session of its own: a fresh clone
//! (`/home/you/p2p-share`, with `sample_files/`, `demo.sh`, and the
//! binaries in `target/debug` and `target/release`, which the harness has
//! built, so demo.sh's `cargo build` is a stand-in), its own HOME, and the
//! commands' ports (`7000`, any `7xxx`) mapped to free ones. What differs from
//! run to run (times, ports, generated keys, ages) is compared by its place,
//! not its value; a value the README shows and later uses in a command (a
//! node's key for `--node`) is the value this run printed there.
//!
//! A block of another kind with a `$ ` line must open with the line
//! [`SKIPPED`] and say why (a second host, a NAT).
//!
//! `P2P_README_BLESS=1 cargo test --test readme` writes what the commands
//! printed into README.md instead of failing (the volatile parts as the
//! README had them); the normal run only compares.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use harness::tmux::{EXITED, Setup, Tmux};
use harness::{Proc, READY, bin};
use regex::Regex;

/// The first line of a transcript block this test does not run.
const SKIPPED: &str = "# not run by tests/readme.rs: ";

/// The client's prompt, and what its line looks like on the screen.
const PROMPT: &str = "file name> ";

/// A last output line saying that a running command prints more later.
const MORE: &str = "...";

/// The longest one command may take.
const COMMAND: Duration = Duration::from_secs(60);

/// The clone's place, as the README writes paths under it.
const HOME: &str = "home/you";
const CLONE: &str = "home/you/p2p-share";

#[test]
fn every_transcript_in_the_readme_prints_what_it_shows() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = readme.lines().map(str::to_string).collect();
    let sessions = parse(&lines).unwrap_or_else(|e| panic!("README.md: {e}"));
    assert!(
        sessions.iter().map(|s| s.steps.len()).sum::<usize>() >= 10,
        "README.md has hardly any transcripts: {} sessions",
        sessions.len()
    );
    let bless = std::env::var_os("P2P_README_BLESS").is_some();
    let rules = Rules::new();
    let mut report = Report::default();
    for session in &sessions {
        Session::run(session, &rules, &mut report);
    }
    if bless {
        let mut out = lines.clone();
        report.blessed.sort_by_key(|b| std::cmp::Reverse(b.0));
        for (start, end, new) in &report.blessed {
            out.splice(start..end, new.iter().cloned());
        }
        let mut text = out.join("\n");
        text.push('\n');
        if text != readme {
            fs::write(&path, text).unwrap();
            eprintln!("README.md: blessed {} commands", report.failures.len());
        }
        // A section that broke off has commands nobody ran: nothing to
        // bless them with.
        assert!(
            report.broken.is_empty(),
            "blessed what ran, but not all of it:\n\n{}",
            report.broken.join("\n")
        );
        return;
    }
    assert!(
        report.failures.is_empty(),
        "{} of the README's commands print something else than it shows \
         (P2P_README_BLESS=1 cargo test --test readme writes what they print):\n\n{}",
        report.failures.len(),
        report.failures.join("\n")
    );
}

/// One command of a transcript and what the README shows it printing.
#[derive(Debug)]
struct Step {
    /// The index of the `$ ` line in README.md.
    line: usize,
    command: String,
    background: bool,
    /// The lines shown under it (without a last `...`).
    shown: Vec<String>,
    /// A last `...` line: it prints more later.
    more: bool,
}

impl Step {
    /// Where its lines are in README.md: the first and one past the last.
    fn span(&self) -> (usize, usize) {
        let start = self.line + 1;
        (start, start + self.shown.len() + usize::from(self.more))
    }

    /// What the user types at each prompt, in order.
    fn inputs(&self) -> Vec<&str> {
        self.shown
            .iter()
            .filter_map(|l| l.strip_prefix(PROMPT))
            .collect()
    }

    fn title(&self) -> String {
        format!("README.md:{}: $ {}", self.line + 1, self.command)
    }
}

/// The transcripts of one `## ` section.
#[derive(Debug)]
struct SessionSteps {
    heading: String,
    steps: Vec<Step>,
}

/// The sessions of the README, in order; an error names a block that breaks
/// the form (see the module's comment).
fn parse(lines: &[String]) -> Result<Vec<SessionSteps>, String> {
    let mut sessions = vec![SessionSteps {
        heading: "(top)".into(),
        steps: Vec::new(),
    }];
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if let Some(heading) = line.strip_prefix("## ") {
            sessions.push(SessionSteps {
                heading: heading.to_string(),
                steps: Vec::new(),
            });
        }
        let Some(info) = line.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let open = i;
        let end = (open + 1..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .ok_or_else(|| format!("line {}: a block that never ends", open + 1))?;
        let body = &lines[open + 1..end];
        i = end + 1;
        if info.trim() != "console" {
            let commands = body.iter().any(|l| l.starts_with("$ "));
            let skipped = body.first().is_some_and(|l| l.starts_with(SKIPPED));
            if commands && !skipped {
                return Err(format!(
                    "line {}: a ```{info} block with commands: make it ```console (run), or \
                     open it with {SKIPPED:?} and why",
                    open + 1
                ));
            }
            continue;
        }
        let steps = &mut sessions.last_mut().unwrap().steps;
        for (k, text) in body.iter().enumerate() {
            let at = open + 1 + k;
            if let Some(command) = text.strip_prefix("$ ") {
                let command = command.trim_end();
                let background = command.ends_with(" &");
                steps.push(Step {
                    line: at,
                    command: command.trim_end_matches(" &").trim_end().to_string(),
                    background,
                    shown: Vec::new(),
                    more: false,
                });
                continue;
            }
            let Some(step) = steps.last_mut().filter(|s| s.line > open) else {
                return Err(format!("line {}: output before any command", at + 1));
            };
            if step.more {
                return Err(format!("line {}: a line after {MORE:?}", at + 1));
            }
            if text == MORE {
                if !step.background {
                    return Err(format!(
                        "line {}: {MORE:?} under a command that does not keep running",
                        at + 1
                    ));
                }
                step.more = true;
            } else {
                step.shown.push(text.clone());
            }
        }
    }
    sessions.retain(|s| !s.steps.is_empty());
    Ok(sessions)
}

/// What differs from run to run, found by regexes: the part named `v` of
/// each match is volatile (a time, a port, a key), the rest is its context.
struct Rules {
    rules: Vec<Regex>,
    /// A README port in a command: 7000 to 7999.
    port: Regex,
}

impl Rules {
    fn new() -> Rules {
        let ip = r"(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]*\])";
        let rules = [
            r"(?P<v>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z)".to_string(),
            format!(r"{ip}:(?P<v>\d+)"),
            // The padding after a port, as wide as the port is short.
            r":<1>(?P<v> {2,})".into(),
            format!(r"{ip} (?P<v>\d{{2,5}})\b"),
            r"refreshed (?P<v>\d+)s ago".into(),
            r"\bin (?P<v>\d+) ms\b".into(),
            // A key (a node's, the relay key); content hashes stay.
            r"(?P<b>blake3:)?\b(?P<v>[0-9a-f]{64})\b".into(),
            // The key file named after the shared directory's path.
            r"-(?P<v>[0-9a-f]{16})\.key\b".into(),
        ];
        Rules {
            rules: rules.iter().map(|r| Regex::new(r).unwrap()).collect(),
            port: Regex::new(r"\b7\d{3}\b").unwrap(),
        }
    }

    /// `line` with each volatile part replaced by `with(rule, value)`, and
    /// the values in order.
    fn replace(&self, line: &str, with: impl Fn(usize, &str) -> String) -> (String, Vec<String>) {
        let mut text = line.to_string();
        let mut values = Vec::new();
        for (n, rule) in self.rules.iter().enumerate() {
            text = rule
                .replace_all(&text, |c: &regex::Captures| {
                    let whole = c.get(0).unwrap();
                    if c.name("b").is_some() {
                        return whole.as_str().to_string();
                    }
                    let v = c.name("v").unwrap();
                    values.push(v.as_str().to_string());
                    let at = v.start() - whole.start();
                    let s = whole.as_str();
                    format!("{}{}{}", &s[..at], with(n, v.as_str()), &s[at + v.len()..])
                })
                .into_owned();
        }
        (text, values)
    }

    /// The volatile values of `line`, per rule, in order.
    fn by_rule(&self, line: &str) -> Vec<Vec<String>> {
        let values = std::cell::RefCell::new(vec![Vec::new(); self.rules.len()]);
        self.replace(line, |n, v| {
            values.borrow_mut()[n].push(v.to_string());
            v.to_string()
        });
        values.into_inner()
    }

    /// The line with its volatile parts as placeholders, and their values.
    fn normal(&self, line: &str) -> (String, Vec<String>) {
        self.replace(line, |n, _| format!("<{n}>"))
    }
}

/// What the run found: the diffs, and for bless, README lines to replace.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    /// The failures that stopped a section.
    broken: Vec<String>,
    /// (first line, one past the last, new lines).
    blessed: Vec<(usize, usize, Vec<String>)>,
}

/// A command that keeps running, with what it printed so far.
struct Job<'a> {
    step: &'a Step,
    proc: Proc,
    /// Its lines have all appeared and were compared.
    seen: bool,
}

/// One section's run: its clone, its ports, the values learned so far.
struct Session<'a> {
    rules: &'a Rules,
    _tmp: tempfile::TempDir,
    /// The temp dir's path, which the output shows as the README's `/`.
    root: PathBuf,
    clone: PathBuf,
    home: PathBuf,
    /// README value -> this run's value (ports, keys).
    to_run: HashMap<String, String>,
    /// This run's value -> the README's.
    to_readme: HashMap<String, String>,
    jobs: Vec<Job<'a>>,
    status: i32,
}

impl<'a> Session<'a> {
    fn run(steps: &'a SessionSteps, rules: &'a Rules, report: &mut Report) {
        let mut session = Session::new(rules);
        for step in &steps.steps {
            let outcome = if step.background {
                session.start_job(step)
            } else {
                session.wait_jobs();
                session.run_step(step, report)
            };
            if let Err(e) = outcome {
                let broken = format!(
                    "{}\n  in section {:?}: {e}; the rest of the section is not run\n",
                    step.title(),
                    steps.heading
                );
                report.failures.push(broken.clone());
                report.broken.push(broken);
                break;
            }
        }
        session.wait_jobs();
        session.end_jobs(report);
    }

    fn new(rules: &'a Rules) -> Session<'a> {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().canonicalize().unwrap();
        let clone = root.join(CLONE);
        let home = root.join(HOME);
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&src.join("sample_files"), &clone.join("sample_files"));
        fs::copy(src.join("demo.sh"), clone.join("demo.sh")).unwrap();
        for profile in ["debug", "release"] {
            let dir = clone.join("target").join(profile);
            fs::create_dir_all(&dir).unwrap();
            for name in ["relay", "peer-node", "peer-client"] {
                std::os::unix::fs::symlink(bin(name), dir.join(name)).unwrap();
            }
        }
        // demo.sh builds first; the harness has built the binaries already,
        // and the clone has no sources, so its `cargo` only says it is done.
        let tools = root.join("tools");
        fs::create_dir_all(&tools).unwrap();
        fs::write(tools.join("cargo"), "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tools.join("cargo"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(root.join("tmp")).unwrap();
        Session {
            rules,
            _tmp: tmp,
            root,
            clone,
            home,
            to_run: HashMap::new(),
            to_readme: HashMap::new(),
            jobs: Vec::new(),
            status: 0,
        }
    }

    /// The environment a newcomer's shell has, inside the clone.
    fn env(&self, cmd: &mut Command) {
        for var in [
            "XDG_CONFIG_HOME",
            "XDG_CACHE_HOME",
            "XDG_RUNTIME_DIR",
            "CARGO_TARGET_DIR",
            "RUST_LOG",
            "P2P_SECRET",
            "RELAY_TOKEN",
            "CREDENTIALS_DIRECTORY",
            "NO_COLOR",
            "TMUX",
        ] {
            cmd.env_remove(var);
        }
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("HOME", &self.home)
            .env(
                "PATH",
                format!("{}:{path}", self.root.join("tools").display()),
            )
            .env("TMPDIR", self.root.join("tmp"))
            .current_dir(&self.clone);
    }

    /// The command as this run types it: free ports for the README's, and
    /// the values this run printed where the README shows its own.
    fn command(&mut self, step: &Step) -> String {
        let rules = self.rules;
        let text = rules
            .port
            .replace_all(&step.command, |c: &regex::Captures| {
                let port = c.get(0).unwrap().as_str();
                if let Some(mine) = self.to_run.get(port) {
                    return mine.clone();
                }
                let mine = harness::free_port().to_string();
                self.to_run.insert(port.to_string(), mine.clone());
                self.to_readme.insert(mine.clone(), port.to_string());
                mine
            })
            .into_owned();
        let (text, _) = rules.replace(&text, |_, v| {
            self.to_run.get(v).cloned().unwrap_or_else(|| v.to_string())
        });
        text
    }

    /// An output line as the README would write it, before normalising: the
    /// temp dir is `/`.
    fn local(&self, line: &str) -> String {
        let root = self.root.to_str().unwrap();
        line.replace(root, "").trim_end().to_string()
    }

    /// A line of this run with the values it shares with the README's
    /// lines written as the README writes them.
    fn as_readme(&self, line: &str) -> String {
        self.as_readme_like(line, None)
    }

    /// Like [`Session::as_readme`], and a value this run alone has (a
    /// time) is written as in `like`, the README's line it replaces, when
    /// that has one in the same place.
    fn as_readme_like(&self, line: &str, like: Option<&str>) -> String {
        let theirs = like.map(|l| self.rules.by_rule(l)).unwrap_or_default();
        let seen = std::cell::RefCell::new(vec![0usize; self.rules.rules.len()]);
        self.rules
            .replace(line, |n, v| {
                let k = seen.borrow()[n];
                seen.borrow_mut()[n] += 1;
                if let Some(readme) = self.to_readme.get(v) {
                    return readme.clone();
                }
                theirs
                    .get(n)
                    .and_then(|values| values.get(k))
                    .cloned()
                    .unwrap_or_else(|| v.to_string())
            })
            .0
    }

    fn learn(&mut self, readme: &str, run: &str) {
        let (_, theirs) = self.rules.normal(readme);
        let (_, mine) = self.rules.normal(run);
        for (r, m) in theirs.into_iter().zip(mine) {
            self.to_readme.entry(m.clone()).or_insert_with(|| r.clone());
            self.to_run.entry(r).or_insert(m);
        }
    }

    fn start_job(&mut self, step: &'a Step) -> Result<(), String> {
        let text = self.command(step);
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(format!("exec {text} 1>&2"));
        self.env(&mut cmd);
        let proc = Proc::spawn(&step.command, cmd);
        // Started: its first line is out (a relay listens, a node shares).
        // Whether that line says what the README shows is compared later,
        // with the rest.
        if !step.shown.is_empty() {
            self.poll(&proc, READY, |lines| !lines.is_empty())
                .map_err(|log| format!("it printed nothing within {READY:?}: {log}"))?;
        }
        self.jobs.push(Job {
            step,
            proc,
            seen: false,
        });
        Ok(())
    }

    /// The job's lines, local and normal.
    fn job_lines(&self, proc: &Proc) -> Vec<(String, String)> {
        proc.log()
            .lines()
            .map(|l| {
                let local = self.local(l);
                (self.rules.normal(&local).0, local)
            })
            .collect()
    }

    /// Polls a job's output until `done`; on timeout, its log.
    fn poll(
        &self,
        proc: &Proc,
        timeout: Duration,
        done: impl Fn(&[(String, String)]) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.job_lines(proc);
            if done(&lines) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("({}) {}", proc.state(), proc.log()));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every running job has printed every line it shows, as a
    /// user would before typing the next command, and learns their values.
    /// A job whose lines do not all come is compared (and blessed) at the
    /// end of its section; the section goes on meanwhile, so that one
    /// changed message does not keep the rest from being compared.
    fn wait_jobs(&mut self) {
        for k in 0..self.jobs.len() {
            if self.jobs[k].seen {
                continue;
            }
            let step = self.jobs[k].step;
            let want: Vec<String> = step.shown.iter().map(|l| self.rules.normal(l).0).collect();
            let _ = self.poll(&self.jobs[k].proc, READY, |lines| {
                matching(&want, lines).iter().all(Option::is_some)
            });
            self.jobs[k].seen = true;
            let lines = self.job_lines(&self.jobs[k].proc);
            let found = matching(&want, &lines);
            for (shown, got) in step.shown.iter().zip(&found) {
                if let Some(got) = got {
                    let run = lines[*got].1.clone();
                    self.learn(shown, &run);
                }
            }
        }
    }

    /// Compares what each job printed, all in all, and ends it.
    fn end_jobs(&mut self, report: &mut Report) {
        let jobs = std::mem::take(&mut self.jobs);
        for job in jobs.iter().rev() {
            let step = job.step;
            let lines = self.job_lines(&job.proc);
            let want: Vec<String> = step.shown.iter().map(|l| self.rules.normal(l).0).collect();
            let found = matching(&want, &lines);
            let mut used = vec![false; lines.len()];
            let mut diff = Vec::new();
            let mut blessed = Vec::new();
            for got in found.iter().flatten() {
                used[*got] = true;
            }
            for (shown, got) in step.shown.iter().zip(&found) {
                if got.is_some() {
                    diff.push(format!("  {shown}"));
                    blessed.push(shown.clone());
                    continue;
                }
                diff.push(format!("- {shown}"));
                // For bless: the printed line most like it (a message that
                // changed), which no other shown line took.
                if let Some(k) = most_like(shown, &lines, &used) {
                    used[k] = true;
                    let line = self.as_readme_like(&lines[k].1, Some(shown));
                    diff.push(format!("+ {line}"));
                    blessed.push(line);
                }
            }
            let missing = found.iter().any(Option::is_none);
            let mut extra = false;
            if !step.more {
                for (k, (_, local)) in lines.iter().enumerate() {
                    if !used[k] {
                        extra = true;
                        let line = self.as_readme(local);
                        diff.push(format!("+ {line}"));
                        blessed.push(line);
                    }
                }
            } else {
                diff.push(format!("  {MORE}"));
                blessed.push(MORE.to_string());
            }
            if missing || extra {
                report.failures.push(format!(
                    "{} (runs on; its lines in any order)\n{}\n",
                    step.title(),
                    diff.join("\n")
                ));
            }
            let (start, end) = step.span();
            report.blessed.push((start, end, blessed));
        }
        // Dropping the jobs kills them.
        drop(jobs);
    }

    /// Runs a command to its end and compares what it printed.
    fn run_step(&mut self, step: &Step, report: &mut Report) -> Result<(), String> {
        let text = self.command(step);
        let inputs = step.inputs();
        let (printed, status) = if inputs.is_empty() {
            self.run_piped(&text)?
        } else {
            self.run_in_terminal(&text, &inputs)?
        };
        self.status = status;
        let got: Vec<String> = printed.iter().map(|l| self.local(l)).collect();
        let want: Vec<String> = step.shown.iter().map(|l| self.rules.normal(l).0).collect();
        let have: Vec<String> = got.iter().map(|l| self.rules.normal(l).0).collect();
        let ops = diff(&want, &have);
        let mut lines = Vec::new();
        let mut blessed = Vec::new();
        let mut same = true;
        for op in &ops {
            if let Op::Same(w, h) = op {
                self.learn(&step.shown[*w], &got[*h]);
            }
        }
        // The shown lines a run of printed ones replaces, for their times.
        let mut replaced = std::collections::VecDeque::new();
        for op in ops {
            match op {
                Op::Same(w, _) => {
                    replaced.clear();
                    lines.push(format!("  {}", step.shown[w]));
                    blessed.push(step.shown[w].clone());
                }
                Op::Shown(w) => {
                    same = false;
                    replaced.push_back(w);
                    lines.push(format!("- {}", step.shown[w]));
                }
                Op::Printed(h) => {
                    same = false;
                    let like = replaced.pop_front().map(|w| step.shown[w].as_str());
                    let line = self.as_readme_like(&got[h], like);
                    lines.push(format!("+ {line}"));
                    blessed.push(line);
                }
            }
        }
        if !same {
            report.failures.push(format!(
                "{} (exit status {status}; - the README, + this run)\n{}\n",
                step.title(),
                lines.join("\n")
            ));
        }
        let (start, end) = step.span();
        report.blessed.push((start, end, blessed));
        Ok(())
    }

    /// Runs `text` with stdout and stderr on one pipe, as on one terminal.
    fn run_piped(&self, text: &str) -> Result<(Vec<String>, i32), String> {
        let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!("(exit {}); {text}", self.status))
            .stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(|e| e.to_string())?)
            .stderr(writer)
            .process_group(0);
        self.env(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start bash: {e}"))?;
        // Only the child holds the write end now.
        drop(cmd);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut out = Vec::new();
            let _ = reader.read_to_end(&mut out);
            let _ = tx.send(out);
        });
        let group = child.id() as libc::pid_t;
        let kill = || {
            // SAFETY: kill(2) on the process group this test started.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        };
        let deadline = Instant::now() + COMMAND;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if Instant::now() >= deadline {
                kill();
                let _ = child.wait();
                return Err(format!("it did not end within {COMMAND:?}"));
            }
            thread::sleep(Duration::from_millis(10));
        };
        let out = rx.recv_timeout(READY).map_err(|_| {
            kill();
            "it ended, but something it started kept its output open".to_string()
        })?;
        let text = String::from_utf8_lossy(&out);
        Ok((
            text.lines().map(str::to_string).collect(),
            status.code().unwrap_or(-1),
        ))
    }

    /// Runs `text` in a terminal (tmux), typing `inputs` at the prompts;
    /// returns the screen up to its end.
    fn run_in_terminal(&self, text: &str, inputs: &[&str]) -> Result<(Vec<String>, i32), String> {
        let mut probe = Command::new("true");
        self.env(&mut probe);
        let env = probe
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
            .collect();
        let setup = Setup {
            shell: "/bin/bash",
            cwd: Some(&self.clone),
            env,
            remove: &[
                "XDG_CONFIG_HOME",
                "XDG_CACHE_HOME",
                "RUST_LOG",
                "P2P_SECRET",
                "TMUX",
            ],
        };
        // `(exit N)`: `$?` is the previous command's status, as in the
        // session the README shows.
        let term = Tmux::start(&format!("(exit {}); {text}", self.status), setup)?;
        for (n, input) in inputs.iter().enumerate() {
            term.wait_prompt(PROMPT, n + 1, COMMAND)?;
            if *input == "^C" {
                term.keys(&["C-c"])?;
            } else {
                term.type_line(input)?;
            }
        }
        let (screen, status) = term.wait_exit(COMMAND)?;
        let mut lines: Vec<String> = screen
            .lines()
            .take_while(|l| !l.starts_with(EXITED))
            .map(|l| l.trim_end().to_string())
            .collect();
        // The screen shows a Ctrl-C as nothing; the README as `^C`.
        let mut n = 0;
        for line in &mut lines {
            if line.starts_with(PROMPT.trim_end()) {
                if inputs.get(n) == Some(&"^C") {
                    *line = format!("{PROMPT}^C");
                }
                n += 1;
            }
        }
        Ok((lines, status))
    }
}

/// For each wanted line, the index of a distinct printed line equal to it
/// (the first unused), or None.
fn matching(want: &[String], lines: &[(String, String)]) -> Vec<Option<usize>> {
    let mut used = vec![false; lines.len()];
    want.iter()
        .map(|w| {
            let k = (0..lines.len()).find(|&k| !used[k] && &lines[k].0 == w)?;
            used[k] = true;
            Some(k)
        })
        .collect()
}

/// The unused printed line sharing the most words with `shown`, if it
/// shares at least half of them.
fn most_like(shown: &str, lines: &[(String, String)], used: &[bool]) -> Option<usize> {
    let words: Vec<&str> = shown.split_whitespace().collect();
    let (k, common) = (0..lines.len())
        .filter(|&k| !used[k])
        .map(|k| {
            let common = lines[k]
                .1
                .split_whitespace()
                .filter(|w| words.contains(w))
                .count();
            (k, common)
        })
        .max_by_key(|&(k, common)| (common, std::cmp::Reverse(k)))?;
    (2 * common >= words.len()).then_some(k)
}

/// One line of a diff: shown and printed alike, only shown, only printed.
enum Op {
    Same(usize, usize),
    Shown(usize),
    Printed(usize),
}

/// The shortest edit from `a` (shown) to `b` (printed): a longest common
/// subsequence (transcripts are a few dozen lines).
fn diff(a: &[String], b: &[String]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same(i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Shown(i));
            i += 1;
        } else {
            ops.push(Op::Printed(j));
            j += 1;
        }
    }
    ops
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_transcript_parses_into_commands_and_their_lines() {
    let text = "## A\n```console\n$ relay 7000 &\nlistening\n...\n$ client 7000 x\nline 1\nline 2\n```\n\
                ```text\n# not run by tests/readme.rs: needs a NAT\n$ far away\n```\n";
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let sessions = parse(&lines).unwrap();
    assert_eq!(sessions.len(), 1);
    let steps = &sessions[0].steps;
    assert_eq!(steps.len(), 2);
    assert!(steps[0].background && steps[0].more);
    assert_eq!(steps[0].command, "relay 7000");
    assert_eq!(steps[0].span(), (3, 5));
    assert_eq!(steps[1].shown, ["line 1", "line 2"]);
    assert_eq!(steps[1].span(), (6, 8));

    let unmarked = "```text\n$ far away\n```\n";
    let lines: Vec<String> = unmarked.lines().map(str::to_string).collect();
    assert!(parse(&lines).unwrap_err().contains("make it ```console"));
}

#[test]
fn volatile_parts_compare_by_place_and_bless_keeps_the_readmes() {
    let rules = Rules::new();
    let readme = "2026-11-24T21:42:39.179450Z  INFO node joined: 127.0.0.1:37499 (1 active)";
    let run = "2027-01-02T03:04:05.000001Z  INFO node joined: 127.0.0.1:41234 (1 active)";
    let (a, va) = rules.normal(readme);
    let (b, vb) = rules.normal(run);
    assert_eq!(a, b);
    assert_eq!(va[1], "37499");
    assert_eq!(vb[1], "41234");
    // A content hash is content, not volatile.
    let hash = "blake3:275ba016d5ceeb9433f1cfe437bca3c0bc0bc931c25c74c5653f0c2fa706d8dc";
    assert_eq!(rules.normal(hash).0, hash);
    let key = "key 6ea08513989a7c7603bff62e4b056464c78d2ba7c267575ed5e0c2f4c7e96879";
    assert_eq!(rules.normal(key).0, "key <6>");
}
