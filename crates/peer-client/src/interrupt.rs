//! Ctrl-C at the prompt stops the `get` under way, not the client: the
//! transfer ends, one line says so, and `file name> ` comes back with its
//! history, as Ctrl-C does to a command in a shell. Anywhere else (a fetch
//! named on the command line, a listing, input from a pipe) SIGINT still
//! ends the client with status 130 ([`crate::signals`]).
//!
//! The signal arrives on the signals thread while the prompt's thread is in
//! the fetch, often blocked reading a socket (a stalled node may not send
//! for the whole `--timeout`). So each connection a `get` opens is watched
//! here ([`watch`], by the dialer): an interrupt shuts them all down, and
//! the blocked reads return at once. Connections opened after it are shut
//! as soon as they are made, outputs refuse further bytes ([`stopped`]),
//! and status lines are held back ([`crate::report`]): the holders' failures
//! that follow are the interrupt's doing, not news. A save keeps its
//! verified part, so the same `get` resumes it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use net::exchange::{Closer, Connection};

/// The `get` under way at the prompt, if any.
struct State {
    /// A `get` at the prompt is running: SIGINT is for it.
    armed: bool,
    /// Its connections, shut down on an interrupt.
    open: Vec<Closer>,
    /// The line saying it stopped was printed.
    said: bool,
}

/// The process's one interrupt state (a value of its own in the tests,
/// which run beside others that write outputs).
struct Interrupt {
    state: Mutex<State>,
    /// Ctrl-C came during the `get` under way (read on every chunk
    /// written, so kept apart from the lock).
    stopped: AtomicBool,
}

static INTERRUPT: Interrupt = Interrupt::new();

impl Interrupt {
    const fn new() -> Interrupt {
        Interrupt {
            state: Mutex::new(State {
                armed: false,
                open: Vec::new(),
                said: false,
            }),
            stopped: AtomicBool::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arm(&self) {
        let mut state = self.state();
        state.armed = true;
        state.open.clear();
        state.said = false;
        self.stopped.store(false, Ordering::SeqCst);
    }

    fn disarm(&self) {
        let mut state = self.state();
        state.armed = false;
        state.open.clear();
        self.stopped.store(false, Ordering::SeqCst);
    }

    fn watch(&self, conn: &Connection) {
        let mut state = self.state();
        if !state.armed {
            return;
        }
        let Ok(closer) = conn.closer() else {
            return;
        };
        if self.stopped.load(Ordering::SeqCst) {
            closer.close();
        }
        state.open.push(closer);
    }

    fn interrupt(&self) -> bool {
        let state = self.state();
        if !state.armed {
            return false;
        }
        self.stopped.store(true, Ordering::SeqCst);
        for closer in &state.open {
            closer.close();
        }
        true
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// One `get` at the prompt: SIGINT stops it while this lives.
pub struct Transfer {
    _private: (),
}

impl Transfer {
    /// Arms the interrupt for a `get` that starts now.
    pub fn start() -> Transfer {
        INTERRUPT.arm();
        Transfer { _private: () }
    }

    /// Ends the `get` of `name`: says it was stopped unless that was said
    /// already, and tells whether it was. A `get` that was `done` when
    /// Ctrl-C came was not stopped.
    pub fn end(self, name: &str, done: bool) -> bool {
        let stopped = stopped() && !done;
        if stopped && !INTERRUPT.state().said {
            say_stopped(name, None);
        }
        stopped
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        INTERRUPT.disarm();
    }
}

/// Called by the dialer for each connection it opens: watched while a
/// `get` is armed (the list is as long as the connections one fetch
/// makes, a few per holder), shut at once if it was already stopped.
pub fn watch(conn: &Connection) {
    INTERRUPT.watch(conn);
}

/// SIGINT: stops the armed `get`, and returns true; false when no `get`
/// is armed (the signal then ends the client).
pub fn interrupt() -> bool {
    INTERRUPT.interrupt()
}

/// Whether the `get` under way was stopped: outputs take no more bytes,
/// and status lines are held back.
pub fn stopped() -> bool {
    INTERRUPT.stopped()
}

/// The one line for a stopped `get` of `name`, with what a save kept
/// (`interrupted at 12 MiB of 1.0 GiB; run the same command to resume`).
pub fn say_stopped(name: &str, kept: Option<String>) {
    INTERRUPT.state().said = true;
    crate::output::end_terminal_line();
    let line = match kept {
        Some(kept) => format!("{name}: stopped (Ctrl-C); {kept}"),
        None => format!("{name}: stopped (Ctrl-C)"),
    };
    crate::report::stderr_line(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_armed_get_is_stopped_and_its_connections_cut() {
        let it = Interrupt::new();
        assert!(!it.interrupt(), "nothing armed: the signal ends the client");
        assert!(!it.stopped());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let timeouts = net::exchange::Timeouts::default();
        it.arm();
        let conn = Connection::open(addr, &timeouts).unwrap();
        it.watch(&conn);
        let (mut theirs, _) = listener.accept().unwrap();
        assert!(it.interrupt());
        assert!(it.stopped());
        // The node's end sees the connection shut.
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut theirs, &mut byte).unwrap(), 0);
        // A connection made after the interrupt is shut as it is watched.
        let late = Connection::open(addr, &timeouts).unwrap();
        it.watch(&late);
        let (mut theirs, _) = listener.accept().unwrap();
        assert_eq!(std::io::Read::read(&mut theirs, &mut byte).unwrap(), 0);
        it.disarm();
        assert!(!it.stopped());
        assert!(!it.interrupt());
    }
}
