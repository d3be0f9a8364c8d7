//! The Noise protocol every private-network session speaks, and the
//! resolver that supplies its primitives (see the cipher choice in
//! [`super`]'s doc).

/// The Noise protocol name of every handshake.
pub const PATTERN: &str = "Noise_XXpsk3_25519_AESGCM_BLAKE2s";

/// A snow builder for [`PATTERN`] with the resolver chosen above.
pub fn builder() -> snow::Builder<'static> {
    use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
    // The pattern is a constant that parses: tested below.
    let params: snow::params::NoiseParams = match PATTERN.parse() {
        Ok(p) => p,
        Err(_) => unreachable!("{PATTERN} is a valid Noise pattern"),
    };
    snow::Builder::with_resolver(
        params,
        Box::new(FallbackResolver::new(
            Box::new(RingResolver),
            Box::new(DefaultResolver),
        )),
    )
}
