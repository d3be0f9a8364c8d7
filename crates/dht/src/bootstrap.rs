//! Where a DHT node starts: its bootstrap list.
//!
//! A node with no bootstrap nodes named (`--dht` alone) starts from the
//! public routers every BitTorrent client uses (mainline's
//! `DEFAULT_BOOTSTRAP_NODES`). Naming any (`--dht-bootstrap HOST:PORT`,
//! repeatable) replaces them: a closed network or a test names its own and
//! never reaches a public address.
//!
//! Names are resolved here, once, at start, rather than left to mainline
//! (which drops a name that does not resolve without a word): a name with no
//! IPv4 address is reported and skipped, and a list where nothing is left is
//! an error. The DHT is IPv4 only here (mainline does not implement BEP 32).

use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};

/// The bootstrap list of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The public routers (mainline's defaults).
    Public,
    /// Only these `HOST:PORT`s.
    Given(Vec<String>),
    /// Nobody: the first node of a network of its own, which others
    /// bootstrap from (it must be a server, [`crate::NodeConfig::server`]).
    Nobody,
}

impl Bootstrap {
    /// The list given on the command line: the public routers when empty.
    pub fn from_given(given: Vec<String>) -> Bootstrap {
        if given.is_empty() {
            Bootstrap::Public
        } else {
            Bootstrap::Given(given)
        }
    }

    /// The list for a log line: the names given, "the public routers", or
    /// "none".
    pub fn label(&self) -> String {
        match self {
            Bootstrap::Given(names) => names.join(", "),
            Bootstrap::Public => "the public routers".to_string(),
            Bootstrap::Nobody => "none".to_string(),
        }
    }

    /// The public routers' names, for logs and docs.
    pub fn public_names() -> &'static [&'static str] {
        &mainline::DEFAULT_BOOTSTRAP_NODES
    }

    /// Resolves a given list: None for the public routers (left to mainline,
    /// which resolves them itself), else every IPv4 address the names
    /// resolve to, and one line for each name that gave none.
    pub(crate) fn resolve(&self) -> Result<Resolved, String> {
        let names = match self {
            Bootstrap::Given(names) => names,
            Bootstrap::Public | Bootstrap::Nobody => {
                return Ok(Resolved {
                    addrs: (*self == Bootstrap::Nobody).then(Vec::new),
                    skipped: Vec::new(),
                });
            }
        };
        let mut addrs = Vec::new();
        let mut skipped = Vec::new();
        for name in names {
            match name.to_socket_addrs() {
                Ok(found) => {
                    let v4: Vec<SocketAddrV4> = found
                        .filter_map(|a| match a {
                            SocketAddr::V4(a) => Some(a),
                            SocketAddr::V6(_) => None,
                        })
                        .collect();
                    if v4.is_empty() {
                        skipped.push(format!(
                            "bootstrap node {name} has no IPv4 address (the DHT is IPv4 only)"
                        ));
                    }
                    for a in v4 {
                        if !addrs.contains(&a) {
                            addrs.push(a);
                        }
                    }
                }
                Err(e) => skipped.push(format!("cannot resolve bootstrap node {name}: {e}")),
            }
        }
        if addrs.is_empty() {
            return Err(match skipped.as_slice() {
                [one] => one.clone(),
                _ => format!("no bootstrap node could be used: {}", skipped.join("; ")),
            });
        }
        Ok(Resolved {
            addrs: Some(addrs),
            skipped,
        })
    }
}

/// A resolved bootstrap list.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// None: mainline's public routers; empty: nobody.
    pub addrs: Option<Vec<SocketAddrV4>>,
    /// Names that gave no address, each with why.
    pub skipped: Vec<String>,
}

/// Checks `HOST:PORT` (`[V6]:PORT` is refused: IPv4 only) without resolving
/// it, for a command-line parser; the text is kept as given.
pub fn parse_host_port(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not HOST:PORT"))?;
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    if host.contains(':') || host.starts_with('[') {
        return Err(format!("`{text}`: the DHT is IPv4 only"));
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{port}` is not a port (1-65535)"))?;
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_given_means_the_public_routers() {
        assert_eq!(Bootstrap::from_given(Vec::new()), Bootstrap::Public);
        assert!(Bootstrap::Public.resolve().unwrap().addrs.is_none());
        assert!(!Bootstrap::public_names().is_empty());
        assert_eq!(Bootstrap::Nobody.resolve().unwrap().addrs, Some(Vec::new()));
    }

    #[test]
    fn given_names_resolve_to_ipv4_only_and_bad_ones_are_reported() {
        let given = Bootstrap::from_given(vec![
            "127.0.0.1:6881".into(),
            "127.0.0.1:6881".into(),
            "[::1]:6881".into(),
        ]);
        let resolved = given.resolve().unwrap();
        assert_eq!(
            resolved.addrs.unwrap(),
            ["127.0.0.1:6881".parse::<SocketAddrV4>().unwrap()]
        );
        assert_eq!(resolved.skipped.len(), 1, "{:?}", resolved.skipped);
        assert!(resolved.skipped[0].contains("IPv4 only"));

        let none = Bootstrap::from_given(vec!["[::1]:6881".into()]);
        assert!(none.resolve().unwrap_err().contains("[::1]:6881"));
    }

    #[test]
    fn host_port_is_checked_without_resolving() {
        assert_eq!(
            parse_host_port("router.lan:6881").unwrap(),
            "router.lan:6881"
        );
        assert!(parse_host_port("router.lan").is_err());
        assert!(parse_host_port(":6881").is_err());
        assert!(parse_host_port("host:0").is_err());
        assert!(parse_host_port("host:99999").is_err());
        assert!(parse_host_port("[::1]:6881").is_err());
    }
}
