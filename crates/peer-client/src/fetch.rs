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
//! One worker is the common case: `--sources 1`, a single holder, content
//! the index says is small (below two pieces, where a second connection
//! costs more than it gains), and older nodes that cannot prove ranges. It
//! walks the holders in turn, each from where the last one stopped; several
//! workers share the plan's pieces between the holders at once.

use proto::NodeInfo;

use crate::dial::Dialer;
pub use crate::find::Want;
use crate::find::{self, NoHolder, Opening};
use crate::holder::Holder;
use crate::output::{Output, SinkError};
use crate::plan::{MIN_PIECE, Plan};
use crate::progress::Progress;
use crate::report::Report;
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
    Found { size: u64 },
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
}

/// Fetches what `want` names from `nodes` (in the order the sources gave
/// them) with up to `sources` workers, into `out`. Nothing written and no
/// holder found ends as [`Fetched::Nothing`], so the caller may try another
/// version.
pub fn fetch(
    want: &Want,
    nodes: &[NodeInfo],
    dialer: &Dialer,
    sources: usize,
    out: &mut Output,
    report: &Report,
) -> Fetched {
    if nodes.is_empty() {
        report.status("no active nodes: start a peer-node, or check the relay address");
        return Fetched::Missing;
    }
    let holders = Holder::all(nodes);
    let small = want.expect.is_some_and(|(_, size)| size < MIN_SPLIT);
    let several = sources > 1 && holders.len() > 1 && !small;
    let opening = if several {
        Opening::Probe
    } else {
        Opening::Whole
    };
    let found = match find::first(want, &holders, opening, dialer, report) {
        Ok(found) => found,
        // An older node may still serve the file whole: one worker asks the
        // holders in turn (and reports each one again).
        Err(NoHolder::OlderNodes) => return fetch(want, nodes, dialer, 1, out, report),
        Err(NoHolder::Missing) => {
            report.status(&format!("not found on any of {} active nodes", nodes.len()));
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
    let plan = Plan::for_workers(size, holders.len(), workers, worker::window(out, workers));
    let progress = Progress::new(out.shows_progress(), size);
    let job = Job {
        want,
        content,
        holders,
        opened: found.opened,
        dialer,
        report,
        progress: &progress,
    };
    let (ended, plan) = worker::run(job, plan, workers, out);
    match ended {
        Ended::Complete => {
            progress.finish();
            report.status(&found_line(&plan, holders, content, workers));
            Fetched::Found { size }
        }
        Ended::Incomplete if plan.claimed() == 0 => {
            progress.abandon();
            report.status(&format!("not found on any of {} active nodes", nodes.len()));
            Fetched::Nothing
        }
        Ended::Incomplete => {
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

/// The line of a complete fetch: the holder that finished it, or, when
/// several workers shared it between holders, how much each one gave.
fn found_line(plan: &Plan, holders: &[Holder], content: Content, workers: usize) -> String {
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
                .map(|(_, h)| format!("{}{}", h.node.addr, crate::dial::via(&h.node)))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    // An empty content has no claim: the holder that has it.
    let finisher = &holders[plan.last_claim().unwrap_or(0)];
    format!("found on {} ({proof})", finisher.label)
}
