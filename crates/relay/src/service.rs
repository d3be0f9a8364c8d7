//! How the relay answers each request: registrations (and their heartbeats,
//! checked by dial-back), unregistrations, list queries, the index
//! (catalogs, who-has and search; in a private network the blind index's
//! catalogs, who-has by tag and listing) and, unless relaying is off,
//! control connections and circuits. Everything else is refused plainly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use net::secure::NodeKey;
use net::server::{Handler, Reply, Throttle};
use proto::blind::{BlindCatalogUpdate, BlindTarget};
use proto::{
    CatalogAck, CatalogUpdateLong, ErrorKind, NodeMode, ProtoError, Registered, Registration,
    Request, Response, Target,
};

use crate::blind::BlindIndex;
use crate::catalogs::NotListed;
use crate::circuit::{self, Circuits};
use crate::control::{self, Controls};
use crate::dialback::DialBack;
use crate::index::Index;
use crate::registry::{self, Registry};
use crate::rendezvous::{self, Punches};

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
    index: Indexes,
    policy: Policy,
    /// Refused registrations, logged at most once a second: a flood of
    /// them must not become a flood of log lines.
    refusals: Mutex<Throttle>,
    /// None with `--no-relaying`: no dial-back, no relayed nodes, no circuits.
    relaying: Option<Relaying>,
}

/// The one index a relay keeps: the plain one in the clear; in a private
/// network the blind one, and never the plain one, so no member's client
/// or node ever hands a name or a hash to the relay (docs/PROTOCOL.md,
/// "The blind index").
#[derive(Clone)]
pub enum Indexes {
    Plain(Index),
    Blind(BlindIndex),
}

impl From<Index> for Indexes {
    fn from(index: Index) -> Indexes {
        Indexes::Plain(index)
    }
}

impl From<BlindIndex> for Indexes {
    fn from(index: BlindIndex) -> Indexes {
        Indexes::Blind(index)
    }
}

impl Indexes {
    /// The index as the registry's member (see [`crate::registry::Membership`]).
    pub fn membership(&self) -> std::sync::Arc<dyn crate::registry::Membership> {
        match self {
            Indexes::Plain(i) => std::sync::Arc::new(i.clone()),
            Indexes::Blind(i) => std::sync::Arc::new(i.clone()),
        }
    }

    /// What the index holds, for logs and metrics.
    pub fn stats(&self) -> crate::catalogs::IndexStats {
        match self {
            Indexes::Plain(i) => i.stats(),
            Indexes::Blind(i) => i.stats(),
        }
    }

    fn limits(&self) -> crate::IndexLimits {
        match self {
            Indexes::Plain(i) => i.limits(),
            Indexes::Blind(i) => i.limits(),
        }
    }
}

/// What relaying needs: the dial-back, the relayed nodes' control
/// connections, the circuits through them, and hole punching.
pub struct Relaying {
    pub dialback: DialBack,
    pub controls: Controls,
    pub circuits: Circuits,
    /// None with `--no-punch`: every `Punch` is answered with a circuit.
    pub punches: Option<Punches>,
    /// How long a write to a control connection may wait.
    pub io_timeout: std::time::Duration,
}

impl RelayService {
    /// A relay that lists every registration as it comes (no dial-back) and
    /// never relays: what `--no-relaying` runs. `index` must be the
    /// registry's member (see [`Indexes::membership`]).
    pub fn new(registry: Registry, index: impl Into<Indexes>, policy: Policy) -> RelayService {
        RelayService {
            registry,
            index: index.into(),
            policy,
            refusals: Mutex::default(),
            relaying: None,
        }
    }

    /// Checks registrations by dial-back and relays for nodes that fail it.
    pub fn with_relaying(mut self, relaying: Relaying) -> RelayService {
        self.relaying = Some(relaying);
        self
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
        crate::metrics::refused(crate::metrics::Refusal::Token);
        Some(Response::error(
            ErrorKind::Unauthorized,
            format!("registration refused: {why} (this relay requires --token)"),
        ))
    }

    /// `key`: in a private network, the static key the node's handshake
    /// proved; it is listed with the node.
    fn register(&self, reg: Registration, seen: IpAddr, key: Option<NodeKey>) -> Response {
        if let Some(refusal) = self.check_token(&reg, seen) {
            return refusal;
        }
        if reg.port == 0 {
            return Response::error(ErrorKind::BadRequest, "port 0 cannot be served");
        }
        let (addr, ignored) = self.listed_addr(seen, &reg);
        if let Some(relaying) = &self.relaying
            && let Err(why) = relaying.dialback.check(addr, key)
        {
            tracing::info!("registration of {addr} refused: unreachable: {why}");
            return Response::error(
                ErrorKind::Unreachable,
                format!(
                    "the relay could not connect back to {addr} ({why}), so clients could \
                     not either; not listed (a peer-node then asks to be relayed)"
                ),
            );
        }
        let joined =
            match self
                .registry
                .register_as(addr, seen, NodeMode::Direct, key, Instant::now())
            {
                Ok(registry::Registered::Joined { evicted }) => {
                    if let Some(gone) = evicted {
                        tracing::warn!(
                            "node evicted: {gone}, to make room for {addr} in the full table \
                         (its address held the most entries)"
                        );
                    }
                    tracing::info!("node joined: {addr} ({} active)", self.registry.len());
                    true
                }
                Ok(registry::Registered::Refreshed) => {
                    tracing::debug!("node refreshed: {addr}");
                    false
                }
                Err(refused) => return self.refuse(addr, seen, refused),
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

    /// The answer to a registration the table has no room for, logged
    /// at most once a second with a count.
    fn refuse(&self, addr: SocketAddr, seen: IpAddr, refused: registry::Refused) -> Response {
        crate::metrics::refused(match refused {
            registry::Refused::TooManyFromSource { .. } => crate::metrics::Refusal::NodesPerAddress,
            registry::Refused::TableFull => crate::metrics::Refusal::TableFull,
        });
        let why = match refused {
            registry::Refused::TooManyFromSource { limit } => format!(
                "too many nodes registered from {seen} (limit {limit} per address, \
                 relay --max-nodes-per-ip)"
            ),
            registry::Refused::TableFull => format!(
                "relay table is full ({} nodes) and no address holds more entries than {seen}",
                self.registry.len()
            ),
        };
        let due = self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note();
        if let Some(n) = due {
            tracing::warn!("refused {n} registration(s); latest: node {addr}: {why}");
        }
        Response::error(ErrorKind::Busy, why)
    }

    /// `key`: in a private network, the caller's proven static key; only
    /// the node listed with that key may drop its entry.
    fn unregister(&self, reg: Registration, seen: IpAddr, key: Option<NodeKey>) -> Response {
        if let Some(refusal) = self.check_token(&reg, seen) {
            return refusal;
        }
        let (addr, _) = self.listed_addr(seen, &reg);
        if let Some(listed) = self.registry.key_of(addr)
            && Some(listed) != key
        {
            tracing::warn!("{seen}: unregister of {addr} refused: not the key it is listed with");
            return Response::error(
                ErrorKind::Unauthorized,
                format!("{addr} is listed with another key: only that node may unregister it"),
            );
        }
        if let Some(relaying) = &self.relaying {
            relaying.dialback.forget(addr);
        }
        if self.registry.unregister(addr) {
            tracing::info!("node left: {addr} ({} active)", self.registry.len());
        } else {
            tracing::debug!("unregister of {addr}, which was not listed");
        }
        Response::Unregistered
    }
}

/// What the log and the seq rule need from a catalog update, plain or
/// blind.
struct UpdateSummary {
    base_seq: u64,
    seq: u64,
    reset: bool,
    added: usize,
    removed: usize,
}

impl RelayService {
    /// A node's catalog, plain or blind: the same token, key and address
    /// rules, the same seq rule and log; `apply` puts it in the index.
    /// `key`: in a private network, the caller's proven static key; only
    /// the node listed with that key may change its catalog.
    fn catalog(
        &self,
        registration: &Registration,
        update: UpdateSummary,
        seen: IpAddr,
        key: Option<NodeKey>,
        apply: impl FnOnce(SocketAddr) -> Result<CatalogAck, NotListed>,
    ) -> Response {
        if let Some(refusal) = self.check_token(registration, seen) {
            return refusal;
        }
        let (addr, _) = self.listed_addr(seen, registration);
        if let Some(listed) = self.registry.key_of(addr)
            && Some(listed) != key
        {
            tracing::warn!("{seen}: catalog of {addr} refused: not the key it is listed with");
            return Response::error(
                ErrorKind::Unauthorized,
                format!("{addr} is listed with another key: only that node may send its catalog"),
            );
        }
        // A node past its TTL must not update a catalog about to go.
        log_expired(&self.registry.expire(Instant::now()));
        match apply(addr) {
            Ok(ack) if ack.seq != update.seq => {
                tracing::info!(
                    "catalog of {addr}: update {} after {} does not follow {}; asking for all of it",
                    update.seq,
                    update.base_seq,
                    ack.seq
                );
                Response::CatalogAck(ack)
            }
            Ok(ack) if !update.reset && update.added == 0 && update.removed == 0 => {
                // The node's periodic check that the relay is in step.
                tracing::debug!("catalog of {addr}: in step at seq {}", ack.seq);
                Response::CatalogAck(ack)
            }
            Ok(ack) => {
                tracing::info!(
                    "catalog of {addr}: {}+{} -{}, {} files indexed (seq {})",
                    if update.reset { "reset, " } else { "" },
                    update.added,
                    update.removed,
                    ack.files,
                    ack.seq
                );
                if ack.refused > 0 {
                    let limits = self.index.limits();
                    tracing::warn!(
                        "catalog of {addr}: {} entries not indexed (limits: {} files per node, \
                         {} in the index, names up to {} bytes, {} MiB of records)",
                        ack.refused,
                        limits.node_files,
                        limits.entries,
                        limits.name_len,
                        limits.record_bytes >> 20
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

    fn plain_catalog(
        &self,
        update: CatalogUpdateLong,
        seen: IpAddr,
        key: Option<NodeKey>,
    ) -> Response {
        let Indexes::Plain(index) = &self.index else {
            return blind_only();
        };
        let summary = UpdateSummary {
            base_seq: update.base_seq,
            seq: update.seq,
            reset: update.reset,
            added: update.added.len(),
            removed: update.removed.len(),
        };
        self.catalog(&update.registration, summary, seen, key, |addr| {
            index.apply(addr, &update)
        })
    }

    fn blind_catalog(
        &self,
        update: BlindCatalogUpdate,
        seen: IpAddr,
        key: Option<NodeKey>,
    ) -> Response {
        let Indexes::Blind(index) = &self.index else {
            return plain_only();
        };
        let summary = UpdateSummary {
            base_seq: update.base_seq,
            seq: update.seq,
            reset: update.reset,
            added: update.added.len(),
            removed: update.removed.len(),
        };
        self.catalog(&update.registration, summary, seen, key, |addr| {
            index.apply(addr, &update)
        })
    }
}

/// The answer to a plain index request at a private network's relay: it
/// keeps only the blind index, so no name or hash is ever sent to it.
fn blind_only() -> Response {
    Response::error(
        ErrorKind::BadRequest,
        "this relay keeps only a blind index (a private network): names and hashes are never \
         sent to it (this program predates the blind index)",
    )
}

/// The answer to a blind index request at a relay in the clear.
fn plain_only() -> Response {
    Response::error(
        ErrorKind::BadRequest,
        "this relay keeps a plain index (no secret): the blind index belongs to a private network",
    )
}

impl Handler for RelayService {
    fn role(&self) -> &'static str {
        "relay"
    }

    fn handle(&self, request: Request, reply: &mut Reply<'_>) -> Result<(), ProtoError> {
        let seen = reply.peer().ip();
        let response = match request {
            Request::Register(reg) => self.register(reg, seen, reply.peer_key()),
            Request::Unregister(reg) => self.unregister(reg, seen, reply.peer_key()),
            Request::ListNodes => {
                let (answer, expired) = self.registry.list_answer(Instant::now())?;
                log_expired(&expired);
                tracing::info!("{}: listed {} active nodes", reply.peer(), answer.count);
                return reply.send_encoded(&answer.frame);
            }
            Request::Catalog(update) => self.plain_catalog(update.into(), seen, reply.peer_key()),
            Request::CatalogLong(update) => self.plain_catalog(update, seen, reply.peer_key()),
            Request::BlindCatalog(update) => self.blind_catalog(update, seen, reply.peer_key()),
            Request::WhoHas(target) => {
                let Indexes::Plain(index) = &self.index else {
                    return reply.send(&blind_only());
                };
                log_expired(&self.registry.expire(Instant::now()));
                let list = index.who_has(&target);
                tracing::info!(
                    "{}: who has {}: {} of {} nodes",
                    reply.peer(),
                    shown(&target),
                    list.holders.len(),
                    list.nodes
                );
                Response::Holders(list)
            }
            Request::WhoHasLong(target) => {
                let Indexes::Plain(index) = &self.index else {
                    return reply.send(&blind_only());
                };
                log_expired(&self.registry.expire(Instant::now()));
                let list = index.who_has_long(&target);
                let hashing = list.holders.iter().filter(|h| h.hash.is_none()).count();
                tracing::info!(
                    "{}: who has {}: {} of {} nodes{}",
                    reply.peer(),
                    shown(&target),
                    list.holders.len(),
                    list.nodes,
                    if hashing > 0 {
                        format!(" ({hashing} still hashing it)")
                    } else {
                        String::new()
                    }
                );
                Response::HoldersLong(list)
            }
            Request::Search(query) => {
                let Indexes::Plain(index) = &self.index else {
                    return reply.send(&blind_only());
                };
                log_expired(&self.registry.expire(Instant::now()));
                let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
                let found = index.search(&query.text, limit);
                tracing::info!(
                    "{}: search {:?}: {} results{}",
                    reply.peer(),
                    query.text.escape_debug().to_string(),
                    found.hits.len(),
                    if found.truncated { " (cut)" } else { "" }
                );
                Response::SearchResults(found)
            }
            Request::BlindWhoHas(target) => {
                let Indexes::Blind(index) = &self.index else {
                    return reply.send(&plain_only());
                };
                log_expired(&self.registry.expire(Instant::now()));
                let list = index.who_has(&target);
                // Tags only: the relay has nothing else to log.
                let what = match &target {
                    BlindTarget::Name(tag) => format!("name tag {}", tag.short()),
                    BlindTarget::Content(tag) => format!("content tag {}", tag.short()),
                };
                tracing::info!(
                    "{}: who has {what}: {} of {} nodes",
                    reply.peer(),
                    list.holders.len(),
                    list.nodes
                );
                Response::BlindHolders(list)
            }
            Request::BlindList(page) => {
                let Indexes::Blind(index) = &self.index else {
                    return reply.send(&plain_only());
                };
                log_expired(&self.registry.expire(Instant::now()));
                let answer = index.page(&page);
                tracing::info!(
                    "{}: list from {}: {} records{}",
                    reply.peer(),
                    page.cursor,
                    answer.hits.len(),
                    match answer.next {
                        Some(next) => format!(", next {next}"),
                        None => String::new(),
                    }
                );
                Response::SealedPage(answer)
            }
            Request::ListNodesLong => {
                let (answer, expired) = self.registry.list_long_answer(Instant::now())?;
                log_expired(&expired);
                tracing::info!("{}: listed {} active nodes", reply.peer(), answer.count);
                return reply.send_encoded(&answer.frame);
            }
            // Any server of the protocol answers a hello.
            Request::Hello => Response::Hello,
            Request::Control(reg) => return self.control(reg, false, reply),
            Request::ControlPunch(reg) => return self.control(reg, true, reply),
            Request::Punch(node) => match &self.relaying {
                Some(r) => return rendezvous::punch(r, node, reply),
                None => not_relaying(),
            },
            Request::JoinPunch(id) => match self.relaying.as_ref().and_then(|r| r.punches.as_ref())
            {
                Some(punches) => return rendezvous::join(punches, id, reply),
                None => Response::error(
                    ErrorKind::Forbidden,
                    "this relay does not punch (it runs with --no-punch or --no-relaying)",
                ),
            },
            Request::ListPunchable => match &self.relaying {
                Some(r) => {
                    let nodes = self.registry.nodes(Instant::now());
                    let answer = rendezvous::punchable(r, nodes, seen);
                    if let Response::Nodes(n) = &answer {
                        tracing::info!("{}: listed {} punchable nodes", reply.peer(), n.len());
                    }
                    answer
                }
                None => Response::Nodes(Vec::new()),
            },
            Request::OpenCircuit(node) => match &self.relaying {
                Some(r) => return circuit::open(&r.circuits, &r.controls, node, reply),
                None => not_relaying(),
            },
            Request::JoinCircuit(id) => match &self.relaying {
                Some(r) => return circuit::join(&r.circuits, id, reply),
                None => not_relaying(),
            },
            Request::Keepalive => Response::error(
                ErrorKind::BadRequest,
                "a keepalive belongs on a control connection (send Control first)",
            ),
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

impl RelayService {
    /// A node's control connection: checked like a registration, then kept
    /// for as long as the node stays (see [`control`]). `punch`: it came as
    /// `ControlPunch`, so the node may be asked to punch if the relay does.
    fn control(
        &self,
        reg: Registration,
        punch: bool,
        reply: &mut Reply<'_>,
    ) -> Result<(), ProtoError> {
        let node = reply.peer();
        if let Some(refusal) = self.check_token(&reg, node.ip()) {
            return reply.send(&refusal);
        }
        let Some(relaying) = &self.relaying else {
            tracing::info!("{node}: control connection refused: relaying is off");
            return reply.send(&not_relaying());
        };
        let key = reply.peer_key();
        control::serve(
            reply.stream(),
            node,
            key,
            punch && relaying.punches.is_some(),
            &self.registry,
            &relaying.controls,
            relaying.io_timeout,
        )
    }
}

/// A who-has target for the log.
fn shown(target: &Target) -> String {
    match target {
        Target::Name(name) => name.escape_debug().to_string(),
        Target::Hash(hash) => format!("blake3:{}", hash.short()),
    }
}

fn not_relaying() -> Response {
    Response::error(
        ErrorKind::Forbidden,
        "this relay does not relay (it runs with --no-relaying)",
    )
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
        let index = Indexes::Plain(Index::new(Default::default()));
        let registry = Registry::with_membership(
            std::time::Duration::from_secs(30),
            Default::default(),
            Some(index.membership()),
        );
        RelayService::new(registry, index, policy)
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
