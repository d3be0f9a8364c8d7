//! What a program tells its user about its announces, as plain data: from
//! the announcer's successive [`Report`]s, once when every entry has gone
//! out, and while announces fail, at most once per interval. The node (its
//! shared files) and the relay (itself) word the lines their own way.

use std::time::{Duration, Instant};

use crate::announcer::{Announcer, Report};

/// What to say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tell {
    /// Every one of this many entries is announced (said once per set).
    Complete(usize),
    /// Announces fail: the report says how many and why.
    Failing(Report),
}

/// The memory of what was said.
#[derive(Debug, Clone)]
pub struct Telling {
    every: Duration,
    /// The set size last said complete (0: not said).
    complete: usize,
    failures_told: u64,
    warned: Option<Instant>,
}

impl Telling {
    /// Failures are told at most once per `every`.
    pub fn new(every: Duration) -> Telling {
        Telling {
            every,
            complete: 0,
            failures_told: 0,
            warned: None,
        }
    }

    /// What the announcer's report now calls for, if anything; Err with
    /// why when the announcer stopped (mainline's thread is gone: nothing
    /// will be announced any more, and the program should not run on).
    pub fn look(&mut self, announcer: &Announcer) -> Result<Option<Tell>, String> {
        let report = announcer.report();
        if let Some(why) = report.stopped {
            return Err(why);
        }
        Ok(self.next(&report, Instant::now()))
    }

    /// What `report`, taken at `now`, calls for, if anything.
    pub fn next(&mut self, report: &Report, now: Instant) -> Option<Tell> {
        if report.entries > 0 && report.fresh == report.entries {
            if self.complete == report.entries {
                return None;
            }
            self.complete = report.entries;
            return Some(Tell::Complete(report.entries));
        }
        self.complete = 0;
        let due = self
            .warned
            .is_none_or(|at| now.saturating_duration_since(at) >= self.every);
        if report.failed > self.failures_told && due {
            self.failures_told = report.failed;
            self.warned = Some(now);
            return Some(Tell::Failing(report.clone()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(entries: usize, fresh: usize, failed: u64) -> Report {
        Report {
            entries,
            fresh,
            failed,
            ..Report::default()
        }
    }

    #[test]
    fn completion_is_told_once_per_set_and_failures_once_per_interval() {
        let t0 = Instant::now();
        let mut telling = Telling::new(Duration::from_secs(60));
        assert_eq!(telling.next(&report(0, 0, 0), t0), None);
        assert!(matches!(
            telling.next(&report(2, 0, 1), t0),
            Some(Tell::Failing(_))
        ));
        // More failures within the interval: quiet.
        assert_eq!(
            telling.next(&report(2, 0, 5), t0 + Duration::from_secs(10)),
            None
        );
        assert!(matches!(
            telling.next(&report(2, 1, 6), t0 + Duration::from_secs(61)),
            Some(Tell::Failing(r)) if r.failed == 6
        ));
        assert_eq!(telling.next(&report(2, 2, 6), t0), Some(Tell::Complete(2)));
        assert_eq!(telling.next(&report(2, 2, 6), t0), None);
        // A new entry, then the larger set complete: told again.
        assert_eq!(telling.next(&report(3, 2, 6), t0), None);
        assert_eq!(telling.next(&report(3, 3, 6), t0), Some(Tell::Complete(3)));
    }
}
