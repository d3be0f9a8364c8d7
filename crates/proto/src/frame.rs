//! Bytes on the wire. Every message, in both directions, is:
//!
//! ```text
//! magic "P2PF" (4) | version u16 BE (2) | body length u32 BE (4) | body (length bytes)
//! ```
//!
//! A [`crate::Response::File`] body is followed by the file's raw bytes, which
//! are never put in a frame. The length is checked against the message type's
//! limit before the body is allocated.

use std::io::{self, Read, Write};

use crate::message::Message;
use crate::{MAGIC, ProtoError, VERSION, codec};

/// Magic, version and length: the bytes before every body.
pub const HEADER_LEN: usize = 10;

/// Encodes `msg` as a whole frame (header and body) ready for one write.
pub fn encode<M: Message>(msg: &M) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    codec::encode_into(&mut out, msg, M::FRAME_LIMIT)?;
    let body_len = u32::try_from(out.len() - HEADER_LEN)
        .map_err(|_| ProtoError::Malformed("message too large to encode".into()))?;
    out[6..HEADER_LEN].copy_from_slice(&body_len.to_be_bytes());
    Ok(out)
}

/// Writes `msg` as one frame with a single write call, so a small request or
/// response leaves in one segment.
pub fn write<M: Message>(w: &mut impl Write, msg: &M) -> Result<(), ProtoError> {
    let bytes = encode(msg)?;
    w.write_all(&bytes)?;
    Ok(())
}

/// Reads one frame and decodes it. Never allocates more than the message
/// type's frame limit, and never panics, whatever the bytes.
pub fn read<M: Message>(r: &mut impl Read) -> Result<M, ProtoError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header)?;
    check_preamble(&header[..got])?;
    if got < HEADER_LEN {
        return Err(ProtoError::Truncated);
    }
    let len = u32::from_be_bytes([header[6], header[7], header[8], header[9]]);
    if len > M::FRAME_LIMIT {
        return Err(ProtoError::FrameTooLarge {
            len,
            limit: M::FRAME_LIMIT,
        });
    }
    let mut body = vec![0u8; len as usize];
    if read_full(r, &mut body)? < body.len() {
        return Err(ProtoError::Truncated);
    }
    decode::<M>(&body)
}

/// Decodes one frame body (the bytes after the header).
pub fn decode<M: Message>(body: &[u8]) -> Result<M, ProtoError> {
    if let Some(tag) = codec::peek_tag(body)
        && tag >= M::TAG_COUNT
    {
        return Err(ProtoError::UnknownTag(tag));
    }
    let msg: M = codec::decode(body, M::FRAME_LIMIT)?;
    msg.check_limits()?;
    Ok(msg)
}

/// Checks the first bytes received (possibly fewer than the whole preamble,
/// when the peer closed early) against magic and version.
fn check_preamble(got: &[u8]) -> Result<(), ProtoError> {
    if got.is_empty() {
        return Err(ProtoError::Closed);
    }
    let magic_len = got.len().min(MAGIC.len());
    if got[..magic_len] != MAGIC[..magic_len] {
        let mut seen = [0u8; 4];
        seen[..magic_len].copy_from_slice(&got[..magic_len]);
        return Err(ProtoError::BadMagic(seen));
    }
    if got.len() >= 6 {
        let version = u16::from_be_bytes([got[4], got[5]]);
        if version != VERSION {
            return Err(ProtoError::UnsupportedVersion(version));
        }
    }
    Ok(())
}

/// Fills `buf` unless EOF comes first; returns how many bytes were read.
/// Also reads the encrypted transport's length prefixes and messages.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
