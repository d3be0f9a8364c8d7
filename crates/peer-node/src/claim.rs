//! One node per shared directory, and per key file, on this host: a claim
//! is a lock file, locked (flock) for as long as the node runs, that says
//! which node holds it. A second node that finds it locked reads who holds
//! it and says so in its log; it still runs, since the user may mean it.
//!
//! Why a lock file rather than the relay's node list: it works without a
//! secret (where nodes have no key) and before the relay answers, it
//! catches the same directory as well as the same key, and the kernel
//! drops the lock when a node dies however it dies, so a stale file never
//! claims anything. The lock of a directory lives beside its default key
//! file (see [`crate::identity`]); the lock of a key file beside that file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Most of a claim file read back: a pid, a path and an address.
const CLAIM_MAX: u64 = 8 * 1024;

/// Locks held until the process ends.
#[derive(Debug, Default)]
pub struct Claims {
    _held: Vec<File>,
}

/// What a claim says about the node that holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<String>,
    pub dir: Option<String>,
    pub listen: Option<String>,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let mut holder = Holder::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            // Written by another process: shown escaped, never as is.
            let value = Some(proto::error::printable(value));
            match key {
                "pid" => holder.pid = value,
                "dir" => holder.dir = value,
                "listen" => holder.listen = value,
                _ => {}
            }
        }
        holder
    }

    /// `pid 1234, sharing /srv/share, listening on [::]:4000`, with what
    /// is known.
    fn describe(&self) -> String {
        let parts: Vec<String> = [
            self.pid.as_ref().map(|p| format!("pid {p}")),
            self.dir.as_ref().map(|d| format!("sharing {d}")),
            self.listen.as_ref().map(|l| format!("listening on {l}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            "a node starting now".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Claims the directory at canonical path `root` and, with a secret, the
/// key file `key`, for this node listening on `listen`; logs a warning
/// naming the other node for each one already claimed. A claim that cannot
/// be made (no config dir, a read-only one) is skipped: it only warns.
pub fn stake(root: &Path, key: Option<&Path>, listen: SocketAddr) -> Claims {
    let mut claims = Claims::default();
    let note = format!(
        "pid {}\ndir {}\nlisten {listen}\n",
        std::process::id(),
        root.display()
    );
    let mut dir_taken = false;
    if let Some(stem) = crate::identity::stem_for(root) {
        match take(&stem.with_extension("lock"), &note) {
            Ok(Ok(file)) => claims._held.push(file),
            Ok(Err(other)) => {
                dir_taken = true;
                tracing::warn!(
                    "another node shares {} too ({}): clients find its files twice, and \
                     each node hashes them; stop one of them",
                    root.display(),
                    other.describe()
                );
            }
            Err(e) => tracing::debug!("cannot claim {}: {e}", root.display()),
        }
    }
    if let Some(key) = key {
        match take(&lock_beside(key), &note) {
            Ok(Ok(file)) => claims._held.push(file),
            // The same directory was named already, and with it its key.
            Ok(Err(_)) if dir_taken => {}
            Ok(Err(other)) => tracing::warn!(
                "another node uses the key file {} too ({}): clients cannot tell the two \
                 apart (--node pins both); give each node its own --key, or none: each \
                 shared directory then has a key of its own",
                key.display(),
                other.describe()
            ),
            Err(e) => tracing::debug!("cannot claim {}: {e}", key.display()),
        }
    }
    claims
}

/// `FILE.lock` beside `FILE`.
fn lock_beside(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Locks the claim file at `path` (made if missing, mode 0600, in a
/// directory made mode 0700) and writes `note` into it; or, when another
/// process holds it, reads who. The outer error is a claim that could not
/// be tried at all.
pub fn take(path: &Path, note: &str) -> io::Result<Result<File, Holder>> {
    let context = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("{}: {}", path.display(), proto::error::io_reason(&e)),
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        fs::create_dir_all(dir).map_err(context)?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(context)?;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock {
            return Err(context(e));
        }
        let mut text = String::new();
        let _ = (&file).take(CLAIM_MAX).read_to_string(&mut text);
        return Ok(Err(Holder::parse(&text)));
    }
    file.set_len(0)
        .and_then(|()| file.write_all(note.as_bytes()))
        .map_err(context)?;
    Ok(Ok(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_names_the_first_holder_until_it_lets_go() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub/x.lock");
        let first = take(&path, "pid 7\ndir /srv/a\nlisten [::]:4000\n")
            .unwrap()
            .expect("free");
        let other = take(&path, "pid 8\n").unwrap().expect_err("taken");
        assert_eq!(
            other.describe(),
            "pid 7, sharing /srv/a, listening on [::]:4000"
        );
        drop(first);
        let _again = take(&path, "pid 8\n").unwrap().expect("free again");
        // Truncated, then written: nothing of the first holder is left.
        assert_eq!(fs::read_to_string(&path).unwrap(), "pid 8\n");
    }

    #[test]
    fn what_another_process_wrote_is_shown_escaped() {
        let holder = Holder::parse("pid 1\ndir /x\x1b[2J\nnoise\n");
        assert_eq!(holder.dir.as_deref(), Some("/x\\u{1b}[2J"));
        assert_eq!(Holder::parse("").describe(), "a node starting now");
    }

    #[test]
    fn a_key_file_is_claimed_beside_it() {
        assert_eq!(
            lock_beside(Path::new("/k/node.key")),
            Path::new("/k/node.key.lock")
        );
    }
}
