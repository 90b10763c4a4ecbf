//! RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof verification.
//!
//! Everything here is pure arithmetic over hashes: the caller supplies leaf hashes, or a
//! function that returns the hash of a perfect subtree, and gets back roots and proofs.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The length of a hash in bytes.
    pub const LEN: usize = 32;

    /// The hash as bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash from a slice, if it is exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Hash)
    }

    /// Lowercase hexadecimal encoding.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The root of the empty tree: `SHA-256()` of the empty string (RFC 6962 section 2.1).
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// `MTH({d(0)}) = SHA-256(0x00 || d(0))` (RFC 6962 section 2.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 || left || right)` (RFC 6962 section 2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Why a proof was rejected or could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The proof goes past the root (RFC 9162 section 2.1.3.2 step 5a, 2.1.4.2 step 6a).
    #[error("proof has more hashes than the tree sizes allow")]
    ProofTooLong,
    /// The proof stops before the root (RFC 9162 section 2.1.3.2 step 6, 2.1.4.2 step 7).
    #[error("proof has fewer hashes than the tree sizes require")]
    ProofTooShort,
    /// The proof recomputes a different root.
    #[error("proof leads to root {computed}, expected {expected}")]
    RootMismatch { computed: Hash, expected: Hash },
    /// A consistency proof towards a smaller tree.
    #[error("tree size {new} is smaller than the earlier size {old}")]
    SizeDecreased { old: u64, new: u64 },
    /// A consistency proof between two sizes where none is needed carries hashes.
    #[error("consistency proof from size {old} to {new} must be empty")]
    ProofNotEmpty { old: u64, new: u64 },
    /// A consistency proof with no hashes where some are needed (RFC 9162 section 2.1.4.2 step 1).
    #[error("consistency proof from size {old} to {new} is empty")]
    ProofEmpty { old: u64, new: u64 },
    /// The consistency proof recomputes a different root for the old tree.
    #[error("proof leads to old root {computed}, expected {expected}")]
    OldRootMismatch { computed: Hash, expected: Hash },
    /// The consistency proof recomputes a different root for the new tree.
    #[error("proof leads to new root {computed}, expected {expected}")]
    NewRootMismatch { computed: Hash, expected: Hash },
    /// A perfect subtree was asked for that is not (yet) complete in the tree.
    #[error("subtree at level {level} index {index} is not complete in a tree of size {size}")]
    IncompleteSubtree { level: u8, index: u64, size: u64 },
}

/// A range `[start, end)` of leaves whose Merkle Tree Hash `MTH(D[start:end])` appears in a proof.
///
/// Only ranges that occur in the RFC 6962 tree shape can be built (`start` is a multiple of the
/// smallest power of two that is at least `end - start`), so every range decomposes into
/// perfect subtrees and [`range_hash`] cannot fail on alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subtree {
    start: u64,
    end: u64,
}

impl Subtree {
    /// The range `[start, end)`, if it is non-empty and aligned as in an RFC 6962 tree.
    pub fn new(start: u64, end: u64) -> Option<Self> {
        if end <= start {
            return None;
        }
        let span = (end - start).checked_next_power_of_two()?;
        start.is_multiple_of(span).then_some(Subtree { start, end })
    }

    /// The first leaf index.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// One past the last leaf index.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Whether this is a perfect subtree, and if so its `(level, index)`.
    pub fn as_perfect(&self) -> Option<(u8, u64)> {
        let len = self.end - self.start;
        len.is_power_of_two().then(|| {
            let level = len.trailing_zeros() as u8;
            (level, self.start >> level)
        })
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`), the split point `k` of
/// RFC 9162 section 2.1.1.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` for a range, from the hashes of perfect subtrees.
///
/// `perfect(level, index)` returns the hash of the perfect subtree of `2^level` leaves that
/// starts at leaf `index << level` (the "stored hashes" of a tiled log). Implements the
/// recursive definition of RFC 9162 section 2.1.1.
pub fn range_hash<E>(range: Subtree, perfect: &mut impl FnMut(u8, u64) -> Result<Hash, E>) -> Result<Hash, E> {
    if let Some((level, index)) = range.as_perfect() {
        return perfect(level, index);
    }
    let k = split_point(range.end - range.start);
    let left = Subtree { start: range.start, end: range.start + k };
    let right = Subtree { start: range.start + k, end: range.end };
    let l = range_hash(left, perfect)?;
    let r = range_hash(right, perfect)?;
    Ok(node_hash(&l, &r))
}

/// The subtrees whose hashes form the inclusion proof of leaf `index` in a tree of `size`
/// leaves, from the leaf's sibling up to the root's child: `PATH(m, D[n])` of RFC 9162
/// section 2.1.3.1.
pub fn inclusion_path(index: u64, size: u64) -> Result<Vec<Subtree>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut out = Vec::new();
    let (mut lo, mut hi, m) = (0u64, size, index);
    // Walk down from the root, recording the sibling at each level, then reverse.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < lo + k {
            out.push(Subtree { start: lo + k, end: hi });
            hi = lo + k;
        } else {
            out.push(Subtree { start: lo, end: lo + k });
            lo += k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The subtrees whose hashes form the consistency proof from a tree of `old` leaves to one of
/// `new` leaves: `PROOF(m, D[n])` of RFC 9162 section 2.1.4.1. Empty when `old` is 0 or equal
/// to `new`.
pub fn consistency_path(old: u64, new: u64) -> Result<Vec<Subtree>, MerkleError> {
    if old > new {
        return Err(MerkleError::SizeDecreased { old, new });
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Ok(out);
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: descend, collecting the other side at each step.
    let (mut lo, mut hi, mut m, mut whole) = (0u64, new, old, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(Subtree { start: lo, end: hi });
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            out.push(Subtree { start: lo + k, end: hi });
            hi = lo + k;
        } else {
            out.push(Subtree { start: lo, end: lo + k });
            lo += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// The hash of the perfect subtree at `(level, index)` of a tree given by its leaf hashes.
pub fn perfect_subtree_hash(leaves: &[Hash], level: u8, index: u64) -> Result<Hash, MerkleError> {
    let size = leaves.len() as u64;
    let start = index.checked_shl(u32::from(level)).filter(|s| s >> level == index);
    let end = start.and_then(|s| s.checked_add(1u64.checked_shl(u32::from(level))?));
    match (start, end) {
        (Some(start), Some(end)) if level < 64 && end <= size => Ok(slice_hash(&leaves[start as usize..end as usize])),
        _ => Err(MerkleError::IncompleteSubtree { level, index, size }),
    }
}

/// `MTH(D[n])` over a non-empty slice of leaf hashes (RFC 9162 section 2.1.1).
fn slice_hash(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split_point(leaves.len() as u64) as usize;
            node_hash(&slice_hash(&leaves[..k]), &slice_hash(&leaves[k..]))
        }
    }
}

/// The Merkle Tree Hash of a tree given by its leaf hashes (RFC 9162 section 2.1.1); the empty
/// tree hashes to `SHA-256()`.
pub fn root(leaves: &[Hash]) -> Hash {
    slice_hash(leaves)
}

fn slice_perfect(leaves: &[Hash]) -> impl FnMut(u8, u64) -> Result<Hash, MerkleError> + '_ {
    move |level, index| perfect_subtree_hash(leaves, level, index)
}

/// The inclusion proof of leaf `index` in the tree made of `leaves` (RFC 9162 section 2.1.3.1).
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, MerkleError> {
    let path = inclusion_path(index, leaves.len() as u64)?;
    let mut perfect = slice_perfect(leaves);
    path.into_iter().map(|s| range_hash(s, &mut perfect)).collect()
}

/// The consistency proof from the first `old` leaves to all of `leaves` (RFC 9162 section
/// 2.1.4.1).
pub fn consistency_proof(old: u64, leaves: &[Hash]) -> Result<Vec<Hash>, MerkleError> {
    let path = consistency_path(old, leaves.len() as u64)?;
    let mut perfect = slice_perfect(leaves);
    path.into_iter().map(|s| range_hash(s, &mut perfect)).collect()
}

/// The inclusion proof of leaf `index` in a tree of `size` leaves, from perfect-subtree
/// hashes `perfect(level, index)` (RFC 9162 section 2.1.3.1).
pub fn inclusion_proof_with<E>(
    index: u64,
    size: u64,
    mut perfect: impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E>
where
    E: From<MerkleError>,
{
    inclusion_path(index, size)?.into_iter().map(|s| range_hash(s, &mut perfect)).collect()
}

/// The consistency proof from size `old` to size `new`, from perfect-subtree hashes
/// `perfect(level, index)` of the new tree (RFC 9162 section 2.1.4.1).
pub fn consistency_proof_with<E>(
    old: u64,
    new: u64,
    mut perfect: impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E>
where
    E: From<MerkleError>,
{
    consistency_path(old, new)?.into_iter().map(|s| range_hash(s, &mut perfect)).collect()
}

/// The root of a tree of `size` leaves from perfect-subtree hashes (RFC 9162 section 2.1.1).
pub fn root_with<E>(size: u64, mut perfect: impl FnMut(u8, u64) -> Result<Hash, E>) -> Result<Hash, E> {
    match Subtree::new(0, size) {
        None => Ok(empty_root()),
        Some(all) => range_hash(all, &mut perfect),
    }
}

/// Right-shift `fn_` and `sn` together until the low bit of `fn_` is set or `fn_` is zero.
fn shift_while_even(fn_: &mut u64, sn: &mut u64) {
    while *fn_ != 0 && *fn_ & 1 == 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// The root that an inclusion proof leads to, computed as in RFC 9162 section 2.1.3.2 steps
/// 1 to 5; the caller compares it with the trusted root.
pub fn root_from_inclusion_proof(leaf: &Hash, index: u64, size: u64, proof: &[Hash]) -> Result<Hash, MerkleError> {
    // Step 1.
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // Steps 2 and 3.
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        // Step 4a.
        if sn == 0 {
            return Err(MerkleError::ProofTooLong);
        }
        // Step 4b.
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                shift_while_even(&mut fn_, &mut sn);
            }
        } else {
            r = node_hash(&r, p);
        }
        // Step 4c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5, first half.
    if sn != 0 {
        return Err(MerkleError::ProofTooShort);
    }
    Ok(r)
}

/// Verifies that `leaf` is the hash of leaf `index` in the tree of `size` leaves with root
/// `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), MerkleError> {
    let computed = root_from_inclusion_proof(leaf, index, size, proof)?;
    if computed != *root {
        return Err(MerkleError::RootMismatch { computed, expected: *root });
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix of the tree
/// of `new_size` leaves with root `new_root` (RFC 9162 section 2.1.4.2).
///
/// The cases the RFC algorithm leaves out are decided as in RFC 9162 section 2.1.4.1: equal
/// sizes need an empty proof and equal roots; from size 0 the proof is empty and `old_root`
/// must be the empty-tree hash.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), MerkleError> {
    let (old, new) = (old_size, new_size);
    if old > new {
        return Err(MerkleError::SizeDecreased { old, new });
    }
    if old == new || old == 0 {
        if !proof.is_empty() {
            return Err(MerkleError::ProofNotEmpty { old, new });
        }
        let expected_old = if old == 0 { empty_root() } else { *new_root };
        if *old_root != expected_old {
            return Err(MerkleError::OldRootMismatch { computed: expected_old, expected: *old_root });
        }
        return Ok(());
    }
    // Step 1 (an empty proof fails), then step 2: when first_size is a power of two,
    // first_hash is the implicit first element.
    let (seed, path) = match proof.split_first() {
        Some(_) if old.is_power_of_two() => (*old_root, proof),
        Some((first, rest)) => (*first, rest),
        None => return Err(MerkleError::ProofEmpty { old, new }),
    };
    // Step 3.
    let (mut fn_, mut sn) = (old - 1, new - 1);
    // Step 4.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (seed, seed);
    // Step 6.
    for c in path {
        // Step 6a.
        if sn == 0 {
            return Err(MerkleError::ProofTooLong);
        }
        // Step 6b.
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                shift_while_even(&mut fn_, &mut sn);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        // Step 6c.
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(MerkleError::ProofTooShort);
    }
    if fr != *old_root {
        return Err(MerkleError::OldRootMismatch { computed: fr, expected: *old_root });
    }
    if sr != *new_root {
        return Err(MerkleError::NewRootMismatch { computed: sr, expected: *new_root });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
