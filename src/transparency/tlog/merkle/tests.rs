//! Tests of the Merkle maths: proofs for every index of small trees, precise verification
//! errors, edge sizes, and property tests that a flipped byte breaks any proof.

use super::*;
use proptest::prelude::*;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn subtree_rejects_misaligned_ranges() {
    assert_eq!(Subtree::new(0, 0), None);
    assert_eq!(Subtree::new(2, 5), None);
    assert!(Subtree::new(4, 7).is_some());
    assert_eq!(Subtree::new(4, 8).and_then(|s| s.as_perfect()), Some((2, 1)));
}

#[test]
fn every_inclusion_proof_verifies_and_rejects_a_flipped_bit() {
    let all = leaves(300);
    for size in [1u64, 2, 3, 5, 8, 13, 64, 255, 256, 257, 300] {
        let tree = &all[..size as usize];
        let r = root(tree);
        for index in 0..size {
            let proof = inclusion_proof(index, tree).unwrap();
            verify_inclusion(&tree[index as usize], index, size, &proof, &r).unwrap();
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i].0[7] ^= 0x10;
                assert!(matches!(
                    verify_inclusion(&tree[index as usize], index, size, &bad, &r),
                    Err(MerkleError::RootMismatch { .. })
                ));
            }
        }
    }
}

#[test]
fn every_index_of_trees_up_to_2000_leaves_has_a_verifying_proof() {
    // Perfect subtree hashes do not depend on the tree size, so one table serves all sizes.
    let all = leaves(2048);
    let mut table: Vec<Vec<Hash>> = vec![all.clone()];
    while let Some(below) = table.last().filter(|l| l.len() > 1) {
        let above = below.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
        table.push(above);
    }
    let perfect = |level: u8, index: u64| -> Result<Hash, MerkleError> { Ok(table[level as usize][index as usize]) };
    let mut checked = 0u64;
    // Every size up to 400, then every 97th size up to 2000 (debug builds are slow).
    for size in (1..=400u64).chain((401..=2000).step_by(97)) {
        let r = root_with(size, perfect).unwrap();
        for index in 0..size {
            let proof = inclusion_proof_with(index, size, perfect).unwrap();
            assert_eq!(verify_inclusion(&all[index as usize], index, size, &proof, &r), Ok(()));
            checked += 1;
        }
    }
    assert_eq!(checked, 400 * 401 / 2 + (401..=2000).step_by(97).sum::<u64>());
}

#[test]
fn verify_inclusion_reports_precise_errors() {
    let tree = leaves(5);
    let r = root(&tree);
    let proof = inclusion_proof(1, &tree).unwrap();
    assert_eq!(verify_inclusion(&tree[1], 5, 5, &proof, &r), Err(MerkleError::IndexOutOfRange { index: 5, size: 5 }));
    assert_eq!(verify_inclusion(&tree[1], 1, 5, &proof[..2], &r), Err(MerkleError::ProofTooShort));
    let mut long = proof.clone();
    long.push(r);
    assert_eq!(verify_inclusion(&tree[1], 1, 5, &long, &r), Err(MerkleError::ProofTooLong));
    assert_eq!(
        verify_inclusion(&tree[2], 1, 5, &proof, &r),
        Err(MerkleError::RootMismatch {
            computed: root_from_inclusion_proof(&tree[2], 1, 5, &proof).unwrap(),
            expected: r
        })
    );
}

#[test]
fn verify_consistency_handles_the_edge_sizes() {
    let tree = leaves(4);
    let r4 = root(&tree);
    assert_eq!(verify_consistency(0, 4, &[], &empty_root(), &r4), Ok(()));
    assert_eq!(verify_consistency(4, 4, &[], &r4, &r4), Ok(()));
    assert_eq!(verify_consistency(4, 3, &[], &r4, &r4), Err(MerkleError::SizeDecreased { old: 4, new: 3 }));
    assert_eq!(verify_consistency(4, 4, &[r4], &r4, &r4), Err(MerkleError::ProofNotEmpty { old: 4, new: 4 }));
    assert_eq!(verify_consistency(2, 4, &[], &r4, &r4), Err(MerkleError::ProofEmpty { old: 2, new: 4 }));
    assert!(matches!(verify_consistency(0, 4, &[], &r4, &r4), Err(MerkleError::OldRootMismatch { .. })));
}

#[test]
fn perfect_subtree_hash_refuses_incomplete_subtrees() {
    let tree = leaves(6);
    assert_eq!(perfect_subtree_hash(&tree, 2, 1), Err(MerkleError::IncompleteSubtree { level: 2, index: 1, size: 6 }));
    assert_eq!(
        perfect_subtree_hash(&tree, 63, 3),
        Err(MerkleError::IncompleteSubtree { level: 63, index: 3, size: 6 })
    );
    assert_eq!(perfect_subtree_hash(&tree, 1, 2), Ok(node_hash(&tree[4], &tree[5])));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn inclusion_proofs_verify_and_fail_on_any_flipped_byte(
        size in 1u64..2048, index_seed in any::<u64>(), byte in 0usize..32, bit in 0u8..8
    ) {
        let tree = leaves(size);
        let r = root(&tree);
        let index = index_seed % size;
        let proof = inclusion_proof(index, &tree).unwrap();
        prop_assert_eq!(verify_inclusion(&tree[index as usize], index, size, &proof, &r), Ok(()));
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i].0[byte] ^= 1 << bit;
            prop_assert!(verify_inclusion(&tree[index as usize], index, size, &bad, &r).is_err());
        }
        let mut bad_leaf = tree[index as usize];
        bad_leaf.0[byte] ^= 1 << bit;
        prop_assert!(verify_inclusion(&bad_leaf, index, size, &proof, &r).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_fail_on_any_flipped_byte(
        new in 1u64..600, old_seed in any::<u64>(), byte in 0usize..32, bit in 0u8..8
    ) {
        let tree = leaves(new);
        let old = old_seed % (new + 1);
        let (r_old, r_new) = (root(&tree[..old as usize]), root(&tree));
        let proof = consistency_proof(old, &tree).unwrap();
        prop_assert_eq!(verify_consistency(old, new, &proof, &r_old, &r_new), Ok(()));
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i].0[byte] ^= 1 << bit;
            prop_assert!(verify_consistency(old, new, &bad, &r_old, &r_new).is_err());
        }
        if old > 0 && old < new {
            let mut bad_old = r_old;
            bad_old.0[byte] ^= 1 << bit;
            prop_assert!(verify_consistency(old, new, &proof, &bad_old, &r_new).is_err());
            let mut bad_new = r_new;
            bad_new.0[byte] ^= 1 << bit;
            prop_assert!(verify_consistency(old, new, &proof, &r_old, &bad_new).is_err());
            prop_assert!(verify_consistency(old, new, &proof[..proof.len() - 1], &r_old, &r_new).is_err());
        }
    }
}
