//! Finding a file: the relay's list of active nodes, then each node in the
//! relay's order until one has the file.
//!
//! Each node is asked for a verified range ([`crate::verified`]): a transfer
//! that breaks in the middle, or a node that sends bytes that fail the
//! proof, resumes from the next node holding the same content hash, from
//! the last verified byte. An older node that does not know range requests
//! is asked with a plain GetFile, and the result is marked unverified; once
//! unverified bytes are out, the fetch goes on as before content hashes
//! (by name and size), since no proof can cover them any more.

use std::io::{self, Read};
use std::net::SocketAddr;

use net::exchange::{self, Connection, Finish, Timeouts};
use proto::{
    ContentHash, ErrorKind, FileEntryLong, FileRequest, NodeEntry, NodeInfo, NodeMode, ProtoError,
    Request, Response, Target,
};

use crate::dial;
pub use crate::dial::Dialer;
use crate::output::{Output, SinkError};
use crate::progress::Progress;
use crate::report::Report;
use net::secure::{NodeKey, Security};

/// Bytes read from a node per read call. A read returns what has arrived, so
/// a larger buffer means fewer calls when the client falls behind: a 1 GiB
/// body over loopback took 4 454 reads (and as many writes to the output) at
/// 256 KiB, 1 874 at 1 MiB (docs/BENCHMARKS.md). 1 MiB still fits in one
/// core's L2 cache here, where the bytes will be checked before output, and
/// memory stays flat.
const CHUNK: usize = 1024 * 1024;

/// How to reach the relay.
#[derive(Debug, Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub timeouts: Timeouts,
    /// Plain, or a private network's keys: the relay is asked under the
    /// relay key, nodes under the peer key.
    pub security: Security,
    /// `--node KEY`: fetch only from the node holding this static key.
    pub pin: Option<NodeKey>,
}

impl Relay {
    /// `host:port`, with brackets around an IPv6 literal.
    pub fn label(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// How to reach the nodes this relay lists.
    pub fn dialer(&self) -> Dialer {
        Dialer {
            relay_host: self.host.clone(),
            relay_port: self.port,
            timeouts: self.timeouts,
            security: self.security.clone(),
            pin: self.pin,
        }
    }

    /// Asks the relay for the active nodes and how each is reached (phase
    /// 2). An older relay, which does not know the long list, is asked for
    /// the plain one: every node in it is direct.
    pub fn nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        match self.ask(&Request::ListNodesLong)? {
            Response::NodesLong(nodes) => Ok(nodes),
            Response::Error(e) if e.kind == ErrorKind::BadRequest => {
                tracing::debug!(
                    "relay {} has no long list ({}); asking for the plain one",
                    self.label(),
                    e.message
                );
                self.plain_nodes()
            }
            other => self.list_refused(other),
        }
    }

    fn plain_nodes(&self) -> anyhow::Result<Vec<NodeInfo>> {
        match self.ask(&Request::ListNodes)? {
            Response::Nodes(nodes) => Ok(nodes
                .into_iter()
                .map(|n: NodeEntry| NodeInfo {
                    addr: n.addr,
                    age_secs: n.age_secs,
                    mode: NodeMode::Direct,
                    key: None,
                })
                .collect()),
            other => self.list_refused(other),
        }
    }

    fn list_refused<T>(&self, response: Response) -> anyhow::Result<T> {
        match response {
            // Only a private network refuses a list as unauthorized: this
            // client has no secret, and the relay requires one.
            Response::Error(e) if e.kind == ErrorKind::Unauthorized => Err(anyhow::anyhow!(
                "relay {} refused the handshake: {}",
                self.label(),
                proto::error::printable(&e.message)
            )),
            Response::Error(e) => Err(anyhow::anyhow!(
                "relay {} refused: {} ({})",
                self.label(),
                e.message,
                e.kind.as_str()
            )),
            other => Err(anyhow::anyhow!(
                "relay {} answered a {} to a list request; is that a relay?",
                self.label(),
                response_name(&other)
            )),
        }
    }

    /// One exchange with the relay (under the relay key in a private
    /// network).
    pub(crate) fn ask(&self, request: &Request) -> anyhow::Result<Response> {
        let unreachable =
            |why: String| anyhow::anyhow!("could not reach relay {}: {why}", self.label());
        let addrs = exchange::resolve(&self.host, self.port)
            .map_err(|e| unreachable(format!("cannot resolve: {}", proto::error::io_reason(&e))))?;
        let to_relay = self.security.to_relay();
        let (_, response) = exchange::call_any_via(&addrs, request, &self.timeouts, &to_relay)
            .map_err(|e| match e {
                ProtoError::Io(_) | ProtoError::Timeout | ProtoError::Closed => {
                    unreachable(e.to_string())
                }
                // "relay 127.0.0.1:7000 refused the handshake: wrong or missing secret"
                e if e.is_handshake() => anyhow::anyhow!("relay {} {e}", self.label()),
                // It answered, but not with anything we can use.
                other => anyhow::anyhow!("relay {} sent a bad answer: {other}", self.label()),
            })?;
        Ok(response)
    }
}

/// How a fetch ended.
#[derive(Debug)]
pub enum Fetched {
    /// Complete: all `size` bytes reached the output.
    Found { size: u64 },
    /// No node had it (or every node that had it failed).
    Missing,
    /// As `Missing`, and not a byte reached the output: another version
    /// may still be tried.
    Nothing,
    /// stdout is a terminal and the file is not text; nothing is reported
    /// yet, since the hint depends on where the user typed the name.
    NotText,
    /// The output refused the bytes; the reason is already reported.
    OutputFailed,
}

/// Fetches `target` (a name, or a content hash) from the first of `nodes`
/// that has it (phase 3).
pub fn fetch(
    target: &Target,
    nodes: &[NodeInfo],
    dialer: &Dialer,
    out: &mut Output,
    report: &Report,
) -> Fetched {
    fetch_expecting(target, None, nodes, dialer, out, report)
}

/// As [`fetch`], accepting only content with hash `expect` when given (the
/// version the relay's index chose).
pub fn fetch_expecting(
    target: &Target,
    expect: Option<ContentHash>,
    nodes: &[NodeInfo],
    dialer: &Dialer,
    out: &mut Output,
    report: &Report,
) -> Fetched {
    let total = nodes.len();
    if total == 0 {
        report.status("no active nodes: start a peer-node, or check the relay address");
        return Fetched::Missing;
    }
    let name = match target {
        Target::Name(name) => name.clone(),
        Target::Hash(hash) => format!("blake3:{}", hash.short()),
    };
    let name = name.as_str();
    let mut progress: Option<Progress> = None;
    let mut transfer = Transfer {
        hash: match target {
            Target::Hash(hash) => Some(*hash),
            Target::Name(_) => expect,
        },
        ..Transfer::default()
    };
    for (i, node) in nodes.iter().enumerate() {
        let label = format!(
            "{}{}, node {} of {total}",
            node.addr,
            dial::via(node),
            i + 1
        );
        let mut tried = if transfer.unverified {
            // Bytes without a proof are out already: go on as before
            // content hashes, by name and size.
            Err(NodeFailure::NoRanges(String::new()))
        } else {
            crate::verified::try_node(node, target, dialer, &mut transfer, out, &mut progress)
        };
        if let (Err(NodeFailure::NoRanges(why)), Target::Name(name)) = (&tried, target) {
            // An older node: a plain GetFile, unverified, unless a content
            // is fixed already (then it cannot prove it holds the same one).
            tried = if transfer.hash.is_none() {
                let legacy = try_node(node, name, dialer, &mut transfer, out, &mut progress);
                if legacy.is_ok() || transfer.written > 0 {
                    transfer.unverified = true;
                }
                legacy
            } else {
                tracing::debug!("{label}: {why}");
                Err(NodeFailure::Refused(
                    "it is an older node that cannot prove its copy is the same content".into(),
                ))
            };
        }
        match tried {
            Ok(()) => {
                if let Some(p) = progress.take() {
                    p.finish();
                }
                let proof = match transfer.hash {
                    Some(hash) if !transfer.unverified => format!("blake3 {}", hash.short()),
                    _ => "unverified: an older node without content hashes".to_string(),
                };
                report.status(&format!(
                    "found on {label} ({} bytes, {proof})",
                    transfer.size()
                ));
                return Fetched::Found {
                    size: transfer.size(),
                };
            }
            Err(NodeFailure::NotHere) => report.status(&format!("not on {label}")),
            Err(NodeFailure::NoRanges(why)) => {
                report.status(&format!("{label} cannot serve by content hash: {why}"))
            }
            Err(NodeFailure::Corrupt(why)) => {
                report.status(&format!("corrupt data from {label}: {why}"))
            }
            Err(NodeFailure::Unreachable(why)) => {
                report.status(&format!("could not reach {label}: {why}"))
            }
            Err(NodeFailure::Refused(why)) => report.status(&format!("{label} refused: {why}")),
            Err(NodeFailure::Keys(why)) => report.status(&format!("{label} {why}")),
            Err(NodeFailure::Broken(why)) => report.status(&format!(
                "transfer from {label} failed after {} of {} bytes: {why}",
                transfer.written,
                transfer.size()
            )),
            Err(NodeFailure::Output(SinkError::NotText)) => return Fetched::NotText,
            Err(NodeFailure::Output(SinkError::Io(e))) => {
                report.error(&format!(
                    "cannot write {name}: {}",
                    proto::error::io_reason(&e)
                ));
                return Fetched::OutputFailed;
            }
        }
    }
    if let Some(p) = progress.take() {
        p.abandon();
    }
    if transfer.written > 0 {
        let holders = match transfer.hash {
            Some(hash) if !transfer.unverified => {
                format!("; no other node could continue blake3 {}", hash.short())
            }
            _ => String::new(),
        };
        report.status(&format!(
            "{name}: incomplete, {} of {} bytes received from {total} active nodes{holders}",
            transfer.written,
            transfer.size()
        ));
        Fetched::Missing
    } else {
        report.status(&format!("not found on any of {total} active nodes"));
        Fetched::Nothing
    }
}

/// What is known of the file so far, across nodes.
#[derive(Debug, Default)]
pub(crate) struct Transfer {
    /// The size the first answering node declared.
    pub(crate) size: Option<u64>,
    /// The content hash the first answering node declared (or the user
    /// asked for); every later byte must belong to it.
    pub(crate) hash: Option<ContentHash>,
    /// Bytes already delivered to the output (all verified, unless
    /// `unverified`).
    pub(crate) written: u64,
    /// An older node served without a proof.
    pub(crate) unverified: bool,
}

impl Transfer {
    fn size(&self) -> u64 {
        self.size.unwrap_or(0)
    }
}

pub(crate) enum NodeFailure {
    NotHere,
    Unreachable(String),
    Refused(String),
    /// The handshake failed: a wrong or missing secret, or a node holding
    /// another key than listed. The text is a predicate: "refused the
    /// handshake: ...", "answered with key ...".
    Keys(String),
    /// The node started sending and stopped, or lied about what it sends.
    Broken(String),
    /// The node sent bytes that fail the proof: not the content it named.
    Corrupt(String),
    /// The node does not know range requests (an older node).
    NoRanges(String),
    Output(SinkError),
}

impl NodeFailure {
    /// A node's answer that is not the one the request wanted: its refusal,
    /// an answer of another kind, or the exchange failing on the way.
    pub(crate) fn of_answer(answer: Result<Response, ProtoError>) -> NodeFailure {
        match answer {
            Ok(Response::Error(e)) => {
                NodeFailure::Refused(format!("{} ({})", e.message, e.kind.as_str()))
            }
            Ok(other) => {
                NodeFailure::Refused(format!("unexpected {} answer", response_name(&other)))
            }
            Err(e @ (ProtoError::Io(_) | ProtoError::Timeout | ProtoError::Closed)) => {
                NodeFailure::Unreachable(e.to_string())
            }
            Err(e) => NodeFailure::Refused(e.to_string()),
        }
    }
}

fn try_node(
    node: &NodeInfo,
    name: &str,
    dialer: &Dialer,
    transfer: &mut Transfer,
    out: &mut Output,
    progress: &mut Option<Progress>,
) -> Result<(), NodeFailure> {
    let addr = node.addr;
    let mut conn = connect(node, dialer)?;
    let request = Request::GetFile(FileRequest {
        name: name.to_string(),
        offset: transfer.written,
    });
    let header = match conn.request(&request) {
        Ok(Response::File(header)) => header,
        Ok(Response::NotFound) => return Err(NodeFailure::NotHere),
        other => return Err(NodeFailure::of_answer(other)),
    };
    if header.offset != transfer.written || header.offset > header.size {
        return Err(NodeFailure::Broken(format!(
            "it answered from byte {} when asked from byte {}",
            header.offset, transfer.written
        )));
    }
    match transfer.size {
        None => transfer.size = Some(header.size),
        Some(size) if size != header.size => {
            return Err(NodeFailure::Refused(format!(
                "its copy has {} bytes, not {size}; cannot resume from it",
                header.size
            )));
        }
        Some(_) => {}
    }
    let progress = progress.get_or_insert_with(|| Progress::new(out.shows_progress(), header.size));
    progress.set_position(transfer.written);
    copy_body(&mut conn, header.body_len(), transfer, out, progress)?;
    if conn.finish() == Finish::ExtraBytes {
        tracing::warn!(
            "{addr} sent more bytes than it declared; only {} were kept",
            header.size
        );
    }
    Ok(())
}

/// Opens a connection to `node`, directly or through a circuit at the
/// relay; a relay that refuses the circuit is a refusal, not an outage,
/// and a failed handshake (wrong secret, another key) is neither.
pub(crate) fn connect(node: &NodeInfo, dialer: &Dialer) -> Result<Connection, NodeFailure> {
    dialer.connect(node).map_err(|e| match e {
        ProtoError::CircuitRefused(_) => NodeFailure::Refused(e.to_string()),
        e if e.is_handshake() => NodeFailure::Keys(e.to_string()),
        e => NodeFailure::Unreachable(e.to_string()),
    })
}

/// Copies exactly `len` bytes from the node to the output.
fn copy_body(
    conn: &mut Connection,
    len: u64,
    transfer: &mut Transfer,
    out: &mut Output,
    progress: &Progress,
) -> Result<(), NodeFailure> {
    let mut body = conn.body(len);
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    let mut left = len;
    while left > 0 {
        let n = match body.read(&mut buf) {
            Ok(0) => {
                return Err(NodeFailure::Broken(
                    "truncated: the node closed the connection early".into(),
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(NodeFailure::Broken(ProtoError::from(e).to_string())),
        };
        out.write_chunk(&buf[..n]).map_err(NodeFailure::Output)?;
        transfer.written += n as u64;
        left -= n as u64;
        progress.set_position(transfer.written);
    }
    Ok(())
}

/// One node's listing: its address, its files (with hashes when asked for
/// and known), and whether it was cut.
pub type Listing = (SocketAddr, Vec<FileEntryLong>, bool);

/// What every node shares, node by node, in the relay's order; with
/// `long`, with content hashes (an older node that cannot list them is
/// asked for the plain listing).
pub fn list_all(nodes: &[NodeInfo], long: bool, dialer: &Dialer, report: &Report) -> Vec<Listing> {
    let total = nodes.len();
    let mut all = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let label = format!(
            "{}{}, node {} of {total}",
            node.addr,
            dial::via(node),
            i + 1
        );
        let ask = |request: &Request| {
            dialer.connect(node).and_then(|mut conn| {
                let response = conn.request(request)?;
                conn.finish();
                Ok(response)
            })
        };
        let mut answer = if long {
            ask(&Request::ListFilesLong)
        } else {
            ask(&Request::ListFiles)
        };
        if let Ok(Response::Error(e)) = &answer
            && long
            && e.kind == ErrorKind::BadRequest
        {
            answer = ask(&Request::ListFiles);
        }
        match answer {
            Ok(Response::FilesLong(list)) => all.push((node.addr, list.entries, list.truncated)),
            Ok(Response::Files(list)) => {
                let entries = list
                    .entries
                    .into_iter()
                    .map(|e| FileEntryLong {
                        name: e.name,
                        size: e.size,
                        hash: None,
                    })
                    .collect();
                all.push((node.addr, entries, list.truncated))
            }
            Ok(Response::Error(e)) => report.status(&format!(
                "{label} cannot list its files: {} ({})",
                e.message,
                e.kind.as_str()
            )),
            Ok(other) => report.status(&format!(
                "{label} answered a {} to a list request",
                response_name(&other)
            )),
            Err(e) if e.is_handshake() => report.status(&format!("{label} {e}")),
            Err(e) => report.status(&format!("could not reach {label}: {e}")),
        }
    }
    all
}

pub(crate) fn response_name(response: &Response) -> &'static str {
    response.name()
}
