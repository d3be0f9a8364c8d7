//! The sealed record: one shared file's name, size and content hash,
//! readable only with the index key.
//!
//! ```text
//! plaintext  size u64 BE (8) | hash (32) | name length u16 BE (2) | name | zero bytes
//! sealed     nonce (24) | XChaCha20-Poly1305 ciphertext of the plaintext | Poly1305 tag (16)
//! ```
//!
//! - **Buckets.** A sealed record is 128, 256, 512 or 1 152 bytes: the
//!   smallest that holds the name, the plaintext padded with zero bytes to
//!   it. Names up to 46 bytes fit the first, 174 the second, 430 the third
//!   and [`MAX_RECORD_NAME`] (1 024) the last; a longer name has no record
//!   and is not indexed (its node still serves it).
//! - **Keys.** The record key is `derive_key(RECORD_KEY_CONTEXT, index key)`;
//!   no associated data (the key serves records only).
//! - **Nonce.** Synthetic: the first 24 bytes of BLAKE3 keyed with
//!   `derive_key(NONCE_KEY_CONTEXT, index key)` over the padded plaintext.
//!   A nonce repeats only with its plaintext, and then so does the whole
//!   record, which says nothing the equal tags did not already say; two
//!   different records meet on a nonce with probability about 2^-192 per
//!   pair. Sealing needs no randomness and the same file always seals to
//!   the same bytes.
//! - **One encoding.** [`IndexKey::open`] accepts a record only in the form
//!   [`IndexKey::seal`] makes: a bucket length, the smallest bucket for its
//!   name, a name of 1 to 1 024 bytes of UTF-8, zero padding, and its own
//!   synthetic nonce. Anything else is refused, and never panics
//!   (fuzz/fuzz_targets/sealed_record.rs).

use std::fmt;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use super::IndexKey;
use crate::content::ContentHash;

/// The lengths a sealed record may have, smallest first.
pub const BUCKETS: [usize; 4] = [128, 256, 512, 1152];
/// The longest sealed record.
pub const MAX_SEALED: usize = 1152;
/// Longest name a record holds (bytes): the relay's plain index takes no
/// longer names either.
pub const MAX_RECORD_NAME: usize = 1024;
/// Bytes of the nonce at the start of a sealed record.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag at its end.
pub const AEAD_TAG_LEN: usize = 16;
/// Bytes of the plaintext before the name: size, hash, name length.
pub const FIXED_LEN: usize = 8 + 32 + 2;

/// What a record says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name as the node serves it (a `GetFile` takes it).
    pub name: String,
    pub size: u64,
    pub hash: ContentHash,
}

/// A record as it travels and as the relay keeps it: one of the bucket
/// lengths, unreadable without the index key. On the wire it is a byte
/// string (`u64` length, then the bytes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SealedRecord(pub Vec<u8>);

impl fmt::Debug for SealedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedRecord({} bytes)", self.0.len())
    }
}

impl SealedRecord {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the length is one a record may have (the only check the
    /// relay, which cannot open it, can make).
    pub fn has_bucket_len(&self) -> bool {
        BUCKETS.contains(&self.0.len())
    }
}

impl Serialize for SealedRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for SealedRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SealedRecord, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = SealedRecord;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sealed record's bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SealedRecord, E> {
                Ok(SealedRecord(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<SealedRecord, E> {
                Ok(SealedRecord(v))
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// Why a record cannot be sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    EmptyName,
    /// The name's length in bytes, over [`MAX_RECORD_NAME`].
    NameTooLong(usize),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::EmptyName => f.write_str("an empty name has no record"),
            SealError::NameTooLong(n) => write!(
                f,
                "a name of {n} bytes does not fit a record (limit {MAX_RECORD_NAME})"
            ),
        }
    }
}

impl std::error::Error for SealError {}

/// Why a sealed record was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not one of the bucket lengths.
    Length(usize),
    /// It does not decrypt with this network's record key: sealed in
    /// another network, altered, or never a record.
    Forged,
    /// It decrypts, but is not what sealing makes (a member's bug or lie).
    Malformed(&'static str),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Length(n) => write!(
                f,
                "a sealed record of {n} bytes (records are 128, 256, 512 or 1152 bytes)"
            ),
            OpenError::Forged => f.write_str(
                "the record does not open with this network's index key (altered, or sealed \
                 with another secret)",
            ),
            OpenError::Malformed(why) => write!(f, "the record opens but is malformed: {why}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// The bucket a record with a name of `name_len` bytes is sealed to.
pub fn bucket_for(name_len: usize) -> Option<usize> {
    if name_len == 0 || name_len > MAX_RECORD_NAME {
        return None;
    }
    BUCKETS
        .into_iter()
        .find(|b| b - NONCE_LEN - AEAD_TAG_LEN >= FIXED_LEN + name_len)
}

impl IndexKey {
    /// Seals `record` (see the module's layout).
    pub fn seal(&self, record: &Record) -> Result<SealedRecord, SealError> {
        let name = record.name.as_bytes();
        if name.is_empty() {
            return Err(SealError::EmptyName);
        }
        let bucket = bucket_for(name.len()).ok_or(SealError::NameTooLong(name.len()))?;
        let mut out = vec![0u8; bucket];
        let (nonce, rest) = out.split_at_mut(NONCE_LEN);
        let (plain, tag) = rest.split_at_mut(bucket - NONCE_LEN - AEAD_TAG_LEN);
        plain[..8].copy_from_slice(&record.size.to_be_bytes());
        plain[8..40].copy_from_slice(&record.hash.0);
        // name.len() <= MAX_RECORD_NAME, checked by bucket_for.
        plain[40..42].copy_from_slice(&(name.len() as u16).to_be_bytes());
        plain[42..42 + name.len()].copy_from_slice(name);
        nonce.copy_from_slice(&self.nonce_of(plain));
        let sealed = self
            .cipher()
            .encrypt_in_place_detached(XNonce::from_slice(nonce), b"", plain)
            .expect("a record is far below the cipher's message limit");
        tag.copy_from_slice(&sealed);
        Ok(SealedRecord(out))
    }

    /// Opens a sealed record; refuses anything [`IndexKey::seal`] would not
    /// have made. Never panics, whatever `sealed` holds.
    pub fn open(&self, sealed: &[u8]) -> Result<Record, OpenError> {
        let len = sealed.len();
        if !BUCKETS.contains(&len) {
            return Err(OpenError::Length(len));
        }
        let mut buf = [0u8; MAX_SEALED];
        let buf = &mut buf[..len];
        buf.copy_from_slice(sealed);
        let (nonce, rest) = buf.split_at_mut(NONCE_LEN);
        let (plain, tag) = rest.split_at_mut(len - NONCE_LEN - AEAD_TAG_LEN);
        self.cipher()
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                b"",
                plain,
                chacha20poly1305::Tag::from_slice(tag),
            )
            .map_err(|_| OpenError::Forged)?;
        let mut size = [0u8; 8];
        size.copy_from_slice(&plain[..8]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&plain[8..40]);
        let name_len = usize::from(u16::from_be_bytes([plain[40], plain[41]]));
        if name_len == 0 {
            return Err(OpenError::Malformed("an empty name"));
        }
        if name_len > MAX_RECORD_NAME || FIXED_LEN + name_len > plain.len() {
            return Err(OpenError::Malformed("the name is longer than the record"));
        }
        if bucket_for(name_len) != Some(len) {
            return Err(OpenError::Malformed(
                "padded to another size than its name needs",
            ));
        }
        let (name, padding) = plain[FIXED_LEN..].split_at(name_len);
        if padding.iter().any(|&b| b != 0) {
            return Err(OpenError::Malformed("padding that is not zero"));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| OpenError::Malformed("a name that is not UTF-8"))?
            .to_string();
        if self.nonce_of(plain) != *nonce {
            return Err(OpenError::Malformed("a nonce that is not the record's own"));
        }
        Ok(Record {
            name,
            size: u64::from_be_bytes(size),
            hash: ContentHash(hash),
        })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.record.into())
    }

    /// The synthetic nonce of a padded plaintext.
    fn nonce_of(&self, plain: &[u8]) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        blake3::Hasher::new_keyed(&self.nonce)
            .update(plain)
            .finalize_xof()
            .fill(&mut nonce);
        nonce
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NetworkKeys;

    fn key(secret: &[u8]) -> IndexKey {
        IndexKey::of(&NetworkKeys::from_secret(secret)).unwrap()
    }

    fn record(name: &str) -> Record {
        Record {
            name: name.into(),
            size: 6,
            hash: ContentHash::of(b"hello\n"),
        }
    }

    #[test]
    fn records_round_trip_in_the_smallest_bucket_that_holds_the_name() {
        let k = key(b"s3cret");
        for (len, bucket) in [
            (1, 128),
            (46, 128),
            (47, 256),
            (174, 256),
            (175, 512),
            (430, 512),
            (431, 1152),
            (1024, 1152),
        ] {
            let r = record(&"n".repeat(len));
            let sealed = k.seal(&r).unwrap();
            assert_eq!(sealed.0.len(), bucket, "name of {len} bytes");
            assert!(sealed.has_bucket_len());
            assert_eq!(k.open(&sealed.0).unwrap(), r);
        }
        assert_eq!(k.seal(&record("")), Err(SealError::EmptyName));
        assert_eq!(
            k.seal(&record(&"n".repeat(1025))),
            Err(SealError::NameTooLong(1025))
        );
    }

    #[test]
    fn sealing_is_deterministic_and_hides_the_name() {
        let k = key(b"s3cret");
        let a = k.seal(&record("tax-return-2026.pdf")).unwrap();
        assert_eq!(a, k.seal(&record("tax-return-2026.pdf")).unwrap());
        assert_ne!(a, k.seal(&record("tax-return-2025.pdf")).unwrap());
        let hash = ContentHash::of(b"hello\n").0;
        for needle in [&b"tax-return"[..], &hash[..8]] {
            assert!(!a.0.windows(needle.len()).any(|w| w == needle));
        }
    }

    #[test]
    fn another_network_or_any_altered_byte_does_not_open() {
        let k = key(b"s3cret");
        let sealed = k.seal(&record("hello.txt")).unwrap();
        assert_eq!(key(b"other").open(&sealed.0), Err(OpenError::Forged));
        for i in 0..sealed.0.len() {
            let mut bad = sealed.0.clone();
            bad[i] ^= 0x20;
            assert_eq!(k.open(&bad), Err(OpenError::Forged), "byte {i}");
        }
        assert_eq!(k.open(&sealed.0[..127]), Err(OpenError::Length(127)));
        assert_eq!(k.open(&[]), Err(OpenError::Length(0)));
    }

    /// Seals a hand-made plaintext the way `seal` would, so each rule of
    /// `open` can be met by a record that decrypts.
    fn seal_raw(k: &IndexKey, plain: &[u8], nonce: Option<[u8; 24]>) -> Vec<u8> {
        let mut p = plain.to_vec();
        let nonce = nonce.unwrap_or_else(|| k.nonce_of(&p));
        let tag = k
            .cipher()
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), b"", &mut p)
            .unwrap();
        [&nonce[..], &p, &tag].concat()
    }

    fn plain(bucket: usize, name: &[u8], name_len: u16) -> Vec<u8> {
        let mut p = vec![0u8; bucket - 40];
        p[40..42].copy_from_slice(&name_len.to_be_bytes());
        p[42..42 + name.len()].copy_from_slice(name);
        p
    }

    #[test]
    fn a_record_that_decrypts_is_still_refused_unless_canonical() {
        let k = key(b"s3cret");
        let ok = seal_raw(&k, &plain(128, b"a", 1), None);
        assert_eq!(k.open(&ok).unwrap().name, "a");
        let cases: [(Vec<u8>, &str); 6] = [
            (seal_raw(&k, &plain(128, b"", 0), None), "an empty name"),
            (
                seal_raw(&k, &plain(128, b"a", 87), None),
                "the name is longer than the record",
            ),
            (
                seal_raw(&k, &plain(256, b"a", 1), None),
                "padded to another size than its name needs",
            ),
            (
                seal_raw(&k, &plain(128, b"a\0\0x", 1), None),
                "padding that is not zero",
            ),
            (
                seal_raw(&k, &plain(128, &[0xff], 1), None),
                "a name that is not UTF-8",
            ),
            (
                seal_raw(&k, &plain(128, b"a", 1), Some([7; 24])),
                "a nonce that is not the record's own",
            ),
        ];
        for (sealed, why) in cases {
            assert_eq!(k.open(&sealed), Err(OpenError::Malformed(why)));
        }
    }
}
