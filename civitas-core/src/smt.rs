//! A compressed sparse Merkle map: the verifiable key → value map behind a ledger `state_root`.
//!
//! The map sends 32-byte keys (see [`map_key`]) to 32-byte value hashes and commits to all of them
//! with one 32-byte root. An inclusion proof ([`MapProof`]) shows that a key maps to a value under
//! a root, e.g. "this entry is the latest for this DID". The server keeps a [`SparseMerkleMap`];
//! clients only need [`verify_map_inclusion`].
//!
//! # Tree shape and hashing (wire format)
//!
//! Conceptually this is a binary tree of depth 256. Bit `d` of the key, counted from the most
//! significant bit of byte 0 (`d = 0`), chooses the left (0) or right (1) child at depth `d`.
//! Subtrees are hashed as follows:
//!
//! - an empty subtree hashes to 32 zero bytes ([`EMPTY_HASH`]); the root of the empty map is
//!   [`EMPTY_HASH`];
//! - a subtree holding exactly one entry is represented by that entry's leaf hash,
//!   `SHA-256(0x02 || key || value)` ([`leaf_hash`]), placed at the top of that subtree (path
//!   compression: a leaf sits at the shallowest depth where it is alone);
//! - a subtree holding two or more entries hashes to `SHA-256(0x03 || left || right)`
//!   ([`node_hash`]), where `left` and `right` are the hashes of its two halves (either may be
//!   [`EMPTY_HASH`]).
//!
//! ```text
//!                 root = node(h0, h1)                 keys: a = 00…, b = 010…, c = 011…, d = 1…
//!                /                   \
//!        h0 = node(leaf(a), h01)    h1 = leaf(d)      d is alone below depth 1, so it sits there
//!          /            \
//!      leaf(a)     h01 = node(leaf(b), leaf(c))
//! ```
//!
//! Two keys sharing a 200-bit prefix produce a chain of internal nodes whose other children are
//! empty, down to depth 200 where they split.
//!
//! # Proofs
//!
//! [`MapProof::siblings`] lists the sibling hashes along the key's path **from the top down**:
//! `siblings[d]` is the hash of the other child of the node at depth `d`, and the leaf sits at
//! depth `siblings.len()`. A verifier starts from the leaf hash and folds the siblings from the
//! last to the first; see [`verify_map_inclusion`].
//!
//! ## Why proofs are sound despite path compression
//!
//! A leaf hash does not commit to the depth of the leaf, so the verifier must make sure the leaf
//! it recomputes really is the entry for `key`:
//!
//! - Leaf and node hashes are domain-separated (`0x02` vs `0x03`, both over 65 bytes), so under
//!   collision resistance every hash the verifier recomputes equals the hash of the real subtree
//!   at the same position, and the final one is a real leaf, not an internal node.
//! - The verifier chooses left or right from the bits of `key` itself, so the leaf it reaches lies
//!   on `key`'s path, and its hash commits to `key` and `value`. An honest tree holds at most one
//!   leaf per key, so no other value can be proved for `key`.
//! - An honest tree never has an internal node with an empty child and a single leaf as its other
//!   child: that subtree holds one entry and must have been collapsed into the leaf. So the
//!   deepest sibling of an honest proof is never [`EMPTY_HASH`], and the verifier rejects such
//!   proofs ([`MapProofError::EmptyDeepestSibling`]). This pins the proof length to the leaf's
//!   actual depth: each `(root, key)` has exactly one accepted proof, which keeps proofs
//!   canonical when they are stored, compared or signed. (Shallower siblings may be empty: that
//!   is the chain of a long shared prefix.)
//! - A proof has at most 256 siblings, the depth of the conceptual tree.
//!
//! # Performance
//!
//! Nodes live in two arenas (`Vec`s) addressed by `u32` indices: one leaf (key and value, 64
//! bytes) per entry, and about 1.44 internal nodes per entry for uniformly random keys. An
//! internal node (84 bytes) stores its two child links and its children's hashes, so hashing a
//! path or building a proof reads only the nodes on the path. That is about 185 bytes per entry,
//! ~185 MB for a million entries.
//!
//! [`SparseMerkleMap::insert`] rehashes only the key's path (one leaf hash plus one node hash
//! per level, depth ≈ log2 n + 1), so [`SparseMerkleMap::root`] is a field read and
//! [`SparseMerkleMap::prove`] hashes nothing. [`Extend`] inserts a batch and then rehashes each
//! touched node once, sharing the upper levels between the keys of the batch.
//! [`SparseMerkleMap::remove`] collapses the path again, so the shape (and root) depends only on
//! the set of entries, never on the order of changes; its freed slots are reused by later
//! inserts.

use std::fmt;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Number of bits in a key, and so the deepest a leaf can sit and the longest a proof can be.
pub const KEY_BITS: usize = 256;

/// The hash of an empty subtree, and the root of the empty map: 32 zero bytes.
pub const EMPTY_HASH: [u8; 32] = [0; 32];

/// Domain-separation tag of leaf hashes.
const LEAF_TAG: u8 = 0x02;

/// Domain-separation tag of internal-node hashes.
const NODE_TAG: u8 = 0x03;

/// Derives a map key: `SHA-256(domain || 0x00 || key)`.
///
/// `domain` names the kind of entry (for example `"civitas/did"`) and must not contain a NUL
/// character, or two different `(domain, key)` pairs could share a preimage.
pub fn map_key(domain: &str, key: &str) -> [u8; 32] {
    debug_assert!(!domain.contains('\0'), "map_key domain contains NUL");
    let mut hasher = Sha256::new();
    hasher.update(domain.as_bytes());
    hasher.update([0x00]);
    hasher.update(key.as_bytes());
    hasher.finalize().into()
}

/// The hash of a leaf: `SHA-256(0x02 || key || value)`.
pub fn leaf_hash(key: &[u8; 32], value: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_TAG]);
    hasher.update(key);
    hasher.update(value);
    hasher.finalize().into()
}

/// The hash of an internal node: `SHA-256(0x03 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([NODE_TAG]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Bit `depth` of `key`, most significant bit of byte 0 first; `true` means right.
///
/// Callers pass `depth < KEY_BITS`; for larger depths this returns `false` instead of panicking.
fn bit(key: &[u8; 32], depth: usize) -> bool {
    key.get(depth / 8)
        .is_some_and(|byte| byte & (0x80 >> (depth % 8)) != 0)
}

/// The index of the first bit where two different keys differ.
fn first_difference(a: &[u8; 32], b: &[u8; 32]) -> usize {
    for (index, (x, y)) in a.iter().zip(b).enumerate() {
        let diff = x ^ y;
        if diff != 0 {
            return index * 8 + diff.leading_zeros() as usize;
        }
    }
    KEY_BITS
}

/// An inclusion proof: the sibling hashes on the path from the root to a leaf.
///
/// `siblings[d]` is the hash of the sibling subtree at depth `d + 1`, that is of the child of the
/// depth-`d` node that is *not* on the key's path, ordered from the top of the tree down. The leaf
/// sits at depth `siblings.len()`; an empty list means the leaf is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapProof {
    /// Sibling hashes from the root downward.
    pub siblings: Vec<[u8; 32]>,
}

/// Why a [`MapProof`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MapProofError {
    /// The proof has more siblings than a key has bits.
    #[error("proof too long: expected at most {max} siblings, found {found}")]
    TooLong {
        /// The limit, [`KEY_BITS`].
        max: usize,
        /// The number of siblings in the proof.
        found: usize,
    },
    /// The deepest sibling is the empty-subtree hash, a shape no honest tree produces (the leaf
    /// would have been stored one level higher).
    #[error(
        "non-canonical proof: expected a non-empty sibling at depth {depth}, found the \
         empty-subtree hash"
    )]
    EmptyDeepestSibling {
        /// Index of the offending sibling in [`MapProof::siblings`].
        depth: usize,
    },
    /// The root recomputed from the key, value and proof differs from the trusted root.
    #[error("root mismatch: expected {}, found {} recomputed from the proof", hex(.expected), hex(.found))]
    RootMismatch {
        /// The trusted root passed to the verifier.
        expected: [u8; 32],
        /// The root recomputed from the proof.
        found: [u8; 32],
    },
}

fn hex(bytes: &[u8; 32]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(64);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Checks that `key` maps to `value` in the map whose root is `root`.
///
/// Recomputes the root from the leaf at depth `proof.siblings.len()`, folding the siblings from
/// the deepest up and placing each on the side opposite to `key`'s bit at that depth.
///
/// # Errors
///
/// [`MapProofError::TooLong`] for more than [`KEY_BITS`] siblings,
/// [`MapProofError::EmptyDeepestSibling`] for a proof no honest tree produces (see the module
/// docs), and [`MapProofError::RootMismatch`] when the recomputed root differs from `root`.
pub fn verify_map_inclusion(
    root: &[u8; 32],
    key: &[u8; 32],
    value: &[u8; 32],
    proof: &MapProof,
) -> Result<(), MapProofError> {
    let depth = proof.siblings.len();
    if depth > KEY_BITS {
        return Err(MapProofError::TooLong {
            max: KEY_BITS,
            found: depth,
        });
    }
    if proof.siblings.last() == Some(&EMPTY_HASH) {
        return Err(MapProofError::EmptyDeepestSibling { depth: depth - 1 });
    }
    let mut hash = leaf_hash(key, value);
    for (d, sibling) in proof.siblings.iter().enumerate().rev() {
        hash = if bit(key, d) {
            node_hash(sibling, &hash)
        } else {
            node_hash(&hash, sibling)
        };
    }
    if hash != *root {
        return Err(MapProofError::RootMismatch {
            expected: *root,
            found: hash,
        });
    }
    Ok(())
}

/// A reference to a subtree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Link {
    /// No entries.
    #[default]
    Empty,
    /// Exactly one entry: an index into `SparseMerkleMap::leaves`.
    Leaf(u32),
    /// Two or more entries: an index into `SparseMerkleMap::nodes`.
    Node(u32),
}

/// An entry. Its hash is kept in the slot that points to it (the parent's or the root's).
#[derive(Debug, Clone)]
struct Leaf {
    key: [u8; 32],
    value: [u8; 32],
}

/// An internal node with two or more entries below it.
///
/// Each child's hash is stored here rather than in the child, so rehashing a path and building a
/// proof read only the nodes on the path, not their siblings (which would cost a cache miss per
/// level on a large map).
#[derive(Debug, Clone)]
struct Node {
    /// Left (index 0) and right (index 1) children.
    children: [Link; 2],
    /// The children's hashes. A slot holding an empty or leaf link is always current; a slot
    /// holding a node link is current unless the matching `stale` flag is set.
    hashes: [[u8; 32]; 2],
    /// Set on the path of a change until the next rehash. Only `&mut self` methods leave stale
    /// slots behind them, and they rehash before returning.
    stale: [bool; 2],
}

/// Where a link is stored: the root slot, or one side of a node.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Root,
    Child { node: u32, side: usize },
}

/// A sparse Merkle map from 32-byte keys to 32-byte values with cached hashes.
///
/// See the [module docs](self) for the tree shape, hashing and costs.
///
/// ```
/// use civitas_core::smt::{SparseMerkleMap, map_key, verify_map_inclusion};
///
/// let key = map_key("did", "did:civ:example");
/// let entry_hash = [7; 32];
/// let mut map = SparseMerkleMap::new();
/// map.insert(key, entry_hash);
/// let root = map.root(); // goes into the seal
/// let proof = map.prove(&key).unwrap(); // goes to the client
/// assert!(verify_map_inclusion(&root, &key, &entry_hash, &proof).is_ok());
/// ```
#[derive(Clone, Default)]
pub struct SparseMerkleMap {
    root: Link,
    /// The hash of `root`, current unless `root_stale`.
    root_hash: [u8; 32],
    root_stale: bool,
    leaves: Vec<Leaf>,
    nodes: Vec<Node>,
    /// Indices of `leaves` freed by `remove`, reused by later inserts.
    free_leaves: Vec<u32>,
    /// Indices of `nodes` freed by `remove`, reused by later inserts.
    free_nodes: Vec<u32>,
}

impl fmt::Debug for SparseMerkleMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SparseMerkleMap")
            .field("len", &self.len())
            .field(
                "internal_nodes",
                &(self.nodes.len() - self.free_nodes.len()),
            )
            .field("root", &hex(&self.root()))
            .finish()
    }
}

impl SparseMerkleMap {
    /// Creates an empty map, whose root is [`EMPTY_HASH`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty map with room for `entries` entries before reallocating.
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            leaves: Vec::with_capacity(entries),
            // Random keys need about 1.44 internal nodes per entry.
            nodes: Vec::with_capacity(entries.saturating_add(entries / 2)),
            ..Self::default()
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.leaves.len() - self.free_leaves.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root hash committing to every entry; [`EMPTY_HASH`] for the empty map.
    pub fn root(&self) -> [u8; 32] {
        self.root_hash
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8; 32]) -> Option<[u8; 32]> {
        let mut link = self.root;
        let mut depth = 0;
        loop {
            match link {
                Link::Empty => return None,
                Link::Leaf(index) => {
                    let leaf = &self.leaves[index as usize];
                    return (leaf.key == *key).then_some(leaf.value);
                }
                Link::Node(index) => {
                    link = self.nodes[index as usize].children[usize::from(bit(key, depth))];
                    depth += 1;
                }
            }
        }
    }

    /// Proves that `key` is in the map with its current value, or returns `None` if it is absent.
    ///
    /// The proof verifies with [`verify_map_inclusion`] against [`Self::root`] until the next
    /// change to the map.
    pub fn prove(&self, key: &[u8; 32]) -> Option<MapProof> {
        let mut siblings = Vec::new();
        let mut link = self.root;
        let mut depth = 0;
        loop {
            match link {
                Link::Empty => return None,
                Link::Leaf(index) => {
                    return (self.leaves[index as usize].key == *key)
                        .then_some(MapProof { siblings });
                }
                Link::Node(index) => {
                    let node = &self.nodes[index as usize];
                    let side = usize::from(bit(key, depth));
                    siblings.push(node.hashes[1 - side]);
                    link = node.children[side];
                    depth += 1;
                }
            }
        }
    }

    /// Sets `key` to `value`, returning the previous value, and updates the root.
    ///
    /// Costs one leaf hash plus one node hash per level of the key's path.
    ///
    /// # Panics
    ///
    /// If the map would need more than `u32::MAX` leaves or internal nodes. The leaves alone
    /// would take over 256 GiB, so allocation fails long before.
    pub fn insert(&mut self, key: [u8; 32], value: [u8; 32]) -> Option<[u8; 32]> {
        let old = self.insert_unhashed(key, value);
        self.rehash();
        old
    }

    /// Inserts without rehashing, marking the slots on the key's path stale.
    fn insert_unhashed(&mut self, key: [u8; 32], value: [u8; 32]) -> Option<[u8; 32]> {
        let mut slot = Slot::Root;
        let mut depth = 0;
        loop {
            match self.link(slot) {
                Link::Empty => {
                    let leaf = self.push_leaf(key, value);
                    self.set_link(slot, leaf, Some(leaf_hash(&key, &value)));
                    return None;
                }
                Link::Leaf(index) => {
                    let leaf = &mut self.leaves[index as usize];
                    if leaf.key == key {
                        let old = leaf.value;
                        if old != value {
                            leaf.value = value;
                            self.set_link(slot, Link::Leaf(index), Some(leaf_hash(&key, &value)));
                        }
                        return Some(old);
                    }
                    // The two keys share the path down to `depth`, so they first differ at or
                    // below it. Build the node where they split, then the chain of nodes with
                    // one empty child from there up to `depth`.
                    let split = first_difference(&leaf.key, &key);
                    debug_assert!(split >= depth && split < KEY_BITS);
                    let old_leaf = (Link::Leaf(index), self.slot_hash(slot));
                    let new_leaf = (self.push_leaf(key, value), leaf_hash(&key, &value));
                    let (left, right) = if bit(&key, split) {
                        (old_leaf, new_leaf)
                    } else {
                        (new_leaf, old_leaf)
                    };
                    let mut subtree = self.push_node([left.0, right.0], [left.1, right.1], false);
                    for d in (depth..split).rev() {
                        subtree = if bit(&key, d) {
                            self.push_node([Link::Empty, subtree], [EMPTY_HASH; 2], true)
                        } else {
                            self.push_node([subtree, Link::Empty], [EMPTY_HASH; 2], true)
                        };
                    }
                    self.set_link(slot, subtree, None);
                    return None;
                }
                Link::Node(index) => {
                    self.mark_stale(slot);
                    slot = Slot::Child {
                        node: index,
                        side: usize::from(bit(&key, depth)),
                    };
                    depth += 1;
                }
            }
        }
    }

    /// Removes `key`, returning its value, and updates the root.
    ///
    /// The tree is restored to the shape it would have had if `key` had never been inserted:
    /// when the removed leaf leaves a single entry in a subtree, that entry moves up to the top
    /// of the subtree. Inserting a key and then removing it gives back the previous root.
    pub fn remove(&mut self, key: &[u8; 32]) -> Option<[u8; 32]> {
        // The slots holding the nodes on the key's path, from the root down.
        let mut path: Vec<Slot> = Vec::new();
        let mut slot = Slot::Root;
        let mut depth = 0;
        let leaf = loop {
            match self.link(slot) {
                Link::Empty => return None,
                Link::Leaf(index) if self.leaves[index as usize].key == *key => break index,
                Link::Leaf(_) => return None,
                Link::Node(index) => {
                    path.push(slot);
                    slot = Slot::Child {
                        node: index,
                        side: usize::from(bit(key, depth)),
                    };
                    depth += 1;
                }
            }
        };
        let value = self.leaves[leaf as usize].value;
        self.free_leaves.push(leaf);
        self.set_link(slot, Link::Empty, Some(EMPTY_HASH));

        // Collapse every node left with a single entry (one empty child and one leaf child)
        // into that leaf, from the bottom up.
        let mut changed = slot;
        while let Slot::Child { node, .. } = changed {
            let Node {
                children, hashes, ..
            } = &self.nodes[node as usize];
            let (leaf, hash) = match children {
                [Link::Empty, leaf @ Link::Leaf(_)] => (*leaf, hashes[1]),
                [leaf @ Link::Leaf(_), Link::Empty] => (*leaf, hashes[0]),
                _ => break,
            };
            // `path` ends with the slot holding `node`, pushed when the search descended into it.
            let Some(holder) = path.pop() else { break };
            self.free_nodes.push(node);
            self.set_link(holder, leaf, Some(hash));
            changed = holder;
        }
        // The nodes still on the path lost an entry below them.
        for slot in path {
            self.mark_stale(slot);
        }
        self.rehash();
        Some(value)
    }

    fn link(&self, slot: Slot) -> Link {
        match slot {
            Slot::Root => self.root,
            Slot::Child { node, side } => self.nodes[node as usize].children[side],
        }
    }

    /// The hash stored for `slot`; current for empty and leaf links.
    fn slot_hash(&self, slot: Slot) -> [u8; 32] {
        match slot {
            Slot::Root => self.root_hash,
            Slot::Child { node, side } => self.nodes[node as usize].hashes[side],
        }
    }

    fn mark_stale(&mut self, slot: Slot) {
        match slot {
            Slot::Root => self.root_stale = true,
            Slot::Child { node, side } => self.nodes[node as usize].stale[side] = true,
        }
    }

    /// Points `slot` at `link`, with its hash if known, or marked stale if not.
    fn set_link(&mut self, slot: Slot, link: Link, hash: Option<[u8; 32]>) {
        let stale = hash.is_none();
        let hash = hash.unwrap_or(EMPTY_HASH);
        match slot {
            Slot::Root => {
                self.root = link;
                self.root_hash = hash;
                self.root_stale = stale;
            }
            Slot::Child { node, side } => {
                let node = &mut self.nodes[node as usize];
                node.children[side] = link;
                node.hashes[side] = hash;
                node.stale[side] = stale;
            }
        }
    }

    fn push_leaf(&mut self, key: [u8; 32], value: [u8; 32]) -> Link {
        let leaf = Leaf { key, value };
        if let Some(index) = self.free_leaves.pop() {
            self.leaves[index as usize] = leaf;
            return Link::Leaf(index);
        }
        // Invariant stated in `insert`'s `# Panics`: 2^32 leaves cannot be allocated.
        let index = u32::try_from(self.leaves.len()).expect("more than u32::MAX map entries");
        self.leaves.push(leaf);
        Link::Leaf(index)
    }

    /// Adds a node; `stale` marks its single non-empty child's hash as not yet computed.
    fn push_node(&mut self, children: [Link; 2], hashes: [[u8; 32]; 2], stale: bool) -> Link {
        let node = Node {
            children,
            hashes,
            stale: [
                stale && children[0] != Link::Empty,
                stale && children[1] != Link::Empty,
            ],
        };
        if let Some(index) = self.free_nodes.pop() {
            self.nodes[index as usize] = node;
            return Link::Node(index);
        }
        // Invariant stated in `insert`'s `# Panics`.
        let index = u32::try_from(self.nodes.len()).expect("more than u32::MAX map nodes");
        self.nodes.push(node);
        Link::Node(index)
    }

    /// Recomputes every stale hash, visiting only the nodes below stale slots.
    fn rehash(&mut self) {
        if self.root_stale {
            if let Link::Node(index) = self.root {
                self.root_hash = self.rehash_node(index);
            }
            self.root_stale = false;
        }
    }

    fn rehash_node(&mut self, index: u32) -> [u8; 32] {
        for side in 0..2 {
            let node = &self.nodes[index as usize];
            if node.stale[side] {
                if let Link::Node(child) = node.children[side] {
                    // Recursion depth is bounded by KEY_BITS.
                    let hash = self.rehash_node(child);
                    self.nodes[index as usize].hashes[side] = hash;
                }
                self.nodes[index as usize].stale[side] = false;
            }
        }
        let node = &self.nodes[index as usize];
        node_hash(&node.hashes[0], &node.hashes[1])
    }
}

/// Inserts every pair, later pairs overwriting earlier ones, then rehashes each touched node once.
///
/// The pairs are sorted by key first (stably, so the order of repeated keys is kept), which
/// makes consecutive inserts share the upper part of their paths in the CPU cache.
impl Extend<([u8; 32], [u8; 32])> for SparseMerkleMap {
    fn extend<I: IntoIterator<Item = ([u8; 32], [u8; 32])>>(&mut self, entries: I) {
        let mut entries: Vec<_> = entries.into_iter().collect();
        entries.sort_by_key(|(key, _)| *key);
        for (key, value) in entries {
            self.insert_unhashed(key, value);
        }
        self.rehash();
    }
}

impl FromIterator<([u8; 32], [u8; 32])> for SparseMerkleMap {
    fn from_iter<I: IntoIterator<Item = ([u8; 32], [u8; 32])>>(entries: I) -> Self {
        let mut map = Self::new();
        map.extend(entries);
        map
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// The reference definition: hash a sorted slice of entries that all share the first
    /// `depth` key bits.
    fn naive_subtree(entries: &[([u8; 32], [u8; 32])], depth: usize) -> [u8; 32] {
        match entries {
            [] => EMPTY_HASH,
            [(key, value)] => leaf_hash(key, value),
            _ => {
                let split = entries.partition_point(|(key, _)| !bit(key, depth));
                let (left, right) = entries.split_at(split);
                node_hash(
                    &naive_subtree(left, depth + 1),
                    &naive_subtree(right, depth + 1),
                )
            }
        }
    }

    fn naive_root(model: &BTreeMap<[u8; 32], [u8; 32]>) -> [u8; 32] {
        // BTreeMap order on byte arrays is MSB-first bit order, as the split requires.
        let entries: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
        naive_subtree(&entries, 0)
    }

    fn key_with_bit(bit_index: usize) -> [u8; 32] {
        let mut key = [0; 32];
        key[bit_index / 8] |= 0x80 >> (bit_index % 8);
        key
    }

    fn assert_all_proofs(map: &SparseMerkleMap, model: &BTreeMap<[u8; 32], [u8; 32]>) {
        let root = map.root();
        for (key, value) in model {
            let proof = map.prove(key).unwrap();
            verify_map_inclusion(&root, key, value, &proof).unwrap();
        }
    }

    #[test]
    fn empty_map() {
        let map = SparseMerkleMap::new();
        assert_eq!(map.root(), EMPTY_HASH);
        assert!(map.is_empty());
        assert_eq!(map.get(&[7; 32]), None);
        assert_eq!(map.prove(&[7; 32]), None);
        // No proof of anything verifies against the empty root.
        let err = verify_map_inclusion(&EMPTY_HASH, &[7; 32], &[1; 32], &MapProof::default());
        assert!(matches!(err, Err(MapProofError::RootMismatch { .. })));
    }

    #[test]
    fn single_key_root_is_its_leaf_hash() {
        let key = map_key("test", "did:civ:alice");
        let value = [9; 32];
        let mut map = SparseMerkleMap::new();
        assert_eq!(map.insert(key, value), None);
        assert_eq!(map.root(), leaf_hash(&key, &value));
        let proof = map.prove(&key).unwrap();
        assert!(proof.siblings.is_empty());
        verify_map_inclusion(&map.root(), &key, &value, &proof).unwrap();
        assert_eq!(map.insert(key, [8; 32]), Some(value));
        assert_eq!(map.len(), 1);
        assert_eq!(map.root(), leaf_hash(&key, &[8; 32]));
    }

    #[test]
    fn two_keys_with_long_shared_prefix() {
        // The keys agree on their first 200 bits.
        let a = [0x5a; 32];
        let mut b = a;
        b[25] ^= 0x80;
        assert_eq!(first_difference(&a, &b), 200);
        let mut map = SparseMerkleMap::new();
        map.insert(a, [1; 32]);
        map.insert(b, [2; 32]);

        let mut expected = if bit(&a, 200) {
            node_hash(&leaf_hash(&b, &[2; 32]), &leaf_hash(&a, &[1; 32]))
        } else {
            node_hash(&leaf_hash(&a, &[1; 32]), &leaf_hash(&b, &[2; 32]))
        };
        for d in (0..200).rev() {
            expected = if bit(&a, d) {
                node_hash(&EMPTY_HASH, &expected)
            } else {
                node_hash(&expected, &EMPTY_HASH)
            };
        }
        assert_eq!(map.root(), expected);

        let proof = map.prove(&a).unwrap();
        assert_eq!(proof.siblings.len(), 201);
        assert!(proof.siblings[..200].iter().all(|s| *s == EMPTY_HASH));
        assert_eq!(proof.siblings[200], leaf_hash(&b, &[2; 32]));
        verify_map_inclusion(&map.root(), &a, &[1; 32], &proof).unwrap();
        verify_map_inclusion(&map.root(), &b, &[2; 32], &map.prove(&b).unwrap()).unwrap();

        // A third key splitting near the top leaves the pair's chain below it intact.
        let mut c = a;
        c[0] ^= 0x01;
        map.insert(c, [3; 32]);
        let model = BTreeMap::from([(a, [1; 32]), (b, [2; 32]), (c, [3; 32])]);
        assert_eq!(map.root(), naive_root(&model));
        assert_all_proofs(&map, &model);
    }

    #[test]
    fn remove_collapses_to_the_remaining_leaf() {
        let a = [0x5a; 32];
        let mut b = a;
        b[25] ^= 0x80;
        let mut map: SparseMerkleMap = [(a, [1; 32]), (b, [2; 32])].into_iter().collect();
        assert_eq!(map.remove(&[7; 32]), None);
        assert_eq!(map.remove(&a), Some([1; 32]));
        assert_eq!(map.remove(&a), None);
        // The 200-node chain is gone: `b` alone is the root again.
        assert_eq!(map.root(), leaf_hash(&b, &[2; 32]));
        assert_eq!(map.prove(&b), Some(MapProof::default()));
        assert_eq!(map.len(), 1);
        assert_eq!(map.remove(&b), Some([2; 32]));
        assert_eq!(map.root(), EMPTY_HASH);
        assert!(map.is_empty());
        // Freed slots are reused.
        map.insert(a, [3; 32]);
        map.insert(b, [4; 32]);
        assert_eq!(map.leaves.len(), 2);
        assert_eq!(map.nodes.len(), 201);
    }

    #[test]
    fn keys_differing_only_in_the_last_bit_give_a_full_depth_proof() {
        let a = [0; 32];
        let b = key_with_bit(255);
        let map: SparseMerkleMap = [(a, [1; 32]), (b, [2; 32])].into_iter().collect();
        let proof = map.prove(&b).unwrap();
        assert_eq!(proof.siblings.len(), KEY_BITS);
        verify_map_inclusion(&map.root(), &b, &[2; 32], &proof).unwrap();
        let model = BTreeMap::from([(a, [1; 32]), (b, [2; 32])]);
        assert_eq!(map.root(), naive_root(&model));
    }

    #[test]
    fn every_depth_of_split() {
        let mut map = SparseMerkleMap::new();
        let mut model = BTreeMap::new();
        map.insert([0; 32], [0xee; 32]);
        model.insert([0; 32], [0xee; 32]);
        for i in (0..KEY_BITS).rev() {
            let key = key_with_bit(i);
            map.insert(key, [i as u8; 32]);
            model.insert(key, [i as u8; 32]);
        }
        assert_eq!(map.root(), naive_root(&model));
        assert_all_proofs(&map, &model);
    }

    #[test]
    fn bad_proofs_are_rejected() {
        let entries: Vec<_> = (0..50)
            .map(|i| (map_key("test", &i.to_string()), [i; 32]))
            .collect();
        let map: SparseMerkleMap = entries.iter().copied().collect();
        let root = map.root();
        let (key, value) = entries[17];
        let proof = map.prove(&key).unwrap();
        assert!(!proof.siblings.is_empty());
        verify_map_inclusion(&root, &key, &value, &proof).unwrap();

        // Wrong value, wrong key, wrong root.
        assert!(matches!(
            verify_map_inclusion(&root, &key, &[0xff; 32], &proof),
            Err(MapProofError::RootMismatch { .. })
        ));
        let (other_key, _) = entries[18];
        assert!(verify_map_inclusion(&root, &other_key, &value, &proof).is_err());
        assert!(verify_map_inclusion(&[1; 32], &key, &value, &proof).is_err());

        // Any tampered sibling, a missing sibling, an extra sibling.
        for d in 0..proof.siblings.len() {
            let mut tampered = proof.clone();
            tampered.siblings[d][31] ^= 1;
            assert!(verify_map_inclusion(&root, &key, &value, &tampered).is_err());
        }
        let mut shorter = proof.clone();
        shorter.siblings.pop();
        assert!(verify_map_inclusion(&root, &key, &value, &shorter).is_err());
        let mut longer = proof;
        longer.siblings.push([5; 32]);
        assert!(verify_map_inclusion(&root, &key, &value, &longer).is_err());

        // The absent key has no proof.
        assert_eq!(map.prove(&map_key("test", "absent")), None);
        assert_eq!(map.get(&map_key("test", "absent")), None);
    }

    #[test]
    fn deepest_empty_sibling_is_rejected_even_if_it_hashes_to_the_root() {
        // A fake root built from a leaf with an empty sibling: the shape an honest tree never has.
        let key = [0; 32];
        let value = [1; 32];
        let forged_root = node_hash(&leaf_hash(&key, &value), &EMPTY_HASH);
        let proof = MapProof {
            siblings: vec![EMPTY_HASH],
        };
        assert_eq!(
            verify_map_inclusion(&forged_root, &key, &value, &proof),
            Err(MapProofError::EmptyDeepestSibling { depth: 0 })
        );
    }

    #[test]
    fn overlong_proof_is_rejected() {
        let proof = MapProof {
            siblings: vec![[1; 32]; KEY_BITS + 1],
        };
        assert_eq!(
            verify_map_inclusion(&[0; 32], &[0; 32], &[0; 32], &proof),
            Err(MapProofError::TooLong {
                max: KEY_BITS,
                found: KEY_BITS + 1
            })
        );
    }

    #[test]
    fn node_and_leaf_sizes_match_the_documented_memory_budget() {
        assert_eq!(size_of::<Leaf>(), 64);
        assert_eq!(size_of::<Node>(), 84);
        assert_eq!(size_of::<Link>(), 8);
    }

    #[test]
    fn map_key_is_domain_nul_key() {
        let expected: [u8; 32] = Sha256::digest(b"civitas/did\0did:civ:abc").into();
        assert_eq!(map_key("civitas/did", "did:civ:abc"), expected);
        assert_ne!(map_key("a", "bc"), map_key("ab", "c"));
    }

    #[test]
    fn error_messages_say_expected_and_found() {
        let err = MapProofError::RootMismatch {
            expected: [0; 32],
            found: [0xab; 32],
        };
        assert_eq!(
            err.to_string(),
            format!(
                "root mismatch: expected {}, found {} recomputed from the proof",
                "00".repeat(32),
                "ab".repeat(32)
            )
        );
    }

    /// Keys drawn so that they often share long prefixes and repeat (updates).
    fn key_strategy() -> impl Strategy<Value = [u8; 32]> {
        // Keys with one or two bits set make chains of up to 256 nodes, which are slow to check
        // in a debug build, so they are drawn less often.
        prop_oneof![
            3 => any::<[u8; 32]>(),
            // Small pool: repeats, hence updates.
            3 => (0u8..8).prop_map(|i| map_key("pool", &i.to_string())),
            // Long shared prefixes: one or two bits set anywhere.
            1 => (0..KEY_BITS).prop_map(key_with_bit),
            1 => (0..KEY_BITS, 0..KEY_BITS).prop_map(|(i, j)| {
                let mut key = key_with_bit(i);
                key[j / 8] |= 0x80 >> (j % 8);
                key
            }),
        ]
    }

    proptest! {
        // SHA-256's generic code is compiled at the test crate's opt-level (0 in debug builds),
        // so cases are capped to keep `cargo test` around ten seconds.
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn matches_naive_model(
            // `None` removes the key.
            ops in prop::collection::vec(
                (key_strategy(), prop::option::weighted(0.8, any::<[u8; 32]>())),
                0..64,
            ),
            batch in prop::collection::vec((key_strategy(), any::<[u8; 32]>()), 0..32),
        ) {
            let mut map = SparseMerkleMap::new();
            let mut model = BTreeMap::new();
            for (key, value) in &ops {
                match value {
                    Some(value) => {
                        prop_assert_eq!(map.insert(*key, *value), model.insert(*key, *value));
                        prop_assert_eq!(map.get(key), Some(*value));
                    }
                    None => {
                        prop_assert_eq!(map.remove(key), model.remove(key));
                        prop_assert_eq!(map.get(key), None);
                        prop_assert_eq!(map.prove(key), None);
                    }
                }
                prop_assert_eq!(map.root(), naive_root(&model));
                prop_assert_eq!(map.len(), model.len());
            }
            // The batch in one call.
            map.extend(batch.iter().copied());
            model.extend(batch.iter().copied());
            // The rest as one batch.
            prop_assert_eq!(map.root(), naive_root(&model));
            prop_assert_eq!(map.len(), model.len());

            let root = map.root();
            for (key, value) in &model {
                prop_assert_eq!(map.get(key), Some(*value));
                let proof = map.prove(key).unwrap();
                prop_assert!(proof.siblings.len() <= KEY_BITS);
                prop_assert!(verify_map_inclusion(&root, key, value, &proof).is_ok());
                let mut wrong = *value;
                wrong[0] ^= 1;
                prop_assert!(verify_map_inclusion(&root, key, &wrong, &proof).is_err());
                if let Some(sibling) = proof.siblings.first() {
                    let mut tampered = proof.clone();
                    tampered.siblings[0] = node_hash(sibling, sibling);
                    prop_assert!(verify_map_inclusion(&root, key, value, &tampered).is_err());
                }
            }
        }

        #[test]
        fn removing_new_keys_restores_the_root(
            base in prop::collection::vec((key_strategy(), any::<[u8; 32]>()), 0..24),
            changes in prop::collection::vec((key_strategy(), any::<[u8; 32]>()), 1..24),
        ) {
            // The did-registry undoes a block whose write failed by reinserting old values and
            // removing new keys in reverse order.
            let mut map: SparseMerkleMap = base.iter().copied().collect();
            let root = map.root();
            let len = map.len();
            let undo: Vec<_> = changes.iter().map(|(k, v)| (*k, map.insert(*k, *v))).collect();
            let changed_root = map.root();
            let arenas = (map.leaves.len(), map.nodes.len());
            for (key, old) in undo.into_iter().rev() {
                match old {
                    Some(value) => map.insert(key, value),
                    None => map.remove(&key),
                };
            }
            prop_assert_eq!(map.root(), root);
            prop_assert_eq!(map.len(), len);
            // Redoing the changes reuses the freed slots instead of growing the arenas.
            map.extend(changes.iter().copied());
            prop_assert_eq!(map.root(), changed_root);
            prop_assert_eq!((map.leaves.len(), map.nodes.len()), arenas);
        }

        #[test]
        fn proof_for_one_key_fails_for_others(
            keys in prop::collection::btree_set(key_strategy(), 2..16),
        ) {
            let keys: Vec<_> = keys.into_iter().collect();
            let map: SparseMerkleMap = keys.iter().map(|k| (*k, *k)).collect();
            let root = map.root();
            let proof = map.prove(&keys[0]).unwrap();
            for other in &keys[1..] {
                prop_assert!(verify_map_inclusion(&root, other, other, &proof).is_err());
                prop_assert!(verify_map_inclusion(&root, other, &keys[0], &proof).is_err());
            }
        }
    }
}
