//! The wire protocol of the relay-based P2P file sharing system: bytes and
//! messages, and nothing else. No socket, no thread, no clock, no logging:
//! everything here is a value or a pure function over byte slices, `Read`
//! and `Write`, so this crate is docs/PROTOCOL.md you can compile. Living on
//! the network (streams, handshakes, servers) is the `net` crate's.
//!
//! Module map, in the order of docs/PROTOCOL.md's sections:
//! - this file, "Overview" and "Limits": the magic, the version and every
//!   limit a peer checks before it allocates.
//! - [`frame`], "Frames": the preamble (magic and version), the length
//!   prefix, and reading and writing one frame.
//! - [`codec`] (private), "Encoding of the body": the bincode options; every
//!   bincode call lives there, so the codec can be swapped in one file.
//! - [`message`], "Messages" (relay, file, index and relayed-mode messages):
//!   the REQUEST and RESPONSE types and their stable tags.
//! - [`pending`], "Names before hashes": the catalog and who-has forms in
//!   which a file's hash may not be known yet.
//! - [`content`], "Verified ranges": content hashes (BLAKE3), the proof
//!   stream a node sends after a range header, and the decoder that checks
//!   it.
//! - [`punch`], "Hole punching": what the relay tells each side of a punch.
//! - [`keys`], "Private networks": the secret, the relay key, the peer key
//!   and the index key derived from them, and a node's public key.
//! - [`blind`], "The blind index": name and content tags, sealed records,
//!   their messages, and opening the relay's answers.
//! - [`link`], "Links": the `p2p-share:?xt=blake3:...` text that carries a
//!   content's hash, name, size and relays, parsed and printed.
//! - [`error`], "Errors": error kinds, decoding errors worded for a user,
//!   and the helpers that make a peer's text and an OS error printable.

pub mod blind;
mod codec;
pub mod content;
pub mod error;
pub mod frame;
pub mod keys;
pub mod link;
pub mod message;
pub mod pending;
pub mod punch;

pub use content::ContentHash;
pub use error::ProtoError;
pub use keys::NodeKey;
pub use link::{Link, LinkError, LinkRelay};
pub use message::{
    CatalogAck, CatalogEntry, CatalogUpdate, ErrorKind, ErrorReply, FileEntry, FileEntryLong,
    FileHeader, FileList, FileListLong, FileRequest, Holder, HolderList, NodeEntry, NodeInfo,
    NodeMode, RangeHeader, RangeRequest, Registered, Registration, Request, Response, SearchHit,
    SearchQuery, SearchResults, Target,
};
pub use pending::{CatalogUpdateLong, HolderListLong, HolderLong};
pub use punch::{PunchWay, Rendezvous};

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
