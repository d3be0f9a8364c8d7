//! The Noise handshake that opens every connection of a private network,
//! both sides of it, over any `Read + Write`.
//!
//! Pattern `Noise_XXpsk3_25519_AESGCM_BLAKE2s`, the PSK being the relay key
//! or the peer key. On the wire (docs/PROTOCOL.md, "The handshake"):
//!
//! ```text
//! I -> R  "P2PN" | version u16 BE = 1 | key u8 (1 relay, 2 peer) | len u16 = 48 | e
//! R -> I  len u16 = 96 | e, ee, s, es
//! I -> R  len u16 = 64 | s, se, psk
//! R -> I  len u16 = 16 | an empty transport message: the confirmation
//! ```
//!
//! The initiator does not wait for the confirmation: its first request
//! follows message 3 at once, encrypted with keys only a holder of the PSK
//! can derive, and the confirmation is read before the first answer. A
//! responder that refuses (wrong or missing secret, no secret at all, busy)
//! answers with a plain frame instead of message 2 or the confirmation:
//! "P2" is never a valid length there (96, 16), so the initiator tells the
//! two apart by the first two bytes, and the user reads the reason.

use std::io::{self, Read, Write};

use snow::HandshakeState;

use proto::frame::read_full;
use proto::keys::{Key, KeyKind, NetworkKeys, NodeKey};
use proto::{ErrorKind, ErrorReply, MAGIC, ProtoError, Response};

use super::framing::{failed, read_handshake_message};
use super::identity::Identity;
use super::noise::builder;
use super::transport::{SecureStream, TAG_LEN};

/// First bytes of a handshake: a plain server reading them knows at once
/// that the peer wants a private network.
pub const SECURE_MAGIC: [u8; 4] = *b"P2PN";
/// Version of the handshake and transport framing.
pub const SECURE_VERSION: u16 = 1;
/// Magic, version and key byte.
pub const PREAMBLE_LEN: usize = 7;
/// Message 1: an ephemeral public key, and the tag of its empty payload (in
/// a PSK pattern `e` also keys the cipher, so even this payload has a tag).
pub const MSG1_LEN: usize = 32 + TAG_LEN;
/// Message 2: ephemeral key, encrypted static key and tag, empty payload's tag.
pub const MSG2_LEN: usize = 32 + 32 + TAG_LEN + TAG_LEN;
/// Message 3: encrypted static key and tag, empty payload's tag.
pub const MSG3_LEN: usize = 32 + TAG_LEN + TAG_LEN;
/// The confirmation: an empty transport message.
pub const CONFIRM_LEN: usize = TAG_LEN;

/// What a refused handshake's plain answer says, word for word (the client
/// prints "relay ADDR refused the handshake: " and this).
pub const WRONG_SECRET: &str = "wrong or missing secret";
/// A plain server's answer to a handshake.
pub const NO_SECRET: &str = "it does not use a secret (start this program without one)";
/// A private server's answer to a plain request.
pub const SECRET_REQUIRED: &str =
    "it requires a secret (give --secret, --secret-file or P2P_SECRET)";

/// The initiator's side: sends the preamble and message 1, checks the
/// responder's static key against `expect` before revealing anything of
/// its own, sends message 3. The confirmation is read with the first answer.
pub fn initiate<S: Read + Write>(
    io: &mut S,
    kind: KeyKind,
    psk: &Key,
    identity: &Identity,
    expect: Option<NodeKey>,
) -> Result<Session, ProtoError> {
    let mut noise = build(psk, identity)
        .and_then(|b| b.build_initiator())
        .map_err(|e| failed(format!("cannot start: {e}")))?;
    let mut out = [0u8; PREAMBLE_LEN + 2 + MSG1_LEN];
    out[..4].copy_from_slice(&SECURE_MAGIC);
    out[4..6].copy_from_slice(&SECURE_VERSION.to_be_bytes());
    out[6] = kind.code();
    out[7..9].copy_from_slice(&(MSG1_LEN as u16).to_be_bytes());
    // snow wants room for a tag even where message 1 has none.
    let mut scratch = [0u8; MSG2_LEN];
    let n = noise
        .write_message(&[], &mut scratch)
        .map_err(|e| failed(format!("cannot write message 1: {e}")))?;
    if n != MSG1_LEN {
        return Err(failed(format!("message 1 came out {n} bytes long")));
    }
    out[9..].copy_from_slice(&scratch[..MSG1_LEN]);
    io.write_all(&out)?;

    let msg2 = read_handshake_message(io, MSG2_LEN)?;
    let mut payload = [0u8; MSG2_LEN];
    noise
        .read_message(&msg2, &mut payload)
        .map_err(|_| failed("message 2 does not decrypt".into()))?;
    let got = noise
        .get_remote_static()
        .and_then(NodeKey::from_slice)
        .ok_or_else(|| failed("message 2 carries no static key".into()))?;
    if let Some(expected) = expect
        && got != expected
    {
        return Err(ProtoError::WrongKey { expected, got });
    }

    let mut msg3 = [0u8; 2 + MSG2_LEN];
    msg3[..2].copy_from_slice(&(MSG3_LEN as u16).to_be_bytes());
    let n = noise
        .write_message(&[], &mut msg3[2..])
        .map_err(|e| failed(format!("cannot write message 3: {e}")))?;
    if n != MSG3_LEN {
        return Err(failed(format!("message 3 came out {n} bytes long")));
    }
    io.write_all(&msg3[..2 + MSG3_LEN])?;
    let transport = noise
        .into_stateless_transport_mode()
        .map_err(|e| failed(format!("cannot finish: {e}")))?;
    Ok(Session {
        noise: transport,
        kind,
        remote: got,
        confirmed: false,
    })
}

/// A completed handshake, to be put over its socket with [`Session::over`].
pub struct Session {
    noise: snow::StatelessTransportState,
    kind: KeyKind,
    remote: NodeKey,
    /// True on the responder's side, which sent the confirmation (its
    /// message 0); false on the initiator's, which reads it first.
    confirmed: bool,
}

impl Session {
    /// Which key the handshake used.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The peer's static key, proven by the handshake.
    pub fn remote(&self) -> NodeKey {
        self.remote
    }

    /// The encrypted stream over `io`, the socket the handshake ran on.
    pub fn over<S>(self, io: S) -> SecureStream<S> {
        let stream = SecureStream::new(io, self.noise).with_remote(self.remote);
        if self.confirmed {
            stream.after_confirmation()
        } else {
            stream.expecting_confirmation(self.kind)
        }
    }
}

/// Why a responder did not complete a handshake, and what to answer.
#[derive(Debug)]
pub struct Refusal {
    /// The plain frame to send before closing, if any.
    pub answer: Option<Box<Response>>,
    /// For the log.
    pub error: ProtoError,
}

impl Refusal {
    fn quiet(error: ProtoError) -> Refusal {
        Refusal {
            answer: None,
            error,
        }
    }

    fn answered(kind: ErrorKind, message: impl Into<String>) -> Refusal {
        let reply = ErrorReply {
            kind,
            message: message.into(),
        };
        Refusal {
            answer: Some(Box::new(Response::Error(reply.clone()))),
            error: ProtoError::HandshakeRefused(reply),
        }
    }
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        Refusal::quiet(e.into())
    }
}

/// The responder's side, from the first byte the initiator sent. Never
/// panics and never allocates past one handshake message, whatever the bytes.
pub fn respond<S: Read + Write>(
    io: &mut S,
    keys: &NetworkKeys,
    identity: &Identity,
) -> Result<Session, Refusal> {
    let mut preamble = [0u8; PREAMBLE_LEN];
    let got = read_full(io, &mut preamble[..4])?;
    if got == 0 {
        return Err(Refusal::quiet(ProtoError::Closed));
    }
    if preamble[..got] != SECURE_MAGIC[..got] {
        if preamble[..got] == MAGIC[..got] {
            return Err(Refusal::answered(ErrorKind::Unauthorized, SECRET_REQUIRED));
        }
        let mut seen = [0u8; 4];
        seen[..got].copy_from_slice(&preamble[..got]);
        return Err(Refusal::quiet(ProtoError::BadMagic(seen)));
    }
    if got < 4 || read_full(io, &mut preamble[4..])? < PREAMBLE_LEN - 4 {
        return Err(Refusal::quiet(ProtoError::Truncated));
    }
    let version = u16::from_be_bytes([preamble[4], preamble[5]]);
    if version != SECURE_VERSION {
        return Err(Refusal::answered(
            ErrorKind::UnsupportedVersion,
            format!(
                "handshake version {version} is not supported (this program speaks version {SECURE_VERSION})"
            ),
        ));
    }
    let Some(kind) = KeyKind::from_code(preamble[6]) else {
        return Err(Refusal::answered(
            ErrorKind::BadRequest,
            format!("unknown key {} in the handshake", preamble[6]),
        ));
    };
    let Some(psk) = keys.get(kind) else {
        return Err(Refusal::answered(
            ErrorKind::Unauthorized,
            format!("it does not take the {} (is this a relay?)", kind.as_str()),
        ));
    };
    let msg1 = read_exact_message(io, MSG1_LEN)?;
    let mut noise: HandshakeState = build(psk, identity)
        .and_then(|b| b.build_responder())
        .map_err(|e| {
            Refusal::answered(
                ErrorKind::Internal,
                format!("cannot start a handshake: {e}"),
            )
        })?;
    let mut scratch = [0u8; MSG2_LEN];
    noise.read_message(&msg1, &mut scratch).map_err(|_| {
        Refusal::answered(
            ErrorKind::BadRequest,
            "message 1 is not a handshake message (its tag does not check)",
        )
    })?;
    let mut msg2 = [0u8; 2 + MSG2_LEN + TAG_LEN];
    msg2[..2].copy_from_slice(&(MSG2_LEN as u16).to_be_bytes());
    let n = noise
        .write_message(&[], &mut msg2[2..])
        .map_err(|e| Refusal::answered(ErrorKind::Internal, format!("cannot answer: {e}")))?;
    if n != MSG2_LEN {
        return Err(Refusal::answered(
            ErrorKind::Internal,
            format!("message 2 came out {n} bytes long"),
        ));
    }
    io.write_all(&msg2[..2 + MSG2_LEN])?;

    let msg3 = read_exact_message(io, MSG3_LEN)?;
    noise
        .read_message(&msg3, &mut scratch)
        .map_err(|_| Refusal::answered(ErrorKind::Unauthorized, WRONG_SECRET))?;
    let remote = noise
        .get_remote_static()
        .and_then(NodeKey::from_slice)
        .ok_or_else(|| Refusal::answered(ErrorKind::BadRequest, "message 3 carries no key"))?;
    let transport = noise
        .into_stateless_transport_mode()
        .map_err(|e| Refusal::answered(ErrorKind::Internal, format!("cannot finish: {e}")))?;
    // The confirmation: an empty message only a holder of the PSK can make.
    let mut confirm = [0u8; 2 + CONFIRM_LEN];
    confirm[..2].copy_from_slice(&(CONFIRM_LEN as u16).to_be_bytes());
    transport
        .write_message(0, &[], &mut confirm[2..])
        .map_err(|e| Refusal::answered(ErrorKind::Internal, format!("cannot confirm: {e}")))?;
    io.write_all(&confirm)?;
    Ok(Session {
        noise: transport,
        kind,
        remote,
        confirmed: true,
    })
}

/// A length prefix that must equal `want`, then that many bytes.
fn read_exact_message<S: Read>(io: &mut S, want: usize) -> Result<Vec<u8>, Refusal> {
    let mut prefix = [0u8; 2];
    match read_full(io, &mut prefix)? {
        0 => return Err(Refusal::quiet(ProtoError::Closed)),
        2 => {}
        _ => return Err(Refusal::quiet(ProtoError::Truncated)),
    }
    let len = usize::from(u16::from_be_bytes(prefix));
    if len != want {
        return Err(Refusal::answered(
            ErrorKind::BadRequest,
            format!("a handshake message of {len} bytes where {want} belong"),
        ));
    }
    let mut msg = vec![0u8; len];
    if read_full(io, &mut msg)? < len {
        return Err(Refusal::quiet(ProtoError::Truncated));
    }
    Ok(msg)
}

fn build<'a>(psk: &'a Key, identity: &'a Identity) -> Result<snow::Builder<'a>, snow::Error> {
    builder()
        .local_private_key(identity.private())?
        .psk(3, psk.bytes())
}
