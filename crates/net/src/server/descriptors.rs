//! The open-file limit. Each connection takes a descriptor (a node sending
//! a file takes two), and refused connections wait for the closer with
//! theirs. Many systems start processes with a soft limit of 1 024, below
//! what the default caps need; past it `accept` fails, and a connection
//! waits in the backlog instead of being served or answered `busy`. So the
//! server raises its soft limit to what its caps need, up to the hard limit
//! (as Go's runtime does for every program), and says so when that is not
//! enough.

use std::io;

/// Descriptors for everything but connections: the listener, stdio, the
/// node's connection to the relay, a file being listed.
const BASE: libc::rlim_t = 64;

/// Descriptors the caps may need at once.
pub(crate) fn needed(max_connections: usize, refused_queue: usize) -> libc::rlim_t {
    let per_connection = 2 * max_connections as libc::rlim_t;
    per_connection + refused_queue as libc::rlim_t + BASE
}

/// Raises the soft limit to `want` if it is lower, as far as the hard limit
/// allows; returns the limit now in effect.
pub(crate) fn raise_to(want: libc::rlim_t) -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit, which `limit` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= want {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: want.min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit, which `raised` is.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(raised.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_caps_need_more_than_a_common_soft_limit() {
        assert!(needed(1024, 1024) > 1024);
    }

    #[test]
    fn a_limit_already_high_enough_is_left_alone() {
        let now = raise_to(1).unwrap();
        assert!(now >= 1);
        assert_eq!(raise_to(1).unwrap(), now);
    }
}
