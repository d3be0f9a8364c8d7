//! The proof: what a holder answers is checked here, and only bytes checked
//! against the content hash pass on.
//!
//! - A range header must be the range that was asked, of the content that
//!   was asked ([`check_range`]): the first answer fixes the content's hash
//!   and size ([`Content`]), and every later range must belong to it, so a
//!   fetch never joins two versions.
//! - A range's body is decoded chunk group by chunk group ([`receive`]), and
//!   each group is handed on only once it matches its hash: never before,
//!   and nothing after the first group that does not match. With one worker
//!   the socket is read on a thread of its own ([`Prefetch`]) while the
//!   worker hashes and writes: hashing costs about as much CPU as receiving.
//!   With several, the workers themselves keep both cores busy.
//! - An empty range proves the size ([`prove_size`]): its answer carries the
//!   content's last chunk group with its proof.
//! - An older node without content hashes answers a plain file
//!   ([`Answer::File`]): its bytes pass unverified, and the status line
//!   says so ([`Content::Unverified`]).

use std::io::{self, Read};
use std::thread;

use net::Prefetch;
use net::exchange::{Connection, Finish};
use proto::content::{ByteRange, CHUNK_GROUP, RangeDecoder, RangeError, StreamSource, encoded_len};
use proto::{ContentHash, FileHeader, ProtoError, RangeHeader, Target};

use crate::failure::{Failed, Why};
use crate::plan::Failure;

/// Bytes read from an older node per read call. A read returns what has
/// arrived, so a larger buffer means fewer calls when the client falls
/// behind: a 1 GiB body over loopback took 4 454 reads (and as many writes
/// to the output) at 256 KiB, 1 874 at 1 MiB (docs/BENCHMARKS.md).
const CHUNK: usize = 1024 * 1024;

/// The content a fetch gets, as the first holder to answer named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Named by its hash: every byte is checked against it.
    Verified { hash: ContentHash, size: u64 },
    /// Named by an older node that knows no content hashes: only a size.
    Unverified { size: u64 },
}

impl Content {
    pub fn size(&self) -> u64 {
        match *self {
            Content::Verified { size, .. } | Content::Unverified { size } => size,
        }
    }

    pub fn hash(&self) -> Option<ContentHash> {
        match *self {
            Content::Verified { hash, .. } => Some(hash),
            Content::Unverified { .. } => None,
        }
    }

    /// What the status line says of the bytes: "blake3 3f2a9c1e", or that
    /// nothing proved them.
    pub fn proof(&self) -> String {
        match self {
            Content::Verified { hash, .. } => format!("blake3 {}", hash.short()),
            Content::Unverified { .. } => {
                "unverified: an older node without content hashes".to_string()
            }
        }
    }
}

/// A holder's answer to a request for bytes, checked: the body follows it
/// on the connection.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// A verified range of the content: its proof is in the body.
    Range(RangeHeader),
    /// An older node's file from an offset: raw bytes.
    File(FileHeader),
}

/// What a request for bytes asked for.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The name or the hash the request carried.
    pub by: &'a Target,
    pub offset: u64,
    /// Bytes from `offset`; `u64::MAX`: to the end.
    pub len: u64,
    /// The content the answer must be, when it is known already (or the
    /// version the relay's index named).
    pub content: Option<(ContentHash, u64)>,
}

impl Asked<'_> {
    /// "from byte 5", "for bytes 5..9", "for none at byte 0".
    fn describe(&self) -> String {
        match self.len {
            u64::MAX => format!("from byte {}", self.offset),
            0 => format!("for none at byte {}", self.offset),
            len => format!(
                "for bytes {}..{}",
                self.offset,
                self.offset.saturating_add(len)
            ),
        }
    }
}

/// Checks a range header against what was asked: the content asked for by
/// hash (or known already), and exactly the range asked (clamped to the
/// content's size). A holder asked by name that holds another content than
/// the known one does not have it; any other mismatch is a lie.
pub fn check_range(header: &RangeHeader, asked: &Asked) -> Result<(), Failed> {
    let sent = |asked_for: ContentHash| {
        Failed::new(
            Failure::Lied,
            Why::Refused(format!(
                "it sent blake3 {} ({} bytes) when asked for blake3 {}",
                header.hash.short(),
                header.size,
                asked_for.short()
            )),
        )
    };
    if let Target::Hash(hash) = asked.by
        && *hash != header.hash
    {
        return Err(sent(*hash));
    }
    if let Some((hash, size)) = asked.content
        && (hash, size) != (header.hash, header.size)
    {
        return Err(match asked.by {
            Target::Name(_) => Failed::new(
                Failure::NotHere,
                Why::AnotherVersion(format!(
                    "blake3 {}, {} bytes",
                    header.hash.short(),
                    header.size
                )),
            ),
            Target::Hash(_) => sent(hash),
        });
    }
    let expected = ByteRange::clamp(header.size, asked.offset, asked.len);
    if expected.is_none() || header.range() != expected {
        return Err(Failed::new(
            Failure::Lied,
            Why::Refused(format!(
                "it answered bytes {}..{} when asked {}",
                header.offset,
                header.offset.saturating_add(header.len),
                asked.describe()
            )),
        ));
    }
    Ok(())
}

/// Checks an older node's file header: from the byte asked, and of the size
/// the first answer declared (a copy of another size cannot continue it).
pub fn check_file(header: &FileHeader, offset: u64, size: Option<u64>) -> Result<(), Failed> {
    if header.offset != offset || header.offset > header.size {
        return Err(Failed::new(
            Failure::Lied,
            Why::Refused(format!(
                "it answered from byte {} when asked from byte {offset}",
                header.offset
            )),
        ));
    }
    match size {
        Some(size) if size != header.size => Err(Failed::new(
            Failure::NotHere,
            Why::Refused(format!(
                "its copy has {} bytes, not {size}; cannot resume from it",
                header.size
            )),
        )),
        _ => Ok(()),
    }
}

/// Reads the proof of an empty range (the content's last chunk group with
/// its hashes) and checks it: the content's size is then proven as well as
/// its hash.
pub fn prove_size(mut conn: Connection, header: &RangeHeader) -> Result<(), Failed> {
    let empty = ByteRange { offset: 0, len: 0 };
    let body = conn.body(encoded_len(header.size, empty));
    let mut decoder = RangeDecoder::new(header.hash, header.size, empty, body)
        .map_err(|e| Failed::new(Failure::Lied, Why::Refused(e.to_string())))?;
    match decoder.next_verified() {
        Ok(_) => {}
        Err(e @ RangeError::Mismatch { .. }) => {
            return Err(Failed::new(Failure::Lied, Why::Corrupt(e.to_string())));
        }
        Err(e) => {
            return Err(Failed::new(
                Failure::Broken,
                Why::Unreachable(e.to_string()),
            ));
        }
    }
    drop(decoder);
    let _ = conn.finish();
    Ok(())
}

/// Reads the proof of one chunk group (the answer to a one-group range):
/// its hash pairs and its bytes, unchecked, for [`crate::recheck`], which
/// checks them against the content's tree. At most one group and a pair
/// per tree level.
pub fn group_proof(mut conn: Connection, header: &RangeHeader) -> Result<Vec<u8>, Failed> {
    let Some(range) = header.range().filter(|r| r.len <= CHUNK_GROUP) else {
        return Err(Failed::new(
            Failure::Lied,
            Why::Refused("its range is not one chunk group".into()),
        ));
    };
    let len = encoded_len(header.size, range);
    let mut proof = Vec::with_capacity(len as usize);
    let read = conn.body(len).read_to_end(&mut proof);
    match read {
        Ok(_) if proof.len() as u64 == len => {}
        Ok(_) => {
            return Err(Failed::new(
                Failure::Broken,
                Why::Broken {
                    at: range.offset,
                    why: "truncated: the node closed the connection early".into(),
                },
            ));
        }
        Err(e) => {
            return Err(Failed::new(
                Failure::Broken,
                Why::Broken {
                    at: range.offset,
                    why: ProtoError::from(e).to_string(),
                },
            ));
        }
    }
    if conn.finish() == Finish::ExtraBytes {
        tracing::warn!("a node sent more bytes than its proof; they were ignored");
    }
    Ok(proof)
}

/// Reads the body that follows `answer` on `conn` and hands what passes to
/// `deliver`, with the offset of its first byte: each verified chunk group
/// of a range, or an older node's raw bytes as they come. `deliver` returns
/// false to stop (the bytes are not wanted any more); Ok then too. With
/// `read_ahead`, the socket is read on a thread of its own.
pub fn receive(
    mut conn: Connection,
    answer: &Answer,
    read_ahead: bool,
    mut deliver: impl FnMut(u64, &[u8]) -> bool,
) -> Result<(), Failed> {
    let addr = conn.peer();
    match answer {
        Answer::Range(header) => {
            let Some(range) = header.range() else {
                return Err(Failed::new(
                    Failure::Lied,
                    Why::Refused("its range is not within its size".into()),
                ));
            };
            let body_len = encoded_len(header.size, range);
            let mut at = range.offset;
            let whole = if read_ahead {
                let closer = conn.closer().map_err(|e| {
                    Failed::new(
                        Failure::Broken,
                        Why::Broken {
                            at,
                            why: format!("cannot use the connection: {e}"),
                        },
                    )
                })?;
                let body = conn.body(body_len);
                thread::scope(|scope| {
                    let source = Prefetch::spawn(scope, body);
                    let decoder =
                        RangeDecoder::with_source(header.hash, header.size, range, source);
                    let outcome = groups(decoder, &mut at, &mut deliver);
                    if !matches!(outcome, Ok(true)) {
                        // The reading thread may be blocked on the node: cut
                        // it loose instead of waiting for its timeout.
                        closer.close();
                    }
                    outcome
                })?
            } else {
                let body = conn.body(body_len);
                let decoder = RangeDecoder::new(header.hash, header.size, range, body);
                groups(decoder, &mut at, &mut deliver)?
            };
            if whole && conn.finish() == Finish::ExtraBytes {
                tracing::warn!("{addr} sent more bytes than its range; they were ignored");
            }
        }
        Answer::File(header) => {
            if copy(&mut conn, header, &mut deliver)? && conn.finish() == Finish::ExtraBytes {
                tracing::warn!(
                    "{addr} sent more bytes than it declared; only {} were kept",
                    header.size
                );
            }
        }
    }
    Ok(())
}

/// Hands each verified group to `deliver` as the decoder yields it; true at
/// the end of the range, false if `deliver` stopped it. The first group
/// that does not match stops the transfer, and nothing after it is used.
fn groups<S: StreamSource>(
    decoder: Result<RangeDecoder<S>, RangeError>,
    at: &mut u64,
    deliver: &mut impl FnMut(u64, &[u8]) -> bool,
) -> Result<bool, Failed> {
    let broken = |at: u64, kind, e: RangeError| {
        Failed::new(
            kind,
            Why::Broken {
                at,
                why: e.to_string(),
            },
        )
    };
    let mut decoder = decoder.map_err(|e| broken(*at, Failure::Lied, e))?;
    loop {
        match decoder.next_verified() {
            Ok(Some(bytes)) => {
                if !deliver(*at, bytes) {
                    return Ok(false);
                }
                *at += bytes.len() as u64;
            }
            Ok(None) => return Ok(true),
            Err(e @ RangeError::Mismatch { .. }) => {
                return Err(Failed::new(Failure::Lied, Why::Corrupt(e.to_string())));
            }
            Err(e) => return Err(broken(*at, Failure::Broken, e)),
        }
    }
}

/// Copies an older node's body, exactly the bytes its header declared, to
/// `deliver` as they arrive; true at the end, false if `deliver` stopped it.
fn copy(
    conn: &mut Connection,
    header: &FileHeader,
    deliver: &mut impl FnMut(u64, &[u8]) -> bool,
) -> Result<bool, Failed> {
    let len = header.body_len();
    let mut body = conn.body(len);
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    let mut at = header.offset;
    let mut left = len;
    let broken = |at, why: String| Failed::new(Failure::Broken, Why::Broken { at, why });
    while left > 0 {
        let n = match body.read(&mut buf) {
            Ok(0) => {
                return Err(broken(
                    at,
                    "truncated: the node closed the connection early".into(),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(broken(at, ProtoError::from(e).to_string())),
        };
        if !deliver(at, &buf[..n]) {
            return Ok(false);
        }
        at += n as u64;
        left -= n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ContentHash = ContentHash([1; 32]);
    const B: ContentHash = ContentHash([2; 32]);

    fn header(hash: ContentHash, size: u64, offset: u64, len: u64) -> RangeHeader {
        RangeHeader {
            size,
            hash,
            offset,
            len,
        }
    }

    fn refusal(result: Result<(), Failed>) -> (Failure, String) {
        match result {
            Err(Failed {
                kind,
                why: Why::Refused(why),
            }) => (kind, why),
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[test]
    fn a_range_header_must_be_the_range_and_the_content_asked() {
        let by_hash = Target::Hash(A);
        let by_name = Target::Name("a".into());
        let rest = |by, content| Asked {
            by,
            offset: 5,
            len: u64::MAX,
            content,
        };
        // From byte 5 to the end, of the content asked for.
        assert!(check_range(&header(A, 9, 5, 4), &rest(&by_hash, None)).is_ok());
        assert!(check_range(&header(A, 9, 5, 4), &rest(&by_name, Some((A, 9)))).is_ok());
        // Another range.
        let (kind, why) = refusal(check_range(&header(A, 9, 4, 5), &rest(&by_hash, None)));
        assert_eq!(kind, Failure::Lied);
        assert_eq!(why, "it answered bytes 4..9 when asked from byte 5");
        let piece = Asked {
            by: &by_hash,
            offset: 0,
            len: 4,
            content: Some((A, 9)),
        };
        let (_, why) = refusal(check_range(&header(A, 9, 0, 9), &piece));
        assert_eq!(why, "it answered bytes 0..9 when asked for bytes 0..4");
        // Another content, asked by hash: a lie.
        let (kind, why) = refusal(check_range(&header(B, 9, 5, 4), &rest(&by_hash, None)));
        assert_eq!(kind, Failure::Lied);
        assert!(why.starts_with(&format!("it sent blake3 {} (9 bytes)", B.short())));
        // The right hash with another size, known: a lie too.
        let (kind, _) = refusal(check_range(
            &header(A, 8, 5, 3),
            &rest(&by_hash, Some((A, 9))),
        ));
        assert_eq!(kind, Failure::Lied);
        // Another content, asked by name: another version, not a lie.
        match check_range(&header(B, 9, 5, 4), &rest(&by_name, Some((A, 9)))) {
            Err(Failed {
                kind: Failure::NotHere,
                why: Why::AnotherVersion(what),
            }) => assert_eq!(what, format!("blake3 {}, 9 bytes", B.short())),
            other => panic!("{other:?}"),
        }
        // An offset past the end is never a range.
        let past = Asked {
            by: &by_hash,
            offset: 10,
            len: 0,
            content: None,
        };
        let (_, why) = refusal(check_range(&header(A, 9, 9, 0), &past));
        assert_eq!(why, "it answered bytes 9..9 when asked for none at byte 10");
    }

    #[test]
    fn an_older_nodes_file_must_start_where_asked_and_keep_its_size() {
        let file = |size, offset| FileHeader { size, offset };
        assert!(check_file(&file(9, 3), 3, Some(9)).is_ok());
        assert!(check_file(&file(9, 0), 0, None).is_ok());
        let (kind, why) = refusal(check_file(&file(9, 2), 3, Some(9)));
        assert_eq!(kind, Failure::Lied);
        assert_eq!(why, "it answered from byte 2 when asked from byte 3");
        let (kind, why) = refusal(check_file(&file(8, 3), 3, Some(9)));
        assert_eq!(kind, Failure::NotHere);
        assert_eq!(why, "its copy has 8 bytes, not 9; cannot resume from it");
    }

    #[test]
    fn the_status_line_names_the_proof() {
        let verified = Content::Verified { hash: A, size: 3 };
        assert_eq!(verified.proof(), format!("blake3 {}", A.short()));
        assert_eq!((verified.size(), verified.hash()), (3, Some(A)));
        let unverified = Content::Unverified { size: 4 };
        assert_eq!(
            unverified.proof(),
            "unverified: an older node without content hashes"
        );
        assert_eq!((unverified.size(), unverified.hash()), (4, None));
    }
}
