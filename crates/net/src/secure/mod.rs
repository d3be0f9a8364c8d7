//! Private networks: with a secret, every connection starts with a Noise
//! handshake and carries only Noise transport messages (docs/SECURITY.md,
//! docs/PROTOCOL.md "Private networks").
//!
//! - the keys derived from the secret are wire (`proto::keys`);
//! - [`identity`]: a static key pair (a node's identity, or a throwaway
//!   one) and the key file a node keeps it in;
//! - [`noise`]: the Noise pattern and the resolver behind every session;
//! - [`framing`]: a handshake message on the wire, or a refusal in its place;
//! - [`handshake`]: both sides of the handshake, and the plain refusals
//!   that let a peer without the secret (or with one, meeting a plain
//!   server) read why it was turned away.
//! - [`transport`]: [`SecureStream`], the encrypted `Read + Write` adapter.
//!
//! The request/response code neither knows nor cares: it reads and writes a
//! [`crate::stream::Stream`], plain or encrypted.
//!
//! Cipher choice: AES-256-GCM, through `ring`. On the x86-64 machines this
//! project runs on (AES-NI, PCLMULQDQ) ring's AES-GCM encrypts and decrypts
//! 64 KiB messages 2.7x as fast as its ChaCha20-Poly1305 and 5.7x as fast as
//! the pure-Rust aes-gcm crate (docs/BENCHMARKS.md, "Private networks");
//! Diffie-Hellman (X25519) and BLAKE2s come from snow's default resolver.

pub mod framing;
pub mod handshake;
pub mod identity;
pub mod noise;
pub mod transport;

use std::sync::Arc;

pub use handshake::{Refusal, Session};
pub use identity::{Identity, default_key_path};
pub use noise::PATTERN;
pub use proto::keys::{Key, KeyKind, NetworkKeys, NodeKey};
pub use transport::SecureStream;

/// How a program meets its peers: in the clear, or in a private network
/// with its keys and its static key pair.
#[derive(Debug, Clone, Default)]
pub enum Security {
    #[default]
    Plain,
    Private(Arc<Private>),
}

/// A program's side of a private network.
#[derive(Debug)]
pub struct Private {
    pub keys: NetworkKeys,
    pub identity: Identity,
}

impl Security {
    pub fn private(keys: NetworkKeys, identity: Identity) -> Security {
        Security::Private(Arc::new(Private { keys, identity }))
    }

    pub fn is_private(&self) -> bool {
        matches!(self, Security::Private(_))
    }

    /// How to open a connection to the relay.
    pub fn to_relay(&self) -> Dial {
        match self {
            Security::Plain => Dial::Plain,
            Security::Private(p) => Dial::Secure {
                private: Arc::clone(p),
                kind: KeyKind::Relay,
                expect: None,
            },
        }
    }

    /// How to open a connection to a node, which must prove `expect` (the
    /// key the relay listed, or the one pinned) when given.
    pub fn to_node(&self, expect: Option<NodeKey>) -> Dial {
        match self {
            Security::Plain => Dial::Plain,
            Security::Private(p) => Dial::Secure {
                private: Arc::clone(p),
                kind: KeyKind::Peer,
                expect,
            },
        }
    }
}

/// How one connection is opened: plain, or with a handshake under one key.
#[derive(Debug, Clone)]
pub enum Dial {
    Plain,
    Secure {
        private: Arc<Private>,
        kind: KeyKind,
        expect: Option<NodeKey>,
    },
}

#[cfg(test)]
mod tests;
