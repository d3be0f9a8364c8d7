//! The door in front of the site. tiny_http gives every connection a
//! thread of its own, with no cap, no timeout and no limit on a header's
//! length; facing the network itself, a scraper (or anyone who can reach
//! the port) could hold any number of threads and descriptors, which the
//! protocol port shares. So the door accepts instead: past its own cap a
//! connection gets `503` at once; an admitted one has a deadline for all
//! of it and a limit on its request's size; only then does the request go
//! on to the site, over a local socket, and the answer come back.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{self, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::endpoint::{Limits, reason};

const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const TOO_SLOW: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Starts the accept loop on its own thread.
pub(crate) fn start(listener: TcpListener, hop: net::SocketAddr, limits: Limits) -> io::Result<()> {
    let hop = Arc::new(hop);
    let open = Arc::new(AtomicUsize::new(0));
    thread::Builder::new()
        .name("metrics-door".into())
        .spawn(move || accept_loop(&listener, &hop, &open, limits))?;
    Ok(())
}

fn accept_loop(
    listener: &TcpListener,
    hop: &Arc<net::SocketAddr>,
    open: &Arc<AtomicUsize>,
    limits: Limits,
) {
    let mut last_warning: Option<Instant> = None;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: wait a little rather
                // than spin, and say so at most once a minute.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!("metrics endpoint: cannot accept: {}", reason(&e));
                    last_warning = Some(Instant::now());
                }
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(slot) = Slot::take(open, limits.max_connections) else {
            tracing::debug!(
                "metrics endpoint: refused {peer}: {} connections open",
                limits.max_connections
            );
            refuse(stream);
            continue;
        };
        let hop = Arc::clone(hop);
        let spawned = thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                let _slot = slot;
                if let Err(e) = serve(stream, &hop, limits) {
                    tracing::debug!("metrics endpoint: {peer}: {}", reason(&e));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("metrics endpoint: no thread for {peer}: {}", reason(&e));
        }
    }
}

/// One place under the cap, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(Arc::clone(open)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `503` without a thread: a few dozen bytes, which a fresh socket's send
/// buffer always takes at once.
fn refuse(stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write_all(BUSY);
    let _ = stream.shutdown(Shutdown::Write);
}

/// One connection: its request in (within the deadline and the size
/// limit), on to the site, the answer back out, then close.
fn serve(client: TcpStream, hop: &net::SocketAddr, limits: Limits) -> io::Result<()> {
    let deadline = Instant::now() + limits.deadline;
    let head = match read_head(&client, deadline, limits.max_request) {
        Ok(head) => head,
        Err(Refusal::Reply(answer)) => {
            let _ = client.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = (&client).write_all(answer);
            close(client);
            return Ok(());
        }
        Err(Refusal::Io(e)) => return Err(e),
    };
    let mut site = UnixStream::connect_addr(hop)?;
    site.set_read_timeout(Some(limits.deadline))?;
    site.set_write_timeout(Some(limits.deadline))?;
    site.write_all(&head)?;
    // Nothing more comes: the site answers this one request and closes.
    site.shutdown(Shutdown::Write)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = remaining(deadline)?;
        site.set_read_timeout(Some(left))?;
        let n = site.read(&mut buf)?;
        if n == 0 {
            break;
        }
        client.set_write_timeout(Some(remaining(deadline)?))?;
        (&client).write_all(&buf[..n])?;
    }
    close(client);
    Ok(())
}

enum Refusal {
    /// Answer this and close.
    Reply(&'static [u8]),
    Io(io::Error),
}

/// Reads up to the blank line that ends a request's headers. A scrape is a
/// GET without a body, so that is the whole request.
fn read_head(client: &TcpStream, deadline: Instant, max: usize) -> Result<Vec<u8>, Refusal> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    loop {
        let left = remaining(deadline).map_err(|_| Refusal::Reply(TOO_SLOW))?;
        client.set_read_timeout(Some(left)).map_err(Refusal::Io)?;
        let n = match (&*client).read(&mut buf) {
            Ok(0) => return Err(Refusal::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Refusal::Reply(TOO_SLOW));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Refusal::Io(e)),
        };
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find_blank_line(&head[from..]) {
            head.truncate(from + end);
            return Ok(head);
        }
        if head.len() >= max {
            return Err(Refusal::Reply(TOO_LARGE));
        }
    }
}

/// The end (exclusive) of the first `\r\n\r\n` in `bytes`.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left)
}

/// Half-closes, then reads briefly what the client may still send, so the
/// close does not reset an answer it has not read yet.
fn close(client: TcpStream) {
    let _ = client.shutdown(Shutdown::Write);
    let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        match (&client).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_the_headers() {
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(find_blank_line(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(find_blank_line(b""), None);
    }

    #[test]
    fn slots_stop_at_the_cap_and_come_back() {
        let open = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&open, 2).unwrap();
        let _b = Slot::take(&open, 2).unwrap();
        assert!(Slot::take(&open, 2).is_none());
        drop(a);
        assert!(Slot::take(&open, 2).is_some());
    }
}
