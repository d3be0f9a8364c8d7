//! Content identity and verified ranges: what makes every byte checkable.
//!
//! A file's identity is its BLAKE3 hash ([`ContentHash`]). A range of it
//! travels as the pre-order walk of BLAKE3's own hash tree, cut at chunk
//! groups of [`CHUNK_GROUP`] bytes (the `bao-tree` crate's layout, as
//! iroh-blobs uses it): the 64-byte hash pairs of the tree nodes on the way
//! down, then each chunk group's raw bytes. A receiver that knows the hash
//! checks every pair and every group before it uses a byte of it.
//!
//! - [`hash`]: [`ContentHash`], and hashing a file while writing its outboard
//!   (the hash pairs a sender needs, kept beside the file, not in it).
//! - [`encode`]: the sender's walk, over a [`RangeSink`] (a socket with
//!   splice on the node, memory in tests).
//! - [`decode`]: the receiver's walk, [`RangeDecoder`]: yields only verified
//!   bytes of the requested range, and names the first group that fails.
//! - [`source`]: where the decoder takes the stream from, a group at a time
//!   and in place ([`ReadAhead`]: big reads on the decoder's thread).
//!
//! A source whose reads run on a thread of their own, so that receiving and
//! hashing overlap, is one crate up (`net::prefetch`): this crate has no
//! threads.
//!
//! docs/PROTOCOL.md describes the stream byte by byte.

pub mod decode;
pub mod encode;
pub mod hash;
pub mod source;

use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};

pub use decode::{RangeDecoder, RangeError, VerifiedReader};
pub use encode::{MemorySink, Outboard, RangeSink, WindowedOutboard, encode_range, encode_to_vec};
pub use hash::{
    ContentHash, HASH_PREFIX, ParseHashError, hash_and_outboard, outboard_len, outboard_to_vec,
};
pub use source::{ReadAhead, StreamSource};

/// log2 of the chunk group in 1 KiB BLAKE3 chunks: 2^6 chunks = 64 KiB.
pub const CHUNK_GROUP_LOG: u8 = 6;

/// Bytes in one chunk group: the unit that is hashed, sent and verified.
/// One 64-byte hash pair per group is the proof overhead: 64 / 65 536 = 0.1%
/// (BLAKE3's own 1 KiB chunks would cost 6.25%).
pub const CHUNK_GROUP: u64 = 1024 << CHUNK_GROUP_LOG;

/// Largest content size a range can describe. The tree arithmetic counts
/// 1 KiB chunks in a u64 with room for node numbers, so sizes are capped far
/// past any real file (2^62 bytes = 4 EiB) rather than trusted.
pub const MAX_CONTENT_SIZE: u64 = 1 << 62;

/// Size of one hash pair in the stream and in an outboard.
pub const PAIR_LEN: usize = 64;

/// The part of a content that a range answer covers: `offset..offset+len`,
/// already clamped to the content's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    /// The requested `offset` and `len` clamped to `size`: the end is cut to
    /// the size; None if `offset` is past the end (or the size past
    /// [`MAX_CONTENT_SIZE`]).
    pub fn clamp(size: u64, offset: u64, len: u64) -> Option<ByteRange> {
        if size > MAX_CONTENT_SIZE || offset > size {
            return None;
        }
        let end = offset.saturating_add(len).min(size);
        Some(ByteRange {
            offset,
            len: end - offset,
        })
    }

    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The tree of a content of `size` bytes, cut at chunk groups.
pub(crate) fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, BlockSize::from_chunk_log(CHUNK_GROUP_LOG))
}

/// The chunk groups that carry `range`: from the group holding its first
/// byte to the group holding its last. An empty range is carried by the
/// content's last group, which proves the size (for an empty content, the
/// one empty group). Returned in 1 KiB chunks, open-ended when it reaches the
/// last group (bao-tree's canonical form).
pub(crate) fn chunk_ranges(size: u64, range: ByteRange) -> ChunkRanges {
    let groups = size.div_ceil(CHUNK_GROUP).max(1);
    let (first, end) = if range.len == 0 {
        (groups - 1, groups)
    } else {
        (
            range.offset / CHUNK_GROUP,
            range.end().div_ceil(CHUNK_GROUP),
        )
    };
    let per_group = 1u64 << CHUNK_GROUP_LOG;
    let start = ChunkNum(first * per_group);
    if end >= groups {
        ChunkRanges::from(start..)
    } else {
        ChunkRanges::from(start..ChunkNum(end * per_group))
    }
}

/// Bytes of the encoded stream that carries `range` of a content of `size`
/// bytes: its hash pairs and its groups.
pub fn encoded_len(size: u64, range: ByteRange) -> u64 {
    let ranges = chunk_ranges(size, range);
    bao_tree::iter::ResponseIter::new(tree(size), ranges)
        .map(|item| match item {
            bao_tree::iter::BaoChunk::Parent { .. } => PAIR_LEN as u64,
            bao_tree::iter::BaoChunk::Leaf { size, .. } => size as u64,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_to_the_size_and_refuses_an_offset_past_the_end() {
        assert_eq!(
            ByteRange::clamp(100, 10, u64::MAX),
            Some(ByteRange {
                offset: 10,
                len: 90
            })
        );
        assert_eq!(
            ByteRange::clamp(100, 100, 5),
            Some(ByteRange {
                offset: 100,
                len: 0
            })
        );
        assert_eq!(ByteRange::clamp(100, 101, 0), None);
        assert_eq!(ByteRange::clamp(u64::MAX, 0, 1), None);
    }

    #[test]
    fn proof_overhead_is_one_pair_per_group() {
        let size = 1 << 30;
        let all = ByteRange::clamp(size, 0, u64::MAX).unwrap();
        let pairs = size / CHUNK_GROUP - 1;
        assert_eq!(encoded_len(size, all), size + pairs * PAIR_LEN as u64);
        // One group in the middle: the pairs on the path from the root.
        let one = ByteRange::clamp(size, 5 * CHUNK_GROUP + 7, 10).unwrap();
        assert_eq!(encoded_len(size, one), CHUNK_GROUP + 14 * PAIR_LEN as u64);
        // An empty content is one empty group.
        let empty = ByteRange::clamp(0, 0, u64::MAX).unwrap();
        assert_eq!(encoded_len(0, empty), 0);
    }
}
