//! The right edge of a growing tree, for appending leaves and computing roots in `O(log n)`.

use super::merkle::{Hash, empty_root, node_hash};

/// The right edge of a tree (a "compact range"): the roots of its maximal perfect subtrees,
/// largest first, one per set bit of the size. Appending a leaf costs `O(log n)` and reports
/// every perfect subtree it completes, which is what a sequencer writes into tiles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// The frontier of a tree of `size` leaves, from perfect-subtree hashes.
    pub fn from_tree<E>(size: u64, mut perfect: impl FnMut(u8, u64) -> Result<Hash, E>) -> Result<Self, E> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1 << level) != 0 {
                hashes.push(perfect(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Frontier { size, hashes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the maximal perfect subtrees, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash. `completed(level, index, hash)` is called for the leaf itself
    /// (level 0) and for every perfect subtree the leaf completes, lowest level first.
    pub fn append(&mut self, leaf: Hash, mut completed: impl FnMut(u8, u64, &Hash)) {
        let mut h = leaf;
        let mut index = self.size;
        let mut level = 0u8;
        completed(level, index, &h);
        while index & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            h = node_hash(&left, &h);
            index >>= 1;
            level += 1;
            completed(level, index, &h);
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The Merkle Tree Hash of the tree (RFC 9162 section 2.1.1).
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, h| node_hash(h, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparency::tlog::merkle::{leaf_hash, perfect_subtree_hash, root};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn frontier_matches_the_recursive_root_and_reports_completed_subtrees() {
        let all = leaves(1100);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for (i, leaf) in all.iter().enumerate() {
            f.append(*leaf, |level, index, h| {
                assert_eq!(perfect_subtree_hash(&all[..=i], level, index), Ok(*h));
            });
            assert_eq!(f.root(), root(&all[..=i]));
        }
        let again = Frontier::from_tree(f.size(), |l, i| perfect_subtree_hash(&all, l, i)).unwrap();
        assert_eq!(again, f);
    }
}
