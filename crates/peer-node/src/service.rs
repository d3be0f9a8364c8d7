//! How a node answers: files and listings from its shared directory; relay
//! requests are refused plainly.

use std::io::{Seek, SeekFrom};

use net::secure::KeyKind;
use net::server::{Handler, Reply};
use proto::{
    ErrorKind, FileEntry, FileHeader, FileList, FileRequest, MAX_FRAME, ProtoError, Request,
    Response,
};

use crate::hashes::ContentIndex;
use crate::share::{ShareError, SharedDir, SharedFile};

pub struct NodeService {
    pub(crate) share: SharedDir,
    /// Content hashes of the shared files (crate::ranges serves with them).
    pub(crate) index: ContentIndex,
}

impl NodeService {
    pub fn new(share: SharedDir, index: ContentIndex) -> NodeService {
        NodeService { share, index }
    }

    /// Opens `name` inside DIR, or answers why not (not here, refused,
    /// unreadable) and returns None.
    pub(crate) fn open_or_answer(
        &self,
        name: &str,
        reply: &mut Reply<'_>,
    ) -> Result<Option<SharedFile>, ProtoError> {
        let peer = reply.peer();
        let shown = name.escape_debug().to_string();
        let response = match self.share.open_file(name) {
            Ok(shared) => return Ok(Some(shared)),
            Err(ShareError::NotFound) => {
                tracing::info!("{peer}: {shown}: not here");
                Response::NotFound
            }
            Err(ShareError::Forbidden(why)) => {
                tracing::warn!("{peer}: {shown}: refused: {why}");
                Response::error(ErrorKind::Forbidden, why)
            }
            Err(ShareError::Io(e)) => {
                let why = proto::error::io_reason(&e);
                tracing::warn!("{peer}: {shown}: cannot open: {why}");
                Response::error(ErrorKind::Internal, format!("cannot read the file: {why}"))
            }
        };
        reply.send(&response)?;
        Ok(None)
    }

    fn get_file(&self, req: FileRequest, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        let peer = reply.peer();
        let name = req.name.escape_debug().to_string();
        let Some(mut shared) = self.open_or_answer(&req.name, reply)? else {
            return Ok(());
        };
        // At the end (`offset == size`) the answer is a `File` with no body,
        // as HTTP answers a range that starts at the end; past it, a refusal
        // of its own kind, as HTTP's 416: this node's file is shorter than
        // the client thinks, so the client should ask another node.
        if req.offset > shared.size {
            tracing::warn!(
                "{peer}: {name}: refused: offset {} is past the end ({} bytes)",
                req.offset,
                shared.size
            );
            return reply.send(&Response::error(
                ErrorKind::OutOfRange,
                format!(
                    "offset {} is past the end ({} bytes)",
                    req.offset, shared.size
                ),
            ));
        }
        if req.offset > 0 {
            shared.file.seek(SeekFrom::Start(req.offset))?;
        }
        let header = FileHeader {
            size: shared.size,
            offset: req.offset,
        };
        let sent = reply.send_file(header, &mut shared.file)?;
        crate::metrics::served(crate::metrics::Served::Plain, sent);
        if sent < header.body_len() {
            tracing::warn!(
                "{peer}: {name}: the file shrank while it was sent ({sent} of {} bytes)",
                header.body_len()
            );
        } else {
            tracing::info!(
                "{peer}: sent {name} ({sent} bytes from offset {})",
                req.offset
            );
        }
        Ok(())
    }
}

impl Handler for NodeService {
    fn role(&self) -> &'static str {
        "node"
    }

    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        // The relay key admits the relay's dial-back, nothing more: files
        // are for holders of the peer key, which a relay never has.
        if reply.admitted_with() == Some(KeyKind::Relay) && request != Request::Hello {
            tracing::warn!(
                "{}: refused a request under the relay key (only the dial-back's hello is)",
                reply.peer()
            );
            return reply.send(&Response::error(
                ErrorKind::Unauthorized,
                "the relay key admits only the relay's hello here; files need the peer key",
            ));
        }
        match request {
            Request::GetFile(req) => self.get_file(req, reply),
            Request::GetRange(req) => self.get_range(req, reply),
            Request::ListFilesLong => self.list_long(reply),
            Request::ListFiles => {
                let (entries, truncated) = self.share.list();
                let list = fit_in_frame(entries, truncated);
                tracing::info!(
                    "{}: listed {} files{}",
                    reply.peer(),
                    list.entries.len(),
                    if list.truncated { " (truncated)" } else { "" }
                );
                reply.send(&Response::Files(list))
            }
            // The relay's dial-back: a node is listening here.
            Request::Hello => reply.send(&Response::Hello),
            Request::Register(_)
            | Request::Unregister(_)
            | Request::ListNodes
            | Request::Catalog(_)
            | Request::CatalogLong(_)
            | Request::WhoHas(_)
            | Request::WhoHasLong(_)
            | Request::Search(_)
            | Request::ListNodesLong
            | Request::Control(_)
            | Request::Keepalive
            | Request::OpenCircuit(_)
            | Request::JoinCircuit(_)
            | Request::ControlPunch(_)
            | Request::Punch(_)
            | Request::JoinPunch(_)
            | Request::ListPunchable
            | Request::BlindCatalog(_)
            | Request::BlindWhoHas(_)
            | Request::BlindList(_) => {
                tracing::info!("{}: refused a request meant for the relay", reply.peer());
                reply.send(&Response::error(
                    ErrorKind::BadRequest,
                    "this is a peer-node: ask the relay",
                ))
            }
        }
    }
}

/// Cuts a listing to what one response frame holds, marking it truncated if
/// anything was cut. 10 000 names of up to 4 096 bytes can exceed
/// [`MAX_FRAME`], and a listing that cannot be encoded would reach the client
/// as no answer at all. Sizes follow docs/PROTOCOL.md: the tag, the entry
/// count and the flag, then 16 bytes plus the name per entry.
fn fit_in_frame(mut entries: Vec<FileEntry>, truncated: bool) -> FileList {
    let mut size = 4 + 8 + 1;
    let fits = entries
        .iter()
        .take_while(|e| {
            size += 16 + e.name.len();
            size <= MAX_FRAME as usize
        })
        .count();
    let cut = fits < entries.len();
    entries.truncate(fits);
    FileList {
        entries,
        truncated: truncated || cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::frame;

    fn entries(n: usize, name_len: usize) -> Vec<FileEntry> {
        (0..n)
            .map(|i| FileEntry {
                name: format!("{i:0>name_len$}"),
                size: 1,
            })
            .collect()
    }

    #[test]
    fn a_listing_that_fits_is_left_alone() {
        let list = fit_in_frame(entries(10, 20), false);
        assert_eq!((list.entries.len(), list.truncated), (10, false));
        let list = fit_in_frame(entries(10, 20), true);
        assert!(list.truncated);
    }

    #[test]
    fn a_listing_too_big_for_a_frame_is_cut_to_the_most_that_fits() {
        let list = fit_in_frame(entries(10_000, 4000), false);
        assert!(list.truncated);
        let kept = list.entries.len();
        assert!(kept > 1000 && kept < 10_000, "{kept}");
        assert!(frame::encode(&Response::Files(list)).is_ok());
        // One entry more would not have fitted.
        let over = FileList {
            entries: entries(kept + 1, 4000),
            truncated: true,
        };
        assert!(frame::encode(&Response::Files(over)).is_err());
    }
}
