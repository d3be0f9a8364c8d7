//! "Links" (docs/PROTOCOL.md): one line of text that carries everything a
//! client needs to fetch a file, in the spirit of BitTorrent's magnet links
//! (BEP 9):
//!
//! ```text
//! p2p-share:?xt=blake3:<64 hex>&dn=<name>&xl=<size>&tr=<host:port>&tr=...
//! ```
//!
//! - `xt` (exact topic, required, once): the content hash, as a fetch by
//!   hash takes it. It alone decides which bytes are accepted.
//! - `dn` (display name, at most once): the name to save under.
//! - `xl` (exact length, at most once): the size in bytes, decimal.
//! - `tr` (relay, repeatable, at most [`MAX_LINK_RELAYS`]): a relay of the
//!   network as `HOST:PORT` (`[V6]:PORT`), as BEP 9's `tr` names trackers.
//!
//! Values are percent-encoded (RFC 3986). The printer leaves only the
//! unreserved characters and `:` `/` `@` as they are (all three are allowed
//! in a URI's query), so a printed link survives a shell word, a chat
//! message and a URL parser alike; the parser decodes any `%XX` and, as
//! magnet links from the wild use it, `+` as a space (the printer writes a
//! `+` as `%2B`, so printing then parsing gives back what was printed).
//! Unknown keys are ignored, as BEP 9 ignores what it does not know, so a
//! later version may add some. Everything else that is not exactly this is
//! refused with a reason: a link is typed and pasted by people, and a
//! silently half-read link would fetch something else than was meant.
//!
//! Pure text in and out: no I/O. What the client does with a link (its
//! relays added to the command line's, `dn` for `-o DIR/`) is the client's.

use std::fmt;
use std::str::FromStr;

use crate::ContentHash;
use crate::MAX_NAME_LEN;

/// What every link starts with (the scheme is matched in either case, as
/// RFC 3986 says schemes are).
pub const LINK_PREFIX: &str = "p2p-share:?";

/// Longest link accepted, in bytes: a name of [`MAX_NAME_LEN`] bytes all
/// percent-encoded (three bytes each), the relays and some room.
pub const MAX_LINK_LEN: usize = 3 * MAX_NAME_LEN + 4096;

/// Most relays (`tr`) one link may name.
pub const MAX_LINK_RELAYS: usize = 16;

/// Longest relay host name (DNS's limit).
const MAX_HOST_LEN: usize = 253;

/// A relay named in a link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkRelay {
    /// A host name or an IP address, without brackets.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for LinkRelay {
    /// `host:port`, `[v6]:port` for an IPv6 literal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for LinkRelay {
    type Err = LinkError;

    /// `HOST:PORT`, or `[V6]:PORT`; the port from 1 to 65535.
    fn from_str(text: &str) -> Result<LinkRelay, LinkError> {
        let bad = |why: &str| LinkError(format!("tr={text:?}: {why}"));
        let (host, port) = text.rsplit_once(':').ok_or_else(|| bad("not HOST:PORT"))?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .filter(|h| h.contains(':'))
                .ok_or_else(|| bad("brackets hold an IPv6 address: [ADDR]:PORT"))?,
            None if host.contains(':') => return Err(bad("write an IPv6 address as [ADDR]:PORT")),
            None => host,
        };
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return Err(bad("the host must be 1 to 253 bytes"));
        }
        // A host name, an IPv4 or an IPv6 address: nothing a resolver or a
        // status line could take for something else.
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'))
        {
            return Err(bad("the host has characters no host name or address has"));
        }
        let port = decimal(port)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        Ok(LinkRelay {
            host: host.to_string(),
            port,
        })
    }
}

/// A link: a content, and what helps find and save it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `xt`: the only thing that decides which bytes are accepted.
    pub hash: ContentHash,
    /// `dn`: a name to save under (never empty).
    pub name: Option<String>,
    /// `xl`: the size in bytes.
    pub size: Option<u64>,
    /// `tr`: relays of the network, in order, without duplicates.
    pub relays: Vec<LinkRelay>,
}

/// Why a text is not a link, for a one-line error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError(pub String);

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a p2p-share link: {}", self.0)
    }
}

impl std::error::Error for LinkError {}

impl Link {
    /// Whether `text` is meant as a link (it starts with the scheme), so a
    /// malformed one gets the link's error rather than being taken for a
    /// file name.
    pub fn looks_like(text: &str) -> bool {
        text.len() >= LINK_PREFIX.len()
            && text.is_char_boundary(LINK_PREFIX.len() - 1)
            && text[..LINK_PREFIX.len() - 1]
                .eq_ignore_ascii_case(&LINK_PREFIX[..LINK_PREFIX.len() - 1])
    }
}

impl FromStr for Link {
    type Err = LinkError;

    fn from_str(text: &str) -> Result<Link, LinkError> {
        if text.len() > MAX_LINK_LEN {
            return Err(LinkError(format!(
                "longer than {MAX_LINK_LEN} bytes ({})",
                text.len()
            )));
        }
        let scheme = LINK_PREFIX.len() - 1;
        if !Link::looks_like(text) || !text[scheme..].starts_with('?') {
            return Err(LinkError(format!("it must start with {LINK_PREFIX}")));
        }
        let query = &text[LINK_PREFIX.len()..];
        // A fragment is the browser's, never sent: a link has none.
        if query.contains('#') {
            return Err(LinkError("a `#` must be written %23".to_string()));
        }
        let mut hash = None;
        let mut name = None;
        let mut size = None;
        let mut relays: Vec<LinkRelay> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| LinkError(format!("{:?} has no `=`", short(pair))))?;
            let once = |seen: bool| {
                if seen {
                    Err(LinkError(format!("{key}= is given twice")))
                } else {
                    Ok(())
                }
            };
            match key {
                "xt" => {
                    once(hash.is_some())?;
                    let value = decode(value)?;
                    let parsed = value
                        .parse::<ContentHash>()
                        .map_err(|e| LinkError(format!("xt: {e}")))?;
                    hash = Some(parsed);
                }
                "dn" => {
                    once(name.is_some())?;
                    let value = decode(value)?;
                    if value.is_empty() || value.len() > MAX_NAME_LEN {
                        return Err(LinkError(format!(
                            "dn must be 1 to {MAX_NAME_LEN} bytes (got {})",
                            value.len()
                        )));
                    }
                    if value.contains('\0') {
                        return Err(LinkError("dn holds a NUL byte".to_string()));
                    }
                    name = Some(value);
                }
                "xl" => {
                    once(size.is_some())?;
                    let value = decode(value)?;
                    let parsed = decimal(&value).ok_or_else(|| {
                        LinkError(format!(
                            "xl={:?} is not a size in bytes (decimal digits)",
                            short(&value)
                        ))
                    })?;
                    size = Some(parsed);
                }
                "tr" => {
                    let relay = decode(value)?.parse::<LinkRelay>()?;
                    if !relays.contains(&relay) {
                        if relays.len() == MAX_LINK_RELAYS {
                            return Err(LinkError(format!(
                                "more than {MAX_LINK_RELAYS} relays (tr=)"
                            )));
                        }
                        relays.push(relay);
                    }
                }
                // Unknown keys (x.*, later versions' keys) are skipped,
                // as BEP 9 does; they still must be well formed.
                _ => {
                    decode(value)?;
                }
            }
        }
        let hash =
            hash.ok_or_else(|| LinkError("xt=blake3:<64 hex digits> is missing".to_string()))?;
        Ok(Link {
            hash,
            name,
            size,
            relays,
        })
    }
}

impl fmt::Display for Link {
    /// The canonical form: xt, dn, xl, then each tr, in that order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{LINK_PREFIX}xt=blake3:{}", self.hash)?;
        if let Some(name) = &self.name {
            write!(f, "&dn={}", Encoded(name))?;
        }
        if let Some(size) = self.size {
            write!(f, "&xl={size}")?;
        }
        for relay in &self.relays {
            write!(f, "&tr={}", Encoded(&relay.to_string()))?;
        }
        Ok(())
    }
}

/// A value percent-encoded: every byte but the unreserved characters and
/// `:` `/` `@` as `%XX` (upper case, as RFC 3986 recommends).
struct Encoded<'a>(&'a str);

impl fmt::Display for Encoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.as_bytes() {
            if b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'@')
            {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// A value percent-decoded (`+` is a space), which must then be UTF-8.
fn decode(value: &str) -> Result<String, LinkError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        return Err(LinkError(format!(
                            "{:?}: a `%` must be followed by two hex digits",
                            short(value)
                        )));
                    }
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| LinkError(format!("{:?} does not decode to UTF-8", short(value))))
}

/// Decimal digits only (no sign, no space), as a u64.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// At most 40 characters of `text`, for error messages about long input.
fn short(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    fn hash() -> ContentHash {
        format!("blake3:{HEX}").parse().unwrap()
    }

    fn relay(host: &str, port: u16) -> LinkRelay {
        LinkRelay {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn the_printed_form_is_the_documented_one() {
        let link = Link {
            hash: hash(),
            name: Some("my report (final).pdf".to_string()),
            size: Some(1_048_576),
            relays: vec![relay("10.0.0.9", 7000), relay("::1", 7001)],
        };
        let text = link.to_string();
        assert_eq!(
            text,
            format!(
                "p2p-share:?xt=blake3:{HEX}&dn=my%20report%20%28final%29.pdf&xl=1048576\
                 &tr=10.0.0.9:7000&tr=%5B::1%5D:7001"
            )
        );
        assert_eq!(text.parse::<Link>().unwrap(), link);
        // docs/PROTOCOL.md's example is this one.
        let doc = include_str!("../../../docs/PROTOCOL.md");
        assert!(
            doc.lines().any(|l| l == text),
            "docs/PROTOCOL.md, \"Links\": the example is not {text}"
        );
        // The hash alone is a link.
        let bare = Link {
            hash: hash(),
            name: None,
            size: None,
            relays: Vec::new(),
        };
        assert_eq!(bare.to_string(), format!("p2p-share:?xt=blake3:{HEX}"));
    }

    #[test]
    fn the_parser_takes_what_people_paste() {
        // Any order, `+` for a space, lower-case escapes, unknown keys,
        // empty pairs, the scheme in capitals, a duplicate relay once.
        let text = format!(
            "P2P-Share:?dn=a+b%c3%a9.txt&&x.foo=bar&tr=host.example:7000&xt=blake3:{}&tr=host.example:7000&xl=0",
            HEX.to_uppercase()
        );
        let link: Link = text.parse().unwrap();
        assert_eq!(link.hash, hash());
        assert_eq!(link.name.as_deref(), Some("a bé.txt"));
        assert_eq!(link.size, Some(0));
        assert_eq!(link.relays, vec![relay("host.example", 7000)]);
        assert!(Link::looks_like(&text));
        assert!(!Link::looks_like("p2p-shar"));
        assert!(!Link::looks_like("blake3:00"));
    }

    #[test]
    fn what_is_not_a_link_says_why() {
        let xt = format!("xt=blake3:{HEX}");
        let cases = [
            ("p2p-share:xt=1".to_string(), "must start with"),
            ("magnet:?xt=urn:btih:00".to_string(), "must start with"),
            ("p2p-share:?dn=a".to_string(), "xt=blake3"),
            ("p2p-share:?xt=urn:btih:00".to_string(), "xt:"),
            (format!("p2p-share:?{xt}&{xt}"), "twice"),
            (format!("p2p-share:?{xt}&dn=a&dn=b"), "twice"),
            (format!("p2p-share:?{xt}&dn="), "dn must be"),
            (format!("p2p-share:?{xt}&dn=a%00b"), "NUL"),
            (format!("p2p-share:?{xt}&dn=%ff"), "UTF-8"),
            (format!("p2p-share:?{xt}&dn=a%4"), "two hex digits"),
            (format!("p2p-share:?{xt}&xl=-1"), "xl="),
            (format!("p2p-share:?{xt}&xl=18446744073709551616"), "xl="),
            (format!("p2p-share:?{xt}&tr=host"), "HOST:PORT"),
            (format!("p2p-share:?{xt}&tr=host:0"), "port"),
            (format!("p2p-share:?{xt}&tr=host:65536"), "port"),
            (format!("p2p-share:?{xt}&tr=::1:7000"), "IPv6"),
            (format!("p2p-share:?{xt}&tr=[host]:7000"), "brackets"),
            (format!("p2p-share:?{xt}&tr=:7000"), "host"),
            (format!("p2p-share:?{xt}&tr=a%20b:7000"), "characters"),
            (format!("p2p-share:?{xt}&nokey"), "no `=`"),
            (format!("p2p-share:?{xt}#frag"), "%23"),
            (
                format!("p2p-share:?{xt}&dn={}", "a".repeat(MAX_LINK_LEN)),
                "longer",
            ),
        ];
        for (text, why) in cases {
            let e = text.parse::<Link>().unwrap_err().to_string();
            assert!(e.starts_with("not a p2p-share link: "), "{e}");
            assert!(e.contains(why), "{text:.80}: {e}");
        }
        let many: String = (1..=MAX_LINK_RELAYS + 1)
            .map(|p| format!("&tr=h:{p}"))
            .collect();
        let e = format!("p2p-share:?{xt}{many}")
            .parse::<Link>()
            .unwrap_err();
        assert!(e.to_string().contains("more than 16"), "{e}");
    }

    fn any_relay() -> impl Strategy<Value = LinkRelay> {
        let host = prop_oneof![
            "[a-z0-9][a-z0-9.-]{0,30}",
            any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
        ];
        (host, 1..=u16::MAX).prop_map(|(host, port)| LinkRelay { host, port })
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_link_back(
            bytes in any::<[u8; 32]>(),
            name in proptest::option::of("[^\u{0}]{1,64}"),
            size in proptest::option::of(any::<u64>()),
            relays in proptest::collection::vec(any_relay(), 0..=MAX_LINK_RELAYS),
        ) {
            let mut unique: Vec<LinkRelay> = Vec::new();
            for r in relays {
                if !unique.contains(&r) {
                    unique.push(r);
                }
            }
            let link = Link { hash: ContentHash(bytes), name, size, relays: unique };
            let text = link.to_string();
            // One shell word, one line: nothing a shell or a chat splits on.
            prop_assert!(text.bytes().all(|b| b.is_ascii_graphic()), "{}", text);
            prop_assert_eq!(text.parse::<Link>().unwrap(), link);
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panic(text in "p2p-share:\\?.{0,200}") {
            if let Ok(link) = text.parse::<Link>() {
                // What parses prints in a form that parses to the same.
                prop_assert_eq!(link.to_string().parse::<Link>().unwrap(), link);
            }
        }
    }
}
