//! Property tests of the decoder: whatever the bytes, reading a frame never
//! panics, and every valid message survives encode then read unchanged, at
//! the size docs/PROTOCOL.md's layout rules predict.
//!
//! The encoding is canonical (fixed-width integers, bools and option flags
//! only 0 or 1, no trailing bytes), so whenever arbitrary bytes do decode,
//! encoding the result must give back exactly the bytes that were read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::vec;
use proptest::prelude::*;

use proto::blind::{
    BlindCatalogUpdate, BlindEntry, BlindHolder, BlindHolderList, BlindTarget, PageRequest,
    SealedHit, SealedPage, SealedRecord, Tag,
};
use proto::frame::{self, HEADER_LEN};
use proto::message::Message;
use proto::{
    CatalogAck, CatalogEntry, CatalogUpdate, CatalogUpdateLong, ContentHash, ErrorKind, ErrorReply,
    FileEntry, FileEntryLong, FileHeader, FileList, FileListLong, FileRequest, Holder, HolderList,
    HolderListLong, HolderLong, MAGIC, MAX_NAME_LEN, MAX_TOKEN_LEN, NodeEntry, NodeInfo, NodeMode,
    ProtoError, RangeHeader, RangeRequest, Registered, Registration, Request, Response, SearchHit,
    SearchQuery, SearchResults, Target, VERSION,
};

// ---------------------------------------------------------------------------
// Generators of valid messages.

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
    ]
}

/// Only the address and the port travel (see docs/PROTOCOL.md), so the
/// generated IPv6 addresses have no flow info and no scope id.
fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    (ip(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

/// Any Unicode text of up to `max_chars` characters.
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

/// A file name within [`MAX_NAME_LEN`] bytes: usually short, sometimes
/// Unicode, sometimes as long as allowed.
fn file_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_./ -]{0,40}",
        2 => text(64),
        1 => (1..=MAX_NAME_LEN).prop_map(|n| "n".repeat(n)),
    ]
}

fn registration() -> impl Strategy<Value = Registration> {
    (
        any::<u16>(),
        proptest::option::of(ip()),
        // At most 64 characters of at most 4 bytes: within MAX_TOKEN_LEN.
        proptest::option::of(text(MAX_TOKEN_LEN / 4)),
    )
        .prop_map(|(port, advertised_ip, token)| Registration {
            port,
            advertised_ip,
            token,
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        registration().prop_map(Request::Register),
        registration().prop_map(Request::Unregister),
        Just(Request::ListNodes),
        (file_name(), any::<u64>())
            .prop_map(|(name, offset)| Request::GetFile(FileRequest { name, offset })),
        Just(Request::ListFiles),
        (target(), any::<u64>(), any::<u64>()).prop_map(|(target, offset, len)| {
            Request::GetRange(RangeRequest {
                target,
                offset,
                len,
            })
        }),
        Just(Request::ListFilesLong),
        (
            registration(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            vec(catalog_entry(), 0..6),
            vec(file_name(), 0..6),
        )
            .prop_map(|(registration, base_seq, seq, reset, added, removed)| {
                Request::Catalog(CatalogUpdate {
                    registration,
                    base_seq,
                    seq,
                    reset,
                    added,
                    removed,
                })
            }),
        target().prop_map(Request::WhoHas),
        (file_name(), any::<u32>())
            .prop_map(|(text, limit)| Request::Search(SearchQuery { text, limit })),
        Just(Request::Hello),
        Just(Request::ListNodesLong),
        registration().prop_map(Request::Control),
        Just(Request::Keepalive),
        socket_addr().prop_map(Request::OpenCircuit),
        any::<u64>().prop_map(Request::JoinCircuit),
        (
            registration(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            vec(long_entry(), 0..6),
            vec(file_name(), 0..6),
        )
            .prop_map(|(registration, base_seq, seq, reset, added, removed)| {
                Request::CatalogLong(CatalogUpdateLong {
                    registration,
                    base_seq,
                    seq,
                    reset,
                    added,
                    removed,
                })
            }),
        target().prop_map(Request::WhoHasLong),
        registration().prop_map(Request::ControlPunch),
        socket_addr().prop_map(Request::Punch),
        any::<u64>().prop_map(Request::JoinPunch),
        Just(Request::ListPunchable),
        (
            registration(),
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            vec(blind_entry(), 0..6),
            vec(tag(), 0..6),
        )
            .prop_map(|(registration, base_seq, seq, reset, added, removed)| {
                Request::BlindCatalog(BlindCatalogUpdate {
                    registration,
                    base_seq,
                    seq,
                    reset,
                    added,
                    removed,
                })
            }),
        prop_oneof![
            tag().prop_map(BlindTarget::Name),
            tag().prop_map(BlindTarget::Content),
        ]
        .prop_map(Request::BlindWhoHas),
        (any::<u64>(), any::<u32>())
            .prop_map(|(cursor, limit)| Request::BlindList(PageRequest { cursor, limit })),
    ]
}

fn tag() -> impl Strategy<Value = Tag> {
    any::<[u8; 16]>().prop_map(Tag)
}

/// Bytes of one of the record lengths (the codec does not open records).
fn sealed_record() -> impl Strategy<Value = SealedRecord> {
    (
        prop::sample::select(proto::blind::record::BUCKETS.to_vec()),
        any::<u8>(),
    )
        .prop_map(|(len, seed)| {
            SealedRecord((0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect())
        })
}

fn blind_entry() -> impl Strategy<Value = BlindEntry> {
    (tag(), tag(), sealed_record()).prop_map(|(name_tag, content_tag, record)| BlindEntry {
        name_tag,
        content_tag,
        record,
    })
}

fn node_mode() -> impl Strategy<Value = NodeMode> {
    prop_oneof![
        Just(NodeMode::Direct),
        Just(NodeMode::Relayed),
        (2u32..).prop_map(NodeMode::Other),
    ]
}

fn catalog_entry() -> impl Strategy<Value = CatalogEntry> {
    (file_name(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(name, size, hash)| CatalogEntry {
        name,
        size,
        hash: ContentHash(hash),
    })
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        file_name().prop_map(Target::Name),
        any::<[u8; 32]>().prop_map(|h| Target::Hash(ContentHash(h))),
    ]
}

/// A range header within its size, as a node sends it.
fn range_header() -> impl Strategy<Value = RangeHeader> {
    (
        0..=1u64 << 62,
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(size, hash, a, b)| {
            let offset = a % (size + 1);
            RangeHeader {
                size,
                hash: ContentHash(hash),
                offset,
                len: b % (size - offset + 1),
            }
        })
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop::sample::select(vec![
        ErrorKind::BadRequest,
        ErrorKind::Busy,
        ErrorKind::Forbidden,
        ErrorKind::Unauthorized,
        ErrorKind::UnsupportedVersion,
        ErrorKind::Internal,
        ErrorKind::Unreachable,
    ])
}

fn response() -> impl Strategy<Value = Response> {
    let node =
        (socket_addr(), any::<u32>()).prop_map(|(addr, age_secs)| NodeEntry { addr, age_secs });
    let entry = (file_name(), any::<u64>()).prop_map(|(name, size)| FileEntry { name, size });
    let info = (
        socket_addr(),
        any::<u32>(),
        node_mode(),
        proptest::option::of(any::<[u8; 32]>()),
    )
        .prop_map(|(addr, age_secs, mode, key)| NodeInfo {
            addr,
            age_secs,
            mode,
            key: key.map(proto::keys::NodeKey),
        });
    prop_oneof![
        (socket_addr(), any::<u32>())
            .prop_map(|(addr, ttl_secs)| Response::Registered(Registered { addr, ttl_secs })),
        Just(Response::Unregistered),
        vec(node, 0..40).prop_map(Response::Nodes),
        (any::<u64>(), any::<u64>())
            .prop_map(|(size, offset)| Response::File(FileHeader { size, offset })),
        Just(Response::NotFound),
        (vec(entry, 0..8), any::<bool>())
            .prop_map(|(entries, truncated)| Response::Files(FileList { entries, truncated })),
        (error_kind(), text(200))
            .prop_map(|(kind, message)| Response::Error(ErrorReply { kind, message })),
        range_header().prop_map(Response::Range),
        (vec(long_entry(), 0..8), any::<bool>()).prop_map(|(entries, truncated)| {
            Response::FilesLong(FileListLong { entries, truncated })
        }),
        (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(seq, files, refused)| {
            Response::CatalogAck(CatalogAck {
                seq,
                files,
                refused,
            })
        }),
        (
            any::<u32>(),
            vec(
                (socket_addr(), catalog_entry()).prop_map(|(addr, e)| Holder {
                    addr,
                    name: e.name,
                    size: e.size,
                    hash: e.hash,
                }),
                0..6
            ),
            vec(socket_addr(), 0..4),
            any::<bool>()
        )
            .prop_map(|(nodes, holders, unindexed, truncated)| Response::Holders(
                HolderList {
                    nodes,
                    holders,
                    unindexed,
                    truncated
                }
            )),
        (
            any::<u32>(),
            vec(
                (catalog_entry(), any::<u32>()).prop_map(|(e, holders)| SearchHit {
                    name: e.name,
                    size: e.size,
                    hash: e.hash,
                    holders,
                }),
                0..6
            ),
            any::<bool>()
        )
            .prop_map(
                |(nodes, hits, truncated)| Response::SearchResults(SearchResults {
                    nodes,
                    hits,
                    truncated
                })
            ),
        Just(Response::Hello),
        vec(info, 0..40).prop_map(Response::NodesLong),
        any::<u64>().prop_map(Response::OpenData),
        Just(Response::CircuitReady),
        (
            any::<u32>(),
            vec(
                (socket_addr(), long_entry()).prop_map(|(addr, e)| HolderLong {
                    addr,
                    name: e.name,
                    size: e.size,
                    hash: e.hash,
                }),
                0..6
            ),
            vec(socket_addr(), 0..4),
            any::<bool>()
        )
            .prop_map(
                |(nodes, holders, unindexed, truncated)| Response::HoldersLong(HolderListLong {
                    nodes,
                    holders,
                    unindexed,
                    truncated
                })
            ),
        any::<u64>().prop_map(Response::OpenPunch),
        (any::<u64>(), socket_addr(), any::<u32>()).prop_map(|(id, peer, way)| {
            Response::Rendezvous(proto::Rendezvous {
                id,
                peer,
                way: proto::PunchWay::from(way),
            })
        }),
        (
            any::<u32>(),
            vec(
                (socket_addr(), sealed_record())
                    .prop_map(|(addr, record)| BlindHolder { addr, record }),
                0..4
            ),
            vec(socket_addr(), 0..4),
            any::<bool>()
        )
            .prop_map(|(nodes, holders, unindexed, truncated)| {
                Response::BlindHolders(BlindHolderList {
                    nodes,
                    holders,
                    unindexed,
                    truncated,
                })
            }),
        (
            any::<u32>(),
            vec(
                (tag(), tag(), any::<u32>(), socket_addr(), sealed_record()).prop_map(
                    |(name_tag, content_tag, holders, first, record)| SealedHit {
                        name_tag,
                        content_tag,
                        holders,
                        first,
                        record,
                    }
                ),
                0..4
            ),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(nodes, hits, next)| Response::SealedPage(SealedPage {
                nodes,
                hits,
                next
            })),
    ]
}

fn long_entry() -> impl Strategy<Value = FileEntryLong> {
    (
        file_name(),
        any::<u64>(),
        proptest::option::of(any::<[u8; 32]>()),
    )
        .prop_map(|(name, size, hash)| FileEntryLong {
            name,
            size,
            hash: hash.map(ContentHash),
        })
}

// ---------------------------------------------------------------------------
// The layout rules of docs/PROTOCOL.md, written out independently of bincode.

fn string_size(s: &str) -> usize {
    8 + s.len()
}

fn ip_size(ip: &IpAddr) -> usize {
    4 + if ip.is_ipv4() { 4 } else { 16 }
}

fn socket_addr_size(addr: &SocketAddr) -> usize {
    ip_size(&addr.ip()) + 2
}

fn registration_size(r: &Registration) -> usize {
    2 + 1
        + r.advertised_ip.as_ref().map_or(0, ip_size)
        + 1
        + r.token.as_deref().map_or(0, string_size)
}

fn request_body_size(r: &Request) -> usize {
    4 + match r {
        Request::Register(reg)
        | Request::Unregister(reg)
        | Request::Control(reg)
        | Request::ControlPunch(reg) => registration_size(reg),
        Request::ListNodes
        | Request::ListFiles
        | Request::Hello
        | Request::ListNodesLong
        | Request::Keepalive
        | Request::ListPunchable => 0,
        Request::OpenCircuit(addr) | Request::Punch(addr) => socket_addr_size(addr),
        Request::JoinCircuit(_) | Request::JoinPunch(_) => 8,
        Request::GetFile(f) => string_size(&f.name) + 8,
        Request::ListFilesLong => 0,
        Request::Catalog(u) => {
            registration_size(&u.registration)
                + 8
                + 8
                + 1
                + 8
                + u.added
                    .iter()
                    .map(|e| string_size(&e.name) + 8 + 32)
                    .sum::<usize>()
                + 8
                + u.removed.iter().map(|n| string_size(n)).sum::<usize>()
        }
        Request::CatalogLong(u) => {
            registration_size(&u.registration)
                + 8
                + 8
                + 1
                + 8
                + u.added
                    .iter()
                    .map(|e| string_size(&e.name) + 8 + 1 + e.hash.map_or(0, |_| 32))
                    .sum::<usize>()
                + 8
                + u.removed.iter().map(|n| string_size(n)).sum::<usize>()
        }
        Request::WhoHas(t) | Request::WhoHasLong(t) => {
            4 + match t {
                Target::Name(name) => string_size(name),
                Target::Hash(_) => 32,
            }
        }
        Request::Search(q) => string_size(&q.text) + 4,
        Request::GetRange(r) => {
            4 + match &r.target {
                Target::Name(name) => string_size(name),
                Target::Hash(_) => 32,
            } + 16
        }
        Request::BlindCatalog(u) => {
            registration_size(&u.registration)
                + 8
                + 8
                + 1
                + 8
                + u.added
                    .iter()
                    .map(|e| 16 + 16 + 8 + e.record.0.len())
                    .sum::<usize>()
                + 8
                + 16 * u.removed.len()
        }
        Request::BlindWhoHas(_) => 4 + 16,
        Request::BlindList(_) => 8 + 4,
    }
}

fn response_body_size(r: &Response) -> usize {
    4 + match r {
        Response::Registered(reg) => socket_addr_size(&reg.addr) + 4,
        Response::Unregistered | Response::NotFound | Response::Hello | Response::CircuitReady => 0,
        Response::OpenData(_) | Response::OpenPunch(_) => 8,
        Response::Rendezvous(r) => 8 + socket_addr_size(&r.peer) + 4,
        Response::NodesLong(nodes) => {
            8 + nodes
                .iter()
                .map(|n| socket_addr_size(&n.addr) + 4 + 4 + 1 + n.key.map_or(0, |_| 32))
                .sum::<usize>()
        }
        Response::Nodes(nodes) => {
            8 + nodes
                .iter()
                .map(|n| socket_addr_size(&n.addr) + 4)
                .sum::<usize>()
        }
        Response::File(_) => 16,
        Response::Files(list) => {
            8 + list
                .entries
                .iter()
                .map(|e| string_size(&e.name) + 8)
                .sum::<usize>()
                + 1
        }
        Response::Error(e) => 4 + string_size(&e.message),
        Response::Range(_) => 8 + 32 + 8 + 8,
        Response::FilesLong(list) => {
            8 + list
                .entries
                .iter()
                .map(|e| string_size(&e.name) + 8 + 1 + e.hash.map_or(0, |_| 32))
                .sum::<usize>()
                + 1
        }
        Response::CatalogAck(_) => 8 + 4 + 4,
        Response::Holders(list) => {
            4 + 8
                + list
                    .holders
                    .iter()
                    .map(|h| socket_addr_size(&h.addr) + string_size(&h.name) + 8 + 32)
                    .sum::<usize>()
                + 8
                + list.unindexed.iter().map(socket_addr_size).sum::<usize>()
                + 1
        }
        Response::HoldersLong(list) => {
            4 + 8
                + list
                    .holders
                    .iter()
                    .map(|h| {
                        socket_addr_size(&h.addr)
                            + string_size(&h.name)
                            + 8
                            + 1
                            + h.hash.map_or(0, |_| 32)
                    })
                    .sum::<usize>()
                + 8
                + list.unindexed.iter().map(socket_addr_size).sum::<usize>()
                + 1
        }
        Response::SearchResults(found) => {
            4 + 8
                + found
                    .hits
                    .iter()
                    .map(|h| string_size(&h.name) + 8 + 32 + 4)
                    .sum::<usize>()
                + 1
        }
        Response::BlindHolders(list) => {
            4 + 8
                + list
                    .holders
                    .iter()
                    .map(|h| socket_addr_size(&h.addr) + 8 + h.record.0.len())
                    .sum::<usize>()
                + 8
                + list.unindexed.iter().map(socket_addr_size).sum::<usize>()
                + 1
        }
        Response::SealedPage(page) => {
            4 + 8
                + page
                    .hits
                    .iter()
                    .map(|h| 16 + 16 + 4 + socket_addr_size(&h.first) + 8 + h.record.0.len())
                    .sum::<usize>()
                + 1
                + page.next.map_or(0, |_| 8)
        }
    }
}

// ---------------------------------------------------------------------------
// Checks shared by the properties.

/// Reads a request from `bytes`; if that succeeds, the frame it consumed must
/// be exactly the encoding of what it returned.
fn read_request_canonically(bytes: &[u8]) -> Result<Request, ProtoError> {
    let mut rest = bytes;
    let msg = frame::read::<Request>(&mut rest)?;
    let consumed = &bytes[..bytes.len() - rest.len()];
    assert_eq!(
        frame::encode(&msg).unwrap(),
        consumed,
        "{msg:?} is not canonical"
    );
    Ok(msg)
}

fn read_response_canonically(bytes: &[u8]) -> Result<Response, ProtoError> {
    let mut rest = bytes;
    let msg = frame::read::<Response>(&mut rest)?;
    let consumed = &bytes[..bytes.len() - rest.len()];
    assert_eq!(
        frame::encode(&msg).unwrap(),
        consumed,
        "{msg:?} is not canonical"
    );
    Ok(msg)
}

/// Decodes `body` as both message types; whatever decodes must re-encode to
/// the same body.
fn decode_canonically(body: &[u8]) {
    if let Ok(msg) = frame::decode::<Request>(body) {
        assert_eq!(&frame::encode(&msg).unwrap()[HEADER_LEN..], body, "{msg:?}");
    }
    if let Ok(msg) = frame::decode::<Response>(body) {
        assert_eq!(&frame::encode(&msg).unwrap()[HEADER_LEN..], body, "{msg:?}");
    }
}

fn with_header(body: &[u8]) -> Vec<u8> {
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(&VERSION.to_be_bytes());
    f.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// A body that starts with a tag the decoder knows (or the first unknown
/// one), so the fields' decoding is what gets exercised.
fn body_with_plausible_tag() -> impl Strategy<Value = Vec<u8>> {
    (0..=Response::TAG_COUNT, vec(any::<u8>(), 0..96)).prop_map(|(tag, rest)| {
        let mut body = tag.to_be_bytes().to_vec();
        body.extend(rest);
        body
    })
}

/// One way of damaging a valid frame.
#[derive(Debug, Clone)]
enum Damage {
    /// Replace the byte at this position (modulo the length) with this value.
    Set(usize, u8),
    /// Cut the frame to this many bytes (modulo the length).
    Cut(usize),
    /// Append these bytes.
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Set(at, b)),
        1 => any::<usize>().prop_map(Damage::Cut),
        1 => vec(any::<u8>(), 1..8).prop_map(Damage::Append),
    ]
}

fn apply(frame: &mut Vec<u8>, damages: &[Damage]) {
    for d in damages {
        match d {
            Damage::Set(at, b) if !frame.is_empty() => {
                let len = frame.len();
                frame[at % len] = *b;
            }
            Damage::Cut(at) => {
                let len = frame.len().max(1);
                frame.truncate(at % len);
            }
            Damage::Append(bytes) => frame.extend_from_slice(bytes),
            Damage::Set(..) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..128)) {
        let _ = read_request_canonically(&bytes);
        let _ = read_response_canonically(&bytes);
        decode_canonically(&bytes);
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(body in body_with_plausible_tag()) {
        let framed = with_header(&body);
        let _ = read_request_canonically(&framed);
        let _ = read_response_canonically(&framed);
        decode_canonically(&body);
    }

    #[test]
    fn damaged_requests_never_panic(
        msg in request(),
        damages in vec(damage(), 1..4),
    ) {
        let mut bytes = frame::encode(&msg).unwrap();
        apply(&mut bytes, &damages);
        let _ = read_request_canonically(&bytes);
        let _ = read_response_canonically(&bytes);
        if bytes.len() > HEADER_LEN {
            decode_canonically(&bytes[HEADER_LEN..]);
        }
    }

    #[test]
    fn damaged_responses_never_panic(
        msg in response(),
        damages in vec(damage(), 1..4),
    ) {
        let mut bytes = frame::encode(&msg).unwrap();
        apply(&mut bytes, &damages);
        let _ = read_request_canonically(&bytes);
        let _ = read_response_canonically(&bytes);
        if bytes.len() > HEADER_LEN {
            decode_canonically(&bytes[HEADER_LEN..]);
        }
    }

    #[test]
    fn every_valid_request_round_trips(msg in request()) {
        let bytes = frame::encode(&msg).unwrap();
        prop_assert_eq!(bytes.len() - HEADER_LEN, request_body_size(&msg));
        prop_assert_eq!(&read_request_canonically(&bytes).unwrap(), &msg);
        prop_assert_eq!(&frame::decode::<Request>(&bytes[HEADER_LEN..]).unwrap(), &msg);
    }

    #[test]
    fn every_valid_response_round_trips(msg in response()) {
        let bytes = frame::encode(&msg).unwrap();
        prop_assert_eq!(bytes.len() - HEADER_LEN, response_body_size(&msg));
        prop_assert_eq!(&read_response_canonically(&bytes).unwrap(), &msg);
        prop_assert_eq!(&frame::decode::<Response>(&bytes[HEADER_LEN..]).unwrap(), &msg);
    }

    #[test]
    fn a_valid_frame_is_read_whole_and_nothing_more(msg in response(), after in vec(any::<u8>(), 0..16)) {
        // Whatever follows a frame (a file body) is left to the caller.
        let mut wire = frame::encode(&msg).unwrap();
        let frame_len = wire.len();
        wire.extend_from_slice(&after);
        let mut rest = &wire[..];
        prop_assert_eq!(&frame::read::<Response>(&mut rest).unwrap(), &msg);
        prop_assert_eq!(rest, &wire[frame_len..]);
    }
}
