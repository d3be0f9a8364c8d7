//! The one place that calls bincode. Swapping the codec (postcard, wincode)
//! means rewriting this file and the hex dumps in docs/PROTOCOL.md.
//!
//! bincode 1.3 is complete and unmaintained (RUSTSEC-2025-0141); it is used
//! only through `Options` with an explicit size limit, big-endian fixed-width
//! integers, and trailing bytes rejected, never through its unbounded free
//! functions.

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ProtoError;

fn options(limit: u32) -> impl Options {
    bincode::DefaultOptions::new()
        .with_limit(u64::from(limit))
        .with_big_endian()
        .with_fixint_encoding()
        .reject_trailing_bytes()
}

/// Appends the encoding of `value` to `out`; fails if it would exceed `limit` bytes.
pub(crate) fn encode_into<T: Serialize>(
    out: &mut Vec<u8>,
    value: &T,
    limit: u32,
) -> Result<(), ProtoError> {
    options(limit)
        .serialize_into(out, value)
        .map_err(|e| match *e {
            bincode::ErrorKind::SizeLimit => ProtoError::Limit(format!(
                "message larger than the frame limit of {limit} bytes"
            )),
            other => ProtoError::Malformed(format!("cannot encode: {other}")),
        })
}

/// Decodes exactly one value from `bytes`; allocations are bounded by `limit`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], limit: u32) -> Result<T, ProtoError> {
    // Each failure is worded in the protocol's terms (docs/PROTOCOL.md,
    // "Decoding errors"), not bincode's, so the reason a peer is sent names
    // the rule it broke.
    options(limit).deserialize(bytes).map_err(|e| {
        ProtoError::Malformed(match *e {
            // bincode words this as "Slice had bytes remaining after deserialization".
            bincode::ErrorKind::Custom(ref m) if m.contains("bytes remaining") => {
                "unexpected bytes after the message".into()
            }
            bincode::ErrorKind::InvalidBoolEncoding(b) => {
                format!("invalid bool byte {b:02x} (must be 00 or 01)")
            }
            // bincode uses this error for an Option tag only.
            bincode::ErrorKind::InvalidTagEncoding(t) => {
                format!("invalid option tag {t:02x} (must be 00 or 01)")
            }
            bincode::ErrorKind::InvalidUtf8Encoding(_) => "a string is not valid UTF-8".into(),
            // A length prefix longer than the body trips the byte limit (the
            // body is never longer than the limit) or runs out of bytes.
            bincode::ErrorKind::SizeLimit => "the body ends before the message does".into(),
            bincode::ErrorKind::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                "the body ends before the message does".into()
            }
            // serde's wording for an enum inside the message (an address)
            // whose tag is not one of its variants: "invalid value: integer
            // `2`, expected `V4` or `V6`".
            bincode::ErrorKind::Custom(ref m) if m.starts_with("invalid value: integer") => {
                format!("invalid enum tag: {m}")
            }
            other => other.to_string(),
        })
    })
}

/// The variant tag an encoded enum starts with (a big-endian u32), if present,
/// so an unknown tag is named as such rather than as a decoding failure.
pub(crate) fn peek_tag(bytes: &[u8]) -> Option<u32> {
    let tag: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(tag))
}
