//! The wire protocol of the relay-based P2P file sharing system, and the
//! networking pieces the relay, the peer node and the client share.
//!
//! Module map:
//! - [`frame`]: the only place that knows bytes on the wire: the preamble
//!   (magic and version), the length prefix, and the limits checked before
//!   anything is allocated.
//! - [`codec`] (private): the bincode options; every bincode call lives there,
//!   so the codec can be swapped in one file.
//! - [`message`]: the REQUEST and RESPONSE types and their stable tags.
//! - [`content`]: content hashes (BLAKE3) and verified ranges: the proof
//!   stream a node sends after a range header, and the reader that checks it.
//! - [`exchange`]: the client side of one exchange: connect with a timeout,
//!   send one request, read one response (and a file body), close.
//! - [`stream`]: the bytes under every exchange: a socket in the clear, or
//!   inside a Noise session; sendfile for plain file bodies.
//! - [`secure`]: private networks: keys, the Noise handshake, the
//!   encrypted `Read + Write` adapter.
//! - [`blind`]: the blind index of a private network: name and content
//!   tags, sealed records, their messages, and opening the relay's answers.
//! - [`circuit`]: the client's and the node's end of a relayed circuit:
//!   ask the relay, wait until it has joined, then an ordinary exchange.
//! - [`server`]: the one server skeleton used by relay and node: accept loop,
//!   connection caps, request deadline, thread per connection, graceful close.
//! - [`error`]: what can go wrong on the wire, worded for a user.
//! - [`logging`]: one log line per event, with time and level, on stderr;
//!   servers queue lines for a writer thread so a stuck log reader never
//!   stalls them (past a bound, lines are dropped and counted), exits wait
//!   for the queue a bounded time; a line that cannot be written is dropped.
//! - [`crucial`]: threads a program cannot live without; a panic on one
//!   ends the process instead of leaving it half alive.
//! - [`cli`]: command-line flags every binary shares (limits, `-v`/`-q`).
//!
//! Protocol constants live here; docs/PROTOCOL.md describes every byte.

pub mod blind;
pub mod circuit;
pub mod cli;
mod codec;
pub mod content;
pub mod crucial;
pub mod error;
pub mod exchange;
pub mod frame;
pub mod logging;
pub mod message;
pub mod secure;
pub mod server;
pub mod stream;

pub use content::ContentHash;
pub use error::ProtoError;
pub use message::{
    CatalogAck, CatalogEntry, CatalogUpdate, ErrorKind, ErrorReply, FileEntry, FileEntryLong,
    FileHeader, FileList, FileListLong, FileRequest, Holder, HolderList, NodeEntry, NodeInfo,
    NodeMode, RangeHeader, RangeRequest, Registered, Registration, Request, Response, SearchHit,
    SearchQuery, SearchResults, Target,
};

/// First bytes of every request and every response, so a wrong program (an
/// HTTP client, a TLS handshake, a port scanner) gets a clear error, not garbage.
pub const MAGIC: [u8; 4] = *b"P2PF";

/// Protocol version sent after the magic. New messages get new tags and keep
/// this version; only an incompatible change of existing messages bumps it.
pub const VERSION: u16 = 1;

/// Largest frame body accepted in a response (a node list, a file listing).
/// 4 MiB holds 100 000 IPv6 node entries with room to spare.
pub const MAX_FRAME: u32 = 4 * 1024 * 1024;

/// Largest frame body accepted in a request. Requests are small: the longest
/// is a file name of [`MAX_NAME_LEN`] bytes plus a few fields.
pub const MAX_REQUEST_FRAME: u32 = 16 * 1024;

/// Longest file name (a relative path, in bytes) a node accepts; Linux's PATH_MAX.
pub const MAX_NAME_LEN: usize = 4096;

/// Most nodes a relay lists and a client accepts in one answer.
pub const MAX_LIST_NODES: usize = 100_000;

/// Most entries a node lists in one file listing; the rest is marked truncated.
pub const MAX_LIST_FILES: usize = 10_000;

/// Longest registration token accepted.
pub const MAX_TOKEN_LEN: usize = 256;

/// Most holders a who-has answer lists (oldest registration first); a
/// client needs one that works, and each holder costs up to a name's length.
pub const MAX_HOLDERS: usize = 1_000;
