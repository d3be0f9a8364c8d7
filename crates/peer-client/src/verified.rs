//! One node's part of a verified fetch: ask for a range of the content
//! (by name until the first answer fixes the content hash, by that hash
//! after), and pass on only bytes the proof has checked.
//!
//! The first node's header fixes the hash and size. A transfer that breaks
//! resumes from the next node at the verified length, asking for the same
//! hash: a node holding another version of the name cannot continue it (it
//! answers not-found), so a fetch never joins two versions. Bytes reach the
//! output one verified chunk group at a time, never before. The socket is
//! read on a thread of its own ([`Prefetch`]) while this one hashes and
//! writes: hashing costs about as much CPU as receiving.

use std::thread;

use net::Prefetch;
use net::exchange::Finish;
use proto::content::{ByteRange, RangeDecoder, RangeError, StreamSource, encoded_len};
use proto::{ErrorKind, NodeInfo, RangeRequest, Request, Response, Target};

use crate::dial::Dialer;
use crate::lookup::{NodeFailure, Transfer};
use crate::output::Output;
use crate::progress::Progress;

/// Fetches the rest of the content from one node with a range request.
pub(crate) fn try_node(
    node: &NodeInfo,
    name: &Target,
    dialer: &Dialer,
    transfer: &mut Transfer,
    out: &mut Output,
    progress: &mut Option<Progress>,
) -> Result<(), NodeFailure> {
    let addr = node.addr;
    let mut conn = crate::lookup::connect(node, dialer)?;
    // Once a node has answered, only that content may continue the fetch.
    let target = match transfer.hash {
        Some(hash) => Target::Hash(hash),
        None => name.clone(),
    };
    let request = Request::GetRange(RangeRequest {
        target,
        offset: transfer.written,
        len: u64::MAX,
    });
    let header = match conn.request(&request) {
        Ok(Response::Range(header)) => header,
        Ok(Response::NotFound) => return Err(NodeFailure::NotHere),
        // An older node does not know the request's tag; nothing else makes
        // a node refuse this request as malformed.
        Ok(Response::Error(e)) if e.kind == ErrorKind::BadRequest => {
            return Err(NodeFailure::NoRanges(e.message));
        }
        other => return Err(NodeFailure::of_answer(other)),
    };
    let expected = ByteRange::clamp(header.size, transfer.written, u64::MAX);
    if header.range() != expected || header.range().is_none() {
        return Err(NodeFailure::Broken(format!(
            "it answered bytes {}..{} when asked from byte {}",
            header.offset,
            header.offset.saturating_add(header.len),
            transfer.written
        )));
    }
    let same_size = transfer.size.is_none_or(|size| size == header.size);
    match transfer.hash {
        Some(hash) if hash != header.hash || !same_size => {
            return Err(NodeFailure::Refused(format!(
                "it sent blake3 {} ({} bytes) when asked for blake3 {}",
                header.hash.short(),
                header.size,
                hash.short()
            )));
        }
        _ => {
            transfer.hash = Some(header.hash);
            transfer.size = Some(header.size);
        }
    }
    let Some(range) = header.range() else {
        return Err(NodeFailure::Broken(
            "its range is not within its size".into(),
        ));
    };
    let progress = progress.get_or_insert_with(|| Progress::new(out.shows_progress(), header.size));
    progress.set_position(transfer.written);
    let body_len = encoded_len(header.size, range);
    let closer = conn
        .closer()
        .map_err(|e| NodeFailure::Broken(format!("cannot use the connection: {e}")))?;
    let outcome = thread::scope(|scope| {
        let source = Prefetch::spawn(scope, conn.body(body_len));
        let outcome = RangeDecoder::with_source(header.hash, header.size, range, source)
            .map_err(|e| NodeFailure::Broken(e.to_string()))
            .and_then(|mut decoder| receive(&mut decoder, transfer, out, progress));
        if outcome.is_err() {
            // The reading thread may be blocked on the node: cut it loose
            // instead of waiting for its timeout.
            closer.close();
        }
        outcome
    });
    outcome?;
    if conn.finish() == Finish::ExtraBytes {
        tracing::warn!("{addr} sent more bytes than its range; they were ignored");
    }
    Ok(())
}

/// Groups between progress updates.
const PROGRESS_EVERY: u32 = 16;

/// Hands each verified group to the output as the decoder yields it; the
/// first group that does not match stops the transfer, and nothing after it
/// is used.
fn receive<S: StreamSource>(
    decoder: &mut RangeDecoder<S>,
    transfer: &mut Transfer,
    out: &mut Output,
    progress: &Progress,
) -> Result<(), NodeFailure> {
    let mut groups = 0u32;
    let ended = loop {
        match decoder.next_verified() {
            Ok(Some(bytes)) => {
                out.write_chunk(bytes).map_err(NodeFailure::Output)?;
                transfer.written += bytes.len() as u64;
                groups += 1;
                if groups.is_multiple_of(PROGRESS_EVERY) {
                    progress.set_position(transfer.written);
                }
            }
            Ok(None) => break Ok(()),
            Err(e @ RangeError::Mismatch { .. }) => break Err(NodeFailure::Corrupt(e.to_string())),
            Err(e) => break Err(NodeFailure::Broken(e.to_string())),
        }
    };
    progress.set_position(transfer.written);
    ended
}
