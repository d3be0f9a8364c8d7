//! The part of a `-o FILE` save: the bytes so far and a small record beside
//! them, so that a broken transfer can be resumed by the next run.
//!
//! Both are hidden files in the target's own directory: `.NAME.part` (the
//! content's bytes at their offsets) and `.NAME.part.rec` (the [`Record`]:
//! the content hash, the size, the name asked for, and which 64 KiB chunk
//! groups were verified and written). The part is renamed into place when
//! the content is whole and its hash checked; until then it is kept
//! whatever ends the run (Ctrl-C, SIGTERM, every holder gone, a full disk),
//! and after `kill -9` the record is at most [`SAVE_EVERY`] behind the
//! bytes. The record is never trusted: it only says which groups need not
//! be fetched again, and every kept byte is checked again before the file
//! counts (see [`crate::fetch`]). Parts whose record is older than
//! [`MAX_AGE`] are removed when a save next starts in that directory.
//!
//! Two runs saving to the same path would write the same part: the part is
//! locked (flock) while a run uses it, and a second run is refused.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use proto::ContentHash;
use proto::content::{ByteRange, CHUNK_GROUP};

/// Parts whose record was last written longer ago than this are removed
/// when a save next starts in their directory: a week.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The record is written at most this often while bytes arrive, so that a
/// killed client loses at most this much of its progress, and a fast
/// transfer does not spend its time rewriting the record.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Largest content a part is kept for: 4 TiB, so that the record's map of
/// groups stays within 8 MiB. A larger content is saved as before, with
/// nothing kept if it breaks.
pub const MAX_PART_SIZE: u64 = 4 << 40;

/// Longest name a record keeps, in bytes (longer names are cut).
pub const MAX_NAME: usize = 4096;

const MAGIC: &[u8; 8] = b"p2p-part";
const VERSION: u8 = 1;
/// Bytes of the record's own checksum, at its end: a torn or damaged record
/// is unreadable rather than wrong.
const CHECK_LEN: usize = 16;

/// Which chunk groups of a content are verified and written: one bit each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    bits: Vec<u8>,
    count: u64,
}

impl Groups {
    /// None of the groups of `size` bytes.
    pub fn none(size: u64) -> Groups {
        let count = size.div_ceil(CHUNK_GROUP);
        Groups {
            bits: vec![0; count.div_ceil(8) as usize],
            count,
        }
    }

    pub fn has(&self, group: u64) -> bool {
        group < self.count && self.bits[(group / 8) as usize] & (1 << (group % 8)) != 0
    }

    pub fn set(&mut self, group: u64) {
        if group < self.count {
            self.bits[(group / 8) as usize] |= 1 << (group % 8);
        }
    }

    pub fn unset(&mut self, group: u64) {
        if group < self.count {
            self.bits[(group / 8) as usize] &= !(1 << (group % 8));
        }
    }

    /// Marks every group that `range` of a `size`-byte content covers whole
    /// (the last group of the content is whole at the content's end).
    pub fn mark(&mut self, range: ByteRange, size: u64) {
        let first = range.offset.div_ceil(CHUNK_GROUP);
        let end = range.end();
        let last = if end >= size {
            self.count
        } else {
            end / CHUNK_GROUP
        };
        for g in first..last {
            self.set(g);
        }
    }

    /// Keeps only the groups entirely within the first `len` bytes of a
    /// `size`-byte content (a truncated part holds no more).
    pub fn cut(&mut self, len: u64, size: u64) {
        for g in 0..self.count {
            if ((g + 1) * CHUNK_GROUP).min(size) > len {
                self.bits[(g / 8) as usize] &= !(1 << (g % 8));
            }
        }
    }

    /// Bytes of a `size`-byte content in marked groups.
    pub fn bytes(&self, size: u64) -> u64 {
        (0..self.count)
            .filter(|&g| self.has(g))
            .map(|g| ((g + 1) * CHUNK_GROUP).min(size) - g * CHUNK_GROUP)
            .sum()
    }

    /// The byte ranges of a `size`-byte content in groups with the given
    /// mark, in order, adjacent groups joined: `false` gives what is still
    /// missing. Every range starts on a group; an empty content has none.
    pub fn runs(&self, size: u64, marked: bool) -> Vec<ByteRange> {
        let mut runs: Vec<ByteRange> = Vec::new();
        for g in 0..self.count {
            if self.has(g) != marked {
                continue;
            }
            let offset = g * CHUNK_GROUP;
            let len = ((g + 1) * CHUNK_GROUP).min(size) - offset;
            match runs.last_mut() {
                Some(last) if last.end() == offset => last.len += len,
                _ => runs.push(ByteRange { offset, len }),
            }
        }
        runs
    }
}

/// What is known of a part: whose bytes they are and which are there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub hash: ContentHash,
    pub size: u64,
    /// The name asked for (a file's name or `blake3:HEX`), for people.
    pub name: String,
    pub groups: Groups,
}

/// Why a record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not a record of this version, cut short, or damaged.
    Unreadable(&'static str),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Unreadable(why) => write!(f, "unreadable record ({why})"),
        }
    }
}

impl Record {
    pub fn new(hash: ContentHash, size: u64, name: &str) -> Record {
        let mut cut = name.len().min(MAX_NAME);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        Record {
            hash,
            size,
            name: name[..cut].to_string(),
            groups: Groups::none(size),
        }
    }

    /// `p2p-part`, version 1, hash (32), size (u64 LE), name length (u16
    /// LE) and name, one bit per group (lowest bit first), then the first
    /// 16 bytes of the BLAKE3 hash of all that.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.name.len() + self.groups.bits.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.hash.0);
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.groups.bits);
        let check = blake3::hash(&out);
        out.extend_from_slice(&check.as_bytes()[..CHECK_LEN]);
        out
    }

    /// Reads a record; any byte string gives a record or an error, never a
    /// panic, and never allocates more than the input's length.
    pub fn decode(bytes: &[u8]) -> Result<Record, RecordError> {
        let bad = RecordError::Unreadable;
        if bytes.len() < CHECK_LEN {
            return Err(bad("too short"));
        }
        let (body, check) = bytes.split_at(bytes.len() - CHECK_LEN);
        if blake3::hash(body).as_bytes()[..CHECK_LEN] != *check {
            return Err(bad("checksum"));
        }
        let mut r = body;
        let mut take = |n: usize| -> Result<&[u8], RecordError> {
            if r.len() < n {
                return Err(bad("too short"));
            }
            let (head, rest) = r.split_at(n);
            r = rest;
            Ok(head)
        };
        if take(8)? != MAGIC {
            return Err(bad("not a part record"));
        }
        if take(1)?[0] != VERSION {
            return Err(bad("another version"));
        }
        let hash = ContentHash(take(32)?.try_into().map_err(|_| bad("hash"))?);
        let size = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad("size"))?);
        if size > MAX_PART_SIZE {
            return Err(bad("size"));
        }
        let name_len = u16::from_le_bytes(take(2)?.try_into().map_err(|_| bad("name"))?);
        let name = std::str::from_utf8(take(name_len as usize)?)
            .map_err(|_| bad("name"))?
            .to_string();
        let count = size.div_ceil(CHUNK_GROUP);
        let bits = take(count.div_ceil(8) as usize)?.to_vec();
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        // Bits past the last group would be groups that do not exist.
        if count % 8 != 0 && bits.last().is_some_and(|b| b >> (count % 8) != 0) {
            return Err(bad("groups"));
        }
        Ok(Record {
            hash,
            size,
            name,
            groups: Groups { bits, count },
        })
    }
}

/// Where the part of a save to `target` lives: (part, record).
pub fn paths(target: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let base = target
        .file_name()
        .with_context(|| format!("{} does not name a file", target.display()))?;
    let dir = dir_of(target);
    let part = dir.join(format!(".{}.part", base.to_string_lossy()));
    let mut rec = part.clone().into_os_string();
    rec.push(".rec");
    Ok((part, PathBuf::from(rec)))
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Removes the parts in `dir` whose record is older than [`MAX_AGE`] (only
/// files named as parts are, and only with a readable record beside them).
/// Best effort: a part that cannot be removed stays.
pub fn remove_old(dir: &Path, now: SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".part.rec")) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > MAX_AGE);
        if !old || !meta.is_file() {
            continue;
        }
        let rec = entry.path();
        let readable = std::fs::read(&rec)
            .ok()
            .is_some_and(|b| Record::decode(&b).is_ok());
        if !readable {
            continue;
        }
        let part = rec.with_extension("");
        let _ = std::fs::remove_file(&part);
        let _ = std::fs::remove_file(&rec);
    }
}

/// How a part's kept bytes stand against the content found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// Nothing kept: a fresh start.
    Nothing,
    /// Bytes of this content kept from an earlier run, in the `kept`
    /// ranges; the `missing` ones are still to be fetched.
    Some {
        kept: Vec<ByteRange>,
        missing: Vec<ByteRange>,
        bytes: u64,
    },
    /// The part was for another content (the name now has other bytes, or
    /// the record is unreadable): started over.
    Other { why: String },
}

/// The part of one save in progress: its file, locked, and its record.
pub struct Part {
    file: File,
    path: PathBuf,
    rec_path: PathBuf,
    /// Shared with the interrupt handler, which writes the record on exit.
    live: Arc<Live>,
}

/// What the interrupt handler needs of a part: where its record goes, and
/// the record as it is now.
pub struct Live {
    rec_path: PathBuf,
    state: Mutex<LiveState>,
}

struct LiveState {
    /// None until the content is known (or when it cannot be resumed).
    record: Option<Record>,
    /// The record found when the part was opened, until the content is known.
    found: Option<Result<Record, RecordError>>,
    /// The content is known ([`Part::begin`]): until then the part is as
    /// an earlier run left it, and is left so.
    begun: bool,
    saved: Instant,
    /// Renamed into place or removed: nothing to keep.
    done: bool,
}

/// Parts in use, for the interrupt handler (which cannot run destructors).
static LIVE: Mutex<Vec<Arc<Live>>> = Mutex::new(Vec::new());

impl Part {
    /// Opens (or creates) the part of a save to `target`, locked for this
    /// run. A new part is made with mode 0666 less the umask, or 0600 when
    /// it will replace an existing file (whose mode it takes on commit).
    /// `fresh` (`--no-resume`) removes any part and record first. Old parts
    /// in the directory are removed first.
    pub fn open(target: &Path, replaces: bool, fresh: bool) -> anyhow::Result<Part> {
        let (path, rec_path) = paths(target)?;
        remove_old(dir_of(target), SystemTime::now());
        if fresh {
            let _ = std::fs::remove_file(&rec_path);
            let _ = std::fs::remove_file(&path);
        }
        let cannot = || format!("cannot create a file in {}", dir_of(target).display());
        let mode = if replaces { 0o600 } else { 0o666 };
        // O_NOFOLLOW: a link planted at the part's name must not send the
        // bytes outside the target's directory.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .with_context(cannot)?;
        let meta = file.metadata().with_context(cannot)?;
        if !meta.is_file() {
            anyhow::bail!("{}: not a regular file", path.display());
        }
        if !lock(&file) {
            anyhow::bail!(
                "{} is in use: another peer-client is saving to {}",
                path.display(),
                target.display()
            );
        }
        let found = match read_record(&rec_path) {
            Ok(None) => None,
            Ok(Some(rec)) => Some(Ok(rec)),
            Err(e) => Some(Err(e)),
        };
        let live = Arc::new(Live {
            rec_path: rec_path.clone(),
            state: Mutex::new(LiveState {
                record: None,
                found,
                begun: false,
                saved: Instant::now(),
                done: false,
            }),
        });
        if let Ok(mut list) = LIVE.lock() {
            list.push(live.clone());
        }
        Ok(Part {
            file,
            path,
            rec_path,
            live,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The content is known: what of it the part keeps. A record for this
    /// hash and size keeps its groups that the part's length still holds;
    /// anything else starts over (the part is emptied, never mixed).
    /// `None` content (unverified, or too large) keeps nothing, now or
    /// later.
    pub fn begin(&self, content: Option<(ContentHash, u64)>, name: &str) -> io::Result<Kept> {
        let mut state = self.live.lock();
        let found = state.found.take();
        state.begun = true;
        let Some((hash, size)) = content.filter(|(_, size)| *size <= MAX_PART_SIZE) else {
            state.record = None;
            self.file.set_len(0)?;
            return Ok(match found {
                Some(_) => Kept::Other {
                    why: "its content cannot be checked by hash".into(),
                },
                None => Kept::Nothing,
            });
        };
        let mut record = Record::new(hash, size, name);
        let kept = match found {
            None => Kept::Nothing,
            Some(Err(e)) => Kept::Other { why: e.to_string() },
            Some(Ok(old)) if old.hash != hash || old.size != size => Kept::Other {
                why: format!(
                    "it holds blake3 {} ({} bytes), the name now has blake3 {} ({size} bytes)",
                    old.hash.short(),
                    old.size,
                    hash.short()
                ),
            },
            Some(Ok(old)) => {
                let mut groups = old.groups;
                groups.cut(self.file.metadata()?.len(), size);
                let bytes = groups.bytes(size);
                let kept = groups.runs(size, true);
                let missing = groups.runs(size, false);
                record.groups = groups;
                if bytes == 0 {
                    Kept::Nothing
                } else {
                    Kept::Some {
                        kept,
                        missing,
                        bytes,
                    }
                }
            }
        };
        if !matches!(kept, Kept::Some { .. }) {
            self.file.set_len(0)?;
        }
        state.record = Some(record);
        save(&self.rec_path, &mut state)?;
        Ok(kept)
    }

    /// Writes verified bytes at `offset` and marks their groups (the record
    /// on disk follows at most [`SAVE_EVERY`] later).
    pub fn write_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(bytes, offset)?;
        let mut state = self.live.lock();
        if let Some(record) = state.record.as_mut() {
            let size = record.size;
            record.groups.mark(
                ByteRange {
                    offset,
                    len: bytes.len() as u64,
                },
                size,
            );
            if state.saved.elapsed() >= SAVE_EVERY {
                // A record that cannot be written costs only a resume.
                let _ = save(&self.rec_path, &mut state);
            }
        }
        Ok(())
    }

    /// Forgets that `ranges` were kept: they are to be fetched again.
    pub fn unmark(&self, ranges: &[ByteRange]) {
        let mut state = self.live.lock();
        if let Some(record) = state.record.as_mut() {
            for r in ranges {
                for g in r.offset / CHUNK_GROUP..r.end().div_ceil(CHUNK_GROUP) {
                    record.groups.unset(g);
                }
            }
            let _ = save(&self.rec_path, &mut state);
        }
    }

    /// The groups the record marks now (kept, or written in this run), or
    /// None before the content is known.
    pub fn groups(&self) -> Option<Groups> {
        let state = self.live.lock();
        state.record.as_ref().map(|r| r.groups.clone())
    }

    /// What is still to be fetched: the ranges of unmarked groups.
    pub fn missing(&self) -> Vec<ByteRange> {
        let state = self.live.lock();
        match state.record.as_ref() {
            Some(r) => r.groups.runs(r.size, false),
            None => Vec::new(),
        }
    }

    /// True when every byte of the part's content hashes to `hash`; reads
    /// the part once, at hashing speed.
    pub fn hashes_to(&self, hash: &ContentHash) -> io::Result<bool> {
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        loop {
            let n = self.file.read_at(&mut buf, at)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        Ok(hasher.finalize().as_bytes() == &hash.0)
    }

    /// The save is complete: the part becomes the target (mode and sync
    /// are the caller's), and the record goes.
    pub fn persist(self, target: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.live.lock().done = true;
        let _ = std::fs::remove_file(&self.rec_path);
        Ok(())
    }

    /// True when an earlier run left a record of verified bytes here, not
    /// looked at yet ([`Part::begin`] decides whether they are kept).
    pub fn has_earlier(&self) -> bool {
        let state = self.live.lock();
        matches!(&state.found, Some(Ok(rec)) if rec.groups.bytes(rec.size) > 0)
    }

    /// What the part keeps, when it keeps anything: (verified bytes, size).
    pub fn kept(&self) -> Option<(u64, u64)> {
        let state = self.live.lock();
        let record = state.record.as_ref()?;
        let bytes = record.groups.bytes(record.size);
        (bytes > 0).then_some((bytes, record.size))
    }
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Part {
    /// A save that ends without its rename keeps its part when it holds
    /// verified bytes of a known content; anything else is removed.
    fn drop(&mut self) {
        if let Ok(mut list) = LIVE.lock() {
            list.retain(|l| !Arc::ptr_eq(l, &self.live));
        }
        let mut state = self.live.lock();
        if state.done {
            return;
        }
        state.done = true;
        if !state.begun {
            // Nothing found this time: an earlier run's part stays as it
            // was; a part made now (no record) goes.
            if state.found.is_none() {
                let _ = std::fs::remove_file(&self.path);
            }
            return;
        }
        let keep = state
            .record
            .as_ref()
            .is_some_and(|r| r.groups.bytes(r.size) > 0);
        if keep && save(&self.rec_path, &mut state).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.rec_path);
    }
}

/// Writes the record beside its part: to a new file renamed over the old
/// one, so that the record on disk is always whole. On a full disk there
/// may be no room for the new file: the old one is then overwritten in
/// place, which needs no new space (a record keeps its length for one
/// content); a write torn by a crash fails the record's checksum, and the
/// next run starts over rather than trust it.
fn save(rec_path: &Path, state: &mut LiveState) -> io::Result<()> {
    let Some(record) = state.record.as_ref() else {
        return Ok(());
    };
    let bytes = record.encode();
    let mut tmp = rec_path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let renamed = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o666)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        drop(f);
        std::fs::rename(&tmp, rec_path)
    })();
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        if !no_room(&e) {
            return Err(e);
        }
        let f = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(rec_path)?;
        if f.metadata()?.len() != bytes.len() as u64 {
            return Err(e);
        }
        f.write_all_at(&bytes, 0)?;
    }
    state.saved = Instant::now();
    Ok(())
}

/// A full disk or an exhausted quota.
fn no_room(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Takes an exclusive flock on `file` without waiting; false when another
/// process holds it. (std's `File::try_lock` is newer than our MSRV.)
fn lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor we own; no memory is passed.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn read_record(path: &Path) -> Result<Option<Record>, RecordError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(RecordError::Unreadable("cannot be read")),
    };
    let limit = MAX_PART_SIZE.div_ceil(CHUNK_GROUP).div_ceil(8) + 1024 + MAX_NAME as u64;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|_| RecordError::Unreadable("cannot be read"))?;
    Record::decode(&bytes).map(Some)
}

/// For the interrupt handler, right before the process exits: writes the
/// record of every part in use, and says for each what it kept, as
/// `interrupted at 905 MiB of 1.0 GiB; run the same command to resume`.
/// Parts that keep nothing are removed.
pub fn keep_all() -> Vec<String> {
    let list = match LIVE.lock() {
        Ok(list) => list.clone(),
        Err(e) => e.into_inner().clone(),
    };
    let mut lines = Vec::new();
    for live in list {
        let mut state = live.lock();
        if state.done {
            continue;
        }
        state.done = true;
        if !state.begun {
            if state.found.is_none() {
                let _ = std::fs::remove_file(live.rec_path.with_extension(""));
            }
            continue;
        }
        let kept = state
            .record
            .as_ref()
            .map(|r| (r.groups.bytes(r.size), r.size))
            .filter(|(bytes, _)| *bytes > 0);
        match kept {
            Some((bytes, size)) if save(&live.rec_path, &mut state).is_ok() => {
                lines.push(interrupted_line(bytes, size));
            }
            _ => {
                let part = live.rec_path.with_extension("");
                let _ = std::fs::remove_file(part);
                let _ = std::fs::remove_file(&live.rec_path);
            }
        }
    }
    lines
}

/// `interrupted at 905 MiB of 1.0 GiB; run the same command to resume`.
pub fn interrupted_line(bytes: u64, size: u64) -> String {
    format!(
        "interrupted at {} of {}; run the same command to resume",
        human(bytes),
        human(size)
    )
}

/// Bytes for people: `512 bytes`, `12 KiB`, `905 MiB`, `1.0 GiB`.
pub fn human(bytes: u64) -> String {
    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    const G: u64 = 1 << 30;
    match bytes {
        b if b < K => format!("{b} bytes"),
        b if b < M => format!("{} KiB", b / K),
        b if b < G => format!("{} MiB", b / M),
        b => format!("{:.1} GiB", b as f64 / G as f64),
    }
}

/// The same file, with its mode set as a new or replacing save wants.
pub fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const G: u64 = CHUNK_GROUP;

    fn record(size: u64) -> Record {
        Record::new(ContentHash::of(b"x"), size, "big.bin")
    }

    #[test]
    fn a_record_reads_back_and_damage_is_refused() {
        let mut rec = record(10 * G + 5);
        rec.groups.mark(
            ByteRange {
                offset: 0,
                len: 3 * G,
            },
            rec.size,
        );
        rec.groups.mark(
            ByteRange {
                offset: 10 * G,
                len: 5,
            },
            rec.size,
        );
        let bytes = rec.encode();
        assert_eq!(Record::decode(&bytes), Ok(rec.clone()));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Record::decode(&bad).is_err(), "flip at {i} accepted");
        }
        assert!(Record::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Record::decode(b"").is_err());
    }

    #[test]
    fn groups_give_what_is_kept_and_what_is_missing() {
        let size = 5 * G + 7;
        let mut groups = Groups::none(size);
        groups.mark(
            ByteRange {
                offset: G,
                len: 2 * G,
            },
            size,
        );
        // A range that ends inside a group leaves it unmarked.
        groups.mark(
            ByteRange {
                offset: 4 * G,
                len: G / 2,
            },
            size,
        );
        groups.mark(
            ByteRange {
                offset: 5 * G,
                len: 7,
            },
            size,
        );
        assert_eq!(groups.bytes(size), 2 * G + 7);
        assert_eq!(
            groups.runs(size, false),
            vec![
                ByteRange { offset: 0, len: G },
                ByteRange {
                    offset: 3 * G,
                    len: 2 * G
                }
            ]
        );
        groups.cut(2 * G, size);
        assert_eq!(
            groups.runs(size, true),
            vec![ByteRange { offset: G, len: G }]
        );
        assert!(Groups::none(0).runs(0, false).is_empty());
    }

    #[test]
    fn sizes_read_for_people() {
        assert_eq!(
            interrupted_line(905 << 20, 1 << 30),
            "interrupted at 905 MiB of 1.0 GiB; run the same command to resume"
        );
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(12 << 10), "12 KiB");
    }

    #[test]
    fn a_part_is_kept_on_drop_and_resumed_for_the_same_content_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let hash = ContentHash::of(b"x");
        let size = 4 * G;
        let part = Part::open(&target, false, false).unwrap();
        assert_eq!(
            part.begin(Some((hash, size)), "big.bin").unwrap(),
            Kept::Nothing
        );
        part.write_at(&vec![7; 2 * G as usize], 0).unwrap();
        // A second run cannot use it meanwhile.
        assert!(Part::open(&target, false, false).is_err());
        drop(part);
        let (p, r) = paths(&target).unwrap();
        assert!(p.exists() && r.exists());
        let part = Part::open(&target, false, false).unwrap();
        assert_eq!(
            part.begin(Some((hash, size)), "big.bin").unwrap(),
            Kept::Some {
                kept: vec![ByteRange {
                    offset: 0,
                    len: 2 * G
                }],
                missing: vec![ByteRange {
                    offset: 2 * G,
                    len: 2 * G
                }],
                bytes: 2 * G
            }
        );
        drop(part);
        let part = Part::open(&target, false, false).unwrap();
        let other = ContentHash::of(b"y");
        assert!(matches!(
            part.begin(Some((other, size)), "big.bin").unwrap(),
            Kept::Other { .. }
        ));
        drop(part);
        // Nothing verified of the new content: nothing kept.
        assert!(!p.exists() && !r.exists());
    }

    #[test]
    fn old_parts_are_removed_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        let part = Part::open(&target, false, false).unwrap();
        part.begin(Some((ContentHash::of(b"x"), G)), "a.bin")
            .unwrap();
        part.write_at(&vec![1; G as usize], 0).unwrap();
        drop(part);
        std::fs::write(dir.path().join(".mine.part"), b"not ours").unwrap();
        remove_old(dir.path(), SystemTime::now());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        remove_old(
            dir.path(),
            SystemTime::now() + MAX_AGE + Duration::from_secs(60),
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(".mine.part")]);
    }

    proptest! {
        /// Any bytes decode to a record or an error, never a panic.
        #[test]
        fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Record::decode(&bytes);
        }

        /// Any record survives its encoding.
        #[test]
        fn records_round_trip(size in 0u64..(40 * G), marks in prop::collection::vec((0u64..40, 0u64..5), 0..10), name in ".{0,40}") {
            let mut rec = Record::new(ContentHash::of(name.as_bytes()), size, &name);
            for (g, n) in marks {
                rec.groups.mark(ByteRange { offset: g * G, len: n * G }, size);
            }
            prop_assert_eq!(Record::decode(&rec.encode()), Ok(rec));
        }
    }
}
