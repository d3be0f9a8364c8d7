use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use net::exchange::Timeouts;
use peer_client::cli::Cli;
use peer_client::dht_source::DhtSettings;
use peer_client::{EXIT_USAGE, Relay, Session, Task, report::Report};
use plumbing::logging::Delivery;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // `peer-client 'p2p-share:?...'`: a link alone needs no relay.
    if let Err(e) = peer_client::link::link_alone(&mut cli) {
        e.exit();
    }
    // Direct, not queued as in the relay and the node. The client's stderr
    // is its user's screen: beside its few log lines it carries the results
    // (report.rs: which node served, what was missing, errors) and the
    // prompt, written straight. A queued warning could show up after the
    // status line that followed it, or after the next prompt, and a line
    // dropped from a full queue would be a result the user never sees. A
    // client whose stderr stops being read just waits, as it would on its
    // stdout; unlike a server, nobody else waits for it.
    let _log = cli.log.init(tracing::Level::WARN, Delivery::Direct);
    // Ctrl-C or SIGTERM in the middle of a transfer: a save keeps its
    // verified part for the next run, which resumes it, and says so; the
    // shell's prompt starts on a fresh line. (At the line-editing prompt
    // Ctrl-C is a key, not a signal: it only drops the line being typed.)
    // The exit status names the signal, 128+N as shells and curl give it:
    // 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
    let _ = peer_client::signals::on_termination(|signal| {
        let kept = peer_client::output::keep_partial_files();
        if std::io::stderr().is_terminal() {
            peer_client::report::stderr_line("");
        }
        for line in kept {
            peer_client::report::stderr_line(line);
        }
        plumbing::logging::exit(128 + signal);
    });
    let keys = match cli.secret.keys() {
        Ok(keys) => keys,
        Err(why) => {
            peer_client::report::stderr_line(format!("error: {why}"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if cli.show_relay_key {
        return match &keys {
            Some(keys) => {
                println!("{}", keys.relay.to_hex());
                ExitCode::SUCCESS
            }
            None => {
                peer_client::report::stderr_line(
                    "error: --show-relay-key needs the secret (--secret, --secret-file or P2P_SECRET)",
                );
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    if cli.node.is_some() && keys.is_none() {
        peer_client::report::stderr_line(
            "error: --node pins a node's key, which only a private network has: give the secret too",
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let secret = match cli.secret.secret() {
        Ok(secret) => secret,
        Err(why) => {
            peer_client::report::stderr_line(format!("error: {why}"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let dht = DhtSettings {
        always: cli.dht || !cli.dht_bootstrap.is_empty(),
        never: cli.no_dht,
        bootstrap: cli.dht_bootstrap,
        key: secret.as_deref().map(dht::NetworkKey::from_secret),
        relays: keys.as_ref().map(|k| dht::DhtId::relays(k.relay.bytes())),
    };
    let security = match peer_client::security(keys) {
        Ok(security) => security,
        Err(why) => {
            peer_client::report::stderr_line(format!("error: {why}"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Several names go into a directory, as `cp a b dir/` does.
    if let Some(path) = &cli.output
        && cli.names.len() > 1
        && !path.is_dir()
    {
        peer_client::report::stderr_line(format!(
            "error: with several NAMEs, -o PATH must be a directory, and {} is not",
            path.display()
        ));
        return ExitCode::from(EXIT_USAGE);
    }
    let timeouts = Timeouts {
        connect: cli.connect_timeout,
        io: cli.timeout,
    };
    let relay = Relay {
        host: cli.relay_ip.unwrap_or_default(),
        port: cli.port,
        more: cli.relays,
        answered: Default::default(),
        timeouts,
        security,
        pin: cli.node,
        punch: !cli.no_punch,
    };
    let task = if cli.peers {
        Task::Peers
    } else if cli.list {
        Task::List {
            long: cli.long,
            per_node: cli.per_node,
        }
    } else if let Some(text) = cli.search {
        Task::Search { text }
    } else if cli.names.is_empty() {
        Task::Prompt
    } else {
        Task::Fetch {
            names: cli.names,
            output: cli.output,
        }
    };
    let mut session = Session::new(
        relay,
        timeouts,
        Report {
            quiet: cli.log.quiet,
        },
    )
    .with_sources(cli.sources)
    .with_dht(dht);
    session.no_index = cli.no_index;
    session.no_resume = cli.no_resume;
    session.json = cli.json;
    ExitCode::from(session.run(task))
}
