//! Which key a node has: its static key pair, from a key file kept outside
//! DIR, one per shared directory by default.
//!
//! The key is what a client pins (`--node KEY`) and what the relay lists,
//! so two nodes must not share one: nodes that read one file for every
//! directory would all be the same node to a client. The default file is
//! named after the shared directory's canonical path, under the user's
//! config dir (`p2p-share/nodes/`), so each directory keeps its own key
//! across restarts and no two directories share one. `--key FILE` still
//! chooses a file; two nodes given the same one are told so at start (see
//! [`crate::claim`]).

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use net::secure::Identity;

/// The config subdirectory of the per-directory key files (and their
/// claims).
const NODES: &str = "nodes";

/// Longest part of a file name taken from the directory's own name.
const LABEL_MAX: usize = 48;

/// The per-user place for one shared directory's files (its key, its
/// claim), without extension: `$XDG_CONFIG_HOME/p2p-share/nodes/NAME`,
/// else `~/.config/...`; None when neither variable is set. `root` is the
/// directory's canonical path.
pub fn stem_for(root: &Path) -> Option<PathBuf> {
    let config = net::secure::default_key_path()?.parent()?.to_path_buf();
    Some(config.join(NODES).join(file_stem(root)))
}

/// The default key file of the directory at canonical path `root`.
pub fn default_key_path(root: &Path) -> Option<PathBuf> {
    stem_for(root).map(|stem| stem.with_extension("key"))
}

/// A file name for `root`: its last component, for people (letters,
/// digits, `.`, `_` and `-` kept, the rest `_`, at most 48 bytes), and 16
/// hex digits of the BLAKE3 hash of the whole canonical path, so that two
/// directories never share a name, however alike their last components.
pub fn file_stem(root: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let label: String = root
        .file_name()
        .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(LABEL_MAX)
        .collect();
    // A leading dot would hide the file; the hash keeps it unique anyway.
    let label = label.trim_start_matches('.');
    let label = if label.is_empty() { "dir" } else { label };
    let hash = blake3::hash(root.as_os_str().as_bytes());
    format!("{label}-{}", &hash.to_hex()[..16])
}

/// The node's key pair from `path` (`--key`), or from the default file of
/// the directory at canonical path `root`; made (mode 0600) on first use.
/// Logs the public half: what the relay lists and `--node` pins. Returns
/// the file it came from.
pub fn load(path: Option<&Path>, root: &Path) -> anyhow::Result<(Identity, PathBuf)> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => default_key_path(root).context(
            "no place for the node's key file: set --key FILE (neither XDG_CONFIG_HOME nor HOME is set)",
        )?,
    };
    let (identity, created) = match Identity::load_or_create(&path) {
        // Another node over the same directory made it a moment ago.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Identity::load_or_create(&path)?,
        other => other?,
    };
    if created {
        tracing::info!("created key file {} (mode 0600)", path.display());
        if let Some(shared) = net::secure::default_key_path().filter(|old| old.exists()) {
            // Nodes before this version all read one file.
            tracing::info!(
                "{} is no longer every node's key: each shared directory has its own; \
                 give --key {} to keep the old key for this one",
                shared.display(),
                shared.display()
            );
        }
    }
    tracing::info!(
        "node key {} (from {}; clients may pin it with --node)",
        identity.public(),
        path.display()
    );
    Ok((identity, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_directory_gets_a_name_of_its_own() {
        let a = file_stem(Path::new("/home/u/share"));
        let b = file_stem(Path::new("/srv/share"));
        assert!(
            a.starts_with("share-") && b.starts_with("share-"),
            "{a} {b}"
        );
        assert_ne!(a, b);
        assert_eq!(a, file_stem(Path::new("/home/u/share")));
        assert_eq!(a.len(), "share-".len() + 16);
    }

    #[test]
    fn odd_names_become_plain_file_names() {
        let name = file_stem(Path::new("/tmp/my files/été*"));
        assert!(name.starts_with("_t__-"), "{name}");
        assert!(file_stem(Path::new("/")).starts_with("root-"));
        assert!(file_stem(Path::new("/x/.hidden")).starts_with("hidden-"));
        assert!(file_stem(Path::new("/x/...")).starts_with("dir-"));
        let long = file_stem(Path::new(&format!("/x/{}", "y".repeat(300))));
        assert_eq!(long.len(), LABEL_MAX + 1 + 16);
    }
}
