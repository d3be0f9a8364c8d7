//! Keys of a private network (docs/SECURITY.md, "Private networks").
//!
//! One secret per network; two keys derived from it with BLAKE3's
//! `derive_key`, each under its own context string, so that holding one
//! says nothing about the other:
//! - the **relay key** admits a peer to the relay (registration, listing,
//!   circuits), and lets the relay dial a node back;
//! - the **peer key** is the PSK of every handshake between a client and a
//!   node, direct or through a circuit. A relay given only the relay key
//!   (someone else's relay) cannot complete one, so it can neither read a
//!   relayed byte nor pose as a node;
//! - the **index key** is derived from the peer key (never from the relay
//!   key): tags and sealed records of the blind index (`crate::blind`) are
//!   made under it, so a relay given only the relay key can neither read
//!   the catalogs it holds nor compute the tag of a name.
//!
//! Each node also has a static X25519 key pair, its identity: revealed
//! (authenticated) in every handshake, listed by the relay as a [`NodeKey`],
//! and checked by the client. The pair itself, and the file it is kept in,
//! live one crate up (`net::secure::Identity`): this file is only what the
//! spec pins (contexts, derivation, the key's text form).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Context string of the relay key: never change it, or every network's
/// keys change (docs/vectors/secure/key-derivation.json pins it).
pub const RELAY_KEY_CONTEXT: &str = "p2p-share 2026-01-01 relay key v1";
/// Context string of the peer key.
pub const PEER_KEY_CONTEXT: &str = "p2p-share 2026-01-01 peer key v1";
/// Context string of the index key, derived from the peer key's bytes.
pub const INDEX_KEY_CONTEXT: &str = "p2p-share 2026-01-01 index key v1";

/// Longest secret accepted, in bytes (from a flag, the environment or a file).
pub const MAX_SECRET_LEN: usize = 4096;

/// A 32-byte symmetric key: the relay key or the peer key. Its Debug output
/// never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, for `peer-client --show-relay-key`.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Key, String> {
        parse_hex32(text.trim()).map(Key)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

/// Which of the two keys a handshake uses; sent in the handshake preamble
/// (docs/PROTOCOL.md, "Private networks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Byte 1: to or from the relay.
    Relay,
    /// Byte 2: between a client and a node.
    Peer,
}

impl KeyKind {
    pub fn code(self) -> u8 {
        match self {
            KeyKind::Relay => 1,
            KeyKind::Peer => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<KeyKind> {
        match code {
            1 => Some(KeyKind::Relay),
            2 => Some(KeyKind::Peer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Relay => "relay key",
            KeyKind::Peer => "peer key",
        }
    }
}

/// The keys one program holds. A relay needs only the relay key; nodes and
/// clients derive both from the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkKeys {
    pub relay: Key,
    pub peer: Option<Key>,
}

impl NetworkKeys {
    /// Both keys, from the network's secret.
    pub fn from_secret(secret: &[u8]) -> NetworkKeys {
        NetworkKeys {
            relay: Key(blake3::derive_key(RELAY_KEY_CONTEXT, secret)),
            peer: Some(Key(blake3::derive_key(PEER_KEY_CONTEXT, secret))),
        }
    }

    /// The relay key alone (`relay --relay-key`).
    pub fn relay_only(relay: Key) -> NetworkKeys {
        NetworkKeys { relay, peer: None }
    }

    /// The index key (docs/PROTOCOL.md, "The blind index"): from the peer
    /// key, so whoever holds only the relay key cannot compute it. None for
    /// a relay.
    pub fn index(&self) -> Option<Key> {
        let peer = self.peer.as_ref()?;
        Some(Key(blake3::derive_key(INDEX_KEY_CONTEXT, &peer.0)))
    }

    pub fn get(&self, kind: KeyKind) -> Option<&Key> {
        match kind {
            KeyKind::Relay => Some(&self.relay),
            KeyKind::Peer => self.peer.as_ref(),
        }
    }
}

/// A node's public static key: what the relay lists and a client checks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeKey(pub [u8; 32]);

impl NodeKey {
    pub fn from_slice(bytes: &[u8]) -> Option<NodeKey> {
        bytes.try_into().ok().map(NodeKey)
    }

    pub fn from_hex(text: &str) -> Result<NodeKey, String> {
        parse_hex32(text.trim()).map(NodeKey)
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({self})")
    }
}

impl std::str::FromStr for NodeKey {
    type Err = String;
    fn from_str(text: &str) -> Result<NodeKey, String> {
        NodeKey::from_hex(text)
    }
}

/// Refuses an empty or oversized secret.
pub fn check_secret(secret: &[u8]) -> Result<(), String> {
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    if secret.len() > MAX_SECRET_LEN {
        return Err(format!("the secret is longer than {MAX_SECRET_LEN} bytes"));
    }
    Ok(())
}

/// Lower-case hex of any bytes (keys, tags).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly 64 hex digits into 32 bytes.
pub fn parse_hex32(text: &str) -> Result<[u8; 32], String> {
    if text.len() != 64 {
        return Err(format!(
            "expected 64 hex digits, got {} characters",
            text.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
        out[i] = u8::from_str_radix(digits, 16)
            .map_err(|_| format!("`{}` is not a hex byte", digits.escape_debug()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_differ_and_depend_on_the_secret() {
        let a = NetworkKeys::from_secret(b"one");
        let b = NetworkKeys::from_secret(b"two");
        assert_ne!(a.relay, a.peer.clone().unwrap());
        assert_ne!(a.relay, b.relay);
        assert_ne!(a.peer, b.peer);
        let index = a.index().unwrap();
        assert_ne!(index, a.relay);
        assert_ne!(Some(index.clone()), a.peer);
        assert_ne!(Some(index), b.index());
        assert_eq!(NetworkKeys::relay_only(a.relay.clone()).index(), None);
    }

    #[test]
    fn hex_round_trips_and_refuses_nonsense() {
        let key = Key([0xab; 32]);
        assert_eq!(Key::from_hex(&key.to_hex()).unwrap(), key);
        assert_eq!(Key::from_hex(&format!(" {}\n", key.to_hex())).unwrap(), key);
        for bad in ["", "ab", &"g".repeat(64), &"é".repeat(32), &"a".repeat(65)] {
            assert!(Key::from_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let keys = NetworkKeys::from_secret(b"s");
        assert!(!format!("{keys:?}").contains(&keys.relay.to_hex()[..8]));
    }
}
