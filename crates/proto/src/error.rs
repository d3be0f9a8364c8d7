//! What can go wrong on the wire, worded so that a user can act on it.

use std::fmt;
use std::io;

/// An error reading or writing one message. Every variant's message is a
/// short phrase that reads well after "could not reach node 10.0.0.2:4000: ".
#[derive(Debug)]
pub enum ProtoError {
    /// The socket failed (connection refused, reset, ...).
    Io(io::Error),
    /// A read or write did not complete within its timeout or deadline.
    Timeout,
    /// The peer closed the connection before sending anything.
    Closed,
    /// The peer closed the connection in the middle of a message.
    Truncated,
    /// The first bytes are not our magic: another program is listening there.
    BadMagic([u8; 4]),
    /// The peer speaks a protocol version we do not.
    UnsupportedVersion(u16),
    /// A frame announced a body longer than the limit; nothing was allocated.
    FrameTooLarge { len: u32, limit: u32 },
    /// A message tag this program does not know (a newer peer, or garbage).
    UnknownTag(u32),
    /// The frame body does not decode to a message.
    Malformed(String),
    /// A decoded message breaks a protocol limit (too many nodes, name too long).
    Limit(String),
    /// The peer answered our handshake with a plain refusal (wrong or
    /// missing secret, no secret at all, busy): its reason, made printable.
    HandshakeRefused(crate::ErrorReply),
    /// The handshake broke off on our side: the peer's answer did not
    /// decrypt (it lacks the key), or was not a handshake at all.
    HandshakeFailed(String),
    /// The peer completed the handshake with a static key other than the
    /// one it is listed (or pinned) with.
    WrongKey {
        expected: crate::keys::NodeKey,
        got: crate::keys::NodeKey,
    },
    /// The relay would not open or join a circuit (busy, no such node,
    /// relaying off); its reason, made printable.
    CircuitRefused(crate::ErrorReply),
}

impl ProtoError {
    /// True when the error is the peer being silent past a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ProtoError::Timeout)
    }

    /// True for a failed or refused handshake, or a peer holding the wrong
    /// key: a matter of keys, which retrying does not fix.
    pub fn is_handshake(&self) -> bool {
        matches!(
            self,
            ProtoError::HandshakeRefused(_)
                | ProtoError::HandshakeFailed(_)
                | ProtoError::WrongKey { .. }
        )
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Io(e) => write!(f, "{}", io_reason(e)),
            ProtoError::Timeout => f.write_str("timed out"),
            ProtoError::Closed => f.write_str("connection closed without an answer"),
            ProtoError::Truncated => f.write_str("connection closed in the middle of a message"),
            ProtoError::BadMagic(bytes) => {
                let hint = match bytes {
                    [0x16, 0x03, ..] => " (a TLS handshake)",
                    b"GET " | b"POST" | b"HEAD" | b"PUT " | b"HTTP" => " (HTTP)",
                    _ => "",
                };
                write!(
                    f,
                    "not a p2p-share peer: expected magic \"P2PF\", got {bytes:02x?}{hint}"
                )
            }
            ProtoError::UnsupportedVersion(v) => write!(
                f,
                "protocol version {v} is not supported (this program speaks version {})",
                crate::VERSION
            ),
            ProtoError::FrameTooLarge { len, limit } => {
                write!(f, "frame of {len} bytes refused (limit {limit})")
            }
            ProtoError::UnknownTag(tag) => write!(f, "unknown message tag {tag}"),
            ProtoError::Malformed(why) => write!(f, "malformed message: {why}"),
            ProtoError::Limit(why) => f.write_str(why),
            ProtoError::HandshakeRefused(e) => write!(f, "refused the handshake: {}", e.message),
            ProtoError::HandshakeFailed(why) => write!(f, "failed the handshake: {why}"),
            ProtoError::WrongKey { expected, got } => write!(
                f,
                "answered with key {got}, not with the key {expected} it is listed with; refused"
            ),
            ProtoError::CircuitRefused(e) => {
                write!(
                    f,
                    "relay refused the circuit: {} ({})",
                    e.message,
                    e.kind.as_str()
                )
            }
        }
    }
}

// No `source()`: Display already includes the I/O reason, and a chain
// printer would otherwise say it twice.
impl std::error::Error for ProtoError {}

impl From<io::Error> for ProtoError {
    fn from(e: io::Error) -> Self {
        // A handshake failure met inside a read (the confirmation comes
        // with the first answer) travels as an io::Error: unwrap it.
        if e.get_ref().is_some_and(|inner| inner.is::<ProtoError>()) {
            if let Some(inner) = e.into_inner()
                && let Ok(proto) = inner.downcast::<ProtoError>()
            {
                return *proto;
            }
            return ProtoError::HandshakeFailed("lost error".into());
        }
        match e.kind() {
            // A read timeout surfaces as WouldBlock on Unix and TimedOut elsewhere.
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ProtoError::Timeout,
            io::ErrorKind::UnexpectedEof => ProtoError::Truncated,
            _ => ProtoError::Io(e),
        }
    }
}

/// The reason of an I/O error without Rust's debug decoration: "connection
/// refused", not "Connection refused (os error 111)".
pub fn io_reason(e: &io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(_) => {
            let full = e.to_string();
            match full.find(" (os error") {
                Some(cut) => full[..cut].to_string(),
                None => full,
            }
        }
        None => e.to_string(),
    };
    // std words a failed host lookup "failed to lookup address information:
    // Name or service not known"; callers already say "cannot resolve HOST".
    let text = match text.strip_prefix("failed to lookup address information: ") {
        Some(reason) => reason.to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// One line for a chain of errors, outermost first, joined by ": ", with
/// I/O reasons worded by [`io_reason`]: `could not reach relay
/// 127.0.0.1:7000: connection refused`.
pub fn describe<'a>(
    chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let parts: Vec<String> = chain
        .into_iter()
        .map(|e| match e.downcast_ref::<io::Error>() {
            Some(io) => io_reason(io),
            None => e.to_string(),
        })
        .collect();
    parts.join(": ")
}

/// Longest error message passed on from a peer, in bytes.
const MAX_MESSAGE: usize = 1024;

/// Text a peer sent for a person to read, made safe to show on a terminal:
/// control characters (an escape sequence that retitles or clears the
/// terminal, a carriage return that rewrites the line) and bidirectional
/// overrides (which make text read differently than it is) are shown
/// escaped, and the length is capped.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE));
    for c in text.chars() {
        if out.len() >= MAX_MESSAGE {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_and_bidi_characters_and_caps_the_length() {
        assert_eq!(printable("no such file"), "no such file");
        assert_eq!(printable("é\tü"), "é\\tü");
        assert_eq!(printable("\x1b]0;pwned\x07"), "\\u{1b}]0;pwned\\u{7}");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        let long = printable(&"x".repeat(10 * MAX_MESSAGE));
        assert!(long.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(long.ends_with('…'));
    }

    #[test]
    fn io_reason_drops_the_os_error_number() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_reason(&e), "connection refused");
    }

    #[test]
    fn io_reason_drops_std_lookup_wording() {
        let e = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(io_reason(&e), "name or service not known");
    }

    #[test]
    fn bad_magic_names_http_and_tls() {
        assert!(ProtoError::BadMagic(*b"GET ").to_string().contains("HTTP"));
        assert!(
            ProtoError::BadMagic([0x16, 0x03, 0x01, 0x02])
                .to_string()
                .contains("TLS")
        );
    }
}
