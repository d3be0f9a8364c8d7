//! Arbitrary bytes into the verified range decoder, against a fixed content
//! whose hash and size the decoder is given, as a client receives a range
//! from a node that may lie: whatever the bytes, nothing panics, and every
//! byte the decoder yields is the content's own byte at that position
//! (yielding anything else would be a BLAKE3 collision, so an assertion
//! failure here is a decoder bug).
//!
//! The input picks one of a few content sizes (around the chunk-group
//! boundaries) and a range; then either the rest of the input is the
//! stream, or it is XORed onto the honest encoding, which reaches the deep
//! paths (late groups, late pairs) that random bytes never would.

#![no_main]

use std::io::{self, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use proto::content::{ByteRange, CHUNK_GROUP, ContentHash, RangeDecoder, encode_to_vec};

const SIZES: [u64; 6] = [
    0,
    1,
    1000,
    CHUNK_GROUP,
    CHUNK_GROUP + 1,
    5 * CHUNK_GROUP + 777,
];

fn contents() -> &'static Vec<(Vec<u8>, ContentHash)> {
    static CONTENTS: OnceLock<Vec<(Vec<u8>, ContentHash)>> = OnceLock::new();
    CONTENTS.get_or_init(|| {
        SIZES
            .iter()
            .map(|&size| {
                let data: Vec<u8> = (0..size)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                let hash = ContentHash::of(&data);
                (data, hash)
            })
            .collect()
    })
}

/// Hands out the stream a few bytes per read, as a socket does.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 20 {
        return;
    }
    let (data, hash) = &contents()[usize::from(input[0]) % SIZES.len()];
    let size = data.len() as u64;
    let offset = u64::from_le_bytes(input[1..9].try_into().unwrap()) % (size + 1);
    let len = u64::from_le_bytes(input[9..17].try_into().unwrap());
    let mode = input[17];
    let step = usize::from(input[18]) * 64 + 1;
    let rest = &input[19..];
    let Some(range) = ByteRange::clamp(size, offset, len) else {
        return;
    };
    let stream: Vec<u8> = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let (_, _, mut honest) = encode_to_vec(data, offset, len).expect("a range within the size");
        // XOR the patch in at a position the input chooses.
        if !honest.is_empty() && rest.len() >= 4 {
            let at = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize % honest.len();
            for (i, b) in rest[4..].iter().enumerate() {
                if let Some(slot) = honest.get_mut(at + i) {
                    *slot ^= b;
                }
            }
        }
        if mode & 2 != 0 {
            let keep = usize::from(input[18]) * 97 % (honest.len() + 1);
            honest.truncate(keep);
        }
        honest
    };
    let reader = Trickle {
        data: &stream,
        step,
    };
    let mut decoder = match RangeDecoder::new(*hash, size, range, reader) {
        Ok(d) => d,
        Err(_) => return,
    };
    let mut pos = range.offset;
    loop {
        match decoder.next_verified() {
            Ok(Some(bytes)) => {
                let start = pos as usize;
                assert_eq!(
                    bytes,
                    &data[start..start + bytes.len()],
                    "unverified bytes at {pos}"
                );
                pos += bytes.len() as u64;
                assert!(pos <= range.end());
            }
            Ok(None) => {
                assert_eq!(pos, range.end(), "ended early without an error");
                break;
            }
            Err(_) => break,
        }
    }
});
