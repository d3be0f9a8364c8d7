//! The floor for a transfer: a plain sendfile-to-socket server and a
//! read-until-EOF receiver, nothing else. Each runs as a process of its own
//! (this binary, re-executed with a hidden first argument), as node and
//! client do: two threads of one process move about 10% less over loopback
//! than two processes here, which would flatter us.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;

use crate::procs::{self, ClientRun, Proc};

/// The client's read buffer (peer-client's verify::CHUNK).
const BUF: usize = 1024 * 1024;

const SEND: &str = "__raw-send";
const RECEIVE: &str = "__raw-receive";

/// Runs a hidden mode if the arguments ask for one; returns false otherwise.
pub fn dispatch(args: &[String]) -> bool {
    let result = match args.first().map(String::as_str) {
        Some(SEND) if args.len() == 2 => serve(Path::new(&args[1])),
        Some(RECEIVE) if args.len() >= 3 => receive(&args[1], &args[2], args.get(3).map(Path::new)),
        _ => return false,
    };
    if let Err(e) = result {
        eprintln!("{}: {e}", args[0]);
        std::process::exit(1);
    }
    true
}

/// The raw sender, running until killed.
pub struct Sender {
    _proc: Proc,
    pub addr: SocketAddr,
}

impl Sender {
    pub fn start(file: &Path, log: std::path::PathBuf) -> Result<Sender, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg(SEND).arg(file);
        let mut proc = Proc::spawn("raw sender", cmd, log)?;
        let addr = proc.wait_for_addr("listening on ")?;
        Ok(Sender { _proc: proc, addr })
    }
}

/// One raw receive from `sender`, of exactly `len` bytes, discarded or
/// written to `out` and fsynced (as peer-client -o does); timed from
/// process start to exit, as the client is.
pub fn receive_once(
    sender: &Sender,
    len: u64,
    out: Option<&Path>,
    log: &Path,
) -> Result<ClientRun, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find our own binary: {e}"))?;
    let mut args = vec![
        RECEIVE.to_string(),
        sender.addr.to_string(),
        len.to_string(),
    ];
    if let Some(out) = out {
        args.push(out.display().to_string());
    }
    procs::run_to_exit(&exe, &args, log)
}

/// Accepts connections one at a time and sendfiles `path` to each.
fn serve(path: &Path) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    eprintln!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        stream.set_nodelay(true)?;
        let file = File::open(path)?;
        sendfile_all(&file, &stream)?;
    }
    Ok(())
}

/// sendfile(2) until the end of the file. Called directly: std's io::copy
/// from a File to a TcpStream reads and writes 8 KiB at a time here.
fn sendfile_all(file: &File, stream: &TcpStream) -> io::Result<()> {
    loop {
        // SAFETY: both descriptors stay open for the call; a null offset
        // makes the kernel read from, and advance, the file's position.
        let n = unsafe {
            libc::sendfile(
                stream.as_raw_fd(),
                file.as_raw_fd(),
                std::ptr::null_mut(),
                0x7fff_f000,
            )
        };
        match n {
            0 => return Ok(()),
            n if n > 0 => {}
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

fn receive(addr: &str, len: &str, out: Option<&Path>) -> io::Result<()> {
    let addr: SocketAddr = addr.parse().map_err(io::Error::other)?;
    let len: u64 = len.parse().map_err(io::Error::other)?;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut file = out.map(File::create).transpose()?;
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(f) = &mut file {
            f.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    if let Some(f) = file {
        f.sync_all()?;
    }
    if total != len {
        return Err(io::Error::other(format!(
            "received {total} bytes, not {len}"
        )));
    }
    Ok(())
}
