//! Command-line pieces every binary shares: server limits, log verbosity and
//! duration parsing, so relay, node and client spell them the same way.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use proto::keys::{self, NetworkKeys};

use crate::secret_file::read_secret_file;

/// Limits of a server (relay or node); see docs/SECURITY.md. The network
/// crate turns them into its `ServerConfig`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Connections served at once; past it a new one gets a `busy` answer.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Connections served at once from one source IP address.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_per_ip: usize,
    /// Seconds a new connection has to deliver its whole request.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub request_timeout: Duration,
    /// Seconds any later read or write may wait for the peer.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub io_timeout: Duration,
}

/// The environment variable that holds a network's secret.
pub const SECRET_ENV: &str = "P2P_SECRET";

/// The name of the secret among systemd's credentials
/// (`LoadCredential=secret:/etc/p2p-share/secret`, contrib/systemd).
pub const SECRET_CREDENTIAL: &str = "secret";

/// A credential systemd passed to this service (`LoadCredential=NAME:...`
/// puts it in `$CREDENTIALS_DIRECTORY/NAME`), if there is one by `name`.
pub fn credential(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty())?;
    let path = std::path::Path::new(&dir).join(name);
    path.exists().then_some(path)
}

/// A private network's secret, for every binary (docs/SECURITY.md).
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Private network: encrypt and authenticate every connection with this
    /// secret (visible in `ps`: prefer --secret-file or P2P_SECRET)
    /// [env: P2P_SECRET]
    // Written out, not clap's `env`: clap would count the variable as a
    // --secret given, which then conflicts with --secret-file, and an empty
    // one as an empty secret; here the file wins and empty means unset.
    #[arg(long, value_name = "SECRET", conflicts_with = "secret_file")]
    pub secret: Option<String>,
    /// Read the secret from PATH (all of it, less one trailing newline).
    /// Without it, a systemd credential named `secret` is read if the
    /// service has one ($CREDENTIALS_DIRECTORY/secret).
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
}

impl SecretArgs {
    /// The secret from --secret, else --secret-file, else the systemd
    /// credential `secret`, else P2P_SECRET; None without any of them
    /// (plain mode). An empty P2P_SECRET counts as unset.
    pub fn secret(&self) -> Result<Option<Vec<u8>>, String> {
        let file = self
            .secret_file
            .clone()
            .or_else(|| credential(SECRET_CREDENTIAL));
        let secret = if let Some(s) = &self.secret {
            s.clone().into_bytes()
        } else if let Some(path) = &file {
            read_secret_file(path).map_err(|e| e.to_string())?
        } else {
            match std::env::var_os(SECRET_ENV) {
                Some(v) if !v.is_empty() => {
                    use std::os::unix::ffi::OsStringExt;
                    v.into_vec()
                }
                _ => return Ok(None),
            }
        };
        keys::check_secret(&secret)?;
        Ok(Some(secret))
    }

    /// Both keys, when a secret was given.
    pub fn keys(&self) -> Result<Option<NetworkKeys>, String> {
        Ok(self.secret()?.map(|s| NetworkKeys::from_secret(&s)))
    }

    /// Like [`SecretArgs::keys`], for a server starting: a weak secret is
    /// said in its log, once, with how to make a good one.
    pub fn keys_warning_if_weak(&self) -> Result<Option<NetworkKeys>, String> {
        Ok(self
            .secret_warning_if_weak()?
            .map(|s| NetworkKeys::from_secret(&s)))
    }

    /// The secret itself, for what derives more than the two keys from it
    /// (the DHT's keyed ids), with the same warning.
    pub fn secret_warning_if_weak(&self) -> Result<Option<Vec<u8>>, String> {
        let secret = self.secret()?;
        if let Some(why) = secret.as_deref().and_then(weak_secret) {
            tracing::warn!("{why}");
        }
        Ok(secret)
    }
}

/// Shortest secret taken without a warning. Anyone who guesses the secret
/// joins the network, and a secret is tried offline against one captured
/// handshake at the speed of BLAKE3: 16 random bytes are out of reach, a
/// word or a short phrase is not.
pub const GOOD_SECRET_LEN: usize = 16;

/// Why `secret` is weak, with how to make a good one; None when it is long
/// enough.
pub fn weak_secret(secret: &[u8]) -> Option<String> {
    (secret.len() < GOOD_SECRET_LEN).then(|| {
        format!(
            "the secret is only {} bytes long: a secret under {GOOD_SECRET_LEN} bytes can be \
             guessed; make a good one with `head -c 32 /dev/urandom | base64 > p2p.secret` \
             and give every program --secret-file p2p.secret",
            secret.len()
        )
    })
}

/// `-v` and `-q`, for every binary.
#[derive(Debug, Clone, Copy, Args)]
pub struct LogArgs {
    /// More detail in the log (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl LogArgs {
    /// Installs logging with `default` as the level when neither flag is
    /// given; keep the guard until `main` returns (`logging::init`).
    pub fn init(
        &self,
        default: tracing::Level,
        delivery: crate::logging::Delivery,
    ) -> crate::logging::Guard {
        crate::logging::init(self.verbose, self.quiet, default, delivery)
    }
}

/// Parses a number of seconds, fractions allowed ("0.5"), into a duration.
pub fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("`{text}` is not a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_under_16_bytes_is_weak() {
        assert!(weak_secret(b"wrong").unwrap().contains("only 5 bytes"));
        assert!(weak_secret(b"fifteen bytes!!").is_some());
        assert_eq!(weak_secret(b"sixteen bytes!!!"), None);
    }

    #[test]
    fn parses_seconds_with_fractions_and_refuses_nonsense() {
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs("30"), Ok(Duration::from_secs(30)));
        for bad in ["", "-1", "0", "nan", "inf", "ten"] {
            assert!(parse_secs(bad).is_err(), "{bad} accepted");
        }
    }
}
