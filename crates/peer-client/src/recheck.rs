//! Kept bytes checked against the content's tree before the rest is
//! fetched: a resumed part's damaged groups are found and fetched again,
//! and only they.
//!
//! The content hash is the root of BLAKE3's tree, cut here at 64 KiB chunk
//! groups. The proof of one group (a one-group `GetRange`) carries the hash
//! pair of every node on the path from the root down to it, and so the
//! hash of every subtree hanging off that path. Hashing a subtree of kept
//! groups locally (with its place in the tree) and comparing settles all of
//! its groups at once. This needs nothing new on the wire, so every node
//! that serves ranges can serve a resume's check.
//!
//! Which groups are asked ([`Recheck::next_probe`]):
//! - first, the missing groups on either side of each run of kept groups:
//!   their paths hang every largest subtree of kept groups (the sibling of
//!   such a subtree is not all kept, so it holds the missing group beside
//!   the run, and the parent is on that group's path). These groups are
//!   fetched anyway: the check costs one exchange per edge, no extra byte;
//! - then, for each subtree that did not match, its first group: that path
//!   hangs its halves, quarters and so on, which are hashed in turn, until
//!   the damage is pinned to single groups. Each such probe fetches one
//!   kept group again (it is written with the verified bytes);
//! - a part that keeps every group is hashed whole against the content
//!   hash first, and asks nothing when it matches.
//!
//! [`Recheck`] is plain data with the part's file to hash from;
//! [`kept_groups`] asks the holders in turn for its proofs
//! ([`crate::verify::group_proof`]) and writes what they prove into the
//! part.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use proto::content::{ByteRange, CHUNK_GROUP, PAIR_LEN};
use proto::{ContentHash, Target};

use crate::dial::Dialer;
use crate::failure::Failed;
use crate::holder::{self, Holder};
use crate::part::{Groups, Part};
use crate::verify::{self, Asked};

/// Bytes read from the part at a time while hashing it.
const READ: usize = 1 << 20;

/// A node of the content's tree: the chunk groups `first..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub first: u64,
    pub end: u64,
}

impl Node {
    /// Its two children, or None for a single group. BLAKE3 gives the left
    /// child the largest power of two of chunks that leaves the right one
    /// at least one; in whole groups that is the largest power of two of
    /// groups below the node's count.
    pub fn split(self) -> Option<(Node, Node)> {
        let count = self.end - self.first;
        if count < 2 {
            return None;
        }
        let left = 1u64 << (63 - (count - 1).leading_zeros());
        let mid = self.first + left;
        Some((
            Node {
                first: self.first,
                end: mid,
            },
            Node {
                first: mid,
                end: self.end,
            },
        ))
    }

    fn contains(self, group: u64) -> bool {
        (self.first..self.end).contains(&group)
    }

    /// Its bytes in a content of `size` bytes.
    pub fn range(self, size: u64) -> ByteRange {
        let offset = self.first * CHUNK_GROUP;
        ByteRange {
            offset,
            len: (self.end * CHUNK_GROUP).min(size) - offset,
        }
    }
}

/// The nodes from the root down to `group`'s parent: those whose hash pair
/// the proof of `group` carries, in its order.
pub fn path(root: Node, group: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut at = root;
    while let Some((left, right)) = at.split() {
        nodes.push(at);
        at = if left.contains(group) { left } else { right };
    }
    nodes
}

/// Why a proof was refused: the holder sent a path that is not the
/// content's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadProof(pub String);

/// What the check came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Kept bytes that matched the tree.
    pub good: u64,
    /// Kept bytes fetched again: damaged groups, and kept groups whose
    /// proof was asked to pin the damage down.
    pub again: u64,
    /// Kept groups that did not match.
    pub damaged: u64,
}

/// The check of a part's kept groups against the content's tree, as data:
/// which group to ask next, and what each proof settles.
pub struct Recheck {
    hash: ContentHash,
    size: u64,
    root: Node,
    /// Kept groups not settled yet (and not under a pending suspect).
    open: Groups,
    /// Kept groups found damaged: to be fetched again.
    damaged: Groups,
    /// Missing groups beside the kept runs, still to be asked.
    edges: Vec<u64>,
    /// Subtrees of kept groups that did not match, with the hash they
    /// should have had; their groups are out of `open` until probed.
    suspects: Vec<Node>,
    tally: Tally,
}

impl Recheck {
    /// The check of `kept` groups of the content `hash` of `size` bytes.
    pub fn new(hash: ContentHash, size: u64, kept: &Groups) -> Recheck {
        let count = size.div_ceil(CHUNK_GROUP).max(1);
        let root = Node {
            first: 0,
            end: count,
        };
        let mut edges = Vec::new();
        for run in kept.runs(size, true) {
            let first = run.offset / CHUNK_GROUP;
            let end = run.end().div_ceil(CHUNK_GROUP);
            if first > 0 && edges.last() != Some(&(first - 1)) {
                edges.push(first - 1);
            }
            if end < count {
                edges.push(end);
            }
        }
        edges.reverse();
        Recheck {
            hash,
            size,
            root,
            open: kept.clone(),
            damaged: Groups::none(size),
            edges,
            suspects: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// The next group whose proof is wanted, or None when every kept group
    /// is settled. A part that keeps all of it is hashed whole first, from
    /// `part`.
    pub fn next_probe(&mut self, part: &File) -> io::Result<Option<u64>> {
        if self.edges.is_empty() && self.all_open(self.root) {
            let whole = hash_of(part, self.root.range(self.size), 0, true)?;
            self.settle(self.root, whole == self.hash.0);
        }
        if let Some(group) = self.edges.pop() {
            return Ok(Some(group));
        }
        Ok(self.suspects.pop().map(|node| {
            // Probed now: its halves are checked as the path passes.
            for g in node.first..node.end {
                self.open.set(g);
            }
            node.first
        }))
    }

    /// Takes the proof of `group` (the hash pairs of [`path`], then the
    /// group's bytes), checks it from the root down, and settles every
    /// subtree of open kept groups that hangs off the path, hashing it from
    /// `part`. Returns the group's bytes, verified: the caller writes them.
    pub fn take<'p>(
        &mut self,
        group: u64,
        proof: &'p [u8],
        part: &File,
    ) -> Result<&'p [u8], TakeError> {
        let nodes = path(self.root, group);
        let pairs_len = nodes.len() * PAIR_LEN;
        let leaf = Node {
            first: group,
            end: group + 1,
        };
        if proof.len() != pairs_len + leaf.range(self.size).len as usize {
            return Err(TakeError::Proof(BadProof(format!(
                "its proof of group {group} has {} bytes, not {}",
                proof.len(),
                pairs_len + leaf.range(self.size).len as usize
            ))));
        }
        let (pairs, bytes) = proof.split_at(pairs_len);
        // First the whole path, so that nothing is settled on a bad proof.
        let mut expected = self.hash.0;
        let mut hung = Vec::new();
        for (node, pair) in nodes.iter().zip(pairs.chunks_exact(PAIR_LEN)) {
            let left: ChainingValue = pair[..32].try_into().unwrap_or_default();
            let right: ChainingValue = pair[32..].try_into().unwrap_or_default();
            let merged = if *node == self.root {
                *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
            } else {
                merge_subtrees_non_root(&left, &right, Mode::Hash)
            };
            if merged != expected {
                return Err(TakeError::Proof(BadProof(format!(
                    "its proof of group {group} does not match blake3 {} at groups {}..{}",
                    self.hash.short(),
                    node.first,
                    node.end
                ))));
            }
            let Some((l, r)) = node.split() else { break };
            if l.contains(group) {
                hung.push((r, right));
                expected = left;
            } else {
                hung.push((l, left));
                expected = right;
            }
        }
        let is_root = leaf == self.root;
        let got = subtree_hash(group * CHUNK_GROUP, bytes, is_root);
        if got != expected {
            return Err(TakeError::Proof(BadProof(format!(
                "group {group} does not match blake3 {}",
                self.hash.short()
            ))));
        }
        for (node, cv) in hung {
            if self.all_open(node) {
                let local = hash_of(part, node.range(self.size), node.first, false)
                    .map_err(TakeError::Part)?;
                self.settle(node, local == cv);
            }
        }
        if self.open.has(group) {
            // A kept group replaced by its proof's bytes: whether it was
            // damaged is only counted.
            let local =
                hash_of(part, leaf.range(self.size), group, is_root).map_err(TakeError::Part)?;
            if local != expected {
                self.tally.damaged += 1;
            }
            self.open.unset(group);
            self.tally.again += bytes.len() as u64;
        }
        Ok(bytes)
    }

    /// Groups found damaged, as ranges to fetch again.
    pub fn damaged(&self) -> Vec<ByteRange> {
        self.damaged.runs(self.size, true)
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    fn all_open(&self, node: Node) -> bool {
        (node.first..node.end).all(|g| self.open.has(g))
    }

    /// A subtree of open groups whose hash was compared: good, damaged
    /// (a single group), or a suspect to probe.
    fn settle(&mut self, node: Node, matched: bool) {
        let bytes = node.range(self.size).len;
        for g in node.first..node.end {
            self.open.unset(g);
        }
        if matched {
            self.tally.good += bytes;
        } else if node.end - node.first == 1 {
            self.damaged.set(node.first);
            self.tally.damaged += 1;
            self.tally.again += bytes;
        } else {
            self.suspects.push(node);
        }
    }
}

/// Why a proof could not be taken.
#[derive(Debug)]
pub enum TakeError {
    /// The holder's proof is not the content's: ask another holder.
    Proof(BadProof),
    /// The part could not be read.
    Part(io::Error),
}

/// Why the kept groups could not be checked before the rest.
#[derive(Debug)]
pub enum Unchecked {
    /// No holder gave the proofs (each one's reason, the last one's here):
    /// the kept bytes are checked once the rest is fetched instead.
    NoProof(String),
    /// The part could not be read or written.
    Part(io::Error),
}

/// Checks the kept groups of `part` (the content `hash` of `size` bytes)
/// against the content's tree, asking `holders` in turn for the proofs: a
/// holder that fails or sends a wrong proof is passed over. Every group a
/// proof carries is written into the part (a missing one is then fetched
/// already); damaged groups are unmarked, to be fetched again. Returns what
/// it came to.
pub fn kept_groups(
    part: &Part,
    hash: ContentHash,
    size: u64,
    holders: &[Holder],
    dialer: &Dialer,
) -> Result<Tally, Unchecked> {
    let Some(kept) = part.groups() else {
        return Ok(Tally::default());
    };
    let mut check = Recheck::new(hash, size, &kept);
    let mut at = 0;
    let mut last = String::from("no holder to ask");
    while let Some(group) = check.next_probe(part.file()).map_err(Unchecked::Part)? {
        loop {
            let Some(holder) = holders.get(at) else {
                return Err(Unchecked::NoProof(last));
            };
            let label = dialer.restate(&holder.label, &holder.node);
            let proof = match ask(holder, dialer, hash, size, group) {
                Ok(proof) => proof,
                Err(failed) => {
                    last = failed.line(&label, size, None);
                    tracing::debug!("the proof of group {group}: {last}");
                    at += 1;
                    continue;
                }
            };
            match check.take(group, &proof, part.file()) {
                Ok(bytes) => {
                    part.write_at(bytes, group * CHUNK_GROUP)
                        .map_err(Unchecked::Part)?;
                    break;
                }
                Err(TakeError::Proof(BadProof(why))) => {
                    last = format!("{label} sent a wrong proof: {why}");
                    tracing::warn!("{last}");
                    at += 1;
                }
                Err(TakeError::Part(e)) => return Err(Unchecked::Part(e)),
            }
        }
    }
    part.unmark(&check.damaged());
    Ok(check.tally().clone())
}

/// One exchange: the proof of `group`, by the content's hash.
fn ask(
    holder: &Holder,
    dialer: &Dialer,
    hash: ContentHash,
    size: u64,
    group: u64,
) -> Result<Vec<u8>, Failed> {
    let mut conn = holder.connect(dialer)?;
    let by = Target::Hash(hash);
    let offset = group * CHUNK_GROUP;
    let header = holder::ask_range(&mut conn, &by, offset, CHUNK_GROUP)?;
    let asked = Asked {
        by: &by,
        offset,
        len: CHUNK_GROUP,
        content: Some((hash, size)),
    };
    verify::check_range(&header, &asked)?;
    verify::group_proof(conn, &header)
}

/// The chaining value of the tree node starting at byte `offset` with these
/// bytes (the content hash itself for the root).
fn subtree_hash(offset: u64, bytes: &[u8], is_root: bool) -> [u8; 32] {
    if is_root {
        return *blake3::hash(bytes).as_bytes();
    }
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(offset);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// The chaining value of `range` of the part (the node whose first group
/// is `first`), read from disk. A part shorter than the range hashes what
/// it holds, which cannot match.
fn hash_of(part: &File, range: ByteRange, first: u64, is_root: bool) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    if !is_root {
        hasher.set_input_offset(first * CHUNK_GROUP);
    }
    let mut buf = vec![0u8; READ.min(range.len as usize).max(1)];
    let mut at = range.offset;
    while at < range.end() {
        let want = buf.len().min((range.end() - at) as usize);
        let n = match part.read_at(&mut buf[..want], at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    if at < range.end() {
        // Cut short: a value no whole subtree can have.
        return Ok([0; 32]);
    }
    Ok(if is_root {
        *hasher.finalize().as_bytes()
    } else {
        hasher.finalize_non_root()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::content::encode_to_vec;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    const G: u64 = CHUNK_GROUP;

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn part_file(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    /// The proof a node sends for `group`: a one-group range's stream.
    fn proof(data: &[u8], group: u64) -> Vec<u8> {
        encode_to_vec(data, group * G, G).unwrap().2
    }

    /// Runs the check to its end as a client would, answering from `data`;
    /// the part afterwards, with the proofs' groups written and the
    /// damaged ones fetched again, must be `data`.
    fn check(data: &[u8], part: &[u8], kept: &Groups) -> (Recheck, Vec<u64>) {
        let size = data.len() as u64;
        let file = part_file(part);
        let mut r = Recheck::new(ContentHash::of(data), size, kept);
        let mut asked = Vec::new();
        while let Some(g) = r.next_probe(&file).unwrap() {
            asked.push(g);
            let p = proof(data, g);
            let bytes = r.take(g, &p, &file).unwrap();
            file.write_all_at(bytes, g * G).unwrap();
        }
        for d in r.damaged() {
            let (from, to) = (d.offset as usize, d.end() as usize);
            file.write_all_at(&data[from..to], d.offset).unwrap();
        }
        let mut after = vec![0; data.len()];
        file.read_exact_at(&mut after, 0).unwrap();
        for run in kept.runs(size, true) {
            let (from, to) = (run.offset as usize, run.end() as usize);
            assert!(
                after[from..to] == data[from..to],
                "a kept range is still wrong"
            );
        }
        (r, asked)
    }

    fn kept(size: u64, ranges: &[(u64, u64)]) -> Groups {
        let mut groups = Groups::none(size);
        for &(first, end) in ranges {
            groups.mark(
                ByteRange {
                    offset: first * G,
                    len: (end * G).min(size) - first * G,
                },
                size,
            );
        }
        groups
    }

    #[test]
    fn the_split_is_blake3s() {
        let split = |first, end| Node { first, end }.split().map(|(l, r)| (l.end, r.end));
        assert_eq!(split(0, 1), None);
        assert_eq!(split(0, 2), Some((1, 2)));
        assert_eq!(split(0, 3), Some((2, 3)));
        assert_eq!(split(0, 4), Some((2, 4)));
        assert_eq!(split(0, 5), Some((4, 5)));
        assert_eq!(split(8, 16), Some((12, 16)));
        // The proof of a group carries exactly the path's pairs.
        for (size, group) in [(5 * G + 3, 4), (16 * G, 9), (G, 0), (7 * G, 2)] {
            let data = content(size as usize);
            let root = Node {
                first: 0,
                end: size.div_ceil(G),
            };
            let leaf = ByteRange::clamp(size, group * G, G).unwrap();
            assert_eq!(
                proof(&data, group).len(),
                path(root, group).len() * PAIR_LEN + leaf.len as usize
            );
        }
    }

    #[test]
    fn a_good_prefix_is_settled_by_the_first_missing_groups_proof() {
        let data = content((20 * G + 100) as usize);
        let size = data.len() as u64;
        let k = kept(size, &[(0, 13)]);
        let (r, asked) = check(&data, &data, &k);
        assert_eq!(asked, vec![13]);
        assert_eq!(
            r.tally(),
            &Tally {
                good: 13 * G,
                again: 0,
                damaged: 0
            }
        );
        assert!(r.damaged().is_empty());
    }

    #[test]
    fn one_damaged_group_is_found_among_scattered_runs() {
        let data = content((40 * G + 5) as usize);
        let size = data.len() as u64;
        let k = kept(size, &[(0, 7), (9, 20), (23, 41)]);
        for bad in [0u64, 3, 6, 9, 15, 19, 23, 31, 40] {
            let mut part = data.clone();
            part[(bad * G) as usize] ^= 1;
            let (r, _) = check(&data, &part, &k);
            let t = r.tally();
            assert!(r.damaged().len() <= 1, "bad {bad}");
            assert_eq!(t.damaged, 1, "bad {bad}");
            let kept_bytes = k.bytes(size);
            // Every kept byte is settled: good, or fetched again.
            assert_eq!(t.good + t.again, kept_bytes, "bad {bad}");
            // Pinning it down costs at most one group per tree level.
            assert!(t.again <= 7 * G, "bad {bad}: {t:?}");
        }
    }

    #[test]
    fn a_whole_part_is_hashed_once_and_asks_nothing_when_good() {
        let data = content((6 * G) as usize);
        let size = data.len() as u64;
        let all = kept(size, &[(0, 6)]);
        let (r, asked) = check(&data, &data, &all);
        assert!(asked.is_empty());
        assert_eq!(r.tally().good, size);
        let mut part = data.clone();
        part[(5 * G + 1) as usize] ^= 4;
        let (r, asked) = check(&data, &part, &all);
        assert!(!asked.is_empty());
        assert_eq!(r.tally().damaged, 1);
        assert_eq!(r.tally().good + r.tally().again, size);
    }

    #[test]
    fn a_short_part_and_a_single_group_content() {
        let data = content((4 * G) as usize);
        let size = data.len() as u64;
        let k = kept(size, &[(0, 3)]);
        // The record says three groups; the part holds two and a half.
        let (r, _) = check(&data, &data[..(2 * G + G / 2) as usize], &k);
        assert_eq!(r.tally().damaged, 1);
        assert_eq!(r.tally().good, 2 * G);
        let one = content(1000);
        let k = kept(1000, &[(0, 1)]);
        let mut part = one.clone();
        part[999] ^= 1;
        let (r, asked) = check(&one, &part, &k);
        assert!(asked.is_empty());
        assert_eq!(
            r.damaged(),
            vec![ByteRange {
                offset: 0,
                len: 1000
            }]
        );
        assert_eq!(r.tally().again, 1000);
    }

    #[test]
    fn a_wrong_proof_is_refused_and_settles_nothing() {
        let data = content((9 * G) as usize);
        let size = data.len() as u64;
        let k = kept(size, &[(0, 5)]);
        let file = part_file(&data);
        let mut r = Recheck::new(ContentHash::of(&data), size, &k);
        let g = r.next_probe(&file).unwrap().unwrap();
        let good = proof(&data, g);
        for i in [0, 40, 64, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert!(matches!(r.take(g, &bad, &file), Err(TakeError::Proof(_))));
        }
        assert!(matches!(
            r.take(g, &good[1..], &file),
            Err(TakeError::Proof(_))
        ));
        assert_eq!(r.tally(), &Tally::default());
        r.take(g, &good, &file).unwrap();
        assert_eq!(r.tally().good, 5 * G);
    }
}
