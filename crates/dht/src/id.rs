//! The DHT id of a file: the 20-byte key its holders announce under and
//! clients look up, derived from the file's BLAKE3 content hash.
//!
//! - **Plain network**: `id = BLAKE3 derive_key(ID_CONTEXT, hash)[..20]`.
//! - **Private network** (`--secret`): `key = BLAKE3 derive_key(KEY_CONTEXT,
//!   secret)`, then `id = BLAKE3 keyed_hash(key, hash)[..20]`.
//! - **A private network's relays** ([`DhtId::relays`]): `id = BLAKE3
//!   derive_key(RELAYS_CONTEXT, relay key)[..20]`.
//!
//! Why derived rather than the hash itself cut to 20 bytes: the context
//! string keeps our ids apart from every other use of BLAKE3 on the DHT, so
//! nobody else's announces land on ours by accident. Why 20 bytes: the
//! Mainline DHT's key space is 160 bits (BEP 5). A plain id is public by
//! design: anyone who knows a file's hash can compute it and find holders.
//! A keyed id needs the secret: outsiders can neither tell which file an id
//! stands for (they cannot test a guessed hash), nor link an announce in one
//! network to an announce of the same file in another (docs/SECURITY.md,
//! "The DHT").
//!
//! Pure functions with known-answer vectors in docs/vectors/dht/dht_ids.json.

use std::fmt;

/// Context string of plain ids: never change it, or every id changes and
/// nodes and clients of different versions no longer meet.
pub const ID_CONTEXT: &str = "p2p-share 2026-01-01 dht id v1";

/// Context string of the DHT key derived from a private network's secret.
pub const KEY_CONTEXT: &str = "p2p-share 2026-01-01 dht key v1";

/// Context string of the id a private network's relays announce under.
pub const RELAYS_CONTEXT: &str = "p2p-share 2026-12-05 relays id v1";

/// A file's id on the DHT (an "info hash" in BEP 5's words).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DhtId(pub [u8; 20]);

impl DhtId {
    /// The id of the file whose BLAKE3 hash is `hash`: plain without a key,
    /// keyed with one.
    pub fn derive(hash: &[u8; 32], key: Option<&NetworkKey>) -> DhtId {
        let full = match key {
            None => blake3::derive_key(ID_CONTEXT, hash),
            Some(key) => *blake3::keyed_hash(&key.0, hash).as_bytes(),
        };
        let mut id = [0u8; 20];
        id.copy_from_slice(&full[..20]);
        DhtId(id)
    }

    /// The id a private network's relays announce under (`relay --dht`)
    /// and its clients look up when no relay they were given answers:
    /// `derive_key(RELAYS_CONTEXT, relay key)`, first 20 bytes. Derived from
    /// the relay key because a relay may hold nothing else (`--relay-key`);
    /// every member can derive it from the secret, and outsiders cannot.
    pub fn relays(relay_key: &[u8; 32]) -> DhtId {
        let full = blake3::derive_key(RELAYS_CONTEXT, relay_key);
        let mut id = [0u8; 20];
        id.copy_from_slice(&full[..20]);
        DhtId(id)
    }

    /// 40 lower-case hex digits, as BitTorrent tools print an info hash.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// 40 hex digits, either case.
    pub fn from_hex(text: &str) -> Option<DhtId> {
        if text.len() != 40 || !text.is_ascii() {
            return None;
        }
        let mut id = [0u8; 20];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(DhtId(id))
    }

    pub(crate) fn to_mainline(self) -> mainline::Id {
        mainline::Id::from(self.0)
    }
}

impl fmt::Display for DhtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for DhtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhtId({})", self.to_hex())
    }
}

/// The key that makes a private network's ids its own, derived from the
/// network's secret. Its Debug output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkKey([u8; 32]);

impl NetworkKey {
    /// From the secret's bytes (the same bytes the relay and peer keys are
    /// derived from: `--secret`'s UTF-8 text, `P2P_SECRET`'s bytes, or a
    /// secret file's bytes less one trailing newline).
    pub fn from_secret(secret: &[u8]) -> NetworkKey {
        NetworkKey(blake3::derive_key(KEY_CONTEXT, secret))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NetworkKey(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_nonsense() {
        let id = DhtId::derive(&[7; 32], None);
        assert_eq!(DhtId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(DhtId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        assert_eq!(DhtId::from_hex("00"), None);
        assert_eq!(DhtId::from_hex(&"g".repeat(40)), None);
        assert_eq!(DhtId::from_hex(&"é".repeat(20)), None);
    }

    #[test]
    fn a_key_never_shows_in_debug_output() {
        let key = NetworkKey::from_secret(b"s3cret");
        assert_eq!(format!("{key:?}"), "NetworkKey(<secret>)");
    }
}
