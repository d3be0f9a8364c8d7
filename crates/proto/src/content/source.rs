//! Where a [`super::RangeDecoder`] takes the stream's bytes from: a group at
//! a time, in one piece, where they landed.
//!
//! The decoder hashes each chunk group and hands out its bytes only then.
//! Copying a group out of a read buffer into a group buffer first would add
//! a second copy of every byte to the socket's own; a [`StreamSource`]
//! instead lends the group where the read put it. Two sources:
//! - [`ReadAhead`]: big reads from any reader into one buffer, on the
//!   decoder's thread;
//! - [`super::Prefetch`]: the reads on a thread of their own, so that
//!   reading the socket and hashing run side by side.

use std::io::{self, Read};

/// A stream of bytes taken a piece at a time (a hash pair, a chunk group).
pub trait StreamSource {
    /// Takes the next `len` bytes of the stream; [`StreamSource::last`]
    /// returns them until the next call. A stream that ends first is an
    /// `UnexpectedEof` error.
    fn take(&mut self, len: usize) -> io::Result<()>;

    /// The bytes the last successful [`StreamSource::take`] took.
    fn last(&self) -> &[u8];
}

/// Read-ahead capacity of [`ReadAhead::new`]: four chunk groups, so reads
/// are big and few, and a group cut by the buffer's end (moved to its front
/// before the next read) is a small share of what passes through.
pub const READ_AHEAD: usize = 256 * 1024;

/// Reads `reader` a buffer at a time and lends each piece in place. A piece
/// cut by the buffer's end is moved to its front first (at most one group,
/// a small share of the buffer).
pub struct ReadAhead<R> {
    reader: R,
    buf: Vec<u8>,
    capacity: usize,
    /// The bytes read and not taken yet: `buf[start..end]`.
    start: usize,
    end: usize,
    /// Where the last piece taken starts: `buf[last..start]`.
    last: usize,
}

impl<R: Read> ReadAhead<R> {
    pub fn new(reader: R) -> ReadAhead<R> {
        ReadAhead::with_capacity(READ_AHEAD, reader)
    }

    pub fn with_capacity(capacity: usize, reader: R) -> ReadAhead<R> {
        ReadAhead {
            reader,
            // Allocated at the first read: a stream of a few bytes (a small
            // file, an empty range) never needs all of it.
            buf: Vec::new(),
            capacity,
            start: 0,
            end: 0,
            last: 0,
        }
    }

    pub fn into_inner(self) -> R {
        self.reader
    }
}

impl<R: Read> StreamSource for ReadAhead<R> {
    fn take(&mut self, len: usize) -> io::Result<()> {
        if self.end - self.start < len {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.last = 0;
            let want = self.capacity.max(len);
            if self.buf.is_empty() {
                // Zeroed pages from the allocator, touched only as reads fill them.
                self.buf = vec![0; want];
            } else if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            while self.end < len {
                match self.reader.read(&mut self.buf[self.end..]) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => self.end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.last = self.start;
        self.start += len;
        Ok(())
    }

    fn last(&self) -> &[u8] {
        &self.buf[self.last..self.start]
    }
}

/// What the tests of every source share, here and one crate up (the
/// `testing` feature): a reader that trickles, and the check that pieces
/// come out whole and in order.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// Reads `data` at most `step` bytes at a time; at its end, fails with a
    /// timeout if `fail`, else ends.
    pub struct Trickle {
        pub data: Vec<u8>,
        pub at: usize,
        pub step: usize,
        pub fail: bool,
    }

    impl Trickle {
        pub fn new(data: &[u8], step: usize) -> Trickle {
            Trickle {
                data: data.to_vec(),
                at: 0,
                step,
                fail: false,
            }
        }
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() && self.fail {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let n = out.len().min(self.step).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// Takes pieces of `lens` (in a cycle) until `data` runs out, each
    /// checked against `data`; the take past the end must be a clean EOF.
    pub fn check_pieces(source: &mut impl StreamSource, data: &[u8], lens: &[usize]) {
        let mut at = 0;
        for &len in lens.iter().cycle() {
            if at + len > data.len() {
                let err = source.take(data.len() - at + 1).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
                return;
            }
            source.take(len).unwrap();
            assert_eq!(source.last(), &data[at..at + len], "piece at {at}");
            at += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Trickle, check_pieces};
    use super::*;

    #[test]
    fn pieces_come_out_whole_and_in_order_whatever_the_reads() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for (capacity, step) in [(16, 1), (16, 7), (100, 3), (1000, 1000), (64, 10_000)] {
            let mut source = ReadAhead::with_capacity(capacity, Trickle::new(&data, step));
            check_pieces(&mut source, &data, &[1, 64, 5, 300, 0, 17]);
        }
    }
}
