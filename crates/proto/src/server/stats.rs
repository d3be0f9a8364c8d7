//! What the server skeleton counts for the programs' metrics: connections
//! being served, and connections refused before any handler saw them.
//!
//! Process-wide, as a Prometheus client's default registry is: a program
//! runs one server, and a count is an atomic add on a path that already
//! takes a lock and makes a thread switch, so it costs nothing measurable.

use std::sync::atomic::{AtomicU64, Ordering};

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
        self.served
            .load(Ordering::Relaxed)
            .saturating_sub(finished)
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
