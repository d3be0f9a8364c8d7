//! Joining two TCP connections byte for byte: the relay's half of a
//! circuit. Each direction is pumped by its own thread (the threads already
//! serving the two connections), so neither waits on the other.
//!
//! On Linux the bytes go socket → pipe → socket with splice(2): they stay
//! in kernel pages and never enter this process, which is what keeps a
//! relay's CPU per relayed GiB low (docs/BENCHMARKS.md). Elsewhere, or if a
//! socket refuses splice, a plain read/write loop does the same job.
//!
//! End of stream in one direction is passed on as a half-close (the
//! receiver sees EOF, the other direction keeps flowing); an error, a stall
//! or a cap closes both connections at once, so the peer threads wake up.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often a blocked direction wakes to check the circuit's limits.
const TICK: Duration = Duration::from_secs(1);

/// Bytes moved per system call (and the pipe size asked for on Linux).
const CHUNK: usize = 1 << 20;

/// The limits of one circuit.
#[derive(Debug, Clone, Copy)]
pub struct JoinLimits {
    /// Close when neither direction moved a byte for this long, or when a
    /// receiver took nothing for this long.
    pub idle: Duration,
    /// Close after this many bytes in both directions together.
    pub max_bytes: Option<u64>,
    /// Close this long after the circuit was joined.
    pub max_duration: Option<Duration>,
}

/// One circuit's shared state: what both directions need to know.
pub struct Join {
    started: Instant,
    limits: JoinLimits,
    /// Milliseconds after `started` when a byte last moved either way.
    last_active_ms: AtomicU64,
    bytes: AtomicU64,
    /// Directions that have finished (0, 1 or 2).
    finished: Mutex<u8>,
    all_finished: Condvar,
}

/// How one direction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The sender closed its side; the receiver was told with a half-close.
    Eof,
    /// The circuit was closed for `reason` (both connections closed).
    Closed(String),
}

impl Join {
    pub fn new(limits: JoinLimits) -> Join {
        Join {
            started: Instant::now(),
            limits,
            last_active_ms: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            finished: Mutex::new(0),
            all_finished: Condvar::new(),
        }
    }

    /// Bytes moved so far, both directions together.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Moves bytes from `from` to `to` until `from` ends, a socket fails, or
    /// a limit is reached. Sets the sockets' timeouts.
    pub fn pump(&self, from: &TcpStream, to: &TcpStream) -> End {
        let tick = self.limits.idle.clamp(Duration::from_millis(10), TICK);
        let timeouts = from
            .set_read_timeout(Some(tick))
            .and_then(|()| to.set_write_timeout(Some(self.limits.idle)));
        let end = match timeouts {
            Ok(()) => self.pump_inner(from, to),
            Err(e) => End::Closed(format!("cannot set a timeout: {}", reason(&e))),
        };
        match &end {
            End::Eof => {
                let _ = to.shutdown(Shutdown::Write);
            }
            End::Closed(_) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
            }
        }
        end
    }

    /// Marks one direction finished and waits for the other, so that
    /// neither connection is closed while the other direction still uses it.
    /// Each direction ends by itself within its timeouts, so this wait does.
    pub fn finish_and_wait(&self) {
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        *finished += 1;
        self.all_finished.notify_all();
        while *finished < 2 {
            finished = self
                .all_finished
                .wait(finished)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn pump_inner(&self, from: &TcpStream, to: &TcpStream) -> End {
        #[cfg(target_os = "linux")]
        {
            match linux::Pipe::new() {
                Ok(pipe) => match self.run(|most| pipe.step(from, to, most)) {
                    // A socket type splice does not handle: copy instead.
                    Err(Fallback) => {}
                    Ok(end) => return end,
                },
                Err(e) => tracing::debug!("no pipe for splice ({}): copying", reason(&e)),
            }
        }
        let mut buf = vec![0u8; 64 * 1024];
        match self.run(|most| copy_step(from, to, &mut buf, most)) {
            Ok(end) => end,
            Err(Fallback) => End::Closed("cannot move bytes".into()),
        }
    }

    /// The loop around one direction's steps: counts bytes, notes activity,
    /// and enforces the limits.
    fn run(&self, mut step: impl FnMut(usize) -> Step) -> Result<End, Fallback> {
        let mut first = true;
        loop {
            // Under a byte cap, never move more than it still allows.
            let most = match self.limits.max_bytes {
                Some(max) => {
                    let left = max.saturating_sub(self.bytes());
                    if left == 0 {
                        return Ok(End::Closed(format!("byte cap of {max} bytes reached")));
                    }
                    usize::try_from(left).unwrap_or(usize::MAX)
                }
                None => usize::MAX,
            };
            if let Some(max) = self.limits.max_duration
                && self.started.elapsed() >= max
            {
                return Ok(End::Closed(format!(
                    "duration cap of {} s reached",
                    max.as_secs_f64()
                )));
            }
            match step(most) {
                Step::Moved(n) => {
                    first = false;
                    let total = self.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                    let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.last_active_ms.fetch_max(now, Ordering::Relaxed);
                    if let Some(max) = self.limits.max_bytes
                        && total >= max
                    {
                        return Ok(End::Closed(format!("byte cap of {max} bytes reached")));
                    }
                }
                Step::Eof => return Ok(End::Eof),
                Step::Nothing => {
                    let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
                    if self.started.elapsed().saturating_sub(last) >= self.limits.idle {
                        return Ok(End::Closed(format!(
                            "idle for {} s",
                            self.limits.idle.as_secs_f64()
                        )));
                    }
                }
                Step::Unsupported if first => return Err(Fallback),
                Step::Unsupported => return Ok(End::Closed("splice stopped working".into())),
                Step::Failed(why) => return Ok(End::Closed(why)),
            }
        }
    }
}

/// splice(2) is not available for these sockets.
struct Fallback;

/// What one step of a direction did.
enum Step {
    Moved(usize),
    Eof,
    /// The read timed out with nothing to move.
    Nothing,
    /// splice refused these descriptors (first step only).
    Unsupported,
    Failed(String),
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn reason(e: &io::Error) -> String {
    proto::error::io_reason(e)
}

/// One read and the writes it takes, through a buffer in this process.
fn copy_step(mut from: &TcpStream, mut to: &TcpStream, buf: &mut [u8], most: usize) -> Step {
    let len = buf.len().min(most);
    let n = match from.read(&mut buf[..len]) {
        Ok(0) => return Step::Eof,
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Step::Moved(0),
        Err(e) if is_timeout(&e) => return Step::Nothing,
        Err(e) => return Step::Failed(format!("the sender failed: {}", reason(&e))),
    };
    match to.write_all(&buf[..n]) {
        Ok(()) => Step::Moved(n),
        Err(e) if is_timeout(&e) => Step::Failed("the receiver stopped reading".into()),
        Err(e) => Step::Failed(format!("the receiver failed: {}", reason(&e))),
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use super::{CHUNK, Step, is_timeout, reason};

    /// A pipe the bytes of one direction pass through, inside the kernel.
    pub(super) struct Pipe {
        read: OwnedFd,
        write: OwnedFd,
        /// Its capacity: the most one splice into it can move.
        size: usize,
    }

    impl Pipe {
        pub(super) fn new() -> io::Result<Pipe> {
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: pipe2 writes two descriptors into the array we own.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: both descriptors are fresh and owned by nobody else.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            // A larger pipe means fewer calls per GiB; the default (64 KiB)
            // still works if the system refuses.
            // SAFETY: fcntl on a descriptor we own, with integer arguments.
            let size = unsafe {
                libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int);
                libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s > 0)
                .unwrap_or(64 * 1024);
            Ok(Pipe { read, write, size })
        }

        /// Splices what `from` has (up to the pipe's size) into the pipe,
        /// then all of it on to `to`.
        pub(super) fn step(&self, from: &TcpStream, to: &TcpStream, most: usize) -> Step {
            let n = match splice(
                from.as_raw_fd(),
                self.write.as_raw_fd(),
                self.size.min(most),
            ) {
                Ok(0) => return Step::Eof,
                Ok(n) => n,
                Err(e) if is_timeout(&e) => return Step::Nothing,
                Err(e) if unsupported(&e) => return Step::Unsupported,
                Err(e) => return Step::Failed(format!("the sender failed: {}", reason(&e))),
            };
            let mut left = n;
            while left > 0 {
                match splice(self.read.as_raw_fd(), to.as_raw_fd(), left) {
                    Ok(0) => return Step::Failed("the receiver took no bytes".into()),
                    Ok(m) => left -= m,
                    Err(e) if is_timeout(&e) => {
                        return Step::Failed("the receiver stopped reading".into());
                    }
                    Err(e) => return Step::Failed(format!("the receiver failed: {}", reason(&e))),
                }
            }
            Step::Moved(n)
        }
    }

    fn unsupported(e: &io::Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS))
    }

    /// One splice(2) call, retried when a signal interrupts it.
    fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
        loop {
            // SAFETY: both descriptors are open for the duration of the call;
            // null offsets mean "the descriptor's own position", as required
            // for sockets and pipes.
            let n = unsafe {
                libc::splice(
                    from,
                    std::ptr::null_mut(),
                    to,
                    std::ptr::null_mut(),
                    len,
                    libc::SPLICE_F_MOVE,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::thread;

    /// A connected pair of loopback sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    fn limits() -> JoinLimits {
        JoinLimits {
            idle: Duration::from_secs(10),
            max_bytes: None,
            max_duration: None,
        }
    }

    /// client ⇄ [relay_c | relay_n] ⇄ node, joined on two threads.
    fn joined(limits: JoinLimits) -> (TcpStream, TcpStream, thread::JoinHandle<(End, End)>) {
        let (client, relay_c) = pair();
        let (relay_n, node) = pair();
        let join = Arc::new(Join::new(limits));
        let (c2, n2) = (relay_c.try_clone().unwrap(), relay_n.try_clone().unwrap());
        let j2 = Arc::clone(&join);
        let other = thread::spawn(move || {
            let end = j2.pump(&n2, &c2);
            j2.finish_and_wait();
            end
        });
        let handle = thread::spawn(move || {
            let end = join.pump(&relay_c, &relay_n);
            join.finish_and_wait();
            (end, other.join().unwrap())
        });
        (client, node, handle)
    }

    #[test]
    fn carries_both_ways_and_passes_half_closes_on() {
        let (mut client, mut node, handle) = joined(limits());
        client.write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        node.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"request", "the client's half-close reached the node");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        node.write_all(&body).unwrap();
        drop(node);
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, body);
        assert_eq!(handle.join().unwrap(), (End::Eof, End::Eof));
    }

    #[test]
    fn a_byte_cap_closes_both_ends() {
        let (mut client, mut node, handle) = joined(JoinLimits {
            max_bytes: Some(1000),
            ..limits()
        });
        let _ = node.write_all(&[7u8; 5000]);
        let mut back = Vec::new();
        let _ = client.read_to_end(&mut back);
        assert_eq!(back.len(), 1000, "exactly the cap passes");
        let (_, to_client) = handle.join().unwrap();
        assert!(matches!(to_client, End::Closed(ref why) if why.contains("byte cap")));
    }

    #[test]
    fn an_idle_circuit_is_closed() {
        let (_client, _node, handle) = joined(JoinLimits {
            idle: Duration::from_millis(200),
            ..limits()
        });
        // Whichever direction notices first closes both; the other then
        // sees its sender gone.
        let (a, b) = handle.join().unwrap();
        let idle = |e: &End| matches!(e, End::Closed(why) if why.contains("idle"));
        assert!(idle(&a) || idle(&b), "{a:?} {b:?}");
    }
}
