//! Sections 3 and 5: the relay's list answers per second under 32 concurrent
//! clients (one connection per request, as the protocol says) beside a bare
//! server that writes the same bytes, and one list answer at 100 000 nodes.

use std::thread;
use std::time::{Duration, Instant};

use proto::{Response, frame};

use crate::Settings;
use crate::load::{self, BareServer};
use crate::procs;
use crate::report::{Row, Table, median, mib, millis, show_runs};

/// Threads of the bare server: a pre-spawned pool, each serving one
/// connection at a time, like the relay's reused threads.
const BARE_THREADS: usize = 4;

/// Threads sending fake registrations.
const REGISTER_THREADS: usize = 8;

/// Relay flags for a table of fake nodes: nothing listens at their
/// addresses, so dial-back would refuse every one of them.
const FAKE: &[&str] = &["--no-relaying"];

pub fn throughput(s: &Settings, table: &mut Table) -> Result<(), String> {
    for nodes in [3, s.many_nodes] {
        let (_relay, relay) =
            procs::start_relay_with(&s.bins, s.tmp.join(format!("relay-{nodes}.log")), FAKE)?;
        load::register_fake_nodes(relay, nodes, REGISTER_THREADS)?;
        let request = load::list_request();
        let answer = list_answer(relay, &request, nodes)?;
        let bare = BareServer::start(answer.clone(), request.len(), BARE_THREADS)
            .map_err(|e| format!("cannot start the bare server: {e}"))?;
        let go = |addr, window| load::hammer(addr, &request, answer.len(), s.clients, window);
        eprintln!(
            "relay list requests, {nodes} nodes ({} byte answer), {} clients, {} runs of {:?}...",
            answer.len(),
            s.clients,
            s.runs,
            s.window
        );
        // Warm up: threads started, caches built, TCP state settled.
        go(relay, s.window / 4);
        go(bare.addr, s.window / 4);
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        let mut errors = 0;
        for run in 0..s.runs {
            let mut order = [(relay, &mut ours), (bare.addr, &mut base)];
            if run % 2 == 1 {
                order.reverse();
            }
            for (addr, figures) in order {
                let load = go(addr, s.window);
                errors += load.errors;
                figures.push(load.per_sec());
            }
        }
        show_runs("requests/s, ours/bare", &ours, &base);
        let (o, b) = (median(&ours), median(&base));
        table.add(Row {
            what: format!(
                "3. relay list requests, {nodes} nodes, {} clients",
                s.clients
            ),
            ours: format!("{o:.0}/s"),
            baseline: format!("{b:.0}/s bare"),
            ratio: Some(o / b),
            target: ">= 0.7".into(),
            met: Some(o / b >= 0.7),
        });
        if errors > 0 {
            table.note(format!(
                "relay with {nodes} nodes: {errors} requests failed or came back short (relay and bare together)"
            ));
        }
    }
    Ok(())
}

pub fn scale(s: &Settings, table: &mut Table) -> Result<(), String> {
    let nodes = s.scale_nodes;
    let (relay_proc, relay) =
        procs::start_relay_with(&s.bins, s.tmp.join("relay-scale.log"), FAKE)?;
    let empty = relay_proc.memory()?;
    eprintln!("registering {nodes} fake nodes...");
    let took = load::register_fake_nodes(relay, nodes, REGISTER_THREADS)?;
    table.note(format!(
        "{nodes} registrations took {:.1} s ({:.0}/s from {REGISTER_THREADS} threads, one connection each, \
         from {} loopback addresses within the relay's per-address cap)",
        took.as_secs_f64(),
        nodes as f64 / took.as_secs_f64(),
        load::fake_sources(nodes)
    ));
    let request = load::list_request();
    // The first answer after the table filled is built then.
    let start = Instant::now();
    let answer = list_answer(relay, &request, nodes)?;
    let first = start.elapsed();
    let bare = BareServer::start(answer.clone(), request.len(), BARE_THREADS)
        .map_err(|e| format!("cannot start the bare server: {e}"))?;
    let time = |addr| -> Result<Duration, String> {
        let start = Instant::now();
        let got = load::fetch_answer(addr, &request).map_err(|e| format!("list request: {e}"))?;
        if got.len() != answer.len() {
            return Err(format!(
                "a list answer had {} bytes, not {}",
                got.len(),
                answer.len()
            ));
        }
        Ok(start.elapsed())
    };
    eprintln!("one list answer at {nodes} nodes, {} runs...", s.runs);
    let (mut rebuilt, mut cached, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..s.runs {
        // The relay rebuilds its answer at most once a second.
        thread::sleep(Duration::from_millis(1100));
        rebuilt.push(millis(time(relay)?));
        cached.push(millis(time(relay)?));
        base.push(millis(time(bare.addr)?));
    }
    let b = median(&base);
    for (what, figures) in [("rebuilt", &rebuilt), ("cached", &cached)] {
        let o = median(figures);
        table.add(Row {
            what: format!("5. one list answer, {nodes} nodes, {what}"),
            ours: format!("{o:.1} ms"),
            baseline: format!("{b:.1} ms bare"),
            ratio: Some(o / b),
            target: "< 50 ms".into(),
            met: Some(o < 50.0),
        });
    }
    table.note(format!(
        "first list answer after the {nodes} registrations: {:.1} ms; answer size {} bytes",
        millis(first),
        answer.len()
    ));
    let full = relay_proc.memory()?;
    table.add(Row {
        what: format!("5. relay RSS, {nodes} nodes"),
        ours: format!(
            "{:.1} MiB (peak {:.1})",
            mib(full.rss_kib),
            mib(full.peak_kib)
        ),
        baseline: format!("{:.1} MiB empty", mib(empty.rss_kib)),
        ratio: None,
        target: "-".into(),
        met: None,
    });
    Ok(())
}

/// One list answer from the relay, checked to list `nodes` nodes.
pub fn list_answer(
    relay: std::net::SocketAddr,
    request: &[u8],
    nodes: usize,
) -> Result<Vec<u8>, String> {
    let answer = load::fetch_answer(relay, request).map_err(|e| format!("list request: {e}"))?;
    match frame::read::<Response>(&mut &answer[..]) {
        Ok(Response::Nodes(listed)) if listed.len() == nodes => Ok(answer),
        Ok(Response::Nodes(listed)) => Err(format!(
            "the relay lists {} nodes, not {nodes}",
            listed.len()
        )),
        other => Err(format!("the relay answered {other:?} to a list request")),
    }
}
