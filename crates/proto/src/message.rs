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

use crate::blind::{
    BlindCatalogUpdate, BlindHolderList, BlindTarget, PageRequest, SealedPage, SealedRecord,
};
use crate::content::{ByteRange, ContentHash};
use crate::{
    MAX_FRAME, MAX_HOLDERS, MAX_LIST_FILES, MAX_LIST_NODES, MAX_NAME_LEN, MAX_REQUEST_FRAME,
    MAX_TOKEN_LEN, ProtoError,
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
    /// Tag 5, to a node: send me this range of a file, with the proof that
    /// each byte belongs to its content hash (docs/PROTOCOL.md, "Verified
    /// ranges").
    GetRange(RangeRequest),
    /// Tag 6, to a node: which files do you share, with their sizes and
    /// content hashes?
    ListFilesLong,
    /// Tag 7, to the relay: a change to my catalog (what I share), in
    /// order after the last one the relay applied (docs/PROTOCOL.md,
    /// "Catalogs").
    Catalog(CatalogUpdate),
    /// Tag 8, to the relay: which active nodes hold this name, or this
    /// content?
    WhoHas(Target),
    /// Tag 9, to the relay: which files across the network have names
    /// containing this text?
    Search(SearchQuery),
    // Tags from here on belong to relayed mode (docs/PROTOCOL.md, "Relayed
    // mode"); they stay together and in this order, so renumbering them
    // after other appended variants is mechanical.
    /// Tag 10, from the relay to a node (the dial-back): are you a node?
    /// Any well-formed response proves it.
    Hello,
    /// Tag 11, to the relay: which nodes are active, and how is each reached?
    ListNodesLong,
    /// Tag 12, to the relay: list me as a relayed node. The connection stays
    /// open as the node's control connection.
    Control(Registration),
    /// Tag 13, from a node on its control connection: I am still here.
    Keepalive,
    /// Tag 14, to the relay: join me to this relayed node. After
    /// `CircuitReady` the connection is a byte pipe to the node.
    OpenCircuit(SocketAddr),
    /// Tag 15, from a node to the relay, on a fresh connection: this is my
    /// end of circuit N. After `CircuitReady` it carries the client's bytes.
    JoinCircuit(u64),
    // Names before hashes (docs/PROTOCOL.md, crate::pending).
    /// Tag 16, to the relay: `Catalog`, with files whose hash may not be
    /// known yet. Answered as `Catalog` is.
    CatalogLong(crate::pending::CatalogUpdateLong),
    /// Tag 17, to the relay: `WhoHas`, answered with `HoldersLong`, which
    /// also names the holders still hashing the file.
    WhoHasLong(Target),
    // Hole punching (docs/PROTOCOL.md, "Hole punching"); together and in
    // this order, as above.
    /// Tag 18, to the relay: as `Control`, from a node that also answers
    /// `OpenPunch` on its control connection.
    ControlPunch(Registration),
    /// Tag 19, to the relay: reach this relayed node directly if you can
    /// (`Rendezvous`), else through a circuit (`CircuitReady`). Sent from a
    /// port the client also listens on.
    Punch(SocketAddr),
    /// Tag 20, from a node: this is my side of punch N. To the relay on a
    /// fresh connection from the node's punching port (answered
    /// `Rendezvous`), then to the client as the first frame on the punched
    /// connection (answered `CircuitReady`).
    JoinPunch(u64),
    /// Tag 21, to the relay: which relayed nodes would you try to punch
    /// through to for me? Answered `Nodes`.
    ListPunchable,
    // The blind index of a private network (docs/PROTOCOL.md, "The blind
    // index", crate::blind); together and in this order, as above.
    /// Tag 22, to the relay of a private network: a change to my catalog,
    /// as tags and sealed records (answered with `CatalogAck`).
    BlindCatalog(BlindCatalogUpdate),
    /// Tag 23, to the relay of a private network: which active nodes hold
    /// this name tag, or this content tag?
    BlindWhoHas(BlindTarget),
    /// Tag 24, to the relay of a private network: a page of every record.
    BlindList(PageRequest),
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
    /// Tag 7: the range exists; the encoded range follows the frame: hash
    /// pairs and chunk groups in pre-order (crate::content).
    Range(RangeHeader),
    /// Tag 8: the files this node shares, with their content hashes.
    FilesLong(FileListLong),
    /// Tag 9: the relay's catalog of you is now at `seq` (the answer to a
    /// `Catalog`; another seq than the one sent asks for a full resend).
    CatalogAck(CatalogAck),
    /// Tag 10: who holds the name or content asked for, in registration
    /// order.
    Holders(HolderList),
    /// Tag 11: the files whose names contain the text searched for.
    SearchResults(SearchResults),
    // Relayed mode, as in `Request`.
    /// Tag 12: the answer to `Hello`: a node is listening here.
    Hello,
    /// Tag 13: the active nodes with how each is reached, oldest first.
    NodesLong(Vec<NodeInfo>),
    /// Tag 14, on a control connection: open a data connection for circuit N
    /// (send `JoinCircuit(N)` on it).
    OpenData(u64),
    /// Tag 15: the circuit is joined; from the next byte on, this connection
    /// is a pipe to the other end.
    CircuitReady,
    /// Tag 16: who holds the name or content asked for (`WhoHasLong`),
    /// holders still hashing it included, their hash absent.
    HoldersLong(crate::pending::HolderListLong),
    // Hole punching, as in `Request`.
    /// Tag 17, on a control connection: open a connection from a fresh port
    /// and send `JoinPunch(N)` on it.
    OpenPunch(u64),
    /// Tag 18: the other side of a punch, and how to meet it.
    Rendezvous(crate::punch::Rendezvous),
    // The blind index, as in `Request`.
    /// Tag 19: who holds the tag asked for, each with its sealed record.
    BlindHolders(BlindHolderList),
    /// Tag 20: a page of the relay's sealed records.
    SealedPage(SealedPage),
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
    pub key: Option<crate::keys::NodeKey>,
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

/// What a range request names: a file by its name in the node's shared
/// directory, or any file with this content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// Tag 0: a relative path inside the shared directory, `/`-separated.
    Name(String),
    /// Tag 1: a content hash; a node that holds no file with it answers
    /// [`Response::NotFound`].
    Hash(ContentHash),
}

/// Which content, and which bytes of it. The node clamps `offset + len` to
/// the size (`len` u64::MAX means "to the end"); an offset past the end is
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    pub target: Target,
    pub offset: u64,
    pub len: u64,
}

/// Precedes an encoded range: what content it is, and which bytes (after
/// clamping) the stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeHeader {
    /// The whole content's length in bytes.
    pub size: u64,
    /// The content's BLAKE3 hash: the root every pair and group is checked
    /// against.
    pub hash: ContentHash,
    /// The first byte of the range.
    pub offset: u64,
    /// Bytes in the range; `offset + len <= size`.
    pub len: u64,
}

impl RangeHeader {
    /// The range, checked against the size; None if it is not within it.
    pub fn range(&self) -> Option<ByteRange> {
        ByteRange::clamp(self.size, self.offset, self.len).filter(|r| r.len == self.len)
    }
}

/// A node's shared files with their content hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileListLong {
    pub entries: Vec<FileEntryLong>,
    /// True when the node shares more than it listed.
    pub truncated: bool,
}

/// One shared file: its relative name, size and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntryLong {
    pub name: String,
    pub size: u64,
    /// None while the node has not hashed this version of the file yet.
    pub hash: Option<ContentHash>,
}

/// A change to a node's catalog at the relay. The node is named as in a
/// registration (the relay finds its entry the same way). The relay applies
/// it when `reset` is set (the catalog is replaced by `added`) or when its
/// catalog of the node is at `base_seq`; either way its catalog is then at
/// `seq`. Otherwise it changes nothing and answers its own seq.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogUpdate {
    pub registration: Registration,
    pub base_seq: u64,
    pub seq: u64,
    pub reset: bool,
    /// Files shared now (a name already in the catalog is replaced).
    pub added: Vec<CatalogEntry>,
    /// Names no longer shared.
    pub removed: Vec<String>,
}

/// One file in a catalog: a name inside the node's shared directory, with
/// the size and content hash of its current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    pub size: u64,
    pub hash: ContentHash,
}

/// The relay's answer to a catalog update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogAck {
    /// The seq the relay's catalog of this node is at now.
    pub seq: u64,
    /// Files the relay indexes for this node now.
    pub files: u32,
    /// Entries of this update the relay did not index (limits).
    pub refused: u32,
}

/// The holders of a name or a content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderList {
    /// Active nodes the relay knows (holders or not).
    pub nodes: u32,
    /// Oldest registration first.
    pub holders: Vec<Holder>,
    /// Active nodes that have sent no catalog (just started, or older
    /// nodes without one), oldest first: they may hold it too, and a
    /// client asks them in turn after the holders.
    pub unindexed: Vec<SocketAddr>,
    /// True when more nodes hold it (or are unindexed) than the answer lists.
    pub truncated: bool,
}

/// One node's copy: where it is, its name there, its size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub addr: SocketAddr,
    pub name: String,
    pub size: u64,
    pub hash: ContentHash,
}

/// A search: names containing `text` (ASCII letters match either case); at
/// most `limit` results (the relay may cap it lower).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    pub text: String,
    pub limit: u32,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Active nodes the relay knows.
    pub nodes: u32,
    /// One per name and content, sorted by name then hash.
    pub hits: Vec<SearchHit>,
    /// True when more matched than the answer lists.
    pub truncated: bool,
}

/// A name with one of its contents, and how many nodes hold that pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub name: String,
    pub size: u64,
    pub hash: ContentHash,
    pub holders: u32,
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
            Response::OpenPunch(_) => "punch request",
            Response::Rendezvous(_) => "rendezvous",
            Response::Range(_) => "range",
            Response::FilesLong(_) => "long file listing",
            Response::CatalogAck(_) => "catalog acknowledgement",
            Response::Holders(_) | Response::HoldersLong(_) => "holder list",
            Response::SearchResults(_) => "search results",
            Response::BlindHolders(_) => "blind holder list",
            Response::SealedPage(_) => "page of sealed records",
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
    const TAG_COUNT: u32 = 25;
    const FRAME_LIMIT: u32 = MAX_REQUEST_FRAME;

    fn check_limits(&self) -> Result<(), ProtoError> {
        match self {
            Request::Register(r)
            | Request::Unregister(r)
            | Request::Control(r)
            | Request::ControlPunch(r) => match &r.token {
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
            Request::GetRange(RangeRequest {
                target: Target::Name(name),
                ..
            })
            | Request::WhoHas(Target::Name(name))
            | Request::WhoHasLong(Target::Name(name))
            | Request::Search(SearchQuery { text: name, .. })
                if name.len() > MAX_NAME_LEN =>
            {
                Err(ProtoError::Limit(format!(
                    "file name of {} bytes refused (limit {MAX_NAME_LEN})",
                    name.len()
                )))
            }
            Request::Catalog(update) => check_catalog(
                &update.registration,
                update.added.iter().map(|e| &e.name).chain(&update.removed),
            ),
            Request::CatalogLong(update) => check_catalog(
                &update.registration,
                update.added.iter().map(|e| &e.name).chain(&update.removed),
            ),
            Request::BlindCatalog(update) => {
                check_catalog(&update.registration, std::iter::empty())?;
                check_records(update.added.iter().map(|e| &e.record))
            }
            _ => Ok(()),
        }
    }
}

/// Every sealed record must have one of the bucket lengths: the relay,
/// which cannot open them, keeps nothing else.
fn check_records<'a>(
    mut records: impl Iterator<Item = &'a SealedRecord>,
) -> Result<(), ProtoError> {
    match records.find(|r| !r.has_bucket_len()) {
        Some(r) => Err(ProtoError::Limit(format!(
            "a sealed record of {} bytes refused (records are 128, 256, 512 or 1152 bytes)",
            r.0.len()
        ))),
        None => Ok(()),
    }
}

/// The token and name limits of a catalog update, either form.
fn check_catalog<'a>(
    registration: &Registration,
    mut names: impl Iterator<Item = &'a String>,
) -> Result<(), ProtoError> {
    if registration.token.as_ref().map_or(0, |t| t.len()) > MAX_TOKEN_LEN {
        return Err(ProtoError::Limit(format!(
            "token refused (limit {MAX_TOKEN_LEN} bytes)"
        )));
    }
    match names.find(|n| n.len() > MAX_NAME_LEN) {
        Some(name) => Err(ProtoError::Limit(format!(
            "file name of {} bytes refused (limit {MAX_NAME_LEN})",
            name.len()
        ))),
        None => Ok(()),
    }
}

impl Message for Response {
    const TAG_COUNT: u32 = 21;
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
            Response::FilesLong(list) if list.entries.len() > MAX_LIST_FILES => {
                Err(ProtoError::Limit(format!(
                    "listing of {} files refused (limit {MAX_LIST_FILES})",
                    list.entries.len()
                )))
            }
            Response::Holders(list)
                if list.holders.len() > MAX_HOLDERS || list.unindexed.len() > MAX_HOLDERS =>
            {
                Err(ProtoError::Limit(format!(
                    "list of {} holders and {} unindexed nodes refused (limit {MAX_HOLDERS} each)",
                    list.holders.len(),
                    list.unindexed.len()
                )))
            }
            Response::HoldersLong(list)
                if list.holders.len() > MAX_HOLDERS || list.unindexed.len() > MAX_HOLDERS =>
            {
                Err(ProtoError::Limit(format!(
                    "list of {} holders and {} unindexed nodes refused (limit {MAX_HOLDERS} each)",
                    list.holders.len(),
                    list.unindexed.len()
                )))
            }
            Response::SearchResults(found) if found.hits.len() > MAX_LIST_FILES => {
                Err(ProtoError::Limit(format!(
                    "{} search results refused (limit {MAX_LIST_FILES})",
                    found.hits.len()
                )))
            }
            Response::BlindHolders(list)
                if list.holders.len() > MAX_HOLDERS || list.unindexed.len() > MAX_HOLDERS =>
            {
                Err(ProtoError::Limit(format!(
                    "list of {} holders and {} unindexed nodes refused (limit {MAX_HOLDERS} each)",
                    list.holders.len(),
                    list.unindexed.len()
                )))
            }
            Response::BlindHolders(list) => check_records(list.holders.iter().map(|h| &h.record)),
            Response::SealedPage(page) if page.hits.len() > MAX_LIST_FILES => {
                Err(ProtoError::Limit(format!(
                    "a page of {} records refused (limit {MAX_LIST_FILES})",
                    page.hits.len()
                )))
            }
            Response::SealedPage(page) => check_records(page.hits.iter().map(|h| &h.record)),
            Response::Range(header) if header.range().is_none() => Err(ProtoError::Limit(format!(
                "range {}+{} is not within a content of {} bytes",
                header.offset, header.len, header.size
            ))),
            _ => Ok(()),
        }
    }
}
