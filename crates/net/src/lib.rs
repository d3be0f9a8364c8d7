//! Living on the network: everything the relay, the node and the client
//! need to move the wire's messages (`proto`) over real sockets. It builds
//! on `proto` (bytes and messages) and `plumbing` (logging, crucial threads);
//! neither knows this crate.
//!
//! Module map, from the socket up:
//! - [`sendfile`]: a plain file body onto a socket with sendfile(2).
//! - [`secure`]: private networks at run time: node identities and their
//!   key files, the Noise handshake (both sides) and the encrypted
//!   `Read + Write` transport.
//! - [`stream`]: the bytes under every exchange: a socket in the clear, or
//!   inside a Noise session; deadlines; sendfile for plain file bodies.
//! - [`exchange`]: the client side of one exchange: connect with a timeout,
//!   send one request, read one response (and a file body), close.
//! - [`circuit`]: the client's and the node's end of a relayed circuit:
//!   ask the relay, wait until it has joined, then an ordinary exchange.
//! - [`punch`]: hole punching: a client and a relayed node connect to each
//!   other directly, the relay telling each the other's address; the
//!   client's way falls back to the circuit.
//! - [`prefetch`]: the thread that reads a verified range's socket into
//!   large blocks while the caller hashes the last one.
//! - [`server`]: the one server skeleton used by relay and node: accept loop,
//!   connection caps, request deadline, thread per connection, file bodies
//!   and verified ranges (sendfile, splice), graceful close.

pub mod circuit;
pub mod exchange;
pub mod prefetch;
pub mod punch;
pub mod secure;
pub mod sendfile;
pub mod server;
pub mod stream;

pub use prefetch::Prefetch;
