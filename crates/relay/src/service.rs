//! How the relay answers each request: registrations (and their heartbeats),
//! unregistrations, list queries, and the index: catalogs, who-has and
//! search. Everything else is refused plainly.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use proto::server::{Handler, Reply};
use proto::{
    CatalogUpdate, ErrorKind, ProtoError, Registered, Registration, Request, Response, Target,
};

use crate::index::{Index, NotListed};
use crate::registry::{self, Registry};

/// Who may register, and under which address.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// When set, registrations must carry this token.
    pub token: Option<String>,
    /// Honour a host a node advertises even when it differs from the one
    /// the relay sees. Off by default: anyone could list a third party.
    pub trust_advertised: bool,
}

pub struct RelayService {
    registry: Registry,
    index: Index,
    policy: Policy,
}

impl RelayService {
    /// `index` must be the registry's member (see [`crate::registry::Membership`]).
    pub fn new(registry: Registry, index: Index, policy: Policy) -> RelayService {
        RelayService {
            registry,
            index,
            policy,
        }
    }

    /// The address a registration is listed under: the IP the relay sees on
    /// the connection (as BitTorrent trackers do) and the announced port.
    /// Also returns the advertised host when it was not honoured, for the log.
    fn listed_addr(&self, seen: IpAddr, reg: &Registration) -> (SocketAddr, Option<IpAddr>) {
        let (ip, ignored) = match reg.advertised_ip.map(|ip| ip.to_canonical()) {
            Some(adv) if adv != seen && !adv.is_unspecified() => {
                if self.policy.trust_advertised {
                    (adv, None)
                } else {
                    (seen, Some(adv))
                }
            }
            _ => (seen, None),
        };
        (SocketAddr::new(ip, reg.port), ignored)
    }

    /// Refuses a registration whose token does not match, in constant time.
    fn check_token(&self, reg: &Registration, seen: IpAddr) -> Option<Response> {
        let expected = self.policy.token.as_deref()?;
        let given = reg.token.as_deref().unwrap_or("");
        if constant_time_eq::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            return None;
        }
        let why = if reg.token.is_none() {
            "no token"
        } else {
            "wrong token"
        };
        tracing::warn!("{seen}: registration refused: {why}");
        Some(Response::error(
            ErrorKind::Unauthorized,
            format!("registration refused: {why} (this relay requires --token)"),
        ))
    }

    fn register(&self, reg: Registration, seen: IpAddr) -> Response {
        if let Some(refusal) = self.check_token(&reg, seen) {
            return refusal;
        }
        if reg.port == 0 {
            return Response::error(ErrorKind::BadRequest, "port 0 cannot be served");
        }
        let (addr, ignored) = self.listed_addr(seen, &reg);
        let joined = match self.registry.register(addr, Instant::now()) {
            Ok(registry::Registered::Joined) => {
                tracing::info!("node joined: {addr} ({} active)", self.registry.len());
                true
            }
            Ok(registry::Registered::Refreshed) => {
                tracing::debug!("node refreshed: {addr}");
                false
            }
            Err(registry::TableFull) => {
                tracing::warn!("node {addr} refused: table full");
                return Response::error(ErrorKind::Busy, "relay table is full");
            }
        };
        if let Some(adv) = ignored {
            // Once per join, not on every heartbeat.
            let why = format!(
                "{seen} advertised host {adv}; listing it as {addr} instead: only the \
                 connection's own address is trusted (start the relay with \
                 --trust-advertised to honour advertised hosts)"
            );
            if joined {
                tracing::warn!("{why}");
            } else {
                tracing::debug!("{why}");
            }
        }
        Response::Registered(Registered {
            addr,
            ttl_secs: self.registry.ttl_secs(),
        })
    }

    fn unregister(&self, reg: Registration, seen: IpAddr) -> Response {
        if let Some(refusal) = self.check_token(&reg, seen) {
            return refusal;
        }
        let (addr, _) = self.listed_addr(seen, &reg);
        if self.registry.unregister(addr) {
            tracing::info!("node left: {addr} ({} active)", self.registry.len());
        } else {
            tracing::debug!("unregister of {addr}, which was not listed");
        }
        Response::Unregistered
    }
}

impl RelayService {
    fn catalog(&self, update: CatalogUpdate, seen: IpAddr) -> Response {
        if let Some(refusal) = self.check_token(&update.registration, seen) {
            return refusal;
        }
        let (addr, _) = self.listed_addr(seen, &update.registration);
        // A node past its TTL must not update a catalog about to go.
        log_expired(&self.registry.expire(Instant::now()));
        match self.index.apply(addr, &update) {
            Ok(ack) if ack.seq != update.seq => {
                tracing::info!(
                    "catalog of {addr}: update {} after {} does not follow {}; asking for all of it",
                    update.seq,
                    update.base_seq,
                    ack.seq
                );
                Response::CatalogAck(ack)
            }
            Ok(ack) if !update.reset && update.added.is_empty() && update.removed.is_empty() => {
                // The node's periodic check that the relay is in step.
                tracing::debug!("catalog of {addr}: in step at seq {}", ack.seq);
                Response::CatalogAck(ack)
            }
            Ok(ack) => {
                tracing::info!(
                    "catalog of {addr}: {}+{} -{}, {} files indexed (seq {})",
                    if update.reset { "reset, " } else { "" },
                    update.added.len(),
                    update.removed.len(),
                    ack.files,
                    ack.seq
                );
                if ack.refused > 0 {
                    let limits = self.index.limits();
                    tracing::warn!(
                        "catalog of {addr}: {} entries not indexed (limits: {} files per node, \
                         {} in the index, names up to {} bytes)",
                        ack.refused,
                        limits.node_files,
                        limits.entries,
                        limits.name_len
                    );
                }
                Response::CatalogAck(ack)
            }
            Err(NotListed) => {
                tracing::debug!("catalog of {addr}, which is not listed");
                Response::NotFound
            }
        }
    }
}

impl Handler for RelayService {
    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        let seen = reply.peer().ip();
        let response = match request {
            Request::Register(reg) => self.register(reg, seen),
            Request::Unregister(reg) => self.unregister(reg, seen),
            Request::ListNodes => {
                let (answer, expired) = self.registry.list_answer(Instant::now())?;
                log_expired(&expired);
                tracing::info!("{}: listed {} active nodes", reply.peer(), answer.count);
                return reply.send_encoded(&answer.frame);
            }
            Request::Catalog(update) => self.catalog(update, seen),
            Request::WhoHas(target) => {
                log_expired(&self.registry.expire(Instant::now()));
                let list = self.index.who_has(&target);
                let what = match &target {
                    Target::Name(name) => name.escape_debug().to_string(),
                    Target::Hash(hash) => format!("blake3:{}", hash.short()),
                };
                tracing::info!(
                    "{}: who has {what}: {} of {} nodes",
                    reply.peer(),
                    list.holders.len(),
                    list.nodes
                );
                Response::Holders(list)
            }
            Request::Search(query) => {
                log_expired(&self.registry.expire(Instant::now()));
                let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
                let found = self.index.search(&query.text, limit);
                tracing::info!(
                    "{}: search {:?}: {} results{}",
                    reply.peer(),
                    query.text.escape_debug().to_string(),
                    found.hits.len(),
                    if found.truncated { " (cut)" } else { "" }
                );
                Response::SearchResults(found)
            }
            Request::GetFile(_)
            | Request::ListFiles
            | Request::GetRange(_)
            | Request::ListFilesLong => Response::error(
                ErrorKind::BadRequest,
                "this is a relay: ask a peer-node for files",
            ),
        };
        reply.send(&response)
    }
}

/// One log line per expired node.
pub fn log_expired(expired: &[(SocketAddr, std::time::Duration)]) {
    for (addr, silent) in expired {
        tracing::info!("node expired: {addr} (silent for {}s)", silent.as_secs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(advertised: Option<&str>) -> Registration {
        Registration {
            port: 4000,
            advertised_ip: advertised.map(|ip| ip.parse().unwrap()),
            token: None,
        }
    }

    fn service(trust_advertised: bool) -> RelayService {
        let policy = Policy {
            token: None,
            trust_advertised,
        };
        let index = Index::new(Default::default());
        RelayService::new(
            Registry::new(std::time::Duration::from_secs(30)),
            index,
            policy,
        )
    }

    #[test]
    fn lists_the_seen_ip_with_the_announced_port() {
        let seen: IpAddr = "10.0.0.2".parse().unwrap();
        let (addr, ignored) = service(false).listed_addr(seen, &reg(None));
        assert_eq!(addr, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(ignored, None);
    }

    #[test]
    fn an_advertised_host_needs_trust() {
        let seen: IpAddr = "10.0.0.2".parse().unwrap();
        let (addr, ignored) = service(false).listed_addr(seen, &reg(Some("10.9.9.9")));
        assert_eq!(addr, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(ignored, Some("10.9.9.9".parse().unwrap()));
        let (addr, ignored) = service(true).listed_addr(seen, &reg(Some("10.9.9.9")));
        assert_eq!(addr, "10.9.9.9:4000".parse().unwrap());
        assert_eq!(ignored, None);
    }

    #[test]
    fn mapped_and_unspecified_advertised_hosts_are_no_claim() {
        let seen: IpAddr = "10.0.0.2".parse().unwrap();
        let (addr, ignored) = service(false).listed_addr(seen, &reg(Some("::ffff:10.0.0.2")));
        assert_eq!(addr, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(ignored, None);
        let (addr, ignored) = service(false).listed_addr(seen, &reg(Some("0.0.0.0")));
        assert_eq!(addr, "10.0.0.2:4000".parse().unwrap());
        assert_eq!(ignored, None);
    }
}
