//! The sender's side of a verified range: which hash pairs and which chunk
//! groups go out, in which order. The walk knows nothing of sockets: a
//! [`RangeSink`] takes each piece, so the node can sendfile the groups
//! straight from the file while tests collect them in memory.

use std::fs::File;
use std::io;

use bao_tree::iter::{BaoChunk, ResponseIter};

use super::{ByteRange, ContentHash, PAIR_LEN, chunk_ranges, outboard_to_vec, tree};

/// Where the pieces of an encoded range go, in stream order.
pub trait RangeSink {
    /// One hash pair: the left child's hash, then the right child's.
    fn pair(&mut self, pair: &[u8; PAIR_LEN]) -> io::Result<()>;
    /// The content's raw bytes `offset..offset+len`: one chunk group.
    fn group(&mut self, offset: u64, len: usize) -> io::Result<()>;
}

/// Where the hash pairs of a content are kept: its outboard, the pairs in
/// post-order, 64 bytes each ([`super::hash_and_outboard`] writes it).
pub trait Outboard {
    /// Reads the pair at position `index` of the post-order.
    fn read_pair(&self, index: u64, pair: &mut [u8; PAIR_LEN]) -> io::Result<()>;
}

impl Outboard for File {
    fn read_pair(&self, index: u64, pair: &mut [u8; PAIR_LEN]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.read_exact_at(pair, index * PAIR_LEN as u64)
            .map_err(|e| short_outboard(e, index))
    }
}

impl Outboard for [u8] {
    fn read_pair(&self, index: u64, pair: &mut [u8; PAIR_LEN]) -> io::Result<()> {
        let start = usize::try_from(index)
            .ok()
            .and_then(|i| i.checked_mul(PAIR_LEN))
            .filter(|s| s + PAIR_LEN <= self.len())
            .ok_or_else(|| short_outboard(io::ErrorKind::UnexpectedEof.into(), index))?;
        pair.copy_from_slice(&self[start..start + PAIR_LEN]);
        Ok(())
    }
}

fn short_outboard(e: io::Error, index: u64) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the outboard ends before hash pair {index}"),
        )
    } else {
        e
    }
}

/// Walks the tree of a content of `size` bytes over the chunk groups that
/// carry `range`, in pre-order: each node's hash pair before its children,
/// left before right, each group's bytes where the walk reaches it. A
/// content of one group has no pairs, and `outboard` is not read.
pub fn encode_range<O: Outboard + ?Sized>(
    size: u64,
    range: ByteRange,
    outboard: &O,
    sink: &mut impl RangeSink,
) -> io::Result<()> {
    let tree = tree(size);
    let mut pair = [0u8; PAIR_LEN];
    for item in ResponseIter::new(tree, chunk_ranges(size, range)) {
        match item {
            BaoChunk::Parent { node, .. } => {
                let index = tree.post_order_offset(node).ok_or_else(|| {
                    io::Error::other(format!("no outboard position for tree node {node:?}"))
                })?;
                outboard.read_pair(index.value(), &mut pair)?;
                sink.pair(&pair)?;
            }
            BaoChunk::Leaf {
                start_chunk, size, ..
            } => sink.group(start_chunk.to_bytes(), size)?,
        }
    }
    Ok(())
}

/// A sink that collects the stream in memory, reading groups from `data`.
pub struct MemorySink<'a> {
    pub data: &'a [u8],
    pub out: Vec<u8>,
}

impl RangeSink for MemorySink<'_> {
    fn pair(&mut self, pair: &[u8; PAIR_LEN]) -> io::Result<()> {
        self.out.extend_from_slice(pair);
        Ok(())
    }

    fn group(&mut self, offset: u64, len: usize) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let bytes = self
            .data
            .get(start..start.saturating_add(len))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

/// The whole answer to a range request for `data` held in memory: its hash,
/// the clamped range and the encoded stream; None if `offset` is past the
/// end. For tests, fakes and the examples in docs/PROTOCOL.md.
pub fn encode_to_vec(
    data: &[u8],
    offset: u64,
    len: u64,
) -> Option<(ContentHash, ByteRange, Vec<u8>)> {
    let size = data.len() as u64;
    let range = ByteRange::clamp(size, offset, len)?;
    let (hash, outboard) = outboard_to_vec(data);
    let mut sink = MemorySink {
        data,
        out: Vec::new(),
    };
    encode_range(size, range, &outboard[..], &mut sink).ok()?;
    Some((hash, range, sink.out))
}
