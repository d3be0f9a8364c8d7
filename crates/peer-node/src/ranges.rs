//! How a node answers the verified requests: a range of a file with its
//! proof (by name or by content hash), and the listing with hashes.
//!
//! Before a range goes out, the open file's key is checked against the key
//! its hash belongs to (a file changed since it was hashed is hashed again);
//! after, it is checked once more, and a change while sending is logged. The
//! client would not have accepted the bytes of another version anyway: they
//! fail the proof.

use std::time::Duration;

use net::server::Reply;
use proto::content::{ByteRange, WindowedOutboard};
use proto::{
    ContentHash, ErrorKind, FileEntryLong, FileListLong, MAX_FRAME, ProtoError, RangeHeader,
    RangeRequest, Response, Target,
};

use crate::hashes::{FileKey, Hashed};
use crate::service::NodeService;
use crate::share::SharedFile;

/// How long a request by hash waits for the directory to be hashed (at
/// startup, or for a rescan) before the node answers `busy`.
const SCAN_WAIT: Duration = Duration::from_secs(10);

impl NodeService {
    pub(crate) fn get_range(
        &self,
        req: RangeRequest,
        reply: &mut Reply<'_>,
    ) -> Result<(), ProtoError> {
        let peer = reply.peer();
        let found = match &req.target {
            Target::Name(name) => {
                let Some(shared) = self.open_or_answer(name, reply)? else {
                    return Ok(());
                };
                match self.hash_or_answer(name, &shared, reply)? {
                    Some(hashed) => (name.clone(), shared, hashed),
                    None => return Ok(()),
                }
            }
            Target::Hash(hash) => match self.find_hash(hash) {
                Ok(Some(found)) => found,
                Ok(None) => {
                    tracing::info!("{peer}: blake3:{}: not here", hash.short());
                    return reply.send(&Response::NotFound);
                }
                Err(why) => {
                    tracing::info!("{peer}: blake3:{}: {why}", hash.short());
                    return reply.send(&Response::error(ErrorKind::Busy, why));
                }
            },
        };
        let (name, shared, hashed) = found;
        let shown = name.escape_debug().to_string();
        let size = hashed.key.size;
        let Some(range) = ByteRange::clamp(size, req.offset, req.len) else {
            tracing::warn!(
                "{peer}: {shown}: refused: offset {} is past the end ({size} bytes)",
                req.offset
            );
            return reply.send(&Response::error(
                ErrorKind::OutOfRange,
                format!("offset {} is past the end ({size} bytes)", req.offset),
            ));
        };
        let outboard = match self.index.outboard(&hashed) {
            Ok(outboard) => outboard,
            Err(e) => {
                let why = proto::error::io_reason(&e);
                tracing::warn!(
                    "{peer}: {shown}: outboard unusable ({why}); it is rebuilt on the next request"
                );
                return reply.send(&Response::error(
                    ErrorKind::Internal,
                    format!("the proof for this file is not ready: {why}; try again"),
                ));
            }
        };
        let header = RangeHeader {
            size,
            hash: hashed.hash,
            offset: range.offset,
            len: range.len,
        };
        let sent = match &outboard {
            Some(ob) => reply.send_range(header, &shared.file, &WindowedOutboard::new(ob)),
            None => reply.send_range(header, &shared.file, &[][..]),
        };
        if FileKey::now(&shared.file).ok() != Some(hashed.key) {
            // One line for one event: a send cut short by the change (the
            // file shrank) is part of it, not a failure of its own.
            let cut = if sent.is_err() {
                " and the range was cut short"
            } else {
                ""
            };
            tracing::warn!(
                "{peer}: {shown} changed while it was sent{cut}; the client checks every chunk and will refuse the changed ones"
            );
            return Ok(());
        }
        sent?;
        crate::metrics::served(crate::metrics::Served::Verified, range.len);
        tracing::info!(
            "{peer}: sent {shown} bytes {}..{} verified (blake3 {})",
            range.offset,
            range.end(),
            hashed.hash.short()
        );
        Ok(())
    }

    /// The hash of an opened file, the version checked right before use;
    /// or an error answered to the client.
    fn hash_or_answer(
        &self,
        name: &str,
        shared: &SharedFile,
        reply: &mut Reply<'_>,
    ) -> Result<Option<Hashed>, ProtoError> {
        match self.index.hash_of(&shared.file) {
            Ok(hashed) => {
                self.index.remember(name, hashed);
                Ok(Some(hashed))
            }
            Err(e) => {
                let why = proto::error::io_reason(&e);
                tracing::warn!(
                    "{}: {}: cannot hash: {why}",
                    reply.peer(),
                    name.escape_debug()
                );
                reply.send(&Response::error(
                    ErrorKind::Internal,
                    format!("cannot hash the file: {why}"),
                ))?;
                Ok(None)
            }
        }
    }

    /// A file here whose current version has `hash`: the names last seen
    /// with it are opened and checked in turn. Err when the directory is
    /// still being hashed.
    fn find_hash(
        &self,
        hash: &ContentHash,
    ) -> Result<Option<(String, SharedFile, Hashed)>, String> {
        let names = self
            .index
            .holders(hash, SCAN_WAIT)
            .map_err(|_| "still hashing the shared directory; try again shortly".to_string())?;
        for name in names {
            let Ok(shared) = self.share.open_file(&name) else {
                continue;
            };
            let Ok(hashed) = self.index.hash_of(&shared.file) else {
                continue;
            };
            self.index.remember(&name, hashed);
            if hashed.hash == *hash {
                return Ok(Some((name, shared, hashed)));
            }
        }
        Ok(None)
    }

    pub(crate) fn list_long(&self, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        let (entries, truncated) = self.share.list();
        let root = self.share.root();
        let entries = entries
            .into_iter()
            .map(|e| FileEntryLong {
                hash: self.index.known(&root.join(&e.name)),
                name: e.name,
                size: e.size,
            })
            .collect();
        let list = fit_long_in_frame(entries, truncated);
        tracing::info!(
            "{}: listed {} files with hashes{}",
            reply.peer(),
            list.entries.len(),
            if list.truncated { " (truncated)" } else { "" }
        );
        reply.send(&Response::FilesLong(list))
    }
}

/// Cuts a long listing to what one response frame holds (as
/// `service::fit_in_frame` does for the short one). Sizes follow
/// docs/PROTOCOL.md: the tag, the entry count and the flag, then per entry
/// the name's length and bytes, the size, and the hash (1 byte, plus 32
/// when present).
fn fit_long_in_frame(mut entries: Vec<FileEntryLong>, truncated: bool) -> FileListLong {
    let mut size = 4 + 8 + 1;
    let fits = entries
        .iter()
        .take_while(|e| {
            size += 8 + e.name.len() + 8 + 1 + if e.hash.is_some() { 32 } else { 0 };
            size <= MAX_FRAME as usize
        })
        .count();
    let cut = fits < entries.len();
    entries.truncate(fits);
    FileListLong {
        entries,
        truncated: truncated || cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::frame;

    #[test]
    fn a_long_listing_too_big_for_a_frame_is_cut_to_the_most_that_fits() {
        let entries = |n: usize| -> Vec<FileEntryLong> {
            (0..n)
                .map(|i| FileEntryLong {
                    name: format!("{i:0>4000}"),
                    size: 1,
                    hash: Some(ContentHash([i as u8; 32])),
                })
                .collect()
        };
        let list = fit_long_in_frame(entries(10_000), false);
        assert!(list.truncated);
        let kept = list.entries.len();
        assert!(frame::encode(&Response::FilesLong(list)).is_ok());
        let over = FileListLong {
            entries: entries(kept + 1),
            truncated: true,
        };
        assert!(frame::encode(&Response::FilesLong(over)).is_err());
    }
}
