//! The node's catalog at the relay: every shared file's name, size and
//! content hash, built from DIR, diffed against what the relay was last
//! told, and sent as deltas in frames that fit the request limit.
//!
//! A file not hashed yet is in the catalog at once, without its hash
//! (`CatalogLong`, docs/PROTOCOL.md "Names before hashes"), so that a
//! client finds it the moment it appears; [`crate::backlog`] hashes it
//! meanwhile, and the next update carries the hash. A relay older than
//! that form gets `Catalog`, with the hashed files only, as before.
//!
//! The relay applies updates in order: each carries the seq it follows
//! (`base_seq`) and the seq it makes. When the relay's seq is not the one
//! the node expects (the relay restarted, a delta was lost, the node was
//! dropped and listed again), the node sends everything again, starting
//! with a reset. [`CatalogSync`] is that bookkeeping as plain data, tested
//! without sockets; [`crate::watch`] decides when to run it.
//!
//! In a private network the relay keeps only a blind index: the same
//! updates then travel as tags and sealed records ([`CatalogForm::Blind`],
//! docs/PROTOCOL.md "The blind index"), hashed files only (a record holds
//! the hash), and no name or hash reaches the relay.

use std::collections::BTreeMap;

use proto::blind::record::{MAX_RECORD_NAME, bucket_for};
use proto::blind::{BlindCatalogUpdate, BlindEntry, IndexKey, Record};
use proto::keys::NetworkKeys;
use proto::{
    CatalogAck, CatalogEntry, CatalogUpdate, CatalogUpdateLong, ContentHash, FileEntryLong,
    MAX_REQUEST_FRAME, Registration, Request, Response,
};

use crate::hashes::{ContentIndex, FileKey};
use crate::share::SharedDir;

/// Largest file hashed while the catalog is built: a file this small is
/// hashed about as fast as it is listed, so it goes with its hash at once.
pub const INLINE_FILE: u64 = 1 << 20;

/// Most bytes hashed while one catalog is built; past it, new files go
/// without their hash, and [`crate::backlog`] hashes them.
pub const INLINE_BUDGET: u64 = 8 << 20;

/// What [`Catalog::build`] does with a small file written within the last
/// timestamp tick ([`FileKey::is_racy`]), whose hash must wait for the tick
/// to pass (up to 25 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Racy {
    /// Leave it to the backlog: the relay takes the name without its hash
    /// at once, and a client asks this node by name (issue 24).
    ToBacklog,
    /// Wait, and hash it in this round: a blind catalog (or an older
    /// relay's) carries a file only with its hash, so leaving it out would
    /// hide it until the backlog's round.
    Wait,
}

/// The hash of `name`'s current version, hashed now; None if it cannot be
/// (the backlog tries again, and gives up on a file that cannot be read).
fn hash_now(share: &SharedDir, index: &ContentIndex, name: &str) -> Option<ContentHash> {
    let shared = share.open_file(name).ok()?;
    let hashed = index.hash_of(&shared.file).ok()?;
    index.remember(name, hashed);
    Some(hashed.hash)
}

/// What the node shares, by name: size, and hash once known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub files: BTreeMap<String, (u64, Option<ContentHash>)>,
    /// DIR holds more files than one listing (and so the catalog) takes.
    pub truncated: bool,
}

impl Catalog {
    /// Every shared file with its hash when the current version is hashed,
    /// without when not. Files of at most [`INLINE_FILE`] bytes not hashed
    /// yet are hashed here, `budget` bytes in all (a few milliseconds: see
    /// [`INLINE_BUDGET`]), those written within the last timestamp tick as
    /// `racy` says; the rest is the backlog's work. `gave_up` names
    /// versions that could not be hashed (a file that cannot be read cannot
    /// be served either): those are left out.
    pub fn build(
        share: &SharedDir,
        index: &ContentIndex,
        gave_up: impl Fn(&str, &FileKey) -> bool,
        budget: u64,
        racy: Racy,
    ) -> Catalog {
        let (entries, truncated) = share.list();
        let root = share.root();
        let mut files = BTreeMap::new();
        let mut budget = budget;
        for entry in entries {
            let path = root.join(&entry.name);
            let hash = match index.known(&path) {
                Some(hash) => Some(hash),
                None => {
                    let Ok(meta) = std::fs::metadata(&path) else {
                        continue; // gone since the listing
                    };
                    let key = FileKey::of(&meta);
                    if gave_up(&entry.name, &key) {
                        continue;
                    }
                    let now = racy == Racy::Wait || !key.is_racy();
                    if meta.len() <= INLINE_FILE && meta.len() <= budget && now {
                        budget -= meta.len();
                        hash_now(share, index, &entry.name)
                    } else {
                        None
                    }
                }
            };
            files.insert(entry.name, (entry.size, hash));
        }
        Catalog { files, truncated }
    }

    /// The names whose hash is not known yet.
    pub fn unhashed(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|(_, (_, hash))| hash.is_none())
            .map(|(name, _)| name.as_str())
    }

    /// The hashed files only: the catalog as a relay without the second
    /// form can hold it.
    fn hashed(&self) -> Catalog {
        Catalog {
            files: self
                .files
                .iter()
                .filter(|(_, (_, hash))| hash.is_some())
                .map(|(name, file)| (name.clone(), *file))
                .collect(),
            truncated: self.truncated,
        }
    }

    fn entry(name: &str, (size, hash): (u64, Option<ContentHash>)) -> FileEntryLong {
        FileEntryLong {
            name: name.to_string(),
            size,
            hash,
        }
    }
}

/// What changed between two catalogs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub added: Vec<FileEntryLong>,
    pub removed: Vec<String>,
}

impl Delta {
    /// From `old` to `new`: new or changed files are added, gone ones removed.
    pub fn between(old: &Catalog, new: &Catalog) -> Delta {
        let mut delta = Delta::default();
        for (name, file) in &new.files {
            if old.files.get(name) != Some(file) {
                delta.added.push(Catalog::entry(name, *file));
            }
        }
        for name in old.files.keys() {
            if !new.files.contains_key(name) {
                delta.removed.push(name.clone());
            }
        }
        delta
    }

    /// All of `catalog`, as the content of a reset.
    pub fn all(catalog: &Catalog) -> Delta {
        Delta {
            added: catalog
                .files
                .iter()
                .map(|(n, f)| Catalog::entry(n, *f))
                .collect(),
            removed: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// Cuts the delta into parts whose updates each fit one request frame
    /// (sizes as docs/PROTOCOL.md lays them out); always at least one part.
    pub fn batches(self, registration: &Registration) -> Vec<Delta> {
        self.batches_as(registration, &CatalogForm::Plain)
    }

    /// [`Delta::batches`] for updates sent in `form`.
    fn batches_as(self, registration: &Registration, form: &CatalogForm) -> Vec<Delta> {
        let fixed = 4 // tag
            + 2 + 1 + 1 + 16 // port, advertised ip (at most 16 bytes more), token option
            + 16 + 16
            + registration.token.as_ref().map_or(0, |t| 8 + t.len())
            + 8 + 8 + 1 + 8 + 8; // base_seq, seq, reset, the two lengths
        let budget = MAX_REQUEST_FRAME as usize - fixed;
        let mut parts = vec![Delta::default()];
        let mut used = 0;
        let mut room = |cost: usize, parts: &mut Vec<Delta>| {
            if used + cost > budget {
                parts.push(Delta::default());
                used = 0;
            }
            used += cost;
        };
        for name in self.removed {
            room(form.removed_cost(&name), &mut parts);
            parts
                .last_mut()
                .expect("one part at least")
                .removed
                .push(name);
        }
        for entry in self.added {
            room(form.added_cost(&entry), &mut parts);
            parts
                .last_mut()
                .expect("one part at least")
                .added
                .push(entry);
        }
        parts
    }
}

/// How the catalog travels to the relay.
#[derive(Debug, Clone, Default)]
pub enum CatalogForm {
    /// Names, sizes and hashes (`Catalog`), in the clear.
    #[default]
    Plain,
    /// In a private network: name tags, content tags and sealed records
    /// (`BlindCatalog`), which only members can read. A file whose name is
    /// too long for a record (over 1 024 bytes) is left out, as a plain
    /// relay's limits leave it out.
    Blind(Box<IndexKey>),
}

impl CatalogForm {
    /// Blind in a private network (a node holds the peer key, so the index
    /// key), plain without a secret.
    pub fn of(keys: Option<&NetworkKeys>) -> CatalogForm {
        match keys.and_then(IndexKey::of) {
            Some(key) => CatalogForm::Blind(Box::new(key)),
            None => CatalogForm::Plain,
        }
    }

    /// Bytes an added entry takes in an update (docs/PROTOCOL.md).
    fn added_cost(&self, entry: &FileEntryLong) -> usize {
        match self {
            // Either plain form: name, size, then the hash (with its
            // option byte in the second form).
            CatalogForm::Plain => 8 + entry.name.len() + 8 + 1 + 32,
            // Two tags, the record's length and its bucket.
            CatalogForm::Blind(_) => 16 + 16 + 8 + bucket_for(entry.name.len()).unwrap_or(0),
        }
    }

    fn removed_cost(&self, name: &str) -> usize {
        match self {
            CatalogForm::Plain => 8 + name.len(),
            CatalogForm::Blind(_) => 16,
        }
    }

    /// Leaves out what this form cannot carry; returns how many.
    fn keep_sendable(&self, delta: &mut Delta) -> u32 {
        match self {
            CatalogForm::Plain => 0,
            CatalogForm::Blind(_) => {
                let before = delta.added.len();
                delta
                    .added
                    .retain(|e| !e.name.is_empty() && e.name.len() <= MAX_RECORD_NAME);
                (before - delta.added.len()) as u32
            }
        }
    }

    /// The blind update that carries `update`; None in the plain form.
    fn blind(&self, update: &CatalogUpdateLong) -> Option<Request> {
        let CatalogForm::Blind(key) = self else {
            return None;
        };
        let added = update
            .added
            .iter()
            .filter_map(|e| {
                let record = Record {
                    name: e.name.clone(),
                    size: e.size,
                    // Blind, the catalog holds hashed files only.
                    hash: e.hash?,
                };
                // keep_sendable left only names a record holds.
                let sealed = key.seal(&record).ok()?;
                Some(BlindEntry {
                    name_tag: key.name_tag(&record.name),
                    content_tag: key.content_tag(&record.hash),
                    record: sealed,
                })
            })
            .collect();
        Some(Request::BlindCatalog(BlindCatalogUpdate {
            registration: update.registration.clone(),
            base_seq: update.base_seq,
            seq: update.seq,
            reset: update.reset,
            added,
            removed: update.removed.iter().map(|n| key.name_tag(n)).collect(),
        }))
    }

    fn is_blind(&self) -> bool {
        matches!(self, CatalogForm::Blind(_))
    }
}

/// How one round of syncing ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// The relay holds the catalog: `files` entries, `refused` left out
    /// by its limits (or, blind, names too long for a record).
    Done { files: u32, refused: u32 },
    /// The relay does not list this node (not registered yet, or expired):
    /// register, then sync again.
    NotListed,
    /// The relay has no index (an older relay): nothing to send.
    NoIndex(String),
    /// The exchange failed; try again later.
    Failed(String),
}

/// What the relay was last told, and the seq it should be at.
#[derive(Debug, Default)]
pub struct CatalogSync {
    form: CatalogForm,
    /// The catalog as the relay holds it, when in step with it.
    sent: Option<Catalog>,
    seq: u64,
    /// The relay's limits left entries out last time: send everything on
    /// the next change, so what fits is chosen again.
    refused: bool,
    /// The relay refused `CatalogLong` (an older relay): `Catalog`, with
    /// the hashed files only, until it lists this node anew.
    first_form: bool,
}

impl CatalogSync {
    /// Sends the catalog in `form`.
    pub fn new(form: CatalogForm) -> CatalogSync {
        CatalogSync {
            form,
            ..CatalogSync::default()
        }
    }

    /// Forget what the relay holds: the next sync starts with a reset (in
    /// the second form again: the relay may have been upgraded).
    pub fn restart(&mut self) {
        self.sent = None;
        self.first_form = false;
    }

    /// Whether the relay takes files without their hash (never blind: a
    /// record holds the hash).
    pub fn takes_unhashed(&self) -> bool {
        !self.first_form && !self.form.is_blind()
    }

    /// Brings the relay's catalog of this node to `current`, through
    /// `call` (one exchange with the relay per update). When nothing
    /// changed, sends one empty delta anyway: the relay's answer tells
    /// whether it is still in step (a relay that restarted is not).
    pub fn sync(
        &mut self,
        registration: &Registration,
        current: &Catalog,
        mut call: impl FnMut(&Request) -> Result<Response, String>,
    ) -> Synced {
        let hashed;
        let current = if !self.takes_unhashed() {
            hashed = current.hashed();
            &hashed
        } else {
            current
        };
        // Two rounds at most: a delta, then a full resend if the relay
        // turned out not to be in step.
        for _ in 0..2 {
            let (reset, mut delta) = match &self.sent {
                Some(sent) if !(self.refused && sent != current) => {
                    (false, Delta::between(sent, current))
                }
                _ => (true, Delta::all(current)),
            };
            let mut base_seq = self.seq;
            let mut last = CatalogAck {
                seq: self.seq,
                files: 0,
                refused: 0,
            };
            let unsendable = self.form.keep_sendable(&mut delta);
            let mut refused = 0u32;
            let mut in_step = true;
            let parts = delta.batches_as(registration, &self.form);
            for (i, part) in parts.into_iter().enumerate() {
                let update = CatalogUpdateLong {
                    registration: registration.clone(),
                    base_seq,
                    seq: base_seq.wrapping_add(1),
                    reset: reset && i == 0,
                    added: part.added,
                    removed: part.removed,
                };
                let seq = update.seq;
                let request = match self.form.blind(&update) {
                    Some(blind) => blind,
                    None if self.first_form => Request::Catalog(first_form(update)),
                    None => Request::CatalogLong(update),
                };
                let ack = match call(&request) {
                    Ok(Response::CatalogAck(ack)) => ack,
                    Ok(Response::NotFound) => {
                        self.sent = None;
                        return Synced::NotListed;
                    }
                    // A relay that does not know the second form: the
                    // first, from a reset (nothing of this round applied).
                    // Never blind: a private network's catalog never
                    // falls back to names and hashes.
                    Ok(Response::Error(e))
                        if e.kind == proto::ErrorKind::BadRequest
                            && !self.first_form
                            && !self.form.is_blind() =>
                    {
                        tracing::debug!(
                            "the relay refused CatalogLong ({}): sending Catalog, hashed files only",
                            e.message
                        );
                        self.first_form = true;
                        self.sent = None;
                        return self.sync(registration, current, call);
                    }
                    Ok(Response::Error(e)) if e.kind == proto::ErrorKind::BadRequest => {
                        self.sent = None;
                        return Synced::NoIndex(e.message);
                    }
                    Ok(Response::Error(e)) => {
                        self.sent = None;
                        return Synced::Failed(format!("{} ({})", e.message, e.kind.as_str()));
                    }
                    Ok(other) => {
                        self.sent = None;
                        return Synced::Failed(format!("unexpected answer {other:?}"));
                    }
                    Err(why) => {
                        self.sent = None;
                        return Synced::Failed(why);
                    }
                };
                if ack.seq != seq {
                    // Not in step: the relay is at another seq.
                    self.seq = ack.seq;
                    self.sent = None;
                    in_step = false;
                    break;
                }
                base_seq = seq;
                refused = refused.saturating_add(ack.refused);
                last = ack;
            }
            if in_step {
                self.seq = base_seq;
                self.sent = Some(current.clone());
                if reset || refused > 0 {
                    self.refused = refused > 0;
                }
                return Synced::Done {
                    files: last.files,
                    refused: refused.saturating_add(unsendable),
                };
            }
        }
        Synced::Failed("the relay's catalog of this node did not stay in step".into())
    }
}

/// An update in the first form, `Catalog`: its files without a hash are
/// left out (a relay of that form cannot hold them).
fn first_form(update: CatalogUpdateLong) -> CatalogUpdate {
    CatalogUpdate {
        registration: update.registration,
        base_seq: update.base_seq,
        seq: update.seq,
        reset: update.reset,
        added: update
            .added
            .into_iter()
            .filter_map(|e| {
                Some(CatalogEntry {
                    hash: e.hash?,
                    name: e.name,
                    size: e.size,
                })
            })
            .collect(),
        removed: update.removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_file_written_this_tick_is_left_to_the_backlog_or_waited_for() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, dir) = (tmp.path().join("cache"), tmp.path().join("share"));
        std::fs::create_dir(&cache).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let (share, index) = (SharedDir::open(&dir).unwrap(), ContentIndex::new(cache));
        let none = |_: &str, _: &FileKey| false;
        std::fs::write(dir.join("new.txt"), b"just written").unwrap();
        let path = dir.join("new.txt");
        let key = FileKey::of(&std::fs::metadata(&path).unwrap());
        let fresh = Catalog::build(&share, &index, none, INLINE_BUDGET, Racy::ToBacklog);
        // Checked after the build: a build slower than the tick proves nothing.
        if key.is_racy() {
            assert_eq!(fresh.files["new.txt"].1, None);
        }
        while key.is_racy() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let settled = Catalog::build(&share, &index, none, INLINE_BUDGET, Racy::ToBacklog);
        assert_eq!(
            settled.files["new.txt"].1,
            Some(ContentHash::of(b"just written"))
        );

        // A blind catalog's round waits for the tick: the file goes in it.
        std::fs::write(dir.join("blind.txt"), b"written for a blind index").unwrap();
        let waited = Catalog::build(&share, &index, none, INLINE_BUDGET, Racy::Wait);
        assert_eq!(
            waited.files["blind.txt"].1,
            Some(ContentHash::of(b"written for a blind index"))
        );
    }

    /// Files by name and hash byte; hash byte 0: not hashed yet.
    fn catalog(files: &[(&str, u8)]) -> Catalog {
        Catalog {
            files: files
                .iter()
                .map(|(n, h)| {
                    let hash = (*h != 0).then_some(ContentHash([*h; 32]));
                    (n.to_string(), (u64::from(*h), hash))
                })
                .collect(),
            truncated: false,
        }
    }

    fn registration() -> Registration {
        Registration {
            port: 4000,
            advertised_ip: None,
            token: Some("t".repeat(256)),
        }
    }

    /// A relay's catalog of one node, as the relay's index keeps it.
    #[derive(Default)]
    struct FakeRelay {
        files: BTreeMap<String, Option<ContentHash>>,
        seq: u64,
        listed: bool,
        calls: usize,
        /// An older relay: `CatalogLong` is an unknown tag.
        first_form_only: bool,
    }

    impl FakeRelay {
        fn answer(&mut self, request: &Request) -> Result<Response, String> {
            self.calls += 1;
            assert!(
                proto::frame::encode(request).is_ok(),
                "fits a request frame"
            );
            let u: CatalogUpdateLong = match request {
                Request::Catalog(u) => u.clone().into(),
                Request::CatalogLong(_) if self.first_form_only => {
                    return Ok(Response::error(
                        proto::ErrorKind::BadRequest,
                        "unknown message tag 16",
                    ));
                }
                Request::CatalogLong(u) => u.clone(),
                _ => return Err("not a catalog".into()),
            };
            if !self.listed {
                return Ok(Response::NotFound);
            }
            if u.reset {
                self.files.clear();
            } else if u.base_seq != self.seq {
                return Ok(Response::CatalogAck(CatalogAck {
                    seq: self.seq,
                    files: 0,
                    refused: 0,
                }));
            }
            for n in &u.removed {
                self.files.remove(n);
            }
            for e in &u.added {
                self.files.insert(e.name.clone(), e.hash);
            }
            self.seq = u.seq;
            Ok(Response::CatalogAck(CatalogAck {
                seq: u.seq,
                files: self.files.len() as u32,
                refused: 0,
            }))
        }
    }

    #[test]
    fn a_delta_holds_what_changed() {
        let old = catalog(&[("a", 1), ("b", 1), ("c", 1)]);
        let new = catalog(&[("a", 1), ("b", 2), ("d", 1)]);
        let delta = Delta::between(&old, &new);
        let added: Vec<&str> = delta.added.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(added, ["b", "d"]);
        assert_eq!(delta.removed, ["c"]);
        assert!(Delta::between(&new, &new).is_empty());
    }

    #[test]
    fn batches_fit_a_request_frame() {
        let names: Vec<(String, u8)> = (0..2000).map(|i| (format!("{i:0>100}"), 1)).collect();
        let refs: Vec<(&str, u8)> = names.iter().map(|(n, h)| (n.as_str(), *h)).collect();
        let mut delta = Delta::all(&catalog(&refs));
        delta.removed.push("x".repeat(proto::MAX_NAME_LEN));
        let parts = delta.batches(&registration());
        assert!(parts.len() > 10);
        let total: usize = parts.iter().map(|p| p.added.len()).sum();
        assert_eq!(total, 2000);
        for part in parts {
            let update = CatalogUpdateLong {
                registration: Registration {
                    advertised_ip: Some("2001:db8::1".parse().unwrap()),
                    ..registration()
                },
                base_seq: u64::MAX,
                seq: u64::MAX,
                reset: true,
                added: part.added,
                removed: part.removed,
            };
            proto::frame::encode(&Request::CatalogLong(update.clone())).expect("fits");
            proto::frame::encode(&Request::Catalog(first_form(update))).expect("fits");
        }
        assert_eq!(Delta::default().batches(&registration()).len(), 1);
    }

    #[test]
    fn syncs_by_reset_then_deltas_and_resends_when_out_of_step() {
        let mut relay = FakeRelay {
            listed: true,
            ..FakeRelay::default()
        };
        let mut sync = CatalogSync::default();
        let reg = registration();
        let one = catalog(&[("a", 1), ("b", 1)]);
        let two = catalog(&[("a", 1), ("c", 3)]);
        assert_eq!(
            sync.sync(&reg, &one, |r| relay.answer(r)),
            Synced::Done {
                files: 2,
                refused: 0
            }
        );
        assert_eq!(
            sync.sync(&reg, &two, |r| relay.answer(r)),
            Synced::Done {
                files: 2,
                refused: 0
            }
        );
        assert_eq!(relay.files.keys().collect::<Vec<_>>(), ["a", "c"]);
        // The relay restarts: empty, at seq 0. The next (empty) check finds out.
        let mut restarted = FakeRelay {
            listed: true,
            ..FakeRelay::default()
        };
        assert_eq!(
            sync.sync(&reg, &two, |r| restarted.answer(r)),
            Synced::Done {
                files: 2,
                refused: 0
            }
        );
        assert_eq!(restarted.files.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(restarted.calls, 2, "one check, one reset");
    }

    #[test]
    fn names_go_before_their_hash_and_an_older_relay_gets_the_hashed_ones() {
        let mut relay = FakeRelay {
            listed: true,
            ..FakeRelay::default()
        };
        let mut sync = CatalogSync::default();
        let reg = registration();
        let fresh = catalog(&[("a", 1), ("new", 0)]);
        assert_eq!(fresh.unhashed().collect::<Vec<_>>(), ["new"]);
        sync.sync(&reg, &fresh, |r| relay.answer(r));
        assert_eq!(relay.files.get("new"), Some(&None), "named, without a hash");
        let hashed = catalog(&[("a", 1), ("new", 5)]);
        sync.sync(&reg, &hashed, |r| relay.answer(r));
        assert_eq!(relay.files.get("new"), Some(&Some(ContentHash([5; 32]))));

        // An older relay refuses the second form: the first, from a reset,
        // with the hashed files only; then deltas in the first form.
        let mut older = FakeRelay {
            listed: true,
            first_form_only: true,
            ..FakeRelay::default()
        };
        let mut sync = CatalogSync::default();
        assert_eq!(
            sync.sync(&reg, &fresh, |r| older.answer(r)),
            Synced::Done {
                files: 1,
                refused: 0
            }
        );
        assert!(!sync.takes_unhashed());
        assert_eq!(older.files.keys().collect::<Vec<_>>(), ["a"]);
        let calls = older.calls;
        sync.sync(&reg, &hashed, |r| older.answer(r));
        assert_eq!(older.calls, calls + 1, "one delta, in the first form");
        assert_eq!(older.files.get("new"), Some(&Some(ContentHash([5; 32]))));
        sync.restart();
        assert!(sync.takes_unhashed(), "listed anew: the second form again");
    }

    #[test]
    fn a_node_the_relay_does_not_list_resets_once_listed() {
        let mut relay = FakeRelay::default();
        let mut sync = CatalogSync::default();
        let reg = registration();
        let one = catalog(&[("a", 1)]);
        assert_eq!(
            sync.sync(&reg, &one, |r| relay.answer(r)),
            Synced::NotListed
        );
        relay.listed = true;
        assert_eq!(
            sync.sync(&reg, &one, |r| relay.answer(r)),
            Synced::Done {
                files: 1,
                refused: 0
            }
        );
        let old = |_: &Request| -> Result<Response, String> {
            Ok(Response::error(
                proto::ErrorKind::BadRequest,
                "unknown message tag 7",
            ))
        };
        assert!(matches!(sync.sync(&reg, &one, old), Synced::NoIndex(_)));
    }
    fn blind_key() -> IndexKey {
        IndexKey::of(&NetworkKeys::from_secret(b"s3cret")).unwrap()
    }

    /// A private network's relay: it keeps tags and records, and checks
    /// nothing it cannot read.
    #[derive(Default)]
    struct FakeBlindRelay {
        by_tag: BTreeMap<proto::blind::Tag, proto::blind::SealedRecord>,
        seq: u64,
        frames: Vec<Vec<u8>>,
    }

    impl FakeBlindRelay {
        fn answer(&mut self, request: &Request) -> Result<Response, String> {
            let Request::BlindCatalog(u) = request else {
                return Err(format!("not a blind catalog: {request:?}"));
            };
            self.frames
                .push(proto::frame::encode(request).expect("fits a request frame"));
            if u.reset {
                self.by_tag.clear();
            } else if u.base_seq != self.seq {
                return Ok(Response::CatalogAck(CatalogAck {
                    seq: self.seq,
                    files: 0,
                    refused: 0,
                }));
            }
            for t in &u.removed {
                self.by_tag.remove(t);
            }
            for e in &u.added {
                self.by_tag.insert(e.name_tag, e.record.clone());
            }
            self.seq = u.seq;
            Ok(Response::CatalogAck(CatalogAck {
                seq: u.seq,
                files: self.by_tag.len() as u32,
                refused: 0,
            }))
        }
    }

    #[test]
    fn blind_a_catalog_travels_as_tags_and_records_only() {
        let key = blind_key();
        let mut relay = FakeBlindRelay::default();
        let mut sync = CatalogSync::new(CatalogForm::Blind(Box::new(key.clone())));
        let reg = registration();
        let names: Vec<(String, u8)> = (0..600)
            .map(|i| (format!("secret-report-{i:04}.pdf"), (i % 7 + 1) as u8))
            .chain([("x".repeat(1025), 1)])
            .collect();
        let refs: Vec<(&str, u8)> = names.iter().map(|(n, h)| (n.as_str(), *h)).collect();
        let one = catalog(&refs);
        assert_eq!(
            sync.sync(&reg, &one, |r| relay.answer(r)),
            Synced::Done {
                files: 600,
                refused: 1
            },
            "the 1025-byte name has no record"
        );
        assert!(relay.frames.len() > 1, "600 records need several frames");
        for frame in &relay.frames {
            assert!(!frame.windows(13).any(|w| w == b"secret-report"));
            assert!(!frame.windows(32).any(|w| w == [4u8; 32]));
        }
        let tag = key.name_tag("secret-report-0003.pdf");
        let record = key.open(relay.by_tag[&tag].as_bytes()).unwrap();
        assert_eq!(record.hash, ContentHash([4; 32]));
        // A delta removes by name tag.
        let two = catalog(&refs[1..600]);
        assert!(matches!(
            sync.sync(&reg, &two, |r| relay.answer(r)),
            Synced::Done { files: 599, .. }
        ));
        assert!(
            !relay
                .by_tag
                .contains_key(&key.name_tag("secret-report-0000.pdf"))
        );
    }

    #[test]
    fn blind_a_file_goes_once_hashed_and_a_refusal_never_falls_back_to_names() {
        let key = blind_key();
        let mut relay = FakeBlindRelay::default();
        let mut sync = CatalogSync::new(CatalogForm::Blind(Box::new(key.clone())));
        assert!(!sync.takes_unhashed());
        let reg = registration();
        // b.bin is not hashed yet: it waits.
        let one = catalog(&[("a.txt", 1), ("b.bin", 0)]);
        assert_eq!(
            sync.sync(&reg, &one, |r| relay.answer(r)),
            Synced::Done {
                files: 1,
                refused: 0
            }
        );
        assert!(relay.by_tag.contains_key(&key.name_tag("a.txt")));
        assert!(!relay.by_tag.contains_key(&key.name_tag("b.bin")));
        let two = catalog(&[("a.txt", 1), ("b.bin", 2)]);
        assert!(matches!(
            sync.sync(&reg, &two, |r| relay.answer(r)),
            Synced::Done { files: 2, .. }
        ));
        // A relay without the blind index: no index, and no plain catalog
        // is ever tried.
        let mut asked = Vec::new();
        let older = |r: &Request| -> Result<Response, String> {
            asked.push(r.clone());
            Ok(Response::error(
                proto::ErrorKind::BadRequest,
                "unknown message tag 18",
            ))
        };
        sync.restart();
        assert!(matches!(sync.sync(&reg, &two, older), Synced::NoIndex(_)));
        assert!(
            asked.iter().all(|r| matches!(r, Request::BlindCatalog(_))),
            "{asked:?}"
        );
    }
}
