//! Section 7 (`index`): the relay's index at 1 000 nodes x 1 000 files.
//!
//! One relay: a real node first (holding first.txt), then fake nodes, each
//! registered from its own loopback address (127.1.x.y, so a per-address
//! registration cap does not bite) with a catalog of 1 000 distinct files,
//! then a real node last (holding last.txt). Measured: a 4 KiB fetch from
//! the last node against the first (only holders are contacted), the
//! relay's RSS with the full index, who-has exchanges, list requests per
//! second beside the bare server, and a real node announcing a 10 000-file
//! directory.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use net::exchange::{self, Timeouts};
use peer_node::catalog::Delta;
use proto::{
    CatalogUpdateLong, ContentHash, FileEntryLong, Registration, Request, Response, Target, frame,
};

use crate::Settings;
use crate::load::{self, BareServer};
use crate::procs::{self, Proc};
use crate::relay::list_answer;
use crate::report::{Row, Table, median, mib, millis};

const FAKE_PORT: u16 = 20_000;
const THREADS: usize = 8;

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let (n, files) = (s.index_nodes, s.index_files);
    // Nothing listens at the fake nodes' addresses: dial-back would refuse
    // every one of them.
    let (mut relay_proc, relay) =
        procs::start_relay_with(&s.bins, s.tmp.join("index-relay.log"), &["--no-relaying"])?;
    let SocketAddr::V4(relay_v4) = relay else {
        return Err("the relay must listen on IPv4 loopback".into());
    };
    let content = format!("{}\n", "a small file ".repeat(315));
    let first = real_node(s, relay, "first", &content)?;
    eprintln!(
        "registering {} fake nodes with {files} files each...",
        n - 2
    );
    let began = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || -> Result<(), String> {
                for i in (t..n - 2).step_by(THREADS) {
                    fake_node(relay_v4, i, files)?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a fake node thread panicked")??;
    }
    eprintln!(
        "fake catalogs sent in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let last = real_node(s, relay, "last", &content)?;
    relay_proc.wait_for("catalog of")?;

    let fetch = |name: &str| -> Result<f64, String> {
        let args = [
            "127.0.0.1".to_string(),
            relay.port().to_string(),
            name.to_string(),
        ];
        let run = procs::run_client(&s.bins, &args, &s.tmp.join("index-client.log"))?;
        Ok(millis(run.elapsed))
    };
    fetch("first.txt")?;
    fetch("last.txt")?;
    let (mut f, mut l) = (Vec::new(), Vec::new());
    for run in 0..s.runs * 2 {
        if run % 2 == 0 {
            f.push(fetch("first.txt")?);
            l.push(fetch("last.txt")?);
        } else {
            l.push(fetch("last.txt")?);
            f.push(fetch("first.txt")?);
        }
    }
    let (l, f) = (median(&l), median(&f));
    table.add(Row {
        what: format!("7. fetch a 4 KiB file held by node {n} of {n} (relay index)"),
        ours: format!("{l:.1} ms"),
        baseline: format!("{f:.1} ms on node 1"),
        ratio: Some(l / f),
        target: "<= 1.2".into(),
        met: Some(l / f <= 1.2),
    });

    let memory = relay_proc.memory()?;
    let entries = (n - 2) * files + 2;
    table.add(Row {
        what: format!("7. relay RSS, {n} nodes x {files} files ({entries} index entries)"),
        ours: format!("{:.1} MiB", mib(memory.rss_kib)),
        baseline: "-".into(),
        ratio: None,
        target: "<= 200 MiB".into(),
        met: Some(mib(memory.rss_kib) <= 200.0),
    });

    // Who-has: one exchange each (connect, request, answer, close).
    let timeouts = Timeouts::default();
    let mut times = Vec::new();
    for k in 0..2000usize {
        let i = (k * 7919) % (n - 2);
        let name = fake_name(i, k % files);
        let t = Instant::now();
        match exchange::call(relay, &Request::WhoHas(Target::Name(name)), &timeouts) {
            Ok(Response::Holders(list)) if list.holders.len() == 1 => {}
            other => return Err(format!("who-has answered {other:?}")),
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let who = median(&times);
    table.add(Row {
        what: format!("7. who-has exchange at {entries} entries"),
        ours: format!("{:.0} us", who),
        baseline: "-".into(),
        ratio: None,
        target: "<= 1 ms".into(),
        met: Some(who <= 1000.0),
    });

    let request = load::list_request();
    let answer = list_answer(relay, &request, n)?;
    let bare = BareServer::start(answer.clone(), request.len(), 4)
        .map_err(|e| format!("cannot start the bare server: {e}"))?;
    let go = |addr, window| load::hammer(addr, &request, answer.len(), s.clients, window);
    go(relay, s.window / 4);
    go(bare.addr, s.window / 4);
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for run in 0..s.runs {
        let mut order = [(relay, &mut ours), (bare.addr, &mut base)];
        if run % 2 == 1 {
            order.reverse();
        }
        for (addr, figures) in order {
            figures.push(go(addr, s.window).per_sec());
        }
    }
    let (o, b) = (median(&ours), median(&base));
    table.add(Row {
        what: format!("7. list requests with the full index, {n} nodes"),
        ours: format!("{o:.0}/s"),
        baseline: format!("{b:.0}/s bare"),
        ratio: Some(o / b),
        target: ">= 0.7".into(),
        met: Some(o / b >= 0.7),
    });
    drop((first, last));
    announce_10k(s, relay, table)
}

/// A real node sharing `NAME.txt`; returns once the relay has its catalog.
fn real_node(s: &Settings, relay: SocketAddr, name: &str, content: &str) -> Result<Proc, String> {
    let dir = s.tmp.join(format!("index/{name}"));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    fs::write(dir.join(format!("{name}.txt")), content).map_err(|e| e.to_string())?;
    let mut node = procs::start_node(
        &s.bins,
        relay,
        &dir,
        s.tmp.join(format!("index-{name}.log")),
    )?;
    node.wait_for("catalog at relay")?;
    Ok(node)
}

fn fake_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn fake_name(i: usize, j: usize) -> String {
    format!("node{i}/file-{j:04}.dat")
}

fn registration() -> Registration {
    Registration {
        port: FAKE_PORT,
        advertised_ip: None,
        token: None,
    }
}

/// Registers fake node `i` and sends it a catalog of `files` entries.
fn fake_node(relay: SocketAddrV4, i: usize, files: usize) -> Result<(), String> {
    let src = fake_addr(i);
    match call_from(src, relay, &Request::Register(registration()))? {
        Response::Registered(_) => {}
        other => return Err(format!("fake node {src} not registered: {other:?}")),
    }
    let added = (0..files)
        .map(|j| FileEntryLong {
            name: fake_name(i, j),
            size: j as u64,
            hash: Some(ContentHash::of(format!("{i}/{j}").as_bytes())),
        })
        .collect();
    let delta = Delta {
        added,
        removed: Vec::new(),
    };
    for (k, part) in delta.batches(&registration()).into_iter().enumerate() {
        let update = CatalogUpdateLong {
            registration: registration(),
            base_seq: k as u64,
            seq: k as u64 + 1,
            reset: k == 0,
            added: part.added,
            removed: part.removed,
        };
        match call_from(src, relay, &Request::CatalogLong(update))? {
            Response::CatalogAck(ack) if ack.refused == 0 => {}
            other => return Err(format!("fake node {src}: catalog answered {other:?}")),
        }
    }
    Ok(())
}

fn call_from(src: Ipv4Addr, relay: SocketAddrV4, request: &Request) -> Result<Response, String> {
    let mut stream = load::connect_from(src, relay).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    frame::write(&mut stream, request).map_err(|e| e.to_string())?;
    let response = frame::read::<Response>(&mut stream).map_err(|e| e.to_string())?;
    let _ = stream.read(&mut [0u8; 64]);
    Ok(response)
}

/// A real node with 10 000 files: time from start to "catalog at relay",
/// and the bytes of the updates it sends.
fn announce_10k(s: &Settings, relay: SocketAddr, table: &mut Table) -> Result<(), String> {
    let dir = s.tmp.join("index/10k");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    for j in 0..10_000 {
        let name = format!("dir{:02}/file-{j:05}.txt", j / 500);
        let path = dir.join(&name);
        fs::create_dir_all(path.parent().unwrap_or(&dir)).map_err(|e| e.to_string())?;
        let body = format!("file {j}\n");
        fs::write(&path, &body).map_err(|e| e.to_string())?;
        entries.push(FileEntryLong {
            name,
            size: body.len() as u64,
            hash: Some(ContentHash([0; 32])),
        });
    }
    let reg = Registration {
        port: 1,
        advertised_ip: None,
        token: None,
    };
    let parts = Delta {
        added: entries,
        removed: Vec::new(),
    }
    .batches(&reg);
    let frames = parts.len();
    let bytes: usize = parts
        .into_iter()
        .map(|p| {
            let update = CatalogUpdateLong {
                registration: reg.clone(),
                base_seq: 0,
                seq: 1,
                reset: true,
                added: p.added,
                removed: p.removed,
            };
            frame::encode(&Request::CatalogLong(update)).map_or(0, |f| f.len())
        })
        .sum();
    let began = Instant::now();
    let mut node = procs::start_node(&s.bins, relay, &dir, s.tmp.join("index-10k.log"))?;
    let registered = began.elapsed();
    node.wait_for("catalog at relay")?;
    let took = began.elapsed();
    table.add(Row {
        what: "7. catalog announce, a 10 000-file directory (first start: hashing included)".into(),
        ours: format!("{:.0} ms", millis(took)),
        baseline: format!("{:.0} ms to register", millis(registered)),
        ratio: None,
        target: "-".into(),
        met: None,
    });
    table.note(format!(
        "catalog of 10 000 files: {bytes} bytes in {frames} request frames ({:.0} bytes per file)",
        bytes as f64 / 10_000.0
    ));
    Ok(())
}
