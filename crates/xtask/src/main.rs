//! Project chores, run as `cargo xtask TASK` (the alias is in
//! .cargo/config.toml).
//!
//! - `contrib`: writes the shell completions (bash, zsh, fish) and the man
//!   pages of relay, peer-node and peer-client into contrib/, from their
//!   clap definitions (each crate's `cli.rs`).
//! - `contrib --check`: says which of those files are stale, exit 1 if any.
//!   The test `contrib::tests::contrib_is_current` does the same in
//!   `cargo test`.
//!
//! An xtask rather than a hidden subcommand of each program: the generators
//! (clap_complete, clap_mangen) stay out of the binaries people run, and
//! one command writes all three programs' files.

mod contrib;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let root = contrib::workspace_root();
    match args.as_slice() {
        ["contrib"] => match contrib::write(&root) {
            Ok(written) => {
                for path in written {
                    println!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask: {e}");
                ExitCode::FAILURE
            }
        },
        ["contrib", "--check"] => match contrib::stale(&root) {
            Ok(stale) if stale.is_empty() => {
                println!("contrib/ is current");
                ExitCode::SUCCESS
            }
            Ok(stale) => {
                for path in stale {
                    eprintln!("stale: {}", path.display());
                }
                eprintln!("run `cargo xtask contrib` and commit the result");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("xtask: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask contrib [--check]");
            ExitCode::from(2)
        }
    }
}
