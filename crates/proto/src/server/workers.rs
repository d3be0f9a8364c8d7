//! Thread per connection, with threads kept for reuse: a connection is handed
//! to an idle thread when there is one, and a new thread is started only when
//! there is none. Starting a thread costs more than serving a small request
//! (a relay list), so reuse is what lets the relay keep up with a burst,
//! while each connection still has a thread to itself.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle thread waits for a new connection before it exits.
const IDLE_KEEP: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct Workers {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    idle: usize,
    queue: VecDeque<Job>,
}

impl Workers {
    pub(crate) fn new() -> Workers {
        Workers {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
        }
    }

    /// Runs `job` on an idle thread, or on a new one if none is idle.
    pub(crate) fn run(&self, job: Job) -> io::Result<()> {
        {
            let mut state = self.shared.lock();
            if state.idle > state.queue.len() {
                state.queue.push_back(job);
                self.shared.wake.notify_one();
                return Ok(());
            }
        }
        let shared = Arc::clone(&self.shared);
        thread::Builder::new()
            .name("conn".into())
            .spawn(move || shared.work(job))
            .map(drop)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A job runs outside the lock, so a panicking job cannot leave the
        // queue half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work(&self, first: Job) {
        let mut job = first;
        loop {
            job();
            let mut state = self.lock();
            state.idle += 1;
            loop {
                if let Some(next) = state.queue.pop_front() {
                    state.idle -= 1;
                    job = next;
                    break;
                }
                let (guard, wait) = self
                    .wake
                    .wait_timeout(state, IDLE_KEEP)
                    .unwrap_or_else(|p| p.into_inner());
                state = guard;
                if wait.timed_out() && state.queue.is_empty() {
                    state.idle -= 1;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_every_job() {
        let workers = Workers::new();
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            workers.run(Box::new(move || tx.send(i).unwrap())).unwrap();
        }
        let mut seen: Vec<i32> = (0..100).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn an_idle_thread_takes_the_next_job() {
        let workers = Workers::new();
        let (tx, rx) = mpsc::channel();
        let first_tx = tx.clone();
        workers
            .run(Box::new(move || {
                first_tx.send(thread::current().id()).unwrap()
            }))
            .unwrap();
        let first = rx.recv().unwrap();
        while workers.shared.lock().idle == 0 {
            thread::yield_now();
        }
        workers
            .run(Box::new(move || tx.send(thread::current().id()).unwrap()))
            .unwrap();
        assert_eq!(rx.recv().unwrap(), first);
    }
}
