//! A content's identity, and hashing a file into it.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{MAX_CONTENT_SIZE, tree};

/// The BLAKE3 hash of a file's bytes: the same 32 bytes `b3sum` prints.
/// On the wire, 32 raw bytes; for people, `blake3:` and 64 lowercase hex
/// digits, or the first 8 digits where a short form reads better.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// The hash of `bytes` held in memory.
    pub fn of(bytes: &[u8]) -> ContentHash {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    /// The first 8 hex digits, as a status line shows them.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_string()
    }

    pub(crate) fn as_blake3(&self) -> blake3::Hash {
        blake3::Hash::from_bytes(self.0)
    }
}

/// 64 lowercase hex digits (no prefix: callers add `blake3:` where it names
/// the algorithm for a person).
impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{self}")
    }
}

/// Why text is not a content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseHashError(String);

impl fmt::Display for ParseHashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseHashError {}

/// The prefix that marks a content hash where a file name could stand.
pub const HASH_PREFIX: &str = "blake3:";

impl ContentHash {
    /// True when `text` is meant as a hash (`blake3:...`), whether or not it
    /// is a valid one: a client names the mistake instead of asking nodes for
    /// a file called `blake3:xyz`.
    pub fn looks_like(text: &str) -> bool {
        text.starts_with(HASH_PREFIX)
    }
}

/// Parses `blake3:` followed by 64 hex digits (either case).
impl FromStr for ContentHash {
    type Err = ParseHashError;

    fn from_str(text: &str) -> Result<ContentHash, ParseHashError> {
        let hex = text
            .strip_prefix(HASH_PREFIX)
            .ok_or_else(|| ParseHashError(format!("a content hash starts with {HASH_PREFIX}")))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseHashError(format!(
                "{HASH_PREFIX} must be followed by 64 hex digits (got {} characters)",
                hex.chars().count()
            )));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            // Checked above: two ASCII hex digits.
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|e| ParseHashError(e.to_string()))?;
        }
        Ok(ContentHash(out))
    }
}

/// Hashes `size` bytes of `data` (read in chunk groups, so memory stays at
/// one group whatever the size) and writes the outboard, the hash pairs of
/// the tree in post-order, to `outboard`. A content of one chunk group or
/// less has no pairs: nothing is written. Fails if `data` ends before `size`
/// bytes.
pub fn hash_and_outboard(
    data: impl Read,
    size: u64,
    outboard: impl Write,
) -> io::Result<ContentHash> {
    if size > MAX_CONTENT_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{size} bytes is past the largest content size"),
        ));
    }
    let root = bao_tree::io::sync::outboard_post_order(data, tree(size), outboard)?;
    Ok(ContentHash(*root.as_bytes()))
}

/// The outboard of `data` held in memory (for tests, fakes and examples).
pub fn outboard_to_vec(data: &[u8]) -> (ContentHash, Vec<u8>) {
    let mut outboard = Vec::new();
    // Reading from memory into memory cannot fail.
    let hash = hash_and_outboard(data, data.len() as u64, &mut outboard)
        .unwrap_or_else(|_| ContentHash::of(data));
    (hash, outboard)
}

/// Bytes of the outboard of a content of `size` bytes: one pair per chunk
/// group but the first.
pub fn outboard_len(size: u64) -> u64 {
    tree(size).outboard_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_parses_hex() {
        let h = ContentHash::of(b"hello");
        let text = format!("blake3:{h}");
        assert_eq!(text.len(), 7 + 64);
        assert_eq!(text.parse::<ContentHash>().unwrap(), h);
        assert_eq!(
            text.to_uppercase()
                .replace("BLAKE3", "blake3")
                .parse::<ContentHash>()
                .unwrap(),
            h
        );
        assert_eq!(h.short(), h.to_string()[..8]);
        assert!("blake3:12".parse::<ContentHash>().is_err());
        assert!(format!("sha256:{h}").parse::<ContentHash>().is_err());
        assert!(
            format!("blake3:{}", "g".repeat(64))
                .parse::<ContentHash>()
                .is_err()
        );
        assert!(
            format!("blake3:{}", "é".repeat(32))
                .parse::<ContentHash>()
                .is_err()
        );
    }

    #[test]
    fn the_tree_hash_is_plain_blake3() {
        for size in [0usize, 1, 1024, 65_536, 65_537, 300_000, 1 << 20] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (hash, outboard) = outboard_to_vec(&data);
            assert_eq!(hash, ContentHash::of(&data), "size {size}");
            assert_eq!(outboard.len() as u64, outboard_len(size as u64));
        }
    }
}
