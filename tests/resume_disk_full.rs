//! A save that fills the disk keeps its part: the client names the cause
//! and what it kept, and the same command, once space is freed, resumes and
//! ends with the right bytes. The disk is a small tmpfs mounted for the
//! test (it needs root, as CI has) and unmounted on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::content::pseudo_random;
use harness::{Node, Relay};
use peer_client::part;

/// The tmpfs: room for the filler and part of the content only.
const DISK: u64 = 16 << 20;
const CONTENT: usize = 12 << 20;
const FILLER: usize = 8 << 20;

/// A tmpfs of `size` bytes mounted at `dir`; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: u64) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("cannot run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {dir:?} (root is needed)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding a file there cannot keep it busy.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn fetch(relay: &Relay, args: &[&str]) -> harness::Run {
    let mut cmd = harness::client(relay.port());
    cmd.args(args);
    harness::run(cmd, b"", Duration::from_secs(60))
}

#[test]
fn a_full_disk_keeps_the_part_and_the_rerun_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    fs::create_dir(&dir).unwrap();
    let content = pseudo_random(0xd15c, CONTENT);
    fs::write(dir.join("big.bin"), &content).unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("disk"), DISK);
    let filler = disk.0.join("filler");
    fs::write(&filler, vec![1u8; FILLER]).unwrap();
    let target = disk.0.join("big.bin");
    let t = target.to_str().unwrap();
    let relay = Relay::start(&[]);
    let _node = Node::start(&relay, &dir, &[]).until_indexed();

    for sources in ["1", "4"] {
        let run = fetch(&relay, &["big.bin", "-o", t, "--sources", sources]);
        // 2: the output failed (docs: exit status).
        assert_eq!(run.code(), 2, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot write big.bin: no space left on device"),
            "the cause is not named: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("interrupted at ")
                && run.stderr.contains("run the same command to resume"),
            "{}",
            run.stderr
        );
        assert!(!target.exists());
        let (part, rec) = part::paths(&target).unwrap();
        let kept = fs::metadata(&part).unwrap().len();
        assert!(kept > 0 && rec.exists(), "the part is not kept");

        fs::remove_file(&filler).unwrap();
        let run = fetch(&relay, &["big.bin", "-o", t, "--sources", sources]);
        assert_eq!(run.code(), 0, "{}", run.stderr);
        assert!(run.stderr.contains("resuming at "), "{}", run.stderr);
        assert!(fs::read(&target).unwrap() == content, "the file differs");
        assert!(!part.exists() && !rec.exists());

        // Full again for the next round.
        fs::remove_file(&target).unwrap();
        fs::write(&filler, vec![1u8; FILLER]).unwrap();
    }
}
