//! The fields of the blind index's messages (docs/PROTOCOL.md, "The blind
//! index"): request tags 16 to 18 (`BlindCatalog`, `BlindWhoHas`,
//! `BlindList`) and response tags 16 and 17 (`BlindHolders`,
//! `SealedPage`). A `BlindCatalog` is answered with the plain index's
//! `CatalogAck`.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::record::SealedRecord;
use super::tag::Tag;
use crate::message::Registration;

/// One shared file, as the relay of a private network gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlindEntry {
    pub name_tag: Tag,
    pub content_tag: Tag,
    pub record: SealedRecord,
}

/// A change to a node's blind catalog: the same rules as the plain
/// `CatalogUpdate` (seq, reset, answered with `CatalogAck`), with entries
/// as tags and records, and removals by name tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlindCatalogUpdate {
    pub registration: Registration,
    pub base_seq: u64,
    pub seq: u64,
    pub reset: bool,
    pub added: Vec<BlindEntry>,
    /// Name tags of files the node no longer shares.
    pub removed: Vec<Tag>,
}

/// The holders of a name tag or a content tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlindHolderList {
    /// Active nodes the relay knows (holders or not).
    pub nodes: u32,
    /// Oldest registration first, each with the record it sent.
    pub holders: Vec<BlindHolder>,
    /// Active nodes that have sent no catalog, oldest first.
    pub unindexed: Vec<SocketAddr>,
    /// True when more nodes hold it (or are unindexed) than the answer lists.
    pub truncated: bool,
}

/// One node's copy: where it is listed, and its record of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlindHolder {
    pub addr: SocketAddr,
    pub record: SealedRecord,
}

/// One page of the relay's records: from `cursor` (0 for the first page,
/// then the `next` of the page before), at most `limit` hits (the relay
/// may send fewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub cursor: u64,
    pub limit: u32,
}

/// A page of records: every distinct record of the name tags it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPage {
    /// Active nodes the relay knows.
    pub nodes: u32,
    pub hits: Vec<SealedHit>,
    /// The cursor of the next page; None after the last.
    pub next: Option<u64>,
}

/// One distinct record: the tags it was sent under, how many nodes sent
/// exactly these bytes, and the earliest-registered of them (named when
/// the record turns out bad).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedHit {
    pub name_tag: Tag,
    pub content_tag: Tag,
    pub holders: u32,
    pub first: SocketAddr,
    pub record: SealedRecord,
}
