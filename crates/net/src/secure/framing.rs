//! How a handshake message sits on the wire: a two-byte big-endian length
//! and the message, or, in its place, a plain refusal frame (which starts
//! with the magic, so the two cannot be confused). Both the handshake and
//! the transport's confirmation read messages this way.

use std::io::Read;

use proto::frame::{self, read_full};
use proto::{MAGIC, ProtoError, Response};

/// Reads one handshake message of exactly `want` bytes, or the plain
/// refusal a responder sends in its place.
pub fn read_handshake_message<S: Read>(io: &mut S, want: usize) -> Result<Vec<u8>, ProtoError> {
    let mut prefix = [0u8; 2];
    match read_full(io, &mut prefix)? {
        0 => return Err(ProtoError::Closed),
        2 => {}
        _ => return Err(ProtoError::Truncated),
    }
    if prefix == MAGIC[..2] {
        return Err(refusal_frame(io, prefix));
    }
    let len = usize::from(u16::from_be_bytes(prefix));
    if len != want {
        return Err(failed(format!(
            "a handshake message of {len} bytes where {want} belong (not a p2p-share peer?)"
        )));
    }
    let mut msg = vec![0u8; len];
    if read_full(io, &mut msg)? < len {
        return Err(ProtoError::Truncated);
    }
    Ok(msg)
}

/// The plain frame that starts with `prefix`: a refusal.
fn refusal_frame<S: Read>(io: &mut S, prefix: [u8; 2]) -> ProtoError {
    let mut whole = (&prefix[..]).chain(io);
    match frame::read::<Response>(&mut whole) {
        Ok(Response::Error(mut e)) => {
            e.message = proto::error::printable(&e.message);
            ProtoError::HandshakeRefused(e)
        }
        Ok(other) => failed(format!("answered the handshake with a plain {other:?}")),
        Err(e) => failed(format!("answered the handshake with garbage: {e}")),
    }
}

/// A handshake that broke off on our side, with why.
pub fn failed(why: String) -> ProtoError {
    ProtoError::HandshakeFailed(why)
}
