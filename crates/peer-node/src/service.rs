//! How a node answers: files and listings from its shared directory; relay
//! requests are refused plainly.

use std::io::{Seek, SeekFrom};

use proto::server::{Handler, Reply};
use proto::{ErrorKind, FileHeader, FileList, FileRequest, ProtoError, Request, Response};

use crate::share::{ShareError, SharedDir};

pub struct NodeService {
    share: SharedDir,
}

impl NodeService {
    pub fn new(share: SharedDir) -> NodeService {
        NodeService { share }
    }

    fn get_file(&self, req: FileRequest, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        let peer = reply.peer();
        let name = req.name.escape_debug().to_string();
        let mut shared = match self.share.open_file(&req.name) {
            Ok(shared) => shared,
            Err(ShareError::NotFound) => {
                tracing::info!("{peer}: {name}: not here");
                return reply.send(&Response::NotFound);
            }
            Err(ShareError::Forbidden(why)) => {
                tracing::warn!("{peer}: {name}: refused: {why}");
                return reply.send(&Response::error(ErrorKind::Forbidden, why));
            }
            Err(ShareError::Io(e)) => {
                let why = proto::error::io_reason(&e);
                tracing::warn!("{peer}: {name}: cannot open: {why}");
                return reply.send(&Response::error(
                    ErrorKind::Internal,
                    format!("cannot read the file: {why}"),
                ));
            }
        };
        if req.offset > shared.size {
            return reply.send(&Response::error(
                ErrorKind::BadRequest,
                format!("offset {} is past the end ({} bytes)", req.offset, shared.size),
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
        if sent < header.body_len() {
            tracing::warn!(
                "{peer}: {name}: the file shrank while it was sent ({sent} of {} bytes)",
                header.body_len()
            );
        } else {
            tracing::info!("{peer}: sent {name} ({sent} bytes from offset {})", req.offset);
        }
        Ok(())
    }
}

impl Handler for NodeService {
    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        match request {
            Request::GetFile(req) => self.get_file(req, reply),
            Request::ListFiles => {
                let (entries, truncated) = self.share.list();
                tracing::info!("{}: listed {} files", reply.peer(), entries.len());
                reply.send(&Response::Files(FileList { entries, truncated }))
            }
            Request::Register(_) | Request::Unregister(_) | Request::ListNodes => reply.send(
                &Response::error(ErrorKind::BadRequest, "this is a peer-node: ask the relay"),
            ),
        }
    }
}
