//! The files the catalog names without a hash: hashed here, one at a time
//! on a thread of their own, while the catalog thread goes on sending new
//! names the moment they appear. When the backlog is done (or a second has
//! passed), the catalog thread is woken to send the hashes.
//!
//! A version that cannot be hashed (unreadable, or the cache cannot take
//! its outboard) is remembered as given up, so the catalog leaves it out
//! instead of naming it without a hash for ever; a file still being
//! written is not given up: the next change brings it back.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::hashes::{ContentIndex, FileKey};
use crate::share::SharedDir;
use crate::watch::Wake;

/// Longest a long backlog keeps the hashes already done from the relay.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Most versions remembered as given up; past it the oldest is forgotten
/// (and tried again, at worst).
const MAX_GIVEN_UP: usize = 10_000;

/// The backlog, a cheap-to-clone handle.
#[derive(Clone, Default)]
pub struct Backlog {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    /// Names to hash, in name order.
    queue: BTreeSet<String>,
    /// Versions that could not be hashed, by name.
    given_up: HashMap<String, FileKey>,
}

impl Backlog {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A set and a map, each changed in one call: never half-updated.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the thread that hashes the backlog and wakes `wake` when
    /// hashes are ready to be sent.
    pub fn start(share: SharedDir, index: ContentIndex, wake: Wake) -> std::io::Result<Backlog> {
        let backlog = Backlog::default();
        let worker = backlog.clone();
        // Crucial: without it, new files would stay without a hash in the
        // relay's index, found only by name.
        plumbing::crucial::spawn("hash-new", move || {
            crate::hashes::lower_priority();
            worker.run(&share, &index, &wake);
        })?;
        Ok(backlog)
    }

    /// Asks for `names` to be hashed (those not queued already).
    pub fn want<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut state = self.lock();
        let before = state.queue.len();
        for name in names {
            if !state.queue.contains(name) {
                state.queue.insert(name.to_string());
            }
        }
        if state.queue.len() > before {
            self.shared.work.notify_all();
        }
    }

    /// Whether version `key` of `name` could not be hashed.
    pub fn gave_up(&self, name: &str, key: &FileKey) -> bool {
        self.lock().given_up.get(name) == Some(key)
    }

    fn run(&self, share: &SharedDir, index: &ContentIndex, wake: &Wake) {
        let mut last_report = Instant::now();
        let mut done_since_report = 0usize;
        loop {
            let name = {
                let mut state = self.lock();
                loop {
                    if let Some(name) = state.queue.pop_first() {
                        break name;
                    }
                    if done_since_report > 0 {
                        // Drained: the hashes go to the relay now.
                        drop(state);
                        wake.hashed();
                        done_since_report = 0;
                        last_report = Instant::now();
                        state = self.lock();
                        continue;
                    }
                    state = self
                        .shared
                        .work
                        .wait(state)
                        .unwrap_or_else(|p| p.into_inner());
                }
            };
            // A file still being written is not worth a round: its next
            // change brings it back, hashed or not, so a file that grows
            // all the time is not hashed over and over.
            if self.hash(share, index, &name) {
                done_since_report += 1;
            }
            if last_report.elapsed() >= REPORT_EVERY {
                wake.hashed();
                done_since_report = 0;
                last_report = Instant::now();
            }
        }
    }

    /// Hashes the current version of `name`, and remembers it; true when
    /// the catalog has news (a hash, or a file given up).
    fn hash(&self, share: &SharedDir, index: &ContentIndex, name: &str) -> bool {
        let Ok(shared) = share.open_file(name) else {
            return true; // gone, or no longer servable: the next catalog says so
        };
        let Ok(before) = FileKey::now(&shared.file) else {
            return true;
        };
        match index.hash_of(&shared.file) {
            Ok(hashed) => {
                index.remember(name, hashed);
                true
            }
            Err(e) => {
                // Changed meanwhile: being written; its next change (or
                // the rescan) brings it back.
                if FileKey::now(&shared.file).ok() != Some(before) {
                    tracing::debug!("{} changed while it was hashed", name.escape_debug());
                    return false;
                }
                tracing::warn!(
                    "cannot hash {}: {}; left out of the catalog until it changes",
                    name.escape_debug(),
                    proto::error::io_reason(&e)
                );
                let mut state = self.lock();
                if state.given_up.len() >= MAX_GIVEN_UP {
                    state.given_up.clear();
                }
                state.given_up.insert(name.to_string(), before);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn new_files_are_hashed_and_the_catalog_woken() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share");
        let cache = tmp.path().join("cache");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(&cache).unwrap();
        fs::write(dir.join("a.txt"), b"alpha").unwrap();
        fs::write(dir.join("b.bin"), vec![7u8; 300_000]).unwrap();
        let share = SharedDir::open(&dir).unwrap();
        let index = ContentIndex::new(cache);
        let wake = Wake::default();
        let backlog = Backlog::start(share.clone(), index.clone(), wake.clone()).unwrap();
        assert_eq!(index.known(&dir.join("a.txt")), None);
        backlog.want(["a.txt", "b.bin", "gone"]);
        assert!(wake.wait_hashed(Duration::from_secs(20)), "never woken");
        let deadline = Instant::now() + Duration::from_secs(20);
        while index.known(&dir.join("b.bin")).is_none() {
            assert!(Instant::now() < deadline, "b.bin never hashed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            index.known(&dir.join("a.txt")),
            Some(proto::ContentHash::of(b"alpha"))
        );
        let key = FileKey::of(&fs::metadata(dir.join("a.txt")).unwrap());
        assert!(!backlog.gave_up("a.txt", &key));
    }
}
