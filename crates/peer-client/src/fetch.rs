//! The one fetch path: a content from the holders the sources named.
//!
//! 1. Find ([`crate::find`]): the holders in turn until one answers for the
//!    content, which fixes its hash and size.
//! 2. Plan ([`crate::plan`]): from that holder on, which holders are asked,
//!    which ranges, and what each gave.
//! 3. Workers ([`crate::worker`]): up to `--sources` of them carry the plan
//!    out, verified ([`crate::verify`]), into the output
//!    ([`crate::output`]), with one progress bar ([`crate::progress`]).
//! 4. One line says how it ended.
//!
//! A save resumes what an earlier run kept ([`crate::part`]): once the
//! content is known, a part recorded for the same hash and size keeps its
//! groups, which are checked against the content's tree before anything
//! else is fetched ([`crate::recheck`]: the proofs of the missing groups
//! beside them, hashes of the kept ones from disk). Damaged groups are
//! fetched again with the missing ones, and only they. A part for another
//! content is emptied first (two versions are never mixed). When no holder
//! gives the proofs, the check waits for the rest: the whole part is then
//! hashed (one read at hashing speed) and must give the content hash, or
//! every kept byte is fetched again, proved, and the whole hashed once
//! more.
//!
//! One worker is the common case: `--sources 1`, a single holder, content
//! the index says is small (below two pieces, where a second connection
//! costs more than it gains), and older nodes that cannot prove ranges. It
//! walks the holders in turn, each from where the last one stopped; several
//! workers share the plan's pieces between the holders at once.

use proto::content::ByteRange;

use crate::dial::Dialer;
pub use crate::find::Want;
use crate::find::{self, Misses, NoHolder, Opening};
use crate::holder::Holder;
use crate::holders::Attempt;
use crate::output::{Output, SinkError};
use crate::part::{Kept, human};
use crate::plan::{MIN_PIECE, Plan};
use crate::progress::Progress;
use crate::recheck::{self, Unchecked};
use crate::report::{Report, count};
use crate::verify::Content;
use crate::worker::{self, Ended, Job};

/// Smallest content fetched from several holders: two pieces. Below that a
/// second connection costs more than it gains, and one worker walks the
/// holders in turn.
const MIN_SPLIT: u64 = 2 * MIN_PIECE;

/// How a fetch ended.
#[derive(Debug)]
pub enum Fetched {
    /// Complete: all `size` bytes reached the output.
    Found {
        size: u64,
        /// The content's hash (none from an older node without hashes).
        hash: Option<proto::ContentHash>,
    },
    /// No node had it (or every node that had it failed).
    Missing,
    /// As `Missing`, and not a byte reached the output: another version
    /// may still be tried.
    Nothing,
    /// stdout is a terminal and the file is not text; nothing is reported
    /// yet, since the hint depends on where the user typed the name.
    NotText,
    /// The output refused the bytes; the reason is already reported.
    OutputFailed,
    /// Every holder's copy changed during the transfer: the content is held
    /// nowhere now, and what was received is of no use (said here).
    Changed,
}

/// Fetches what the attempt wants from its nodes (in the order the
/// sources gave them; a miss speaks for its `active` nodes) with up to
/// `sources` workers, into `out`; the holders that do not have it spend
/// `misses` (shared by the fetch's attempts). Nothing written and no holder
/// found ends as [`Fetched::Nothing`], so the caller may try another
/// version.
pub fn fetch(
    attempt: &Attempt,
    dialer: &Dialer,
    sources: usize,
    misses: &Misses,
    out: &mut Output,
    report: &Report,
) -> Fetched {
    let Attempt {
        want,
        nodes,
        active,
        ..
    } = attempt;
    let active = *active;
    if nodes.is_empty() {
        report.status("no active nodes: start a peer-node, or check the relay address");
        return Fetched::Missing;
    }
    let holders = Holder::all(nodes);
    let small = want.expect.is_some_and(|(_, size)| size < MIN_SPLIT);
    let several = sources > 1 && holders.len() > 1 && !small;
    // A resume wants only what the part lacks: the whole content asked for
    // and then cut off would cost what the socket buffers took meanwhile.
    let resuming = out.positioned().is_some_and(|part| part.has_earlier());
    let opening = if several || resuming {
        Opening::Probe
    } else {
        Opening::Whole
    };
    let found = match find::first(want, &holders, opening, dialer, misses, report) {
        Ok(found) => found,
        // An older node may still serve the file whole: one worker asks the
        // holders in turn (and reports each one again).
        Err(NoHolder::OlderNodes) => {
            return fetch(attempt, dialer, 1, misses, out, report);
        }
        Err(NoHolder::Missing) => {
            report.missing(&format!(
                "{}: not found on any of {}",
                want.name(),
                count(active.max(nodes.len()), "active node")
            ));
            return Fetched::Nothing;
        }
    };
    let holders = &holders[found.at..];
    let content = found.content;
    let size = content.size();
    let workers = if several && size >= MIN_SPLIT {
        sources.min(holders.len())
    } else {
        1
    };
    let whole = vec![ByteRange {
        offset: 0,
        len: size,
    }];
    let resumed = match resume(want, content, out, holders, dialer, report) {
        Ok(resumed) => resumed,
        Err(fetched) => return fetched,
    };
    // The first holder's open exchange, when it asked for the whole
    // content, is of use only when all of it is wanted (else it is closed
    // now; a part from an earlier run asks for the proof of the size
    // instead).
    let (kept, missing, opened) = match resumed {
        Some(Resumed { unchecked, missing }) => {
            drop(found.opened);
            (unchecked, missing, None)
        }
        None => (Vec::new(), whole, found.opened),
    };
    let progress = Progress::new(out.shows_progress(), size);
    let run = |missing: &[ByteRange], opened, out: &mut Output| {
        let window = worker::window(out, workers);
        let plan = Plan::for_missing(size, missing, holders.len(), workers, window);
        progress.set_position(plan.claimed());
        let job = Job {
            want,
            content,
            holders,
            opened,
            dialer,
            misses,
            report,
            progress: &progress,
        };
        worker::run(job, plan, workers, out)
    };
    let (mut ended, mut plan) = run(&missing, opened, out);
    if matches!(ended, Ended::Complete)
        && !kept.is_empty()
        && let Some(hash) = content.hash()
    {
        // Kept bytes count only once the whole part hashes to the content.
        match check(out, &hash) {
            Ok(true) => {}
            Ok(false) => {
                report.status(&format!(
                    "{}: the {} kept from the last run do not match blake3 {}; fetching them again",
                    want.name(),
                    human(kept.iter().map(|r| r.len).sum()),
                    hash.short()
                ));
                if let Some(part) = out.positioned() {
                    part.unmark(&kept);
                }
                (ended, plan) = run(&kept, None, out);
                if matches!(ended, Ended::Complete) && !matches!(check(out, &hash), Ok(true)) {
                    progress.abandon();
                    report.error(&format!(
                        "cannot write {}: the saved bytes do not read back as they were written",
                        want.name()
                    ));
                    return Fetched::OutputFailed;
                }
            }
            Err(e) => ended = Ended::Output(SinkError::Io(e)),
        }
    }
    match ended {
        Ended::Complete => {
            progress.finish();
            report.status(&found_line(&plan, holders, content, workers, dialer));
            Fetched::Found {
                size,
                hash: content.hash(),
            }
        }
        Ended::Changed if plan.claimed() > 0 && content.hash().is_some() => {
            progress.abandon();
            let hash = content.hash().map(|h| h.short()).unwrap_or_default();
            // The part holds bytes of a content no node has now: not kept
            // for a resume that cannot come.
            if let Some(part) = out.positioned() {
                part.unmark(&[ByteRange {
                    offset: 0,
                    len: size,
                }]);
            }
            report.missing(&format!(
                "{} changed on every holder during the transfer (blake3 {hash} is no longer \
                 held); nothing saved",
                want.name()
            ));
            Fetched::Changed
        }
        Ended::Incomplete | Ended::Changed if plan.claimed() == 0 => {
            progress.abandon();
            report.missing(&format!(
                "{}: not found on any of {}",
                want.name(),
                count(active.max(nodes.len()), "active node")
            ));
            Fetched::Nothing
        }
        Ended::Incomplete | Ended::Changed => {
            progress.abandon();
            let holders = match content.hash() {
                Some(hash) => format!("; no other node could continue blake3 {}", hash.short()),
                None => String::new(),
            };
            report.status(&format!(
                "{}: incomplete, {} of {size} bytes received from {} active nodes{holders}",
                want.name(),
                plan.claimed(),
                nodes.len(),
            ));
            Fetched::Missing
        }
        Ended::Output(SinkError::NotText) => {
            progress.abandon();
            Fetched::NotText
        }
        Ended::Output(SinkError::Io(e)) => {
            progress.abandon();
            report.error(&format!(
                "cannot write {}: {}",
                want.name(),
                proto::error::io_reason(&e)
            ));
            Fetched::OutputFailed
        }
    }
}

/// What a save resumes from an earlier run.
struct Resumed {
    /// Kept ranges not checked yet (no holder gave their proofs): the
    /// whole part is hashed once the rest is here.
    unchecked: Vec<ByteRange>,
    /// What is still to be fetched.
    missing: Vec<ByteRange>,
}

/// Starts the part of a save for `content` (nothing for other outputs):
/// what an earlier run kept, checked against the content's tree before the
/// rest is fetched ([`crate::recheck`], asking `holders`), or None when all
/// of it is to be fetched. Says what it resumes, what the check found, or
/// why it starts over.
fn resume(
    want: &Want,
    content: Content,
    out: &Output,
    holders: &[Holder],
    dialer: &Dialer,
    report: &Report,
) -> Result<Option<Resumed>, Fetched> {
    let Some(part) = out.positioned() else {
        return Ok(None);
    };
    let size = content.size();
    let cannot_write = |e: std::io::Error| {
        report.error(&format!(
            "cannot write {}: {}",
            part.path().display(),
            proto::error::io_reason(&e)
        ));
        Fetched::OutputFailed
    };
    let (kept, missing, bytes) = match part.begin(content.hash().map(|h| (h, size)), &want.name()) {
        Ok(Kept::Nothing) => return Ok(None),
        Ok(Kept::Other { why }) => {
            report.status(&format!(
                "{}: starting over; the part kept at {} is not used: {why}",
                want.name(),
                part.path().display()
            ));
            return Ok(None);
        }
        Ok(Kept::Some {
            kept,
            missing,
            bytes,
        }) => (kept, missing, bytes),
        Err(e) => return Err(cannot_write(e)),
    };
    report.status(&format!(
        "{}: resuming at {} of {} kept from the last run",
        want.name(),
        human(bytes),
        human(size)
    ));
    // Only a content with a hash is ever kept.
    let Some(hash) = content.hash() else {
        return Ok(Some(Resumed {
            unchecked: kept,
            missing,
        }));
    };
    match recheck::kept_groups(part, hash, size, holders, dialer) {
        Ok(tally) => {
            report.status(&format!(
                "{}: {} of the {} kept verified against blake3 {}, {} fetched again{}",
                want.name(),
                exact(tally.good),
                exact(bytes),
                hash.short(),
                exact(tally.again),
                match tally.damaged {
                    0 => String::new(),
                    n => format!(" ({})", count(n as usize, "damaged chunk group")),
                }
            ));
            Ok(Some(Resumed {
                unchecked: Vec::new(),
                missing: part.missing(),
            }))
        }
        Err(Unchecked::NoProof(why)) => {
            report.status(&format!(
                "{}: cannot check the kept bytes before the rest ({why}); the whole part is checked once the rest is here",
                want.name()
            ));
            Ok(Some(Resumed {
                unchecked: kept,
                missing: part.missing(),
            }))
        }
        Err(Unchecked::Part(e)) => Err(cannot_write(e)),
    }
}

/// Bytes for the check's line, exact to the chunk group: `960 KiB`,
/// `5.9 MiB` (with a decimal where whole MiB would round).
fn exact(bytes: u64) -> String {
    const M: u64 = 1 << 20;
    if bytes < M || bytes.is_multiple_of(M) || bytes >= 1 << 30 {
        human(bytes)
    } else {
        format!("{:.1} MiB", bytes as f64 / M as f64)
    }
}

/// Whether the saved part hashes to `hash`.
fn check(out: &Output, hash: &proto::ContentHash) -> std::io::Result<bool> {
    match out.positioned() {
        Some(part) => part.hashes_to(hash),
        None => Ok(true),
    }
}

/// The line of a complete fetch: the holder that finished it, or, when
/// several workers shared it between holders, how much each one gave.
fn found_line(
    plan: &Plan,
    holders: &[Holder],
    content: Content,
    workers: usize,
    dialer: &Dialer,
) -> String {
    let proof = format!("{} bytes, {}", content.size(), content.proof());
    let mut given: Vec<(u64, &Holder)> = plan
        .contributions()
        .into_iter()
        .zip(holders)
        .filter(|(bytes, _)| *bytes > 0)
        .collect();
    if workers > 1 && given.len() > 1 {
        given.sort_by_key(|g| std::cmp::Reverse(g.0));
        return format!(
            "found on {} nodes ({proof}): {} MiB from {}",
            given.len(),
            given
                .iter()
                .map(|(b, _)| format!("{:.1}", *b as f64 / (1 << 20) as f64))
                .collect::<Vec<_>>()
                .join(" / "),
            given
                .iter()
                .map(|(_, h)| format!("{}{}", h.node.addr, dialer.via(&h.node)))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    // An empty content has no claim: the holder that has it.
    let finisher = &holders[plan.last_claim().unwrap_or(0)];
    // Reaching it may have gone another way than it is listed (punched).
    format!(
        "found on {} ({proof})",
        dialer.restate(&finisher.label, &finisher.node)
    )
}
