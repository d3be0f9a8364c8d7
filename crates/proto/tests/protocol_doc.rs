//! docs/PROTOCOL.md and docs/vectors/ hold the real bytes of the protocol.
//!
//! - Every file in docs/vectors/ (one message: its fields in a neutral form
//!   and its bytes as hex, see docs/vectors/README.md) is checked against
//!   the value this file lists under the same name: the encoder must produce
//!   the bytes, the decoder must read them back as the value, and the fields
//!   must be the value's. A file without a value here, or a value without a
//!   file, fails.
//! - Every message tag and every error code this version defines must appear
//!   in some vector, so a new message cannot be added without one.
//! - Every file in docs/vectors/malformed/ must fail to decode with the error
//!   it names, and every error name must have a file.
//! - Every fenced block of docs/PROTOCOL.md with the info string `hex id=NAME`
//!   must hold the bytes of vector NAME (`hex id=malformed/NAME` those of a
//!   malformed one), so the annotated dumps cannot drift either.
//!   A `Range` vector with `stream_len` (a stream too long to spell out)
//!   is shown there as its frame alone.
//!
//! A failure prints the bytes the code produces, ready to paste.
//!
//! A line of a dump is hex byte pairs separated by single spaces, then at
//! least two spaces and an annotation, which is ignored. A line that starts
//! with two spaces carries only an annotation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use proto::blind::{
    BlindCatalogUpdate, BlindEntry, BlindHolder, BlindHolderList, BlindTarget, IndexKey,
    PageRequest, Record, SealedHit, SealedPage, Tag,
};
use proto::content::{ByteRange, CHUNK_GROUP, ContentHash, RangeDecoder, encode_to_vec};
use proto::{
    CatalogAck, CatalogEntry, CatalogUpdate, CatalogUpdateLong, ErrorKind, ErrorReply, FileEntry,
    FileEntryLong, FileHeader, FileList, FileListLong, FileRequest, Holder, HolderList,
    HolderListLong, HolderLong, NodeEntry, NodeInfo, NodeMode, ProtoError, PunchWay, RangeHeader,
    RangeRequest, Registered, Registration, Rendezvous, Request, Response, SearchHit, SearchQuery,
    SearchResults, Target, frame,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// The values. To add a vector: write docs/vectors/NAME.json and add one
// entry below under NAME. A new message variant also needs its arm in
// `request_json` or `response_json` (the compiler asks for it).

/// A message of either direction.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Request(Request),
    Response(Response),
}

/// The value a vector encodes, and the raw file bytes that follow its frame
/// on the wire (empty except after a `File` or `Range` header).
struct Example {
    msg: Msg,
    file_bytes: &'static [u8],
    /// For a `Range` response whose stream is too long to spell out: its
    /// length (the vector's `stream_len`); `file_bytes` is then empty.
    stream_len: Option<u64>,
}

fn request(msg: Request) -> Example {
    Example {
        msg: Msg::Request(msg),
        file_bytes: b"",
        stream_len: None,
    }
}

fn response(msg: Response) -> Example {
    Example {
        msg: Msg::Response(msg),
        file_bytes: b"",
        stream_len: None,
    }
}

fn file(size: u64, offset: u64, file_bytes: &'static [u8]) -> Example {
    Example {
        msg: Msg::Response(Response::File(FileHeader { size, offset })),
        file_bytes,
        stream_len: None,
    }
}

/// A range of hello.txt: the header, then the encoded range (for a content
/// of one chunk group, the group's bytes alone).
fn range(offset: u64, len: u64, stream: &'static [u8]) -> Example {
    Example {
        msg: Msg::Response(Response::Range(RangeHeader {
            size: 6,
            hash: ContentHash::of(b"hello\n"),
            offset,
            len,
        })),
        file_bytes: stream,
        stream_len: None,
    }
}

/// A `Range` header for a range whose encoded stream is too long for a
/// vector: the vector gives its length (`stream_len`) instead of its bytes.
fn range_header_only(header: RangeHeader) -> Example {
    let range = header.range().expect("a range within its size");
    Example {
        msg: Msg::Response(Response::Range(header)),
        file_bytes: b"",
        stream_len: Some(proto::content::encoded_len(header.size, range)),
    }
}

fn get_file(name: &str, offset: u64) -> Example {
    request(Request::GetFile(FileRequest {
        name: name.into(),
        offset,
    }))
}

fn error(kind: ErrorKind, message: &str) -> Example {
    response(Response::error(kind, message))
}

/// BLAKE3 of `hello\n`, the content of most examples.
fn hello_hash() -> ContentHash {
    ContentHash::of(b"hello\n")
}

fn node_v4() -> SocketAddr {
    "192.0.2.10:4000".parse().unwrap()
}

fn node_v6() -> SocketAddr {
    "[2001:db8::7]:4001".parse().unwrap()
}

/// A relayed node, listed under its control connection's address.
fn relayed() -> SocketAddr {
    "203.0.113.5:41234".parse().unwrap()
}

/// The index key of the blind index examples: the secret `s3cret`'s, as in
/// docs/vectors/secure/blind-index.json.
fn index_key() -> IndexKey {
    IndexKey::of(&proto::keys::NetworkKeys::from_secret(b"s3cret")).unwrap()
}

/// hello.txt as the blind index holds it: its two tags and its record.
fn hello_entry() -> BlindEntry {
    let key = index_key();
    let record = Record {
        name: "hello.txt".into(),
        size: 6,
        hash: hello_hash(),
    };
    BlindEntry {
        name_tag: key.name_tag(&record.name),
        content_tag: key.content_tag(&record.hash),
        record: key.seal(&record).unwrap(),
    }
}

/// The circuit of the relayed-mode examples (below 2^53, see the README).
const CIRCUIT: u64 = 0x1f2e_3d4c_5b6a;

/// The punch of the hole-punching examples (below 2^53, see the README).
const PUNCH: u64 = 0x0a1b_2c3d_4e5f;

/// A client on the open network, as the relay sees its `Punch` connection.
fn client_seen() -> SocketAddr {
    "198.51.100.7:50123".parse().unwrap()
}

/// A relayed node's `JoinPunch` connection, as the relay sees it: the NAT's
/// public address, and the port it mapped the node's punching port to.
fn node_punching() -> SocketAddr {
    "203.0.113.5:41300".parse().unwrap()
}

/// The value of every vector in docs/vectors/, by name.
fn examples() -> BTreeMap<&'static str, Example> {
    let registration = |advertised_ip: Option<IpAddr>, token: Option<&str>| Registration {
        port: 4000,
        advertised_ip,
        token: token.map(String::from),
    };
    // A multi-source fetch: the second 2 MiB piece of a 48 MiB content.
    let piece_hash: ContentHash =
        "blake3:2fc553ba0cc3fbcd2c5cf4a4f68b43bae08b78749a4494e6572cb8e9a9d0c43c"
            .parse()
            .unwrap();
    let entries = [
        (
            "register-request",
            request(Request::Register(registration(
                Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
                Some("s3cret"),
            ))),
        ),
        (
            "registered-response",
            response(Response::Registered(Registered {
                addr: node_v4(),
                ttl_secs: 30,
            })),
        ),
        (
            "unregister-request",
            request(Request::Unregister(registration(None, None))),
        ),
        ("unregistered-response", response(Response::Unregistered)),
        ("list-nodes-request", request(Request::ListNodes)),
        (
            "nodes-response",
            response(Response::Nodes(vec![
                NodeEntry {
                    addr: node_v4(),
                    age_secs: 3,
                },
                NodeEntry {
                    addr: node_v6(),
                    age_secs: 12,
                },
            ])),
        ),
        ("get-file-request", get_file("hello.txt", 0)),
        ("file-response", file(6, 0, b"hello\n")),
        ("resume-request", get_file("hello.txt", 2)),
        ("resume-response", file(6, 2, b"llo\n")),
        ("at-end-request", get_file("hello.txt", 6)),
        ("at-end-response", file(6, 6, b"")),
        ("past-end-request", get_file("hello.txt", 7)),
        (
            "past-end-response",
            error(ErrorKind::OutOfRange, "offset 7 is past the end (6 bytes)"),
        ),
        ("missing-request", get_file("nope.txt", 0)),
        ("not-found-response", response(Response::NotFound)),
        ("forbidden-request", get_file("../etc/passwd", 0)),
        (
            "forbidden-response",
            error(ErrorKind::Forbidden, "name leaves the shared directory"),
        ),
        ("list-files-request", request(Request::ListFiles)),
        (
            "files-response",
            response(Response::Files(FileList {
                entries: vec![
                    FileEntry {
                        name: "docs/a.pdf".into(),
                        size: 1_048_576,
                    },
                    FileEntry {
                        name: "hello.txt".into(),
                        size: 6,
                    },
                ],
                truncated: false,
            })),
        ),
        (
            "unknown-tag-response",
            error(
                ErrorKind::BadRequest,
                &ProtoError::UnknownTag(999).to_string(),
            ),
        ),
        (
            "busy-response",
            error(
                ErrorKind::Busy,
                "server busy: 1024 connections open (limit 1024)",
            ),
        ),
        (
            "unauthorized-response",
            error(
                ErrorKind::Unauthorized,
                "registration refused: wrong token (this relay requires --token)",
            ),
        ),
        (
            "unsupported-version-response",
            error(
                ErrorKind::UnsupportedVersion,
                &ProtoError::UnsupportedVersion(2).to_string(),
            ),
        ),
        (
            "internal-response",
            error(
                ErrorKind::Internal,
                "cannot read the file: permission denied",
            ),
        ),
        (
            "unknown-error-kind-response",
            error(ErrorKind::Other(99), "a reason from the future"),
        ),
        (
            "get-range-request",
            request(Request::GetRange(RangeRequest {
                target: Target::Name("hello.txt".into()),
                offset: 0,
                len: 1 << 40,
            })),
        ),
        (
            "get-range-by-hash-request",
            request(Request::GetRange(RangeRequest {
                target: Target::Hash(hello_hash()),
                offset: 2,
                len: 3,
            })),
        ),
        ("range-response", range(0, 6, b"hello\n")),
        ("range-part-response", range(2, 3, b"hello\n")),
        (
            "mid-range-request",
            request(Request::GetRange(RangeRequest {
                target: Target::Hash(piece_hash),
                offset: 2_097_152,
                len: 2_097_152,
            })),
        ),
        (
            "mid-range-response",
            range_header_only(RangeHeader {
                size: 50_331_648,
                hash: piece_hash,
                offset: 2_097_152,
                len: 2_097_152,
            }),
        ),
        ("list-files-long-request", request(Request::ListFilesLong)),
        (
            "files-long-response",
            response(Response::FilesLong(FileListLong {
                entries: vec![
                    FileEntryLong {
                        name: "big.iso".into(),
                        size: 4_700_000_000,
                        hash: None,
                    },
                    FileEntryLong {
                        name: "hello.txt".into(),
                        size: 6,
                        hash: Some(ContentHash::of(b"hello\n")),
                    },
                ],
                truncated: false,
            })),
        ),
        (
            "catalog-request",
            request(Request::Catalog(CatalogUpdate {
                registration: registration(None, None),
                base_seq: 0,
                seq: 1,
                reset: true,
                added: vec![CatalogEntry {
                    name: "hello.txt".into(),
                    size: 6,
                    hash: hello_hash(),
                }],
                removed: vec![],
            })),
        ),
        (
            "catalog-delta-request",
            request(Request::Catalog(CatalogUpdate {
                registration: registration(None, None),
                base_seq: 1,
                seq: 2,
                reset: false,
                added: vec![],
                removed: vec!["hello.txt".into()],
            })),
        ),
        (
            "catalog-ack-response",
            response(Response::CatalogAck(CatalogAck {
                seq: 1,
                files: 1,
                refused: 0,
            })),
        ),
        (
            "who-has-request",
            request(Request::WhoHas(Target::Name("hello.txt".into()))),
        ),
        (
            "who-has-hash-request",
            request(Request::WhoHas(Target::Hash(hello_hash()))),
        ),
        (
            "holders-response",
            response(Response::Holders(HolderList {
                nodes: 3,
                holders: vec![Holder {
                    addr: node_v4(),
                    name: "hello.txt".into(),
                    size: 6,
                    hash: hello_hash(),
                }],
                unindexed: vec![node_v6()],
                truncated: false,
            })),
        ),
        (
            "search-request",
            request(Request::Search(SearchQuery {
                text: "hello".into(),
                limit: 100,
            })),
        ),
        (
            "search-results-response",
            response(Response::SearchResults(SearchResults {
                nodes: 3,
                hits: vec![SearchHit {
                    name: "hello.txt".into(),
                    size: 6,
                    hash: hello_hash(),
                    holders: 2,
                }],
                truncated: true,
            })),
        ),
        // Names before hashes.
        (
            "catalog-long-request",
            request(Request::CatalogLong(CatalogUpdateLong {
                registration: registration(None, None),
                base_seq: 2,
                seq: 3,
                reset: false,
                added: vec![
                    FileEntryLong {
                        name: "new.iso".into(),
                        size: 4_700_000_000,
                        hash: None,
                    },
                    FileEntryLong {
                        name: "hello.txt".into(),
                        size: 6,
                        hash: Some(hello_hash()),
                    },
                ],
                removed: vec![],
            })),
        ),
        (
            "who-has-long-request",
            request(Request::WhoHasLong(Target::Name("new.iso".into()))),
        ),
        (
            "holders-long-response",
            response(Response::HoldersLong(HolderListLong {
                nodes: 3,
                holders: vec![HolderLong {
                    addr: node_v4(),
                    name: "new.iso".into(),
                    size: 4_700_000_000,
                    hash: None,
                }],
                unindexed: vec![node_v6()],
                truncated: false,
            })),
        ),
        // Relayed mode.
        ("hello-request", request(Request::Hello)),
        ("hello-response", response(Response::Hello)),
        ("list-nodes-long-request", request(Request::ListNodesLong)),
        (
            "nodes-long-response",
            response(Response::NodesLong(vec![
                NodeInfo {
                    addr: node_v4(),
                    age_secs: 3,
                    mode: NodeMode::Direct,
                    key: None,
                },
                NodeInfo {
                    addr: relayed(),
                    age_secs: 0,
                    mode: NodeMode::Relayed,
                    key: Some(proto::keys::NodeKey([0xab; 32])),
                },
            ])),
        ),
        (
            "control-request",
            request(Request::Control(registration(None, Some("s3cret")))),
        ),
        ("keepalive-request", request(Request::Keepalive)),
        (
            "open-circuit-request",
            request(Request::OpenCircuit(relayed())),
        ),
        ("open-data-response", response(Response::OpenData(CIRCUIT))),
        (
            "join-circuit-request",
            request(Request::JoinCircuit(CIRCUIT)),
        ),
        ("circuit-ready-response", response(Response::CircuitReady)),
        (
            "unreachable-response",
            error(
                ErrorKind::Unreachable,
                "the relay could not connect back to 192.0.2.10:4000 (cannot connect: \
                 connection refused), so clients could not either; not listed (a peer-node \
                 then asks to be relayed)",
            ),
        ),
        (
            "circuit-busy-response",
            error(
                ErrorKind::Busy,
                "relay busy: 16 circuits open to node 203.0.113.5:41234 (limit 16 per node)",
            ),
        ),
        // Hole punching.
        (
            "control-punch-request",
            request(Request::ControlPunch(registration(None, Some("s3cret")))),
        ),
        ("punch-request", request(Request::Punch(relayed()))),
        ("open-punch-response", response(Response::OpenPunch(PUNCH))),
        ("join-punch-request", request(Request::JoinPunch(PUNCH))),
        (
            "rendezvous-response",
            response(Response::Rendezvous(Rendezvous {
                id: PUNCH,
                peer: node_punching(),
                way: PunchWay::Simultaneous,
            })),
        ),
        (
            "rendezvous-reverse-response",
            response(Response::Rendezvous(Rendezvous {
                id: PUNCH,
                peer: client_seen(),
                way: PunchWay::Reverse,
            })),
        ),
        ("list-punchable-request", request(Request::ListPunchable)),
        (
            "punchable-response",
            response(Response::Nodes(vec![NodeEntry {
                addr: relayed(),
                age_secs: 2,
            }])),
        ),
        // The blind index.
        (
            "blind-catalog-request",
            request(Request::BlindCatalog(BlindCatalogUpdate {
                registration: registration(None, None),
                base_seq: 0,
                seq: 1,
                reset: true,
                added: vec![hello_entry()],
                removed: vec![],
            })),
        ),
        (
            "blind-catalog-delta-request",
            request(Request::BlindCatalog(BlindCatalogUpdate {
                registration: registration(None, None),
                base_seq: 1,
                seq: 2,
                reset: false,
                added: vec![],
                removed: vec![hello_entry().name_tag],
            })),
        ),
        (
            "blind-who-has-request",
            request(Request::BlindWhoHas(BlindTarget::Name(
                hello_entry().name_tag,
            ))),
        ),
        (
            "blind-who-has-content-request",
            request(Request::BlindWhoHas(BlindTarget::Content(
                hello_entry().content_tag,
            ))),
        ),
        (
            "blind-holders-response",
            response(Response::BlindHolders(BlindHolderList {
                nodes: 3,
                holders: vec![BlindHolder {
                    addr: node_v4(),
                    record: hello_entry().record,
                }],
                unindexed: vec![node_v6()],
                truncated: false,
            })),
        ),
        (
            "blind-list-request",
            request(Request::BlindList(PageRequest {
                cursor: 0,
                limit: 10_000,
            })),
        ),
        (
            "sealed-page-response",
            response(Response::SealedPage(SealedPage {
                nodes: 3,
                hits: vec![SealedHit {
                    name_tag: hello_entry().name_tag,
                    content_tag: hello_entry().content_tag,
                    holders: 2,
                    first: node_v4(),
                    record: hello_entry().record,
                }],
                next: Some(1),
            })),
        ),
    ];
    let mut map = BTreeMap::new();
    for (name, example) in entries {
        assert!(map.insert(name, example).is_none(), "{name} listed twice");
    }
    map
}

/// The errors a malformed vector can name (docs/PROTOCOL.md, "Decoding
/// errors"), each with the test that the decoder's error is that one.
/// Whether a decoder's error is the one a malformed vector names.
type IsError = fn(&ProtoError) -> bool;

fn decoding_errors() -> BTreeMap<&'static str, IsError> {
    fn malformed(e: &ProtoError, text: &str) -> bool {
        matches!(e, ProtoError::Malformed(m) if m.contains(text))
    }
    let table: [(&str, IsError); 13] = [
        ("closed", |e| matches!(e, ProtoError::Closed)),
        ("truncated", |e| matches!(e, ProtoError::Truncated)),
        ("bad magic", |e| matches!(e, ProtoError::BadMagic(_))),
        ("unsupported version", |e| {
            matches!(e, ProtoError::UnsupportedVersion(_))
        }),
        ("frame too large", |e| {
            matches!(e, ProtoError::FrameTooLarge { .. })
        }),
        ("unknown tag", |e| matches!(e, ProtoError::UnknownTag(_))),
        ("short body", |e| {
            malformed(e, "the body ends before the message does")
        }),
        ("trailing bytes", |e| {
            malformed(e, "unexpected bytes after the message")
        }),
        ("invalid bool", |e| malformed(e, "invalid bool byte")),
        ("invalid option tag", |e| malformed(e, "invalid option tag")),
        ("invalid enum tag", |e| malformed(e, "invalid enum tag")),
        ("invalid utf-8", |e| malformed(e, "not valid UTF-8")),
        ("limit exceeded", |e| matches!(e, ProtoError::Limit(_))),
    ];
    table.into_iter().collect()
}

// ---------------------------------------------------------------------------
// Values in the vectors' neutral form (docs/vectors/README.md): a message is
// its name and an object of named fields.

fn request_json(r: &Request) -> (&'static str, Value) {
    match r {
        Request::Register(reg) => ("Register", registration_json(reg)),
        Request::Unregister(reg) => ("Unregister", registration_json(reg)),
        Request::ListNodes => ("ListNodes", json!({})),
        Request::GetFile(f) => ("GetFile", json!({"name": f.name, "offset": f.offset})),
        Request::ListFiles => ("ListFiles", json!({})),
        Request::GetRange(r) => (
            "GetRange",
            json!({"target": target_json(&r.target), "offset": r.offset, "len": r.len}),
        ),
        Request::ListFilesLong => ("ListFilesLong", json!({})),
        Request::Catalog(u) => {
            let added: Vec<Value> = u
                .added
                .iter()
                .map(|e| json!({"name": e.name, "size": e.size, "hash": e.hash.to_string()}))
                .collect();
            (
                "Catalog",
                json!({
                    "registration": registration_json(&u.registration),
                    "base_seq": u.base_seq,
                    "seq": u.seq,
                    "reset": u.reset,
                    "added": added,
                    "removed": u.removed,
                }),
            )
        }
        Request::WhoHas(t) => ("WhoHas", json!({ "target": target_json(t) })),
        Request::Search(q) => ("Search", json!({"text": q.text, "limit": q.limit})),
        Request::Hello => ("Hello", json!({})),
        Request::ListNodesLong => ("ListNodesLong", json!({})),
        Request::Control(reg) => ("Control", registration_json(reg)),
        Request::Keepalive => ("Keepalive", json!({})),
        Request::OpenCircuit(node) => ("OpenCircuit", json!({"node": node.to_string()})),
        Request::JoinCircuit(id) => ("JoinCircuit", json!({ "circuit": id })),
        Request::CatalogLong(u) => {
            let added: Vec<Value> = u
                .added
                .iter()
                .map(|e| {
                    json!({"name": e.name, "size": e.size, "hash": e.hash.map(|h| h.to_string())})
                })
                .collect();
            (
                "CatalogLong",
                json!({
                    "registration": registration_json(&u.registration),
                    "base_seq": u.base_seq,
                    "seq": u.seq,
                    "reset": u.reset,
                    "added": added,
                    "removed": u.removed,
                }),
            )
        }
        Request::WhoHasLong(t) => ("WhoHasLong", json!({ "target": target_json(t) })),
        Request::ControlPunch(reg) => ("ControlPunch", registration_json(reg)),
        Request::Punch(node) => ("Punch", json!({"node": node.to_string()})),
        Request::JoinPunch(id) => ("JoinPunch", json!({ "punch": id })),
        Request::ListPunchable => ("ListPunchable", json!({})),
        Request::BlindCatalog(u) => {
            let added: Vec<Value> = u
                .added
                .iter()
                .map(|e| {
                    json!({"name_tag": tag_json(&e.name_tag), "content_tag": tag_json(&e.content_tag),
                           "record": hex(e.record.as_bytes())})
                })
                .collect();
            let removed: Vec<Value> = u.removed.iter().map(tag_json).collect();
            (
                "BlindCatalog",
                json!({
                    "registration": registration_json(&u.registration),
                    "base_seq": u.base_seq,
                    "seq": u.seq,
                    "reset": u.reset,
                    "added": added,
                    "removed": removed,
                }),
            )
        }
        Request::BlindWhoHas(t) => {
            let target = match t {
                BlindTarget::Name(tag) => json!({ "name_tag": tag_json(tag) }),
                BlindTarget::Content(tag) => json!({ "content_tag": tag_json(tag) }),
            };
            ("BlindWhoHas", json!({ "target": target }))
        }
        Request::BlindList(p) => ("BlindList", json!({"cursor": p.cursor, "limit": p.limit})),
    }
}

fn response_json(r: &Response) -> (&'static str, Value) {
    match r {
        Response::Registered(reg) => (
            "Registered",
            json!({"addr": reg.addr.to_string(), "ttl_secs": reg.ttl_secs}),
        ),
        Response::Unregistered => ("Unregistered", json!({})),
        Response::Nodes(nodes) => {
            let nodes: Vec<Value> = nodes
                .iter()
                .map(|n| json!({"addr": n.addr.to_string(), "age_secs": n.age_secs}))
                .collect();
            ("Nodes", json!({ "nodes": nodes }))
        }
        Response::File(h) => ("File", json!({"size": h.size, "offset": h.offset})),
        Response::NotFound => ("NotFound", json!({})),
        Response::Files(list) => {
            let entries: Vec<Value> = list
                .entries
                .iter()
                .map(|e| json!({"name": e.name, "size": e.size}))
                .collect();
            (
                "Files",
                json!({"entries": entries, "truncated": list.truncated}),
            )
        }
        Response::Error(ErrorReply { kind, message }) => (
            "Error",
            json!({"kind": kind_json(*kind), "message": message}),
        ),
        Response::Range(h) => (
            "Range",
            json!({"size": h.size, "hash": h.hash.to_string(), "offset": h.offset, "len": h.len}),
        ),
        Response::FilesLong(list) => {
            let entries: Vec<Value> = list
                .entries
                .iter()
                .map(|e| {
                    json!({"name": e.name, "size": e.size, "hash": e.hash.map(|h| h.to_string())})
                })
                .collect();
            (
                "FilesLong",
                json!({"entries": entries, "truncated": list.truncated}),
            )
        }
        Response::CatalogAck(a) => (
            "CatalogAck",
            json!({"seq": a.seq, "files": a.files, "refused": a.refused}),
        ),
        Response::Holders(list) => {
            let holders: Vec<Value> = list
                .holders
                .iter()
                .map(|h| {
                    json!({"addr": h.addr.to_string(), "name": h.name, "size": h.size,
                           "hash": h.hash.to_string()})
                })
                .collect();
            let unindexed: Vec<String> = list.unindexed.iter().map(|a| a.to_string()).collect();
            (
                "Holders",
                json!({"nodes": list.nodes, "holders": holders, "unindexed": unindexed,
                       "truncated": list.truncated}),
            )
        }
        Response::SearchResults(found) => {
            let hits: Vec<Value> = found
                .hits
                .iter()
                .map(|h| {
                    json!({"name": h.name, "size": h.size, "hash": h.hash.to_string(),
                           "holders": h.holders})
                })
                .collect();
            (
                "SearchResults",
                json!({"nodes": found.nodes, "hits": hits, "truncated": found.truncated}),
            )
        }
        Response::Hello => ("Hello", json!({})),
        Response::NodesLong(nodes) => {
            let nodes: Vec<Value> = nodes
                .iter()
                .map(|n| {
                    json!({
                        "addr": n.addr.to_string(),
                        "age_secs": n.age_secs,
                        "mode": mode_json(n.mode),
                        "key": n.key.map(|k| k.to_string()),
                    })
                })
                .collect();
            ("NodesLong", json!({ "nodes": nodes }))
        }
        Response::OpenData(id) => ("OpenData", json!({ "circuit": id })),
        Response::CircuitReady => ("CircuitReady", json!({})),
        Response::HoldersLong(list) => {
            let holders: Vec<Value> = list
                .holders
                .iter()
                .map(|h| {
                    json!({"addr": h.addr.to_string(), "name": h.name, "size": h.size,
                           "hash": h.hash.map(|h| h.to_string())})
                })
                .collect();
            let unindexed: Vec<String> = list.unindexed.iter().map(|a| a.to_string()).collect();
            (
                "HoldersLong",
                json!({"nodes": list.nodes, "holders": holders, "unindexed": unindexed,
                       "truncated": list.truncated}),
            )
        }
        Response::OpenPunch(id) => ("OpenPunch", json!({ "punch": id })),
        Response::Rendezvous(r) => (
            "Rendezvous",
            json!({"id": r.id, "peer": r.peer.to_string(), "way": way_json(r.way)}),
        ),
        Response::BlindHolders(list) => {
            let holders: Vec<Value> = list
                .holders
                .iter()
                .map(|h| json!({"addr": h.addr.to_string(), "record": hex(h.record.as_bytes())}))
                .collect();
            let unindexed: Vec<String> = list.unindexed.iter().map(|a| a.to_string()).collect();
            (
                "BlindHolders",
                json!({"nodes": list.nodes, "holders": holders, "unindexed": unindexed,
                       "truncated": list.truncated}),
            )
        }
        Response::SealedPage(page) => {
            let hits: Vec<Value> = page
                .hits
                .iter()
                .map(|h| {
                    json!({"name_tag": tag_json(&h.name_tag), "content_tag": tag_json(&h.content_tag),
                           "holders": h.holders, "first": h.first.to_string(),
                           "record": hex(h.record.as_bytes())})
                })
                .collect();
            (
                "SealedPage",
                json!({"nodes": page.nodes, "hits": hits, "next": page.next}),
            )
        }
    }
}

/// A name tag or content tag: 32 lowercase hex digits.
fn tag_json(tag: &Tag) -> Value {
    json!(hex(&tag.0))
}

/// A target: `{"name": "..."}` or `{"hash": "<64 hex>"}`.
fn target_json(t: &Target) -> Value {
    match t {
        Target::Name(name) => json!({ "name": name }),
        Target::Hash(hash) => json!({ "hash": hash.to_string() }),
    }
}

fn registration_json(r: &Registration) -> Value {
    json!({
        "port": r.port,
        "advertised_ip": r.advertised_ip.map(|ip| ip.to_string()),
        "token": r.token,
    })
}

/// An error kind by its name in the spec's table, or a code it does not define.
fn kind_json(kind: ErrorKind) -> Value {
    match kind {
        ErrorKind::BadRequest => json!("BadRequest"),
        ErrorKind::Busy => json!("Busy"),
        ErrorKind::Forbidden => json!("Forbidden"),
        ErrorKind::Unauthorized => json!("Unauthorized"),
        ErrorKind::UnsupportedVersion => json!("UnsupportedVersion"),
        ErrorKind::Internal => json!("Internal"),
        ErrorKind::OutOfRange => json!("OutOfRange"),
        ErrorKind::Unreachable => json!("Unreachable"),
        ErrorKind::Other(code) => json!(code),
    }
}

/// A node mode by its name in the spec's table, or a code it does not define.
fn mode_json(mode: NodeMode) -> Value {
    match mode {
        NodeMode::Direct => json!("Direct"),
        NodeMode::Relayed => json!("Relayed"),
        NodeMode::Other(code) => json!(code),
    }
}

/// A punch way by its name in the spec's table, or a code it does not define.
fn way_json(way: PunchWay) -> Value {
    match way {
        PunchWay::Reverse => json!("Reverse"),
        PunchWay::Simultaneous => json!("Simultaneous"),
        PunchWay::Other(code) => json!(code),
    }
}

impl Msg {
    fn direction(&self) -> &'static str {
        match self {
            Msg::Request(_) => "request",
            Msg::Response(_) => "response",
        }
    }

    fn json(&self) -> (&'static str, Value) {
        match self {
            Msg::Request(r) => request_json(r),
            Msg::Response(r) => response_json(r),
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Request(r) => frame::encode(r),
            Msg::Response(r) => frame::encode(r),
        }
        .expect("a vector's value encodes")
    }

    /// Reads one message of `direction` from `wire`, leaving what follows it.
    fn read(direction: &str, wire: &mut &[u8]) -> Result<Msg, ProtoError> {
        match direction {
            "request" => frame::read::<Request>(wire).map(Msg::Request),
            _ => frame::read::<Response>(wire).map(Msg::Response),
        }
    }
}

// ---------------------------------------------------------------------------
// The files.

/// One docs/vectors/*.json file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    name: String,
    #[allow(dead_code)]
    description: String,
    direction: String,
    message: String,
    fields: Value,
    hex: String,
    #[serde(default)]
    file_bytes: Option<String>,
    #[serde(default)]
    stream_len: Option<u64>,
}

/// One docs/vectors/malformed/*.json file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Malformed {
    name: String,
    #[allow(dead_code)]
    description: String,
    direction: String,
    hex: String,
    error: String,
}

/// Every `*.json` in `dir`, by file stem; any other file is an error.
fn json_files<T: serde::de::DeserializeOwned>(dir: &Path) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let listing =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in listing {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let is_json = path.extension().is_some_and(|e| e == "json");
        if !is_json {
            if stem != "README" {
                panic!("{}: only NAME.json files belong here", path.display());
            }
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a valid vector: {e}", path.display()));
        out.insert(stem, value);
    }
    out
}

fn unhex(name: &str, hex: &str) -> Vec<u8> {
    assert!(
        hex.len().is_multiple_of(2),
        "{name}: odd number of hex digits"
    );
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .unwrap_or_else(|_| panic!("{name}: {:?} is not a hex byte", &hex[i..i + 2]))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether raw bytes follow the message's frame: a file body, or an encoded
/// range.
fn followed(msg: &Msg) -> bool {
    matches!(msg, Msg::Response(Response::File(_) | Response::Range(_)))
}

/// The bytes the wire carries for an example: the frame, then the file bytes.
fn wire_of(example: &Example) -> Vec<u8> {
    let mut bytes = example.msg.encode();
    bytes.extend_from_slice(example.file_bytes);
    bytes
}

// ---------------------------------------------------------------------------
// The checks.

#[test]
fn every_vector_file_is_the_encoding_of_its_value_and_decodes_back() {
    let files: BTreeMap<String, Vector> = json_files(&docs("vectors"));
    let examples = examples();
    let mut problems = Vec::new();
    for (stem, v) in &files {
        let name = v.name.as_str();
        if name != stem {
            problems.push(format!("{stem}.json: its name is {name:?}"));
        }
        let Some(example) = examples.get(stem.as_str()) else {
            problems.push(format!(
                "{stem}.json has no value in tests/protocol_doc.rs (add it to examples())"
            ));
            continue;
        };
        let (message, fields) = example.msg.json();
        let expected = json!({
            "direction": example.msg.direction(),
            "message": message,
            "fields": fields,
            "hex": hex(&example.msg.encode()),
            "file_bytes": hex(example.file_bytes),
            "stream_len": example.stream_len,
        });
        let got = json!({
            "direction": v.direction,
            "message": v.message,
            "fields": v.fields,
            "hex": v.hex,
            "file_bytes": v.file_bytes.clone().unwrap_or_default(),
            "stream_len": v.stream_len,
        });
        if got != expected {
            problems.push(format!(
                "{stem}.json does not match the code; the code gives:\n{}",
                serde_json::to_string_pretty(&expected).unwrap()
            ));
            continue;
        }
        if followed(&example.msg) != (v.file_bytes.is_some() != v.stream_len.is_some()) {
            problems.push(format!(
                "{stem}.json: file_bytes (or, for a Range response, stream_len) belongs to a \
                 File or Range response, and only there, and only one of them"
            ));
        }
        if v.stream_len.is_some() && !matches!(example.msg, Msg::Response(Response::Range(_))) {
            problems.push(format!(
                "{stem}.json: stream_len belongs to a Range response only"
            ));
        }
        // The decoder reads exactly the frame and leaves the file bytes.
        let wire = [
            unhex(stem, &v.hex),
            unhex(stem, expected["file_bytes"].as_str().unwrap()),
        ]
        .concat();
        let mut rest = &wire[..];
        match Msg::read(&v.direction, &mut rest) {
            Ok(msg) if msg == example.msg => {}
            other => problems.push(format!("{stem}.json decodes as {other:?}")),
        }
        if rest != example.file_bytes {
            problems.push(format!(
                "{stem}.json: after the frame come {} bytes, not the file's {}",
                rest.len(),
                example.file_bytes.len()
            ));
        }
        if let Msg::Response(Response::File(h)) = example.msg {
            assert_eq!(
                h.size.saturating_sub(h.offset),
                example.file_bytes.len() as u64,
                "{stem}: a File header is followed by exactly size - offset bytes"
            );
        }
        if let Msg::Response(Response::Range(h)) = example.msg {
            let range = h.range().expect("a range within its size");
            assert_eq!(
                proto::content::encoded_len(h.size, range),
                example
                    .stream_len
                    .unwrap_or(example.file_bytes.len() as u64),
                "{stem}: a Range header is followed by exactly its encoded range"
            );
        }
    }
    for (name, example) in &examples {
        if !files.contains_key(*name) {
            let (message, fields) = example.msg.json();
            let mut vector = json!({
                "name": name,
                "description": "...",
                "direction": example.msg.direction(),
                "message": message,
                "fields": fields,
                "hex": hex(&example.msg.encode()),
            });
            if let Some(len) = example.stream_len {
                vector["stream_len"] = json!(len);
            } else if followed(&example.msg) {
                vector["file_bytes"] = json!(hex(example.file_bytes));
            }
            problems.push(format!(
                "no docs/vectors/{name}.json; write it:\n{}",
                serde_json::to_string_pretty(&vector).unwrap()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_message_tag_and_error_code_has_a_vector() {
    let mut request_tags = BTreeSet::new();
    let mut response_tags = BTreeSet::new();
    let mut error_codes = BTreeSet::new();
    for example in examples().values() {
        let frame = example.msg.encode();
        let tag = u32::from_be_bytes(frame[10..14].try_into().unwrap());
        match &example.msg {
            Msg::Request(_) => request_tags.insert(tag),
            Msg::Response(r) => {
                if let Response::Error(e) = r {
                    error_codes.insert(u32::from(e.kind));
                }
                response_tags.insert(tag)
            }
        };
    }
    use proto::message::Message;
    let want_requests: BTreeSet<u32> = (0..Request::TAG_COUNT).collect();
    let want_responses: BTreeSet<u32> = (0..Response::TAG_COUNT).collect();
    // The codes this version defines: from 0 up to the first it does not.
    let want_codes: BTreeSet<u32> = (0..)
        .take_while(|&c| !matches!(ErrorKind::from(c), ErrorKind::Other(_)))
        .collect();
    assert_eq!(
        request_tags, want_requests,
        "every request tag needs a vector"
    );
    assert_eq!(
        response_tags, want_responses,
        "every response tag needs a vector"
    );
    assert!(
        want_codes.is_subset(&error_codes),
        "every error code needs a vector: have {error_codes:?}, want {want_codes:?}"
    );
}

#[test]
fn every_malformed_vector_fails_with_the_error_it_names() {
    let files: BTreeMap<String, Malformed> = json_files(&docs("vectors/malformed"));
    let errors = decoding_errors();
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for (stem, v) in &files {
        if &v.name != stem {
            problems.push(format!("malformed/{stem}.json: its name is {:?}", v.name));
        }
        if !stem.ends_with(&format!("-{}", v.direction)) {
            problems.push(format!(
                "malformed/{stem}.json: the name must end in -{}",
                v.direction
            ));
        }
        let Some(is_it) = errors.get(v.error.as_str()) else {
            problems.push(format!(
                "malformed/{stem}.json: {:?} is not an error name of docs/PROTOCOL.md \
                 (add it to decoding_errors())",
                v.error
            ));
            continue;
        };
        used.insert(v.error.as_str());
        if v.direction != "request" && v.direction != "response" {
            problems.push(format!(
                "malformed/{stem}.json: direction {:?}",
                v.direction
            ));
            continue;
        }
        let bytes = unhex(stem, &v.hex);
        match Msg::read(&v.direction, &mut &bytes[..]) {
            Err(e) if is_it(&e) => {}
            other => problems.push(format!(
                "malformed/{stem}.json should fail with {:?}, got {other:?}",
                v.error
            )),
        }
    }
    for name in errors.keys() {
        if !used.contains(name) {
            problems.push(format!("no malformed vector fails with {name:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn hex_dumps_in_protocol_md_are_vectors() {
    let path = docs("PROTOCOL.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let blocks = parse_blocks(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let examples = examples();
    let malformed: BTreeMap<String, Malformed> = json_files(&docs("vectors/malformed"));
    assert!(!blocks.is_empty(), "no hex blocks found");

    let mut problems = Vec::new();
    for block in &blocks {
        let expected = match block.id.strip_prefix("malformed/") {
            Some(name) => malformed.get(name).map(|m| unhex(name, &m.hex)),
            None => examples.get(block.id.as_str()).map(wire_of),
        };
        let Some(expected) = expected else {
            problems.push(format!(
                "block {:?} at line {} names no vector in docs/vectors/",
                block.id, block.line
            ));
            continue;
        };
        if block.bytes != expected {
            let at = block
                .bytes
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(block.bytes.len().min(expected.len()));
            problems.push(format!(
                "block {:?} at line {} differs from the vector at byte {at} \
                 (document has {} bytes, vector {})\n--- document:\n{}--- vector:\n{}",
                block.id,
                block.line,
                block.bytes.len(),
                expected.len(),
                dump(&block.bytes),
                dump(&expected)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} does not match the vectors:\n\n{}",
        path.display(),
        problems.join("\n\n")
    );
}

/// One `hex id=...` block of the document.
#[derive(Debug)]
struct Block {
    id: String,
    /// Line number of the opening fence, for error messages.
    line: usize,
    bytes: Vec<u8>,
}

/// A path under the workspace's docs/ directory.
fn docs(rel: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(rel);
    path.canonicalize().unwrap_or(path)
}

/// Extracts every `hex id=...` block; a malformed block is an error naming its line.
fn parse_blocks(doc: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = line.trim_start();
        if let Some(block) = current.as_mut() {
            if trimmed.starts_with("```") {
                blocks.push(current.take().unwrap());
                continue;
            }
            block
                .bytes
                .extend(parse_hex_line(line).map_err(|e| format!("line {lineno}: {e}"))?);
            continue;
        }
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        if words.next() != Some("hex") {
            continue;
        }
        let id = words
            .find_map(|w| w.strip_prefix("id="))
            .ok_or_else(|| format!("line {lineno}: a hex block without an id= attribute"))?;
        current = Some(Block {
            id: id.to_string(),
            line: lineno,
            bytes: Vec::new(),
        });
    }
    match current {
        Some(block) => Err(format!(
            "line {}: hex block {:?} is never closed",
            block.line, block.id
        )),
        None => Ok(blocks),
    }
}

/// The bytes of one dump line: the text before the first two spaces, as
/// space-separated pairs of hex digits.
fn parse_hex_line(line: &str) -> Result<Vec<u8>, String> {
    let columns = match line.find("  ") {
        Some(cut) => &line[..cut],
        None => line,
    };
    columns
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t.len() == 2 {
                u8::from_str_radix(t, 16)
                    .map_err(|_| format!("{t:?} is not a hex byte in {line:?}"))
            } else {
                Err(format!(
                    "{t:?} is not a hex byte in {line:?} (put two spaces before an annotation)"
                ))
            }
        })
        .collect()
}

/// Bytes as the document writes them, 16 to a line.
fn dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(16) {
        let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(out, "{}", line.join(" ")).unwrap();
    }
    out
}

#[test]
fn the_dump_parser_reads_annotations_and_rejects_typos() {
    let doc = "text\n```hex id=x\n50 32  magic\n  a note only\n\n0a\n```\n```rust\nno\n```\n";
    let blocks = parse_blocks(doc).unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].id, "x");
    assert_eq!(blocks[0].bytes, vec![0x50, 0x32, 0x0a]);

    assert!(
        parse_blocks("```hex id=y\n50 3g  typo\n```\n")
            .unwrap_err()
            .contains("line 2")
    );
    assert!(parse_blocks("```hex id=y\n50 32 magic\n```\n").is_err());
    assert!(
        parse_blocks("```hex id=y\n50\n")
            .unwrap_err()
            .contains("never closed")
    );
    assert!(
        parse_blocks("```hex\n50\n```\n")
            .unwrap_err()
            .contains("without an id")
    );
}

// ---------------------------------------------------------------------------
// Encoded ranges: docs/vectors/ranges/*.json (docs/vectors/README.md).

/// One docs/vectors/ranges/*.json file: a content made from a pattern, a
/// range of it, and the stream that carries the range, item by item; or,
/// with `corrupt`, a stream with one byte changed and the error it causes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeVector {
    name: String,
    #[allow(dead_code)]
    description: String,
    size: u64,
    hash: String,
    offset: u64,
    len: u64,
    stream: Vec<Value>,
    #[serde(default)]
    corrupt: Option<Value>,
    #[serde(default)]
    error: Option<String>,
}

/// Byte `i` of a vector's content: `i mod 251`.
fn pattern(size: u64) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// The stream as items: each hash pair as hex, each group as its place.
fn stream_items(data: &[u8], stream: &[u8], size: u64, range: ByteRange) -> Vec<Value> {
    // Walk the stream with the decoder's own geometry: a group is where the
    // content's bytes appear; everything else is a 64-byte pair.
    let mut items = Vec::new();
    let mut at = 0usize;
    let first = if range.len == 0 {
        size.saturating_sub(1) / CHUNK_GROUP * CHUNK_GROUP
    } else {
        range.offset / CHUNK_GROUP * CHUNK_GROUP
    };
    let mut group = first;
    while at < stream.len() {
        let len = (size - group).min(CHUNK_GROUP) as usize;
        let g = group as usize;
        if stream.len() - at >= len
            && stream[at..at + len] == data[g..g + len]
            && (len >= 64 || stream.len() - at == len)
        {
            items.push(json!({"group": {"offset": group, "len": len}}));
            at += len;
            group += len as u64;
        } else {
            items.push(json!({"pair": hex(&stream[at..at + 64])}));
            at += 64;
        }
    }
    items
}

#[test]
fn every_range_vector_is_the_encoding_of_its_range() {
    let files: BTreeMap<String, RangeVector> = json_files(&docs("vectors/ranges"));
    assert!(files.len() >= 5, "range vectors are missing");
    let mut problems = Vec::new();
    for (stem, v) in &files {
        assert_eq!(&v.name, stem);
        let data = pattern(v.size);
        let (hash, range, stream) =
            encode_to_vec(&data, v.offset, v.len).expect("a range within the size");
        let items = stream_items(&data, &stream, v.size, range);
        if hash.to_string() != v.hash
            || Value::Array(items.clone()) != Value::Array(v.stream.clone())
        {
            problems.push(format!(
                "ranges/{stem}.json does not match the code; the code gives hash {hash} and stream:\n{}",
                serde_json::to_string_pretty(&items).unwrap()
            ));
            continue;
        }
        // Decode the stream (with one byte flipped, for a corrupt vector).
        let mut wire = stream.clone();
        if let Some(c) = &v.corrupt {
            let at = c["at"].as_u64().unwrap() as usize;
            wire[at] ^= c["xor"].as_u64().unwrap() as u8;
        }
        let mut d = RangeDecoder::new(hash, v.size, range, &wire[..]).unwrap();
        let mut got = Vec::new();
        let outcome = loop {
            match d.next_verified() {
                Ok(Some(bytes)) => got.extend_from_slice(bytes),
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        };
        if outcome != v.error {
            problems.push(format!(
                "ranges/{stem}.json: decoding gives {outcome:?}, not {:?}",
                v.error
            ));
        }
        let end = range.offset as usize + got.len();
        if got != data[range.offset as usize..end] {
            problems.push(format!(
                "ranges/{stem}.json: the decoder handed out wrong bytes"
            ));
        }
        if v.error.is_none() && got.len() as u64 != range.len {
            problems.push(format!(
                "ranges/{stem}.json: {} bytes decoded, not {}",
                got.len(),
                range.len
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
