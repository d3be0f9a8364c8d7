//! The bounded queue between the threads that log and the one thread that
//! writes to stderr.
//!
//! A pipe whose reader is alive but does not read (`peer-node ... 2>&1 |
//! less` left paused, a supervisor that stopped draining) fills up, and then
//! write(2) blocks for as long as the reader likes. If the threads that serve
//! wrote their own lines, each would stop there, and the program would stop
//! serving while looking alive. So they only append to this queue, which
//! never waits: when it holds its budget of bytes, a line is dropped and
//! counted. The writer thread is the only one that may block on stderr.
//!
//! Lines are kept back to back in one buffer, so queueing a line costs a
//! copy, not an allocation. The budget counts the batch the writer is
//! writing as well as what waits behind it, so memory stays bounded however
//! long stderr is stuck. Once a line has been dropped, every later one is
//! too until the writer takes the queue, and then it writes one line saying
//! how many were dropped, where they would have been: the log shows the gap
//! in its place.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Room kept above the budget for the line that reports drops, so that it
/// is never dropped itself.
const NOTICE_ROOM: usize = 256;

/// Log lines on their way to stderr; see the module documentation.
pub struct Queue {
    state: Mutex<State>,
    /// Signalled when there is something for the writer.
    work: Condvar,
    /// Signalled when the writer finished a batch.
    wrote: Condvar,
    /// Most bytes held: queued, plus the batch being written.
    budget: usize,
}

#[derive(Default)]
struct State {
    /// Lines not yet taken by the writer, back to back.
    pending: Vec<u8>,
    /// Bytes held: `pending` plus the batch the writer is writing.
    held: usize,
    /// Lines refused since the last line that reported drops.
    dropped: u64,
    /// Entries (lines, and lines reporting drops) queued since the start.
    queued: u64,
    /// Entries the writer is done with: written, or failed to write.
    done: u64,
    /// Tests only: the writer returns once it has nothing left.
    #[cfg(test)]
    closed: bool,
}

/// Lines every queue of this process dropped, in all (for the metrics;
/// `State::dropped` counts only since the last report in the log).
pub(super) static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Queue {
    pub fn new(budget: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            work: Condvar::new(),
            wrote: Condvar::new(),
            budget,
        }
    }

    /// Queues `line` (one whole log line, as tracing-subscriber writes one
    /// event in one call), or counts it as dropped when the queue is full.
    /// Never waits for the writer.
    pub fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if state.dropped > 0 || state.held + line.len() > self.budget {
            state.dropped += 1;
            DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        state.pending.extend_from_slice(line);
        state.held += line.len();
        state.queued += 1;
        drop(state);
        self.work.notify_one();
    }

    /// Waits until every line queued before this call has been written (or
    /// failed to be), at most `within`. Returns whether they all were; false
    /// means stderr is stuck, and the lines stay queued.
    pub fn flush(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut state = self.lock();
        // Drops not yet reported are reported now: an exit must not hide them.
        self.close_gap(&mut state);
        let target = state.queued;
        self.work.notify_one();
        while state.done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .wrote
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// The writer's loop: takes everything queued and writes it to `out` in
    /// one go, for as long as the process lives. A failed write (EPIPE,
    /// EBADF) loses that batch and nothing else.
    pub fn write_to(&self, out: &mut impl Write) {
        // Two buffers in turn: the one being written, and the one filling.
        let mut batch = Vec::new();
        loop {
            let mut state = self.lock();
            loop {
                if !state.pending.is_empty() || state.dropped > 0 {
                    break;
                }
                #[cfg(test)]
                if state.closed {
                    return;
                }
                state = self.work.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            self.close_gap(&mut state);
            batch.clear();
            std::mem::swap(&mut batch, &mut state.pending);
            let end = state.queued;
            drop(state);

            let _ = out.write_all(&batch).and_then(|()| out.flush());

            let mut state = self.lock();
            state.held -= batch.len();
            state.done = end;
            drop(state);
            self.wrote.notify_all();
        }
    }

    /// Tests only: lets [`Queue::write_to`] return once the queue is empty.
    #[cfg(test)]
    pub fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// Appends the line reporting the lines dropped since the last one, if
    /// any were: after every line queued before them, before every later one.
    fn close_gap(&self, state: &mut State) {
        if state.dropped == 0 {
            return;
        }
        let notice = super::own_line(
            "WARN",
            format_args!(
                "{} log line{} dropped here: stderr was not being read",
                state.dropped,
                if state.dropped == 1 { "" } else { "s" }
            ),
        );
        // Past the budget by at most one such line: no line is queued while
        // drops are unreported, so two never follow each other.
        if state.held + notice.len() > self.budget + NOTICE_ROOM {
            return;
        }
        state.pending.extend_from_slice(notice.as_bytes());
        state.held += notice.len();
        state.queued += 1;
        state.dropped = 0;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; should something, the queue is
        // still consistent (every update is complete before it unlocks).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, mpsc};
    use std::thread;

    /// A stderr whose reader does not read until the test says so: the
    /// first write says it started (`entered`), waits for the gate to open,
    /// then lands in `got`, as every later write does.
    struct Gated {
        entered: mpsc::Sender<()>,
        gate: mpsc::Receiver<()>,
        open: bool,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.open {
                let _ = self.entered.send(());
                self.gate.recv().unwrap();
                self.open = true;
            }
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(i: usize) -> String {
        format!("line {i:05}\n")
    }

    #[test]
    fn a_full_queue_drops_and_counts_lines_and_reports_them_in_their_place() {
        const BUDGET: usize = 1_000;
        const LINE: usize = 11; // "line 00000\n"
        const FIT: usize = BUDGET / LINE;
        let queue = Arc::new(Queue::new(BUDGET));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (open, gate) = mpsc::channel();
        let (entered, stuck) = mpsc::channel();
        let writer = {
            let queue = Arc::clone(&queue);
            let mut out = Gated {
                entered,
                gate,
                open: false,
                got: Arc::clone(&got),
            };
            thread::spawn(move || queue.write_to(&mut out))
        };

        // The writer takes the first line and is stuck writing it before
        // the rest are pushed. (Were it still starting, it could take the
        // queue in the middle of the drops and report them in two parts:
        // the test failed so on a loaded machine.)
        queue.push(line(0).as_bytes());
        stuck.recv().unwrap();
        // Pushing never waits: the queue takes what fits in its budget
        // (the batch being written counts) and counts the rest.
        let started = Instant::now();
        for i in 1..10_000 {
            queue.push(line(i).as_bytes());
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "pushing took {:?}: it waited for the writer",
            started.elapsed()
        );
        assert!(!queue.flush(Duration::from_millis(50)), "stderr is stuck");
        assert!(queue.lock().held <= BUDGET + NOTICE_ROOM);

        // The reader comes back.
        open.send(()).unwrap();
        assert!(queue.flush(Duration::from_secs(10)));
        queue.push(b"after\n");
        assert!(queue.flush(Duration::from_secs(10)));
        queue.close();
        writer.join().unwrap();

        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), FIT + 2, "{text}");
        for (i, l) in lines[..FIT].iter().enumerate() {
            assert_eq!(format!("{l}\n"), line(i), "the lines that fit, in order");
        }
        assert!(
            lines[FIT].ends_with(&format!(
                "WARN {} log lines dropped here: stderr was not being read",
                10_000 - FIT
            )),
            "{:?}",
            lines[FIT]
        );
        assert_eq!(lines[FIT + 1], "after");
    }

    #[test]
    fn drops_with_no_line_after_them_are_still_reported() {
        let queue = Arc::new(Queue::new(20));
        queue.push(b"0123456789012345678\n");
        queue.push(b"one too many\n");
        let mut out = Vec::new();
        let writer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                queue.write_to(&mut out);
                out
            })
        };
        assert!(queue.flush(Duration::from_secs(10)));
        queue.close();
        let text = String::from_utf8(writer.join().unwrap()).unwrap();
        assert!(text.starts_with("0123456789012345678\n"), "{text}");
        assert!(
            text.trim_end()
                .ends_with("WARN 1 log line dropped here: stderr was not being read"),
            "{text}"
        );
        assert_eq!(queue.lock().held, 0);
    }

    #[test]
    fn a_failed_write_loses_its_batch_only() {
        /// A stderr whose first write fails, as into a closed pipe.
        struct FailsOnce {
            failed: bool,
            got: Vec<u8>,
        }
        impl Write for FailsOnce {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if !self.failed {
                    self.failed = true;
                    return Err(std::io::ErrorKind::BrokenPipe.into());
                }
                self.got.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let queue = Arc::new(Queue::new(1_000));
        let writer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut out = FailsOnce {
                    failed: false,
                    got: Vec::new(),
                };
                queue.write_to(&mut out);
                out.got
            })
        };
        queue.push(b"lost\n");
        assert!(queue.flush(Duration::from_secs(10)));
        queue.push(b"written\n");
        assert!(queue.flush(Duration::from_secs(10)));
        queue.close();
        assert_eq!(writer.join().unwrap(), b"written\n");
        assert_eq!(queue.lock().held, 0, "the failed batch was released");
    }
}
