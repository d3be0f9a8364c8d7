//! Section 11, metrics: relay list requests per second with `--metrics`
//! on (and scraped ten times a second, far more often than Prometheus
//! would) beside the same relay without it, in the same run, with the
//! relay's CPU time per request, which other work on a shared machine moves
//! less than the rate; and one scrape of a relay holding 100 000 nodes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::load;
use crate::procs::{self, Proc};
use crate::relay::list_answer;
use crate::relayed::cpu_secs;
use crate::report::{Row, Table, median, millis, show_runs};

/// Nodes in the table while list requests are counted: a small answer, so
/// the per-request work (where counting happens) weighs the most.
const NODES: usize = 3;

/// Threads sending fake registrations.
const REGISTER_THREADS: usize = 8;

/// A scrape while the load runs, this often.
const SCRAPE_EVERY: Duration = Duration::from_millis(100);

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    throughput(s, table)?;
    scrape_at_scale(s, table)
}

/// A relay of fake nodes, with `--metrics` when `metrics` is set; returns
/// it, its protocol address and its metrics address.
fn relay(
    s: &Settings,
    name: &str,
    metrics: bool,
) -> Result<(Proc, SocketAddr, Option<SocketAddr>), String> {
    let mut args = vec!["--no-relaying"];
    if metrics {
        args.extend(["--metrics", "127.0.0.1:0"]);
    }
    let (mut proc, addr) =
        procs::start_relay_with(&s.bins, s.tmp.join(format!("{name}.log")), &args)?;
    let endpoint = if metrics {
        let line = proc.wait_for("metrics on http://")?;
        let rest = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| format!("no metrics address in {line:?}"))?;
        Some(rest.parse().map_err(|e| format!("{rest}: {e}"))?)
    } else {
        None
    };
    Ok((proc, addr, endpoint))
}

fn throughput(s: &Settings, table: &mut Table) -> Result<(), String> {
    let (off_proc, off, _) = relay(s, "relay-metrics-off", false)?;
    let (on_proc, on, endpoint) = relay(s, "relay-metrics-on", true)?;
    let endpoint = endpoint.expect("started with --metrics");
    let request = load::list_request();
    let mut answer_len = 0;
    for relay in [off, on] {
        load::register_fake_nodes(relay, NODES, REGISTER_THREADS)?;
        answer_len = list_answer(relay, &request, NODES)?.len();
    }
    let go = |addr, window| load::hammer(addr, &request, answer_len, s.clients, window);
    eprintln!(
        "relay list requests with --metrics (scraped every {SCRAPE_EVERY:?}) and without, {} runs of {:?}...",
        s.runs, s.window
    );
    go(off, s.window / 4);
    go(on, s.window / 4);
    let (mut with, mut without, mut scrapes) = (Vec::new(), Vec::new(), 0);
    // CPU seconds and requests answered, on and off, over all the runs.
    let (mut cpu, mut answered) = ([0.0f64; 2], [0u64; 2]);
    for run in 0..s.runs {
        let mut order = [true, false];
        if run % 2 == 1 {
            order.reverse();
        }
        for metrics_on in order {
            let (pid, i) = if metrics_on {
                (on_proc.pid(), 0)
            } else {
                (off_proc.pid(), 1)
            };
            let before = cpu_secs(pid)?;
            let load = if metrics_on {
                let scraper = Scraper::start(endpoint);
                let load = go(on, s.window);
                scrapes += scraper.stop()?;
                with.push(load.per_sec());
                load
            } else {
                let load = go(off, s.window);
                without.push(load.per_sec());
                load
            };
            cpu[i] += cpu_secs(pid)? - before;
            answered[i] += load.ok;
        }
    }
    show_runs("requests/s, metrics on/off", &with, &without);
    let (w, wo) = (median(&with), median(&without));
    // Each run's two windows follow each other: their ratio is what
    // metrics cost under the load of that moment. Other work on the
    // machine moves the rate of both by more than the 5 % in question over
    // a run, so the ratio is the median of these, not of the two medians.
    let ratios: Vec<f64> = with.iter().zip(&without).map(|(w, wo)| w / wo).collect();
    let ratio = median(&ratios);
    table.add(Row {
        what: format!(
            "11. relay list requests, {NODES} nodes, {} clients, metrics on vs off",
            s.clients
        ),
        ours: format!("{w:.0}/s"),
        baseline: format!("{wo:.0}/s off"),
        ratio: Some(ratio),
        target: ">= 0.95".into(),
        met: Some(ratio >= 0.95),
    });
    table.note(format!(
        "metrics on/off: the ratio is the median of each run's pair ({}); the medians' ratio is {:.2}",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
        w / wo
    ));
    let per_request = |i: usize| cpu[i] / answered[i].max(1) as f64 * 1e6;
    let (cpu_on, cpu_off) = (per_request(0), per_request(1));
    table.add(Row {
        what: "11. relay CPU per list request, metrics on vs off".into(),
        ours: format!("{cpu_on:.1} us"),
        baseline: format!("{cpu_off:.1} us off"),
        ratio: Some(cpu_on / cpu_off),
        target: "<= 1.05".into(),
        met: Some(cpu_on / cpu_off <= 1.05),
    });
    table.note(format!(
        "relay CPU (utime + stime from /proc) over all runs: {:.2} s for {} requests on, {:.2} s for {} off",
        cpu[0], answered[0], cpu[1], answered[1]
    ));
    table.note(format!(
        "with metrics on, /metrics was scraped every {} ms during the load ({scrapes} scrapes in all)",
        SCRAPE_EVERY.as_millis()
    ));
    Ok(())
}

/// A thread scraping `/metrics` every [`SCRAPE_EVERY`] until stopped.
struct Scraper {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<usize, String>>,
}

impl Scraper {
    fn start(endpoint: SocketAddr) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut scrapes = 0;
            while !flag.load(Ordering::Relaxed) {
                scrape(endpoint, "application/openmetrics-text")?;
                scrapes += 1;
                thread::sleep(SCRAPE_EVERY);
            }
            Ok(scrapes)
        });
        Scraper { stop, thread }
    }

    fn stop(self) -> Result<usize, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| "the scraper panicked".to_string())?
    }
}

/// One scrape of `/metrics`; returns the body's length.
fn scrape(endpoint: SocketAddr, accept: &str) -> Result<usize, String> {
    let mut stream = TcpStream::connect(endpoint).map_err(|e| format!("scrape {endpoint}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {endpoint}\r\nAccept: {accept}\r\n\r\n"
    )
    .map_err(|e| format!("scrape {endpoint}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("scrape {endpoint}: {e}"))?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "scrape {endpoint}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        ));
    }
    Ok(answer.len())
}

fn scrape_at_scale(s: &Settings, table: &mut Table) -> Result<(), String> {
    let nodes = s.scale_nodes;
    let (_proc, relay, endpoint) = relay(s, "relay-metrics-scale", true)?;
    let endpoint = endpoint.expect("started with --metrics");
    eprintln!("registering {nodes} fake nodes for the scrape...");
    load::register_fake_nodes(relay, nodes, REGISTER_THREADS)?;
    list_answer(relay, &load::list_request(), nodes)?;
    eprintln!("one scrape at {nodes} nodes, {} runs...", s.runs);
    for (format, accept) in [
        ("OpenMetrics", "application/openmetrics-text"),
        ("classic text", "text/plain;version=0.0.4"),
    ] {
        let mut took = Vec::new();
        let mut size = 0;
        for _ in 0..s.runs {
            let start = Instant::now();
            size = scrape(endpoint, accept)?;
            took.push(millis(start.elapsed()));
        }
        let t = median(&took);
        table.add(Row {
            what: format!("11. one scrape, {nodes} nodes, {format}"),
            ours: format!("{t:.1} ms"),
            baseline: "-".into(),
            ratio: None,
            target: "< 50 ms".into(),
            met: Some(t < 50.0),
        });
        table.note(format!(
            "a scrape at {nodes} nodes ({format}): {size} bytes"
        ));
    }
    Ok(())
}
