//! The endpoint over real sockets: pages, formats, and the door's limits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use metrics::prometheus_client::collector::Collector;
use metrics::prometheus_client::encoding::DescriptorEncoder;
use metrics::prometheus_client::registry::Registry;
use metrics::{Endpoint, Limits, Pages, families};

#[derive(Debug)]
struct Sample;

impl Collector for Sample {
    fn encode(&self, mut out: DescriptorEncoder) -> std::fmt::Result {
        families::counter(&mut out, "sample_requests", "Requests.", None, 5)
    }
}

fn start(limits: Limits) -> SocketAddr {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Sample));
    let pages = Pages {
        registry,
        status: Box::new(|| "all is well\n".into()),
    };
    Endpoint::start("127.0.0.1:0".parse().unwrap(), pages, limits)
        .unwrap()
        .addr
}

/// Sends `request` whole, returns everything until the server closes.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> String {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{accept}\r\n").as_bytes(),
    )
}

#[test]
fn serves_both_formats_the_status_and_nothing_else() {
    let addr = start(Limits::default());
    let open = get(addr, "/metrics", None);
    assert!(open.starts_with("HTTP/1.1 200"), "{open}");
    assert!(open.contains("application/openmetrics-text"), "{open}");
    assert!(
        open.ends_with("\nsample_requests_total 5\n# EOF\n"),
        "{open}"
    );
    let classic = get(addr, "/metrics", Some("text/plain;version=0.0.4"));
    assert!(classic.contains("text/plain; version=0.0.4"), "{classic}");
    assert!(
        classic.contains("# TYPE sample_requests_total counter"),
        "{classic}"
    );
    assert!(!classic.contains("# EOF"), "{classic}");
    let status = get(addr, "/status", None);
    assert!(
        status.starts_with("HTTP/1.1 200") && status.ends_with("all is well\n"),
        "{status}"
    );
    assert!(get(addr, "/nope", None).starts_with("HTTP/1.1 404"));
    let post = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
}

#[test]
fn the_door_caps_connections_and_bounds_each_request() {
    let addr = start(Limits {
        max_connections: 2,
        deadline: Duration::from_millis(500),
        max_request: 1024,
    });
    // Two silent connections take both places.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // The door counts them once it has accepted them: poll until it has.
    let started = Instant::now();
    loop {
        let answer = get(addr, "/metrics", None);
        if answer.starts_with("HTTP/1.1 503") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never refused: {answer}"
        );
    }
    // The deadline frees them: a silent one gets 408 and is closed.
    for mut stream in held {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // Their places come back once the door has closed them.
    let started = Instant::now();
    loop {
        let answer = get(addr, "/metrics", None);
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still refused: {answer}"
        );
    }
    // A request longer than the limit is refused, not buffered.
    let long = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(4096));
    let answer = exchange(addr, long.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}
