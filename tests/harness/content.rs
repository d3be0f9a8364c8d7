//! Test contents: reproducible bytes that do not repeat in any short
//! period, so a range sent twice, dropped, reordered or put at the wrong
//! offset cannot compare equal by accident.

/// `len` pseudo-random bytes (xorshift64), the same for the same `seed`
/// and different for each (the seed is spread by an odd multiplier, a
/// bijection, before the state is made nonzero).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
