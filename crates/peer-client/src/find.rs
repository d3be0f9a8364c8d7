//! Finding the content: the holders in turn, in the order the sources gave
//! them, until one answers for it. Its answer fixes the content (its hash
//! and size) that every later range must belong to.
//!
//! What the holders are asked depends on the workers that will follow
//! ([`Opening`]):
//! - one worker asks for the whole content at once, and the answer's body
//!   is the start of the fetch itself ([`Opened`]): one exchange, no probe.
//!   A name the relay's index resolved is asked for by that version's hash.
//!   An older node that does not know range requests is asked for the file
//!   instead, unverified;
//! - several workers first need the size to cut the plan, and a resume
//!   wants only what its part lacks: the holder is
//!   asked for an empty range at offset 0, whose answer carries the
//!   content's last chunk group with its proof. That proves the size as
//!   well as the hash before any other node is asked, so a node lying about
//!   the size cannot make honest nodes look like liars. It costs one
//!   exchange of at most 64 KiB. Older nodes are passed over: if no holder
//!   proves the content, the caller asks them in turn with one worker.
//!
//! The holders that do not have the content cost time each (a node asked
//! for a hash it does not hold may wait for its rescan first), so a fetch
//! spends at most [`MISS_BUDGET`] on them in all, across its attempts
//! ([`Misses`]): a relay that lists a thousand nodes that all miss cannot
//! hold the user for a thousand seconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use net::exchange::Connection;
use proto::{ContentHash, Target};

use crate::dial::Dialer;
use crate::failure::{Failed, Why};
use crate::holder::{self, Holder};
use crate::report::Report;
use crate::verify::{self, Answer, Asked, Content};

/// What a fetch asks for: a name or a content hash, and, when a source
/// said which content it is (the relay's index), that version's hash and
/// size: a holder of another content is passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub target: Target,
    pub expect: Option<(ContentHash, u64)>,
}

impl Want {
    /// How status lines name it: the name, or `blake3:3f2a9c1e`.
    pub fn name(&self) -> String {
        match &self.target {
            Target::Name(name) => name.clone(),
            Target::Hash(hash) => format!("blake3:{}", hash.short()),
        }
    }
}

/// Most time one fetch spends on holders that turn out not to have the
/// content (they answer not-found, or hold another version), in all: ten
/// holders that each wait a second for their rescan. A holder that cannot
/// be reached is not counted: its own timeouts bound it, and a dead node
/// listed first must not keep the client from the live one after it.
pub const MISS_BUDGET: Duration = Duration::from_secs(10);

/// The time a fetch spent on holders that did not have the content, across
/// its attempts, against its bound.
#[derive(Debug)]
pub struct Misses {
    limit: Duration,
    /// Time spent, and whether the line that says the bound cut in was
    /// given (once per fetch).
    spent: Mutex<(Duration, bool)>,
}

impl Default for Misses {
    fn default() -> Misses {
        Misses::new(MISS_BUDGET)
    }
}

impl Misses {
    pub fn new(limit: Duration) -> Misses {
        Misses {
            limit,
            spent: Mutex::new((Duration::ZERO, false)),
        }
    }

    /// Counts `took` against the bound; true while some is left.
    pub fn spend(&self, took: Duration) -> bool {
        let mut spent = self.lock();
        spent.0 += took;
        spent.0 < self.limit
    }

    /// True once the bound is reached: no more holders are asked.
    pub fn exhausted(&self) -> bool {
        self.lock().0 >= self.limit
    }

    /// The line that says the bound cut in, `left` more holders not asked;
    /// None once it was given.
    pub fn line(&self, name: &str, left: usize) -> Option<String> {
        let mut spent = self.lock();
        if std::mem::replace(&mut spent.1, true) {
            return None;
        }
        let others = match left {
            0 => "any other holder".to_string(),
            n => format!("the other {}", crate::report::count(n, "holder")),
        };
        Some(format!(
            "{name}: not asking {others}: {:.1} s spent on holders that do not have it \
             (at most {} s per fetch)",
            spent.0.as_secs_f64(),
            self.limit.as_secs()
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Duration, bool)> {
        // Two plain values, always consistent.
        self.spent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The first request to each holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// The whole content (one worker follows).
    Whole,
    /// An empty range: a proof of the size (several workers follow).
    Probe,
}

/// The content and the first holder that has it.
pub struct Found {
    /// The holder's place in the list.
    pub at: usize,
    pub content: Content,
    /// With [`Opening::Whole`], its open exchange: the body follows.
    pub opened: Option<Opened>,
}

/// An exchange whose answer is checked and whose body is still to be read.
pub struct Opened {
    pub conn: Connection,
    pub answer: Answer,
}

/// Why no holder was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoHolder {
    /// No node has it; each one's answer is already reported.
    Missing,
    /// Some node cannot serve ranges (an older node): asked in turn with
    /// one worker, it may still serve the file whole.
    OlderNodes,
}

/// Asks `holders` in turn until one has the content `want` names,
/// reporting each one that does not.
/// Each one that does not counts against `misses`; once they are spent,
/// the rest are not asked (said in one line).
pub fn first(
    want: &Want,
    holders: &[Holder],
    opening: Opening,
    dialer: &Dialer,
    misses: &Misses,
    report: &Report,
) -> Result<Found, NoHolder> {
    let mut older = false;
    for (at, holder) in holders.iter().enumerate() {
        if misses.exhausted() {
            if let Some(line) = misses.line(&want.name(), holders.len() - at) {
                report.status(&line);
            }
            break;
        }
        let asked = Instant::now();
        let opened = open(want, holder, opening, dialer);
        if let Err(Failed {
            why: Why::NotHere | Why::AnotherVersion(_),
            ..
        }) = &opened
        {
            misses.spend(asked.elapsed());
        }
        match opened {
            Ok((content, opened)) => {
                return Ok(Found {
                    at,
                    content,
                    opened,
                });
            }
            Err(Failed {
                why: Why::NoRanges(why),
                ..
            }) if opening == Opening::Probe => {
                older = true;
                tracing::debug!("{} cannot serve ranges: {why}", holder.label);
            }
            Err(failed) => {
                report.status(&failed.line(&dialer.restate(&holder.label, &holder.node), 0, None))
            }
        }
    }
    Err(if older {
        NoHolder::OlderNodes
    } else {
        NoHolder::Missing
    })
}

/// The opening exchange with one holder.
fn open(
    want: &Want,
    holder: &Holder,
    opening: Opening,
    dialer: &Dialer,
) -> Result<(Content, Option<Opened>), Failed> {
    let mut conn = holder.connect(dialer)?;
    let by = match (opening, &want.target, want.expect) {
        (Opening::Whole, Target::Name(_), Some((hash, _))) => Target::Hash(hash),
        _ => want.target.clone(),
    };
    let len = match opening {
        Opening::Whole => u64::MAX,
        Opening::Probe => 0,
    };
    let header = match holder::ask_range(&mut conn, &by, 0, len) {
        Ok(header) => header,
        Err(Failed {
            why: Why::NoRanges(why),
            ..
        }) if opening == Opening::Whole => return older_node(want, holder, dialer, why),
        Err(failed) => return Err(failed),
    };
    let asked = Asked {
        by: &by,
        offset: 0,
        len,
        content: want.expect,
    };
    verify::check_range(&header, &asked)?;
    let content = Content::Verified {
        hash: header.hash,
        size: header.size,
    };
    match opening {
        Opening::Probe => {
            verify::prove_size(conn, &header)?;
            Ok((content, None))
        }
        Opening::Whole => opened(content, conn, Answer::Range(header)),
    }
}

/// An older node, asked for the whole content: by name and with no version
/// fixed, it may serve the file unverified.
fn older_node(
    want: &Want,
    holder: &Holder,
    dialer: &Dialer,
    why: String,
) -> Result<(Content, Option<Opened>), Failed> {
    let name = match &want.target {
        Target::Name(name) if want.expect.is_none() => name,
        target => return Err(holder::cannot_prove(matches!(target, Target::Hash(_)), why)),
    };
    let mut conn = holder.connect(dialer)?;
    let header = holder::ask_file(&mut conn, name, 0)?;
    verify::check_file(&header, 0, None)?;
    let content = Content::Unverified { size: header.size };
    opened(content, conn, Answer::File(header))
}

/// The content, with its open exchange for the worker. An empty content
/// leaves the worker no range to fetch, so its answer (the proof of the
/// empty content, or nothing) is read here.
fn opened(
    content: Content,
    conn: Connection,
    answer: Answer,
) -> Result<(Content, Option<Opened>), Failed> {
    if content.size() == 0 {
        verify::receive(conn, &answer, false, |_, _| true)?;
        return Ok((content, None));
    }
    Ok((content, Some(Opened { conn, answer })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_are_bounded_in_all_and_said_once() {
        let misses = Misses::new(Duration::from_secs(10));
        assert!(misses.spend(Duration::from_secs(4)));
        assert!(!misses.exhausted());
        assert!(!misses.spend(Duration::from_secs(6)));
        assert!(misses.exhausted());
        let line = misses.line("a.bin", 990).unwrap();
        assert_eq!(
            line,
            "a.bin: not asking the other 990 holders: 10.0 s spent on holders that do not \
             have it (at most 10 s per fetch)"
        );
        assert_eq!(misses.line("a.bin", 3), None, "one line per fetch");
    }
}
