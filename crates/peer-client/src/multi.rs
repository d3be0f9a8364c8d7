//! Fetching one content from several holders at once.
//!
//! [`crate::holders`] finds the content and its candidates (the holders the
//! relay's index named, or every node against an older relay); the range plan
//! ([`crate::scheduler::Plan`]) cuts it into pieces. Then one blocking
//! thread per source (up to `--sources N`) loops: it asks the plan for a
//! piece, fetches it with a range request by content hash on a fresh
//! connection (one exchange per connection, as every request; through the
//! [`Dialer`], so a relayed holder is reached via the relay), verifies it
//! chunk group by chunk group, and claims each verified group from the plan
//! before it is used. A source that fails, lies or stalls (its read times
//! out) is reported, its unclaimed bytes go back to the plan, and its thread
//! moves on to the next candidate once the plan drops it.
//!
//! Where the bytes go:
//! - a file being saved (`-o`): each fresh group is written at its offset
//!   (positioned writes) into the temporary file, which is renamed into
//!   place only when every byte is claimed ([`crate::output`]);
//! - stdout, a FIFO or a device: fresh groups are copied into a ring of
//!   [`WINDOW`] bytes, and this thread writes the claimed prefix out in
//!   order. The plan hands out only pieces that end within the window of
//!   what was written, so the ring never overflows and memory stays flat
//!   whatever the file's size.
//!
//! With `--sources 1` the fetch is the sequential one of [`crate::lookup`],
//! unchanged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Condvar, Mutex, MutexGuard};

use net::exchange::Closer;
use proto::content::{RangeDecoder, RangeError, encoded_len};
use proto::{
    ContentHash, ErrorKind, NodeInfo, ProtoError, RangeRequest, Request, Response, Target,
};

use crate::dial::Dialer;

use crate::holders::{self, Candidate, NoHolder};
use crate::lookup::{self, Fetched, response_name};
use crate::output::{Output, SinkError};
use crate::progress::Progress;
use crate::report::Report;
use crate::scheduler::{Assignment, Claim, Failure, MIN_PIECE, Next, Plan, SourceId, piece_len};

/// The reorder window for in-order outputs: 16 MiB. Room for two pieces per
/// source with four sources (pieces shrink to fit), so that no source waits
/// for the slowest one while the output is keeping up, and well inside the
/// client's 32 MiB memory budget.
pub const WINDOW: u64 = 16 << 20;

/// Bytes the in-order writer takes out of the ring at a time: it writes
/// them without holding the plan's lock, so a slow reader of stdout never
/// stalls the fetches (only the window's end does).
const WRITE_CHUNK: u64 = 256 * 1024;

/// Smallest content fetched from several sources: two pieces. Below that a
/// second connection costs more than it gains, and the plain sequential
/// order (first holder, then the next on failure) is kept.
const MIN_SPLIT: u64 = 2 * MIN_PIECE;

/// Fetches `target` from up to `sources` of `nodes` at once, accepting only
/// content with hash `expect` when given (the version the relay's index
/// chose, with the size it gave). Nothing written and no holder found ends
/// as [`Fetched::Nothing`], so the caller may try another version.
///
/// When the index already says the content is small (below two pieces), or
/// there is a single candidate, a second source cannot help: the sequential
/// fetch of [`crate::lookup`] is used, without the probe's extra exchange.
pub fn fetch(
    target: &Target,
    expect: Option<(ContentHash, u64)>,
    nodes: &[NodeInfo],
    dialer: &Dialer,
    sources: usize,
    out: &mut Output,
    report: &Report,
) -> Fetched {
    let small = expect.is_some_and(|(_, size)| size < MIN_SPLIT);
    let expect = expect.map(|(hash, _)| hash);
    if sources <= 1 || nodes.len() <= 1 || small {
        return lookup::fetch_expecting(target, expect, nodes, dialer, out, report);
    }
    let holders = match holders::find(target, expect, nodes, dialer, report) {
        Ok(holders) => holders,
        // An older node may still serve the file whole; the sequential
        // fetch knows how (and reports each node again).
        Err(NoHolder::OlderNodes) => {
            return lookup::fetch_expecting(target, expect, nodes, dialer, out, report);
        }
        Err(NoHolder::Missing) => {
            report.status(&format!(
                "not found on any of {}",
                crate::count(nodes.len(), "active node")
            ));
            return Fetched::Nothing;
        }
    };
    let name = match target {
        Target::Name(name) => name.clone(),
        Target::Hash(hash) => format!("blake3:{}", hash.short()),
    };
    let size = holders.size;
    let threads = if size < MIN_SPLIT {
        1
    } else {
        sources.min(holders.candidates.len())
    };
    let window = match out.positioned() {
        Some(_) => None,
        None => Some(WINDOW),
    };
    let plan = Plan::new(size, piece_len(size, threads, window), window);
    let progress = Progress::new(out.shows_progress(), size);
    let first = holders.candidates.first().map(|c| c.label.clone());
    let ring = window.map(|w| Ring::new(w.min(size).max(1) as usize));
    let state = State {
        plan,
        ring,
        candidates: holders.candidates.into(),
        sources: Vec::new(),
        inflight: HashMap::new(),
        cut: HashSet::new(),
        threads,
        over: false,
        output: None,
    };
    let (ended, state) = match out.positioned() {
        Some(file) => {
            let swarm = Swarm::new(
                target,
                (holders.hash, size),
                dialer,
                report,
                &progress,
                Some(file),
                state,
            );
            let ended = swarm.run(threads, |s| s.wait_until_complete());
            (ended, swarm.into_state())
        }
        None => {
            let swarm = Swarm::new(
                target,
                (holders.hash, size),
                dialer,
                report,
                &progress,
                None,
                state,
            );
            let ended = swarm.run(threads, |s| s.write_in_order(out));
            (ended, swarm.into_state())
        }
    };
    match ended {
        Ended::Complete => {
            progress.finish();
            let mut given: Vec<(u64, &Candidate)> = state
                .plan
                .contributions()
                .into_iter()
                .zip(&state.sources)
                .filter(|(bytes, _)| *bytes > 0)
                .collect();
            given.sort_by_key(|g| std::cmp::Reverse(g.0));
            let proof = format!("{size} bytes, blake3 {}", holders.hash.short());
            let line = match given.as_slice() {
                [] => format!("found on {} ({proof})", first.unwrap_or_default()),
                [(_, one)] => format!("found on {} ({proof})", one.label),
                many => format!(
                    "found on {} nodes ({proof}): {} MiB from {}",
                    many.len(),
                    many.iter()
                        .map(|(b, _)| format!("{:.1}", *b as f64 / (1 << 20) as f64))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    many.iter()
                        .map(|(_, c)| format!("{}{}", c.node.addr, crate::dial::via(&c.node)))
                        .collect::<Vec<_>>()
                        .join(" / ")
                ),
            };
            report.status(&line);
            Fetched::Found { size }
        }
        Ended::Incomplete => {
            progress.abandon();
            report.status(&format!(
                "{name}: incomplete, {} of {size} bytes received from {} active nodes; \
                 no other node could continue blake3 {}",
                state.plan.claimed(),
                nodes.len(),
                holders.hash.short()
            ));
            // Not a byte out: another version may still be tried.
            if state.plan.claimed() == 0 {
                Fetched::Nothing
            } else {
                Fetched::Missing
            }
        }
        Ended::Output(SinkError::NotText) => {
            progress.abandon();
            Fetched::NotText
        }
        Ended::Output(SinkError::Io(e)) => {
            progress.abandon();
            report.error(&format!(
                "cannot write {name}: {}",
                proto::error::io_reason(&e)
            ));
            Fetched::OutputFailed
        }
    }
}

/// How a multi-source fetch ended.
enum Ended {
    Complete,
    /// Every source failed before every byte was claimed.
    Incomplete,
    /// The output refused bytes.
    Output(SinkError),
}

/// The fetch threads' shared state: the plan and what goes with it, under
/// one lock (claims are per 64 KiB group, so the lock is taken a few
/// hundred times per second per source and held for a copy at most).
struct Swarm<'a> {
    hash: ContentHash,
    /// The name asked for, when the fetch is by name.
    name: Option<String>,
    size: u64,
    dialer: &'a Dialer,
    report: &'a Report,
    progress: &'a Progress,
    /// The file being saved, for positioned writes; None for an in-order
    /// output (then `State::ring` holds the window).
    file: Option<&'a File>,
    state: Mutex<State>,
    /// Signalled whenever the plan changes: a claim, a finished or failed
    /// fetch, bytes written out, a thread gone.
    changed: Condvar,
}

struct State {
    plan: Plan,
    ring: Option<Ring>,
    /// Candidates no thread has taken yet.
    candidates: VecDeque<Candidate>,
    /// The candidate of each source, by [`SourceId`].
    sources: Vec<Candidate>,
    /// Connections of fetches in flight, by assignment: (piece, closer).
    inflight: HashMap<u64, (usize, Closer)>,
    /// Fetches cut because another fetch finished their piece: their error
    /// is no failure of their source.
    cut: HashSet<u64>,
    /// Fetch threads still running.
    threads: usize,
    /// The fetch is over (complete, or given up): threads stop.
    over: bool,
    /// Why the output refused bytes, if it did.
    output: Option<SinkError>,
}

impl State {
    fn is_over(&self) -> bool {
        self.over || self.output.is_some()
    }

    /// Sources fetching now.
    fn busy(&self) -> usize {
        self.inflight.len()
    }
}

impl<'a> Swarm<'a> {
    fn new(
        target: &Target,
        (hash, size): (ContentHash, u64),
        dialer: &'a Dialer,
        report: &'a Report,
        progress: &'a Progress,
        file: Option<&'a File>,
        state: State,
    ) -> Swarm<'a> {
        Swarm {
            hash,
            name: match target {
                Target::Name(name) => Some(name.clone()),
                Target::Hash(_) => None,
            },
            size,
            dialer,
            report,
            progress,
            file,
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    /// Runs `threads` fetch threads while this thread runs `main`; when
    /// `main` returns, cuts every connection still open (a stalled one would
    /// otherwise hold the end until its timeout) and joins the threads.
    fn run(&self, threads: usize, main: impl FnOnce(&Self) -> Ended) -> Ended {
        std::thread::scope(|scope| {
            for _ in 0..threads {
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

    fn into_state(self) -> State {
        self.state.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// A fetch thread: takes candidates in turn until the fetch is over.
    fn worker(&self) {
        while let Some((source, candidate)) = self.take_candidate() {
            if !self.serve(source, &candidate) {
                break;
            }
        }
        let mut state = self.lock();
        state.threads -= 1;
        drop(state);
        self.changed.notify_all();
    }

    fn take_candidate(&self) -> Option<(SourceId, Candidate)> {
        let mut state = self.lock();
        if state.is_over() {
            return None;
        }
        let candidate = state.candidates.pop_front()?;
        let source = state.plan.add_source();
        state.sources.push(candidate.clone());
        Some((source, candidate))
    }

    /// Fetches pieces from one source until the plan is done (false) or
    /// drops the source (true: try another candidate).
    fn serve(&self, source: SourceId, candidate: &Candidate) -> bool {
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
            let result = self.fetch_piece(candidate, &assignment, &mut by_name);
            let mut state = self.lock();
            state.inflight.remove(&assignment.id);
            let cut = state.cut.remove(&assignment.id);
            self.progress.set_sources(state.busy());
            let line = match result {
                Ok(()) => {
                    state.plan.finished(&assignment);
                    None
                }
                Err(_) if cut || state.is_over() => {
                    state.plan.finished(&assignment);
                    None
                }
                Err((why, line)) => {
                    let alive = state.plan.failed(&assignment, why);
                    let range = assignment.range;
                    Some(match why {
                        Failure::NotHere => line,
                        _ if alive => format!(
                            "{line}; bytes {}..{} go back to the queue",
                            range.offset,
                            range.end()
                        ),
                        _ => format!("{line}; no more ranges from it"),
                    })
                }
            };
            drop(state);
            self.changed.notify_all();
            if let Some(line) = line {
                self.report.status(&line);
            }
        }
    }

    /// One range request: fetch, verify and claim `a`'s bytes. Ok when the
    /// range is whole or the plan said stop; else why it failed, with the
    /// line that tells the user.
    ///
    /// Ranges are asked for by content hash. A node still hashing its
    /// directory at startup answers `busy` to that, yet hashes a file it is
    /// asked for by name on the spot: then, when the fetch is by name, this
    /// source is asked by name from then on (`by_name`), and its answer must
    /// carry the same hash.
    fn fetch_piece(
        &self,
        candidate: &Candidate,
        a: &Assignment,
        by_name: &mut bool,
    ) -> Result<(), (Failure, String)> {
        let label = &candidate.label;
        let mut conn = self
            .dialer
            .connect(&candidate.node)
            .map_err(|e| (Failure::Broken, format!("could not reach {label}: {e}")))?;
        if let Ok(closer) = conn.closer() {
            let mut state = self.lock();
            if state.is_over() {
                return Ok(());
            }
            state.inflight.insert(a.id, (a.piece, closer));
            self.progress.set_sources(state.busy());
        }
        let target = match (&self.name, *by_name) {
            (Some(name), true) => Target::Name(name.clone()),
            _ => Target::Hash(self.hash),
        };
        let request = Request::GetRange(RangeRequest {
            target,
            offset: a.range.offset,
            len: a.range.len,
        });
        let header = match conn.request(&request) {
            Ok(Response::Range(header)) => header,
            Ok(Response::Error(e))
                if e.kind == ErrorKind::Busy && self.name.is_some() && !*by_name =>
            {
                tracing::debug!("{label}: {}; asking by name", e.message);
                *by_name = true;
                drop(conn);
                return self.fetch_piece(candidate, a, by_name);
            }
            Ok(Response::NotFound) => return Err((Failure::NotHere, format!("not on {label}"))),
            Ok(Response::Error(e)) if e.kind == ErrorKind::BadRequest => {
                return Err((
                    Failure::NotHere,
                    format!("{label} cannot serve by content hash: {}", e.message),
                ));
            }
            // Busy, or an error reading the file: maybe passing.
            Ok(Response::Error(e)) => {
                return Err((
                    Failure::Broken,
                    format!("{label} refused: {} ({})", e.message, e.kind.as_str()),
                ));
            }
            Ok(other) => {
                return Err((
                    Failure::Lied,
                    format!(
                        "{label} answered a {} to a range request",
                        response_name(&other)
                    ),
                ));
            }
            Err(e @ (ProtoError::Io(_) | ProtoError::Timeout | ProtoError::Closed)) => {
                return Err((Failure::Broken, format!("no answer from {label}: {e}")));
            }
            Err(e) => return Err((Failure::Lied, format!("{label} sent a bad answer: {e}"))),
        };
        if *by_name && (header.hash != self.hash || header.size != self.size) {
            return Err((
                Failure::NotHere,
                format!(
                    "{label} holds another version (blake3 {}, {} bytes)",
                    header.hash.short(),
                    header.size
                ),
            ));
        }
        if header.hash != self.hash || header.size != self.size || header.range() != Some(a.range) {
            return Err((
                Failure::Lied,
                format!(
                    "{label} answered bytes {}..{} of blake3 {} ({} bytes) when asked for \
                     bytes {}..{} of blake3 {} ({} bytes)",
                    header.offset,
                    header.offset.saturating_add(header.len),
                    header.hash.short(),
                    header.size,
                    a.range.offset,
                    a.range.end(),
                    self.hash.short(),
                    self.size
                ),
            ));
        }
        let body = conn.body(encoded_len(self.size, a.range));
        let mut decoder = RangeDecoder::new(self.hash, self.size, a.range, body)
            .map_err(|e| (Failure::Lied, format!("{label}: {e}")))?;
        let mut at = a.range.offset;
        loop {
            match decoder.next_verified() {
                Ok(Some(bytes)) => {
                    let len = bytes.len() as u64;
                    if !self.deliver(a, at, bytes) {
                        return Ok(());
                    }
                    at += len;
                }
                Ok(None) => return Ok(()),
                Err(e @ RangeError::Mismatch { .. }) => {
                    return Err((Failure::Lied, format!("corrupt data from {label}: {e}")));
                }
                Err(e) => {
                    return Err((
                        Failure::Broken,
                        format!(
                            "transfer from {label} failed after {} of {} bytes from byte {}: {e}",
                            at - a.range.offset,
                            a.range.len,
                            a.range.offset
                        ),
                    ));
                }
            }
        }
    }

    /// Claims verified `bytes` at `at` for `a` and writes what is fresh;
    /// false when the fetch should stop (its piece is whole, the fetch is
    /// over, or the output failed).
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
        if let Some(ring) = state.ring.as_mut() {
            ring.put(fresh.offset, part);
            drop(state);
            self.changed.notify_all();
        } else {
            drop(state);
            if let Some(file) = self.file
                && let Err(e) = file.write_all_at(part, fresh.offset)
            {
                self.lock().output.get_or_insert(SinkError::Io(e));
                self.changed.notify_all();
                return false;
            }
        }
        self.progress.set_position(claimed);
        true
    }

    /// For a positioned output: waits until every byte is claimed (and so
    /// written: the threads are joined before the file is committed), or
    /// the fetch cannot go on.
    fn wait_until_complete(&self) -> Ended {
        let mut state = self.lock();
        loop {
            if let Some(e) = state.output.take() {
                return Ended::Output(e);
            }
            if state.plan.is_complete() {
                return Ended::Complete;
            }
            if state.threads == 0 {
                return Ended::Incomplete;
            }
            state = self.wait(state);
        }
    }

    /// For an in-order output: writes the claimed prefix out of the ring as
    /// it grows, a chunk at a time, without holding the lock while writing.
    fn write_in_order(&self, out: &mut Output) -> Ended {
        let mut chunk = Vec::with_capacity(WRITE_CHUNK.min(self.size) as usize);
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
                    if written == self.size {
                        return Ended::Complete;
                    }
                    if state.threads == 0 {
                        return Ended::Incomplete;
                    }
                    state = self.wait(state);
                }
            }
            // The window moved on: a waiting thread may take a piece.
            self.changed.notify_all();
            if let Err(e) = out.write_chunk(&chunk) {
                return Ended::Output(e);
            }
            written += chunk.len() as u64;
        }
    }
}

/// The reorder window of an in-order output: byte `offset` of the content
/// lives at `offset % capacity`. The plan keeps every claimed byte not yet
/// written out within one capacity of the write position, so they never
/// overlap.
struct Ring {
    buf: Vec<u8>,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring {
            buf: vec![0; capacity.max(1)],
        }
    }

    fn put(&mut self, offset: u64, mut bytes: &[u8]) {
        let cap = self.buf.len();
        let mut pos = (offset % cap as u64) as usize;
        while !bytes.is_empty() {
            let n = bytes.len().min(cap - pos);
            self.buf[pos..pos + n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            pos = 0;
        }
    }

    fn take(&self, offset: u64, mut len: usize, out: &mut Vec<u8>) {
        let cap = self.buf.len();
        let mut pos = (offset % cap as u64) as usize;
        while len > 0 {
            let n = len.min(cap - pos);
            out.extend_from_slice(&self.buf[pos..pos + n]);
            len -= n;
            pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_wraps_and_gives_back_what_it_got() {
        let mut ring = Ring::new(10);
        ring.put(8, b"abcd");
        let mut out = Vec::new();
        ring.take(8, 4, &mut out);
        assert_eq!(out, b"abcd");
        ring.put(12, b"efghijkl");
        out.clear();
        ring.take(10, 10, &mut out);
        assert_eq!(out, b"cdefghijkl");
    }
}
