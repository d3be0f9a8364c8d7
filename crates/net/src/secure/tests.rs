//! Both sides of the handshake and the transport, over socket pairs.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;

use super::handshake::{self, Refusal, WRONG_SECRET};
use super::noise::builder;
use super::transport::{BATCH, MAX_PAYLOAD};
use super::*;
use proto::ProtoError;

/// A socket pair whose reads give up after a while, so a bug fails a test
/// instead of hanging it.
fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
    }
    (a, b)
}

fn keys(secret: &str) -> NetworkKeys {
    NetworkKeys::from_secret(secret.as_bytes())
}

/// Runs a responder holding `server_keys` on one end of a pair; returns
/// the initiator's end and the responder's thread (its session's stream,
/// or its refusal).
fn responder(
    server_keys: NetworkKeys,
    server_id: Identity,
) -> (
    UnixStream,
    thread::JoinHandle<Result<SecureStream<UnixStream>, Refusal>>,
) {
    let (a, mut b) = pair();
    let t = thread::spawn(move || {
        let session = handshake::respond(&mut b, &server_keys, &server_id);
        if let Err(refusal) = &session
            && let Some(answer) = &refusal.answer
        {
            proto::frame::write(&mut b, &**answer).unwrap();
        }
        session.map(|s| s.over(b))
    });
    (a, t)
}

fn initiate(
    mut io: UnixStream,
    kind: KeyKind,
    keys: &NetworkKeys,
    expect: Option<NodeKey>,
) -> Result<SecureStream<UnixStream>, ProtoError> {
    let id = Identity::generate().unwrap();
    let session = handshake::initiate(&mut io, kind, keys.get(kind).unwrap(), &id, expect)?;
    Ok(session.over(io))
}

#[test]
fn the_pattern_parses() {
    assert!(PATTERN.parse::<snow::params::NoiseParams>().is_ok());
    let _ = builder();
}

#[test]
fn a_session_carries_small_and_large_writes_both_ways_and_proves_keys() {
    let server_id = Identity::generate().unwrap();
    let node_key = server_id.public();
    let (io, server) = responder(keys("s"), server_id);
    let mut client = initiate(io, KeyKind::Peer, &keys("s"), Some(node_key)).unwrap();
    assert_eq!(client.remote_key(), Some(node_key));
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    let mut server = server.join().unwrap().unwrap();
    let sent = big.clone();
    let writer = thread::spawn(move || {
        client.write_all(b"hello").unwrap();
        client.write_all(&sent).unwrap();
        client
    });
    let mut got = vec![0u8; 5 + big.len()];
    server.read_exact(&mut got).unwrap();
    assert_eq!(&got[..5], b"hello");
    assert!(got[5..] == big[..]);
    let mut client = writer.join().unwrap();
    let echo = big.clone();
    let writer = thread::spawn(move || server.write_all(&echo).unwrap());
    let mut back = vec![0u8; big.len()];
    client.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == big);
    // The server's stream is gone: a clean end between messages.
    assert_eq!(client.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn a_wrong_secret_is_refused_with_a_plain_reason() {
    let (io, server) = responder(keys("right"), Identity::generate().unwrap());
    let mut client = initiate(io, KeyKind::Peer, &keys("wrong"), None).unwrap();
    // The request goes out with message 3; the refusal comes with the answer.
    let _ = client.write_all(b"GET secret.txt");
    let refusal = server.join().unwrap().err().unwrap();
    assert!(matches!(refusal.error, ProtoError::HandshakeRefused(_)));
    let err = ProtoError::from(client.read(&mut [0u8; 16]).unwrap_err());
    assert_eq!(
        err.to_string(),
        format!("refused the handshake: {WRONG_SECRET}")
    );
}

#[test]
fn a_responder_without_the_psk_cannot_confirm() {
    // A relay that holds the relay key only, answering a peer-key
    // handshake as if it held the peer key (here: the relay key instead).
    let (a, mut b) = pair();
    let impostor = Identity::generate().unwrap();
    let listed = impostor.public();
    let t = thread::spawn(move || {
        let relay_only = NetworkKeys {
            relay: keys("s").relay,
            peer: Some(keys("s").relay),
        };
        assert!(handshake::respond(&mut b, &relay_only, &impostor).is_err());
        // Its best guess at a confirmation.
        b.write_all(&[0, 16]).unwrap();
        b.write_all(&[0x42; 16]).unwrap();
        b
    });
    let mut client = initiate(a, KeyKind::Peer, &keys("s"), Some(listed)).unwrap();
    let _b = t.join().unwrap();
    let err = ProtoError::from(client.read(&mut [0u8; 16]).unwrap_err());
    assert!(
        matches!(
            err,
            ProtoError::HandshakeFailed(_) | ProtoError::HandshakeRefused(_)
        ),
        "{err}"
    );
}

#[test]
fn a_node_with_another_key_than_listed_is_refused_before_message_3() {
    let (io, _server) = responder(keys("s"), Identity::generate().unwrap());
    let listed = Identity::generate().unwrap().public();
    let err = initiate(io, KeyKind::Peer, &keys("s"), Some(listed))
        .err()
        .unwrap();
    assert!(matches!(err, ProtoError::WrongKey { expected, .. } if expected == listed));
}

#[test]
fn a_relay_without_the_peer_key_refuses_a_peer_handshake_plainly() {
    let relay_only = NetworkKeys::relay_only(keys("s").relay);
    let (io, _server) = responder(relay_only, Identity::generate().unwrap());
    let err = initiate(io, KeyKind::Peer, &keys("s"), None).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("refused the handshake: it does not take the peer key"),
        "{err}"
    );
}

#[test]
fn a_plain_request_at_a_private_server_is_told_a_secret_is_required() {
    let (mut io, server) = responder(keys("s"), Identity::generate().unwrap());
    proto::frame::write(&mut io, &proto::Request::ListNodes).unwrap();
    let refusal = server.join().unwrap().err().unwrap();
    assert!(refusal.answer.is_some());
    match proto::frame::read::<proto::Response>(&mut io).unwrap() {
        proto::Response::Error(e) => assert_eq!(e.message, handshake::SECRET_REQUIRED),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_altered_transport_message_does_not_decrypt() {
    let server_id = Identity::generate().unwrap();
    let (io, server) = responder(keys("s"), server_id);
    let mut client = initiate(io, KeyKind::Relay, &keys("s"), None).unwrap();
    let server = server.join().unwrap().unwrap();
    // After the (valid) confirmation, a message that was never encrypted
    // with the session's key: as a relay splicing its own bytes would send.
    let mut raw = server.into_inner();
    raw.write_all(&[0, 20]).unwrap();
    raw.write_all(&[0xAA; 20]).unwrap();
    let err = client.read(&mut [0u8; 64]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("does not decrypt"), "{err}");
}

/// A session whose server has sent `sent` (in writes of `step` bytes) and
/// closed; returns the client's stream, reading ahead.
fn ahead_session(sent: Vec<u8>, step: usize) -> SecureStream<UnixStream> {
    let server_id = Identity::generate().unwrap();
    let (io, server) = responder(keys("s"), server_id);
    let mut client = initiate(io, KeyKind::Relay, &keys("s"), None).unwrap();
    let mut server = server.join().unwrap().unwrap();
    thread::spawn(move || {
        for piece in sent.chunks(step) {
            server.write_all(piece).unwrap();
        }
    });
    client.read_ahead();
    client
}

#[test]
fn reading_ahead_gives_the_same_bytes_in_reads_of_any_size() {
    let big: Vec<u8> = (0..3_000_017u32).map(|i| (i % 251) as u8).collect();
    for (step, read) in [
        (BATCH, 512 * 1024),
        (100, 512 * 1024),
        (BATCH, MAX_PAYLOAD),
        (70_000, 1000),
        (BATCH, 3 * MAX_PAYLOAD + 5),
    ] {
        let mut client = ahead_session(big.clone(), step);
        let mut got = Vec::new();
        let mut buf = vec![0u8; read];
        let mut most = 0;
        loop {
            let n = client.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            most = most.max(n);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == big, "step {step}, reads of {read}");
        if read >= 2 * MAX_PAYLOAD && step >= BATCH {
            // Whole messages already read come out in one call.
            assert!(most > MAX_PAYLOAD, "step {step}, reads of {read}: {most}");
        }
    }
}

#[test]
fn reading_ahead_still_refuses_an_altered_or_cut_message() {
    let server_id = Identity::generate().unwrap();
    let (io, server) = responder(keys("s"), server_id);
    let mut client = initiate(io, KeyKind::Relay, &keys("s"), None).unwrap();
    let mut server = server.join().unwrap().unwrap();
    server.write_all(&[7; 1000]).unwrap();
    let mut raw = server.into_inner();
    raw.write_all(&[0, 20]).unwrap();
    raw.write_all(&[0xAA; 20]).unwrap();
    // Then a message cut short by the end of the stream.
    raw.write_all(&[0, 200, 1, 2, 3]).unwrap();
    drop(raw);
    client.read_ahead();
    let mut buf = vec![0u8; 4 * MAX_PAYLOAD];
    assert_eq!(client.read(&mut buf).unwrap(), 1000);
    assert!(buf[..1000].iter().all(|b| *b == 7));
    let err = client.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("does not decrypt"), "{err}");
}

#[test]
fn reading_ahead_ends_cleanly_between_messages_and_not_inside_one() {
    let mut client = ahead_session(vec![9; 100_000], 100_000);
    let mut buf = vec![0u8; 4 * MAX_PAYLOAD];
    let mut got = 0;
    loop {
        match client.read(&mut buf).unwrap() {
            0 => break,
            n => got += n,
        }
    }
    assert_eq!(got, 100_000);

    let server_id = Identity::generate().unwrap();
    let (io, server) = responder(keys("s"), server_id);
    let mut client = initiate(io, KeyKind::Relay, &keys("s"), None).unwrap();
    let server = server.join().unwrap().unwrap();
    let mut raw = server.into_inner();
    raw.write_all(&[0, 200, 1, 2, 3]).unwrap();
    drop(raw);
    client.read_ahead();
    let err = client.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}
