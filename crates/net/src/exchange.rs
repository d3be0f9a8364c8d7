//! The client side of one exchange: connect with a timeout, send one request,
//! read one response (and, for a file, its raw body), then close gracefully.
//! The peer client uses it to talk to the relay and to nodes; the node uses
//! it to register with the relay.
//!
//! In a private network the connection opens with a handshake
//! ([`Connection::dial`] with a secure [`Dial`]); everything after it is the
//! same, over an encrypted [`Stream`].

use std::io::{self, Read, Take};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::secure::{Dial, NodeKey, handshake};
use crate::stream::{Socket, Stream};
use proto::error::printable;
use proto::{ErrorKind, ErrorReply, ProtoError, Request, Response, frame};

/// Timeouts for every socket a client opens.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long to wait for a connection to be accepted.
    pub connect: Duration,
    /// How long any single read or write may wait for the peer.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            io: Duration::from_secs(30),
        }
    }
}

/// One open connection carrying one exchange.
pub struct Connection {
    stream: Stream,
    peer: SocketAddr,
    /// A refusal the server sent in place of its handshake (busy): the
    /// answer to the request, as a plain server's refusal would be.
    refused: Option<ErrorReply>,
    route: Route,
}

/// How a connection reaches its peer. The exchange over it is the same
/// whichever it is; only a status line tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Straight to the peer's listed address.
    Direct,
    /// Straight to the peer, through its NAT, set up by the relay
    /// ([`crate::punch`]: a reversal or a simultaneous open).
    HolePunched,
    /// Through a circuit at the relay ([`crate::circuit`]).
    Relayed,
}

impl Connection {
    /// Connects to `addr` within the connect timeout; every later read and
    /// write is bounded by the I/O timeout. In the clear.
    pub fn open(addr: SocketAddr, timeouts: &Timeouts) -> Result<Connection, ProtoError> {
        let stream = TcpStream::connect_timeout(&addr, timeouts.connect)?;
        Connection::over(stream, addr, timeouts)
    }

    /// A connection over a socket connected some other way (from a bound
    /// port, or punched through a NAT), named after `peer`, with the same
    /// timeouts as [`Connection::open`]. In the clear.
    pub fn over(
        stream: TcpStream,
        peer: SocketAddr,
        timeouts: &Timeouts,
    ) -> Result<Connection, ProtoError> {
        stream.set_read_timeout(Some(timeouts.io))?;
        stream.set_write_timeout(Some(timeouts.io))?;
        // Requests are single small frames: waiting for Nagle only adds latency.
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: Stream::plain(stream),
            peer,
            refused: None,
            route: Route::Direct,
        })
    }

    /// Like [`Connection::open`], then the handshake `how` asks for, if any.
    /// A refusal for want of the right secret (or a node holding another
    /// key than `how` expects) is an error; a busy server's refusal comes
    /// back from [`Connection::request`], as in the clear.
    pub fn dial(
        addr: SocketAddr,
        timeouts: &Timeouts,
        how: &Dial,
    ) -> Result<Connection, ProtoError> {
        Connection::open(addr, timeouts)?.secure(how)
    }

    /// Runs the handshake `how` asks for over this connection's socket,
    /// leaving any earlier session behind: a circuit's end-to-end handshake
    /// runs inside the connection that set it up with the relay.
    pub fn secure(self, how: &Dial) -> Result<Connection, ProtoError> {
        let Dial::Secure {
            private,
            kind,
            expect,
        } = how
        else {
            return Ok(self);
        };
        let peer = self.peer;
        let Some(psk) = private.keys.get(*kind) else {
            return Err(ProtoError::HandshakeFailed(format!(
                "this program holds no {}",
                kind.as_str()
            )));
        };
        let mut socket = Socket::new(self.stream.into_tcp());
        match handshake::initiate(&mut socket, *kind, psk, &private.identity, *expect) {
            Ok(session) => Ok(Connection {
                stream: Stream::Secure(Box::new(session.over(socket))),
                peer,
                refused: None,
                route: self.route,
            }),
            // Busy, an unknown version...: not a matter of keys, so the
            // answer to the request, as from a plain server.
            Err(ProtoError::HandshakeRefused(reply)) if reply.kind != ErrorKind::Unauthorized => {
                Ok(Connection {
                    stream: Stream::Plain(socket),
                    peer,
                    refused: Some(reply),
                    route: self.route,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The same connection named after `peer`: a circuit through the relay
    /// is an exchange with the node at its far end (see [`crate::circuit`]).
    pub(crate) fn relabel(self, peer: SocketAddr) -> Connection {
        Connection { peer, ..self }
    }

    /// The same connection, noted as reaching its peer by `route`.
    pub(crate) fn routed(self, route: Route) -> Connection {
        Connection { route, ..self }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// How this connection reaches its peer.
    pub fn route(&self) -> Route {
        self.route
    }

    /// The socket underneath, for waiting on it beside another
    /// (see [`crate::punch`]).
    pub(crate) fn tcp(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Sends a request without waiting for the answer; [`Connection::receive`]
    /// reads it. [`Connection::request`] does both.
    pub(crate) fn send(&mut self, request: &Request) -> Result<(), ProtoError> {
        if self.refused.is_some() {
            // The refusal in place of the handshake is the answer.
            return Ok(());
        }
        frame::write(&mut self.stream, request)
    }

    /// Reads the answer to a request sent with [`Connection::send`].
    pub(crate) fn receive(&mut self) -> Result<Response, ProtoError> {
        if let Some(refusal) = self.refused.take() {
            return Ok(Response::Error(refusal));
        }
        match frame::read::<Response>(&mut self.stream)? {
            Response::Error(mut e) => {
                e.message = printable(&e.message);
                Ok(Response::Error(e))
            }
            response => Ok(response),
        }
    }

    /// A handle that can cut this connection from another thread
    /// ([`Closer::close`]): a read blocked on a stalled peer returns at once
    /// instead of waiting for its timeout.
    pub fn closer(&self) -> io::Result<Closer> {
        self.stream.tcp().try_clone().map(Closer)
    }

    /// The static key the peer proved in the handshake, if there was one.
    pub fn remote_key(&self) -> Option<NodeKey> {
        self.stream.remote_key()
    }

    /// The stream, for a caller that keeps it past one exchange (a control
    /// connection, a circuit).
    pub fn into_stream(self) -> Stream {
        self.stream
    }

    /// Sends the request and reads the response frame. A server that refuses
    /// the connection (busy) may answer and close before reading the request,
    /// so the response is read even when sending failed. An error's message
    /// comes back [`printable`].
    pub fn request(&mut self, request: &Request) -> Result<Response, ProtoError> {
        if let Some(refusal) = self.refused.take() {
            return Ok(Response::Error(refusal));
        }
        let sent = frame::write(&mut self.stream, request);
        match (frame::read::<Response>(&mut self.stream), sent) {
            (Ok(Response::Error(mut e)), _) => {
                e.message = printable(&e.message);
                Ok(Response::Error(e))
            }
            (Ok(response), _) => Ok(response),
            (Err(ProtoError::Closed), Err(send_err)) => Err(send_err),
            (Err(e), _) => Err(e),
        }
    }

    /// The raw bytes that follow a file header: exactly `len` of them at most.
    pub fn body(&mut self, len: u64) -> Take<&mut Stream> {
        // Nothing follows a body but the end of the exchange, so an
        // encrypted stream may read ahead of the message it needs.
        self.stream.read_ahead();
        (&mut self.stream).take(len)
    }

    /// Ends the exchange: waits for the peer's close and reports whether it
    /// sent anything past what it declared (those bytes are discarded).
    pub fn finish(mut self) -> Finish {
        let mut probe = [0u8; 1];
        let finish = loop {
            match self.stream.read(&mut probe) {
                Ok(0) => break Finish::Clean,
                Ok(_) => break Finish::ExtraBytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Finish::NoClose,
            }
        };
        let _ = self.stream.tcp().shutdown(Shutdown::Both);
        finish
    }
}

/// Cuts a [`Connection`] from another thread.
#[derive(Debug)]
pub struct Closer(TcpStream);

impl Closer {
    /// Shuts the connection down both ways; its reads and writes fail.
    pub fn close(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// How the peer ended an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// It closed right after its message.
    Clean,
    /// It sent more bytes than its message declared.
    ExtraBytes,
    /// It neither closed nor sent more before the timeout, or the socket failed.
    NoClose,
}

/// One whole exchange: connect, send, read the response, close.
pub fn call(
    addr: SocketAddr,
    request: &Request,
    timeouts: &Timeouts,
) -> Result<Response, ProtoError> {
    call_via(addr, request, timeouts, &Dial::Plain)
}

/// Like [`call`], opening the connection as `how` says.
pub fn call_via(
    addr: SocketAddr,
    request: &Request,
    timeouts: &Timeouts,
    how: &Dial,
) -> Result<Response, ProtoError> {
    let mut conn = Connection::dial(addr, timeouts, how)?;
    let response = conn.request(request)?;
    conn.finish();
    Ok(response)
}

/// Resolves a host (a name, an IPv4 or IPv6 literal, with or without
/// brackets) and a port to the addresses to try, in resolver order.
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address"),
        ));
    }
    Ok(addrs)
}

/// Like [`call`], to the first of `addrs` that accepts the connection.
pub fn call_any(
    addrs: &[SocketAddr],
    request: &Request,
    timeouts: &Timeouts,
) -> Result<(SocketAddr, Response), ProtoError> {
    call_any_via(addrs, request, timeouts, &Dial::Plain)
}

/// Like [`call_any`], opening the connection as `how` says. A handshake
/// refused for its keys is final: another address of the same relay would
/// refuse it too.
pub fn call_any_via(
    addrs: &[SocketAddr],
    request: &Request,
    timeouts: &Timeouts,
    how: &Dial,
) -> Result<(SocketAddr, Response), ProtoError> {
    let mut last = ProtoError::Closed;
    for &addr in addrs {
        match Connection::dial(addr, timeouts, how) {
            Ok(mut conn) => {
                let response = conn.request(request)?;
                conn.finish();
                return Ok((addr, response));
            }
            Err(e) if e.is_handshake() => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}
