//! Section 4: the time to fetch a small file held only by the last of many
//! nodes, beside one held by the first: the cost of asking nodes in turn.

use std::fs;

use crate::Settings;
use crate::procs::{self, Proc};
use crate::report::{Row, Table, median, mib, millis};

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let n = s.lookup_nodes;
    let (_relay, relay) = procs::start_relay(&s.bins, s.tmp.join("lookup-relay.log"))?;
    eprintln!("starting {n} peer-node processes...");
    let mut nodes: Vec<Proc> = Vec::with_capacity(n);
    for i in 1..=n {
        let dir = s.tmp.join(format!("lookup/node{i}"));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let content = format!("{}\n", "a small file ".repeat(315));
        if i == 1 {
            write(&dir.join("first.txt"), &content)?;
        }
        if i == n {
            write(&dir.join("last.txt"), &content)?;
        }
        nodes.push(procs::start_node(
            &s.bins,
            relay,
            &dir,
            s.tmp.join(format!("lookup-node{i}.log")),
        )?);
    }
    let fetch = |name: &str| -> Result<f64, String> {
        let args = [
            "127.0.0.1".to_string(),
            relay.port().to_string(),
            name.to_string(),
        ];
        let run = procs::run_client(&s.bins, &args, &s.tmp.join("lookup-client.log"))?;
        Ok(millis(run.elapsed))
    };
    // Warm up: the first run of a program pays for page faults in its binary.
    fetch("first.txt")?;
    fetch("last.txt")?;
    eprintln!("lookups on node 1 and node {n}, {} runs...", s.runs * 2);
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for run in 0..s.runs * 2 {
        if run % 2 == 0 {
            first.push(fetch("first.txt")?);
            last.push(fetch("last.txt")?);
        } else {
            last.push(fetch("last.txt")?);
            first.push(fetch("first.txt")?);
        }
    }
    let (l, f) = (median(&last), median(&first));
    table.add(Row {
        what: format!("4. fetch a 4 KiB file held by node {n} of {n}"),
        ours: format!("{l:.1} ms"),
        baseline: format!("{f:.1} ms on node 1"),
        ratio: Some(l / f),
        target: "-".into(),
        met: None,
    });
    table.note(format!(
        "lookup: each node that lacks the file adds {:.2} ms (one connection, request, not-found answer, close); \
         times are peer-client wall times, process start included",
        (l - f) / (n.saturating_sub(1).max(1)) as f64
    ));
    let rss: Vec<f64> = nodes
        .iter()
        .filter_map(|node| node.memory().ok())
        .map(|m| mib(m.rss_kib))
        .collect();
    table.note(format!(
        "{n} peer-node processes: median RSS {:.1} MiB each",
        median(&rss)
    ));
    Ok(())
}

fn write(path: &std::path::Path, content: &str) -> Result<(), String> {
    fs::write(path, content).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
