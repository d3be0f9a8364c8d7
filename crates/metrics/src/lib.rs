//! The HTTP endpoint that `relay --metrics` and `peer-node --metrics` serve:
//! `/metrics` for Prometheus, `/status` for a person.
//!
//! Module map:
//! - [`endpoint`]: starts it: binds, then runs the door and the site.
//! - `door` (private): the accept loop in front of the HTTP server: its own
//!   connection cap (apart from the protocol port's), a deadline and a
//!   size limit on each request, so a scraper can neither starve the
//!   program nor hold its memory.
//! - `site` (private): the HTTP server (tiny_http) and its pages.
//! - [`format`]: which text format a scraper gets (the `Accept` header):
//!   OpenMetrics, or the classic 0.0.4 format older tools need.
//! - [`families`]: writing metric families from a program's own counters
//!   at scrape time (the programs keep plain atomics; see their
//!   `metrics.rs`).
//! - [`status`]: small helpers for the `/status` pages.
//!
//! Each program defines its metric families in its own `metrics.rs`; this
//! crate knows none of them.

mod door;
pub mod endpoint;
pub mod families;
pub mod format;
mod site;
pub mod status;

pub use endpoint::{Endpoint, Limits, Pages};
pub use format::Format;
/// The Prometheus client the programs write their families with.
pub use prometheus_client;
