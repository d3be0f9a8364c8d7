//! The content index: each shared file's BLAKE3 hash, and which names hold
//! which hash.
//!
//! A hash belongs to a version of a file on disk, identified by its
//! [`FileKey`] (device, inode, size, mtime, ctime): a file written since
//! has another key and is hashed again. Hashing streams the file one chunk
//! group at a time and writes its outboard into the cache directory, so
//! memory stays flat whatever the size, and no tree is ever held in memory.
//!
//! Each version's hash is also kept in the cache directory (one small file
//! named after its key, holding `blake3:<hex>`), so a restarted node finds
//! the hashes of files that did not change instead of reading them all
//! again. A version file is only a hint: it is used only with its outboard
//! in place, and a client checks every byte against the hash anyway.
//!
//! Hashing happens outside the lock: a request for a file whose hash is not
//! ready waits for that one hash (and hashes it itself if nobody is), never
//! for another file's. One low-priority thread hashes the whole directory
//! at startup, and again when a request names a hash nobody here is known to
//! hold (a file added since).

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::ContentHash;
use proto::content::{CHUNK_GROUP, hash_and_outboard, outboard_len};

use crate::share::SharedDir;

/// What identifies one version of a file on disk. ctime changes on every
/// write and cannot be set by a user, so a file rewritten in place with its
/// old mtime restored still gets a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    pub size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    pub fn of(meta: &Metadata) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The key of an open file now.
    pub fn now(file: &File) -> io::Result<FileKey> {
        file.metadata().map(|m| FileKey::of(&m))
    }

    /// How long ago the version's last write was (its ctime); None when
    /// the ctime is ahead of the clock (a clock stepped back).
    fn age(&self) -> Option<Duration> {
        let (secs, nanos) = self.ctime;
        let written = UNIX_EPOCH
            + Duration::new(
                u64::try_from(secs).unwrap_or(0),
                u32::try_from(nanos).unwrap_or(0).min(999_999_999),
            );
        SystemTime::now().duration_since(written).ok()
    }

    /// True when the version was written so recently ([`RACY`]) that a
    /// write still to come could leave its key as it is.
    pub fn is_racy(&self) -> bool {
        self.age().is_some_and(|age| age < RACY)
    }

    /// The key of an open file once its last write is surely in an earlier
    /// timestamp tick than any write to come ([`RACY`]): then a later write
    /// changes the key, and the hash taken under it cannot go stale unseen.
    pub fn settled(file: &File) -> io::Result<FileKey> {
        let key = FileKey::now(file)?;
        match key.age() {
            Some(age) if age < RACY => {
                std::thread::sleep(RACY - age);
                FileKey::now(file)
            }
            _ => Ok(key),
        }
    }
}

/// How recent a write must be for a hash to wait before it is taken.
/// Two ways a version can change under an unchanged key: timestamps on
/// disk move in coarse ticks (a jiffy, up to 10 ms), so a write within the
/// tick of the one before leaves mtime and ctime as they were; and a write
/// sets them as it starts, so one still copying its bytes when the hashing
/// begins changes the file with no later change of key. Either way the
/// node would serve proofs of a version the file no longer holds (the
/// client refuses them, and the fetch fails). As git treats "racily clean"
/// entries, a file written this recently is hashed only once its tick, and
/// any write begun in it, is surely over.
const RACY: Duration = Duration::from_millis(25);

/// A file's hash, for the version `key` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashed {
    pub hash: ContentHash,
    pub key: FileKey,
}

/// How often a file may change under the hasher before it gives up.
const HASH_ATTEMPTS: usize = 3;

/// The subdirectory of the cache that keeps each version's hash.
const VERSIONS: &str = "versions";

/// The most of a version record ever read (`blake3:` and 64 hex digits).
const RECORD_MAX: u64 = 128;

/// Shortest time between the end of one scan and the start of the next.
const MIN_RESCAN_GAP: Duration = Duration::from_secs(1);

/// A rescan waits this many times as long as the last scan took, so a big
/// directory is walked at most a tenth of the time.
const RESCAN_DUTY: u32 = 10;

/// The index, a cheap-to-clone handle.
#[derive(Clone)]
pub struct ContentIndex {
    shared: Arc<Shared>,
}

struct Shared {
    cache: PathBuf,
    /// Versions found hashed by an earlier run ([`ContentIndex::recalled`]).
    recalled: AtomicU64,
    /// Versions hashed (or recalled) so far: a cheap "anything new?" for
    /// those who watch the index ([`crate::dht`]).
    hashed: AtomicU64,
    state: Mutex<State>,
    /// Signalled when a hash is done (or given up) and when a scan ends.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    by_key: HashMap<FileKey, Slot>,
    /// Each name's last known version and hash.
    by_name: HashMap<String, Hashed>,
    /// The names last seen holding each hash.
    by_hash: HashMap<ContentHash, Vec<String>>,
    scans_wanted: u64,
    scans_started: u64,
    scans_done: u64,
}

enum Slot {
    /// Some thread is hashing this version now.
    Hashing,
    Ready(ContentHash),
}

impl ContentIndex {
    /// An empty index keeping outboards in `cache` (see [`crate::cache`]).
    pub fn new(cache: PathBuf) -> ContentIndex {
        ContentIndex {
            shared: Arc::new(Shared {
                cache,
                recalled: AtomicU64::new(0),
                hashed: AtomicU64::new(0),
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The hash of `file` as it is now, hashing it if this version was not
    /// hashed yet (or waiting while another thread hashes it). If the file
    /// changes while it is hashed, it is hashed again, a few times at most.
    /// A version written within the last tick is hashed once the tick is
    /// over ([`FileKey::settled`]): up to [`RACY`] of waiting.
    pub fn hash_of(&self, file: &File) -> io::Result<Hashed> {
        let mut last_change = None;
        for _ in 0..HASH_ATTEMPTS {
            let key = FileKey::settled(file)?;
            {
                let mut state = self.lock();
                loop {
                    match state.by_key.get(&key) {
                        Some(Slot::Ready(hash)) => return Ok(Hashed { hash: *hash, key }),
                        Some(Slot::Hashing) => {
                            state = self
                                .shared
                                .changed
                                .wait(state)
                                .unwrap_or_else(|p| p.into_inner());
                        }
                        None => {
                            state.by_key.insert(key, Slot::Hashing);
                            break;
                        }
                    }
                }
            }
            let claim = Claim { index: self, key };
            let hash = match self.recalled(&key) {
                Some(hash) => hash,
                None => {
                    let hash = self.hash_version(file, key.size)?;
                    self.record(&key, &hash);
                    hash
                }
            };
            let after = FileKey::now(file)?;
            if after == key {
                claim.fulfil(hash);
                return Ok(Hashed { hash, key });
            }
            last_change = Some(after);
            drop(claim);
        }
        tracing::debug!("still changing: {last_change:?}");
        Err(io::Error::other(format!(
            "the file changed while it was hashed, {HASH_ATTEMPTS} times in a row"
        )))
    }

    /// Streams `size` bytes of `file` through the hasher; a file larger
    /// than one chunk group leaves its outboard in the cache, written to a
    /// temporary file first and renamed, so a reader never sees half of one.
    fn hash_version(&self, file: &File, size: u64) -> io::Result<ContentHash> {
        let started = Instant::now();
        let reader = FileAt { file, pos: 0 };
        if size <= CHUNK_GROUP {
            let hash = hash_and_outboard(reader, size, io::sink())?;
            crate::metrics::hashed(size, started.elapsed());
            return Ok(hash);
        }
        let tmp = tempfile::Builder::new()
            .prefix(".hashing-")
            .tempfile_in(&self.shared.cache)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot write to the cache {}: {}",
                        self.shared.cache.display(),
                        proto::error::io_reason(&e)
                    ),
                )
            })?;
        let mut out = BufWriter::with_capacity(64 * 1024, tmp);
        let hash = hash_and_outboard(reader, size, &mut out)?;
        out.flush()?;
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        tmp.persist(self.outboard_path(&hash))
            .map_err(|e| e.error)?;
        crate::metrics::hashed(size, started.elapsed());
        Ok(hash)
    }

    fn outboard_path(&self, hash: &ContentHash) -> PathBuf {
        self.shared.cache.join(format!("{hash}.obao"))
    }

    /// Where the hash of version `key` is kept.
    fn version_path(&self, key: &FileKey) -> PathBuf {
        self.shared.cache.join(VERSIONS).join(format!(
            "{}-{}-{}-{}.{}-{}.{}",
            key.dev, key.ino, key.size, key.mtime.0, key.mtime.1, key.ctime.0, key.ctime.1
        ))
    }

    /// The hash kept for version `key` by an earlier run, if there is one
    /// and its outboard is in place (so the version can be served as is).
    fn recalled(&self, key: &FileKey) -> Option<ContentHash> {
        // A record is one line of 72 bytes: read no more than that, whatever
        // the file has become.
        let mut text = String::new();
        File::open(self.version_path(key))
            .ok()?
            .take(RECORD_MAX)
            .read_to_string(&mut text)
            .ok()?;
        let hash: ContentHash = text.trim().parse().ok()?;
        if key.size > CHUNK_GROUP {
            let len = fs::metadata(self.outboard_path(&hash)).ok()?.len();
            if len != outboard_len(key.size) {
                return None;
            }
        }
        self.shared.recalled.fetch_add(1, Ordering::Relaxed);
        Some(hash)
    }

    /// Keeps the hash of version `key` for the next run: written to a
    /// temporary file and renamed, so a reader never sees half of one. Best
    /// effort: without it the next run hashes the file again.
    fn record(&self, key: &FileKey, hash: &ContentHash) {
        let path = self.version_path(key);
        let kept = (|| -> io::Result<()> {
            let dir = self.shared.cache.join(VERSIONS);
            fs::create_dir_all(&dir)?;
            let mut tmp = tempfile::Builder::new()
                .prefix(".version-")
                .tempfile_in(&dir)?;
            writeln!(tmp, "{}{hash}", proto::content::HASH_PREFIX)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(e) = kept {
            tracing::debug!("cannot keep the hash of {}: {e}", path.display());
        }
    }

    /// How many versions were hashed (or recalled) so far; grows by one with
    /// each.
    pub fn generation(&self) -> u64 {
        self.shared.hashed.load(Ordering::Relaxed)
    }

    /// How many versions so far were found hashed by an earlier run.
    pub fn recalled_count(&self) -> u64 {
        self.shared.recalled.load(Ordering::Relaxed)
    }

    /// The outboard of a hashed file (None for a file of one chunk group or
    /// less, which needs none). If it went missing from the cache, or is not
    /// the length the size needs, the version is forgotten, so the next
    /// [`ContentIndex::hash_of`] writes it again.
    pub fn outboard(&self, hashed: &Hashed) -> io::Result<Option<File>> {
        if hashed.key.size <= CHUNK_GROUP {
            return Ok(None);
        }
        let path = self.outboard_path(&hashed.hash);
        let opened = File::open(&path).and_then(|f| {
            let len = f.metadata()?.len();
            if len == outboard_len(hashed.key.size) {
                Ok(f)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} has {len} bytes, not {}",
                        path.display(),
                        outboard_len(hashed.key.size)
                    ),
                ))
            }
        });
        if opened.is_err() {
            let mut state = self.lock();
            if matches!(state.by_key.get(&hashed.key), Some(Slot::Ready(_))) {
                state.by_key.remove(&hashed.key);
            }
        }
        opened.map(Some)
    }

    /// Records that `name` holds `hashed`, for lookups by hash.
    pub fn remember(&self, name: &str, hashed: Hashed) {
        let mut state = self.lock();
        if let Some(old) = state.by_name.insert(name.to_string(), hashed)
            && old.hash != hashed.hash
            && let Some(names) = state.by_hash.get_mut(&old.hash)
        {
            names.retain(|n| n != name);
            if names.is_empty() {
                state.by_hash.remove(&old.hash);
            }
        }
        let names = state.by_hash.entry(hashed.hash).or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }

    /// The hash of the file at `path` (inside DIR) if its current version
    /// was hashed; no hashing is started.
    pub fn known(&self, path: &Path) -> Option<ContentHash> {
        let key = FileKey::of(&fs::metadata(path).ok()?);
        self.ready(&key)
    }

    /// Whether the open file's current version is hashed.
    fn is_ready(&self, file: &File) -> bool {
        FileKey::now(file).is_ok_and(|key| self.ready(&key).is_some())
    }

    fn ready(&self, key: &FileKey) -> Option<ContentHash> {
        match self.lock().by_key.get(key) {
            Some(Slot::Ready(hash)) => Some(*hash),
            _ => None,
        }
    }

    /// The names last seen holding `hash`. Waits (at most `wait`) for the
    /// startup scan; if nobody holds it, for one more scan that starts after
    /// this call, which finds files added since. The names must still be
    /// checked: a file may have changed since it was hashed. Err when the
    /// wait ran out first.
    pub fn holders(&self, hash: &ContentHash, wait: Duration) -> Result<Vec<String>, ScanPending> {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        state = self.wait_until(state, deadline, |s| s.scans_done > 0)?;
        if let Some(names) = state.by_hash.get(hash).filter(|n| !n.is_empty()) {
            return Ok(names.clone());
        }
        let need = state.scans_started + 1;
        state.scans_wanted = state.scans_wanted.max(need);
        self.shared.changed.notify_all();
        state = self.wait_until(state, deadline, |s| s.scans_done >= need)?;
        Ok(state.by_hash.get(hash).cloned().unwrap_or_default())
    }

    /// Asks the scanner for one more scan, which hashes files added since
    /// the last (spaced like every scan, see [`ContentIndex::start_scanner`]).
    pub fn request_scan(&self) {
        let mut state = self.lock();
        let need = state.scans_started + 1;
        state.scans_wanted = state.scans_wanted.max(need);
        self.shared.changed.notify_all();
    }

    fn wait_until<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
        deadline: Instant,
        done: impl Fn(&State) -> bool,
    ) -> Result<MutexGuard<'a, State>, ScanPending> {
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ScanPending);
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(state)
    }

    /// Starts the scanner thread: it hashes every shared file now, and
    /// again whenever [`ContentIndex::holders`] asks for a scan. It runs at
    /// the lowest CPU priority, so serving always comes first.
    pub fn start_scanner(&self, share: SharedDir) -> io::Result<()> {
        self.lock().scans_wanted = 1;
        let index = self.clone();
        // Crucial: without it, a file would be hashed only when asked for,
        // and the catalog would wait for hashes that never come.
        plumbing::crucial::spawn("hash-scan", move || {
            lower_priority();
            let mut last: Option<(Instant, Duration)> = None;
            loop {
                // Scans after the first are asked for by requests for a hash
                // nobody holds, which any client can send at will: they are
                // spaced out so such requests cannot keep the node walking
                // its directory (at most a tenth of the time, at most one a
                // second). Such a request waits for the next scan. The time
                // spent hashing new versions does not count: that work is
                // owed once per change whoever asks, and counting it spaced
                // the scans after a big file's hashing on a busy machine
                // past what such a request waits (ranges::SCAN_WAIT).
                if let Some((ended, took)) = last {
                    let gap = (took * RESCAN_DUTY).max(MIN_RESCAN_GAP);
                    let left = (ended + gap).saturating_duration_since(Instant::now());
                    if !left.is_zero() {
                        std::thread::sleep(left);
                    }
                }
                let generation = {
                    let mut state = index.lock();
                    while state.scans_wanted <= state.scans_started {
                        state = index
                            .shared
                            .changed
                            .wait(state)
                            .unwrap_or_else(|p| p.into_inner());
                    }
                    state.scans_started += 1;
                    state.scans_started
                };
                let started = Instant::now();
                let hashing = index.scan(&share, generation == 1);
                let walking = started.elapsed().saturating_sub(hashing);
                last = Some((Instant::now(), walking));
                index.lock().scans_done = generation;
                index.shared.changed.notify_all();
            }
        })?;
        Ok(())
    }

    /// Hashes every shared file whose current version is not hashed yet;
    /// returns the time spent on that hashing (the rest is the walk).
    fn scan(&self, share: &SharedDir, first: bool) -> Duration {
        let started = Instant::now();
        let mut hashing = Duration::ZERO;
        let recalled_before = self.recalled_count();
        let (entries, _) = share.list();
        let (mut files, mut bytes, mut failed) = (0usize, 0u64, 0usize);
        let total = entries.len();
        for (done, entry) in entries.into_iter().enumerate() {
            crate::metrics::to_hash(total - done);
            let Ok(shared) = share.open_file(&entry.name) else {
                continue; // gone since the listing, or not servable
            };
            let new = !self.is_ready(&shared.file);
            let asked = Instant::now();
            let hashed = self.hash_of(&shared.file);
            if new {
                hashing += asked.elapsed();
            }
            match hashed {
                Ok(hashed) => {
                    self.remember(&entry.name, hashed);
                    files += 1;
                    bytes += hashed.key.size;
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(
                        "cannot hash {}: {}",
                        entry.name.escape_debug(),
                        proto::error::io_reason(&e)
                    );
                }
            }
        }
        crate::metrics::to_hash(0);
        crate::metrics::sharing(files, bytes);
        let recalled = self.recalled_count() - recalled_before;
        let line = format!(
            "hashed {files} shared files ({bytes} bytes) in {} ms{}{}",
            started.elapsed().as_millis(),
            if recalled > 0 {
                format!(", {recalled} of them known from an earlier run")
            } else {
                String::new()
            },
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        );
        if first {
            tracing::info!("{line}");
        } else {
            tracing::debug!("{line}");
        }
        hashing
    }
}

/// The startup scan has not finished within the wait.
#[derive(Debug)]
pub struct ScanPending;

/// A version this thread is hashing. Dropped unfulfilled (an error, a
/// change under the hasher, a panic), it frees the slot, so the threads
/// waiting for it try themselves instead of waiting forever.
struct Claim<'a> {
    index: &'a ContentIndex,
    key: FileKey,
}

impl Claim<'_> {
    fn fulfil(self, hash: ContentHash) {
        self.index.lock().by_key.insert(self.key, Slot::Ready(hash));
        self.index.shared.hashed.fetch_add(1, Ordering::Relaxed);
        self.index.shared.changed.notify_all();
        std::mem::forget(self);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.index.lock().by_key.remove(&self.key);
        self.index.shared.changed.notify_all();
    }
}

/// Reads a file from its start with pread, leaving its position alone
/// (a request thread may hold the same file).
struct FileAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Lowers this thread to nice 19: hashing a large directory must not slow
/// a transfer down.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on our own thread id has no memory effects; on
    // Linux a thread id names just this thread.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn setup() -> (tempfile::TempDir, ContentIndex, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        fs::create_dir(&cache).unwrap();
        let share = tmp.path().join("share");
        fs::create_dir(&share).unwrap();
        (tmp, ContentIndex::new(cache), share)
    }

    #[test]
    fn a_file_written_this_tick_is_keyed_only_once_the_tick_is_over() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"just written").unwrap();
        let key = FileKey::settled(&file).unwrap();
        let (secs, nanos) = key.ctime;
        let written = UNIX_EPOCH + Duration::new(secs as u64, nanos as u32);
        let age = SystemTime::now().duration_since(written).unwrap();
        assert!(age >= RACY, "keyed {age:?} after the write");
    }

    #[test]
    fn hashes_once_per_version_and_again_after_a_change() {
        let (_tmp, index, share) = setup();
        let path = share.join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        fs::write(&path, &data).unwrap();
        let a = index.hash_of(&File::open(&path).unwrap()).unwrap();
        assert_eq!(a.hash, ContentHash::of(&data));
        assert_eq!(index.known(&path), Some(a.hash));
        let ob = index.outboard(&a).unwrap().unwrap();
        assert_eq!(
            ob.metadata().unwrap().len(),
            outboard_len(data.len() as u64)
        );
        fs::write(&path, b"changed").unwrap();
        assert_eq!(index.known(&path), None);
        let b = index.hash_of(&File::open(&path).unwrap()).unwrap();
        assert_eq!(b.hash, ContentHash::of(b"changed"));
        assert!(index.outboard(&b).unwrap().is_none());
    }

    #[test]
    fn a_missing_outboard_makes_the_version_hash_again() {
        let (tmp, index, share) = setup();
        let path = share.join("f");
        fs::write(&path, vec![7u8; 200_000]).unwrap();
        let a = index.hash_of(&File::open(&path).unwrap()).unwrap();
        fs::remove_file(tmp.path().join("cache").join(format!("{}.obao", a.hash))).unwrap();
        assert!(index.outboard(&a).is_err());
        let b = index.hash_of(&File::open(&path).unwrap()).unwrap();
        assert!(index.outboard(&b).unwrap().is_some());
    }

    #[test]
    fn a_restarted_node_recalls_the_hashes_of_unchanged_files_only() {
        let (tmp, index, share) = setup();
        let cache = tmp.path().join("cache");
        let (big, small) = (share.join("big"), share.join("small"));
        fs::write(&big, vec![7u8; 300_000]).unwrap();
        fs::write(&small, b"small").unwrap();
        let first_big = index.hash_of(&File::open(&big).unwrap()).unwrap();
        let first_small = index.hash_of(&File::open(&small).unwrap()).unwrap();
        assert_eq!(index.recalled_count(), 0);

        // The next run, same cache: both recalled, the same hashes.
        let again = ContentIndex::new(cache.clone());
        assert_eq!(
            again.hash_of(&File::open(&big).unwrap()).unwrap().hash,
            first_big.hash
        );
        assert_eq!(
            again.hash_of(&File::open(&small).unwrap()).unwrap().hash,
            first_small.hash
        );
        assert_eq!(again.recalled_count(), 2);
        assert!(again.outboard(&first_big).unwrap().is_some());

        // A file written since is a new version: hashed, not recalled. (A
        // new size, so the key differs whatever the clock's granularity.)
        fs::write(&small, b"small, and changed").unwrap();
        let third = ContentIndex::new(cache.clone());
        let changed = third.hash_of(&File::open(&small).unwrap()).unwrap();
        assert_eq!(changed.hash, ContentHash::of(b"small, and changed"));
        assert_eq!(third.recalled_count(), 0);

        // Without its outboard, or with a damaged record, a version is
        // hashed again, and right.
        fs::remove_file(cache.join(format!("{}.obao", first_big.hash))).unwrap();
        let fourth = ContentIndex::new(cache.clone());
        let rehashed = fourth.hash_of(&File::open(&big).unwrap()).unwrap();
        assert_eq!(rehashed.hash, first_big.hash);
        assert_eq!(fourth.recalled_count(), 0);
        assert!(fourth.outboard(&rehashed).unwrap().is_some());
        for entry in fs::read_dir(cache.join(VERSIONS)).unwrap() {
            fs::write(entry.unwrap().path(), b"blake3:not a hash").unwrap();
        }
        let fifth = ContentIndex::new(cache);
        let big_again = fifth.hash_of(&File::open(&big).unwrap()).unwrap();
        assert_eq!(big_again.hash, first_big.hash);
        assert_eq!(fifth.recalled_count(), 0);
    }

    #[test]
    fn many_threads_asking_for_one_file_hash_it_once() {
        let (_tmp, index, share) = setup();
        let path = share.join("f");
        fs::write(&path, vec![1u8; 3 << 20]).unwrap();
        let results = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    index.hash_of(&File::open(&path).unwrap()).unwrap();
                    results.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(results.load(Ordering::Relaxed), 8);
        assert_eq!(index.lock().by_key.len(), 1);
    }

    #[test]
    fn requests_for_unknown_hashes_cannot_keep_the_scanner_busy() {
        let (_tmp, index, share) = setup();
        for i in 0..50 {
            fs::write(share.join(format!("f{i}")), format!("file {i}")).unwrap();
        }
        let dir = SharedDir::open(&share).unwrap();
        index.start_scanner(dir).unwrap();
        index
            .holders(&ContentHash::of(b"file 0"), Duration::from_secs(20))
            .unwrap();
        let started = Instant::now();
        let mut asked = 0u64;
        while started.elapsed() < Duration::from_millis(2500) {
            asked += 1;
            let nobody = ContentHash::of(&asked.to_le_bytes());
            // Each request asks for a scan; most wait less than the gap.
            let _ = index.holders(&nobody, Duration::from_millis(20));
        }
        let scans = index.lock().scans_started;
        // The startup scan, then at most one a second.
        let most = 2 + started.elapsed().as_secs();
        assert!(asked > 50, "only {asked} requests were made");
        assert!(
            scans <= most,
            "{scans} scans for {asked} requests in {:?}",
            started.elapsed()
        );
        assert!(scans >= 2, "no rescan at all for {asked} requests");
    }

    /// The rescan gap counts the walk only: a scan that hashed new files
    /// says how long that took, and a scan of hashed files spent nothing
    /// on it (under load, a big file's slow hashing spaced the next scan
    /// past what a request for an unknown hash waits).
    #[test]
    fn a_scan_tells_the_time_it_spent_hashing_new_versions() {
        let (_tmp, index, share) = setup();
        fs::write(share.join("big"), vec![7u8; 3 << 20]).unwrap();
        fs::write(share.join("small"), b"small").unwrap();
        let dir = SharedDir::open(&share).unwrap();
        let started = Instant::now();
        let hashing = index.scan(&dir, true);
        assert!(hashing > Duration::ZERO);
        assert!(hashing <= started.elapsed());
        assert_eq!(index.scan(&dir, false), Duration::ZERO);
    }

    #[test]
    fn holders_are_found_after_the_scan_and_files_added_later_too() {
        let (_tmp, index, share) = setup();
        fs::write(share.join("a"), b"same").unwrap();
        fs::write(share.join("b"), b"same").unwrap();
        let dir = SharedDir::open(&share).unwrap();
        index.start_scanner(dir).unwrap();
        let mut names = index
            .holders(&ContentHash::of(b"same"), Duration::from_secs(20))
            .unwrap();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        fs::write(share.join("c"), b"new").unwrap();
        let names = index
            .holders(&ContentHash::of(b"new"), Duration::from_secs(20))
            .unwrap();
        assert_eq!(names, ["c"]);
        assert!(
            index
                .holders(&ContentHash::of(b"none"), Duration::from_secs(20))
                .unwrap()
                .is_empty()
        );
    }
}
