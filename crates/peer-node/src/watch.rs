//! Keeping the relay's catalog current: a watcher on DIR (inotify, through
//! the `notify` crate) wakes the catalog thread when files come and go; a
//! periodic rescan covers what a watcher misses (a full inotify queue,
//! network filesystems, a watch limit reached) and doubles as the check
//! that the relay is still in step (it may have restarted).
//!
//! The first change after a quiet spell is sent at once: a new file is in
//! the relay's index the moment the watcher sees it, before its hash (which
//! [`crate::backlog`] computes meanwhile, then wakes this thread again).
//! Changes that follow closely wait for a short quiet spell (a copy of many
//! files is a few updates, not hundreds). Each round builds the catalog
//! ([`crate::catalog`]) and sends what changed.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode, Watcher};

use crate::announce::Announcer;
use crate::backlog::Backlog;
use crate::catalog::{Catalog, CatalogForm, CatalogSync, INLINE_BUDGET, Racy, Synced};
use crate::hashes::{ContentIndex, FileKey};
use crate::share::SharedDir;
use proto::Registration;

/// Quiet time after a change before the catalog is rebuilt.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Longest a stream of changes can delay an update.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// A new name is sent at once, but rounds for new names that follow one
/// another (each a walk of DIR) are spaced by this many times the last
/// one's duration, so a copy of many files keeps the catalog thread
/// walking a fifth of the time at most.
const ROUND_DUTY: u32 = 4;

/// The last round: when it ended, how long it took, and whether a new name
/// started it.
#[derive(Debug, Clone, Copy)]
struct Round {
    ended: Instant,
    took: Duration,
    for_new_name: bool,
}

/// How long a round for a new name waits after `last`: nothing after a
/// round for anything else (a file removed, hashes ready: the name a user
/// just wrote is asked for at once, and waiting here lost that race to a
/// client started right after the write), within the duty cycle after a
/// round for a new name (a copy of many files).
fn new_name_wait(last: Option<Round>, now: Instant) -> Duration {
    match last {
        Some(last) if last.for_new_name => {
            let gap = (last.took * ROUND_DUTY).min(MAX_DELAY);
            (last.ended + gap).saturating_duration_since(now)
        }
        _ => Duration::ZERO,
    }
}

/// Wakes the catalog thread: DIR changed, or the node was (re)listed.
#[derive(Clone, Default)]
pub struct Wake {
    shared: Arc<(Mutex<Woken>, Condvar)>,
    /// Where the relay lists this node when it is relayed: the address of
    /// its control connection. None while it is direct.
    relayed_as: Arc<Mutex<Option<SocketAddr>>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Woken {
    changed: bool,
    registered: bool,
    /// Hashes of files named without one are ready.
    hashed: bool,
    /// A name appeared in DIR (a file created, or moved in): sent at once.
    new_name: bool,
}

impl Wake {
    fn lock(&self) -> MutexGuard<'_, Woken> {
        // Two booleans cannot be left half-updated.
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Something in DIR changed.
    pub fn dir_changed(&self) {
        self.lock().changed = true;
        self.shared.1.notify_all();
    }

    /// A name appeared in DIR: clients may ask for it now.
    pub fn new_name(&self) {
        let mut woken = self.lock();
        woken.changed = true;
        woken.new_name = true;
        self.shared.1.notify_all();
    }

    /// Files the catalog named without a hash have one now.
    pub fn hashed(&self) {
        self.lock().hashed = true;
        self.shared.1.notify_all();
    }

    /// Waits at most `wait` for [`Wake::hashed`]; true if it came (and
    /// clears it). For tests.
    pub fn wait_hashed(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut woken = self.lock();
        while !woken.hashed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            woken = self
                .shared
                .1
                .wait_timeout(woken, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        woken.hashed = false;
        true
    }

    /// The relay listed this node anew (first registration, or after an
    /// outage): it needs the whole catalog.
    pub fn registered(&self) {
        self.set_relayed_as(None);
        self.lock().registered = true;
        self.shared.1.notify_all();
    }

    /// The relay listed this node anew as a relayed node, under `listed_as`
    /// (its control connection's address): it needs the whole catalog,
    /// sent under that name (see [`catalog_registration`]).
    pub fn relayed(&self, listed_as: SocketAddr) {
        self.set_relayed_as(Some(listed_as));
        self.lock().registered = true;
        self.shared.1.notify_all();
    }

    fn set_relayed_as(&self, listed_as: Option<SocketAddr>) {
        *self.relayed_as.lock().unwrap_or_else(|p| p.into_inner()) = listed_as;
    }

    fn relayed_as(&self) -> Option<SocketAddr> {
        *self.relayed_as.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits at most `wait` for a wake; returns and clears what woke it.
    fn wait(&self, wait: Duration) -> Woken {
        let deadline = Instant::now() + wait;
        let mut woken = self.lock();
        while !woken.changed && !woken.registered && !woken.hashed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            woken = self
                .shared
                .1
                .wait_timeout(woken, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        std::mem::take(&mut *woken)
    }
}

/// Starts watching DIR and the thread that keeps the relay's catalog
/// current, sent in `form`; `rescan` is the period of the fallback rescan.
pub fn start(
    share: SharedDir,
    index: ContentIndex,
    announcer: Announcer,
    wake: Wake,
    rescan: Duration,
    form: CatalogForm,
) -> std::io::Result<()> {
    let watcher = {
        let wake = wake.clone();
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            // Opening and reading (our own hashing and serving) change nothing.
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => {}
            Ok(e)
                if matches!(
                    e.kind,
                    EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
                ) =>
            {
                wake.new_name()
            }
            _ => wake.dir_changed(),
        })
        .and_then(|mut w| w.watch(share.root(), RecursiveMode::Recursive).map(|()| w))
    };
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "cannot watch {} for changes ({e}); the catalog is rescanned every {}s instead",
                share.root().display(),
                rescan.as_secs_f64()
            );
            None
        }
    };
    let backlog = Backlog::start(share.clone(), index.clone(), wake.clone())?;
    // Crucial: a node whose catalog thread died stays listed while the
    // relay's index of it goes stale.
    plumbing::crucial::spawn("catalog", move || {
        let _watcher = watcher;
        run(&share, &index, &backlog, &announcer, &wake, rescan, form);
    })?;
    Ok(())
}

fn run(
    share: &SharedDir,
    index: &ContentIndex,
    backlog: &Backlog,
    announcer: &Announcer,
    wake: &Wake,
    rescan: Duration,
    form: CatalogForm,
) {
    let relay = announcer.relay_label();
    let mut sync = CatalogSync::new(form);
    let mut listed = false;
    // The relay has no index (an older relay): stay quiet until listed anew.
    let mut no_index = false;
    let mut last_report: Option<(u32, u32, usize)> = None;
    let mut warned_truncated = false;
    let mut last_round: Option<Round> = None;
    loop {
        let woken = wake.wait(rescan);
        if woken.new_name {
            // At once, within the duty cycle of rounds for new names.
            std::thread::sleep(new_name_wait(last_round, Instant::now()));
        } else if woken.changed && last_round.is_some_and(|r| r.ended.elapsed() < DEBOUNCE) {
            // Changes right after a round: wait for them to settle (a new
            // name among them ends the wait).
            let started = Instant::now();
            while wake.wait_changed(DEBOUNCE) && started.elapsed() < MAX_DELAY {}
        }
        if woken.registered {
            listed = true;
            no_index = false;
            sync.restart();
        }
        if !listed || no_index {
            continue;
        }
        let round = Instant::now();
        // This round's walk sees every name that appeared until now.
        wake.lock().new_name = false;
        // A name just created is a file being written: it goes without a
        // hash at once; a later round hashes it once written.
        let budget = if woken.new_name { 0 } else { INLINE_BUDGET };
        let racy = if sync.takes_unhashed() {
            Racy::ToBacklog
        } else {
            Racy::Wait
        };
        let gave_up = |name: &str, key: &FileKey| backlog.gave_up(name, key);
        let catalog = Catalog::build(share, index, gave_up, budget, racy);
        backlog.want(catalog.unhashed());
        let unhashed = catalog.unhashed().count();
        crate::metrics::sharing(
            catalog.files.len(),
            catalog.files.values().map(|(size, _)| size).sum(),
        );
        if catalog.truncated && !warned_truncated {
            warned_truncated = true;
            tracing::warn!(
                "DIR holds more than {} files: the relay's index gets the first {} by name",
                proto::MAX_LIST_FILES,
                catalog.files.len()
            );
        }
        let registration = catalog_registration(&announcer.registration, wake.relayed_as());
        match sync.sync(&registration, &catalog, |r| announcer.call_relay(r)) {
            Synced::Done { files, refused } => {
                if last_report != Some((files, refused, unhashed)) {
                    if unhashed == 0 {
                        tracing::info!("catalog at relay {relay}: {files} files indexed");
                    } else if sync.takes_unhashed() {
                        tracing::info!(
                            "relay {relay} has the names of {files} files, {unhashed} of them \
                             still being hashed here"
                        );
                    } else {
                        tracing::info!(
                            "relay {relay} indexes {files} files; {unhashed} more once hashed"
                        );
                    }
                    if refused > 0 {
                        tracing::warn!(
                            "relay {relay} indexed {files} of {} files: its limits left {refused} \
                             out (still served here; clients find them with --no-index)",
                            catalog.files.len()
                        );
                    }
                }
                last_report = Some((files, refused, unhashed));
            }
            Synced::NotListed => {
                // Expired there, or the relay restarted: the next heartbeat
                // lists us again, and the next round sends everything.
                tracing::debug!("relay {relay} does not list this node now; catalog waits");
            }
            Synced::NoIndex(why) => {
                tracing::info!(
                    "relay {relay} keeps no index ({why}): an older relay; clients ask nodes in turn"
                );
                no_index = true;
            }
            Synced::Failed(why) => {
                tracing::warn!("could not send the catalog to relay {relay}: {why}; retrying");
                last_report = None;
            }
        }
        last_round = Some(Round {
            ended: Instant::now(),
            took: round.elapsed(),
            for_new_name: woken.new_name,
        });
    }
}

/// How catalog updates name the node. A direct node names itself as it
/// registers. A relayed node is listed under its control connection's
/// address (docs/PROTOCOL.md, "Relayed mode"), not under the port it
/// listens on, and its catalog updates travel in ordinary short exchanges
/// from the same host, so the relay sees the same IP: naming that address's
/// port (and no advertised host) makes the relay find the relayed entry
/// exactly as it finds a direct node's.
pub fn catalog_registration(
    registration: &Registration,
    relayed_as: Option<SocketAddr>,
) -> Registration {
    match relayed_as {
        None => registration.clone(),
        Some(listed) => Registration {
            port: listed.port(),
            advertised_ip: None,
            token: registration.token.clone(),
        },
    }
}

impl Wake {
    /// Waits at most `wait` for another change; true if one came.
    fn wait_changed(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut woken = self.lock();
        while !woken.changed {
            if woken.new_name {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            woken = self
                .shared
                .1
                .wait_timeout(woken, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        woken.changed = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_name_waits_only_after_a_round_for_a_new_name() {
        let now = Instant::now();
        let round = |for_new_name| Round {
            ended: now,
            took: Duration::from_millis(50),
            for_new_name,
        };
        assert_eq!(new_name_wait(None, now), Duration::ZERO);
        // A file removed (or hashes ready) just before: the new name goes
        // at once, as a client asking for it right after it was written
        // expects.
        assert_eq!(new_name_wait(Some(round(false)), now), Duration::ZERO);
        // A copy of many files: rounds for new names keep the duty cycle.
        assert_eq!(
            new_name_wait(Some(round(true)), now),
            Duration::from_millis(200)
        );
        let later = now + Duration::from_millis(150);
        assert_eq!(
            new_name_wait(Some(round(true)), later),
            Duration::from_millis(50)
        );
    }
}
