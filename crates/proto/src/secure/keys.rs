//! Keys of a private network (docs/SECURITY.md, "Private networks").
//!
//! One secret per network; two keys derived from it with BLAKE3's
//! `derive_key`, each under its own context string, so that holding one
//! says nothing about the other:
//! - the **relay key** admits a peer to the relay (registration, listing,
//!   circuits), and lets the relay dial a node back;
//! - the **peer key** is the PSK of every handshake between a client and a
//!   node, direct or through a circuit. A relay given only the relay key
//!   (someone else's relay) cannot complete one, so it can neither read a
//!   relayed byte nor pose as a node;
//! - the **index key** is derived from the peer key (never from the relay
//!   key): tags and sealed records of the blind index (`crate::blind`) are
//!   made under it, so a relay given only the relay key can neither read
//!   the catalogs it holds nor compute the tag of a name.
//!
//! Each node also has a static X25519 key pair, its identity: kept in a key
//! file, revealed (authenticated) in every handshake, listed by the relay,
//! and checked by the client.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Context string of the relay key: never change it, or every network's
/// keys change (docs/vectors/secure/key-derivation.json pins it).
pub const RELAY_KEY_CONTEXT: &str = "p2p-share 2026-01-01 relay key v1";
/// Context string of the peer key.
pub const PEER_KEY_CONTEXT: &str = "p2p-share 2026-01-01 peer key v1";
/// Context string of the index key, derived from the peer key's bytes.
pub const INDEX_KEY_CONTEXT: &str = "p2p-share 2026-01-01 index key v1";

/// Longest secret accepted, in bytes (from a flag, the environment or a file).
pub const MAX_SECRET_LEN: usize = 4096;

/// A 32-byte symmetric key: the relay key or the peer key. Its Debug output
/// never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub(crate) [u8; 32]);

impl Key {
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, for `peer-client --show-relay-key`.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Key, String> {
        parse_hex32(text.trim()).map(Key)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

/// Which of the two keys a handshake uses; sent in the handshake preamble
/// (docs/PROTOCOL.md, "Private networks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Byte 1: to or from the relay.
    Relay,
    /// Byte 2: between a client and a node.
    Peer,
}

impl KeyKind {
    pub fn code(self) -> u8 {
        match self {
            KeyKind::Relay => 1,
            KeyKind::Peer => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<KeyKind> {
        match code {
            1 => Some(KeyKind::Relay),
            2 => Some(KeyKind::Peer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Relay => "relay key",
            KeyKind::Peer => "peer key",
        }
    }
}

/// The keys one program holds. A relay needs only the relay key; nodes and
/// clients derive both from the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkKeys {
    pub relay: Key,
    pub peer: Option<Key>,
}

impl NetworkKeys {
    /// Both keys, from the network's secret.
    pub fn from_secret(secret: &[u8]) -> NetworkKeys {
        NetworkKeys {
            relay: Key(blake3::derive_key(RELAY_KEY_CONTEXT, secret)),
            peer: Some(Key(blake3::derive_key(PEER_KEY_CONTEXT, secret))),
        }
    }

    /// The relay key alone (`relay --relay-key`).
    pub fn relay_only(relay: Key) -> NetworkKeys {
        NetworkKeys { relay, peer: None }
    }

    /// The index key (docs/PROTOCOL.md, "The blind index"): from the peer
    /// key, so whoever holds only the relay key cannot compute it. None for
    /// a relay.
    pub fn index(&self) -> Option<Key> {
        let peer = self.peer.as_ref()?;
        Some(Key(blake3::derive_key(INDEX_KEY_CONTEXT, &peer.0)))
    }

    pub fn get(&self, kind: KeyKind) -> Option<&Key> {
        match kind {
            KeyKind::Relay => Some(&self.relay),
            KeyKind::Peer => self.peer.as_ref(),
        }
    }
}

/// A node's public static key: what the relay lists and a client checks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeKey(pub [u8; 32]);

impl NodeKey {
    pub fn from_slice(bytes: &[u8]) -> Option<NodeKey> {
        bytes.try_into().ok().map(NodeKey)
    }

    pub fn from_hex(text: &str) -> Result<NodeKey, String> {
        parse_hex32(text.trim()).map(NodeKey)
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({self})")
    }
}

impl std::str::FromStr for NodeKey {
    type Err = String;
    fn from_str(text: &str) -> Result<NodeKey, String> {
        NodeKey::from_hex(text)
    }
}

/// A static X25519 key pair: a node's identity, or a throwaway one for a
/// client or a relay. Its Debug output shows only the public half.
#[derive(Clone)]
pub struct Identity {
    private: [u8; 32],
    public: NodeKey,
}

impl Identity {
    /// A fresh random key pair.
    pub fn generate() -> io::Result<Identity> {
        let pair = super::builder()
            .generate_keypair()
            .map_err(|e| io::Error::other(format!("cannot generate a key: {e}")))?;
        let private: [u8; 32] = pair
            .private
            .as_slice()
            .try_into()
            .map_err(|_| io::Error::other("the generated key is not 32 bytes"))?;
        Ok(Identity::from_private(private))
    }

    /// The pair of a private key (X25519 clamps it; the public half follows).
    pub fn from_private(private: [u8; 32]) -> Identity {
        let public = curve25519_dalek::MontgomeryPoint::mul_base_clamped(private).to_bytes();
        Identity {
            private,
            public: NodeKey(public),
        }
    }

    pub fn public(&self) -> NodeKey {
        self.public
    }

    pub(crate) fn private(&self) -> &[u8; 32] {
        &self.private
    }

    /// Reads the key file at `path`, or creates it (mode 0600, its directory
    /// 0700 if missing) with a new key. Returns the identity and whether it
    /// was created. The file holds the private key as 64 hex digits.
    pub fn load_or_create(path: &Path) -> io::Result<(Identity, bool)> {
        match File::open(path) {
            Ok(file) => {
                let mut text = String::new();
                file.take(1024).read_to_string(&mut text).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot read key file {}: {e}", path.display()),
                    )
                })?;
                let private = parse_hex32(text.trim()).map_err(|why| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("key file {} is not a key: {why}", path.display()),
                    )
                })?;
                Ok((Identity::from_private(private), false))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let identity = Identity::generate()?;
                identity.create_file(path)?;
                Ok((identity, true))
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!(
                    "cannot open key file {}: {}",
                    path.display(),
                    crate::error::io_reason(&e)
                ),
            )),
        }
    }

    /// Writes the private key to a new file (never replacing one), mode 0600.
    fn create_file(&self, path: &Path) -> io::Result<()> {
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot create key file {}: {}",
                    path.display(),
                    crate::error::io_reason(&e)
                ),
            )
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            fs::create_dir_all(dir).map_err(context)?;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(context)?;
        file.write_all(format!("{}\n", hex(&self.private)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(context)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public)
    }
}

/// Where a node keeps its key by default: `$XDG_CONFIG_HOME/p2p-share/node.key`,
/// else `$HOME/.config/p2p-share/node.key`.
pub fn default_key_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(config.join("p2p-share").join("node.key"))
}

/// The secret in a file: its bytes less one trailing newline (`\n` or
/// `\r\n`), so `echo SECRET > FILE` and an editor's file both work.
pub fn read_secret_file(path: &Path) -> io::Result<Vec<u8>> {
    let wrap = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot read secret file {}: {}",
                path.display(),
                crate::error::io_reason(&e)
            ),
        )
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_SECRET_LEN as u64 + 3).read_to_end(&mut bytes))
        .map_err(wrap)?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    check_secret(&bytes).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("secret file {}: {why}", path.display()),
        )
    })?;
    Ok(bytes)
}

/// Refuses an empty or oversized secret.
pub fn check_secret(secret: &[u8]) -> Result<(), String> {
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    if secret.len() > MAX_SECRET_LEN {
        return Err(format!("the secret is longer than {MAX_SECRET_LEN} bytes"));
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex32(text: &str) -> Result<[u8; 32], String> {
    if text.len() != 64 {
        return Err(format!(
            "expected 64 hex digits, got {} characters",
            text.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
        out[i] = u8::from_str_radix(digits, 16)
            .map_err(|_| format!("`{}` is not a hex byte", digits.escape_debug()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_differ_and_depend_on_the_secret() {
        let a = NetworkKeys::from_secret(b"one");
        let b = NetworkKeys::from_secret(b"two");
        assert_ne!(a.relay, a.peer.clone().unwrap());
        assert_ne!(a.relay, b.relay);
        assert_ne!(a.peer, b.peer);
        let index = a.index().unwrap();
        assert_ne!(index, a.relay);
        assert_ne!(Some(index.clone()), a.peer);
        assert_ne!(Some(index), b.index());
        assert_eq!(NetworkKeys::relay_only(a.relay.clone()).index(), None);
    }

    #[test]
    fn hex_round_trips_and_refuses_nonsense() {
        let key = Key([0xab; 32]);
        assert_eq!(Key::from_hex(&key.to_hex()).unwrap(), key);
        assert_eq!(Key::from_hex(&format!(" {}\n", key.to_hex())).unwrap(), key);
        for bad in ["", "ab", &"g".repeat(64), &"é".repeat(32), &"a".repeat(65)] {
            assert!(Key::from_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let keys = NetworkKeys::from_secret(b"s");
        assert!(!format!("{keys:?}").contains(&keys.relay.to_hex()[..8]));
        let id = Identity::generate().unwrap();
        assert!(!format!("{id:?}").contains(&hex(id.private())[..8]));
    }

    #[test]
    fn a_key_file_is_created_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("proto-keys-{}", std::process::id()));
        let path = dir.join("sub").join("node.key");
        let _ = fs::remove_dir_all(&dir);
        let (made, created) = Identity::load_or_create(&path).unwrap();
        assert!(created);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (read, created) = Identity::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(made.public(), read.public());
        fs::write(&path, "nonsense").unwrap();
        let err = Identity::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("is not a key"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_file_loses_one_trailing_newline() {
        let path = std::env::temp_dir().join(format!("proto-secret-{}", std::process::id()));
        fs::write(&path, "hunter2\r\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), b"hunter2");
        fs::write(&path, "\n").unwrap();
        assert!(
            read_secret_file(&path)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        fs::remove_file(&path).unwrap();
    }
}
