//! Property tests of verified ranges: any single corrupted byte of an
//! encoded range, in a hash pair or in a chunk group, is detected before the
//! bytes it covers are handed out; a stream cut short never looks complete;
//! and whatever the decoder hands out before it stops is the content's own
//! bytes.

use proptest::prelude::*;

use proto::content::{
    ByteRange, CHUNK_GROUP, ContentHash, RangeDecoder, RangeError, encode_to_vec,
};

fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed) % 32) as u8
        })
        .collect()
}

/// Sizes around the chunk-group boundaries, up to a few groups.
fn size() -> impl Strategy<Value = usize> {
    let g = CHUNK_GROUP as usize;
    prop_oneof![
        0..3000usize,
        (g - 2)..(g + 2),
        (2 * g - 1)..(2 * g + 1),
        0..(7 * g + 500),
    ]
}

/// Decodes the whole range; checks every handed-out byte on the way.
fn decode(data: &[u8], hash: ContentHash, range: ByteRange, enc: &[u8]) -> Result<u64, RangeError> {
    let mut d = RangeDecoder::new(hash, data.len() as u64, range, enc)?;
    let mut pos = range.offset;
    while let Some(bytes) = d.next_verified()? {
        let start = pos as usize;
        assert_eq!(
            bytes,
            &data[start..start + bytes.len()],
            "unverified bytes at {pos}"
        );
        pos += bytes.len() as u64;
    }
    Ok(pos)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn an_honest_stream_decodes_to_exactly_the_range(
        size in size(), seed: u8, offset: u64, len: u64,
    ) {
        let data = content(size, seed);
        let offset = offset % (size as u64 + 1);
        let (hash, range, enc) = encode_to_vec(&data, offset, len).unwrap();
        prop_assert_eq!(decode(&data, hash, range, &enc).unwrap(), range.end());
    }

    #[test]
    fn any_corrupted_byte_is_detected(
        size in size(), seed: u8, offset: u64, len: u64, at: usize, mask in 1..=255u8,
    ) {
        let data = content(size, seed);
        let offset = offset % (size as u64 + 1);
        let (hash, range, mut enc) = encode_to_vec(&data, offset, len).unwrap();
        prop_assume!(!enc.is_empty());
        let at = at % enc.len();
        enc[at] ^= mask;
        match decode(&data, hash, range, &enc) {
            Err(RangeError::Mismatch { at: group }) => {
                prop_assert_eq!(group % CHUNK_GROUP, 0);
                prop_assert!(group < (size as u64).max(1));
            }
            other => prop_assert!(false, "byte {} of {} corrupted, got {:?}", at, enc.len(), other.map_err(|e| e.to_string())),
        }
    }

    #[test]
    fn a_stream_cut_short_is_never_complete(
        size in size(), seed: u8, offset: u64, len: u64, cut: usize,
    ) {
        let data = content(size, seed);
        let offset = offset % (size as u64 + 1);
        let (hash, range, enc) = encode_to_vec(&data, offset, len).unwrap();
        prop_assume!(!enc.is_empty());
        let cut = cut % enc.len();
        let got = decode(&data, hash, range, &enc[..cut]);
        prop_assert!(matches!(got, Err(RangeError::Truncated { .. })), "{:?}", got.map_err(|e| e.to_string()));
    }

    #[test]
    fn another_hash_or_size_is_refused(size in 1..(3 * CHUNK_GROUP as usize), seed: u8, other: [u8; 32]) {
        let data = content(size, seed);
        let (hash, range, enc) = encode_to_vec(&data, 0, u64::MAX).unwrap();
        prop_assume!(other != hash.0);
        prop_assert!(decode(&data, ContentHash(other), range, &enc).is_err());
        let shorter = ByteRange { offset: 0, len: size as u64 - 1 };
        let mut d = RangeDecoder::new(hash, size as u64 - 1, shorter, &enc[..]).unwrap();
        let mut out = 0usize;
        let result = loop {
            match d.next_verified() {
                Ok(Some(b)) => out += b.len(),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // Only a size that leaves every group as it was could pass; a
        // shorter size always changes the last group.
        prop_assert!(result.is_err(), "accepted {} bytes as a content of {} bytes", out, size - 1);
    }
}
