//! What the server skeleton counts for the programs' metrics: connections
//! being served, and connections refused before any handler saw them.
//!
//! Process-wide, as a Prometheus client's default registry is: a program
//! runs one server, and a count is an atomic add on a path that already
//! takes a lock and makes a thread switch, so it costs nothing measurable.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Answered;
use proto::ErrorKind;

/// The outcome of a request, as a metric's label: what was answered
/// ([`Answered`]), or `failed` when the exchange broke off.
pub const OUTCOMES: [&str; 12] = [
    "ok",
    "not_found",
    "bad_request",
    "busy",
    "forbidden",
    "unauthorized",
    "unsupported_version",
    "internal",
    "out_of_range",
    "unreachable",
    "other_error",
    "failed",
];

/// The index in [`OUTCOMES`] of a handler's outcome: `failed` when it
/// returned an error, else what it answered (nothing sent through the
/// reply, as on a control connection, counts as `ok`).
pub fn outcome(failed: bool, answered: Option<Answered>) -> usize {
    if failed {
        return 11;
    }
    match answered {
        None | Some(Answered::Ok) => 0,
        Some(Answered::NotFound) => 1,
        Some(Answered::Error(kind)) => match kind {
            ErrorKind::BadRequest => 2,
            ErrorKind::Busy => 3,
            ErrorKind::Forbidden => 4,
            ErrorKind::Unauthorized => 5,
            ErrorKind::UnsupportedVersion => 6,
            ErrorKind::Internal => 7,
            ErrorKind::OutOfRange => 8,
            ErrorKind::Unreachable => 9,
            ErrorKind::Other(_) => 10,
        },
    }
}

/// The skeleton's counts; read them with [`stats`].
#[derive(Debug, Default)]
pub struct ServerStats {
    served: AtomicU64,
    finished: AtomicU64,
    refused_busy: AtomicU64,
    handshakes_failed: AtomicU64,
}

static STATS: ServerStats = ServerStats {
    served: AtomicU64::new(0),
    finished: AtomicU64::new(0),
    refused_busy: AtomicU64::new(0),
    handshakes_failed: AtomicU64::new(0),
};

/// This process's counts.
pub fn stats() -> &'static ServerStats {
    &STATS
}

impl ServerStats {
    /// Connections being served now (admitted, not yet closed).
    pub fn in_flight(&self) -> u64 {
        // Read `finished` first: a connection that ends between the two
        // reads is then counted as still in flight, never as less than 0.
        let finished = self.finished.load(Ordering::Relaxed);
        self.served.load(Ordering::Relaxed).saturating_sub(finished)
    }

    /// Connections answered `busy` at a connection cap, in all.
    pub fn refused_busy(&self) -> u64 {
        self.refused_busy.load(Ordering::Relaxed)
    }

    /// Connections whose handshake failed (private networks), in all.
    pub fn handshakes_failed(&self) -> u64 {
        self.handshakes_failed.load(Ordering::Relaxed)
    }

    /// Counts a connection in flight until the guard drops.
    pub(crate) fn serving(&'static self) -> Serving {
        self.served.fetch_add(1, Ordering::Relaxed);
        Serving(self)
    }

    pub(crate) fn note_busy(&self) {
        self.refused_busy.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn note_handshake_failed(&self) {
        self.handshakes_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection being served; counted finished on drop.
pub(crate) struct Serving(&'static ServerStats);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}
/// Requests counted by kind (a program's own list of kinds, `K` of them)
/// and by [`OUTCOMES`].
pub type RequestCounts<const K: usize> = [[AtomicU64; OUTCOMES.len()]; K];

/// A handler with each request counted by kind and outcome, for a
/// program's metrics: the relay and the node each say what the kinds are
/// (`kind`) and where the counts live.
pub struct Metered<H, const K: usize> {
    pub handler: H,
    pub kind: fn(&proto::Request) -> usize,
    pub counts: &'static RequestCounts<K>,
}

impl<H: super::Handler, const K: usize> super::Handler for Metered<H, K> {
    fn role(&self) -> &'static str {
        self.handler.role()
    }

    fn handle(
        &self,
        request: proto::Request,
        reply: &mut super::Reply<'_>,
    ) -> Result<(), proto::ProtoError> {
        let kind = (self.kind)(&request);
        let result = self.handler.handle(request, reply);
        let outcome = outcome(result.is_err(), reply.answered());
        self.counts[kind][outcome].fetch_add(1, Ordering::Relaxed);
        result
    }
}
