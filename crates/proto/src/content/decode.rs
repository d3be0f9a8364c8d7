//! The receiver's side of a verified range: reads the stream a
//! [`super::encode_range`] walk produced and hands out only bytes it has
//! checked against the content hash.
//!
//! The walk is computed here from the size and the range, never read from
//! the stream, so the stream can only supply hashes and bytes, not steer
//! the reader: a pair that does not hash to its parent, or a group that does
//! not hash to its place in the tree, stops the stream at that group. The
//! bytes come from a [`StreamSource`], which lends each group where it was
//! read: the group is hashed there and handed out from there, never copied
//! by the decoder. Memory is the source's buffer and a stack of at most one
//! hash per tree level.

use std::fmt;
use std::io::{self, Read};
use std::ops::Range;

use bao_tree::iter::{BaoChunk, ResponseIter};
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

use super::source::{READ_AHEAD, ReadAhead, StreamSource};
use super::{ByteRange, CHUNK_GROUP, ContentHash, MAX_CONTENT_SIZE, PAIR_LEN, chunk_ranges, tree};
use crate::ProtoError;

/// Why a verified stream stopped.
#[derive(Debug)]
pub enum RangeError {
    /// The group starting at byte `at`, or a hash pair above it, does not
    /// match the content hash: the sender's bytes are not that content.
    Mismatch { at: u64 },
    /// The stream ended before the group starting at byte `at` was whole.
    Truncated { at: u64 },
    /// Reading failed (a timeout, a reset) before the group at `at` was whole.
    Read { at: u64, error: ProtoError },
    /// The size or range cannot describe a content.
    BadRange(String),
}

impl RangeError {
    /// Where the stream stopped: the first byte of the group that failed.
    pub fn at(&self) -> Option<u64> {
        match self {
            RangeError::Mismatch { at }
            | RangeError::Truncated { at }
            | RangeError::Read { at, .. } => Some(*at),
            RangeError::BadRange(_) => None,
        }
    }
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeError::Mismatch { at } => write!(f, "chunk at byte {at} does not match"),
            RangeError::Truncated { .. } => {
                f.write_str("truncated: the node closed the connection early")
            }
            RangeError::Read { error, .. } => write!(f, "{error}"),
            RangeError::BadRange(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for RangeError {}

/// Reads an encoded range and yields its verified bytes, in order.
pub struct RangeDecoder<S> {
    items: ResponseIter,
    /// Hashes still to be checked, the next one on top.
    stack: Vec<blake3::Hash>,
    source: S,
    /// The part of the last group taken that lies in the range.
    ready: Range<usize>,
    range: ByteRange,
    /// First byte of the next group the walk reads.
    next_group: u64,
    /// Bytes of the range handed out so far, from `range.offset`.
    delivered: u64,
    failed: bool,
}

impl<R: Read> RangeDecoder<ReadAhead<R>> {
    /// A decoder for `range` of the content `hash` of `size` bytes, reading
    /// the stream from `encoded` through a [`ReadAhead`] buffer. `range`
    /// must lie within the size: a range header's own values.
    pub fn new(
        hash: ContentHash,
        size: u64,
        range: ByteRange,
        encoded: R,
    ) -> Result<RangeDecoder<ReadAhead<R>>, RangeError> {
        // No stream is longer than its content plus a pair per group, so a
        // small file gets a buffer its size, not the full read-ahead.
        let longest = size.saturating_add(size / CHUNK_GROUP * PAIR_LEN as u64 + PAIR_LEN as u64);
        let capacity = usize::try_from(longest).map_or(READ_AHEAD, |n| n.min(READ_AHEAD));
        let source = ReadAhead::with_capacity(capacity, encoded);
        RangeDecoder::with_source(hash, size, range, source)
    }
}

impl<S: StreamSource> RangeDecoder<S> {
    /// Like [`RangeDecoder::new`], taking the stream from `source` (a
    /// [`super::Prefetch`] to read on another thread).
    pub fn with_source(
        hash: ContentHash,
        size: u64,
        range: ByteRange,
        source: S,
    ) -> Result<RangeDecoder<S>, RangeError> {
        if size > MAX_CONTENT_SIZE {
            return Err(RangeError::BadRange(format!(
                "a size of {size} bytes is past the largest content"
            )));
        }
        if ByteRange::clamp(size, range.offset, range.len) != Some(range) {
            return Err(RangeError::BadRange(format!(
                "bytes {}..{} are not within a content of {size} bytes",
                range.offset,
                range.offset.saturating_add(range.len)
            )));
        }
        let ranges = chunk_ranges(size, range);
        let first_group = ranges.boundaries().first().map_or(0, |c| c.to_bytes());
        Ok(RangeDecoder {
            items: ResponseIter::new(tree(size), ranges),
            stack: vec![hash.as_blake3()],
            source,
            ready: 0..0,
            range,
            next_group: first_group,
            delivered: 0,
            failed: false,
        })
    }

    /// The range this decoder delivers.
    pub fn range(&self) -> ByteRange {
        self.range
    }

    /// Bytes of the range handed out so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// True once every byte of the range has been handed out.
    pub fn is_done(&self) -> bool {
        self.delivered == self.range.len
    }

    /// The next verified bytes of the range (one chunk group or part of
    /// one), or None at the end. After an error, every call fails.
    pub fn next_verified(&mut self) -> Result<Option<&[u8]>, RangeError> {
        if self.failed {
            return Err(RangeError::BadRange("the stream already failed".into()));
        }
        match self.advance() {
            Ok(true) => Ok(Some(&self.source.last()[self.ready.clone()])),
            Ok(false) => Ok(None),
            Err(e) => {
                self.failed = true;
                self.stack.clear();
                Err(e)
            }
        }
    }

    /// The source the stream came from.
    pub fn into_source(self) -> S {
        self.source
    }

    /// Reads on until a group carries bytes of the range and has matched
    /// its hash (the source's last piece then); false at the end.
    fn advance(&mut self) -> Result<bool, RangeError> {
        loop {
            let Some(item) = self.items.next() else {
                if !self.is_done() {
                    // The walk covers the range by construction.
                    return Err(RangeError::BadRange("the walk ended early".into()));
                }
                return Ok(false);
            };
            match item {
                BaoChunk::Parent {
                    is_root,
                    left,
                    right,
                    ..
                } => {
                    self.take(PAIR_LEN)?;
                    let pair = self.source.last();
                    let l: [u8; 32] = pair[..32].try_into().unwrap_or_default();
                    let r: [u8; 32] = pair[32..].try_into().unwrap_or_default();
                    let expected = self.pop()?;
                    let actual = if is_root {
                        merge_subtrees_root(&l, &r, Mode::Hash)
                    } else {
                        blake3::Hash::from(merge_subtrees_non_root(&l, &r, Mode::Hash))
                    };
                    if actual != expected {
                        return Err(RangeError::Mismatch {
                            at: self.next_group,
                        });
                    }
                    if right {
                        self.stack.push(blake3::Hash::from(r));
                    }
                    if left {
                        self.stack.push(blake3::Hash::from(l));
                    }
                }
                BaoChunk::Leaf {
                    start_chunk,
                    size,
                    is_root,
                    ..
                } => {
                    let start = start_chunk.to_bytes();
                    self.next_group = start;
                    let expected = self.pop()?;
                    self.take(size)?;
                    if group_hash(start_chunk.0, self.source.last(), is_root) != expected {
                        return Err(RangeError::Mismatch { at: start });
                    }
                    self.next_group = start + size as u64;
                    let from = start.max(self.range.offset);
                    let to = (start + size as u64).min(self.range.end());
                    // A group outside the range only proves the size (an
                    // empty range): checked, and nothing to hand out.
                    if from < to {
                        self.delivered += to - from;
                        self.ready = (from - start) as usize..(to - start) as usize;
                        return Ok(true);
                    }
                }
            }
        }
    }

    fn pop(&mut self) -> Result<blake3::Hash, RangeError> {
        self.stack
            .pop()
            .ok_or_else(|| RangeError::BadRange("the walk has no hash to check".into()))
    }

    /// Takes the next `len` bytes of the stream into the source's last piece.
    fn take(&mut self, len: usize) -> Result<(), RangeError> {
        let at = self.next_group;
        self.source.take(len).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => RangeError::Truncated { at },
            _ => RangeError::Read {
                at,
                error: ProtoError::from(e),
            },
        })
    }
}

/// The hash a group must have at its place in the tree: the plain BLAKE3
/// hash when it is the whole content, else its chaining value at its offset.
fn group_hash(start_chunk: u64, data: &[u8], is_root: bool) -> blake3::Hash {
    if is_root {
        return blake3::hash(data);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(start_chunk * 1024);
    hasher.update(data);
    let cv: ChainingValue = hasher.finalize_non_root();
    blake3::Hash::from(cv)
}

/// A [`RangeDecoder`] as a plain reader: `read` returns only verified bytes,
/// and a mismatch is an `InvalidData` error saying which group.
pub struct VerifiedReader<S> {
    decoder: RangeDecoder<S>,
    /// What the last group yielded that `read` has not returned yet, within
    /// the source's last piece.
    pending: Range<usize>,
}

impl<S: StreamSource> VerifiedReader<S> {
    pub fn new(decoder: RangeDecoder<S>) -> VerifiedReader<S> {
        VerifiedReader {
            decoder,
            pending: 0..0,
        }
    }

    pub fn into_decoder(self) -> RangeDecoder<S> {
        self.decoder
    }
}

impl<S: StreamSource> Read for VerifiedReader<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.decoder.next_verified() {
                Ok(Some(_)) => self.pending = self.decoder.ready.clone(),
                Ok(None) => return Ok(0),
                Err(e) => {
                    let kind = match e {
                        RangeError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
                        _ => io::ErrorKind::InvalidData,
                    };
                    return Err(io::Error::new(kind, e.to_string()));
                }
            }
        }
        let n = out.len().min(self.pending.len());
        let group = self.decoder.source.last();
        out[..n].copy_from_slice(&group[self.pending.start..self.pending.start + n]);
        self.pending.start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::encode_to_vec;

    fn content(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 % 253) as u8).collect()
    }

    fn decode_all(
        hash: ContentHash,
        size: u64,
        range: ByteRange,
        enc: &[u8],
    ) -> Result<Vec<u8>, RangeError> {
        let mut d = RangeDecoder::new(hash, size, range, enc)?;
        let mut out = Vec::new();
        while let Some(bytes) = d.next_verified()? {
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    #[test]
    fn round_trips_every_kind_of_range() {
        let g = CHUNK_GROUP as usize;
        for size in [0, 1, 1000, g - 1, g, g + 1, 3 * g + 5, 8 * g] {
            let data = content(size);
            for (offset, len) in [
                (0, u64::MAX),
                (1, 10),
                (g as u64 - 1, 2),
                (size as u64, 5),
                (size as u64 / 2, u64::MAX),
                (0, 0),
            ] {
                let Some((hash, range, enc)) = encode_to_vec(&data, offset, len) else {
                    continue;
                };
                let got = decode_all(hash, size as u64, range, &enc).unwrap();
                assert_eq!(
                    got,
                    &data[range.offset as usize..range.end() as usize],
                    "size {size} range {range:?}"
                );
            }
        }
    }

    #[test]
    fn a_flipped_byte_names_its_group() {
        let data = content(20 * CHUNK_GROUP as usize);
        let (hash, range, mut enc) = encode_to_vec(&data, 0, u64::MAX).unwrap();
        // Where the group at 1 MiB starts in the stream: after every pair
        // and group the walk puts before it.
        let ranges = chunk_ranges(data.len() as u64, range);
        let mut pos = 0;
        for item in ResponseIter::new(tree(data.len() as u64), ranges) {
            match item {
                BaoChunk::Parent { .. } => pos += PAIR_LEN,
                BaoChunk::Leaf {
                    start_chunk, size, ..
                } => {
                    if start_chunk.to_bytes() == 16 * CHUNK_GROUP {
                        break;
                    }
                    pos += size;
                }
            }
        }
        enc[pos + 1000] ^= 1;
        let err = decode_all(hash, data.len() as u64, range, &enc).unwrap_err();
        assert_eq!(err.to_string(), "chunk at byte 1048576 does not match");
    }

    #[test]
    fn the_wrong_hash_or_size_is_refused_and_a_short_stream_is_truncated() {
        let data = content(5 * CHUNK_GROUP as usize + 3);
        let size = data.len() as u64;
        let (hash, range, enc) = encode_to_vec(&data, 0, u64::MAX).unwrap();
        let other = ContentHash::of(b"other");
        assert!(matches!(
            decode_all(other, size, range, &enc),
            Err(RangeError::Mismatch { at: 0 })
        ));
        let bigger = ByteRange {
            offset: 0,
            len: size + 1,
        };
        assert!(decode_all(hash, size + 1, bigger, &enc).is_err());
        assert!(matches!(
            decode_all(hash, size, range, &enc[..enc.len() - 1]),
            Err(RangeError::Truncated { .. })
        ));
        assert!(RangeDecoder::new(hash, u64::MAX, range, &enc[..]).is_err());
        let past = ByteRange {
            offset: size,
            len: 1,
        };
        assert!(RangeDecoder::new(hash, size, past, &enc[..]).is_err());
    }

    #[test]
    fn bao_tree_s_own_decoder_accepts_the_stream() {
        let data = content(7 * CHUNK_GROUP as usize + 999);
        let (hash, range, enc) = encode_to_vec(&data, 70_000, 200_000).unwrap();
        let ranges = chunk_ranges(data.len() as u64, range);
        let iter = bao_tree::io::sync::DecodeResponseIter::new(
            hash.as_blake3(),
            tree(data.len() as u64),
            &enc[..],
            &ranges,
        );
        let mut leaves = 0;
        for item in iter {
            if let bao_tree::io::BaoContentItem::Leaf(leaf) = item.unwrap() {
                let at = leaf.offset as usize;
                assert_eq!(&leaf.data[..], &data[at..at + leaf.data.len()]);
                leaves += 1;
            }
        }
        assert_eq!(leaves, 4);
    }

    #[test]
    fn the_reader_yields_the_same_bytes() {
        let data = content(3 * CHUNK_GROUP as usize + 77);
        let (hash, range, enc) = encode_to_vec(&data, 100, 150_000).unwrap();
        let d = RangeDecoder::new(hash, data.len() as u64, range, &enc[..]).unwrap();
        let mut got = Vec::new();
        VerifiedReader::new(d).read_to_end(&mut got).unwrap();
        assert_eq!(got, &data[100..150_100]);
    }
}
