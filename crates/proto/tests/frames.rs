//! Frames as a reader sees them: every message round-trips, tags stay where
//! docs/PROTOCOL.md says, and every kind of bad input (oversized, truncated,
//! another protocol, another version, an unknown tag, trailing bytes, a
//! broken limit) is refused with the right error, without panicking and
//! without allocating what the peer asked for.
//!
//! This test binary counts allocations (see [`largest_allocation_during`]),
//! so "nothing was allocated" is measured, not assumed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::blind::{
    BlindCatalogUpdate, BlindEntry, BlindHolder, BlindHolderList, BlindTarget, PageRequest,
    SealedHit, SealedPage, SealedRecord, Tag,
};
use proto::frame::{self, HEADER_LEN};
use proto::message::Message;
use proto::{
    CatalogAck, CatalogEntry, CatalogUpdate, CatalogUpdateLong, ContentHash, ErrorKind, ErrorReply,
    FileEntry, FileEntryLong, FileHeader, FileList, FileListLong, FileRequest, Holder, HolderList,
    HolderListLong, HolderLong, MAGIC, MAX_FRAME, MAX_LIST_FILES, MAX_LIST_NODES, MAX_NAME_LEN,
    MAX_REQUEST_FRAME, MAX_TOKEN_LEN, NodeEntry, NodeInfo, NodeMode, ProtoError, RangeHeader,
    RangeRequest, Registered, Registration, Request, Response, SearchHit, SearchQuery,
    SearchResults, Target, VERSION,
};

// ---------------------------------------------------------------------------
// A global allocator that records the largest single allocation made by the
// current thread while tracking is on. Tests run on parallel threads, so the
// state is per thread; const-initialised `Cell`s in thread-locals never
// allocate themselves.

struct CountingAlloc;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    let tracking = TRACKING.try_with(Cell::get).unwrap_or(false);
    if tracking {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches thread-local `Cell`s and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the size of the largest single
/// allocation this thread made meanwhile.
fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.with(Cell::get))
}

/// Anything below this is bookkeeping (an error message, a small buffer),
/// not a buffer sized by what the peer announced.
const SMALL: usize = 1024;

// ---------------------------------------------------------------------------
// Helpers.

/// The tag docs/PROTOCOL.md gives each request. The match has no wildcard, so
/// a new variant does not compile until its tag is written down here.
fn request_tag(r: &Request) -> u32 {
    match r {
        Request::Register(_) => 0,
        Request::Unregister(_) => 1,
        Request::ListNodes => 2,
        Request::GetFile(_) => 3,
        Request::ListFiles => 4,
        Request::GetRange(_) => 5,
        Request::ListFilesLong => 6,
        Request::Catalog(_) => 7,
        Request::WhoHas(_) => 8,
        Request::Search(_) => 9,
        Request::Hello => 10,
        Request::ListNodesLong => 11,
        Request::Control(_) => 12,
        Request::Keepalive => 13,
        Request::OpenCircuit(_) => 14,
        Request::JoinCircuit(_) => 15,
        Request::CatalogLong(_) => 16,
        Request::WhoHasLong(_) => 17,
        Request::ControlPunch(_) => 18,
        Request::Punch(_) => 19,
        Request::JoinPunch(_) => 20,
        Request::ListPunchable => 21,
        Request::BlindCatalog(_) => 22,
        Request::BlindWhoHas(_) => 23,
        Request::BlindList(_) => 24,
    }
}

/// The tag docs/PROTOCOL.md gives each response.
fn response_tag(r: &Response) -> u32 {
    match r {
        Response::Registered(_) => 0,
        Response::Unregistered => 1,
        Response::Nodes(_) => 2,
        Response::File(_) => 3,
        Response::NotFound => 4,
        Response::Files(_) => 5,
        Response::Error(_) => 6,
        Response::Range(_) => 7,
        Response::FilesLong(_) => 8,
        Response::CatalogAck(_) => 9,
        Response::Holders(_) => 10,
        Response::SearchResults(_) => 11,
        Response::Hello => 12,
        Response::NodesLong(_) => 13,
        Response::OpenData(_) => 14,
        Response::CircuitReady => 15,
        Response::HoldersLong(_) => 16,
        Response::OpenPunch(_) => 17,
        Response::Rendezvous(_) => 18,
        Response::BlindHolders(_) => 19,
        Response::SealedPage(_) => 20,
    }
}

/// The tag docs/PROTOCOL.md gives each error kind.
fn error_kind_tag(k: ErrorKind) -> u32 {
    match k {
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

const ALL_ERROR_KINDS: [ErrorKind; 9] = [
    ErrorKind::BadRequest,
    ErrorKind::Busy,
    ErrorKind::Forbidden,
    ErrorKind::Unauthorized,
    ErrorKind::UnsupportedVersion,
    ErrorKind::Internal,
    ErrorKind::OutOfRange,
    ErrorKind::Unreachable,
    ErrorKind::Other(77),
];

fn v4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), port)
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        port,
    )
}

/// At least one value of every request variant, with the optional fields
/// both absent and present.
fn sample_requests() -> Vec<Request> {
    vec![
        Request::Register(Registration {
            port: 4000,
            advertised_ip: None,
            token: None,
        }),
        Request::Register(Registration {
            port: u16::MAX,
            advertised_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            token: Some("t".repeat(MAX_TOKEN_LEN)),
        }),
        Request::Unregister(Registration {
            port: 1,
            advertised_ip: Some(IpAddr::V4(Ipv4Addr::BROADCAST)),
            token: Some(String::new()),
        }),
        Request::ListNodes,
        Request::GetFile(FileRequest {
            name: "dir/fichier é.txt".into(),
            offset: u64::MAX,
        }),
        Request::GetFile(FileRequest {
            name: "n".repeat(MAX_NAME_LEN),
            offset: 0,
        }),
        Request::ListFiles,
        Request::GetRange(RangeRequest {
            target: Target::Name("dir/fichier é.txt".into()),
            offset: 0,
            len: u64::MAX,
        }),
        Request::GetRange(RangeRequest {
            target: Target::Hash(ContentHash([0xab; 32])),
            offset: u64::MAX,
            len: 0,
        }),
        Request::ListFilesLong,
        Request::Catalog(CatalogUpdate {
            registration: Registration {
                port: 1,
                advertised_ip: None,
                token: Some("t".into()),
            },
            base_seq: 0,
            seq: u64::MAX,
            reset: true,
            added: vec![CatalogEntry {
                name: "a".into(),
                size: 0,
                hash: ContentHash([2; 32]),
            }],
            removed: vec!["b/c".into()],
        }),
        Request::WhoHas(Target::Name("a".into())),
        Request::WhoHas(Target::Hash(ContentHash([3; 32]))),
        Request::Search(SearchQuery {
            text: String::new(),
            limit: u32::MAX,
        }),
        Request::Hello,
        Request::ListNodesLong,
        Request::Control(Registration {
            port: 4000,
            advertised_ip: None,
            token: Some("s3cret".into()),
        }),
        Request::Keepalive,
        Request::OpenCircuit(v4(41234)),
        Request::OpenCircuit(v6(1)),
        Request::JoinCircuit(u64::MAX),
        Request::CatalogLong(CatalogUpdateLong {
            registration: Registration {
                port: 1,
                advertised_ip: None,
                token: None,
            },
            base_seq: 1,
            seq: 2,
            reset: false,
            added: vec![
                FileEntryLong {
                    name: "new".into(),
                    size: 9,
                    hash: None,
                },
                FileEntryLong {
                    name: "a".into(),
                    size: 0,
                    hash: Some(ContentHash([2; 32])),
                },
            ],
            removed: vec![],
        }),
        Request::WhoHasLong(Target::Name("new".into())),
        Request::WhoHasLong(Target::Hash(ContentHash([3; 32]))),
        Request::ControlPunch(Registration {
            port: 4000,
            advertised_ip: None,
            token: None,
        }),
        Request::Punch(v4(41234)),
        Request::Punch(v6(41234)),
        Request::JoinPunch(0),
        Request::ListPunchable,
        Request::BlindCatalog(BlindCatalogUpdate {
            registration: Registration {
                port: 1,
                advertised_ip: None,
                token: Some("t".into()),
            },
            base_seq: 3,
            seq: 4,
            reset: false,
            added: vec![BlindEntry {
                name_tag: Tag([1; 16]),
                content_tag: Tag([2; 16]),
                record: sealed(1152),
            }],
            removed: vec![Tag([3; 16])],
        }),
        Request::BlindWhoHas(BlindTarget::Name(Tag([4; 16]))),
        Request::BlindWhoHas(BlindTarget::Content(Tag([5; 16]))),
        Request::BlindList(PageRequest {
            cursor: u64::MAX,
            limit: 0,
        }),
    ]
}

/// A sealed record's worth of bytes (the codec does not open it).
fn sealed(len: usize) -> SealedRecord {
    SealedRecord((0..len).map(|i| i as u8).collect())
}

/// At least one value of every response variant and every error kind.
fn sample_responses() -> Vec<Response> {
    let mut responses = vec![
        Response::Registered(Registered {
            addr: v4(4000),
            ttl_secs: 30,
        }),
        Response::Registered(Registered {
            addr: v6(0),
            ttl_secs: u32::MAX,
        }),
        Response::Unregistered,
        Response::Nodes(vec![]),
        Response::Nodes(vec![
            NodeEntry {
                addr: v4(1),
                age_secs: 0,
            },
            NodeEntry {
                addr: v6(65535),
                age_secs: 7,
            },
        ]),
        Response::File(FileHeader { size: 6, offset: 0 }),
        Response::File(FileHeader {
            size: u64::MAX,
            offset: u64::MAX - 1,
        }),
        Response::NotFound,
        Response::Files(FileList {
            entries: vec![],
            truncated: true,
        }),
        Response::Files(FileList {
            entries: vec![
                FileEntry {
                    name: "a".into(),
                    size: 0,
                },
                FileEntry {
                    name: "b/c".into(),
                    size: u64::MAX,
                },
            ],
            truncated: false,
        }),
        Response::Range(RangeHeader {
            size: 6,
            hash: ContentHash([1; 32]),
            offset: 0,
            len: 6,
        }),
        Response::Range(RangeHeader {
            size: 1 << 62,
            hash: ContentHash([0xff; 32]),
            offset: 1 << 61,
            len: 0,
        }),
        Response::FilesLong(FileListLong {
            entries: vec![],
            truncated: true,
        }),
        Response::FilesLong(FileListLong {
            entries: vec![
                FileEntryLong {
                    name: "a".into(),
                    size: 0,
                    hash: None,
                },
                FileEntryLong {
                    name: "b/c".into(),
                    size: u64::MAX,
                    hash: Some(ContentHash([7; 32])),
                },
            ],
            truncated: false,
        }),
        Response::CatalogAck(CatalogAck {
            seq: 1,
            files: 2,
            refused: 3,
        }),
        Response::Holders(HolderList {
            nodes: 2,
            holders: vec![Holder {
                addr: v6(7),
                name: "a".into(),
                size: 1,
                hash: ContentHash([4; 32]),
            }],
            unindexed: vec![v4(9)],
            truncated: false,
        }),
        Response::SearchResults(SearchResults {
            nodes: 0,
            hits: vec![SearchHit {
                name: "b/c".into(),
                size: 9,
                hash: ContentHash([5; 32]),
                holders: u32::MAX,
            }],
            truncated: true,
        }),
        Response::Hello,
        Response::NodesLong(vec![]),
        Response::NodesLong(vec![
            NodeInfo {
                addr: v4(1),
                age_secs: 3,
                mode: NodeMode::Direct,
                key: None,
            },
            NodeInfo {
                addr: v6(41234),
                age_secs: 0,
                mode: NodeMode::Relayed,
                key: Some(proto::keys::NodeKey([7; 32])),
            },
            NodeInfo {
                addr: v4(2),
                age_secs: 0,
                mode: NodeMode::Other(9),
                key: None,
            },
        ]),
        Response::OpenData(0x0123_4567_89ab_cdef),
        Response::CircuitReady,
        Response::HoldersLong(HolderListLong {
            nodes: 3,
            holders: vec![
                HolderLong {
                    addr: v4(1),
                    name: "new".into(),
                    size: 9,
                    hash: Some(ContentHash([4; 32])),
                },
                HolderLong {
                    addr: v6(2),
                    name: "new".into(),
                    size: 10,
                    hash: None,
                },
            ],
            unindexed: vec![v4(9)],
            truncated: true,
        }),
        Response::OpenPunch(u64::MAX),
        Response::Rendezvous(proto::Rendezvous {
            id: 7,
            peer: v4(50000),
            way: proto::PunchWay::Reverse,
        }),
        Response::Rendezvous(proto::Rendezvous {
            id: 8,
            peer: v6(50001),
            way: proto::PunchWay::Simultaneous,
        }),
        Response::Rendezvous(proto::Rendezvous {
            id: 9,
            peer: v4(1),
            way: proto::PunchWay::Other(77),
        }),
        Response::BlindHolders(BlindHolderList {
            nodes: 3,
            holders: vec![
                BlindHolder {
                    addr: v4(1),
                    record: sealed(128),
                },
                BlindHolder {
                    addr: v6(2),
                    record: sealed(256),
                },
            ],
            unindexed: vec![v6(3)],
            truncated: true,
        }),
        Response::SealedPage(SealedPage {
            nodes: 0,
            hits: vec![],
            next: None,
        }),
        Response::SealedPage(SealedPage {
            nodes: 9,
            hits: vec![SealedHit {
                name_tag: Tag([6; 16]),
                content_tag: Tag([7; 16]),
                holders: 2,
                first: v4(4),
                record: sealed(512),
            }],
            next: Some(u64::MAX),
        }),
    ];
    for kind in ALL_ERROR_KINDS {
        responses.push(Response::error(kind, format!("because {}", kind.as_str())));
    }
    responses
}

/// A frame header with any magic, version and length.
fn header(magic: [u8; 4], version: u16, len: u32) -> Vec<u8> {
    let mut h = magic.to_vec();
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h
}

/// A well-formed header followed by `body`.
fn frame_with_body(body: &[u8]) -> Vec<u8> {
    let mut f = header(MAGIC, VERSION, u32::try_from(body.len()).unwrap());
    f.extend_from_slice(body);
    f
}

fn body_of(frame: &[u8]) -> &[u8] {
    &frame[HEADER_LEN..]
}

fn read_request(bytes: &[u8]) -> Result<Request, ProtoError> {
    frame::read(&mut &bytes[..])
}

fn read_response(bytes: &[u8]) -> Result<Response, ProtoError> {
    frame::read(&mut &bytes[..])
}

/// Yields its bytes a few at a time (as a socket may), then panics if read
/// again: proof that the reader stopped where it should have.
struct ThenPanic {
    bytes: Vec<u8>,
    pos: usize,
}

impl ThenPanic {
    fn new(bytes: Vec<u8>) -> ThenPanic {
        ThenPanic { bytes, pos: 0 }
    }
}

impl Read for ThenPanic {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(
            self.pos < self.bytes.len(),
            "read past the {} bytes the reader was meant to consume",
            self.bytes.len()
        );
        let n = buf.len().min(3).min(self.bytes.len() - self.pos);
        buf[..n].copy_from_slice(&self.bytes[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Yields its bytes one at a time, with an `Interrupted` error before each.
struct Stuttering<'a> {
    bytes: &'a [u8],
    interrupt_next: bool,
}

impl Read for Stuttering<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt_next = !self.interrupt_next;
        if self.interrupt_next {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match self.bytes.split_first() {
            Some((&b, rest)) if !buf.is_empty() => {
                buf[0] = b;
                self.bytes = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips and tags.

#[test]
fn every_request_round_trips() {
    for msg in sample_requests() {
        let bytes = frame::encode(&msg).unwrap();
        assert_eq!(read_request(&bytes).unwrap(), msg);
        assert_eq!(frame::decode::<Request>(body_of(&bytes)).unwrap(), msg);
    }
}

#[test]
fn every_response_round_trips() {
    for msg in sample_responses() {
        let bytes = frame::encode(&msg).unwrap();
        assert_eq!(read_response(&bytes).unwrap(), msg);
        assert_eq!(frame::decode::<Response>(body_of(&bytes)).unwrap(), msg);
    }
}

#[test]
fn frame_write_sends_exactly_what_encode_returns() {
    for msg in sample_requests() {
        let mut out = Vec::new();
        frame::write(&mut out, &msg).unwrap();
        assert_eq!(out, frame::encode(&msg).unwrap());
    }
}

#[test]
fn a_reader_that_delivers_byte_by_byte_and_is_interrupted_still_gets_the_message() {
    for msg in sample_responses() {
        let bytes = frame::encode(&msg).unwrap();
        let mut r = Stuttering {
            bytes: &bytes,
            interrupt_next: false,
        };
        assert_eq!(frame::read::<Response>(&mut r).unwrap(), msg);
    }
}

#[test]
fn every_frame_starts_with_magic_version_and_the_body_length() {
    let frames = sample_requests()
        .into_iter()
        .map(|m| frame::encode(&m).unwrap())
        .chain(
            sample_responses()
                .into_iter()
                .map(|m| frame::encode(&m).unwrap()),
        );
    for bytes in frames {
        assert_eq!(&bytes[..4], b"P2PF");
        assert_eq!(&bytes[4..6], &[0, 1]);
        let len = u32::from_be_bytes(bytes[6..10].try_into().unwrap());
        assert_eq!(len as usize, bytes.len() - HEADER_LEN);
    }
    assert_eq!(MAGIC, *b"P2PF");
    assert_eq!(VERSION, 1);
    assert_eq!(HEADER_LEN, 10);
}

#[test]
fn request_tags_are_stable_and_cover_every_variant() {
    let mut seen = vec![false; Request::TAG_COUNT as usize];
    for msg in sample_requests() {
        let bytes = frame::encode(&msg).unwrap();
        let tag = request_tag(&msg);
        assert_eq!(&body_of(&bytes)[..4], &tag.to_be_bytes(), "{msg:?}");
        seen[tag as usize] = true;
    }
    assert!(
        seen.iter().all(|&s| s),
        "Request::TAG_COUNT is {} but the samples cover tags {seen:?}",
        Request::TAG_COUNT
    );
}

#[test]
fn response_tags_are_stable_and_cover_every_variant() {
    let mut seen = vec![false; Response::TAG_COUNT as usize];
    for msg in sample_responses() {
        let bytes = frame::encode(&msg).unwrap();
        let tag = response_tag(&msg);
        assert_eq!(&body_of(&bytes)[..4], &tag.to_be_bytes(), "{msg:?}");
        seen[tag as usize] = true;
    }
    assert!(
        seen.iter().all(|&s| s),
        "Response::TAG_COUNT is {} but the samples cover tags {seen:?}",
        Response::TAG_COUNT
    );
}

#[test]
fn error_kind_tags_are_stable_and_every_kind_round_trips() {
    for kind in ALL_ERROR_KINDS {
        let msg = Response::error(kind, "why");
        let bytes = frame::encode(&msg).unwrap();
        let body = body_of(&bytes);
        assert_eq!(&body[..4], &6u32.to_be_bytes(), "Error is response tag 6");
        assert_eq!(&body[4..8], &error_kind_tag(kind).to_be_bytes(), "{kind:?}");
        assert_eq!(&body[8..16], &3u64.to_be_bytes(), "message length");
        assert_eq!(&body[16..], b"why");
        assert_eq!(read_response(&bytes).unwrap(), msg);
        assert!(!kind.as_str().is_empty());
    }
}

#[test]
fn the_tag_just_past_the_known_ones_is_unknown() {
    let request = frame_with_body(&Request::TAG_COUNT.to_be_bytes());
    assert!(matches!(
        read_request(&request),
        Err(ProtoError::UnknownTag(t)) if t == Request::TAG_COUNT
    ));
    let response = frame_with_body(&Response::TAG_COUNT.to_be_bytes());
    assert!(matches!(
        read_response(&response),
        Err(ProtoError::UnknownTag(t)) if t == Response::TAG_COUNT
    ));
}

// ---------------------------------------------------------------------------
// Oversized frames: refused after the header, without reading or allocating.

#[test]
fn a_huge_length_is_refused_without_reading_the_body_or_allocating() {
    let (result, largest) = largest_allocation_during(|| {
        frame::read::<Response>(&mut ThenPanic::new(header(MAGIC, VERSION, u32::MAX)))
    });
    match result {
        Err(ProtoError::FrameTooLarge { len, limit }) => {
            assert_eq!((len, limit), (u32::MAX, MAX_FRAME));
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert!(
        largest < SMALL,
        "allocated {largest} bytes for a refused frame"
    );

    let (result, largest) = largest_allocation_during(|| {
        frame::read::<Request>(&mut ThenPanic::new(header(MAGIC, VERSION, u32::MAX)))
    });
    assert!(matches!(
        result,
        Err(ProtoError::FrameTooLarge {
            len: u32::MAX,
            limit: MAX_REQUEST_FRAME
        })
    ));
    assert!(
        largest < SMALL,
        "allocated {largest} bytes for a refused frame"
    );
}

#[test]
fn one_byte_over_each_limit_is_refused_without_reading_the_body_or_allocating() {
    let (result, largest) = largest_allocation_during(|| {
        frame::read::<Request>(&mut ThenPanic::new(header(
            MAGIC,
            VERSION,
            MAX_REQUEST_FRAME + 1,
        )))
    });
    match result {
        Err(e @ ProtoError::FrameTooLarge { .. }) => {
            assert_eq!(e.to_string(), "frame of 16385 bytes refused (limit 16384)");
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert!(
        largest < SMALL,
        "allocated {largest} bytes for a refused frame"
    );

    let (result, largest) = largest_allocation_during(|| {
        frame::read::<Response>(&mut ThenPanic::new(header(MAGIC, VERSION, MAX_FRAME + 1)))
    });
    assert!(matches!(
        result,
        Err(ProtoError::FrameTooLarge { len, limit: MAX_FRAME }) if len == MAX_FRAME + 1
    ));
    assert!(
        largest < SMALL,
        "allocated {largest} bytes for a refused frame"
    );
}

#[test]
fn the_allocation_counter_does_see_large_allocations() {
    // Without this, a broken counter would make the tests above pass vacuously.
    let (v, largest) = largest_allocation_during(|| vec![7u8; 100_000]);
    assert_eq!(v.len(), 100_000);
    assert!(largest >= 100_000, "counter saw only {largest} bytes");
}

#[test]
fn a_length_at_the_limit_allocates_at_most_the_limit() {
    // The peer announces the largest allowed body, then closes: the reader
    // may allocate that much, and no more.
    let (result, largest) =
        largest_allocation_during(|| read_request(&header(MAGIC, VERSION, MAX_REQUEST_FRAME)));
    assert!(matches!(result, Err(ProtoError::Truncated)), "{result:?}");
    assert!(
        largest <= MAX_REQUEST_FRAME as usize,
        "allocated {largest} bytes"
    );

    let (result, largest) =
        largest_allocation_during(|| read_response(&header(MAGIC, VERSION, MAX_FRAME)));
    assert!(matches!(result, Err(ProtoError::Truncated)), "{result:?}");
    assert!(largest <= MAX_FRAME as usize, "allocated {largest} bytes");
}

#[test]
fn the_frame_limit_depends_on_the_message_type() {
    // A 20 KiB file listing is a fine response but would be too large a request.
    let listing = Response::Files(FileList {
        entries: (0..1000)
            .map(|i| FileEntry {
                name: format!("file-{i:04}"),
                size: i,
            })
            .collect(),
        truncated: false,
    });
    let bytes = frame::encode(&listing).unwrap();
    assert!(bytes.len() - HEADER_LEN > MAX_REQUEST_FRAME as usize);
    assert_eq!(read_response(&bytes).unwrap(), listing);
    assert!(matches!(
        read_request(&bytes),
        Err(ProtoError::FrameTooLarge {
            limit: MAX_REQUEST_FRAME,
            ..
        })
    ));
}

#[test]
fn encode_refuses_a_request_larger_than_the_request_frame() {
    let msg = Request::GetFile(FileRequest {
        name: "x".repeat(MAX_REQUEST_FRAME as usize),
        offset: 0,
    });
    assert!(matches!(frame::encode(&msg), Err(ProtoError::Limit(_))));
}

#[test]
fn a_length_prefix_inside_the_body_larger_than_the_body_is_refused_without_allocating() {
    // GetFile whose name claims u64::MAX bytes.
    let mut body = 3u32.to_be_bytes().to_vec();
    body.extend_from_slice(&u64::MAX.to_be_bytes());
    let (result, largest) = largest_allocation_during(|| read_request(&frame_with_body(&body)));
    assert!(
        matches!(result, Err(ProtoError::Malformed(_))),
        "{result:?}"
    );
    assert!(largest < SMALL, "allocated {largest} bytes");

    // A node list claiming u64::MAX entries. serde preallocates at most
    // 1 MiB for a sequence whatever its announced length, so this is bounded
    // (well under MAX_FRAME) but not small.
    let mut body = 2u32.to_be_bytes().to_vec();
    body.extend_from_slice(&u64::MAX.to_be_bytes());
    let (result, largest) = largest_allocation_during(|| read_response(&frame_with_body(&body)));
    assert!(
        matches!(result, Err(ProtoError::Malformed(_))),
        "{result:?}"
    );
    assert!(largest <= 1024 * 1024, "allocated {largest} bytes");
}

// ---------------------------------------------------------------------------
// Truncated input.

#[test]
fn every_prefix_of_a_valid_frame_is_closed_or_truncated() {
    let requests = sample_requests()
        .into_iter()
        .map(|m| frame::encode(&m).unwrap());
    for bytes in requests {
        for cut in 0..bytes.len() {
            match read_request(&bytes[..cut]) {
                Err(ProtoError::Closed) => assert_eq!(cut, 0),
                Err(ProtoError::Truncated) => assert!(cut > 0),
                other => panic!("prefix of {cut} bytes of {bytes:02x?}: {other:?}"),
            }
        }
    }
    let responses = sample_responses()
        .into_iter()
        .map(|m| frame::encode(&m).unwrap());
    for bytes in responses {
        for cut in 0..bytes.len() {
            match read_response(&bytes[..cut]) {
                Err(ProtoError::Closed) => assert_eq!(cut, 0),
                Err(ProtoError::Truncated) => assert!(cut > 0),
                other => panic!("prefix of {cut} bytes of {bytes:02x?}: {other:?}"),
            }
        }
    }
}

#[test]
fn every_prefix_of_a_body_fails_to_decode_without_panicking() {
    for msg in sample_responses() {
        let bytes = frame::encode(&msg).unwrap();
        let body = body_of(&bytes);
        for cut in 0..body.len() {
            assert!(
                frame::decode::<Response>(&body[..cut]).is_err(),
                "{cut} bytes of {msg:?} decoded"
            );
        }
    }
}

#[test]
fn the_reader_stops_at_the_end_of_the_frame() {
    // What follows a File header belongs to the caller: the raw file bytes.
    let mut wire = frame::encode(&Response::File(FileHeader { size: 6, offset: 0 })).unwrap();
    wire.extend_from_slice(b"hello\n");
    let mut reader = &wire[..];
    let msg: Response = frame::read(&mut reader).unwrap();
    assert_eq!(msg, Response::File(FileHeader { size: 6, offset: 0 }));
    assert_eq!(reader, b"hello\n");

    // And a reader that may not be read past the frame is not.
    let bytes = frame::encode(&Request::ListNodes).unwrap();
    let msg: Request = frame::read(&mut ThenPanic::new(bytes)).unwrap();
    assert_eq!(msg, Request::ListNodes);
}

#[test]
fn socket_errors_keep_their_meaning() {
    struct Failing(io::ErrorKind);
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
    }
    let timeout = frame::read::<Response>(&mut Failing(io::ErrorKind::WouldBlock));
    assert!(matches!(&timeout, Err(e) if e.is_timeout()), "{timeout:?}");
    let timeout = frame::read::<Response>(&mut Failing(io::ErrorKind::TimedOut));
    assert!(matches!(&timeout, Err(e) if e.is_timeout()), "{timeout:?}");
    let reset = frame::read::<Response>(&mut Failing(io::ErrorKind::ConnectionReset));
    assert!(matches!(reset, Err(ProtoError::Io(_))), "{reset:?}");
}

// ---------------------------------------------------------------------------
// Another protocol, another version, an unknown tag.

#[test]
fn an_http_request_is_bad_magic_named_http() {
    let err = read_request(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").unwrap_err();
    assert!(
        matches!(err, ProtoError::BadMagic(m) if m == *b"GET "),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("HTTP") && text.contains("P2PF"), "{text}");

    // A client that reached a web server instead of a node.
    let err = read_response(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap_err();
    assert!(
        matches!(err, ProtoError::BadMagic(m) if m == *b"HTTP"),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP"));
}

#[test]
fn a_tls_client_hello_is_bad_magic_named_tls() {
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xaa, 0xbb,
    ];
    let err = read_request(&hello).unwrap_err();
    assert!(
        matches!(err, ProtoError::BadMagic([0x16, 0x03, 0x01, 0x02])),
        "{err:?}"
    );
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[test]
fn bad_magic_is_seen_from_the_first_wrong_byte() {
    // The peer sent one wrong byte and closed: that is another program, not a
    // truncated frame.
    let err = read_request(b"G").unwrap_err();
    assert!(
        matches!(err, ProtoError::BadMagic([b'G', 0, 0, 0])),
        "{err:?}"
    );
    let err = read_request(b"P2PX").unwrap_err();
    assert!(
        matches!(err, ProtoError::BadMagic(m) if m == *b"P2PX"),
        "{err:?}"
    );
    // Bad magic wins over an oversized length: nothing is read past the header.
    let err =
        frame::read::<Request>(&mut ThenPanic::new(header(*b"SSH-", 1, u32::MAX))).unwrap_err();
    assert!(
        matches!(err, ProtoError::BadMagic(m) if m == *b"SSH-"),
        "{err:?}"
    );
}

#[test]
fn another_version_is_unsupported() {
    let mut bytes = frame::encode(&Request::ListNodes).unwrap();
    bytes[4..6].copy_from_slice(&2u16.to_be_bytes());
    let err = read_request(&bytes).unwrap_err();
    assert!(matches!(err, ProtoError::UnsupportedVersion(2)), "{err:?}");
    assert!(err.to_string().contains("version 2"), "{err}");

    // Checked before the length, and even if the peer stops after the version.
    let err = frame::read::<Response>(&mut ThenPanic::new(header(MAGIC, 2, u32::MAX))).unwrap_err();
    assert!(matches!(err, ProtoError::UnsupportedVersion(2)), "{err:?}");
    let err = read_response(&header(MAGIC, 0, 0)[..6]).unwrap_err();
    assert!(matches!(err, ProtoError::UnsupportedVersion(0)), "{err:?}");
}

#[test]
fn an_unknown_tag_is_named() {
    let frame = frame_with_body(&99u32.to_be_bytes());
    let err = read_request(&frame).unwrap_err();
    assert!(matches!(err, ProtoError::UnknownTag(99)), "{err:?}");
    assert_eq!(err.to_string(), "unknown message tag 99");
    assert!(matches!(
        read_response(&frame),
        Err(ProtoError::UnknownTag(99))
    ));

    // The tag is checked before the rest of the body: a newer peer's message
    // with fields this version cannot parse still reads as an unknown tag.
    let mut body = 999u32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0xff; 40]);
    assert!(matches!(
        read_request(&frame_with_body(&body)),
        Err(ProtoError::UnknownTag(999))
    ));
    assert!(matches!(
        frame::decode::<Response>(&u32::MAX.to_be_bytes()),
        Err(ProtoError::UnknownTag(u32::MAX))
    ));
}

#[test]
fn short_and_empty_bodies_are_malformed() {
    for body in [&[][..], &[0], &[0, 0, 0]] {
        assert!(matches!(
            read_request(&frame_with_body(body)),
            Err(ProtoError::Malformed(_))
        ));
        assert!(matches!(
            frame::decode::<Response>(body),
            Err(ProtoError::Malformed(_))
        ));
    }
}

// ---------------------------------------------------------------------------
// Bodies that decode but must not be accepted.

#[test]
fn trailing_bytes_inside_the_declared_length_are_refused() {
    for msg in sample_requests() {
        let mut body = body_of(&frame::encode(&msg).unwrap()).to_vec();
        body.push(0);
        let err = read_request(&frame_with_body(&body)).unwrap_err();
        assert!(matches!(err, ProtoError::Malformed(_)), "{msg:?}: {err:?}");
    }
    for msg in sample_responses() {
        let mut body = body_of(&frame::encode(&msg).unwrap()).to_vec();
        body.extend_from_slice(b"extra");
        let err = read_response(&frame_with_body(&body)).unwrap_err();
        assert!(matches!(err, ProtoError::Malformed(_)), "{msg:?}: {err:?}");
    }
}

#[test]
fn invalid_bool_option_and_utf8_are_malformed() {
    // Files { entries: [], truncated: 2 }
    let mut body = 5u32.to_be_bytes().to_vec();
    body.extend_from_slice(&0u64.to_be_bytes());
    body.push(2);
    assert!(matches!(
        read_response(&frame_with_body(&body)),
        Err(ProtoError::Malformed(_))
    ));

    // Register { port, advertised_ip: <option byte 2> }
    let mut body = 0u32.to_be_bytes().to_vec();
    body.extend_from_slice(&4000u16.to_be_bytes());
    body.extend_from_slice(&[2, 0]);
    assert!(matches!(
        read_request(&frame_with_body(&body)),
        Err(ProtoError::Malformed(_))
    ));

    // Register { advertised_ip: Some(<IpAddr tag 2>) }
    let mut body = 0u32.to_be_bytes().to_vec();
    body.extend_from_slice(&4000u16.to_be_bytes());
    body.push(1);
    body.extend_from_slice(&2u32.to_be_bytes());
    body.extend_from_slice(&[0; 16]);
    body.push(0);
    assert!(matches!(
        read_request(&frame_with_body(&body)),
        Err(ProtoError::Malformed(_))
    ));

    // GetFile { name: [0xff, 0xfe] (not UTF-8), offset: 0 }
    let mut body = 3u32.to_be_bytes().to_vec();
    body.extend_from_slice(&2u64.to_be_bytes());
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(&0u64.to_be_bytes());
    assert!(matches!(
        read_request(&frame_with_body(&body)),
        Err(ProtoError::Malformed(_))
    ));
}

#[test]
fn a_node_list_longer_than_max_list_nodes_is_refused() {
    let entries = |n: usize| {
        (0..n)
            .map(|i| NodeEntry {
                addr: v6(i as u16),
                age_secs: i as u32,
            })
            .collect::<Vec<_>>()
    };
    // The longest allowed list, all IPv6, fits in a frame and is accepted.
    let longest = Response::Nodes(entries(MAX_LIST_NODES));
    let bytes = frame::encode(&longest).unwrap();
    assert!(bytes.len() - HEADER_LEN <= MAX_FRAME as usize);
    assert_eq!(read_response(&bytes).unwrap(), longest);

    // One more is refused by the reader (the encoder does not check counts).
    let too_long = frame::encode(&Response::Nodes(entries(MAX_LIST_NODES + 1))).unwrap();
    match read_response(&too_long) {
        Err(ProtoError::Limit(why)) => {
            assert_eq!(why, "list of 100001 nodes refused (limit 100000)");
        }
        other => panic!("expected Limit, got {other:?}"),
    }
}

#[test]
fn a_file_listing_longer_than_max_list_files_is_refused() {
    let listing = |n: usize| {
        Response::Files(FileList {
            entries: (0..n)
                .map(|i| FileEntry {
                    name: i.to_string(),
                    size: 1,
                })
                .collect(),
            truncated: true,
        })
    };
    let longest = listing(MAX_LIST_FILES);
    assert_eq!(
        read_response(&frame::encode(&longest).unwrap()).unwrap(),
        longest
    );
    let err = read_response(&frame::encode(&listing(MAX_LIST_FILES + 1)).unwrap()).unwrap_err();
    assert!(matches!(err, ProtoError::Limit(_)), "{err:?}");
    assert!(err.to_string().contains("10001"), "{err}");
}

#[test]
fn a_sealed_record_of_another_length_than_a_bucket_is_refused() {
    let holders = |len: usize| {
        Response::BlindHolders(BlindHolderList {
            nodes: 1,
            holders: vec![BlindHolder {
                addr: v4(1),
                record: sealed(len),
            }],
            unindexed: vec![],
            truncated: false,
        })
    };
    let catalog = |len: usize| {
        Request::BlindCatalog(BlindCatalogUpdate {
            registration: Registration {
                port: 1,
                advertised_ip: None,
                token: None,
            },
            base_seq: 0,
            seq: 1,
            reset: true,
            added: vec![BlindEntry {
                name_tag: Tag([1; 16]),
                content_tag: Tag([2; 16]),
                record: sealed(len),
            }],
            removed: vec![],
        })
    };
    for len in [128, 256, 512, 1152] {
        assert!(read_response(&frame::encode(&holders(len)).unwrap()).is_ok());
        assert!(read_request(&frame::encode(&catalog(len)).unwrap()).is_ok());
    }
    for len in [0, 127, 129, 1153, 4096] {
        let err = read_response(&frame::encode(&holders(len)).unwrap()).unwrap_err();
        assert!(matches!(err, ProtoError::Limit(_)), "{err:?}");
        assert!(err.to_string().contains(&format!("{len} bytes")), "{err}");
        let err = read_request(&frame::encode(&catalog(len)).unwrap()).unwrap_err();
        assert!(matches!(err, ProtoError::Limit(_)), "{err:?}");
    }
}

#[test]
fn a_page_longer_than_max_list_files_is_refused() {
    let page = |n: usize| {
        Response::SealedPage(SealedPage {
            nodes: 1,
            hits: (0..n)
                .map(|_| SealedHit {
                    name_tag: Tag([1; 16]),
                    content_tag: Tag([2; 16]),
                    holders: 1,
                    first: v4(1),
                    record: sealed(128),
                })
                .collect(),
            next: None,
        })
    };
    assert!(read_response(&frame::encode(&page(MAX_LIST_FILES)).unwrap()).is_ok());
    let err = read_response(&frame::encode(&page(MAX_LIST_FILES + 1)).unwrap()).unwrap_err();
    assert!(matches!(err, ProtoError::Limit(_)), "{err:?}");
}

#[test]
fn a_file_name_longer_than_max_name_len_is_refused() {
    let get = |len: usize| {
        Request::GetFile(FileRequest {
            name: "a".repeat(len),
            offset: 0,
        })
    };
    let longest = get(MAX_NAME_LEN);
    assert_eq!(
        read_request(&frame::encode(&longest).unwrap()).unwrap(),
        longest
    );

    let err = read_request(&frame::encode(&get(MAX_NAME_LEN + 1)).unwrap()).unwrap_err();
    match &err {
        ProtoError::Limit(why) => {
            assert_eq!(why, "file name of 4097 bytes refused (limit 4096)");
        }
        other => panic!("expected Limit, got {other:?}"),
    }

    // The limit counts bytes, not characters: 2049 two-byte characters are too many.
    let err = read_request(
        &frame::encode(&Request::GetFile(FileRequest {
            name: "é".repeat(MAX_NAME_LEN / 2 + 1),
            offset: 0,
        }))
        .unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, ProtoError::Limit(_)), "{err:?}");

    // The longest name a request frame could carry is over the name limit.
    let name_room = MAX_REQUEST_FRAME as usize - 4 - 8 - 8;
    let bytes = frame::encode(&get(name_room)).unwrap();
    assert_eq!(bytes.len() - HEADER_LEN, MAX_REQUEST_FRAME as usize);
    assert!(matches!(read_request(&bytes), Err(ProtoError::Limit(_))));
}

#[test]
fn a_token_longer_than_max_token_len_is_refused() {
    for make in [Request::Register, Request::Unregister] {
        let with_token = |len: usize| {
            make(Registration {
                port: 4000,
                advertised_ip: None,
                token: Some("k".repeat(len)),
            })
        };
        let longest = with_token(MAX_TOKEN_LEN);
        assert_eq!(
            read_request(&frame::encode(&longest).unwrap()).unwrap(),
            longest
        );
        let err =
            read_request(&frame::encode(&with_token(MAX_TOKEN_LEN + 1)).unwrap()).unwrap_err();
        match err {
            ProtoError::Limit(why) => {
                assert_eq!(why, "token of 257 bytes refused (limit 256)");
            }
            other => panic!("expected Limit, got {other:?}"),
        }
    }
}

#[test]
fn an_ipv6_socket_address_loses_its_scope_and_flow_info() {
    // serde's compact form of SocketAddrV6 is (ip, port) only. docs/PROTOCOL.md
    // says so; this test notices if the encoding ever starts carrying them.
    let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        4000,
        0x1234,
        3,
    ));
    let sent = Response::Registered(Registered {
        addr: scoped,
        ttl_secs: 1,
    });
    let bytes = frame::encode(&sent).unwrap();
    assert_eq!(bytes.len() - HEADER_LEN, 4 + 4 + 16 + 2 + 4);
    let Response::Registered(got) = read_response(&bytes).unwrap() else {
        panic!("not Registered");
    };
    let SocketAddr::V6(got) = got.addr else {
        panic!("not IPv6");
    };
    assert_eq!(
        (got.ip(), got.port()),
        (&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), 4000)
    );
    assert_eq!((got.flowinfo(), got.scope_id()), (0, 0));
}

#[test]
fn decode_and_read_agree() {
    // `decode` is `read` without the header: both paths give the same answer.
    let body = body_of(&frame::encode(&Request::ListFiles).unwrap()).to_vec();
    assert_eq!(frame::decode::<Request>(&body).unwrap(), Request::ListFiles);
    let error = ErrorReply {
        kind: ErrorKind::Internal,
        message: "disk on fire".into(),
    };
    let bytes = frame::encode(&Response::Error(error.clone())).unwrap();
    assert_eq!(
        frame::decode::<Response>(body_of(&bytes)).unwrap(),
        Response::Error(error)
    );
}

#[test]
fn an_error_kind_from_a_newer_peer_still_decodes_with_its_message() {
    let mut bytes =
        frame::encode(&Response::error(ErrorKind::Internal, "from the future")).unwrap();
    // The kind code is the 4 bytes after the response tag.
    bytes[frame::HEADER_LEN + 4..frame::HEADER_LEN + 8].copy_from_slice(&1234u32.to_be_bytes());
    match frame::read::<Response>(&mut &bytes[..]).unwrap() {
        Response::Error(reply) => {
            assert_eq!(reply.kind, ErrorKind::Other(1234));
            assert_eq!(reply.message, "from the future");
        }
        other => panic!("unexpected {other:?}"),
    }
}
