//! The load generator and the bare baseline server it is pointed at, and
//! fake registrations: Register requests sent from loopback addresses
//! (127.1.y.z, any of 127/8 works without configuration) with made-up ports,
//! since the relay lists the IP it sees and the port a node announces. Each
//! address registers only as many nodes as the relay allows one address by
//! default, so 100 000 fake nodes come from 6 250 addresses.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use proto::{Registration, Request, Response, frame};

/// Fake nodes announced from one source IP (ports FIRST_PORT..): the
/// relay's default cap per address (`relay --max-nodes-per-ip`).
const PORTS_PER_IP: usize = relay::registry::DEFAULT_MAX_NODES_PER_IP;
const FIRST_PORT: usize = 10_000;

/// Last octets used for source addresses: 1 to 254 (no .0 or .255, which
/// look like network and broadcast addresses to anyone reading a log).
const HOSTS_PER_BLOCK: usize = 254;

/// The hidden modes for profiling a running relay (docs/BENCHMARKS.md):
/// `__list-load ADDR SECS [CLIENTS]` sends list requests for SECS seconds,
/// `__register ADDR COUNT` registers fake nodes. Returns false when the
/// arguments are for neither.
pub fn dispatch(args: &[String]) -> bool {
    match args.first().map(String::as_str) {
        Some("__list-load") => {}
        Some("__register") => {
            register_command(args);
            return true;
        }
        _ => return false,
    }
    let parsed = (|| {
        let addr: SocketAddr = args.get(1)?.parse().ok()?;
        let secs: f64 = args.get(2)?.parse().ok()?;
        let clients: usize = args.get(3).map_or(Some(32), |c| c.parse().ok())?;
        Some((addr, Duration::from_secs_f64(secs), clients))
    })();
    let Some((addr, window, clients)) = parsed else {
        eprintln!("usage: p2p-bench __list-load ADDR SECS [CLIENTS]");
        std::process::exit(2);
    };
    let request = list_request();
    let expect = match fetch_answer(addr, &request) {
        Ok(answer) => answer.len(),
        Err(e) => {
            eprintln!("cannot reach {addr}: {e}");
            std::process::exit(1);
        }
    };
    let load = hammer(addr, &request, expect, clients, window);
    println!(
        "{:.0} list requests/s, {} failed",
        load.per_sec(),
        load.errors
    );
    true
}

/// `__register ADDR COUNT`: registers COUNT fake nodes with a running relay.
fn register_command(args: &[String]) {
    let parsed = (|| Some((args.get(1)?.parse().ok()?, args.get(2)?.parse().ok()?)))();
    let Some((addr, count)) = parsed else {
        eprintln!("usage: p2p-bench __register ADDR COUNT");
        std::process::exit(2);
    };
    match register_fake_nodes(addr, count, 8) {
        Ok(took) => println!("{count} registrations in {:.2} s", took.as_secs_f64()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// What a load window achieved.
pub struct Load {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Load {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` threads, each doing connect / send `request` / read until EOF /
/// close in a loop for `window`. A request counts only if exactly
/// `expect_len` bytes came back.
pub fn hammer(
    addr: SocketAddr,
    request: &[u8],
    expect_len: usize,
    clients: usize,
    window: Duration,
) -> Load {
    let start = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<JoinHandle<(u64, u64)>> = (0..clients)
        .map(|_| {
            let start = Arc::clone(&start);
            let request = request.to_vec();
            thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                start.wait();
                let deadline = Instant::now() + window;
                let (mut ok, mut errors) = (0, 0);
                while Instant::now() < deadline {
                    match one_request(addr, &request, &mut buf) {
                        Ok(n) if n == expect_len => ok += 1,
                        _ => errors += 1,
                    }
                }
                (ok, errors)
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let (mut ok, mut errors) = (0, 0);
    for t in threads {
        let (o, e) = t.join().unwrap_or((0, 1));
        ok += o;
        errors += e;
    }
    Load {
        ok,
        errors,
        elapsed: began.elapsed(),
    }
}

/// One exchange as a client does it; returns how many bytes came back.
pub fn one_request(addr: SocketAddr, request: &[u8], buf: &mut [u8]) -> io::Result<usize> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut total = 0;
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One exchange, keeping the answer.
pub fn fetch_answer(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

/// The floor for the relay: a pool of threads that each accept, read the
/// request, write a fixed reply and close; nothing else.
pub struct BareServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl BareServer {
    pub fn start(reply: Vec<u8>, request_len: usize, threads: usize) -> io::Result<BareServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let reply: Arc<[u8]> = reply.into();
        let threads = (0..threads)
            .map(|_| {
                let listener = listener.try_clone()?;
                let (reply, stop) = (Arc::clone(&reply), Arc::clone(&stop));
                Ok(thread::spawn(move || {
                    let mut request = vec![0u8; request_len];
                    for stream in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let Ok(mut stream) = stream else { continue };
                        let _ = stream.set_nodelay(true);
                        // The whole request is read first: closing with it
                        // unread would reset the connection.
                        if stream.read_exact(&mut request).is_ok() {
                            let _ = stream.write_all(&reply);
                        }
                    }
                }))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(BareServer {
            addr,
            stop,
            threads,
        })
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake every thread blocked in accept.
        for _ in 0..self.threads.len() {
            let _ = TcpStream::connect(self.addr);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The encoded ListNodes request.
pub fn list_request() -> Vec<u8> {
    frame::encode(&Request::ListNodes).expect("ListNodes encodes")
}

/// Registers `count` fake nodes from `threads` threads, one connection per
/// registration (as nodes do). Node `i` comes from [`fake_source`]`(i)`
/// with port 10000 + i % [`PORTS_PER_IP`].
pub fn register_fake_nodes(
    relay: SocketAddr,
    count: usize,
    threads: usize,
) -> Result<Duration, String> {
    let SocketAddr::V4(relay) = relay else {
        return Err("the relay must listen on IPv4 loopback".into());
    };
    let start = Instant::now();
    let workers: Vec<JoinHandle<Result<(), String>>> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                for i in (t..count).step_by(threads) {
                    register_one(relay, i)?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| "a registering thread panicked".to_string())??;
    }
    Ok(start.elapsed())
}

/// How many source addresses `count` fake nodes come from.
pub fn fake_sources(count: usize) -> usize {
    count.div_ceil(PORTS_PER_IP)
}

/// The source address of fake node `i`: 127.1.0.1, 127.1.0.2, ...
/// 127.1.0.254, 127.1.1.1, ..., [`PORTS_PER_IP`] nodes each.
fn fake_source(i: usize) -> Result<Ipv4Addr, String> {
    let k = i / PORTS_PER_IP;
    let host = u8::try_from(1 + k % HOSTS_PER_BLOCK).expect("under 255");
    let block = k / HOSTS_PER_BLOCK;
    let (Ok(hi), Ok(lo)) = (u8::try_from(1 + block / 256), u8::try_from(block % 256)) else {
        return Err("too many fake nodes for 127/8".into());
    };
    Ok(Ipv4Addr::new(127, hi, lo, host))
}

fn register_one(relay: SocketAddrV4, i: usize) -> Result<(), String> {
    let src = fake_source(i)?;
    let port = u16::try_from(FIRST_PORT + i % PORTS_PER_IP).expect("ports fit");
    let request = Request::Register(Registration {
        port,
        advertised_ip: None,
        token: None,
    });
    let fail = |what: String| format!("registering fake node {src}:{port}: {what}");
    // A busy relay (a full accept queue) is retried a few times.
    let mut tries = 0;
    loop {
        tries += 1;
        let attempt = (|| -> Result<Response, String> {
            let mut stream = connect_from(src, relay).map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            frame::write(&mut stream, &request).map_err(|e| e.to_string())?;
            let response = frame::read::<Response>(&mut stream).map_err(|e| e.to_string())?;
            // Wait for the relay's close, as a client does.
            let _ = stream.read(&mut [0u8; 64]);
            Ok(response)
        })();
        match attempt {
            Ok(Response::Registered(_)) => return Ok(()),
            Ok(other) if tries >= 5 => return Err(fail(format!("answered {other:?}"))),
            Err(e) if tries >= 5 => return Err(fail(e)),
            _ => thread::sleep(Duration::from_millis(20 * tries)),
        }
    }
}

/// A TCP connection to `dst` from source address `src` (port chosen at
/// connect time), which std's TcpStream::connect cannot do.
pub fn connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> io::Result<TcpStream> {
    fn check(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
    fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own (OwnedFd closes it
    // on every error path); every pointer is to a live local of the size given.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let sock = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        // Without this, bind picks a port without knowing the destination
        // and runs out after ~28 000 connections per source address.
        check(libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
        let local = sockaddr(SocketAddrV4::new(src, 0));
        check(libc::bind(
            fd,
            (&local as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        let remote = sockaddr(dst);
        // An interrupted connect is an error here; the caller retries.
        check(libc::connect(
            fd,
            (&remote as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        Ok(TcpStream::from(sock))
    }
}
