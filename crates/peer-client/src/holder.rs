//! One holder of a fetch: how the client names it in status lines, reaches
//! it, and asks it for bytes.
//!
//! Every exchange is one request on a fresh connection, opened through the
//! [`Dialer`] (directly, or through a circuit at the relay). A holder is
//! asked for a range of the content (`GetRange`, by name until the content
//! is known, by its hash after); an older node, which does not know range
//! requests, is asked for the file from an offset (`GetFile`).

use net::exchange::Connection;
use proto::{
    ErrorKind, FileHeader, FileRequest, NodeInfo, RangeHeader, RangeRequest, Request, Response,
    Target,
};

use crate::dial::{self, Dialer};
use crate::failure::{Failed, Why};
use crate::plan::Failure;

/// A node that may hold the content.
#[derive(Debug, Clone)]
pub struct Holder {
    /// Its address and how it is reached (directly, or via the relay).
    pub node: NodeInfo,
    /// "10.0.0.2:7001 (via relay), node 2 of 3": how the client names it.
    pub label: String,
}

impl Holder {
    /// `nodes` as holders, each named by its place in the list.
    pub fn all(nodes: &[NodeInfo]) -> Vec<Holder> {
        let total = nodes.len();
        nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Holder {
                node: *node,
                label: dial::label(node, i, total),
            })
            .collect()
    }

    /// A connection to it.
    pub fn connect(&self, dialer: &Dialer) -> Result<Connection, Failed> {
        dialer.connect(&self.node).map_err(Failed::of_dial)
    }
}

/// Asks for `len` bytes (`u64::MAX`: to the end) from `offset` of the
/// content `by` names; the header, unchecked.
pub fn ask_range(
    conn: &mut Connection,
    by: &Target,
    offset: u64,
    len: u64,
) -> Result<RangeHeader, Failed> {
    let request = Request::GetRange(RangeRequest {
        target: by.clone(),
        offset,
        len,
    });
    match conn.request(&request) {
        Ok(Response::Range(header)) => Ok(header),
        Ok(Response::NotFound) => Err(Failed::new(Failure::NotHere, Why::NotHere)),
        // An older node does not know the request's tag; nothing else makes
        // a node refuse this request as malformed.
        Ok(Response::Error(e)) if e.kind == ErrorKind::BadRequest => {
            Err(Failed::new(Failure::NotHere, Why::NoRanges(e.message)))
        }
        Ok(Response::Error(e)) if e.kind == ErrorKind::Busy => Err(Failed::new(
            Failure::Broken,
            Why::Busy(format!("{} ({})", e.message, e.kind.as_str())),
        )),
        other => Err(Failed::of_answer(other)),
    }
}

/// Asks an older node for the file `name` from byte `offset`: its bytes
/// come without a proof.
pub fn ask_file(conn: &mut Connection, name: &str, offset: u64) -> Result<FileHeader, Failed> {
    let request = Request::GetFile(FileRequest {
        name: name.to_string(),
        offset,
    });
    match conn.request(&request) {
        Ok(Response::File(header)) => Ok(header),
        Ok(Response::NotFound) => Err(Failed::new(Failure::NotHere, Why::NotHere)),
        other => Err(Failed::of_answer(other)),
    }
}

/// An older node asked for a content it cannot prove: by hash it cannot
/// serve at all, and by name its copy cannot be shown to be the content
/// the fetch already has (or the index named).
pub fn cannot_prove(by_hash: bool, why: String) -> Failed {
    if by_hash {
        return Failed::new(Failure::NotHere, Why::NoRanges(why));
    }
    tracing::debug!("an older node: {why}");
    Failed::new(
        Failure::NotHere,
        Why::Refused("it is an older node that cannot prove its copy is the same content".into()),
    )
}
