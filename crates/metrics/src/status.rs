//! Small helpers for the programs' `/status` pages.

use std::time::Duration;

/// "3d 4h 5m 6s", leaving out leading zero units.
pub fn uptime(up: Duration) -> String {
    let secs = up.as_secs();
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_plainly() {
        let up = |s| uptime(Duration::from_secs(s));
        assert_eq!(up(5), "5s");
        assert_eq!(up(65), "1m 5s");
        assert_eq!(up(3 * 3600 + 5), "3h 0m 5s");
        assert_eq!(up(86_400 * 2 + 61), "2d 0h 1m 1s");
    }
}
