//! The receiver's side of a verified range: reads the stream a
//! [`super::encode_range`] walk produced and hands out only bytes it has
//! checked against the content hash.
//!
//! The walk is computed here from the size and the range, never read from
//! the stream, so the stream can only supply hashes and bytes, not steer
//! the reader: a pair that does not hash to its parent, or a group that does
//! not hash to its place in the tree, stops the stream at that group. Memory
//! is one chunk group and a stack of at most one hash per tree level.

use std::fmt;
use std::io::{self, Read};
use std::ops::Range;

use bao_tree::iter::{BaoChunk, ResponseIter};
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

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
pub struct RangeDecoder<R> {
    items: ResponseIter,
    /// Hashes still to be checked, the next one on top.
    stack: Vec<blake3::Hash>,
    encoded: R,
    /// One chunk group.
    buf: Vec<u8>,
    /// The part of `buf` handed out last.
    ready: Range<usize>,
    range: ByteRange,
    /// First byte of the next group the walk reads.
    next_group: u64,
    /// Bytes of the range handed out so far, from `range.offset`.
    delivered: u64,
    failed: bool,
}

impl<R: Read> RangeDecoder<R> {
    /// A decoder for `range` of the content `hash` of `size` bytes, reading
    /// the stream from `encoded` (buffer it: pairs are read 64 bytes at a
    /// time). `range` must lie within the size: a range header's own values.
    pub fn new(
        hash: ContentHash,
        size: u64,
        range: ByteRange,
        encoded: R,
    ) -> Result<RangeDecoder<R>, RangeError> {
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
            encoded,
            buf: Vec::with_capacity(CHUNK_GROUP as usize),
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

    /// Bytes of the range read from the stream so far (handed out, or in
    /// groups handed out for checking).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// True once every byte of the range has been read.
    pub fn is_done(&self) -> bool {
        self.delivered == self.range.len
    }

    /// The next verified bytes of the range (one chunk group or part of
    /// one), or None at the end. After an error, every call fails.
    pub fn next_verified(&mut self) -> Result<Option<&[u8]>, RangeError> {
        let pending = match self.next_group() {
            Ok(Some(pending)) => pending,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e),
        };
        match pending.verify() {
            Ok(group) => {
                self.ready = group.ready;
                self.buf = group.buf;
                Ok(Some(&self.buf[self.ready.clone()]))
            }
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    /// The next chunk group that carries bytes of the range, read and with
    /// every hash pair above it checked, but its own bytes not hashed yet:
    /// they can only be reached through [`PendingGroup::verify`]. Lets a
    /// caller hash groups on another thread while this one reads on; a
    /// caller that does must stop at the first group that fails. Pass the
    /// buffer of a finished group back with [`RangeDecoder::recycle`] to
    /// keep allocations flat.
    pub fn next_group(&mut self) -> Result<Option<PendingGroup>, RangeError> {
        if self.failed {
            return Err(RangeError::BadRange("the stream already failed".into()));
        }
        match self.advance() {
            Ok(group) => Ok(group),
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    /// Gives a group's buffer back for the next group.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() >= self.buf.capacity() {
            self.buf = buf;
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.stack.clear();
    }

    /// The reader the stream came from (to finish the exchange).
    pub fn into_inner(self) -> R {
        self.encoded
    }

    /// Reads on until a group carries bytes of the range; None at the end.
    fn advance(&mut self) -> Result<Option<PendingGroup>, RangeError> {
        loop {
            let Some(item) = self.items.next() else {
                if !self.is_done() {
                    // The walk covers the range by construction.
                    return Err(RangeError::BadRange("the walk ended early".into()));
                }
                return Ok(None);
            };
            match item {
                BaoChunk::Parent {
                    is_root,
                    left,
                    right,
                    ..
                } => {
                    let mut pair = [0u8; PAIR_LEN];
                    self.read_exact_at_group(&mut pair)?;
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
                    let mut buf = std::mem::take(&mut self.buf);
                    // Only grown when short: zero-filling every group cost
                    // 7% of a verified transfer's CPU.
                    if buf.len() < size {
                        buf.resize(size, 0);
                    }
                    buf.truncate(size);
                    self.read_exact_at_group(&mut buf)?;
                    let expected = self.pop()?;
                    self.next_group = start + size as u64;
                    let from = start.max(self.range.offset);
                    let to = (start + size as u64).min(self.range.end());
                    let ready = if from < to {
                        self.delivered += to - from;
                        (from - start) as usize..(to - start) as usize
                    } else {
                        0..0
                    };
                    let group = PendingGroup {
                        buf,
                        expected,
                        start_chunk: start_chunk.0,
                        is_root,
                        ready,
                    };
                    if group.ready.is_empty() {
                        // Only proves the size (an empty range): check it
                        // here, since nobody will ask for its bytes.
                        let group = group.verify()?;
                        self.buf = group.buf;
                        continue;
                    }
                    return Ok(Some(group));
                }
            }
        }
    }

    fn pop(&mut self) -> Result<blake3::Hash, RangeError> {
        self.stack
            .pop()
            .ok_or_else(|| RangeError::BadRange("the walk has no hash to check".into()))
    }

    fn read_exact_at_group(&mut self, buf: &mut [u8]) -> Result<(), RangeError> {
        let at = self.next_group;
        self.encoded.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => RangeError::Truncated { at },
            _ => RangeError::Read {
                at,
                error: ProtoError::from(e),
            },
        })
    }
}

/// A chunk group as read from the stream, not checked yet. Its bytes are
/// private: [`PendingGroup::verify`] is the only way to them.
pub struct PendingGroup {
    buf: Vec<u8>,
    expected: blake3::Hash,
    start_chunk: u64,
    is_root: bool,
    /// The part of the group inside the requested range.
    ready: Range<usize>,
}

impl PendingGroup {
    /// First byte of the group in the content.
    pub fn start(&self) -> u64 {
        self.start_chunk * 1024
    }

    /// Hashes the group; its bytes within the range if it matches.
    pub fn verify(self) -> Result<VerifiedGroup, RangeError> {
        if group_hash(self.start_chunk, &self.buf, self.is_root) != self.expected {
            return Err(RangeError::Mismatch { at: self.start() });
        }
        Ok(VerifiedGroup {
            buf: self.buf,
            ready: self.ready,
        })
    }
}

/// A chunk group that matched its hash: the part of it within the range.
pub struct VerifiedGroup {
    buf: Vec<u8>,
    ready: Range<usize>,
}

impl VerifiedGroup {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.ready.clone()]
    }

    /// The buffer, for [`RangeDecoder::recycle`].
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
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
pub struct VerifiedReader<R> {
    decoder: RangeDecoder<R>,
    /// Start of what the last group yielded that `read` has not returned yet.
    pending: Range<usize>,
}

impl<R: Read> VerifiedReader<R> {
    pub fn new(decoder: RangeDecoder<R>) -> VerifiedReader<R> {
        VerifiedReader {
            decoder,
            pending: 0..0,
        }
    }

    pub fn into_decoder(self) -> RangeDecoder<R> {
        self.decoder
    }
}

impl<R: Read> Read for VerifiedReader<R> {
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
        out[..n].copy_from_slice(&self.decoder.buf[self.pending.start..self.pending.start + n]);
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
        // Find the data byte 1 MiB into the stream's content and flip it.
        let mut d = RangeDecoder::new(hash, data.len() as u64, range, &enc[..]).unwrap();
        let mut before = 0;
        while let Ok(Some(bytes)) = d.next_verified() {
            before += bytes.len();
            if before == 16 * CHUNK_GROUP as usize {
                break;
            }
        }
        let pos = enc.len() - d.into_inner().len() + 1000;
        enc[pos] ^= 1;
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
