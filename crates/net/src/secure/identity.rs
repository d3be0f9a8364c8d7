//! A static X25519 key pair: a node's identity, or a throwaway one for a
//! client or a relay, and the key file a node keeps it in.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proto::error::io_reason;
use proto::keys::{NodeKey, hex, parse_hex32};

use super::noise::builder;

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
        let pair = builder()
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

    pub fn private(&self) -> &[u8; 32] {
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
                format!("cannot open key file {}: {}", path.display(), io_reason(&e)),
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
                    io_reason(&e)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_private_half() {
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
}
