//! The client's end of a relayed circuit (docs/PROTOCOL.md, "Relayed
//! mode"): ask the relay for a circuit to a node that cannot be dialled,
//! wait until the relay has joined it, and hand back an ordinary
//! [`Connection`]. From then on the client speaks to the node exactly as it
//! would directly; the relay only carries bytes.

use std::net::SocketAddr;

use crate::exchange::{Connection, Timeouts};
use crate::{ProtoError, Request, Response};

/// Opens a circuit through the first of `relay` that accepts a connection
/// to the relayed node listed as `node`. The relay's refusal (busy, no such
/// node, relaying off) comes back as [`ProtoError::CircuitRefused`].
pub fn open(
    relay: &[SocketAddr],
    node: SocketAddr,
    timeouts: &Timeouts,
) -> Result<Connection, ProtoError> {
    let mut last = ProtoError::Closed;
    for &addr in relay {
        let mut conn = match Connection::open(addr, timeouts) {
            Ok(conn) => conn,
            Err(e) => {
                last = e;
                continue;
            }
        };
        return match conn.request(&Request::OpenCircuit(node))? {
            Response::CircuitReady => Ok(conn.relabel(node)),
            Response::Error(e) => Err(ProtoError::CircuitRefused(e)),
            other => Err(ProtoError::Malformed(format!(
                "relay {addr} answered a circuit request with {}",
                other.name()
            ))),
        };
    }
    Err(last)
}

/// Asks the relay (`relay`, already connected) to join this connection to
/// circuit `id` as the node's end; returns the stream once it is joined.
pub fn join(
    relay: SocketAddr,
    id: u64,
    timeouts: &Timeouts,
) -> Result<std::net::TcpStream, ProtoError> {
    let mut conn = Connection::open(relay, timeouts)?;
    match conn.request(&Request::JoinCircuit(id))? {
        Response::CircuitReady => Ok(conn.into_stream()),
        Response::Error(e) => Err(ProtoError::CircuitRefused(e)),
        other => Err(ProtoError::Malformed(format!(
            "relay {relay} answered a join with {}",
            other.name()
        ))),
    }
}
