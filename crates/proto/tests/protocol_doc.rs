//! The hex dumps in docs/PROTOCOL.md are the real bytes of the protocol.
//!
//! Every fenced block of docs/PROTOCOL.md with the info string `hex id=...`
//! is parsed and compared to `proto::frame::encode` of the value this file
//! lists under the same id, so the document cannot drift from the code: a
//! moved tag, a changed field or a swapped codec fails here, and the failure
//! prints the bytes the code produces, ready to paste into the document.
//!
//! A line of a block is hex byte pairs separated by single spaces, then at
//! least two spaces and an annotation, which is ignored. A line that starts
//! with two spaces carries only an annotation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use proto::{
    ErrorKind, ErrorReply, FileEntry, FileHeader, FileList, FileRequest, NodeEntry, ProtoError,
    Registered, Registration, Request, Response, frame,
};

/// One documented example: the frame a value encodes to, and the raw file
/// bytes that follow it on the wire (empty except after a `File` header).
struct Example {
    frame: Vec<u8>,
    raw_after: &'static [u8],
}

fn request(msg: Request) -> Example {
    Example {
        frame: frame::encode(&msg).expect("example request encodes"),
        raw_after: b"",
    }
}

fn response(msg: Response) -> Example {
    Example {
        frame: frame::encode(&msg).expect("example response encodes"),
        raw_after: b"",
    }
}

fn file(header: FileHeader, raw_after: &'static [u8]) -> Example {
    assert_eq!(
        header.body_len(),
        raw_after.len() as u64,
        "the example's raw bytes must be exactly size - offset long"
    );
    Example {
        frame: frame::encode(&Response::File(header)).expect("example header encodes"),
        raw_after,
    }
}

fn node_v4() -> SocketAddr {
    "192.0.2.10:4000".parse().unwrap()
}

fn node_v6() -> SocketAddr {
    "[2001:db8::7]:4001".parse().unwrap()
}

/// The values docs/PROTOCOL.md shows, by block id. The prose before each
/// block in the document states the same value in Rust syntax.
fn examples() -> BTreeMap<&'static str, Example> {
    let mut ex = BTreeMap::new();
    ex.insert(
        "register-request",
        request(Request::Register(Registration {
            port: 4000,
            advertised_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
            token: Some("s3cret".into()),
        })),
    );
    ex.insert(
        "registered-response",
        response(Response::Registered(Registered {
            addr: node_v4(),
            ttl_secs: 30,
        })),
    );
    ex.insert("list-nodes-request", request(Request::ListNodes));
    ex.insert(
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
    );
    ex.insert(
        "get-file-request",
        request(Request::GetFile(FileRequest {
            name: "hello.txt".into(),
            offset: 0,
        })),
    );
    ex.insert(
        "file-response",
        file(FileHeader { size: 6, offset: 0 }, b"hello\n"),
    );
    ex.insert(
        "resume-request",
        request(Request::GetFile(FileRequest {
            name: "hello.txt".into(),
            offset: 2,
        })),
    );
    ex.insert(
        "resume-response",
        file(FileHeader { size: 6, offset: 2 }, b"llo\n"),
    );
    ex.insert(
        "missing-request",
        request(Request::GetFile(FileRequest {
            name: "nope.txt".into(),
            offset: 0,
        })),
    );
    ex.insert("not-found-response", response(Response::NotFound));
    ex.insert(
        "forbidden-request",
        request(Request::GetFile(FileRequest {
            name: "../etc/passwd".into(),
            offset: 0,
        })),
    );
    ex.insert(
        "forbidden-response",
        response(Response::Error(ErrorReply {
            kind: ErrorKind::Forbidden,
            message: "name leaves the shared directory".into(),
        })),
    );
    ex.insert("list-files-request", request(Request::ListFiles));
    ex.insert(
        "files-response",
        response(Response::Files(FileList {
            entries: vec![
                FileEntry {
                    name: "hello.txt".into(),
                    size: 6,
                },
                FileEntry {
                    name: "docs/a.pdf".into(),
                    size: 1_048_576,
                },
            ],
            truncated: false,
        })),
    );
    ex.insert(
        "unregister-request",
        request(Request::Unregister(Registration {
            port: 4000,
            advertised_ip: None,
            token: None,
        })),
    );
    ex.insert("unregistered-response", response(Response::Unregistered));
    // A multi-source fetch: one piece in the middle of a 48 MiB content.
    let piece_hash: proto::ContentHash =
        "blake3:2fc553ba0cc3fbcd2c5cf4a4f68b43bae08b78749a4494e6572cb8e9a9d0c43c"
            .parse()
            .unwrap();
    ex.insert(
        "mid-range-request",
        request(Request::GetRange(proto::RangeRequest {
            target: proto::Target::Hash(piece_hash),
            offset: 2_097_152,
            len: 2_097_152,
        })),
    );
    ex.insert(
        "mid-range-response",
        response(Response::Range(proto::RangeHeader {
            size: 50_331_648,
            hash: piece_hash,
            offset: 2_097_152,
            len: 2_097_152,
        })),
    );
    ex.insert(
        "unknown-tag-response",
        response(Response::error(
            ErrorKind::BadRequest,
            ProtoError::UnknownTag(5).to_string(),
        )),
    );
    ex
}

/// One `hex id=...` block of the document.
#[derive(Debug)]
struct Block {
    id: String,
    /// Line number of the opening fence, for error messages.
    line: usize,
    bytes: Vec<u8>,
}

fn doc_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md");
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

fn expected_bytes(example: &Example) -> Vec<u8> {
    let mut bytes = example.frame.clone();
    bytes.extend_from_slice(example.raw_after);
    bytes
}

#[test]
fn hex_dumps_in_protocol_md_are_the_real_bytes() {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let blocks = parse_blocks(&doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let examples = examples();

    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for block in &blocks {
        if let Some(first) = seen.insert(block.id.as_str(), block.line) {
            problems.push(format!(
                "block {:?} at line {} repeats the id of the block at line {first}",
                block.id, block.line
            ));
            continue;
        }
        let Some(example) = examples.get(block.id.as_str()) else {
            problems.push(format!(
                "block {:?} at line {} has no value in tests/protocol_doc.rs (extra block)",
                block.id, block.line
            ));
            continue;
        };
        let expected = expected_bytes(example);
        if block.bytes != expected {
            let at = block
                .bytes
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(block.bytes.len().min(expected.len()));
            problems.push(format!(
                "block {:?} at line {} differs from the encoder at byte {at} \
                 (document has {} bytes, encoder {})\n--- document:\n{}--- encoder:\n{}",
                block.id,
                block.line,
                block.bytes.len(),
                expected.len(),
                dump(&block.bytes),
                dump(&expected)
            ));
        }
    }
    for (id, example) in &examples {
        if !seen.contains_key(id) {
            problems.push(format!(
                "no block ```hex id={id}``` in the document; the encoder gives:\n{}",
                dump(&expected_bytes(example))
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} does not match the code:\n\n{}",
        path.display(),
        problems.join("\n\n")
    );
}

#[test]
fn every_documented_example_decodes_back_to_its_value() {
    // The table above is only useful if its frames are valid messages: a
    // request example must read back as a request, a response as a response.
    for (id, example) in examples() {
        let wire = expected_bytes(&example);
        let mut reader = &wire[..];
        if id.ends_with("-request") {
            let msg: Request = frame::read(&mut reader).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(frame::encode(&msg).unwrap(), example.frame, "{id}");
        } else {
            assert!(
                id.ends_with("-response"),
                "id {id:?} ends in neither -request nor -response"
            );
            let msg: Response = frame::read(&mut reader).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(frame::encode(&msg).unwrap(), example.frame, "{id}");
            if let Response::File(header) = msg {
                assert_eq!(reader.len() as u64, header.body_len(), "{id}");
            }
        }
        assert_eq!(
            reader, example.raw_after,
            "{id}: only the raw file bytes may follow the frame"
        );
    }
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
