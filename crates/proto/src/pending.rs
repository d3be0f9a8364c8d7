//! Names before hashes: the forms of a catalog and of a who-has answer in
//! which a file's content hash may be absent, because its node has not
//! hashed that version yet (docs/PROTOCOL.md, "Names before hashes").
//!
//! A node sees a new file the moment it appears, but hashing it takes time
//! (a second per GiB or so). Its name goes to the relay's index at once,
//! with no hash; a client that asks for that name learns which node holds
//! it and asks that node by name, and the hash follows in a later update.
//!
//! These are messages of their own (`CatalogLong`, `WhoHasLong`,
//! `HoldersLong`), not new fields in `Catalog` and `Holders`: a message has
//! no room for a field an older peer does not know (docs/PROTOCOL.md,
//! "Versions and compatibility").

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{CatalogEntry, CatalogUpdate, ContentHash, FileEntryLong, Registration};

/// A change to a node's catalog at the relay, as [`CatalogUpdate`], whose
/// files may lack their hash (`hash` none: the node holds this name and
/// will send its hash once it has it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogUpdateLong {
    pub registration: Registration,
    pub base_seq: u64,
    pub seq: u64,
    pub reset: bool,
    /// Files shared now (a name already in the catalog is replaced); an
    /// entry is a listing's entry with its hash: name, size, hash or none.
    pub added: Vec<FileEntryLong>,
    /// Names no longer shared.
    pub removed: Vec<String>,
}

impl From<CatalogUpdate> for CatalogUpdateLong {
    /// An update in the first form is one whose every hash is known.
    fn from(update: CatalogUpdate) -> CatalogUpdateLong {
        CatalogUpdateLong {
            registration: update.registration,
            base_seq: update.base_seq,
            seq: update.seq,
            reset: update.reset,
            added: update
                .added
                .into_iter()
                .map(|CatalogEntry { name, size, hash }| FileEntryLong {
                    name,
                    size,
                    hash: Some(hash),
                })
                .collect(),
            removed: update.removed,
        }
    }
}

/// The holders of a name or a content, as [`crate::HolderList`], where a
/// holder's hash may be absent: it holds the name, and has not hashed it
/// yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderListLong {
    /// Active nodes the relay knows (holders or not).
    pub nodes: u32,
    /// Oldest registration first, one per node.
    pub holders: Vec<HolderLong>,
    /// Active nodes that have sent no catalog, oldest first.
    pub unindexed: Vec<SocketAddr>,
    /// True when more nodes hold it (or are unindexed) than the answer lists.
    pub truncated: bool,
}

/// One node's copy: where it is, its name there, its size, and its hash,
/// or none while the node is still hashing it (ask that node by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderLong {
    pub addr: SocketAddr,
    pub name: String,
    pub size: u64,
    pub hash: Option<ContentHash>,
}
