//! RFC 6962 / RFC 9162 inclusion and consistency proofs, structured: the input picks a tree
//! (up to 1 100 leaves, so up to three tile levels), a leaf, an older size and edits to the real
//! proofs.
//!
//! Properties: every real proof verifies (and `root_from_inclusion_proof` gives the root); an
//! edited proof that still verifies for the same index, sizes and roots is the real proof (any
//! other would be a SHA-256 collision: the verifiers accept nothing extra); a consistency proof
//! never verifies against a wrong old root; proofs for arbitrary 64-bit indices and sizes never
//! panic; the tiles of the tree read back through `TileReader` give the same root and proofs.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sealpost::transparency::tlog::merkle::{self, Hash};
use sealpost::transparency::tlog::tiles::{self, TileReader};

fn edit(u: &mut Unstructured<'_>, proof: &[Hash], pool: &[Hash]) -> Result<Vec<Hash>> {
    let mut p = proof.to_vec();
    for _ in 0..u.int_in_range(1..=3)? {
        match u.int_in_range(0..=5)? {
            0 if !p.is_empty() => {
                let i = u.choose_index(p.len())?;
                let b = u.choose_index(32)?;
                p[i].0[b] ^= u.int_in_range(1..=255)?;
            }
            1 if !p.is_empty() => {
                p.remove(u.choose_index(p.len())?);
            }
            2 => {
                let at = u.int_in_range(0..=p.len())?;
                p.insert(at, *u.choose(pool)?);
            }
            3 if p.len() >= 2 => {
                let (i, j) = (u.choose_index(p.len())?, u.choose_index(p.len())?);
                p.swap(i, j);
            }
            4 if !p.is_empty() => {
                let i = u.choose_index(p.len())?;
                p[i] = *u.choose(pool)?;
            }
            _ => {
                let mut h = [0u8; 32];
                u.fill_buffer(&mut h)?;
                p.push(Hash(h));
            }
        }
    }
    Ok(p)
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let n: u64 = u.int_in_range(1..=1_100)?;
    let leaves: Vec<Hash> = (0..n).map(|i| merkle::leaf_hash(format!("entry {i}\n").as_bytes())).collect();
    let root = merkle::root(&leaves);
    let index = u.int_in_range(0..=n - 1)?;
    let old = u.int_in_range(1..=n)?;
    let old_root = merkle::root(&leaves[..old as usize]);
    let leaf = leaves[index as usize];

    let inclusion = merkle::inclusion_proof(index, &leaves).expect("index in range");
    assert_eq!(merkle::verify_inclusion(&leaf, index, n, &inclusion, &root), Ok(()));
    assert_eq!(merkle::root_from_inclusion_proof(&leaf, index, n, &inclusion), Ok(root));
    let consistency = merkle::consistency_proof(old, &leaves).expect("old <= new");
    assert_eq!(merkle::verify_consistency(old, n, &consistency, &old_root, &root), Ok(()));

    let mut pool = leaves.clone();
    pool.extend(inclusion.iter().chain(&consistency));
    let edited = edit(u, &inclusion, &pool)?;
    if merkle::verify_inclusion(&leaf, index, n, &edited, &root).is_ok() {
        assert_eq!(edited, inclusion, "a forged inclusion proof verified");
    }
    let edited = edit(u, &consistency, &pool)?;
    if merkle::verify_consistency(old, n, &edited, &old_root, &root).is_ok() {
        assert_eq!(edited, consistency, "a forged consistency proof verified");
    }
    if old < n {
        let wrong = merkle::root(&leaves[..old as usize + 1]);
        assert!(merkle::verify_consistency(old, n, &consistency, &wrong, &root).is_err());
    }

    // Arbitrary coordinates: refused or computed, never a panic or an overflow.
    let (i, s, o): (u64, u64, u64) = (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?);
    let _ = merkle::root_from_inclusion_proof(&leaf, i, s, &inclusion);
    let _ = merkle::verify_consistency(o, s, &consistency, &old_root, &root);
    let _ = merkle::inclusion_path(i, s);
    let _ = merkle::consistency_path(o, s);

    // The same tree through its tiles.
    let built = tiles::build_tiles(&leaves);
    let mut reader = TileReader::new(n, |tile: &tiles::Tile| {
        built
            .iter()
            .find(|(t, _)| t == tile)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| std::io::Error::other("no such tile"))
    });
    assert_eq!(reader.root().expect("tiles hold the tree"), root);
    assert_eq!(reader.inclusion_proof(index).expect("tiles hold the proof"), inclusion);
    assert_eq!(reader.consistency_proof(old).expect("tiles hold the proof"), consistency);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
