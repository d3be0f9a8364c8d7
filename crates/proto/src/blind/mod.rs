//! The blind index (docs/PROTOCOL.md, "The blind index"): in a private
//! network the relay indexes what nodes share without being able to read
//! it. Everything here is a pure function of the index key and its input,
//! pinned by known answers in docs/vectors/secure/blind-index.json.
//!
//! - [`tag`]: the name tag and the content tag, keyed BLAKE3 of a name or a
//!   content hash under the index key. The relay indexes tags; equal names
//!   have equal tags, and nothing else can be read from one.
//! - [`record`]: the sealed record, a file's name, size and hash under
//!   XChaCha20-Poly1305 with a key from the index key, padded to one of four
//!   sizes, so a name's length shows only as its bucket. The relay stores
//!   records and hands them back; only members open them.
//! - [`messages`]: the fields of the blind index's messages (a catalog of
//!   tags and records, who-has by tag, listing in pages).
//! - [`open`]: what a member makes of the relay's answers: records opened
//!   and checked against the tags they came under, as the plain index's
//!   holder lists and search results, and the nodes whose records failed.
//!
//! The index key comes from the peer key ([`NetworkKeys::index`]), never
//! from the relay key: a relay given only the relay key holds tags and
//! records and can compute neither.
//!
//! AEAD choice: XChaCha20-Poly1305 from the RustCrypto `chacha20poly1305`
//! crate (already in the build through snow). Its 24-byte nonce is long
//! enough to be derived from the record itself (a synthetic nonce, see
//! [`record`]), so sealing needs no random numbers and is deterministic:
//! two members sealing the same file produce the same bytes, and the relay
//! groups equal records without reading them. ring, which the transport
//! uses, offers only 12-byte nonces: derived or random, two records would
//! share one after about 2^48 records under one key, where 24 bytes put
//! that out of reach. The speed that made ring the transport's choice does
//! not matter here: a record is at most 1 152 bytes.

pub mod messages;
pub mod open;
pub mod record;
pub mod tag;

use std::fmt;

pub use messages::{
    BlindCatalogUpdate, BlindEntry, BlindHolder, BlindHolderList, PageRequest, SealedHit,
    SealedPage,
};
pub use open::{BadRecord, Listing, RecordProblem};
pub use record::{OpenError, Record, SealError, SealedRecord};
pub use tag::{BlindTarget, Tag};

use crate::keys::{Key, NetworkKeys};

/// Context string of the key records are sealed with, derived from the
/// index key (docs/vectors/secure/blind-index.json pins it).
pub const RECORD_KEY_CONTEXT: &str = "p2p-share 2026-01-01 index record key v1";
/// Context string of the key a record's synthetic nonce is made with.
pub const NONCE_KEY_CONTEXT: &str = "p2p-share 2026-01-01 index record nonce v1";

/// What a member derives from the index key: the key tags are made under
/// (the index key itself), the record key and the nonce key. Debug output
/// never shows them.
#[derive(Clone)]
pub struct IndexKey {
    tag: [u8; 32],
    record: [u8; 32],
    nonce: [u8; 32],
}

impl IndexKey {
    /// From the index key ([`NetworkKeys::index`]).
    pub fn new(index: &Key) -> IndexKey {
        let index = *index.bytes();
        IndexKey {
            tag: index,
            record: blake3::derive_key(RECORD_KEY_CONTEXT, &index),
            nonce: blake3::derive_key(NONCE_KEY_CONTEXT, &index),
        }
    }

    /// A member's index key; None for a program without the peer key (a
    /// relay).
    pub fn of(keys: &NetworkKeys) -> Option<IndexKey> {
        keys.index().map(|k| IndexKey::new(&k))
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_key() {
        let keys = NetworkKeys::from_secret(b"s");
        let key = IndexKey::of(&keys).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "IndexKey(<secret>)");
        assert!(IndexKey::of(&NetworkKeys::relay_only(keys.relay)).is_none());
    }
}
