//! Connection caps: a total cap, so a flood cannot exhaust threads and file
//! descriptors, and a per-source-IP cap, so one host cannot take every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections; hands out a [`Permit`] per admitted one.
pub(crate) struct Admission {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held for as long as a connection is served; gives its slot back on drop.
pub(crate) struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            max_per_ip,
            state: Mutex::new(Counts::default()),
        })
    }

    /// Admits a connection from `ip`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, String> {
        let mut counts = self.lock();
        if counts.total >= self.max_total {
            return Err(format!(
                "server busy: {} connections open (limit {})",
                counts.total, self.max_total
            ));
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(format!(
                "server busy: too many connections from {ip} (limit {} per address)",
                self.max_per_ip
            ));
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(Permit {
            admission: Arc::clone(self),
            ip,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update
        // is a single increment or decrement.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_ip_and_frees_on_drop() {
        let a = Admission::new(3, 2);
        let ip1: IpAddr = "127.0.0.1".parse().unwrap();
        let ip2: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = a.admit(ip1).unwrap();
        let _p2 = a.admit(ip1).unwrap();
        assert!(a.admit(ip1).err().unwrap().contains("from 127.0.0.1"));
        let _p3 = a.admit(ip2).unwrap();
        assert!(a.admit(ip2).err().unwrap().contains("3 connections open"));
        drop(p1);
        assert!(a.admit(ip2).is_ok());
    }
}
