//! Section 8, relayed mode (docs/PROTOCOL.md "Relayed mode"): a large fetch
//! from a node started with `--relayed`, through a circuit at the relay,
//! beside the same fetch from a direct node in the same run; the relay's CPU
//! time per relayed GiB (from /proc/PID/stat: the bytes are spliced, so it
//! should be small); and the relay's memory with 1 000 relayed nodes idle,
//! each holding its control connection.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::time::Duration;

use proto::{Registration, Request, Response, frame};

use crate::Settings;
use crate::load::connect_from;
use crate::procs::{self, Proc};
use crate::report::{Row, Table, median, mib, show_runs};
use crate::transfer::write_file;

/// Relayed nodes held idle for the memory figure.
const IDLE_NODES: usize = 1000;
/// Control connections per source address: under the relay's default cap
/// of nodes per address (16), as many nodes behind one NAT would be.
const NODES_PER_IP: usize = 10;

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let share = s.tmp.join("relayed-share");
    fs::create_dir_all(&share).map_err(|e| format!("cannot create {}: {e}", share.display()))?;
    let len = s.file_mib << 20;
    let big = share.join("big.bin");
    eprintln!("relayed: writing a {} MiB file...", s.file_mib);
    write_file(&big, len).map_err(|e| format!("cannot write {}: {e}", big.display()))?;

    // Two relays, so that each client finds exactly one node: the direct
    // one at the first, the relayed one at the second.
    let (_direct_relay, direct_at) =
        procs::start_relay(&s.bins, s.tmp.join("relayed-direct-relay.log"))?;
    let _direct = procs::start_node(
        &s.bins,
        direct_at,
        &share,
        s.tmp.join("relayed-direct-node.log"),
    )?;
    let (relay, relayed_at) = procs::start_relay(&s.bins, s.tmp.join("relayed-relay.log"))?;
    let mut cmd = Command::new(s.bins.path("peer-node"));
    cmd.arg("127.0.0.1")
        .arg(relayed_at.port().to_string())
        .arg(&share)
        .args(["--bind", "127.0.0.1", "--relayed"]);
    let mut relayed = Proc::spawn("peer-node", cmd, s.tmp.join("relayed-node.log"))?;
    relayed.wait_for("registered with relay")?;

    let fetch = |relay: SocketAddr| -> Result<Duration, String> {
        let args = [
            "127.0.0.1".to_string(),
            relay.port().to_string(),
            "big.bin".to_string(),
        ];
        Ok(procs::run_client(&s.bins, &args, &s.tmp.join("relayed-client.log"))?.elapsed)
    };
    eprintln!(
        "relayed: {} MiB through the relay vs direct, {} runs...",
        s.file_mib, s.runs
    );
    let (mut through, mut direct, mut cpu_per_gib) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..s.runs {
        direct.push(fetch(direct_at)?.as_secs_f64());
        let before = cpu_secs(relay.pid())?;
        through.push(fetch(relayed_at)?.as_secs_f64());
        let used = cpu_secs(relay.pid())? - before;
        cpu_per_gib.push(used / (len as f64 / f64::from(1u32 << 30)));
    }
    let mibs = |secs: &[f64]| -> Vec<f64> {
        secs.iter()
            .map(|t| len as f64 / f64::from(1u32 << 20) / t)
            .collect()
    };
    show_runs("MiB/s, relayed/direct", &mibs(&through), &mibs(&direct));
    let (t, d) = (median(&through), median(&direct));
    let ratio = t / d;
    table.add(Row {
        what: format!(
            "{} MiB fetch through the relay (node --relayed)",
            s.file_mib
        ),
        ours: format!("{:.2} s ({:.0} MiB/s)", t, median(&mibs(&through))),
        baseline: format!("{:.2} s direct ({:.0} MiB/s)", d, median(&mibs(&direct))),
        ratio: Some(ratio),
        target: "time <= 1.5x direct".into(),
        met: Some(ratio <= 1.5),
    });
    table.add(Row {
        what: "relay CPU per relayed GiB (user + system)".into(),
        ours: format!("{:.3} s", median(&cpu_per_gib)),
        baseline: "-".into(),
        ratio: None,
        target: "stated".into(),
        met: None,
    });
    drop(relayed);
    drop(relay);

    idle(s, table)
}

/// The relay's memory before and with [`IDLE_NODES`] control connections.
fn idle(s: &Settings, table: &mut Table) -> Result<(), String> {
    raise_fd_limit(IDLE_NODES as u64 + 256);
    let (relay, at) = procs::start_relay_with(
        &s.bins,
        s.tmp.join("relayed-idle-relay.log"),
        &["--max-connections", "4096"],
    )?;
    let SocketAddr::V4(at) = at else {
        return Err("the relay is not on IPv4".into());
    };
    let empty = relay.memory()?.rss_kib;
    eprintln!("relayed: {IDLE_NODES} relayed nodes' control connections...");
    let mut held: Vec<TcpStream> = Vec::with_capacity(IDLE_NODES);
    for i in 0..IDLE_NODES {
        held.push(control(at, i).map_err(|e| format!("relayed node {i}: {e}"))?);
    }
    // Let every connection thread settle before measuring.
    std::thread::sleep(Duration::from_millis(500));
    let full = relay.memory()?.rss_kib;
    table.add(Row {
        what: format!("relay RSS with {IDLE_NODES} relayed nodes idle"),
        ours: format!("{:.1} MiB", mib(full)),
        baseline: format!("{:.1} MiB with none", mib(empty)),
        ratio: None,
        target: "stated".into(),
        met: None,
    });
    table.note(format!(
        "relayed nodes: {:.1} KiB of relay RSS each (a thread and a socket per control connection)",
        (full.saturating_sub(empty)) as f64 / IDLE_NODES as f64
    ));
    drop(held);
    drop(relay);
    Ok(())
}

/// Opens one relayed node's control connection, from its own loopback
/// address among several, as a node behind NAT does.
fn control(relay: SocketAddrV4, i: usize) -> Result<TcpStream, String> {
    let ip = u8::try_from(1 + i / NODES_PER_IP).map_err(|_| "too many nodes".to_string())?;
    let mut stream =
        connect_from(Ipv4Addr::new(127, 0, 3, ip), relay).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = Request::Control(Registration {
        port: 4000,
        advertised_ip: None,
        token: None,
    });
    frame::write(&mut stream, &request).map_err(|e| e.to_string())?;
    match frame::read::<Response>(&mut stream).map_err(|e| e.to_string())? {
        Response::Registered(_) => Ok(stream),
        other => Err(format!("answered {other:?}")),
    }
}

/// User plus system CPU seconds of process `pid` so far.
pub fn cpu_secs(pid: u32) -> Result<f64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    // The command name may hold spaces; the fields after it do not.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("unexpected /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64)
            .ok_or_else(|| "unexpected /proc stat".to_string())
    };
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// Raises this process's open-file limit to `want` (within the hard limit).
fn raise_fd_limit(want: u64) {
    // SAFETY: getrlimit and setrlimit read and write the local struct only.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
