//! The signals that end the client (SIGINT, SIGTERM, SIGHUP), told apart.
//!
//! The exit status names the signal (128+N: 130, 143, 129), as shells and
//! curl give it, so a script can tell Ctrl-C from a `kill` or a closed
//! terminal. `ctrlc` runs one handler for all three without saying which,
//! so this uses `signal-hook`: the signals are only recorded in the handler
//! (async-signal-safe), and a thread of their own runs `then` with the
//! number, where it may take locks and write.
//!
//! One exception: SIGINT during a `get` at the interactive prompt stops
//! that transfer and the prompt goes on ([`crate::interrupt`]).

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Runs `then(signal)` on its own thread when SIGINT, SIGTERM or SIGHUP
/// arrives, except a SIGINT that stopped a `get` at the prompt. `then` is
/// expected to end the process.
pub fn on_termination(then: impl Fn(i32) + Send + 'static) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGINT && crate::interrupt::interrupt() {
                    continue;
                }
                then(signal);
            }
        })?;
    Ok(())
}
