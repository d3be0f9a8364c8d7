use std::process::ExitCode;

use clap::Parser;
use plumbing::logging::Delivery;

fn main() -> ExitCode {
    let cli = relay::cli::Cli::parse();
    // Queued: a log reader that stops reading must not stop the serving.
    // Kept to the end of main, so that an error logged on the way out is seen.
    let _log = cli.log.init(tracing::Level::INFO, Delivery::Queued);
    let config = match cli.config() {
        Ok(config) => config,
        Err(why) => {
            tracing::error!("{why}");
            return ExitCode::from(2);
        }
    };
    match relay::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", proto::error::describe(e.chain()));
            ExitCode::from(2)
        }
    }
}
