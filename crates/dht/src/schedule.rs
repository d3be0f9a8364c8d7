//! When each announce goes out: the announcer's plan as plain data, tested
//! without sockets or threads ([`crate::announcer`] runs it).
//!
//! - A new entry is due at once; the token bucket decides when it goes, so a
//!   node's first announces leave within a second of its start, and a big
//!   directory's go out at the announce rate, not all in one burst.
//! - After an announce, the entry is due again after a random 80 % to 100 %
//!   of the re-announce period (25 minutes by default). Storing nodes drop
//!   an announce after 32 minutes (Transmission's DHT) or 45 (libtorrent),
//!   so one round can run late by the rate limit and still arrive in time,
//!   and the random part keeps entries announced together (one start, one
//!   copy of many files) from staying in lockstep.
//! - A failed announce (no DHT node answered) is retried after 30 s,
//!   doubling up to 10 minutes, with the same random spread.
//! - The token bucket caps announces per second for the whole node
//!   (10 by default, bursts of 20): what 10 000 files cost is in
//!   docs/BENCHMARKS.md, "The DHT".

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::id::DhtId;

/// One thing to announce: a DHT id, and the TCP port its holder serves on.
pub type Entry = (DhtId, u16);

/// The plan's settings.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleConfig {
    /// An announce is repeated after at most this long.
    pub reannounce: Duration,
    /// ... and at least `(1 - spread)` of it.
    pub spread: f64,
    /// Announces per second, at most (the token bucket's rate).
    pub rate: f64,
    /// Announces that may go at once after a quiet spell (its depth).
    pub burst: f64,
    /// The first retry after a failed announce; each next one waits twice
    /// as long, up to `retry_max`.
    pub retry: Duration,
    pub retry_max: Duration,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            reannounce: Duration::from_secs(25 * 60),
            spread: 0.2,
            rate: 10.0,
            burst: 20.0,
            retry: Duration::from_secs(30),
            retry_max: Duration::from_secs(10 * 60),
        }
    }
}

/// What the announcer should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Announce this entry now (it is in flight until [`Schedule::done`]).
    Go(Entry),
    /// Nothing may go before this instant.
    Wait(Instant),
    /// Nothing is waiting at all.
    Idle,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Waiting {
        due: Instant,
        failures: u32,
    },
    /// Being announced; `wanted` is false once removed meanwhile.
    InFlight {
        failures: u32,
        wanted: bool,
    },
}

/// The plan: every entry with when it is due, and the token bucket.
#[derive(Debug)]
pub struct Schedule {
    config: ScheduleConfig,
    slots: HashMap<Entry, Slot>,
    /// The waiting entries, by due time.
    due: BTreeSet<(Instant, Entry)>,
    tokens: f64,
    refilled: Instant,
    /// The random part of each delay: a per-process SipHash key, and a
    /// counter so no two draws repeat.
    random: RandomState,
    draws: u64,
}

impl Schedule {
    pub fn new(config: ScheduleConfig, now: Instant) -> Schedule {
        Schedule {
            config,
            slots: HashMap::new(),
            due: BTreeSet::new(),
            tokens: config.burst.max(1.0),
            refilled: now,
            random: RandomState::new(),
            draws: 0,
        }
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// Makes `wanted` the set of entries: new ones are due now, ones no
    /// longer wanted are dropped (one in flight finishes, and is not
    /// repeated), the others keep their time.
    pub fn replace(&mut self, wanted: impl IntoIterator<Item = Entry>, now: Instant) {
        let wanted: HashSet<Entry> = wanted.into_iter().collect();
        self.slots.retain(|entry, slot| match slot {
            Slot::Waiting { due, .. } => {
                let keep = wanted.contains(entry);
                if !keep {
                    self.due.remove(&(*due, *entry));
                }
                keep
            }
            Slot::InFlight { wanted: w, .. } => {
                *w = wanted.contains(entry);
                true
            }
        });
        for entry in wanted {
            self.slots.entry(entry).or_insert_with(|| {
                self.due.insert((now, entry));
                Slot::Waiting {
                    due: now,
                    failures: 0,
                }
            });
        }
    }

    /// The next announce to make, if one is due and the bucket allows it.
    pub fn next(&mut self, now: Instant) -> Next {
        self.refill(now);
        let Some(&(due, entry)) = self.due.first() else {
            return Next::Idle;
        };
        if due > now {
            return Next::Wait(due);
        }
        if self.tokens < 1.0 {
            let missing = (1.0 - self.tokens) / self.config.rate;
            return Next::Wait(now + Duration::from_secs_f64(missing));
        }
        self.tokens -= 1.0;
        self.due.remove(&(due, entry));
        let failures = match self.slots.get(&entry) {
            Some(Slot::Waiting { failures, .. }) => *failures,
            _ => 0,
        };
        self.slots.insert(
            entry,
            Slot::InFlight {
                failures,
                wanted: true,
            },
        );
        Next::Go(entry)
    }

    /// An announce ended: due again after the re-announce period if it
    /// worked, after the retry delay if not.
    pub fn done(&mut self, entry: Entry, worked: bool, now: Instant) {
        let Some(Slot::InFlight { failures, wanted }) = self.slots.get(&entry).copied() else {
            return;
        };
        if !wanted {
            self.slots.remove(&entry);
            return;
        }
        let (delay, failures) = if worked {
            let spread = self.config.spread.clamp(0.0, 1.0);
            let part = 1.0 - spread + spread * self.draw();
            (self.config.reannounce.mul_f64(part), 0)
        } else {
            let doubled = self
                .config
                .retry
                .saturating_mul(1u32 << failures.min(20))
                .min(self.config.retry_max);
            (doubled.mul_f64(0.8 + 0.2 * self.draw()), failures + 1)
        };
        let due = now + delay;
        self.due.insert((due, entry));
        self.slots.insert(entry, Slot::Waiting { due, failures });
    }

    /// How many entries there are, in flight included.
    pub fn len(&self) -> usize {
        self.slots
            .values()
            .filter(|s| {
                matches!(
                    s,
                    Slot::Waiting { .. } | Slot::InFlight { wanted: true, .. }
                )
            })
            .count()
    }

    /// Whether `entry` is in the set (in flight included, unless removed).
    pub fn contains(&self, entry: &Entry) -> bool {
        matches!(
            self.slots.get(entry),
            Some(Slot::Waiting { .. } | Slot::InFlight { wanted: true, .. })
        )
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Announces per second that keeping every entry fresh takes, on
    /// average; above the bucket's rate, rounds run late.
    pub fn rate_needed(&self) -> f64 {
        let mean = self.config.reannounce.as_secs_f64() * (1.0 - self.config.spread / 2.0);
        self.len() as f64 / mean.max(1.0)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.config.rate).min(self.config.burst.max(1.0));
        self.refilled = self.refilled.max(now);
    }

    /// A uniform number in [0, 1).
    fn draw(&mut self) -> f64 {
        self.draws += 1;
        let bits = self.random.hash_one(self.draws);
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> DhtId {
        DhtId([n; 20])
    }

    fn config() -> ScheduleConfig {
        ScheduleConfig {
            reannounce: Duration::from_secs(1000),
            spread: 0.2,
            rate: 2.0,
            burst: 3.0,
            retry: Duration::from_secs(10),
            retry_max: Duration::from_secs(35),
        }
    }

    /// Takes every announce allowed at `now`.
    fn drain(s: &mut Schedule, now: Instant) -> Vec<Entry> {
        let mut out = Vec::new();
        while let Next::Go(e) = s.next(now) {
            out.push(e);
        }
        out
    }

    #[test]
    fn new_entries_go_at_once_up_to_the_burst_then_at_the_rate() {
        let t0 = Instant::now();
        let mut s = Schedule::new(config(), t0);
        assert_eq!(s.next(t0), Next::Idle);
        s.replace((0..10).map(|n| (id(n), 4000)), t0);
        assert_eq!(s.len(), 10);
        assert_eq!(drain(&mut s, t0).len(), 3, "the burst");
        // One token per half second at rate 2.
        match s.next(t0) {
            Next::Wait(at) => assert_eq!(at - t0, Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
        let mut sent = 3;
        let mut now = t0;
        while sent < 10 {
            now += Duration::from_millis(500);
            sent += drain(&mut s, now).len();
        }
        // 7 more at 2 per second: 3.5 s, not a burst.
        assert_eq!(now - t0, Duration::from_millis(3500));
        assert_eq!(s.next(now), Next::Idle, "all in flight");
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn an_announce_is_repeated_within_the_spread_of_the_period() {
        let t0 = Instant::now();
        let mut s = Schedule::new(config(), t0);
        s.replace((0..3).map(|n| (id(n), 1)), t0);
        for e in drain(&mut s, t0) {
            s.done(e, true, t0);
        }
        let mut dues = Vec::new();
        let mut now = t0;
        loop {
            match s.next(now) {
                Next::Go(e) => {
                    dues.push(now - t0);
                    s.done(e, true, now);
                }
                Next::Wait(at) if dues.len() < 3 => now = at,
                _ => break,
            }
        }
        assert_eq!(dues.len(), 3);
        for due in &dues {
            assert!(
                *due >= Duration::from_secs(800) && *due <= Duration::from_secs(1000),
                "{dues:?}"
            );
        }
        // Randomly spread: not all three at one instant.
        assert!(dues.iter().any(|d| *d != dues[0]), "{dues:?}");
    }

    #[test]
    fn failures_are_retried_with_a_growing_capped_delay() {
        let t0 = Instant::now();
        let mut s = Schedule::new(config(), t0);
        s.replace([(id(1), 1)], t0);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..4 {
            let Next::Go(e) = s.next(now) else {
                panic!("nothing due")
            };
            s.done(e, false, now);
            let Next::Wait(at) = s.next(now) else {
                panic!("not rescheduled")
            };
            delays.push((at - now).as_secs_f64());
            now = at;
        }
        // 10 s, 20 s, then the 35 s cap, each less up to 20 %.
        for (got, base) in delays.iter().zip([10.0, 20.0, 35.0, 35.0]) {
            assert!(*got >= base * 0.8 - 1e-9 && *got <= base, "{delays:?}");
        }
        // A success resets the backoff.
        let Next::Go(e) = s.next(now) else {
            panic!("nothing due")
        };
        s.done(e, true, now);
        let Next::Wait(at) = s.next(now) else {
            panic!("not rescheduled")
        };
        assert!(at - now >= Duration::from_secs(800));
    }

    #[test]
    fn replacing_drops_what_is_gone_and_keeps_the_times_of_what_stays() {
        let t0 = Instant::now();
        let mut s = Schedule::new(config(), t0);
        s.replace([(id(1), 1), (id(2), 1)], t0);
        let sent = drain(&mut s, t0);
        assert_eq!(sent.len(), 2);
        s.done(sent[0], true, t0);
        // id 2 is still in flight when the set changes: id 1 stays, id 2
        // goes, id 3 is new.
        let t1 = t0 + Duration::from_secs(5);
        s.replace([(id(1), 1), (id(3), 1)], t1);
        assert_eq!(s.len(), 2);
        assert_eq!(s.next(t1), Next::Go((id(3), 1)), "the new one, at once");
        s.done(sent[1], true, t1);
        assert_eq!(s.len(), 2, "id 2 finished and is not repeated");
        s.done((id(3), 1), true, t1);
        // Only id 1 and id 3 come back, each once, in about a period.
        let mut later = Vec::new();
        let end = t1 + Duration::from_secs(1100);
        let mut now = t1;
        while now < end {
            match s.next(now) {
                Next::Go(e) => {
                    later.push(e);
                    s.done(e, true, now);
                }
                Next::Wait(at) => now = at.min(end),
                Next::Idle => break,
            }
        }
        later.sort();
        assert_eq!(later, [(id(1), 1), (id(3), 1)]);

        // A port change is a new entry.
        s.replace([(id(1), 2)], end);
        assert_eq!(s.len(), 1);
        assert_eq!(s.next(end), Next::Go((id(1), 2)));
        // And the empty set stops everything.
        s.replace([], end);
        assert!(s.is_empty());
        s.done((id(1), 2), true, end);
        assert_eq!(s.next(end + Duration::from_secs(5000)), Next::Idle);
    }

    #[test]
    fn ten_thousand_files_fit_the_default_rate() {
        let t0 = Instant::now();
        let mut s = Schedule::new(ScheduleConfig::default(), t0);
        s.replace(
            (0..10_000u32).map(|n| {
                let mut b = [0u8; 20];
                b[..4].copy_from_slice(&n.to_le_bytes());
                (DhtId(b), 4000)
            }),
            t0,
        );
        // 25 min × 0.9 on average: 7.4 announces per second, under 10.
        let needed = s.rate_needed();
        assert!((7.0..8.0).contains(&needed), "{needed}");
        assert!(needed < s.config().rate);
        // The first round takes 10 000 / 10 per second, less the burst.
        let mut now = t0;
        let mut sent = 0;
        while sent < 10_000 {
            match s.next(now) {
                Next::Go(_) => sent += 1,
                Next::Wait(at) => now = at,
                Next::Idle => unreachable!(),
            }
        }
        let took = (now - t0).as_secs_f64();
        assert!((997.0..=999.0).contains(&took), "{took}");
    }
}
