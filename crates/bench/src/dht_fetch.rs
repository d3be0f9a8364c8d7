//! Section 15: a fetch by hash with the relay dead (issue 27): the client
//! finds the holder on the DHT (50 mainline server nodes on loopback,
//! `dht::LocalDht`, local bootstrap nodes only), against the same fetch
//! through the relay. Paired runs, alternating which goes first; medians
//! of each and the median of the per-run ratios.
//!
//! "Dead" is a relay port where nothing listens: the client's connection is
//! refused at once, exactly what it sees from a relay process that died.
//! (A relay host that drops packets would add the client's connect
//! timeout, 5 s by default, before the DHT is asked.)

use std::fs;
use std::net::TcpListener;
use std::process::Command;

use dht::LocalDht;

use crate::Settings;
use crate::procs::{self, Proc};
use crate::report::{Row, Table, median, millis};

/// Nodes in the DHT, as in section 12.
const NODES: usize = 50;

/// The sizes fetched: a small file (the lookup is most of the time) and a
/// larger one (the transfer is).
const SIZES: [(u64, &str); 2] = [(4 << 10, "4 KiB"), (64 << 20, "64 MiB")];

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let net = LocalDht::start(NODES).map_err(|e| format!("cannot start the DHT: {e}"))?;
    let boot = net.bootstrap();
    let (_relay, relay) = procs::start_relay(&s.bins, s.tmp.join("dhtfetch-relay.log"))?;
    let dir = s.tmp.join("dhtfetch/node");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut hashes = Vec::new();
    for (size, _) in SIZES {
        let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        hashes.push(proto::ContentHash::of(&content).to_string());
        let path = dir.join(format!("f{size}.bin"));
        fs::write(&path, &content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let log = s.tmp.join("dhtfetch-node.log");
    let mut cmd = Command::new(s.bins.path("peer-node"));
    cmd.arg("127.0.0.1")
        .arg(relay.port().to_string())
        .arg(&dir)
        .args(["--bind", "127.0.0.1"])
        .env("XDG_CACHE_HOME", s.tmp.join("dhtfetch-cache"))
        .env("XDG_CONFIG_HOME", s.tmp.join("dhtfetch-config"));
    for b in &boot[..3] {
        cmd.args(["--dht-bootstrap", b]);
    }
    let mut node = Proc::spawn("peer-node", cmd, log)?;
    node.wait_for("catalog at relay")?;
    node.wait_for(&format!(
        "announced {} shared files on the DHT",
        SIZES.len()
    ))?;

    // A port where nothing listens: the dead relay.
    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    let client_log = s.tmp.join("dhtfetch-client.log");
    let fetch = |port: u16, hash: &str, dht: bool| -> Result<f64, String> {
        let mut args = vec![
            "127.0.0.1".to_string(),
            port.to_string(),
            format!("blake3:{hash}"),
        ];
        if dht {
            // One bootstrap node: a client starting cold.
            args.extend(["--dht-bootstrap".to_string(), boot[NODES - 1].clone()]);
        } else {
            args.push("--no-dht".to_string());
        }
        let run = procs::run_client(&s.bins, &args, &client_log)?;
        if dht {
            let text = fs::read_to_string(&client_log).unwrap_or_default();
            if !text.contains("the DHT names 1 holder") {
                return Err(format!("the fetch did not go through the DHT:\n{text}"));
            }
        }
        Ok(millis(run.elapsed))
    };
    for ((_, label), hash) in SIZES.iter().zip(&hashes) {
        // Warm up both paths (page faults in the binary, the node's cache).
        fetch(relay.port(), hash, false)?;
        fetch(dead, hash, true)?;
        eprintln!(
            "{label} by hash, relay dead (DHT) and through the relay, {} runs...",
            s.runs * 2
        );
        let (mut via_dht, mut via_relay, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..s.runs * 2 {
            let (d, r) = if run % 2 == 0 {
                let d = fetch(dead, hash, true)?;
                (d, fetch(relay.port(), hash, false)?)
            } else {
                let r = fetch(relay.port(), hash, false)?;
                (fetch(dead, hash, true)?, r)
            };
            via_dht.push(d);
            via_relay.push(r);
            ratios.push(d / r);
        }
        node.check_running()?;
        let (d, r) = (median(&via_dht), median(&via_relay));
        table.add(Row {
            what: format!("15. fetch {label} by hash, relay dead: holder from a {NODES}-node DHT"),
            ours: format!("{d:.1} ms"),
            baseline: format!("{r:.1} ms via the relay"),
            ratio: Some(median(&ratios)),
            target: "-".into(),
            met: None,
        });
        table.note(format!(
            "DHT fetch {label}: relay dead {d:.1} ms median, through the relay {r:.1} ms median; \
             the DHT costs {:.1} ms more (median of per-run ratios {:.2}); peer-client wall \
             times, process start included; runs (ms, DHT/relay): {}",
            d - r,
            median(&ratios),
            via_dht
                .iter()
                .zip(&via_relay)
                .map(|(d, r)| format!("{d:.0}/{r:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(())
}
