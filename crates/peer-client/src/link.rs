//! Links in the client: what a typed word asks for (a name, a `blake3:`
//! hash or a `p2p-share:?` link), the relays a link brings, and the links
//! printed by `--list --long` and after a fetch.
//!
//! A link is a fetch by hash with hints (the text itself is parsed in
//! `proto::link`):
//! - its relays (`tr`) are added after the command line's, as more
//!   `--relay`s, for the rest of the session; with none given on the
//!   command line, the link's first relay is asked first;
//! - with no relay at all, or none reachable, the hash goes to the DHT, as
//!   a `blake3:` fetch does (crate::dht_source);
//! - its name (`dn`) is what `-o DIR/` saves under and what status lines
//!   say; it decides nothing about the bytes, which must hash to `xt`.

use proto::{ContentHash, Link, LinkRelay, Target};

use crate::relay::Relay;

/// What a word typed as NAME asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// How status lines name it and what a save into a directory is
    /// called: the name, the hash as typed, or a link's `dn` (else its
    /// `blake3:` hash).
    pub name: String,
    pub target: Target,
    /// The link it came from, if any.
    pub link: Option<Link>,
    /// For a bare hash saved into a directory: the index's name it was
    /// saved under, which its link then carries.
    pub saved_as: Option<String>,
}

impl Wanted {
    /// Reads a name, a `blake3:` hash or a link. Err: why the hash or the
    /// link is malformed, for one line (a usage error).
    pub fn parse(text: &str) -> Result<Wanted, String> {
        if Link::looks_like(text) {
            let link: Link = text.parse().map_err(|e: proto::LinkError| e.to_string())?;
            let name = match &link.name {
                Some(name) => name.clone(),
                None => format!("blake3:{}", link.hash),
            };
            return Ok(Wanted {
                name,
                target: Target::Hash(link.hash),
                link: Some(link),
                saved_as: None,
            });
        }
        let target = if ContentHash::looks_like(text) {
            Target::Hash(text.parse().map_err(|e| format!("{text}: {e}"))?)
        } else {
            Target::Name(text.to_string())
        };
        Ok(Wanted {
            name: text.to_string(),
            target,
            link: None,
            saved_as: None,
        })
    }

    /// The `dn` a link printed after this fetch carries: the link's, or
    /// the name asked for; for a bare hash, the name it was saved under.
    pub fn display_name(&self) -> Option<&str> {
        match (&self.link, &self.target) {
            (Some(link), _) => link.name.as_deref().or(self.saved_as.as_deref()),
            (None, Target::Name(name)) => Some(name.as_str()),
            (None, Target::Hash(_)) => self.saved_as.as_deref(),
        }
    }
}

/// Whether any relay was given (the positional arguments may be left out
/// when the only NAME is a link).
pub fn has_relay(relay: &Relay) -> bool {
    !relay.host.is_empty()
}

/// Adds the relays `link` names that `relay` does not have yet, after the
/// others (the first of them in front when there were none). Returns how
/// many were added.
pub fn add_relays(relay: &mut Relay, link: &Link) -> usize {
    link.relays
        .iter()
        .filter(|LinkRelay { host, port }| relay.add(host, *port))
        .count()
}

/// `peer-client LINK [LINK...] [-o PATH]`: when the first positional
/// argument is a link, there is no relay (the links' own, else the DHT) and
/// every positional argument must be a link: they are the NAMEs. Otherwise
/// RELAY_PORT must be there and be a port, in clap's words. (clap cannot
/// say "two positionals, or links only", so the port is optional text there
/// and checked here.)
pub fn link_alone(cli: &mut crate::cli::Cli) -> Result<(), clap::Error> {
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    let error = |kind, text: String| crate::cli::Cli::command().error(kind, text);
    let first_is_link = cli.relay_ip.as_deref().is_some_and(Link::looks_like);
    if !first_is_link {
        return match cli.relay_port.as_deref() {
            Some(text) => {
                cli.port = text.parse().map_err(|e| {
                    error(
                        ErrorKind::ValueValidation,
                        format!("invalid value '{text}' for '[RELAY_PORT]': {e}"),
                    )
                })?;
                Ok(())
            }
            None if cli.show_relay_key => Ok(()),
            None => Err(error(
                ErrorKind::MissingRequiredArgument,
                "the following required arguments were not provided:\n  <RELAY_PORT>\n\n\
                 (only p2p-share: links may stand alone, without a relay)"
                    .into(),
            )),
        };
    }
    if cli.peers || cli.list || cli.search.is_some() {
        return Err(error(
            ErrorKind::MissingRequiredArgument,
            "the following required arguments were not provided:\n  <RELAY_PORT>\n\n\
             (--peers, --list and --search ask a relay; a p2p-share: link alone cannot)"
                .into(),
        ));
    }
    let mut names: Vec<String> = cli.relay_ip.take().into_iter().collect();
    names.extend(cli.relay_port.take());
    names.append(&mut cli.names);
    if let Some(other) = names.iter().find(|n| !Link::looks_like(n)) {
        return Err(error(
            ErrorKind::ValueValidation,
            format!(
                "'{other}' is not a p2p-share: link: with no relay (the first argument is a \
                 link), every NAME must be a link; to fetch by name, give RELAY_IP RELAY_PORT \
                 first"
            ),
        ));
    }
    cli.names = names;
    Ok(())
}

/// The relays of this session, as a link names them.
pub fn relays_of(relay: &Relay) -> Vec<LinkRelay> {
    if !has_relay(relay) {
        return Vec::new();
    }
    let mut relays: Vec<LinkRelay> = Vec::new();
    for (host, port) in relay.all() {
        let r = LinkRelay { host, port };
        if !relays.contains(&r) && relays.len() < proto::link::MAX_LINK_RELAYS {
            relays.push(r);
        }
    }
    relays
}

/// The link to a content, printed: its hash, its name (if there is one to
/// give), its size and the relays.
pub fn printed(hash: ContentHash, name: Option<&str>, size: u64, relays: &[LinkRelay]) -> String {
    Link {
        hash,
        // A name a link cannot carry (none, or one longer than a name may
        // be) is left out: the hash is what matters.
        name: name
            .filter(|n| !n.is_empty() && n.len() <= proto::MAX_NAME_LEN && !n.contains('\0'))
            .map(str::to_string),
        size: Some(size),
        relays: relays.to_vec(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::exchange::Timeouts;
    use std::time::Duration;

    const HEX: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    fn relay(host: &str, port: u16) -> Relay {
        Relay {
            host: host.to_string(),
            port,
            more: vec![("b".to_string(), 2)],
            answered: Default::default(),
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                io: Duration::from_secs(1),
            },
            security: net::secure::Security::Plain,
            pin: None,
            punch: true,
        }
    }

    #[test]
    fn a_hash_saved_into_a_directory_carries_the_name_it_was_saved_under() {
        let mut wanted = Wanted::parse(&format!("blake3:{HEX}")).unwrap();
        assert_eq!(wanted.display_name(), None);
        wanted.saved_as = Some("logo.png".into());
        assert_eq!(wanted.display_name(), Some("logo.png"));
        // A link's own name wins over the index's.
        let link = format!("p2p-share:?xt=blake3:{HEX}&dn=mine.png");
        let mut wanted = Wanted::parse(&link).unwrap();
        wanted.saved_as = Some("logo.png".into());
        assert_eq!(wanted.display_name(), Some("mine.png"));
    }

    #[test]
    fn a_word_is_a_name_a_hash_or_a_link() {
        let name = Wanted::parse("docs/a.txt").unwrap();
        assert_eq!(name.target, Target::Name("docs/a.txt".to_string()));
        assert_eq!(name.display_name(), Some("docs/a.txt"));
        let hash = Wanted::parse(&format!("blake3:{HEX}")).unwrap();
        assert!(matches!(hash.target, Target::Hash(_)));
        assert_eq!(hash.display_name(), None);
        let link = Wanted::parse(&format!(
            "p2p-share:?xt=blake3:{HEX}&dn=r%C3%A9sum%C3%A9.pdf"
        ))
        .unwrap();
        assert_eq!(link.target, hash.target);
        assert_eq!(link.name, "résumé.pdf");
        assert_eq!(link.display_name(), Some("résumé.pdf"));
        let bare = Wanted::parse(&format!("p2p-share:?xt=blake3:{HEX}")).unwrap();
        assert_eq!(bare.name, format!("blake3:{HEX}"));
        assert!(Wanted::parse("blake3:12").unwrap_err().contains("64 hex"));
        assert!(
            Wanted::parse("p2p-share:?dn=a")
                .unwrap_err()
                .starts_with("not a p2p-share link")
        );
    }

    #[test]
    fn a_links_relays_come_after_the_command_lines() {
        let link: Link = format!("p2p-share:?xt=blake3:{HEX}&tr=b:2&tr=c:3&tr=a:1")
            .parse()
            .unwrap();
        let mut given = relay("a", 1);
        assert_eq!(add_relays(&mut given, &link), 1);
        assert_eq!(
            given.all(),
            [("a", 1), ("b", 2), ("c", 3)].map(|(h, p)| (h.to_string(), p))
        );
        // No relay on the command line: the link's first is asked first.
        let mut none = relay("", 0);
        none.more.clear();
        assert!(!has_relay(&none));
        assert!(relays_of(&none).is_empty());
        assert_eq!(add_relays(&mut none, &link), 3);
        assert_eq!(
            none.all(),
            [("b", 2), ("c", 3), ("a", 1)].map(|(h, p)| (h.to_string(), p))
        );
        assert_eq!(relays_of(&none), link.relays);
    }

    #[test]
    fn a_printed_link_parses_back() {
        let hash: ContentHash = format!("blake3:{HEX}").parse().unwrap();
        let relays = relays_of(&relay("::1", 7000));
        let text = printed(hash, Some("a b.txt"), 12, &relays);
        assert_eq!(
            text,
            format!("p2p-share:?xt=blake3:{HEX}&dn=a%20b.txt&xl=12&tr=%5B::1%5D:7000&tr=b:2")
        );
        let back = Wanted::parse(&text).unwrap();
        assert_eq!(back.name, "a b.txt");
        assert_eq!(back.link.unwrap().relays, relays);
        assert!(!printed(hash, Some(""), 0, &[]).contains("dn="));
    }
}
