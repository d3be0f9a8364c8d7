//! Arbitrary bytes into the private network's decoders: the handshake, as a
//! server (responder) and as a client (initiator) receive it, and the
//! encrypted transport after a real handshake, reading one message at a
//! time or reading ahead as a body's reads do. Whatever the bytes, nothing
//! panics and nothing allocates past one Noise message (65 535 bytes), or
//! the read-ahead buffer of 16 messages; valid transport messages, followed
//! by anything, still decrypt to exactly what was sent, and nothing after a
//! forged byte is ever returned.
//!
//! The first input byte picks the side: 0 responder, 1 initiator,
//! 2 transport, 3 transport reading ahead (the next two bytes: how many of
//! the rest are plaintext to send through a real session; the remainder is
//! appended raw).

#![no_main]

use std::io::{self, Read, Write};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use net::secure::handshake;
use net::secure::{Identity, KeyKind, NetworkKeys};

static KEYS: LazyLock<NetworkKeys> = LazyLock::new(|| NetworkKeys::from_secret(b"fuzz"));
static SERVER: LazyLock<Identity> = LazyLock::new(|| Identity::from_private([7; 32]));
static CLIENT: LazyLock<Identity> = LazyLock::new(|| Identity::from_private([9; 32]));

/// The fuzzer's bytes in, a few at a time; whatever is written, kept.
struct Wire<'a> {
    input: &'a [u8],
    step: usize,
    out: Vec<u8>,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(rest.first().copied().unwrap_or(1) % 7) + 1;
    match mode % 4 {
        0 => {
            let mut wire = Wire { input: rest, step, out: Vec::new() };
            if let Ok(session) = handshake::respond(&mut wire, &KEYS, &SERVER) {
                let mut stream = session.over(wire);
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        1 => {
            let mut wire = Wire { input: rest, step, out: Vec::new() };
            let psk = KEYS.get(KeyKind::Peer).unwrap();
            if let Ok(session) = handshake::initiate(&mut wire, KeyKind::Peer, psk, &CLIENT, None) {
                let mut stream = session.over(wire);
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        2 => transport(rest, false),
        _ => transport(rest, true),
    }
});

/// A real session; `data` says what to send through it and what raw bytes
/// follow; the receiver must get exactly the sent bytes, then an error or
/// the end.
fn transport(data: &[u8], ahead: bool) {
    let (split, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => return,
    };
    let (plain, raw) = rest.split_at(split.min(rest.len()));
    let (client, server, confirm) = pair();
    let mut sender = server.over(confirm);
    sender.write_all(plain).unwrap();
    let mut wire = sender.into_inner();
    wire.extend_from_slice(raw);
    let mut receiver = client.over(&wire[..]);
    let mut buf = if ahead {
        receiver.read_ahead();
        // Reads that take several messages, and reads that take less than one.
        vec![0u8; 1 + (plain.len() * 7 + raw.len()) % 300_000]
    } else {
        vec![0u8; 1 + plain.len() % 70_000]
    };
    let mut got = Vec::new();
    loop {
        match receiver.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        assert!(got.len() <= plain.len() + raw.len(), "more out than in");
    }
    assert!(got.len() >= plain.len(), "valid messages were lost");
    assert_eq!(&got[..plain.len()], plain, "valid messages changed");
}

/// Both ends of a completed handshake (client, server), and the bytes of
/// the server's confirmation, which the client's end reads first.
fn pair() -> (handshake::Session, handshake::Session, Vec<u8>) {
    // The initiator waits for message 2, which the responder writes only
    // after reading message 1: two threads over a socket pair.
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || handshake::respond(&mut b, &KEYS, &SERVER).ok());
    let psk = KEYS.get(KeyKind::Peer).unwrap();
    let client = handshake::initiate(&mut a, KeyKind::Peer, psk, &CLIENT, None).unwrap();
    let server = t.join().unwrap().unwrap();
    let mut confirm = vec![0u8; 2 + 16];
    a.read_exact(&mut confirm).unwrap();
    (client, server, confirm)
}
