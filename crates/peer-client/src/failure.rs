//! Why a holder's part of a fetch failed: what the plan makes of it (is the
//! holder worth another try?) and the line that tells the user.
//!
//! Every exchange with a holder, the first one that finds the content and
//! every later range alike, ends in one of these; the worker or the finder
//! renders it with the holder's label ("10.0.0.2:7001 (via relay), node 2
//! of 3"), so a failure reads the same wherever it happened.

use proto::{ProtoError, Response};

use crate::plan::Failure;

/// A holder's part that failed: how the plan should take it, and why.
#[derive(Debug)]
pub struct Failed {
    pub kind: Failure,
    pub why: Why,
}

/// What went wrong, in the words the user sees.
#[derive(Debug)]
pub enum Why {
    /// "not on L": it does not hold the content.
    NotHere,
    /// "could not reach L: ...": no connection, or no answer on it.
    Unreachable(String),
    /// "L refused: ...": it answered, but not with what was asked.
    Refused(String),
    /// A busy node's refusal (it is still hashing its directory): a range
    /// asked by hash may then be asked by name.
    Busy(String),
    /// "L refused the handshake: ..." or "L answered with key ...": the
    /// text is a predicate.
    Keys(String),
    /// "L cannot serve by content hash: ...": an older node, asked for a
    /// content by its hash.
    NoRanges(String),
    /// "L holds another version (blake3 X, N bytes)".
    AnotherVersion(String),
    /// "corrupt data from L: ...": bytes that fail the proof.
    Corrupt(String),
    /// "L's copy changed during the transfer ...": it sent bytes that fail
    /// the proof, or no longer has the content it was sending (a range
    /// asked by hash once the content is known is not found): its file
    /// changed under it. The text says what was seen.
    Changed(String),
    /// "transfer from L failed after ...": the body stopped at byte `at`.
    Broken { at: u64, why: String },
}

impl Failed {
    pub fn new(kind: Failure, why: Why) -> Failed {
        Failed { kind, why }
    }

    /// The connection to a holder could not be opened: a relay that
    /// refuses the circuit is a refusal, not an outage, and a failed
    /// handshake (wrong secret, another key) is neither. Each may pass, so
    /// the holder keeps its next try.
    pub fn of_dial(e: ProtoError) -> Failed {
        let why = match e {
            ProtoError::CircuitRefused(_) => Why::Refused(e.to_string()),
            e if e.is_handshake() => Why::Keys(e.to_string()),
            e => Why::Unreachable(e.to_string()),
        };
        Failed::new(Failure::Broken, why)
    }

    /// An answer that is not the one the request wanted: a refusal, an
    /// answer of another kind, or the exchange failing on the way.
    pub fn of_answer(answer: Result<Response, ProtoError>) -> Failed {
        match answer {
            Ok(Response::Error(e)) => Failed::new(
                Failure::Broken,
                Why::Refused(format!("{} ({})", e.message, e.kind.as_str())),
            ),
            Ok(other) => Failed::new(
                Failure::Lied,
                Why::Refused(format!("unexpected {} answer", other.name())),
            ),
            Err(e @ (ProtoError::Io(_) | ProtoError::Timeout | ProtoError::Closed)) => {
                Failed::new(Failure::Broken, Why::Unreachable(e.to_string()))
            }
            Err(e) => Failed::new(Failure::Lied, Why::Refused(e.to_string())),
        }
    }

    /// The line for the user about holder `label`. A broken transfer says
    /// how far it got: with one worker, in bytes of the whole content
    /// (`size`); with several, within the range it was fetching.
    pub fn line(&self, label: &str, size: u64, range: Option<(u64, u64)>) -> String {
        match &self.why {
            Why::NotHere => format!("not on {label}"),
            Why::Unreachable(why) => format!("could not reach {label}: {why}"),
            Why::Refused(why) | Why::Busy(why) => format!("{label} refused: {why}"),
            Why::Keys(why) => format!("{label} {why}"),
            Why::NoRanges(why) => format!("{label} cannot serve by content hash: {why}"),
            Why::AnotherVersion(what) => format!("{label} holds another version ({what})"),
            Why::Corrupt(why) => format!("corrupt data from {label}: {why}"),
            Why::Changed(what) => format!("{label}'s copy changed during the transfer: {what}"),
            Why::Broken { at, why } => match range {
                Some((offset, len)) => format!(
                    "transfer from {label} failed after {} of {len} bytes from byte {offset}: {why}",
                    at - offset
                ),
                None => format!("transfer from {label} failed after {at} of {size} bytes: {why}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: &str = "10.0.0.2:7001, node 2 of 3";

    #[test]
    fn each_failure_reads_the_same_wherever_it_happened() {
        let line = |why| Failed::new(Failure::Broken, why).line(L, 100, None);
        assert_eq!(line(Why::NotHere), format!("not on {L}"));
        assert_eq!(
            line(Why::Unreachable("timed out".into())),
            format!("could not reach {L}: timed out")
        );
        assert_eq!(
            line(Why::Busy("hashing (busy)".into())),
            format!("{L} refused: hashing (busy)")
        );
        assert_eq!(
            line(Why::Keys("refused the handshake: wrong secret".into())),
            format!("{L} refused the handshake: wrong secret")
        );
        assert_eq!(
            line(Why::NoRanges("unknown tag".into())),
            format!("{L} cannot serve by content hash: unknown tag")
        );
        assert_eq!(
            line(Why::Corrupt("chunk at byte 0 does not match".into())),
            format!("corrupt data from {L}: chunk at byte 0 does not match")
        );
        assert_eq!(
            line(Why::Changed("it no longer holds blake3 3f2a9c1e".into())),
            format!("{L}'s copy changed during the transfer: it no longer holds blake3 3f2a9c1e")
        );
    }

    #[test]
    fn a_broken_transfer_counts_the_whole_with_one_worker_and_its_range_with_several() {
        let broken = Failed::new(
            Failure::Broken,
            Why::Broken {
                at: 70,
                why: "truncated".into(),
            },
        );
        assert_eq!(
            broken.line(L, 100, None),
            format!("transfer from {L} failed after 70 of 100 bytes: truncated")
        );
        assert_eq!(
            broken.line(L, 100, Some((64, 36))),
            format!("transfer from {L} failed after 6 of 36 bytes from byte 64: truncated")
        );
    }

    #[test]
    fn an_answer_of_the_wrong_kind_is_a_lie_and_a_refusal_may_pass() {
        let refused = Failed::of_answer(Ok(Response::error(proto::ErrorKind::Busy, "later")));
        assert_eq!(refused.kind, Failure::Broken);
        let odd = Failed::of_answer(Ok(Response::NotFound));
        assert_eq!(odd.kind, Failure::Lied);
        assert_eq!(
            odd.line(L, 0, None),
            format!("{L} refused: unexpected not-found answer")
        );
        let gone = Failed::of_answer(Err(ProtoError::Timeout));
        assert_eq!(gone.kind, Failure::Broken);
        assert!(matches!(gone.why, Why::Unreachable(_)));
    }
}
