//! Holders come from sources. A source names candidate holders of a name
//! or a content, each with the content it says the node has there when it
//! knows it:
//! - the relay's index (who-has, [`of_who_has`]): the holders in order of
//!   registration, each with its version's hash and size (none from a node
//!   still hashing its copy: a file just written, asked for by name), then
//!   the nodes that sent no catalog yet, with none;
//! - the relay's list of active nodes ([`of_nodes`]), against an older
//!   relay or with `--no-index`: every node, holding who knows what.
//!
//! - the DHT ([`Holders::add_found`], `crate::dht_source`): addresses
//!   alone, after the relays' candidates, each reached directly.
//!
//! Another source adds its candidates the same way ([`Holders::add`]);
//! nothing below sees where a candidate came from.
//!
//! [`Holders::attempts`] turns the candidates into the fetches to try in
//! turn: the version of the earliest-registered holder first, from its
//! holders and the nodes nobody vouched for; then each other version; then,
//! for a name, every holder asked by name (a holder that rewrote its file
//! since its last catalog no longer has the version the index names), those
//! still hashing theirs included. The next attempt runs only while nothing
//! has been written.

use std::net::SocketAddr;

use proto::{ContentHash, HolderListLong, NodeInfo, NodeMode, Target};

use crate::fetch::Want;
use crate::report::count;

/// A node a source named as a possible holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its address and how it is reached (directly, or via the relay), and
    /// in a private network the key it must prove.
    pub node: NodeInfo,
    /// The content the source says it holds (hash, size), if it says.
    pub holds: Option<(ContentHash, u64)>,
    /// The source says it holds the name, and has not hashed its copy yet
    /// (`holds` is then None): asked by name like a node nobody vouched
    /// for, and among the holders when every holder is asked by name.
    pub hashing: bool,
}

/// The candidates of one fetch, in the order the sources gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders {
    candidates: Vec<Candidate>,
    /// How many active nodes the sources spoke for: those the relay's index
    /// ruled out count, so that a miss says "not found on any of 3 active
    /// nodes" even when only one node without a catalog was asked.
    active: usize,
}

/// One fetch to try: what it wants and from whom, with the line that says
/// why it is tried, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub note: Option<String>,
    pub want: Want,
    pub nodes: Vec<NodeInfo>,
    /// The active nodes a miss speaks for: at least `nodes`, and every node
    /// the relay's index ruled out.
    pub active: usize,
}

/// The relay index's answer as candidates. `node_of` says how each listed
/// address is reached (directly, or through a circuit at the relay) and,
/// in a private network, the key it must prove: a holder entry names a node
/// by the address it is listed under, as the long node list does. A holder
/// without a hash is still hashing its copy (a file just written).
pub fn of_who_has(list: &HolderListLong, node_of: impl Fn(SocketAddr) -> NodeInfo) -> Holders {
    let mut holders = Holders {
        active: list.nodes as usize,
        ..Holders::default()
    };
    for h in &list.holders {
        holders.add(Candidate {
            node: node_of(h.addr),
            holds: h.hash.map(|hash| (hash, h.size)),
            hashing: h.hash.is_none(),
        });
    }
    for &addr in &list.unindexed {
        holders.add(Candidate {
            node: node_of(addr),
            holds: None,
            hashing: false,
        });
    }
    holders
}

/// Every active node, in the relay's order, as a candidate.
pub fn of_nodes(nodes: &[NodeInfo]) -> Holders {
    let mut holders = Holders {
        active: nodes.len(),
        ..Holders::default()
    };
    for node in nodes {
        holders.add(Candidate {
            node: *node,
            holds: None,
            hashing: false,
        });
    }
    holders
}

impl Holders {
    /// Adds a source's candidate after those already named, unless the
    /// same node (address and key) was named already: a relay that lists
    /// one holder many times must not have it asked many times (each miss
    /// can cost the node's rescan spacing), nor named many times.
    pub fn add(&mut self, candidate: Candidate) {
        let same =
            |c: &Candidate| c.node.addr == candidate.node.addr && c.node.key == candidate.node.key;
        if !self.candidates.iter().any(same) {
            self.candidates.push(candidate);
        }
    }

    /// Adds the holders another source found by address alone (the DHT),
    /// after those already named and once each; the addresses it added
    /// (those no other source had named).
    pub fn add_found(&mut self, addrs: &[SocketAddr]) -> Vec<SocketAddr> {
        let mut added = Vec::new();
        for &addr in addrs {
            if self.candidates.iter().any(|c| c.node.addr == addr) {
                continue;
            }
            self.add(Candidate {
                node: NodeInfo {
                    addr,
                    age_secs: 0,
                    mode: proto::NodeMode::Direct,
                    key: None,
                },
                holds: None,
                hashing: false,
            });
            added.push(addr);
        }
        added
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// How many holders are still hashing their copy (asked by name).
    pub fn hashing(&self) -> usize {
        self.candidates.iter().filter(|c| c.hashing).count()
    }

    /// The fetches to try for `target` (typed as `name`), in turn.
    pub fn attempts(&self, name: &str, target: &Target) -> Vec<Attempt> {
        // Versions in the order of their first holder: hash, size, holders.
        let mut versions: Vec<(ContentHash, u64, Vec<NodeInfo>)> = Vec::new();
        let mut vouched_for_by_none = Vec::new();
        let mut hashing = Vec::new();
        for c in &self.candidates {
            if c.hashing {
                hashing.push(c.node);
            }
            match c.holds {
                None => vouched_for_by_none.push(c.node),
                Some((hash, size)) => match versions.iter_mut().find(|v| v.0 == hash) {
                    Some(version) => version.2.push(c.node),
                    None => versions.push((hash, size, vec![c.node])),
                },
            }
        }
        // Direct holders before relayed ones, each group in the sources'
        // order: a circuit through the relay is the slower way to the same
        // bytes. Relayed holders still join a multi-source fetch after them.
        for version in &mut versions {
            version.2.sort_by_key(|n| n.mode == NodeMode::Relayed);
        }
        vouched_for_by_none.sort_by_key(|n| n.mode == NodeMode::Relayed);
        let want = |expect| Want {
            target: target.clone(),
            expect,
        };
        let Some((first, others)) = versions.split_first() else {
            return vec![Attempt {
                note: None,
                want: want(None),
                active: self.active.max(vouched_for_by_none.len()),
                nodes: vouched_for_by_none,
            }];
        };
        let (hash, size, nodes) = first;
        let first_nodes: Vec<NodeInfo> =
            nodes.iter().chain(&vouched_for_by_none).copied().collect();
        let mut attempts = vec![Attempt {
            note: others_note(name, *hash, others),
            want: want(Some((*hash, *size))),
            active: self.active.max(first_nodes.len()),
            nodes: first_nodes,
        }];
        // No holder of that version could serve it, and nothing was
        // written: the next version, in the order of first holders.
        for (hash, size, nodes) in others {
            attempts.push(Attempt {
                note: Some(format!(
                    "{name}: trying the next version, blake3:{}",
                    hash.short()
                )),
                want: want(Some((*hash, *size))),
                active: self.active.max(nodes.len()),
                nodes: nodes.clone(),
            });
        }
        // The index lags a file rewritten since its node's last catalog:
        // every holder then answers not-found for the version the index
        // names. Nothing was written, so the holders are asked by name;
        // each answer proves its own content.
        if matches!(target, Target::Name(_)) {
            let mut holders = nodes.clone();
            for node in others.iter().flat_map(|o| &o.2).chain(&hashing) {
                if !holders.iter().any(|h| h.addr == node.addr) {
                    holders.push(*node);
                }
            }
            attempts.push(Attempt {
                note: Some(format!(
                    "{name}: no holder has the version the relay's index names any more; \
                     asking them by name"
                )),
                want: want(None),
                active: self.active.max(holders.len()),
                nodes: holders,
            });
        }
        attempts
    }
}

/// The note about other versions, if any: how to get each.
fn others_note(
    name: &str,
    fetched: ContentHash,
    others: &[(ContentHash, u64, Vec<NodeInfo>)],
) -> Option<String> {
    if others.is_empty() {
        return None;
    }
    let list: Vec<String> = others
        .iter()
        .map(|(hash, size, nodes)| {
            format!(
                "blake3:{hash} ({size} bytes, {})",
                count(nodes.len(), "node")
            )
        })
        .collect();
    Some(format!(
        "{name}: fetched the version of the earliest-registered holder (blake3:{}); other \
         versions exist, fetch one by its hash: {}",
        fetched.short(),
        list.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::HolderLong;

    fn holder(port: u16, h: u8) -> HolderLong {
        HolderLong {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            name: "a".into(),
            size: u64::from(h),
            hash: Some(ContentHash([h; 32])),
        }
    }

    /// A node that holds the name and has not hashed it yet.
    fn hashing(port: u16) -> HolderLong {
        HolderLong {
            hash: None,
            size: 32 << 20,
            ..holder(port, 0)
        }
    }

    fn node(addr: SocketAddr, mode: NodeMode) -> NodeInfo {
        NodeInfo {
            addr,
            age_secs: 0,
            mode,
            key: None,
        }
    }

    fn ports(nodes: &[NodeInfo]) -> Vec<u16> {
        nodes.iter().map(|n| n.addr.port()).collect()
    }

    fn who_has(holders: Vec<HolderLong>, unindexed: &[u16]) -> HolderListLong {
        HolderListLong {
            nodes: 9,
            holders,
            unindexed: unindexed
                .iter()
                .map(|&p| SocketAddr::from(([127, 0, 0, 1], p)))
                .collect(),
            truncated: false,
        }
    }

    #[test]
    fn the_earliest_holders_version_comes_first_then_the_others_then_by_name() {
        let relayed_3 = |a: SocketAddr| match a.port() {
            3 => node(a, NodeMode::Relayed),
            _ => node(a, NodeMode::Direct),
        };
        let list = who_has(
            vec![holder(1, 2), holder(2, 3), holder(3, 2), holder(4, 3)],
            &[5],
        );
        let name = Target::Name("a".into());
        let attempts = of_who_has(&list, relayed_3).attempts("a", &name);
        assert_eq!(attempts.len(), 3);
        // The first version, from its holders and then the unindexed node.
        let first = &attempts[0];
        assert_eq!(first.want.expect, Some((ContentHash([2; 32]), 2)));
        assert_eq!(ports(&first.nodes), [1, 3, 5]);
        let modes: Vec<NodeMode> = first.nodes.iter().map(|n| n.mode).collect();
        assert_eq!(
            modes,
            [NodeMode::Direct, NodeMode::Relayed, NodeMode::Direct]
        );
        let note = first.note.as_deref().unwrap();
        assert!(
            note.contains(&format!("blake3:{}", ContentHash([3; 32]))),
            "{note}"
        );
        assert!(note.contains("2 nodes"), "{note}");
        // The other version.
        assert_eq!(attempts[1].want.expect, Some((ContentHash([3; 32]), 3)));
        assert_eq!(ports(&attempts[1].nodes), [2, 4]);
        // Every holder by name, the unindexed node aside.
        assert_eq!(attempts[2].want.expect, None);
        assert_eq!(ports(&attempts[2].nodes), [1, 3, 2, 4]);
    }

    #[test]
    fn unvouched_nodes_alone_are_one_attempt_by_what_was_typed() {
        let hash = Target::Hash(ContentHash([7; 32]));
        let direct = |a| node(a, NodeMode::Direct);
        let attempts = of_who_has(&who_has(vec![], &[8, 9]), direct).attempts("x", &hash);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].want.expect, None);
        assert_eq!(attempts[0].note, None);
        assert_eq!(ports(&attempts[0].nodes), [8, 9]);
        // A miss speaks for the nine active nodes, not the two asked: the
        // index ruled out the other seven.
        assert_eq!(attempts[0].active, 9);
        // A single version by hash: no by-name attempt after it.
        let list = who_has(vec![holder(1, 7)], &[]);
        assert_eq!(of_who_has(&list, direct).attempts("x", &hash).len(), 1);
        assert!(of_who_has(&who_has(vec![], &[]), direct).is_empty());
    }

    #[test]
    fn direct_holders_come_before_relayed_ones() {
        let relayed_low = |a: SocketAddr| match a.port() {
            1 | 2 => node(a, NodeMode::Relayed),
            _ => node(a, NodeMode::Direct),
        };
        let list = who_has(vec![holder(1, 2), holder(2, 2), holder(3, 2)], &[]);
        let name = Target::Name("a".into());
        let attempts = of_who_has(&list, relayed_low).attempts("a", &name);
        assert_eq!(ports(&attempts[0].nodes), [3, 1, 2]);
    }

    #[test]
    fn a_holder_listed_many_times_is_one_candidate() {
        let direct = |a| node(a, NodeMode::Direct);
        let list = who_has(vec![holder(1, 2); 1000], &[1, 1]);
        let hash = Target::Hash(ContentHash([2; 32]));
        let attempts = of_who_has(&list, direct).attempts("x", &hash);
        assert_eq!(attempts.len(), 1);
        assert_eq!(ports(&attempts[0].nodes), [1]);
    }

    #[test]
    fn a_holder_still_hashing_is_asked_by_name_with_the_others() {
        let direct = |a| node(a, NodeMode::Direct);
        let name = Target::Name("a".into());
        // Only a node that has not hashed its new file yet: asked by name.
        let list = who_has(vec![hashing(4)], &[5]);
        let holders = of_who_has(&list, direct);
        assert_eq!(holders.hashing(), 1);
        let attempts = holders.attempts("a", &name);
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].want.expect, None);
        assert_eq!(ports(&attempts[0].nodes), [4, 5]);
        // Beside a hashed version: after its holders, and among the holders
        // asked by name at the end (its copy may be the only one left).
        let list = who_has(vec![hashing(4), holder(1, 2)], &[5]);
        let attempts = of_who_has(&list, direct).attempts("a", &name);
        assert_eq!(ports(&attempts[0].nodes), [1, 4, 5]);
        let last = attempts.last().unwrap();
        assert_eq!(last.want.expect, None);
        assert_eq!(ports(&last.nodes), [1, 4]);
    }
}
