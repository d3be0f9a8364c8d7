//! The workers of a fetch: blocking threads that carry out the range plan
//! ([`crate::plan`]); a lone worker runs on the fetch's own thread. Each
//! one loops: it takes the next holder from the plan, asks the plan for a
//! range, fetches it from that holder with one request on a fresh
//! connection (through the [`Dialer`], so a relayed holder is reached via
//! the relay), passes the bytes through [`crate::verify`], and claims each
//! verified group from the plan before it is used. A holder that fails,
//! lies or stalls (its read times out) is reported, its unclaimed bytes go
//! back to the plan, and the worker takes the next holder once the plan
//! drops it. With one worker that is the walk through the holders in turn,
//! each one resuming where the last stopped.
//!
//! Where the verified bytes go ([`Delivery`]):
//! - a file being saved (`-o`): each fresh group is written at its offset
//!   (positioned writes) into the temporary file, which is renamed into
//!   place only when every byte is claimed;
//! - stdout, a FIFO or a device, with one worker: its ranges come in order,
//!   so its bytes go straight out, without a copy;
//! - the same with several workers: fresh groups are copied into a ring of
//!   [`WINDOW`] bytes, and the fetch's own thread writes the claimed prefix
//!   out in order. The plan hands out only pieces that end within the
//!   window of what was written, so the ring never overflows and memory
//!   stays flat whatever the file's size.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};

use net::exchange::{Closer, Connection};
use proto::Target;

use crate::dial::Dialer;
use crate::failure::{Failed, Why};
use crate::find::{Misses, Opened, Want};
use crate::holder::{self, Holder};
use crate::output::{Delivery, Output, Ring, SinkError, WINDOW};
use crate::plan::{Assignment, Claim, Failure, Next, Plan, SourceId};
use crate::progress::Progress;
use crate::report::Report;
use crate::verify::{self, Answer, Asked, Content};

/// Bytes the in-order writer takes out of the ring at a time: it writes
/// them without holding the plan's lock, so a slow reader of stdout never
/// stalls the fetches (only the window's end does).
const WRITE_CHUNK: u64 = 256 * 1024;

/// What the workers fetch, from whom, and where they say how it goes.
pub struct Job<'a> {
    pub want: &'a Want,
    pub content: Content,
    /// The holders, the first one (which has the content) first; the plan
    /// hands them out by their place in this list.
    pub holders: &'a [Holder],
    /// The first holder's open exchange, for its first range.
    pub opened: Option<Opened>,
    pub dialer: &'a Dialer,
    /// Time spent on holders that do not have the content, and its bound.
    pub misses: &'a Misses,
    pub report: &'a Report,
    pub progress: &'a Progress,
}

/// How the workers ended.
pub enum Ended {
    Complete,
    /// Every holder failed before every byte was claimed.
    Incomplete,
    /// As `Incomplete`, and some holder's copy changed during the fetch
    /// while none of the others has the content: it is held nowhere now.
    Changed,
    /// The output refused bytes.
    Output(SinkError),
}

/// The in-order window the plan needs for `workers` workers writing to
/// `out`: only several workers with an output that takes bytes in order.
pub fn window(out: &Output, workers: usize) -> Option<u64> {
    (workers > 1 && out.positioned().is_none()).then_some(WINDOW)
}

/// Runs `workers` workers on `plan` until the content is complete or no
/// holder can go on; returns how it ended and the plan, which says what
/// each holder gave.
pub fn run(job: Job, plan: Plan, workers: usize, out: &mut Output) -> (Ended, Plan) {
    if let Some(file) = out.positioned() {
        let crew = Crew::new(job, Delivery::At(file), plan, workers);
        let ended = crew.run(workers, Crew::wait_until_complete);
        return (ended, crew.into_plan());
    }
    if workers <= 1 {
        let crew = Crew::new(job, Delivery::Straight(Mutex::new(out)), plan, 1);
        let ended = crew.run(1, Crew::wait_until_complete);
        return (ended, crew.into_plan());
    }
    let crew = Crew::new(job, Delivery::Window, plan, workers);
    let ended = crew.run(workers, |crew| crew.write_in_order(out));
    (ended, crew.into_plan())
}

/// The workers' shared state: the plan and what goes with it, under one
/// lock (claims are per 64 KiB group, so the lock is taken a few hundred
/// times per second per worker and held for a copy at most).
struct Crew<'a> {
    job: Job<'a>,
    delivery: Delivery<'a>,
    /// More than one worker: the lines name ranges and the queue.
    several: bool,
    state: Mutex<State>,
    /// Signalled whenever the plan changes: a claim, a finished or failed
    /// fetch, bytes written out, a worker gone.
    changed: Condvar,
}

struct State {
    plan: Plan,
    ring: Option<Ring>,
    /// The first holder's open exchange, until its first range takes it.
    opened: Option<Opened>,
    /// Connections of fetches in flight, by assignment: (piece, closer).
    inflight: HashMap<u64, (usize, Closer)>,
    /// Fetches cut because another fetch finished their piece: their error
    /// is no failure of their holder.
    cut: HashSet<u64>,
    /// Claimed bytes being written outside the lock, by this many workers:
    /// the content is complete only once they are out.
    writing: usize,
    /// Workers still running.
    threads: usize,
    /// Each holder that failed: whether its last failure was that it does
    /// not have the content (any more), so that the end can say it is held
    /// nowhere now.
    last_failed: HashMap<SourceId, bool>,
    /// Some holder's copy changed during the fetch.
    changed: bool,
    /// The fetch is over (complete, or given up): workers stop.
    over: bool,
    /// Why the output refused bytes, if it did.
    output: Option<SinkError>,
}

impl State {
    fn is_over(&self) -> bool {
        self.over || self.output.is_some()
    }
}

impl<'a> Crew<'a> {
    fn new(mut job: Job<'a>, delivery: Delivery<'a>, plan: Plan, workers: usize) -> Crew<'a> {
        let ring = matches!(delivery, Delivery::Window)
            .then(|| Ring::new(WINDOW.min(plan.size()).max(1) as usize));
        let opened = job.opened.take();
        Crew {
            job,
            delivery,
            several: workers > 1,
            state: Mutex::new(State {
                plan,
                ring,
                opened,
                inflight: HashMap::new(),
                cut: HashSet::new(),
                writing: 0,
                threads: workers,
                last_failed: HashMap::new(),
                changed: false,
                over: false,
                output: None,
            }),
            changed: Condvar::new(),
        }
    }

    /// Runs `workers` workers while this thread runs `main`; when `main`
    /// returns, cuts every connection still open (a stalled one would
    /// otherwise hold the end until its timeout) and joins the workers.
    fn run(&self, workers: usize, main: impl FnOnce(&Self) -> Ended) -> Ended {
        if workers == 1 && !matches!(self.delivery, Delivery::Window) {
            // One worker whose bytes need no writer thread runs on this
            // thread: the common fetch starts no thread of its own (and
            // touches no second stack or allocator arena).
            self.worker();
            return main(self);
        }
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| self.worker());
            }
            let ended = main(self);
            let mut state = self.lock();
            state.over = true;
            for (_, closer) in state.inflight.values() {
                closer.close();
            }
            drop(state);
            self.changed.notify_all();
            ended
        })
    }

    fn into_plan(self) -> Plan {
        let state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        state.plan
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// A worker: takes holders in turn until the fetch is over.
    fn worker(&self) {
        while let Some(source) = self.take_holder() {
            if !self.serve(source) {
                break;
            }
        }
        let mut state = self.lock();
        state.threads -= 1;
        drop(state);
        self.changed.notify_all();
    }

    /// The next holder to ask, if any: none once the holders that do not
    /// have the content took the fetch's bound (said once).
    fn take_holder(&self) -> Option<SourceId> {
        let mut state = self.lock();
        if state.is_over() {
            return None;
        }
        if self.job.misses.exhausted() {
            drop(state);
            if let Some(line) = self.job.misses.line(&self.job.want.name(), 0) {
                self.job.report.status(&line);
            }
            return None;
        }
        state.plan.take_holder()
    }

    /// Fetches ranges from one holder until the plan is done (false) or
    /// drops the holder (true: take another).
    fn serve(&self, source: SourceId) -> bool {
        let holder = &self.job.holders[source];
        let mut by_name = false;
        loop {
            let assignment = {
                let mut state = self.lock();
                loop {
                    if state.is_over() {
                        return false;
                    }
                    match state.plan.next(source) {
                        Next::Fetch(a) => break a,
                        Next::Wait => state = self.wait(state),
                        Next::Done => return false,
                        Next::Dropped => return true,
                    }
                }
            };
            let asked = std::time::Instant::now();
            let result = self
                .fetch(holder, &assignment, &mut by_name)
                .map_err(|failed| self.corrupt_or_changed(source, holder, failed));
            if let Err(Failed {
                kind: Failure::NotHere,
                ..
            }) = &result
            {
                self.job.misses.spend(asked.elapsed());
            }
            let mut state = self.lock();
            state.inflight.remove(&assignment.id);
            let cut = state.cut.remove(&assignment.id);
            if self.several {
                self.job.progress.set_sources(state.inflight.len());
            }
            let line = match result {
                Ok(()) => {
                    state.plan.finished(&assignment);
                    None
                }
                Err(_) if cut || state.is_over() => {
                    state.plan.finished(&assignment);
                    None
                }
                Err(failed) => {
                    let changed = matches!(failed.why, Why::Changed(_));
                    let gone = changed || matches!(failed.why, Why::NotHere);
                    state.last_failed.insert(source, gone);
                    state.changed |= changed;
                    let alive = state.plan.failed(&assignment, failed.kind);
                    Some(self.failure_line(holder, &assignment, &failed, alive))
                }
            };
            drop(state);
            self.changed.notify_all();
            if let Some(line) = line {
                self.job.report.status(&line);
            }
        }
    }

    /// What the user is told of a failed range. With several workers it
    /// says what becomes of the range: back to the queue for the others,
    /// or no more from this holder. One worker just moves on to the next
    /// holder, which the next line names.
    fn failure_line(
        &self,
        holder: &Holder,
        a: &Assignment,
        failed: &Failed,
        alive: bool,
    ) -> String {
        let size = self.job.content.size();
        // Reaching it may have gone another way than it is listed.
        let label = self.job.dialer.restate(&holder.label, &holder.node);
        if !self.several {
            return failed.line(&label, size, None);
        }
        let line = failed.line(&label, size, Some((a.range.offset, a.range.len)));
        match failed.kind {
            Failure::NotHere => line,
            _ if alive => format!(
                "{line}; bytes {}..{} go back to the queue",
                a.range.offset,
                a.range.end()
            ),
            _ => format!("{line}; no more ranges from it"),
        }
    }

    /// One range from one holder: fetched, verified and claimed. Ok when
    /// the range is whole or the plan said stop.
    fn fetch(&self, holder: &Holder, a: &Assignment, by_name: &mut bool) -> Result<(), Failed> {
        let (conn, answer) = match self.opened(a) {
            Some(Opened { conn, answer }) => {
                if !self.in_flight(a, &conn) {
                    return Ok(());
                }
                (conn, answer)
            }
            None => loop {
                let mut conn = holder.connect(self.job.dialer)?;
                if !self.in_flight(a, &conn) {
                    return Ok(());
                }
                match self.ask(&mut conn, a, *by_name) {
                    Ok(answer) => break (conn, answer),
                    // A node still hashing its directory at startup answers
                    // `busy` to a hash, yet hashes a file it is asked for
                    // by name on the spot: when the fetch is by name, this
                    // holder is asked by name from then on, and its answer
                    // must carry the same hash.
                    Err(Failed {
                        why: Why::Busy(why),
                        ..
                    }) if matches!(self.job.want.target, Target::Name(_)) && !*by_name => {
                        tracing::debug!("{}: {why}; asking by name", holder.label);
                        *by_name = true;
                    }
                    Err(failed) => return Err(failed),
                }
            },
        };
        verify::receive(conn, &answer, !self.several, |at, bytes| {
            self.deliver(a, at, bytes)
        })
    }

    /// What a holder's failure means once the content is known: a holder
    /// that had it (it answered for it first, or gave bytes of it) and now
    /// does not find it, or that sent bytes failing the proof and then no
    /// longer has the content (asked once more, for an empty range by
    /// hash), has a copy that changed under its node, not a lie. A holder
    /// that still has it sent corrupt bytes.
    fn corrupt_or_changed(&self, source: SourceId, holder: &Holder, failed: Failed) -> Failed {
        let Some(hash) = self.job.content.hash() else {
            return failed;
        };
        let gone = format!("it no longer holds blake3 {}", hash.short());
        let changed = |text| Failed::new(Failure::NotHere, Why::Changed(text));
        match &failed.why {
            Why::NotHere => {
                let gave = self.lock().plan.contributions().get(source).copied();
                if source == 0 || gave.is_some_and(|bytes| bytes > 0) {
                    changed(gone)
                } else {
                    failed
                }
            }
            Why::Corrupt(why) => {
                let Ok(mut conn) = holder.connect(self.job.dialer) else {
                    return failed;
                };
                match holder::ask_range(&mut conn, &Target::Hash(hash), 0, 0) {
                    Err(Failed {
                        why: Why::NotHere, ..
                    }) => changed(format!("{why}; {gone}")),
                    _ => failed,
                }
            }
            _ => failed,
        }
    }

    /// The first holder's open exchange, for the first range of the fetch.
    fn opened(&self, a: &Assignment) -> Option<Opened> {
        if a.source != 0 || a.range.offset != 0 {
            return None;
        }
        self.lock().opened.take()
    }

    /// Records `a`'s connection as in flight, so that it can be cut; false
    /// if the fetch is over.
    fn in_flight(&self, a: &Assignment, conn: &Connection) -> bool {
        let Ok(closer) = conn.closer() else {
            return true;
        };
        let mut state = self.lock();
        if state.is_over() {
            return false;
        }
        state.inflight.insert(a.id, (a.piece, closer));
        if self.several {
            self.job.progress.set_sources(state.inflight.len());
        }
        true
    }

    /// Asks for `a`'s range of the content: by its hash (or by name, see
    /// [`Crew::fetch`]); from an older node, the file from `a`'s offset.
    fn ask(&self, conn: &mut Connection, a: &Assignment, by_name: bool) -> Result<Answer, Failed> {
        let target = &self.job.want.target;
        match self.job.content {
            Content::Verified { hash, size } => {
                let by = match target {
                    Target::Name(_) if by_name => target.clone(),
                    _ => Target::Hash(hash),
                };
                let (offset, len) = (a.range.offset, a.range.len);
                let header = holder::ask_range(conn, &by, offset, len).map_err(|failed| {
                    match failed.why {
                        Why::NoRanges(why) => {
                            holder::cannot_prove(matches!(target, Target::Hash(_)), why)
                        }
                        _ => failed,
                    }
                })?;
                let asked = Asked {
                    by: &by,
                    offset,
                    len,
                    content: Some((hash, size)),
                };
                verify::check_range(&header, &asked)?;
                Ok(Answer::Range(header))
            }
            Content::Unverified { size } => {
                // Only a name finds unverified content.
                let Target::Name(name) = target else {
                    return Err(Failed::new(Failure::NotHere, Why::NotHere));
                };
                let header = holder::ask_file(conn, name, a.range.offset)?;
                verify::check_file(&header, a.range.offset, Some(size))?;
                Ok(Answer::File(header))
            }
        }
    }

    /// Claims `bytes` at `at` for `a` and writes what is fresh; false when
    /// the fetch should stop (its piece is whole, the fetch is over, or the
    /// output failed).
    fn deliver(&self, a: &Assignment, at: u64, bytes: &[u8]) -> bool {
        let mut state = self.lock();
        if state.is_over() {
            return false;
        }
        let fresh = match state.plan.claim(a, at, bytes.len() as u64) {
            Claim::Stop => return false,
            Claim::Fresh(fresh) if fresh.len == 0 => return true,
            Claim::Fresh(fresh) => fresh,
        };
        let from = (fresh.offset - at) as usize;
        let part = &bytes[from..from + fresh.len as usize];
        if state.plan.piece_is_whole(a.piece) {
            // A duplicate still on this piece has nothing left to give.
            let losers: Vec<u64> = state
                .inflight
                .iter()
                .filter(|(id, (piece, _))| **id != a.id && *piece == a.piece)
                .map(|(id, (_, closer))| {
                    closer.close();
                    *id
                })
                .collect();
            state.cut.extend(losers);
        }
        let claimed = state.plan.claimed();
        if let Delivery::Window = self.delivery {
            if let Some(ring) = state.ring.as_mut() {
                ring.put(fresh.offset, part);
            }
            drop(state);
            self.changed.notify_all();
        } else {
            state.writing += 1;
            drop(state);
            let written = self.delivery.write(fresh.offset, part);
            let mut state = self.lock();
            state.writing -= 1;
            let failed = match written {
                Ok(()) => false,
                Err(e) => {
                    state.output.get_or_insert(e);
                    true
                }
            };
            // The main thread waits for the last write of a complete
            // content, or for a failed one.
            let wake = failed || (state.writing == 0 && state.plan.is_complete());
            drop(state);
            if wake {
                self.changed.notify_all();
            }
            if failed {
                return false;
            }
        }
        self.job.progress.set_position(claimed);
        true
    }

    /// How a fetch that no holder can finish ended: [`Ended::Changed`] when
    /// some holder's copy changed during it and no holder has the content
    /// any more (each one's last failure says so).
    fn incomplete(&self, state: &State) -> Ended {
        let holders = self.job.holders.len();
        let gone = (0..holders).all(|h| state.last_failed.get(&h) == Some(&true));
        if state.changed && gone {
            Ended::Changed
        } else {
            Ended::Incomplete
        }
    }

    /// For an output the workers write themselves: waits until every byte
    /// is claimed and written (the workers are joined before the file is
    /// committed), or the fetch cannot go on.
    fn wait_until_complete(&self) -> Ended {
        let mut state = self.lock();
        loop {
            if let Some(e) = state.output.take() {
                return Ended::Output(e);
            }
            if state.plan.is_complete() && state.writing == 0 {
                return Ended::Complete;
            }
            if state.threads == 0 {
                return self.incomplete(&state);
            }
            state = self.wait(state);
        }
    }

    /// For an in-order output with several workers: writes the claimed
    /// prefix out of the ring as it grows, a chunk at a time, without
    /// holding the lock while writing.
    fn write_in_order(&self, out: &mut Output) -> Ended {
        let size = self.job.content.size();
        let mut chunk = Vec::with_capacity(WRITE_CHUNK.min(size) as usize);
        let mut written = 0u64;
        loop {
            {
                let mut state = self.lock();
                loop {
                    if let Some(e) = state.output.take() {
                        return Ended::Output(e);
                    }
                    let frontier = state.plan.frontier();
                    if frontier > written {
                        let len = (frontier - written).min(WRITE_CHUNK);
                        chunk.clear();
                        if let Some(ring) = state.ring.as_ref() {
                            ring.take(written, len as usize, &mut chunk);
                        }
                        state.plan.delivered(written + len);
                        break;
                    }
                    if written == size {
                        return Ended::Complete;
                    }
                    if state.threads == 0 {
                        return self.incomplete(&state);
                    }
                    state = self.wait(state);
                }
            }
            // The window moved on: a waiting worker may take a piece.
            self.changed.notify_all();
            if let Err(e) = out.write_chunk(&chunk) {
                return Ended::Output(e);
            }
            written += chunk.len() as u64;
        }
    }
}
