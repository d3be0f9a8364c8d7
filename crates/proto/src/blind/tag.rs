//! Name tags and content tags: what the relay indexes in a private network.
//!
//! A tag is the first 16 bytes of BLAKE3 in keyed mode, under the index
//! key, of one domain byte and the value: `01` and the name's UTF-8 bytes
//! for a name tag, `02` and the 32 hash bytes for a content tag. The domain
//! byte keeps a 32-byte name from ever sharing a tag with a hash.
//!
//! 16 bytes: a tag only finds candidates, and every candidate's record is
//! opened and compared with what was asked (crate::blind::open), so a
//! collision could cost a client one record it throws away, never a wrong
//! file; at a million entries two tags meet by chance with probability
//! about 2^-88. Half the bytes of a hash halve what the relay keeps per
//! tag.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::IndexKey;
use crate::content::ContentHash;

/// Bytes in a tag.
pub const TAG_LEN: usize = 16;

/// Domain byte of a name tag.
const NAME_DOMAIN: u8 = 0x01;
/// Domain byte of a content tag.
const CONTENT_DOMAIN: u8 = 0x02;

/// A name tag or a content tag: 16 raw bytes on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag(pub [u8; TAG_LEN]);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

impl Tag {
    /// The first 8 hex digits, for a log line.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_string()
    }
}

/// What a blind who-has asks for: the holders of a name tag, or of a
/// content tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlindTarget {
    /// Tag 0: the name tag of the name asked for.
    Name(Tag),
    /// Tag 1: the content tag of the hash asked for.
    Content(Tag),
}

impl BlindTarget {
    pub fn tag(&self) -> Tag {
        match self {
            BlindTarget::Name(t) | BlindTarget::Content(t) => *t,
        }
    }
}

impl IndexKey {
    /// The name tag of `name`.
    pub fn name_tag(&self, name: &str) -> Tag {
        self.tag_of(NAME_DOMAIN, name.as_bytes())
    }

    /// The content tag of `hash`.
    pub fn content_tag(&self, hash: &ContentHash) -> Tag {
        self.tag_of(CONTENT_DOMAIN, &hash.0)
    }

    /// The who-has target of a name.
    pub fn by_name(&self, name: &str) -> BlindTarget {
        BlindTarget::Name(self.name_tag(name))
    }

    /// The who-has target of a content.
    pub fn by_content(&self, hash: &ContentHash) -> BlindTarget {
        BlindTarget::Content(self.content_tag(hash))
    }

    fn tag_of(&self, domain: u8, value: &[u8]) -> Tag {
        let mut hasher = blake3::Hasher::new_keyed(&self.tag);
        hasher.update(&[domain]);
        hasher.update(value);
        let mut tag = [0u8; TAG_LEN];
        hasher.finalize_xof().fill(&mut tag);
        Tag(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NetworkKeys;

    fn key(secret: &[u8]) -> IndexKey {
        IndexKey::of(&NetworkKeys::from_secret(secret)).unwrap()
    }

    #[test]
    fn tags_depend_on_the_key_the_value_and_its_kind() {
        let k = key(b"one");
        assert_eq!(k.name_tag("a.txt"), k.name_tag("a.txt"));
        assert_ne!(k.name_tag("a.txt"), k.name_tag("b.txt"));
        assert_ne!(k.name_tag("a.txt"), key(b"two").name_tag("a.txt"));
        // A name that is the hash's 32 bytes still gets another tag.
        let hash = ContentHash([b'x'; 32]);
        let same_bytes = "x".repeat(32);
        assert_ne!(k.name_tag(&same_bytes), k.content_tag(&hash));
    }

    #[test]
    fn a_tag_is_the_keyed_hash_cut_to_16_bytes() {
        let k = key(b"s3cret");
        let index = NetworkKeys::from_secret(b"s3cret").index().unwrap();
        let full = blake3::keyed_hash(index.bytes(), b"\x01hello.txt");
        assert_eq!(k.name_tag("hello.txt").0, full.as_bytes()[..16]);
    }
}
