//! The REQUEST and RESPONSE messages.
//!
//! Tags are the position of a variant in its enum (bincode writes it as a
//! big-endian u32), so **variants are only ever appended, never reordered or
//! removed**. Each variant states its tag; the tag tests in `tests/frames.rs`
//! and the hex dumps in docs/PROTOCOL.md fail if one moves. A peer that
//! receives a tag it does not know answers with [`ErrorKind::BadRequest`], so
//! an older node tells a newer client plainly what it cannot do.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::{
    MAX_FRAME, MAX_LIST_FILES, MAX_LIST_NODES, MAX_NAME_LEN, MAX_REQUEST_FRAME, MAX_TOKEN_LEN,
    ProtoError,
};

/// What a client (or a node talking to the relay) asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Tag 0, to the relay: list me (or refresh my entry; this is also the heartbeat).
    Register(Registration),
    /// Tag 1, to the relay: I am leaving, drop my entry now.
    Unregister(Registration),
    /// Tag 2, to the relay: which nodes are active?
    ListNodes,
    /// Tag 3, to a node: send me this file (from `offset`, to resume a failed transfer).
    GetFile(FileRequest),
    /// Tag 4, to a node: which files do you share?
    ListFiles,
    // Tags from here on belong to relayed mode (docs/PROTOCOL.md, "Relayed
    // mode"); they stay together and in this order, so renumbering them
    // after other appended variants is mechanical.
    /// Tag 5, from the relay to a node (the dial-back): are you a node?
    /// Any well-formed response proves it.
    Hello,
    /// Tag 6, to the relay: which nodes are active, and how is each reached?
    ListNodesLong,
    /// Tag 7, to the relay: list me as a relayed node. The connection stays
    /// open as the node's control connection.
    Control(Registration),
    /// Tag 8, from a node on its control connection: I am still here.
    Keepalive,
    /// Tag 9, to the relay: join me to this relayed node. After
    /// `CircuitReady` the connection is a byte pipe to the node.
    OpenCircuit(SocketAddr),
    /// Tag 10, from a node to the relay, on a fresh connection: this is my
    /// end of circuit N. After `CircuitReady` it carries the client's bytes.
    JoinCircuit(u64),
}

/// What the relay or a node answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Tag 0: you are listed under `addr` and must refresh within `ttl_secs`.
    Registered(Registered),
    /// Tag 1: your entry is gone.
    Unregistered,
    /// Tag 2: the active nodes, oldest registration first.
    Nodes(Vec<NodeEntry>),
    /// Tag 3: the file exists; exactly `size - offset` raw bytes follow the frame.
    File(FileHeader),
    /// Tag 4: this node does not have the file.
    NotFound,
    /// Tag 5: the files this node shares.
    Files(FileList),
    /// Tag 6: the request was refused or failed; `message` says why.
    Error(ErrorReply),
    // Relayed mode, as in `Request`.
    /// Tag 7: the answer to `Hello`: a node is listening here.
    Hello,
    /// Tag 8: the active nodes with how each is reached, oldest first.
    NodesLong(Vec<NodeInfo>),
    /// Tag 9, on a control connection: open a data connection for circuit N
    /// (send `JoinCircuit(N)` on it).
    OpenData(u64),
    /// Tag 10: the circuit is joined; from the next byte on, this connection
    /// is a pipe to the other end.
    CircuitReady,
}

/// A node's announcement: the port it serves on. The relay takes the IP from
/// the connection it sees, unless it trusts `advertised_ip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub port: u16,
    pub advertised_ip: Option<IpAddr>,
    pub token: Option<String>,
}

/// The relay's answer to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The address clients will be given for this node.
    pub addr: SocketAddr,
    /// Seconds after which the relay drops an entry that was not refreshed.
    pub ttl_secs: u32,
}

/// One active node in the relay's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub addr: SocketAddr,
    /// Whole seconds since the node last registered or refreshed.
    pub age_secs: u32,
}

/// One active node in the relay's long list: where it is listed, and how
/// a client reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// For a direct node, where to connect; for a relayed node, its name at
    /// the relay (the address its control connection comes from).
    pub addr: SocketAddr,
    /// Whole seconds since the node last registered or refreshed.
    pub age_secs: u32,
    pub mode: NodeMode,
    /// In a private network, the node's static public key, as its
    /// registration handshake proved it; a client accepts the node only if
    /// its handshake proves the same key. None in the clear.
    pub key: Option<crate::secure::NodeKey>,
}

/// How a client reaches a node. Sent as a big-endian u32 code, like
/// [`ErrorKind`]; an unknown code (a newer relay) decodes as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "u32", into = "u32")]
pub enum NodeMode {
    /// Code 0: the relay dialled its address back; connect to it directly.
    Direct,
    /// Code 1: only through a circuit at the relay (`OpenCircuit`).
    Relayed,
    /// Any other code, from a newer relay.
    Other(u32),
}

impl From<u32> for NodeMode {
    fn from(code: u32) -> NodeMode {
        match code {
            0 => NodeMode::Direct,
            1 => NodeMode::Relayed,
            other => NodeMode::Other(other),
        }
    }
}

impl From<NodeMode> for u32 {
    fn from(mode: NodeMode) -> u32 {
        match mode {
            NodeMode::Direct => 0,
            NodeMode::Relayed => 1,
            NodeMode::Other(code) => code,
        }
    }
}

impl NodeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeMode::Direct => "direct",
            NodeMode::Relayed => "relayed",
            NodeMode::Other(_) => "unknown mode",
        }
    }
}

/// Which file, and from which byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRequest {
    /// A relative path inside the node's shared directory, `/`-separated.
    pub name: String,
    pub offset: u64,
}

/// Precedes the raw bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHeader {
    /// The whole file's length in bytes.
    pub size: u64,
    /// The first byte sent; `size - offset` bytes follow.
    pub offset: u64,
}

impl FileHeader {
    /// How many raw bytes follow the header.
    pub fn body_len(&self) -> u64 {
        self.size.saturating_sub(self.offset)
    }
}

/// A node's shared files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    pub entries: Vec<FileEntry>,
    /// True when the node shares more than it listed.
    pub truncated: bool,
}

/// One shared file: its relative name and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
}

/// A refusal or failure, with a reason a user can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
}

/// Why a request was not served. Sent as a big-endian u32 code; a code this
/// program does not know (from a newer peer) decodes as [`ErrorKind::Other`],
/// so the reply's message still reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "u32", into = "u32")]
pub enum ErrorKind {
    /// Code 0: the request could not be decoded or is not for this server.
    BadRequest,
    /// Code 1: the server is at its connection cap; try again later.
    Busy,
    /// Code 2: the name is not allowed (docs/PROTOCOL.md, "Which names a node serves").
    Forbidden,
    /// Code 3: the registration token is missing or wrong.
    Unauthorized,
    /// Code 4: the protocol version is not supported.
    UnsupportedVersion,
    /// Code 5: the server failed (cannot read the file, ...).
    Internal,
    /// Code 6: the requested offset is past the end of the file (HTTP's 416).
    /// Added after the first release: an older peer reads it as `Other(6)`.
    OutOfRange,
    /// Code 7: the relay could not connect back to the address it would
    /// list: the node is not reachable there (behind NAT, a firewall, or
    /// nothing listens); a node may then ask to be relayed (`Control`).
    Unreachable,
    /// Any other code, from a newer peer.
    Other(u32),
}

impl From<u32> for ErrorKind {
    fn from(code: u32) -> ErrorKind {
        match code {
            0 => ErrorKind::BadRequest,
            1 => ErrorKind::Busy,
            2 => ErrorKind::Forbidden,
            3 => ErrorKind::Unauthorized,
            4 => ErrorKind::UnsupportedVersion,
            5 => ErrorKind::Internal,
            6 => ErrorKind::OutOfRange,
            7 => ErrorKind::Unreachable,
            other => ErrorKind::Other(other),
        }
    }
}

impl From<ErrorKind> for u32 {
    fn from(kind: ErrorKind) -> u32 {
        match kind {
            ErrorKind::BadRequest => 0,
            ErrorKind::Busy => 1,
            ErrorKind::Forbidden => 2,
            ErrorKind::Unauthorized => 3,
            ErrorKind::UnsupportedVersion => 4,
            ErrorKind::Internal => 5,
            ErrorKind::OutOfRange => 6,
            ErrorKind::Unreachable => 7,
            ErrorKind::Other(code) => code,
        }
    }
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad request",
            ErrorKind::Busy => "busy",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::UnsupportedVersion => "unsupported version",
            ErrorKind::Internal => "internal error",
            ErrorKind::OutOfRange => "offset out of range",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Other(_) => "error",
        }
    }
}

impl Response {
    /// What the response is, in a few words, for a message about an
    /// unexpected answer.
    pub fn name(&self) -> &'static str {
        match self {
            Response::Registered(_) => "registration",
            Response::Unregistered => "unregistration",
            Response::Nodes(_) | Response::NodesLong(_) => "node list",
            Response::File(_) => "file",
            Response::NotFound => "not-found",
            Response::Files(_) => "file listing",
            Response::Error(_) => "error",
            Response::Hello => "hello",
            Response::OpenData(_) => "data-connection request",
            Response::CircuitReady => "circuit-ready",
        }
    }

    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error(ErrorReply {
            kind,
            message: message.into(),
        })
    }
}

/// A message type that can travel in a frame.
pub trait Message: Serialize + serde::de::DeserializeOwned {
    /// Number of tags this program knows; a tag at or past it is unknown.
    const TAG_COUNT: u32;

    /// Largest frame body accepted for this message type.
    const FRAME_LIMIT: u32;

    /// Checks limits that the codec's byte limit alone does not express.
    fn check_limits(&self) -> Result<(), ProtoError>;
}

impl Message for Request {
    const TAG_COUNT: u32 = 11;
    const FRAME_LIMIT: u32 = MAX_REQUEST_FRAME;

    fn check_limits(&self) -> Result<(), ProtoError> {
        match self {
            Request::Register(r) | Request::Unregister(r) | Request::Control(r) => match &r.token {
                Some(t) if t.len() > MAX_TOKEN_LEN => Err(ProtoError::Limit(format!(
                    "token of {} bytes refused (limit {MAX_TOKEN_LEN})",
                    t.len()
                ))),
                _ => Ok(()),
            },
            Request::GetFile(f) if f.name.len() > MAX_NAME_LEN => Err(ProtoError::Limit(format!(
                "file name of {} bytes refused (limit {MAX_NAME_LEN})",
                f.name.len()
            ))),
            _ => Ok(()),
        }
    }
}

impl Message for Response {
    const TAG_COUNT: u32 = 11;
    const FRAME_LIMIT: u32 = MAX_FRAME;

    fn check_limits(&self) -> Result<(), ProtoError> {
        match self {
            Response::Nodes(nodes) if nodes.len() > MAX_LIST_NODES => {
                Err(ProtoError::Limit(format!(
                    "list of {} nodes refused (limit {MAX_LIST_NODES})",
                    nodes.len()
                )))
            }
            Response::NodesLong(nodes) if nodes.len() > MAX_LIST_NODES => {
                Err(ProtoError::Limit(format!(
                    "list of {} nodes refused (limit {MAX_LIST_NODES})",
                    nodes.len()
                )))
            }
            Response::Files(list) if list.entries.len() > MAX_LIST_FILES => {
                Err(ProtoError::Limit(format!(
                    "listing of {} files refused (limit {MAX_LIST_FILES})",
                    list.entries.len()
                )))
            }
            _ => Ok(()),
        }
    }
}
