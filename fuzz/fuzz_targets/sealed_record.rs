//! Arbitrary bytes into the blind index's record opener, as a client gets
//! records from a relay (which may be hostile) and from other members
//! (which may be buggy or lying): whatever the bytes, nothing panics, and
//! whatever opens is canonical: sealing what came out gives back exactly
//! the bytes that went in.
//!
//! Random bytes almost never decrypt, so the first byte picks a mode:
//! - raw: the input is the sealed record;
//! - plaintext: the input is a plaintext, cut or zero-padded to the bucket
//!   the next byte picks, and encrypted here with the record key (derived
//!   from the index key as docs/PROTOCOL.md says) under its synthetic nonce
//!   or under nonce bytes from the input, so every rule after decryption
//!   (name length, bucket, padding, UTF-8, nonce) meets fuzzer-chosen data;
//! - flip: an honest record of a fuzzer-chosen name, XORed with the input;
//! - answer: the input as a relay's response frame; a `BlindHolders` or a
//!   `SealedPage` goes through the client's opener (`open_holders`,
//!   `Listing::add_page`), which must keep only records that match.

#![no_main]

use std::sync::OnceLock;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use libfuzzer_sys::fuzz_target;
use proto::blind::record::BUCKETS;
use proto::blind::{BlindTarget, IndexKey, Listing, NONCE_KEY_CONTEXT, RECORD_KEY_CONTEXT, Record};
use proto::keys::NetworkKeys;
use proto::{ContentHash, Response, frame};

struct Keys {
    index: IndexKey,
    record: [u8; 32],
    nonce: [u8; 32],
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let index = NetworkKeys::from_secret(b"s3cret").index().unwrap();
        Keys {
            index: IndexKey::new(&index),
            record: blake3::derive_key(RECORD_KEY_CONTEXT, index.bytes()),
            nonce: blake3::derive_key(NONCE_KEY_CONTEXT, index.bytes()),
        }
    })
}

/// Opens `sealed`; if it opens, it must be the sealing of what it holds.
fn open_canonically(sealed: &[u8]) {
    let k = &keys().index;
    if let Ok(record) = k.open(sealed) {
        let again = k.seal(&record).expect("an opened record seals");
        assert_eq!(
            again.0, sealed,
            "{record:?} opened from a non-canonical record"
        );
        // And its tags are what the client checks it against.
        assert!(
            k.check(
                sealed,
                Some(&k.name_tag(&record.name)),
                Some(&k.content_tag(&record.hash))
            )
            .is_ok()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let k = keys();
    match mode % 4 {
        0 => open_canonically(rest),
        1 => {
            let Some((&pick, rest)) = rest.split_first() else {
                return;
            };
            let bucket = BUCKETS[usize::from(pick) % BUCKETS.len()];
            let (nonce_from_input, rest) = if pick & 0x80 != 0 && rest.len() >= 24 {
                (Some(&rest[..24]), &rest[24..])
            } else {
                (None, rest)
            };
            let mut plain = vec![0u8; bucket - 40];
            let n = rest.len().min(plain.len());
            plain[..n].copy_from_slice(&rest[..n]);
            let mut nonce = [0u8; 24];
            match nonce_from_input {
                Some(given) => nonce.copy_from_slice(given),
                None => blake3::Hasher::new_keyed(&k.nonce)
                    .update(&plain)
                    .finalize_xof()
                    .fill(&mut nonce),
            }
            let tag = XChaCha20Poly1305::new(&k.record.into())
                .encrypt_in_place_detached(XNonce::from_slice(&nonce), b"", &mut plain)
                .expect("small message");
            open_canonically(&[&nonce[..], &plain, &tag].concat());
        }
        2 => {
            let split = rest
                .len()
                .min(usize::from(rest.first().copied().unwrap_or(0)) % 64);
            let (name, flips) = rest.split_at(split);
            let record = Record {
                name: String::from_utf8_lossy(name).into_owned(),
                size: flips.len() as u64,
                hash: ContentHash::of(name),
            };
            let Ok(sealed) = k.index.seal(&record) else {
                return;
            };
            let mut bytes = sealed.0.clone();
            for (b, f) in bytes.iter_mut().zip(flips) {
                *b ^= f;
            }
            match k.index.open(&bytes) {
                Ok(opened) => {
                    assert_eq!(bytes, sealed.0, "an altered record opened");
                    assert_eq!(opened, record);
                }
                Err(_) => assert_ne!(bytes, sealed.0, "an honest record did not open"),
            }
        }
        _ => match frame::read::<Response>(&mut &rest[..]) {
            Ok(Response::BlindHolders(list)) => {
                for asked in [
                    BlindTarget::Name(k.index.name_tag("hello.txt")),
                    BlindTarget::Content(k.index.content_tag(&ContentHash::of(b"hello\n"))),
                ] {
                    let (plain, bad) = k.index.open_holders(&asked, &list);
                    assert_eq!(plain.holders.len() + bad.len(), list.holders.len());
                    for h in &plain.holders {
                        match asked {
                            BlindTarget::Name(t) => assert_eq!(k.index.name_tag(&h.name), t),
                            BlindTarget::Content(t) => assert_eq!(k.index.content_tag(&h.hash), t),
                        }
                    }
                }
            }
            Ok(Response::SealedPage(page)) => {
                let mut listing = Listing::default();
                listing.add_page(&k.index, &page);
                assert!(listing.len() + listing.bad.len() <= page.hits.len());
                let found = listing.search("", usize::MAX);
                assert_eq!(found.hits.len(), listing.len());
            }
            _ => {}
        },
    }
});
