//! Hole punching (docs/PROTOCOL.md, "Hole punching"): the fields of the
//! messages with which the relay lets a client and a relayed node connect
//! to each other directly, so that it carries their bytes only when that
//! fails.
//!
//! The messages themselves are tags of [`crate::Request`] (`ControlPunch`,
//! `Punch`, `JoinPunch`, `ListPunchable`) and [`crate::Response`]
//! (`OpenPunch`, `Rendezvous`); this file holds what they carry.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The relay's word to each side of a punch: who the other side is, as the
/// relay sees it, and how the two connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendezvous {
    /// The punch, as the relay numbered it: the node names it in its
    /// greeting on the punched connection, and the client checks it.
    pub id: u64,
    /// The other side's address as the relay saw it: for the client, the
    /// node's `JoinPunch` connection; for the node, the client's `Punch`
    /// connection. Each side connects from the local port of that connection.
    pub peer: SocketAddr,
    pub way: PunchWay,
}

/// How the two sides of a punch meet. Sent as a big-endian u32 code, like
/// [`crate::NodeMode`]; an unknown code (a newer relay) decodes as `Other`,
/// and a side that does not know it treats the punch as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "u32", into = "u32")]
pub enum PunchWay {
    /// Code 0, connection reversal: the relay could connect to the client's
    /// address, so the node connects out to it and the client only accepts.
    Reverse,
    /// Code 1, simultaneous open: both sides listen on their port and
    /// connect from it to the other's at the same time.
    Simultaneous,
    /// Any other code, from a newer relay.
    Other(u32),
}

impl From<u32> for PunchWay {
    fn from(code: u32) -> PunchWay {
        match code {
            0 => PunchWay::Reverse,
            1 => PunchWay::Simultaneous,
            other => PunchWay::Other(other),
        }
    }
}

impl From<PunchWay> for u32 {
    fn from(way: PunchWay) -> u32 {
        match way {
            PunchWay::Reverse => 0,
            PunchWay::Simultaneous => 1,
            PunchWay::Other(code) => code,
        }
    }
}

impl PunchWay {
    pub fn as_str(self) -> &'static str {
        match self {
            PunchWay::Reverse => "reversal",
            PunchWay::Simultaneous => "simultaneous open",
            PunchWay::Other(_) => "an unknown way",
        }
    }
}
