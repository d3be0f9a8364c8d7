//! An encrypted range's batches ([`range::CopySink`]) written on a thread
//! of their own ([`WriteBehind`]).
//!
//! Sending an encrypted range costs the node three passes over every byte:
//! the read from the page cache into the batch, the encryption, and the
//! copy into the socket. On one thread a 1 GiB range took the node 0.7 to
//! 0.9 s of CPU, as long as the whole transfer: the node, not the client,
//! was what the client waited for. With the encryption and the socket's
//! copy on a second thread, the read of the next batch overlaps them
//! (docs/BENCHMARKS.md, `speed`).
//!
//! [`range::CopySink`]: super::range::CopySink

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

/// Buffers in use at most: one being filled, one waiting, one being
/// written.
const BUFFERS: usize = 3;

/// Batches written by a thread of their own, in the order put. The first
/// error of a write ends the thread, and is the error of the next `put` or
/// of `finish`. Dropped without `finish`, it still writes what was put.
pub(crate) struct WriteBehind<'scope> {
    full: Option<SyncSender<(Vec<u8>, usize)>>,
    empty: Receiver<Vec<u8>>,
    writer: Option<ScopedJoinHandle<'scope, io::Result<()>>>,
    /// Buffers made so far (the caller's first one included).
    made: usize,
}

impl<'scope> WriteBehind<'scope> {
    /// Starts the writing thread in `scope`, writing to `out`.
    pub(crate) fn spawn<W>(scope: &'scope Scope<'scope, '_>, mut out: W) -> WriteBehind<'scope>
    where
        W: Write + Send + 'scope,
    {
        let (full, batches) = mpsc::sync_channel::<(Vec<u8>, usize)>(1);
        let (emptied, empty) = mpsc::channel();
        let writer = scope.spawn(move || {
            for (batch, len) in batches {
                out.write_all(&batch[..len])?;
                // The filler may have stopped taking them back: no matter.
                let _ = emptied.send(batch);
            }
            out.flush()
        });
        WriteBehind {
            full: Some(full),
            empty,
            writer: Some(writer),
            made: 1,
        }
    }

    /// The writing thread's outcome, once it has ended (its channel is
    /// closed first, so it ends once it has written what it holds).
    fn join(&mut self) -> io::Result<()> {
        self.full = None;
        match self.writer.take().map(ScopedJoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the writing thread panicked")),
        }
    }

    /// The error that stopped the writing thread early.
    fn stopped(&mut self) -> io::Error {
        match self.join() {
            Err(e) => e,
            Ok(()) => io::ErrorKind::BrokenPipe.into(),
        }
    }
}

impl WriteBehind<'_> {
    /// Hands `batch[..len]` to the writing thread; returns an empty buffer
    /// of the same size for the next batch.
    pub(crate) fn put(&mut self, batch: Vec<u8>, len: usize) -> io::Result<Vec<u8>> {
        let size = batch.len();
        let sent = match &self.full {
            Some(full) => full.send((batch, len)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.stopped());
        }
        if let Ok(spare) = self.empty.try_recv() {
            return Ok(spare);
        }
        if self.made < BUFFERS {
            self.made += 1;
            return Ok(vec![0; size]);
        }
        match self.empty.recv() {
            Ok(spare) => Ok(spare),
            Err(_) => Err(self.stopped()),
        }
    }

    /// Returns once everything put is written, and flushed.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.join()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes writes slowly, and fails after `fail_after` bytes.
    struct Slow {
        got: Vec<u8>,
        fail_after: usize,
    }

    impl Write for Slow {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_millis(1));
            if self.got.len() + buf.len() > self.fail_after {
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn batches(n: usize) -> impl Iterator<Item = (u8, usize)> {
        (0..n).map(|i| (i as u8, 1 + i % 7))
    }

    #[test]
    fn batches_are_written_in_order_with_three_buffers_at_most() {
        let mut out = Slow {
            got: Vec::new(),
            fail_after: usize::MAX,
        };
        let mut seen = std::collections::HashSet::new();
        std::thread::scope(|scope| {
            let mut behind = WriteBehind::spawn(scope, &mut out);
            let mut buf = vec![0u8; 8];
            for (byte, len) in batches(50) {
                buf[..len].fill(byte);
                seen.insert(buf.as_ptr() as usize);
                buf = behind.put(buf, len).unwrap();
            }
            behind.finish().unwrap();
        });
        let want: Vec<u8> = batches(50)
            .flat_map(|(byte, len)| std::iter::repeat_n(byte, len))
            .collect();
        assert_eq!(out.got, want);
        assert!(seen.len() <= BUFFERS, "{} buffers", seen.len());
    }

    #[test]
    fn a_failed_write_is_the_error_of_a_later_put_or_of_finish() {
        let mut out = Slow {
            got: Vec::new(),
            fail_after: 20,
        };
        std::thread::scope(|scope| {
            let mut behind = WriteBehind::spawn(scope, &mut out);
            let mut buf = vec![0u8; 8];
            let mut failed = None;
            for _ in 0..50 {
                match behind.put(buf, 8) {
                    Ok(next) => buf = next,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let e = match failed {
                Some(e) => e,
                None => behind.finish().unwrap_err(),
            };
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        });
        assert_eq!(out.got.len(), 16);
    }
}
