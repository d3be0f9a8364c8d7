#![doc = include_str!("../README.md")]
//! ## Feature flags
#![doc = document_features::document_features!()]
//!

#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod common;
#[cfg(feature = "node")]
mod dht;
mod rpc;

// Public modules
#[cfg(feature = "async")]
pub mod async_dht;

pub use common::{Id, MutableItem, Node, RoutingTable};

#[cfg(feature = "node")]
pub use dht::{Dht, DhtBuilder, Testnet, TestnetBuilder};
#[cfg(feature = "node")]
pub use rpc::{
    config::Config,
    messages::{MessageType, PutRequestSpecific, RequestSpecific},
    server::{RequestFilter, ServerSettings, MAX_INFO_HASHES, MAX_PEERS, MAX_VALUES},
    ClosestNodes, GetMutableOutcome, PutOutcome, DEFAULT_BOOTSTRAP_NODES, DEFAULT_REQUEST_TIMEOUT,
};

pub use ed25519_dalek::SigningKey;

#[doc(hidden)]
pub mod __fuzz {
    //! Not part of upstream's API: p2p-share's hook into the KRPC decoder
    //! for its cargo-fuzz target (fuzz/fuzz_targets/krpc.rs in p2p-share).

    use crate::common::Message;

    /// Decodes `bytes` as one KRPC message, as a received datagram is; if
    /// it decodes, encodes it (as a reply echoes parts of a query) and
    /// decodes that again. Panics if the encoding fails or does not decode.
    /// Returns whether `bytes` decoded.
    pub fn decode_round_trip(bytes: &[u8]) -> bool {
        let Ok(message) = Message::from_bytes(bytes) else {
            return false;
        };
        let encoded = message.to_bytes().expect("a decoded message encodes");
        Message::from_bytes(&encoded).expect("an encoded message decodes");
        true
    }
}

pub mod errors {
    //! Exported errors
    #[cfg(feature = "node")]
    pub use super::common::ErrorSpecific;
    #[cfg(feature = "node")]
    pub use super::dht::PutMutableError;
    #[cfg(feature = "node")]
    pub use super::rpc::{ConcurrencyError, PutError, PutQueryError};

    pub use super::common::DecodeIdError;
    pub use super::common::MutableError;
}
