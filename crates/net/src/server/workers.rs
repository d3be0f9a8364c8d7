//! Thread per connection, where each thread accepts its own connection.
//! The threads waiting for work all block in accept() on the one listener
//! (the kernel wakes one of them per connection); the thread that gets a
//! connection serves it itself, after starting a new thread if it was the
//! last one waiting, so a connection never waits for a thread to finish.
//!
//! An accept loop handing connections to workers would cost, per
//! connection, two wake-ups and a contended lock: more than serving a
//! small request such as a relay list (docs/BENCHMARKS.md). Here a thread
//! that has served goes back to accept, unless [`MAX_IDLE`] threads already
//! wait there: then it ends, so a burst leaves no crowd of idle threads.
//!
//! A handler that panics costs only its connection: the panic is caught
//! here, the connection (and its slot under the caps) is dropped as the
//! stack unwinds, and the thread goes back to accept. Otherwise a panic on
//! the first thread, which is the program's main thread, would end the
//! program, and one on any thread would lose an acceptor.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::Throttle;

/// Most threads kept waiting in accept once a burst is over.
const MAX_IDLE: usize = 64;

/// What to do with an accepted connection, on the thread that accepted it.
pub(crate) type OnAccept = dyn Fn(TcpStream, SocketAddr) + Send + Sync;

pub(crate) struct Acceptors {
    listener: TcpListener,
    on_accept: Box<OnAccept>,
    /// Threads in accept(), or on their way back to it.
    waiting: AtomicUsize,
    /// Failed accepts, logged at most once a second across all threads.
    failures: Mutex<Throttle>,
}

impl Acceptors {
    /// Accepts on `listener` for as long as the process lives, on this
    /// thread and on as many more as concurrent connections need.
    pub(crate) fn run(listener: TcpListener, on_accept: Box<OnAccept>) -> ! {
        let acceptors = Arc::new(Acceptors {
            listener,
            on_accept,
            waiting: AtomicUsize::new(1),
            failures: Mutex::default(),
        });
        acceptors.accept_loop(false);
        unreachable!("the first thread never leaves its accept loop")
    }

    /// Accepts and serves, one connection at a time. With `may_end`, ends
    /// when it would be one idle thread too many.
    fn accept_loop(self: &Arc<Self>, may_end: bool) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
                        self.spawn_one();
                    }
                    let served =
                        panic::catch_unwind(AssertUnwindSafe(|| (self.on_accept)(stream, peer)));
                    if let Err(payload) = served {
                        plumbing::crucial::report_panic(|| {
                            tracing::error!(
                                "{peer}: connection dropped: its handler panicked ({})",
                                plumbing::crucial::panic_message(&*payload)
                            );
                        });
                    }
                    if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_IDLE && may_end {
                        self.waiting.fetch_sub(1, Ordering::AcqRel);
                        return;
                    }
                }
                Err(e) => {
                    // Out of file descriptors or memory: back off instead of
                    // spinning, and say so once, not once per waiting thread.
                    let due = self
                        .failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .note();
                    if let Some(n) = due {
                        tracing::warn!("{n} accept(s) failed: {}", proto::error::io_reason(&e));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Starts one more thread waiting in accept. If none can be started,
    /// the next connection waits until a thread has served its own.
    fn spawn_one(self: &Arc<Self>) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let me = Arc::clone(self);
        let started = thread::Builder::new()
            .name("conn".into())
            .spawn(move || me.accept_loop(true));
        if let Err(e) = started {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("cannot start a thread: {}", proto::error::io_reason(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::{Barrier, mpsc};

    /// Acceptors on a fresh listener whose threads all may end, so a test
    /// can leave them behind.
    fn start(on_accept: Box<OnAccept>) -> (Arc<Acceptors>, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptors = Arc::new(Acceptors {
            listener,
            on_accept,
            waiting: AtomicUsize::new(0),
            failures: Mutex::default(),
        });
        acceptors.spawn_one();
        (acceptors, addr)
    }

    #[test]
    fn every_connection_gets_a_thread_of_its_own() {
        // Each connection is served only once all of them are in service:
        // this deadlocks unless each one has its own thread.
        const N: usize = 20;
        let all_in = Arc::new(Barrier::new(N));
        let (tx, rx) = mpsc::channel();
        let (_acceptors, addr) = start(Box::new(move |mut stream, _| {
            all_in.wait();
            tx.send(thread::current().id()).unwrap();
            let _ = stream.read(&mut [0u8; 1]);
        }));
        let conns: Vec<TcpStream> = (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut threads: Vec<_> = (0..N)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        threads.sort_by_key(|id| format!("{id:?}"));
        threads.dedup();
        assert_eq!(threads.len(), N);
        drop(conns);
    }

    #[test]
    fn a_panicking_handler_drops_its_connection_and_the_next_one_is_served() {
        let (_acceptors, addr) = start(Box::new(|mut stream, _| {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).unwrap();
            assert_ne!(byte[0], b'!', "told to panic");
            std::io::Write::write_all(&mut stream, b"ok").unwrap();
        }));
        let ask = |what: u8| {
            let mut conn = TcpStream::connect(addr).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            std::io::Write::write_all(&mut conn, &[what]).unwrap();
            let mut got = Vec::new();
            let _ = conn.read_to_end(&mut got);
            got
        };
        for _ in 0..3 {
            assert_eq!(ask(b'!'), b"", "the panicked connection is closed");
            assert_eq!(ask(b'a'), b"ok");
        }
    }

    #[test]
    fn a_burst_leaves_at_most_max_idle_threads_waiting() {
        const N: usize = MAX_IDLE + 16;
        let all_in = Arc::new(Barrier::new(N));
        let (done_tx, done_rx) = mpsc::channel();
        let (acceptors, addr) = start(Box::new(move |_, _| {
            all_in.wait();
            done_tx.send(()).unwrap();
        }));
        let conns: Vec<TcpStream> = (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for _ in 0..N {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        drop(conns);
        // Threads go back to accept (or end) right after their connection.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while acceptors.waiting.load(Ordering::Acquire) < MAX_IDLE {
            assert!(
                std::time::Instant::now() < deadline,
                "threads did not come back"
            );
            thread::yield_now();
        }
        thread::sleep(Duration::from_millis(50));
        assert_eq!(acceptors.waiting.load(Ordering::Acquire), MAX_IDLE);
    }
}
