//! The range plan of a fetch: which holders are asked in which order,
//! which pieces of the content are still wanted, who fetches which, who
//! failed, and how many bytes each holder gave. A plain struct, no sockets
//! and no threads: the workers ([`crate::worker`]) ask it what to fetch next
//! and tell it what happened, under one lock. (The shape of BitTorrent's
//! piece picker and aria2's segment man.)
//!
//! - Holders are taken in the order the sources gave them
//!   ([`Plan::take_holder`]): a worker that starts, or whose holder was
//!   dropped, takes the next one no worker has had yet.
//! - The content is cut into pieces of [`piece_len`] bytes, aligned to the
//!   64 KiB chunk group, so that every request starts on a group and every
//!   verified group lands in exactly one piece.
//! - Pending pieces form one shared queue, lowest offset first. A source
//!   that finishes a piece comes back for the next one at once, so a source
//!   twice as fast takes twice as many pieces: the split adapts to the
//!   sources as they are, rather than being divided equally up front.
//! - A fetch claims its bytes group by group as they are verified
//!   ([`Plan::claim`]); only the first claim of a byte is fresh, and only
//!   fresh bytes are written.
//! - Resume on another holder: a fetch that fails puts the unclaimed rest
//!   of its piece back in the queue ([`Plan::failed`]), so the next holder
//!   asks for it from the last verified byte, and verified bytes are never
//!   fetched twice because a holder died.
//! - Endgame: a source with nothing pending to take duplicates the active
//!   piece with the most bytes still to come (at most [`MAX_FETCHERS`]
//!   fetches per piece). Whichever fetch is ahead claims the bytes; the other
//!   is told to stop once the piece is whole. One slow or stalled holder thus
//!   cannot hold the finish.
//! - A source that lies (a proof fails) or does not hold the content is
//!   dropped at once; one whose connection breaks or times out gets
//!   [`MAX_STRIKES`] tries in a row before it is dropped. A claim resets the
//!   count.
//! - For an in-order output (stdout, a FIFO) the plan has a window: a piece
//!   is handed out only if it ends within `window` bytes of what the output
//!   has taken ([`Plan::delivered`]), so the reorder buffer never holds more
//!   than the window.
//! - A resumed save ([`crate::part`]) plans only the groups still missing
//!   ([`Plan::for_missing`]): each missing run is cut into pieces as a
//!   whole content would be, and the kept bytes count as claimed.
//! - With one worker ([`Plan::for_workers`]) the whole content is one piece
//!   and a holder that fails is left at once: the holders are asked in
//!   turn, each from where the last one stopped (the fetch of `--sources 1`,
//!   of a single holder, and of an older node).

use std::collections::HashMap;

use proto::content::{ByteRange, CHUNK_GROUP};

/// Fewest bytes in a piece: 1 MiB. A piece costs a fresh connection and a
/// request (one round trip, a few hundred bytes of proof); at 100 Mbit/s a
/// MiB takes ~80 ms, so the round trip of a LAN stays under 1% of it.
pub const MIN_PIECE: u64 = 1 << 20;

/// Most bytes in a piece: 8 MiB, so that even a large file has pieces small
/// enough to move off a holder that fails, and the endgame duplicates little.
pub const MAX_PIECE: u64 = 8 << 20;

/// Pieces each source should get at least, for the shared queue to have
/// something to balance: with 8, a source half as fast as the others costs
/// the finish at most about one piece of its time.
pub const PIECES_PER_SOURCE: u64 = 8;

/// At most this many fetches of one piece at a time: the one it was given
/// to and one endgame duplicate.
pub const MAX_FETCHERS: usize = 2;

/// Failed fetches in a row (broken, timed out) before a source is dropped.
pub const MAX_STRIKES: u32 = 2;

/// The piece size for `size` bytes fetched from `sources` sources, with an
/// in-order `window` if any: about [`PIECES_PER_SOURCE`] pieces per source,
/// between [`MIN_PIECE`] and [`MAX_PIECE`], at most an equal share of half
/// the window per source (so that every source has a piece to fetch inside
/// it, with room for the endgame), and a whole number of chunk groups.
/// 48 MiB from 3 sources: 2 MiB pieces; 1 GiB: 8 MiB.
pub fn piece_len(size: u64, sources: usize, window: Option<u64>) -> u64 {
    let sources = (sources as u64).max(1);
    let mut len = (size / (sources * PIECES_PER_SOURCE)).clamp(MIN_PIECE, MAX_PIECE);
    if let Some(window) = window {
        len = len.min(window / (2 * sources));
    }
    (len / CHUNK_GROUP).max(1) * CHUNK_GROUP
}

/// A source: one holder, by its place in the plan's list of holders, fetched
/// by one worker at a time.
pub type SourceId = usize;

/// One fetch the plan asked for: bytes `range` of piece `piece` from
/// `source` (one range request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub id: u64,
    pub source: SourceId,
    pub piece: usize,
    pub range: ByteRange,
    /// True when the piece was already being fetched by another source.
    pub duplicate: bool,
}

/// What a source should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Fetch(Assignment),
    /// Nothing to take now (every piece is taken, or the window is full);
    /// ask again when the plan changes.
    Wait,
    /// Every byte is claimed.
    Done,
    /// This source is dropped: it may fetch nothing more.
    Dropped,
}

/// What to do with verified bytes a fetch claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// These bytes (possibly fewer than claimed, possibly none) are new:
    /// write them. Go on fetching.
    Fresh(ByteRange),
    /// The piece is whole (another fetch finished it) or the fetch is no
    /// longer wanted: stop it.
    Stop,
}

/// Why a fetch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection failed, broke or timed out: maybe passing.
    Broken,
    /// The bytes failed the proof, or the answer was not what was asked:
    /// the source is not to be trusted again.
    Lied,
    /// The source does not hold the content (or cannot serve ranges).
    NotHere,
}

#[derive(Debug)]
struct Piece {
    end: u64,
    /// Bytes `start..claimed` are in the output.
    claimed: u64,
    /// Assignments fetching it now.
    fetchers: Vec<u64>,
}

impl Piece {
    fn is_whole(&self) -> bool {
        self.claimed == self.end
    }
}

#[derive(Debug, Default)]
struct Source {
    /// Fresh bytes it gave.
    bytes: u64,
    strikes: u32,
    dropped: bool,
}

/// The plan of one fetch. Every method is cheap (the pieces are few: at
/// most a few hundred), so it can be called under a lock for every group.
#[derive(Debug)]
pub struct Plan {
    size: u64,
    pieces: Vec<Piece>,
    /// Holders in the list the plan was made with.
    holders: usize,
    /// The holders taken so far, by [`SourceId`]: the first `sources.len()`
    /// of the list.
    sources: Vec<Source>,
    /// Failed fetches in a row (broken, timed out) before a source is
    /// dropped.
    strikes: u32,
    /// The source whose claim was the last one.
    last_claim: Option<SourceId>,
    active: HashMap<u64, Assignment>,
    next_id: u64,
    /// In-order output: pieces are handed out only if they end within
    /// `window` bytes of `delivered`.
    window: Option<u64>,
    delivered: u64,
    /// Index of the first piece that is not whole.
    first_open: usize,
    /// Bytes claimed, in all pieces.
    claimed: u64,
}

impl Plan {
    /// The plan for `size` bytes from `holders` holders fetched by `workers`
    /// workers at once, with an in-order `window` or none. One worker takes
    /// the whole content as one piece, and leaves a holder at its first
    /// failure for the next one: the holders in turn.
    pub fn for_workers(size: u64, holders: usize, workers: usize, window: Option<u64>) -> Plan {
        let whole = [ByteRange {
            offset: 0,
            len: size,
        }];
        Plan::for_missing(size, &whole, holders, workers, window)
    }

    /// As [`Plan::for_workers`], for only the `missing` ranges of the
    /// content (each starting on a chunk group, in order, disjoint): the
    /// rest is already claimed (kept by an earlier run). One worker takes
    /// each missing range as one piece.
    pub fn for_missing(
        size: u64,
        missing: &[ByteRange],
        holders: usize,
        workers: usize,
        window: Option<u64>,
    ) -> Plan {
        if workers <= 1 {
            let whole = size
                .div_ceil(CHUNK_GROUP)
                .max(1)
                .saturating_mul(CHUNK_GROUP);
            let mut plan = Plan::over(size, missing, whole, window, holders);
            plan.strikes = 1;
            return plan;
        }
        let wanted = missing.iter().map(|r| r.len).sum();
        let piece = piece_len(wanted, workers, window);
        Plan::over(size, missing, piece, window, holders)
    }

    /// A plan for `size` bytes in pieces of `piece` bytes (a whole number of
    /// chunk groups; see [`piece_len`]), with an in-order `window` (at least
    /// one piece) or none, from `holders` holders.
    pub fn new(size: u64, piece: u64, window: Option<u64>, holders: usize) -> Plan {
        let whole = [ByteRange {
            offset: 0,
            len: size,
        }];
        Plan::over(size, &whole, piece, window, holders)
    }

    /// A plan for the `wanted` ranges of `size` bytes (in order, disjoint,
    /// within the size), each cut into pieces of `piece` bytes; bytes
    /// outside them count as claimed.
    fn over(
        size: u64,
        wanted: &[ByteRange],
        piece: u64,
        window: Option<u64>,
        holders: usize,
    ) -> Plan {
        let piece = (piece / CHUNK_GROUP).max(1) * CHUNK_GROUP;
        let window = window.map(|w| w.max(piece));
        let mut pieces = Vec::new();
        let mut open = 0;
        for range in wanted {
            let end = range.end().min(size);
            let mut start = range.offset;
            while start < end {
                let stop = start.saturating_add(piece).min(end);
                pieces.push(Piece {
                    end: stop,
                    claimed: start,
                    fetchers: Vec::new(),
                });
                open += stop - start;
                start = stop;
            }
        }
        Plan {
            size,
            pieces,
            holders,
            sources: Vec::new(),
            strikes: MAX_STRIKES,
            last_claim: None,
            active: HashMap::new(),
            next_id: 0,
            window,
            delivered: 0,
            first_open: 0,
            claimed: size - open,
        }
    }

    /// The content's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next holder no worker has taken yet, in the list's order, as a
    /// new source; it may fetch at once. None once every holder was taken.
    pub fn take_holder(&mut self) -> Option<SourceId> {
        if self.sources.len() == self.holders {
            return None;
        }
        self.sources.push(Source::default());
        Some(self.sources.len() - 1)
    }

    /// Sources not dropped.
    pub fn live_sources(&self) -> usize {
        self.sources.iter().filter(|s| !s.dropped).count()
    }

    /// Fresh bytes each source gave, by [`SourceId`].
    pub fn contributions(&self) -> Vec<u64> {
        self.sources.iter().map(|s| s.bytes).collect()
    }

    /// The source that claimed bytes last: once the plan is complete, the
    /// one that finished it. None while nothing is claimed.
    pub fn last_claim(&self) -> Option<SourceId> {
        self.last_claim
    }

    /// Bytes claimed so far, by anyone.
    pub fn claimed(&self) -> u64 {
        self.claimed
    }

    /// True once every byte of piece `index` is claimed.
    pub fn piece_is_whole(&self, index: usize) -> bool {
        self.pieces.get(index).is_some_and(Piece::is_whole)
    }

    /// True once every byte is claimed.
    pub fn is_complete(&self) -> bool {
        self.first_open == self.pieces.len()
    }

    /// The end of the claimed prefix: every byte before it is claimed, so
    /// an in-order output may take up to here.
    pub fn frontier(&self) -> u64 {
        self.pieces
            .get(self.first_open)
            .map_or(self.size, |p| p.claimed)
    }

    /// An in-order output took everything before `upto`: the window moves on.
    pub fn delivered(&mut self, upto: u64) {
        self.delivered = self.delivered.max(upto.min(self.frontier()));
    }

    /// What `source` should fetch next.
    pub fn next(&mut self, source: SourceId) -> Next {
        if self.is_complete() {
            return Next::Done;
        }
        if self.sources.get(source).is_none_or(|s| s.dropped) {
            return Next::Dropped;
        }
        let limit = self
            .window
            .map_or(u64::MAX, |w| self.delivered.saturating_add(w));
        let open = &self.pieces[self.first_open..];
        // The first pending piece inside the window. (The window is at
        // least a piece, so once the output has caught up with the claimed
        // prefix the first open piece always fits: a plan always moves.)
        let pick = open
            .iter()
            .enumerate()
            .take_while(|(_, p)| p.end <= limit)
            .find(|(_, p)| p.fetchers.is_empty() && !p.is_whole())
            .map(|(i, _)| (i, false));
        let pick = pick.or_else(|| {
            // Endgame: the piece with the most bytes still to come that
            // this source is not already fetching.
            open.iter()
                .enumerate()
                .take_while(|(_, p)| p.end <= limit)
                .filter(|(_, p)| {
                    !p.is_whole()
                        && p.fetchers.len() < MAX_FETCHERS
                        && !p
                            .fetchers
                            .iter()
                            .any(|id| self.active.get(id).is_some_and(|a| a.source == source))
                })
                .max_by_key(|(i, p)| (p.end - p.claimed, std::cmp::Reverse(*i)))
                .map(|(i, _)| (i, true))
        });
        let Some((i, duplicate)) = pick else {
            return Next::Wait;
        };
        let index = self.first_open + i;
        let piece = &mut self.pieces[index];
        let assignment = Assignment {
            id: self.next_id,
            source,
            piece: index,
            range: ByteRange {
                offset: piece.claimed,
                len: piece.end - piece.claimed,
            },
            duplicate,
        };
        self.next_id += 1;
        piece.fetchers.push(assignment.id);
        self.active.insert(assignment.id, assignment);
        Next::Fetch(assignment)
    }

    /// A fetch verified bytes `at..at+len` of its range: which of them are
    /// fresh (to be written now), or whether to stop.
    pub fn claim(&mut self, assignment: &Assignment, at: u64, len: u64) -> Claim {
        if !self.active.contains_key(&assignment.id) {
            return Claim::Stop;
        }
        let piece = &mut self.pieces[assignment.piece];
        let end = at.saturating_add(len).min(piece.end);
        // A fetch runs on from where it started, which was at or before the
        // claimed point; a gap would leave bytes unwritten, so it is
        // refused (it cannot happen with fetches that claim in order).
        if at > piece.claimed || at < assignment.range.offset {
            return Claim::Stop;
        }
        if end <= piece.claimed {
            if piece.is_whole() {
                return Claim::Stop;
            }
            return Claim::Fresh(ByteRange {
                offset: piece.claimed,
                len: 0,
            });
        }
        let fresh = ByteRange {
            offset: piece.claimed,
            len: end - piece.claimed,
        };
        piece.claimed = end;
        self.claimed += fresh.len;
        let source = &mut self.sources[assignment.source];
        source.bytes += fresh.len;
        source.strikes = 0;
        self.last_claim = Some(assignment.source);
        while self
            .pieces
            .get(self.first_open)
            .is_some_and(Piece::is_whole)
        {
            self.first_open += 1;
        }
        Claim::Fresh(fresh)
    }

    /// A fetch ended: every byte of its range was claimed (by it or by a
    /// duplicate), or it was told to stop.
    pub fn finished(&mut self, assignment: &Assignment) {
        self.retire(assignment);
    }

    /// A fetch failed: the rest of its piece goes back to the queue (unless
    /// a duplicate still fetches it). Returns false if the source is now
    /// dropped.
    pub fn failed(&mut self, assignment: &Assignment, why: Failure) -> bool {
        self.retire(assignment);
        let source = &mut self.sources[assignment.source];
        match why {
            Failure::Broken => {
                source.strikes += 1;
                if source.strikes >= self.strikes {
                    source.dropped = true;
                }
            }
            Failure::Lied | Failure::NotHere => source.dropped = true,
        }
        !source.dropped
    }

    fn retire(&mut self, assignment: &Assignment) {
        if self.active.remove(&assignment.id).is_some()
            && let Some(piece) = self.pieces.get_mut(assignment.piece)
        {
            piece.fetchers.retain(|id| *id != assignment.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const G: u64 = CHUNK_GROUP;
    const MIB: u64 = 1 << 20;

    fn take(plan: &mut Plan) -> SourceId {
        plan.take_holder().expect("a holder left to take")
    }

    fn fetch(plan: &mut Plan, source: SourceId) -> Assignment {
        match plan.next(source) {
            Next::Fetch(a) => a,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    /// Claims the whole assignment in one go; the fresh length.
    fn complete(plan: &mut Plan, a: &Assignment) -> u64 {
        let fresh = match plan.claim(a, a.range.offset, a.range.len) {
            Claim::Fresh(r) => r.len,
            Claim::Stop => 0,
        };
        plan.finished(a);
        fresh
    }

    #[test]
    fn piece_sizes_are_whole_groups_within_bounds() {
        assert_eq!(piece_len(48 * MIB, 3, None), 2 * MIB);
        assert_eq!(piece_len(1 << 30, 3, None), MAX_PIECE);
        assert_eq!(piece_len(100, 4, None), MIN_PIECE);
        assert_eq!(piece_len(48 * MIB, 4, Some(16 * MIB)), 3 * MIB / 2);
        // A tiny window still leaves one group.
        assert_eq!(piece_len(48 * MIB, 4, Some(G)), G);
        for size in [0, 1, 5 * MIB + 3, 700 * MIB] {
            for sources in 1..6 {
                assert_eq!(piece_len(size, sources, Some(16 * MIB)) % G, 0);
            }
        }
    }

    #[test]
    fn a_faster_source_takes_more_pieces_from_the_shared_queue() {
        let mut plan = Plan::new(20 * MIB, MIB, None, 2);
        let (fast, slow) = (take(&mut plan), take(&mut plan));
        let mut slow_piece = fetch(&mut plan, slow);
        // The fast source finishes three pieces in the time the slow one
        // finishes one.
        let mut taken = [0, 1];
        while !plan.is_complete() {
            for _ in 0..3 {
                if let Next::Fetch(a) = plan.next(fast) {
                    assert!(!a.duplicate || plan.pieces[a.piece].fetchers.len() == 2);
                    complete(&mut plan, &a);
                    taken[0] += 1;
                }
            }
            complete(&mut plan, &slow_piece);
            if let Next::Fetch(a) = plan.next(slow) {
                slow_piece = a;
                taken[1] += 1;
            }
        }
        assert!(taken[0] >= 3 * (taken[1] - 1), "{taken:?}");
        let given = plan.contributions();
        assert_eq!(given.iter().sum::<u64>(), 20 * MIB);
        assert!(given[fast] > 2 * given[slow], "{given:?}");
    }

    #[test]
    fn a_failed_fetch_puts_the_unclaimed_rest_back() {
        let mut plan = Plan::new(4 * MIB, 2 * MIB, None, 2);
        let (a, b) = (take(&mut plan), take(&mut plan));
        let first = fetch(&mut plan, a);
        assert_eq!(
            plan.claim(&first, 0, 3 * G),
            Claim::Fresh(ByteRange {
                offset: 0,
                len: 3 * G
            })
        );
        assert!(plan.failed(&first, Failure::Broken), "one strike");
        // b takes the rest of piece 0 first: only what was not claimed.
        let again = fetch(&mut plan, b);
        assert_eq!(again.piece, 0);
        assert_eq!(again.range.offset, 3 * G);
        assert_eq!(again.range.len, 2 * MIB - 3 * G);
        assert!(!again.duplicate);
        // A second failure in a row drops a.
        let next = fetch(&mut plan, a);
        assert_eq!(next.piece, 1);
        assert!(!plan.failed(&next, Failure::Broken));
        assert_eq!(plan.next(a), Next::Dropped);
        assert_eq!(complete(&mut plan, &again), 2 * MIB - 3 * G);
        let last = fetch(&mut plan, b);
        assert_eq!(last.range.offset, 2 * MIB);
        complete(&mut plan, &last);
        assert!(plan.is_complete());
        assert_eq!(plan.contributions(), vec![3 * G, 4 * MIB - 3 * G]);
        assert_eq!(plan.next(b), Next::Done);
    }

    #[test]
    fn a_liar_is_dropped_at_once_and_its_piece_refetched() {
        let mut plan = Plan::new(2 * MIB, MIB, None, 2);
        let (liar, honest) = (take(&mut plan), take(&mut plan));
        let lie = fetch(&mut plan, liar);
        assert!(!plan.failed(&lie, Failure::Lied));
        assert_eq!(plan.next(liar), Next::Dropped);
        assert_eq!(plan.live_sources(), 1);
        let redo = fetch(&mut plan, honest);
        assert_eq!(redo.range, lie.range);
        complete(&mut plan, &redo);
        let rest = fetch(&mut plan, honest);
        complete(&mut plan, &rest);
        assert!(plan.is_complete());
        assert_eq!(plan.contributions()[liar], 0);
    }

    #[test]
    fn endgame_duplicates_the_piece_with_most_to_come_and_stops_the_loser() {
        let mut plan = Plan::new(3 * MIB, MIB, None, 3);
        let (a, b, c) = (take(&mut plan), take(&mut plan), take(&mut plan));
        let pa = fetch(&mut plan, a);
        let pb = fetch(&mut plan, b);
        let pc = fetch(&mut plan, c);
        // b has half its piece, a a quarter, c is stalled with nothing.
        assert!(matches!(
            plan.claim(&pb, pb.range.offset, MIB / 2),
            Claim::Fresh(_)
        ));
        assert!(matches!(plan.claim(&pa, 0, MIB / 4), Claim::Fresh(_)));
        // a finishes; with nothing pending it duplicates c's piece, which
        // has the most to come.
        complete(&mut plan, &pa);
        let dup = fetch(&mut plan, a);
        assert!(dup.duplicate);
        assert_eq!(dup.piece, pc.piece);
        assert_eq!(dup.range, pc.range);
        // Two fetchers at most: b, done next, duplicates b's... no: its own
        // piece is not offered to it, c's is full, so it waits.
        complete(&mut plan, &pb);
        assert_eq!(plan.next(b), Next::Wait);
        // The duplicate wins; the stalled fetch is told to stop.
        complete(&mut plan, &dup);
        assert!(plan.is_complete());
        assert_eq!(plan.claim(&pc, pc.range.offset, G), Claim::Stop);
        plan.finished(&pc);
        assert_eq!(plan.contributions(), vec![2 * MIB, MIB, 0]);
    }

    #[test]
    fn a_duplicate_that_is_behind_gets_nothing_fresh() {
        let mut plan = Plan::new(MIB, MIB, None, 2);
        let (a, b) = (take(&mut plan), take(&mut plan));
        let pa = fetch(&mut plan, a);
        let pb = fetch(&mut plan, b);
        assert!(pb.duplicate);
        assert_eq!(
            plan.claim(&pa, 0, 2 * G),
            Claim::Fresh(ByteRange {
                offset: 0,
                len: 2 * G
            })
        );
        // b is one group behind: nothing fresh, then one fresh group.
        assert_eq!(
            plan.claim(&pb, 0, G),
            Claim::Fresh(ByteRange {
                offset: 2 * G,
                len: 0
            })
        );
        assert_eq!(
            plan.claim(&pb, G, 2 * G),
            Claim::Fresh(ByteRange {
                offset: 2 * G,
                len: G
            })
        );
        // a's stream is now behind b's.
        assert_eq!(
            plan.claim(&pa, 2 * G, G),
            Claim::Fresh(ByteRange {
                offset: 3 * G,
                len: 0
            })
        );
        // A claim past the claimed point would leave a gap: refused.
        assert_eq!(plan.claim(&pa, 5 * G, G), Claim::Stop);
    }

    #[test]
    fn the_window_holds_back_pieces_until_the_output_takes_bytes() {
        let mut plan = Plan::new(8 * MIB, MIB, Some(2 * MIB), 3);
        let (a, b, c) = (take(&mut plan), take(&mut plan), take(&mut plan));
        let pa = fetch(&mut plan, a);
        let pb = fetch(&mut plan, b);
        assert_eq!((pa.piece, pb.piece), (0, 1));
        // Piece 2 is outside the window: c duplicates instead.
        let pc = fetch(&mut plan, c);
        assert!(pc.duplicate);
        complete(&mut plan, &pb);
        assert_eq!(plan.frontier(), 0, "piece 0 is not whole yet");
        complete(&mut plan, &pa);
        plan.finished(&pc);
        assert_eq!(plan.frontier(), 2 * MIB);
        assert_eq!(plan.next(b), Next::Wait, "the output has taken nothing");
        plan.delivered(MIB);
        assert_eq!(fetch(&mut plan, b).piece, 2);
    }

    #[test]
    fn holders_are_taken_in_order_once_each() {
        let mut plan = Plan::new(4 * MIB, MIB, None, 2);
        assert_eq!(plan.take_holder(), Some(0));
        assert_eq!(plan.take_holder(), Some(1));
        assert_eq!(plan.take_holder(), None);
    }

    #[test]
    fn one_worker_walks_the_holders_each_from_where_the_last_stopped() {
        let size = 5 * MIB + 3;
        let mut plan = Plan::for_workers(size, 3, 1, None);
        let first = take(&mut plan);
        let whole = fetch(&mut plan, first);
        assert_eq!(
            whole.range,
            ByteRange {
                offset: 0,
                len: size
            }
        );
        assert!(matches!(plan.claim(&whole, 0, 2 * G), Claim::Fresh(_)));
        // One failure leaves the holder, even a passing one.
        assert!(!plan.failed(&whole, Failure::Broken));
        assert_eq!(plan.next(first), Next::Dropped);
        let second = take(&mut plan);
        let rest = fetch(&mut plan, second);
        assert_eq!(
            rest.range,
            ByteRange {
                offset: 2 * G,
                len: size - 2 * G
            }
        );
        complete(&mut plan, &rest);
        assert!(plan.is_complete());
        assert_eq!(plan.last_claim(), Some(second), "the holder that finished");
        assert_eq!(plan.contributions(), vec![2 * G, size - 2 * G]);
        // An empty content is one empty plan, complete at once.
        let empty = Plan::for_workers(0, 1, 1, None);
        assert!(empty.is_complete());
        assert_eq!(empty.last_claim(), None);
    }

    #[test]
    fn a_resumed_plan_fetches_only_the_missing_ranges() {
        let size = 10 * MIB + 5;
        let missing = [
            ByteRange {
                offset: MIB,
                len: 2 * MIB,
            },
            ByteRange {
                offset: 9 * MIB,
                len: MIB + 5,
            },
        ];
        for workers in [1, 3] {
            let mut plan = Plan::for_missing(size, &missing, 2, workers, None);
            assert_eq!(plan.claimed(), size - 3 * MIB - 5);
            let a = take(&mut plan);
            let mut got = Vec::new();
            while let Next::Fetch(x) = plan.next(a) {
                got.push(x.range);
                complete(&mut plan, &x);
            }
            assert!(plan.is_complete());
            assert_eq!(plan.claimed(), size);
            assert_eq!(got.iter().map(|r| r.len).sum::<u64>(), 3 * MIB + 5);
            assert!(got.iter().all(|r| {
                missing
                    .iter()
                    .any(|m| m.offset <= r.offset && r.end() <= m.end())
            }));
        }
        // Nothing missing: complete at once.
        assert!(Plan::for_missing(size, &[], 1, 1, None).is_complete());
    }

    #[test]
    fn an_empty_content_is_complete_at_once() {
        let mut plan = Plan::new(0, MIB, Some(MIB), 1);
        let a = take(&mut plan);
        assert!(plan.is_complete());
        assert_eq!(plan.next(a), Next::Done);
        assert_eq!(plan.frontier(), 0);
    }

    /// A step of the simulation: which source acts, and how.
    #[derive(Debug, Clone)]
    enum Step {
        /// The source asks for work (if idle) or claims `groups` more groups.
        Advance { source: usize, groups: u64 },
        /// The source's fetch fails.
        Fail { source: usize, why: u8 },
        /// The in-order output takes what is ready.
        Deliver,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0..4usize, 1..6u64).prop_map(|(source, groups)| Step::Advance { source, groups }),
            1 => (0..4usize, 0..3u8).prop_map(|(source, why)| Step::Fail { source, why }),
            2 => Just(Step::Deliver),
        ]
    }

    /// The bytes written so far, as disjoint intervals (start -> end).
    #[derive(Default)]
    struct Written(std::collections::BTreeMap<u64, u64>);

    impl Written {
        /// Records `range`; false if any of it was written before.
        fn mark(&mut self, range: ByteRange) -> bool {
            if range.len == 0 {
                return true;
            }
            let before = self.0.range(..range.end()).next_back();
            if before.is_some_and(|(_, &end)| end > range.offset) {
                return false;
            }
            self.0.insert(range.offset, range.end());
            true
        }

        /// The end of the written prefix from byte 0.
        fn prefix(&self) -> u64 {
            let mut end = 0;
            for (&s, &e) in &self.0 {
                if s != end {
                    break;
                }
                end = e;
            }
            end
        }

        fn total(&self) -> u64 {
            self.0.iter().map(|(s, e)| e - s).sum()
        }
    }

    type Current = Vec<Option<(Assignment, u64)>>;

    fn apply(
        plan: &mut Plan,
        current: &mut Current,
        step: &Step,
        written: &mut Written,
        delivered: &mut u64,
    ) -> Result<(), TestCaseError> {
        match *step {
            Step::Advance { source, groups } => match current[source] {
                None => {
                    if let Next::Fetch(a) = plan.next(source) {
                        current[source] = Some((a, a.range.offset));
                    }
                }
                Some((a, at)) => {
                    let end = a.range.end();
                    let len = (groups * G).min(end - at);
                    match plan.claim(&a, at, len) {
                        Claim::Fresh(fresh) => {
                            prop_assert!(written.mark(fresh), "a byte written twice");
                            if at + len == end {
                                plan.finished(&a);
                                current[source] = None;
                            } else {
                                current[source] = Some((a, at + len));
                            }
                        }
                        Claim::Stop => {
                            plan.finished(&a);
                            current[source] = None;
                        }
                    }
                }
            },
            Step::Fail { source, why } => {
                if let Some((a, _)) = current[source].take() {
                    let why = match why {
                        0 => Failure::Broken,
                        1 => Failure::Lied,
                        _ => Failure::NotHere,
                    };
                    // Source 0 never lies; it only breaks, and comes back
                    // (as a new source for the same holder would).
                    let why = if source == 0 { Failure::Broken } else { why };
                    if !plan.failed(&a, why) && source == 0 {
                        plan.sources[0].dropped = false;
                        plan.sources[0].strikes = 0;
                    }
                }
            }
            Step::Deliver => {
                let frontier = plan.frontier();
                prop_assert!(frontier >= *delivered);
                prop_assert!(
                    written.prefix() >= frontier,
                    "the frontier is past the written bytes"
                );
                *delivered = frontier;
                plan.delivered(frontier);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the order of events (fetches, failures, lies,
        /// duplicates, a window or none), the fresh ranges written are
        /// disjoint, the claimed bytes past the output stay inside the
        /// window, and once source 0 (always honest) has run the plan to
        /// the end they cover every byte exactly once; the per-source
        /// counts add up to the size.
        #[test]
        fn every_byte_is_written_exactly_once(
            size in 0u64..(40 * G),
            piece_groups in 1u64..6,
            window in prop::option::of(1u64..12),
            steps in prop::collection::vec(step(), 0..300),
        ) {
            let mut plan = Plan::new(size, piece_groups * G, window.map(|w| w * G), 4);
            for _ in 0..4 {
                take(&mut plan);
            }
            let mut current: Current = vec![None; 4];
            let mut written = Written::default();
            let mut delivered = 0u64;
            for s in &steps {
                apply(&mut plan, &mut current, s, &mut written, &mut delivered)?;
                if let Some(w) = window {
                    let past = written.total() - delivered;
                    prop_assert!(past <= (w * G).max(piece_groups * G), "past the window");
                }
            }
            // Source 0 runs the rest alone (every other source lies).
            for source in 1..4 {
                apply(&mut plan, &mut current, &Step::Fail { source, why: 1 }, &mut written, &mut delivered)?;
            }
            let mut guard = 0;
            while !plan.is_complete() {
                guard += 1;
                prop_assert!(guard < 10_000, "the plan does not move");
                apply(&mut plan, &mut current, &Step::Advance { source: 0, groups: 3 }, &mut written, &mut delivered)?;
                apply(&mut plan, &mut current, &Step::Deliver, &mut written, &mut delivered)?;
            }
            prop_assert_eq!(written.total(), size, "a byte never written");
            prop_assert_eq!(written.prefix(), size);
            prop_assert_eq!(plan.contributions().iter().sum::<u64>(), size);
            prop_assert_eq!(plan.frontier(), size);
        }
    }
}
