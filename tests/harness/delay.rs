//! A link with latency, where the kernel offers no delaying qdisc (netem):
//! two TAP devices, one in each namespace, joined by a delay line in this
//! process that hands every frame on `delay` after it arrived, in order.
//! Between hosts a few milliseconds apart, two SYNs sent at about the same
//! time cross on the wire, as they do on the Internet; on plain veth pairs
//! they cannot (a hop takes microseconds).
//!
//! A TAP device's file holds its namespace alive, so the [`Wire`] closes
//! its files when it is dropped (the lab drops it before it deletes the
//! namespaces): its threads look for that every 50 ms.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// `struct ifreq` as TUNSETIFF reads it: a name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _rest: [u8; 22],
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// Creates TAP device `name` in namespace `ns` (a name under
/// /var/run/netns); frames sent to it from inside can be read from the
/// returned file, and frames written to the file arrive inside. The device
/// lives as long as the file is open.
pub fn tap(ns: &str, name: &str) -> io::Result<File> {
    let path = format!("/var/run/netns/{ns}");
    let name = name.to_string();
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let ns = File::open(&path)?;
                // SAFETY: setns on a namespace file we opened changes only
                // this thread's network namespace; the thread ends here.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                let tun = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open("/dev/net/tun")?;
                let mut req = IfReq {
                    name: [0; 16],
                    flags: IFF_TAP | IFF_NO_PI,
                    _rest: [0; 22],
                };
                let bytes = name.as_bytes();
                if bytes.len() >= req.name.len() {
                    return Err(io::Error::other(format!("interface name {name} too long")));
                }
                req.name[..bytes.len()].copy_from_slice(bytes);
                // SAFETY: TUNSETIFF reads an ifreq we own, for the call only.
                if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut req) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(tun)
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Two TAP devices joined by a delay line each way; closed on drop.
pub struct Wire {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Joins `a` and `b` (two TAP devices' files) with a delay line each way.
pub fn join(a: File, b: File, delay: Duration) -> io::Result<Wire> {
    let stop = Arc::new(AtomicBool::new(false));
    let (a2, b2) = (a.try_clone()?, b.try_clone()?);
    let mut threads = line(a, b2, delay, &stop)?;
    threads.extend(line(b, a2, delay, &stop)?);
    Ok(Wire { stop, threads })
}

/// Frames read from `from` are written to `to`, each `delay` after it was
/// read: one thread reads and stamps, one waits and writes.
fn line(
    mut from: File,
    mut to: File,
    delay: Duration,
    stop: &Arc<AtomicBool>,
) -> io::Result<Vec<thread::JoinHandle<()>>> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let stopping = Arc::clone(stop);
    let reader = thread::Builder::new()
        .name("delay-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stopping.load(Ordering::Relaxed) {
                let mut fd = libc::pollfd {
                    fd: from.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd we own, for the call only.
                if unsafe { libc::poll(&mut fd, 1, 50) } <= 0 {
                    continue;
                }
                match from.read(&mut buf) {
                    Ok(n) if n > 0 => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        })?;
    let writer = thread::Builder::new()
        .name("delay-write".into())
        .spawn(move || {
            for (due, frame) in rx {
                let wait = due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    thread::sleep(wait);
                }
                // A frame the device will not take (it went down) is lost,
                // as on a wire.
                let _ = to.write(&frame);
            }
        })?;
    Ok(vec![reader, writer])
}
