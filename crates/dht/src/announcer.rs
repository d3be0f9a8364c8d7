//! Keeps a set of (DHT id, port) announced: the threads that run the
//! [`Schedule`].
//!
//! An announce blocks its thread for one lookup of the closest nodes and
//! their answers (about a second on a LAN, a few on the internet, where
//! silent nodes cost mainline's 2 s timeout). So announces run on a pool of
//! workers, at most [`AnnounceConfig::in_flight`] at once, each asking the
//! shared schedule for its next entry; the pool grows with the set, so a
//! node sharing three files has three workers, not thirty-two. The token
//! bucket in the schedule, not the pool, sets the rate.
//!
//! If mainline's own thread dies (a panic inside it), every later call
//! would panic too: the worker that sees it records why, the announcer
//! stops, and [`Announcer::report`] says so, so the program can decide
//! rather than run on half alive.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::node::DhtNode;
use crate::schedule::{Entry, Next, Schedule, ScheduleConfig};

/// The announcer's settings.
#[derive(Debug, Clone, Copy)]
pub struct AnnounceConfig {
    pub schedule: ScheduleConfig,
    /// Announces in flight at once, at most (threads in the pool).
    pub in_flight: usize,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            schedule: ScheduleConfig::default(),
            // 10 announces a second at about 3 s each on the internet.
            in_flight: 32,
        }
    }
}

/// What the announcer has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries in the set now.
    pub entries: usize,
    /// Announces that some node accepted, since the start.
    pub announced: u64,
    /// Announces that no node accepted (each is retried).
    pub failed: u64,
    /// Why the last failed one failed.
    pub last_error: Option<String>,
    /// Entries announced at least once since they joined the set.
    pub fresh: usize,
    /// Set when the DHT node stopped: no announce goes out any more.
    pub stopped: Option<String>,
}

/// A handle on the running announcer; cheap to clone. When the last handle
/// goes, the workers stop (after the announces in flight).
#[derive(Clone)]
pub struct Announcer {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

struct Shared {
    node: DhtNode,
    in_flight: usize,
    state: Mutex<State>,
    /// Signalled when the set changes, an announce ends, or it stops.
    changed: Condvar,
}

struct State {
    schedule: Schedule,
    workers: usize,
    stopping: bool,
    report: Report,
    /// Entries announced since they joined the set.
    fresh: HashSet<Entry>,
}

/// Stops the workers when the last [`Announcer`] handle is dropped.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.lock().stopping = true;
        self.0.changed.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data updated in single steps: a panic while
        // it is held cannot leave it half-changed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Announcer {
    /// An announcer with an empty set, announcing through `node`.
    pub fn new(node: DhtNode, config: AnnounceConfig) -> Announcer {
        let shared = Arc::new(Shared {
            node,
            in_flight: config.in_flight.max(1),
            state: Mutex::new(State {
                schedule: Schedule::new(config.schedule, Instant::now()),
                workers: 0,
                stopping: false,
                report: Report::default(),
                fresh: Default::default(),
            }),
            changed: Condvar::new(),
        });
        Announcer {
            _owner: Arc::new(Owner(Arc::clone(&shared))),
            shared,
        }
    }

    /// Makes `entries` the set to keep announced: new ones go out within
    /// the rate limit at once, ones no longer in it are not repeated.
    pub fn replace(&self, entries: impl IntoIterator<Item = Entry>) -> std::io::Result<()> {
        let mut state = self.shared.lock();
        state.schedule.replace(entries, Instant::now());
        let State {
            schedule, fresh, ..
        } = &mut *state;
        fresh.retain(|e| schedule.contains(e));
        let wanted = state.schedule.len().min(self.shared.in_flight);
        while state.workers < wanted && !state.stopping {
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name("dht-announce".into())
                .stack_size(256 * 1024)
                .spawn(move || work(&shared))?;
            state.workers += 1;
        }
        drop(state);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Counts so far, and whether it stopped.
    pub fn report(&self) -> Report {
        let state = self.shared.lock();
        let mut report = state.report.clone();
        report.entries = state.schedule.len();
        report.fresh = state.fresh.len();
        report
    }

    /// Announces per second the set needs, and the rate allowed: when the
    /// first is larger, rounds run late and announces may expire.
    pub fn load(&self) -> (f64, f64) {
        let state = self.shared.lock();
        (state.schedule.rate_needed(), state.schedule.config().rate)
    }
}

/// One worker: takes the next due entry, announces it, reports, again.
fn work(shared: &Shared) {
    loop {
        let entry = {
            let mut state = shared.lock();
            loop {
                if state.stopping {
                    state.workers -= 1;
                    return;
                }
                let now = Instant::now();
                match state.schedule.next(now) {
                    Next::Go(entry) => break entry,
                    Next::Wait(at) => {
                        state = shared
                            .changed
                            .wait_timeout(state, at.saturating_duration_since(now))
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    Next::Idle => {
                        state = shared
                            .changed
                            .wait(state)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| shared.node.announce(entry.0, entry.1)));
        let mut state = shared.lock();
        match outcome {
            Ok(Ok(())) => {
                tracing::debug!("announced {} (port {}) on the DHT", entry.0, entry.1);
                state.schedule.done(entry, true, Instant::now());
                state.report.announced += 1;
                if state.schedule.contains(&entry) {
                    state.fresh.insert(entry);
                }
            }
            Ok(Err(why)) => {
                tracing::debug!("announcing {} on the DHT failed: {why}", entry.0);
                state.schedule.done(entry, false, Instant::now());
                state.report.failed += 1;
                state.report.last_error = Some(why);
            }
            Err(_) => {
                let why = "the DHT node's thread stopped (a panic inside mainline)".to_string();
                tracing::error!("{why}; no more DHT announces");
                state.report.stopped = Some(why);
                state.stopping = true;
                state.workers -= 1;
                drop(state);
                shared.changed.notify_all();
                return;
            }
        }
        drop(state);
        shared.changed.notify_all();
    }
}
