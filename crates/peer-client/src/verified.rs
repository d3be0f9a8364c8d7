//! One node's part of a verified fetch: ask for a range of the content
//! (by name until the first answer fixes the content hash, by that hash
//! after), and pass on only bytes the proof has checked.
//!
//! The first node's header fixes the hash and size. A transfer that breaks
//! resumes from the next node at the verified length, asking for the same
//! hash: a node holding another version of the name cannot continue it (it
//! answers not-found), so a fetch never joins two versions. Bytes reach the
//! output one verified chunk group at a time, never before.

use std::io::{BufReader, Read};
use std::sync::mpsc;
use std::thread;

use proto::content::{ByteRange, PendingGroup, RangeDecoder, RangeError, encoded_len};
use proto::exchange::Finish;
use proto::{ErrorKind, NodeInfo, RangeRequest, Request, Response, Target};

use crate::dial::Dialer;
use crate::lookup::{NodeFailure, Transfer};
use crate::output::Output;
use crate::progress::Progress;

/// Buffer for the stream: hash pairs arrive 64 bytes at a time, so they are
/// read through it; a group's bytes past what it holds are read straight
/// into the decoder's group buffer (BufReader bypasses itself for reads
/// larger than its capacity), so most bytes are copied only once.
const STREAM_BUFFER: usize = 8 * 1024;

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
    let stream = BufReader::with_capacity(STREAM_BUFFER, conn.body(body_len));
    let mut decoder = RangeDecoder::new(header.hash, header.size, range, stream)
        .map_err(|e| NodeFailure::Broken(e.to_string()))?;
    let outcome = receive(&mut decoder, transfer, out, progress);
    drop(decoder);
    outcome?;
    if conn.finish() == Finish::ExtraBytes {
        tracing::warn!("{addr} sent more bytes than its range; they were ignored");
    }
    Ok(())
}

/// Groups handed to the hashing thread at a time: one wake-up per batch,
/// not per group (a wake-up per 64 KiB group was 10% of the client's CPU).
const BATCH: usize = 8;

/// Batches read ahead of the one being hashed: enough to keep both threads
/// busy; with [`BATCH`], at most about 2 MiB of groups in flight.
const READ_AHEAD: usize = 2;

/// Reads the stream on this thread and hashes the groups on another, in
/// order, so hashing (about a third of a core at full speed) runs beside
/// the socket reads instead of after them. Only the hashing thread writes
/// to the output, and only groups that matched: the first that does not
/// stops both, and nothing read after it is used.
fn receive<R: Read>(
    decoder: &mut RangeDecoder<R>,
    transfer: &mut Transfer,
    out: &mut Output,
    progress: &Progress,
) -> Result<(), NodeFailure> {
    let (batches, to_hash) = mpsc::sync_channel::<Vec<PendingGroup>>(READ_AHEAD);
    let (buffers, spare) = mpsc::channel::<Vec<u8>>();
    thread::scope(|scope| {
        let hasher = scope.spawn(move || -> Result<(), NodeFailure> {
            for batch in to_hash {
                for group in batch {
                    let group = group
                        .verify()
                        .map_err(|e| NodeFailure::Corrupt(e.to_string()))?;
                    out.write_chunk(group.bytes())
                        .map_err(NodeFailure::Output)?;
                    transfer.written += group.bytes().len() as u64;
                    let _ = buffers.send(group.into_buffer());
                }
                progress.set_position(transfer.written);
            }
            Ok(())
        });
        let mut batch = Vec::with_capacity(BATCH);
        let read = loop {
            if let Ok(buf) = spare.try_recv() {
                decoder.recycle(buf);
            }
            let (stop, done) = match decoder.next_group() {
                Ok(Some(group)) => {
                    batch.push(group);
                    (false, None)
                }
                Ok(None) => (true, Some(Ok(()))),
                Err(e @ RangeError::Mismatch { .. }) => {
                    (true, Some(Err(NodeFailure::Corrupt(e.to_string()))))
                }
                Err(e) => (true, Some(Err(NodeFailure::Broken(e.to_string())))),
            };
            if (batch.len() == BATCH || stop) && !batch.is_empty() {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if batches.send(full).is_err() {
                    // The hasher stopped: its error says why.
                    break Ok(());
                }
            }
            if let Some(done) = done {
                break done;
            }
        };
        drop(batches);
        // The groups before a read error are good: the hasher's verdict on
        // them comes first, then the read error.
        let hashed = hasher
            .join()
            .unwrap_or_else(|_| Err(NodeFailure::Broken("the hashing thread failed".into())));
        hashed.and(read)
    })
}
