//! Starting the endpoint: bind where `--metrics` says, then run the door
//! (accepting, capped) and the site (answering) on threads of their own,
//! apart from the protocol's server: a scraper never takes one of its
//! connection slots, and the protocol never waits for a scrape.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, UnixListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::registry::Registry;

/// What the endpoint serves.
pub struct Pages {
    /// Every metric family of the program (`/metrics`).
    pub registry: Registry,
    /// A plain-text summary for a person (`/status`), made at each request.
    pub status: Box<dyn Fn() -> String + Send + Sync>,
}

/// The endpoint's own limits, apart from the protocol port's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; past it a new one gets `503` and is closed.
    pub max_connections: usize,
    /// Time from accept to the end of the answer, in all.
    pub deadline: Duration,
    /// Most bytes of a request (its line and headers); a scrape needs a few
    /// hundred.
    pub max_request: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 16,
            deadline: Duration::from_secs(10),
            max_request: 8 * 1024,
        }
    }
}

/// A running endpoint; it serves until the process ends.
#[derive(Debug)]
pub struct Endpoint {
    /// Where it listens (with the port chosen, when 0 was asked for).
    pub addr: SocketAddr,
}

impl Endpoint {
    /// Binds `addr` (port 0 takes a free port) and serves `pages` there.
    /// The error names the address: `could not listen on 127.0.0.1:9100
    /// for metrics: address already in use`.
    pub fn start(addr: SocketAddr, pages: Pages, limits: Limits) -> io::Result<Endpoint> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not listen on {addr} for metrics: {}", reason(&e)),
            )
        })?;
        let local = listener.local_addr()?;
        let hop = hop_address()?;
        let inner = UnixListener::bind_addr(&hop)?;
        crate::site::start(inner, pages)?;
        crate::door::start(listener, hop, limits)?;
        Ok(Endpoint { addr: local })
    }
}

/// Where the door hands requests to the site: a Unix socket in the
/// abstract namespace (Linux), unique to this endpoint, with no file to
/// create or remove (the units run with a read-only file system).
fn hop_address() -> io::Result<net::SocketAddr> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "p2p-metrics-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    net::SocketAddr::from_abstract_name(name.as_bytes())
}

/// An I/O error's reason without the "(os error N)" noise.
pub(crate) fn reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_lowercase(),
        None => text,
    }
}
