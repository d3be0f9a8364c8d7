//! A [`StreamSource`] fed by a thread of its own: one thread reads the
//! socket in big blocks while the decoder's thread hashes and writes what
//! came before.
//!
//! Hashing costs about as much CPU as receiving (BLAKE3 at about 4 GB/s on
//! one core, the socket's copy at about 5): on one thread a verified
//! transfer would take their sum, on two it takes about the larger. The
//! threads meet once per block ([`BLOCK`] bytes, or what came within
//! [`FILL_FOR`] on a slow link), not once per group: a wake-up of the other
//! thread per 64 KiB group cost a tenth of the client's CPU. A group is
//! hashed in the block it was read into; only a group cut by a block's end
//! is copied, into one group-sized buffer. Memory is at most [`DEPTH`]
//! blocks in flight, plus the one being read into and the one being
//! decoded.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::Scope;
use std::time::{Duration, Instant};

use proto::content::StreamSource;

/// Bytes in a block. Half a megabyte measured faster than one (the blocks
/// in flight stay in the caches) and keeps the client's peak memory at
/// 8.5 MiB instead of 12 (docs/BENCHMARKS.md, section 6).
pub const BLOCK: usize = 512 * 1024;

/// How long a block waits to fill once its first bytes are in.
pub const FILL_FOR: Duration = Duration::from_millis(20);

/// Blocks read ahead of the decoder at most.
pub const DEPTH: usize = 4;

/// One block's bytes: `buf[..len]`.
struct Block {
    buf: Vec<u8>,
    len: usize,
}

/// The decoder's end of a reading thread.
pub struct Prefetch {
    blocks: Receiver<io::Result<Block>>,
    /// Emptied blocks, back to the reading thread for its next reads.
    spare: Sender<Vec<u8>>,
    /// The block being taken from, and how far.
    current: Block,
    at: usize,
    /// A piece cut by a block's end, put together.
    carry: Vec<u8>,
    /// Where the last piece lies: `current.buf[last]`, or `carry` if None.
    last: Option<std::ops::Range<usize>>,
}

impl Prefetch {
    /// Starts a thread in `scope` that reads `reader` to its end. A caller
    /// that stops taking before the end must also make a blocked read
    /// return (shut the socket down), or the scope waits for its timeout.
    pub fn spawn<'scope, R>(scope: &'scope Scope<'scope, '_>, reader: R) -> Prefetch
    where
        R: Read + Send + 'scope,
    {
        let (blocks_tx, blocks) = mpsc::sync_channel(DEPTH);
        let (spare, spare_rx) = mpsc::channel();
        scope.spawn(move || read_blocks(reader, &blocks_tx, &spare_rx));
        Prefetch {
            blocks,
            spare,
            current: Block {
                buf: Vec::new(),
                len: 0,
            },
            at: 0,
            carry: Vec::new(),
            last: Some(0..0),
        }
    }

    /// The next block from the reading thread, the current one going back.
    fn next_block(&mut self) -> io::Result<()> {
        let block = match self.blocks.recv() {
            Ok(Ok(block)) => block,
            Ok(Err(e)) => return Err(e),
            // The thread stopped at the end of the stream.
            Err(_) => return Err(io::ErrorKind::UnexpectedEof.into()),
        };
        let done = std::mem::replace(&mut self.current, block);
        if done.buf.capacity() > 0 {
            let _ = self.spare.send(done.buf);
        }
        self.at = 0;
        Ok(())
    }
}

impl StreamSource for Prefetch {
    fn take(&mut self, len: usize) -> io::Result<()> {
        if self.current.len - self.at == 0 && len > 0 {
            self.next_block()?;
        }
        let here = self.current.len - self.at;
        if here >= len {
            self.last = Some(self.at..self.at + len);
            self.at += len;
            return Ok(());
        }
        self.carry.clear();
        self.carry
            .extend_from_slice(&self.current.buf[self.at..self.current.len]);
        self.at = self.current.len;
        while self.carry.len() < len {
            self.next_block()?;
            let n = (len - self.carry.len()).min(self.current.len);
            self.carry.extend_from_slice(&self.current.buf[..n]);
            self.at = n;
        }
        self.last = None;
        Ok(())
    }

    fn last(&self) -> &[u8] {
        match &self.last {
            Some(range) => &self.current.buf[range.clone()],
            None => &self.carry,
        }
    }
}

/// The reading thread: reads blocks until the end of the stream, an error
/// (passed on), or the decoder's end is gone.
fn read_blocks<R: Read>(
    mut reader: R,
    blocks: &SyncSender<io::Result<Block>>,
    spare: &Receiver<Vec<u8>>,
) {
    loop {
        // At most DEPTH + 3 blocks ever exist: the queue, this one, the
        // decoder's, and the one on its way back.
        let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0; BLOCK]);
        let mut len = 0;
        let mut since = None;
        // Fill the block, unless the stream is slow: a block is passed on
        // once FILL_FOR has passed since its first bytes, so a slow link
        // still sees its bytes verified and written as they come.
        while len < buf.len() && since.is_none_or(|t: Instant| t.elapsed() < FILL_FOR) {
            match reader.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    since.get_or_insert_with(Instant::now);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if len > 0 {
                        let _ = blocks.send(Ok(Block { buf, len }));
                    }
                    let _ = blocks.send(Err(e));
                    return;
                }
            }
        }
        if len == 0 || blocks.send(Ok(Block { buf, len })).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::content::source::testing::{Trickle, check_pieces};

    fn data() -> Vec<u8> {
        (0..3 * BLOCK as u32 + 777)
            .map(|i| (i % 251) as u8)
            .collect()
    }

    #[test]
    fn pieces_come_out_whole_and_in_order_across_blocks() {
        let data = data();
        for step in [BLOCK, 100_000, 65_536, 4_093] {
            std::thread::scope(|scope| {
                let mut source = Prefetch::spawn(scope, Trickle::new(&data, step));
                check_pieces(&mut source, &data, &[64, 65_536, 0, 1, 65_536, 40_000]);
            });
        }
    }

    #[test]
    fn a_read_error_reaches_the_decoder_after_the_bytes_before_it() {
        let data = data();
        std::thread::scope(|scope| {
            let reader = Trickle {
                fail: true,
                ..Trickle::new(&data, 300_000)
            };
            let mut source = Prefetch::spawn(scope, reader);
            source.take(data.len()).unwrap();
            assert_eq!(source.last(), &data[..]);
            let err = source.take(1).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn a_decoder_that_stops_early_ends_the_reading_thread() {
        std::thread::scope(|scope| {
            let mut source = Prefetch::spawn(scope, Trickle::new(&vec![7; 64 * BLOCK], BLOCK));
            source.take(10).unwrap();
            drop(source);
            // The scope joins the thread: it must see the decoder gone.
        });
    }
}
