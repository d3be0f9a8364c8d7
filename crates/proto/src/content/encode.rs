//! The sender's side of a verified range: which hash pairs and which chunk
//! groups go out, in which order. The walk knows nothing of sockets: a
//! [`RangeSink`] takes each piece, so the node can splice the groups
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

/// An outboard file read through a window of [`WINDOW`] bytes, so a range's
/// pairs cost a read per thousand pairs instead of one each. The walk visits
/// pairs in pre-order while the file keeps them in post-order: mostly small
/// steps back and forth, which a window centred on the miss absorbs.
pub struct WindowedOutboard<'a> {
    file: &'a File,
    window: std::cell::RefCell<Window>,
}

/// Bytes of an outboard held at a time: 1024 pairs.
pub const WINDOW: usize = 64 * 1024;

struct Window {
    start: u64,
    bytes: Vec<u8>,
}

impl<'a> WindowedOutboard<'a> {
    pub fn new(file: &'a File) -> WindowedOutboard<'a> {
        WindowedOutboard {
            file,
            window: std::cell::RefCell::new(Window {
                start: 0,
                bytes: Vec::new(),
            }),
        }
    }
}

impl Outboard for WindowedOutboard<'_> {
    fn read_pair(&self, index: u64, pair: &mut [u8; PAIR_LEN]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let at = index * PAIR_LEN as u64;
        let mut w = self.window.borrow_mut();
        let inside = at >= w.start && at + PAIR_LEN as u64 <= w.start + w.bytes.len() as u64;
        if !inside {
            let start = at.saturating_sub(WINDOW as u64 / 2);
            let start = start - start % PAIR_LEN as u64;
            w.bytes.resize(WINDOW, 0);
            let mut filled = 0;
            while filled < WINDOW {
                match self
                    .file
                    .read_at(&mut w.bytes[filled..], start + filled as u64)
                {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            w.bytes.truncate(filled);
            w.start = start;
            if at + PAIR_LEN as u64 > start + filled as u64 {
                return Err(short_outboard(io::ErrorKind::UnexpectedEof.into(), index));
            }
        }
        let from = (at - w.start) as usize;
        pair.copy_from_slice(&w.bytes[from..from + PAIR_LEN]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{CHUNK_GROUP, outboard_to_vec};

    #[test]
    fn the_windowed_outboard_gives_the_same_stream() {
        let data: Vec<u8> = (0..(3000 * CHUNK_GROUP as usize + 5))
            .map(|i| (i % 249) as u8)
            .collect();
        let (_, outboard) = outboard_to_vec(&data);
        let path = std::env::temp_dir().join(format!("proto-windowed-{}", std::process::id()));
        std::fs::write(&path, &outboard).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let size = data.len() as u64;
        for (offset, len) in [
            (0, u64::MAX),
            (1000 * CHUNK_GROUP + 3, 5 * CHUNK_GROUP),
            (size, 0),
        ] {
            let range = ByteRange::clamp(size, offset, len).unwrap();
            let mut a = MemorySink {
                data: &data,
                out: Vec::new(),
            };
            let mut b = MemorySink {
                data: &data,
                out: Vec::new(),
            };
            encode_range(size, range, &outboard[..], &mut a).unwrap();
            encode_range(size, range, &WindowedOutboard::new(&file), &mut b).unwrap();
            assert!(a.out == b.out, "range {range:?}");
        }
    }
}
