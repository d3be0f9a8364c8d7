//! The client's end of a relayed circuit (docs/PROTOCOL.md, "Relayed
//! mode"): ask the relay for a circuit to a node that cannot be dialled,
//! wait until the relay has joined it, and hand back an ordinary
//! [`Connection`]. From then on the client speaks to the node exactly as it
//! would directly; the relay only carries bytes.
//!
//! In a private network the request for the circuit is made under the relay
//! key, and the session with the relay ends with its `CircuitReady`: the
//! client then runs a new handshake with the node, under the peer key,
//! inside the circuit. The relay, which holds no peer key, carries only
//! that handshake and its ciphertext.

use std::net::{SocketAddr, TcpStream};

use crate::exchange::{Connection, Route, Timeouts};
use crate::secure::Dial;
use proto::{ProtoError, Request, Response};

/// Opens a circuit through the first of `relay` that accepts a connection
/// to the relayed node listed as `node`. The relay's refusal (busy, no such
/// node, relaying off) comes back as [`ProtoError::CircuitRefused`]. The
/// connection to the relay opens as `to_relay` says; the one through the
/// circuit to the node as `to_node` says.
pub fn open(
    relay: &[SocketAddr],
    node: SocketAddr,
    timeouts: &Timeouts,
    to_relay: &Dial,
    to_node: &Dial,
) -> Result<Connection, ProtoError> {
    let mut last = ProtoError::Closed;
    for &addr in relay {
        let mut conn = match Connection::dial(addr, timeouts, to_relay) {
            Ok(conn) => conn,
            Err(e) if e.is_handshake() => return Err(e),
            Err(e) => {
                last = e;
                continue;
            }
        };
        return match conn.request(&Request::OpenCircuit(node))? {
            Response::CircuitReady => conn.relabel(node).routed(Route::Relayed).secure(to_node),
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
/// circuit `id` as the node's end; returns the socket once it is joined.
/// In a private network the join is made under the relay key, and what
/// the socket carries next is the client's own handshake with the node.
pub fn join(
    relay: SocketAddr,
    id: u64,
    timeouts: &Timeouts,
    to_relay: &Dial,
) -> Result<TcpStream, ProtoError> {
    let mut conn = Connection::dial(relay, timeouts, to_relay)?;
    match conn.request(&Request::JoinCircuit(id))? {
        Response::CircuitReady => Ok(conn.into_stream().into_tcp()),
        Response::Error(e) => Err(ProtoError::CircuitRefused(e)),
        other => Err(ProtoError::Malformed(format!(
            "relay {relay} answered a join with {}",
            other.name()
        ))),
    }
}
