//! The files in contrib/completions and contrib/man, made from the clap
//! definitions of the three programs.

use std::io;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// The workspace root: two levels above this crate.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Each program's command, as its `--help` shows it.
fn programs() -> Vec<Command> {
    vec![
        relay::cli::Cli::command(),
        peer_node::cli::Cli::command(),
        peer_client::cli::Cli::command(),
    ]
}

/// Every generated file: its path under the root, and its bytes.
pub fn files() -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for command in programs() {
        let name = command.get_name().to_string();
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut bytes = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), &name, &mut bytes);
            files.push((Path::new("contrib/completions").join(file), bytes));
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut page)?;
        files.push((
            Path::new("contrib/man/man1").join(format!("{name}.1")),
            page,
        ));
    }
    Ok(files)
}

/// Writes every file under `root`; returns their paths.
pub fn write(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (path, bytes) in files()? {
        let full = root.join(&path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&full, bytes)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", full.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// The files under `root` that differ from what would be written now (or
/// are missing).
pub fn stale(root: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(files()?
        .into_iter()
        .filter(|(path, bytes)| std::fs::read(root.join(path)).ok().as_ref() != Some(bytes))
        .map(|(path, _)| path)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrib_is_current() {
        let stale = stale(&workspace_root()).unwrap();
        assert!(
            stale.is_empty(),
            "stale in contrib/: {stale:?}; run `cargo xtask contrib` and commit the result"
        );
    }

    #[test]
    fn every_program_gets_three_completions_and_a_man_page() {
        let files = files().unwrap();
        assert_eq!(files.len(), 12);
        let relay_page = &files
            .iter()
            .find(|(p, _)| p.ends_with("relay.1"))
            .unwrap()
            .1;
        let page = String::from_utf8_lossy(relay_page);
        assert!(page.contains("\\-\\-metrics"), "{page}");
        let bash = &files
            .iter()
            .find(|(p, _)| p.ends_with("peer-node.bash"))
            .unwrap()
            .1;
        assert!(String::from_utf8_lossy(bash).contains("--metrics"));
    }
}
