//! Where a node keeps its outboards (the hash pairs of each shared file's
//! BLAKE3 tree, 0.1% of its size): a cache directory outside DIR, so
//! nothing the node writes is ever shared, and a changed DIR never sees
//! files it did not put there.
//!
//! `--cache DIR` if given; else `$XDG_CACHE_HOME/p2p-share`, else
//! `$HOME/.cache/p2p-share`. If none of these can be created and written,
//! a fresh directory under the system temp dir, said in the log.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Picks and creates the cache directory for a node sharing `share_root`
/// (canonical). An explicit `--cache` inside the shared directory is
/// refused; a default one there (sharing $HOME) is passed over.
pub fn choose(explicit: Option<&Path>, share_root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
        let real = fs::canonicalize(dir)
            .with_context(|| format!("cannot use the cache directory {}", dir.display()))?;
        if real.starts_with(share_root) {
            bail!(
                "the cache directory {} is inside the shared directory {}: choose one outside it",
                dir.display(),
                share_root.display()
            );
        }
        check_writable(&real)
            .with_context(|| format!("cannot write to the cache directory {}", dir.display()))?;
        return Ok(real);
    }
    for dir in default_dirs() {
        match usable(&dir, share_root) {
            Ok(real) => return Ok(real),
            Err(why) => tracing::debug!("cache {}: {why}", dir.display()),
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("p2p-share-cache-")
        .tempdir()
        .context("cannot create a cache directory in the temp dir")?
        .keep();
    tracing::warn!(
        "no writable cache directory outside the shared one; using {} (set --cache DIR)",
        tmp.display()
    );
    Ok(tmp)
}

fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(xdg).join("p2p-share"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(home).join(".cache/p2p-share"));
    }
    dirs
}

fn usable(dir: &Path, share_root: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| proto::error::io_reason(&e))?;
    let real = fs::canonicalize(dir).map_err(|e| proto::error::io_reason(&e))?;
    if real.starts_with(share_root) {
        return Err("inside the shared directory".into());
    }
    check_writable(&real).map_err(|e| proto::error::io_reason(&e))?;
    Ok(real)
}

fn check_writable(dir: &Path) -> io::Result<()> {
    tempfile::tempfile_in(dir).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_cache_inside_the_share_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let share = fs::canonicalize(tmp.path()).unwrap();
        let inside = share.join("sub/cache");
        let err = choose(Some(&inside), &share).unwrap_err();
        assert!(
            err.to_string().contains("inside the shared directory"),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_cache_outside_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let share = tmp.path().join("share");
        fs::create_dir(&share).unwrap();
        let share = fs::canonicalize(share).unwrap();
        let cache = tmp.path().join("cache");
        let got = choose(Some(&cache), &share).unwrap();
        assert!(got.is_dir() && !got.starts_with(&share));
    }
}
