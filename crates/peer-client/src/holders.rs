//! Who holds a content: the nodes a multi-source fetch may ask for ranges.
//!
//! The candidates come from the relay's index: the session asks `WhoHas`
//! and passes the holders of the chosen version (the earliest-registered
//! holder's hash), in registration order, then the nodes that sent no
//! catalog yet ([`crate::index::Plan`]). Against an older relay, or with
//! `--no-index`, they are every active node in the relay's order. The
//! first candidate that proves it holds the content fixes the hash and the
//! size, and the others are asked for ranges by that hash (a node that
//! does not hold it answers not-found, and is dropped then). Every
//! connection goes through the [`Dialer`], so a relayed holder is reached
//! through a circuit at the relay.
//!
//! The first holder is probed with an empty range at offset 0: its answer
//! carries the content's last chunk group with its proof, which the client
//! verifies. That proves the size as well as the hash, so the plan cuts the
//! right pieces before any other node is asked, and a node lying about the
//! size cannot make honest nodes look like liars. It costs one exchange of
//! at most 64 KiB.

use proto::content::{ByteRange, RangeDecoder, RangeError, encoded_len};
use proto::{
    ContentHash, ErrorKind, NodeInfo, ProtoError, RangeRequest, Request, Response, Target,
};

use crate::dial::Dialer;
use crate::lookup::response_name;
use crate::report::Report;

/// A node that may hold the content.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its address and how it is reached (directly, or via the relay).
    pub node: NodeInfo,
    /// "10.0.0.2:7001 (via relay), node 2 of 3": how the client names it.
    pub label: String,
}

/// The content and the nodes to fetch it from.
#[derive(Debug, Clone)]
pub struct Holders {
    pub hash: ContentHash,
    pub size: u64,
    /// The proven holder first, then the other candidates in the given
    /// order (registration order from the index, else the relay's list).
    pub candidates: Vec<Candidate>,
}

/// Why no holder was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoHolder {
    /// No node has it; each one's answer is already reported.
    Missing,
    /// Some node cannot serve ranges (an older node): the plain one-node
    /// fetch may still get the file from it.
    OlderNodes,
}

/// Finds the content `target` names among `nodes`, in their order,
/// reporting each node that does not have it as the sequential fetch does.
/// With `expect` (the version the relay's index chose), a node holding
/// another content under the name is passed over.
pub fn find(
    target: &Target,
    expect: Option<ContentHash>,
    nodes: &[NodeInfo],
    dialer: &Dialer,
    report: &Report,
) -> Result<Holders, NoHolder> {
    let total = nodes.len();
    let label = |i: usize, node: &NodeInfo| {
        format!(
            "{}{}, node {} of {total}",
            node.addr,
            dialer.via(node),
            i + 1
        )
    };
    let mut older = false;
    for (i, node) in nodes.iter().enumerate() {
        let here = label(i, node);
        match probe(node, target, dialer) {
            Ok((hash, _)) if expect.is_some_and(|e| e != hash) => report.status(&format!(
                "{here} holds another version (blake3 {})",
                hash.short()
            )),
            Ok((hash, size)) => {
                let candidates = nodes
                    .iter()
                    .enumerate()
                    .skip(i)
                    .map(|(j, n)| Candidate {
                        node: *n,
                        label: label(j, n),
                    })
                    .collect();
                return Ok(Holders {
                    hash,
                    size,
                    candidates,
                });
            }
            Err(Probe::NotHere) => report.status(&format!("not on {here}")),
            Err(Probe::NoRanges(why)) => {
                older = true;
                tracing::debug!("{here} cannot serve ranges: {why}");
            }
            Err(Probe::Unreachable(why)) => {
                report.status(&format!("could not reach {here}: {why}"))
            }
            Err(Probe::Refused(why)) => report.status(&format!("{here} refused: {why}")),
            Err(Probe::Corrupt(why)) => report.status(&format!("corrupt data from {here}: {why}")),
        }
    }
    if older {
        Err(NoHolder::OlderNodes)
    } else {
        Err(NoHolder::Missing)
    }
}

enum Probe {
    NotHere,
    NoRanges(String),
    Unreachable(String),
    Refused(String),
    Corrupt(String),
}

/// Asks `addr` for the empty range at offset 0 of `target` and verifies the
/// last chunk group that proves it: the content's hash and size.
fn probe(node: &NodeInfo, target: &Target, dialer: &Dialer) -> Result<(ContentHash, u64), Probe> {
    let mut conn = dialer
        .connect(node)
        .map_err(|e| Probe::Unreachable(e.to_string()))?;
    let request = Request::GetRange(RangeRequest {
        target: target.clone(),
        offset: 0,
        len: 0,
    });
    let header = match conn.request(&request) {
        Ok(Response::Range(header)) => header,
        Ok(Response::NotFound) => return Err(Probe::NotHere),
        Ok(Response::Error(e)) if e.kind == ErrorKind::BadRequest => {
            return Err(Probe::NoRanges(e.message));
        }
        Ok(Response::Error(e)) => {
            return Err(Probe::Refused(format!(
                "{} ({})",
                e.message,
                e.kind.as_str()
            )));
        }
        Ok(other) => {
            return Err(Probe::Refused(format!(
                "unexpected {} answer",
                response_name(&other)
            )));
        }
        Err(e @ (ProtoError::Io(_) | ProtoError::Timeout | ProtoError::Closed)) => {
            return Err(Probe::Unreachable(e.to_string()));
        }
        Err(e) => return Err(Probe::Refused(e.to_string())),
    };
    if let Target::Hash(hash) = target
        && *hash != header.hash
    {
        return Err(Probe::Refused(format!(
            "it sent blake3 {} when asked for blake3 {}",
            header.hash.short(),
            hash.short()
        )));
    }
    let empty = ByteRange { offset: 0, len: 0 };
    if header.range() != Some(empty) {
        return Err(Probe::Refused(format!(
            "it answered bytes {}..{} when asked for none at byte 0",
            header.offset,
            header.offset.saturating_add(header.len)
        )));
    }
    let body = conn.body(encoded_len(header.size, empty));
    let mut decoder = RangeDecoder::new(header.hash, header.size, empty, body)
        .map_err(|e| Probe::Refused(e.to_string()))?;
    match decoder.next_verified() {
        Ok(_) => {}
        Err(e @ RangeError::Mismatch { .. }) => return Err(Probe::Corrupt(e.to_string())),
        Err(e) => return Err(Probe::Unreachable(e.to_string())),
    }
    drop(decoder);
    let _ = conn.finish();
    Ok((header.hash, header.size))
}
