//! Finding who holds a file on the BitTorrent Mainline DHT (BEP 5), without
//! any relay: holders announce a DHT id derived from each file's BLAKE3
//! hash, and clients look that id up. Every byte fetched from a holder found
//! here is still checked against the hash, so the DHT, which anyone can
//! write to, only ever suggests addresses.
//!
//! Built on the `mainline` crate's blocking API (patched for short
//! transaction ids: docs/MAINLINE_TID.md); no async runtime.
//!
//! Module map:
//! - [`id`]: the derived id of a file, plain or keyed with a private
//!   network's key (vectors in docs/vectors/dht/dht_ids.json).
//! - [`bootstrap`]: the bootstrap list: the public routers when none is
//!   given, else only the given `HOST:PORT`s.
//! - [`node`]: the local DHT node (one UDP socket, mainline's thread).
//! - [`schedule`]: when each announce goes out, as plain data: first at once,
//!   again before storing nodes forget it, spread out, rate-limited.
//! - [`announcer`]: the worker threads that run the schedule.
//! - [`telling`]: what to tell the user about the announces, as plain data.
//! - [`lookup`]: `get_peers` for a file's id, bounded in time, returning
//!   candidate holders.
//! - [`testnet`]: a DHT of its own on loopback, for tests and benchmarks.

pub mod announcer;
pub mod bootstrap;
pub mod id;
pub mod lookup;
pub mod node;
pub mod schedule;
pub mod telling;
pub mod testnet;

pub use announcer::{AnnounceConfig, Announcer, Report};
pub use bootstrap::Bootstrap;
pub use id::{DhtId, NetworkKey};
pub use lookup::{Holders, Lookup};
pub use node::{DhtNode, NodeConfig};
pub use schedule::ScheduleConfig;
pub use telling::{Tell, Telling};
pub use testnet::LocalDht;
