//! Tiles (c2sp.org/tlog-tiles) as a verifier reads them from a log it does not trust: tile and
//! entry bundle paths, entry bundles, and tiles whose bytes the input supplies.
//!
//! Input: the first line is read as a path; the rest as an entry bundle of every width; then
//! the input's bytes replace one tile of a real 300-leaf tree read through `TileReader`.
//!
//! Properties: a path that parses is the canonical path of what it names (renders back
//! exactly); an entry bundle that decodes encodes back to exactly its bytes; a reader fed a
//! tile of the wrong length refuses, never panics; a reader given tiles that disagree with the
//! tree never yields the tree's root unless the bytes it was given are the real ones.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::transparency::tlog::merkle::{self, Hash};
use sealpost::transparency::tlog::tiles::{self, TilePath, TileReader};
use std::sync::LazyLock;

/// A real tree: one full level-0 tile and a partial one, a partial level-1 tile.
static TREE: LazyLock<(Vec<Hash>, Vec<(tiles::Tile, Vec<u8>)>)> = LazyLock::new(|| {
    let leaves: Vec<Hash> = (0..300u32).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect();
    let built = tiles::build_tiles(&leaves);
    (leaves, built)
});

fuzz_target!(|data: &[u8]| {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(path) = std::str::from_utf8(line) {
        match tiles::parse_path(path) {
            Ok(TilePath::Hashes(tile)) => {
                assert_eq!(tile.path(), path);
                let tile_bytes = vec![0u8; usize::from(tile.width()) * 32];
                assert_eq!(tile.hashes(&tile_bytes).map(|h| h.len()), Ok(usize::from(tile.width())));
            }
            Ok(TilePath::Entries(tile)) => {
                assert_eq!(tile.entries_path(), path);
                assert_eq!(tile.level(), 0);
            }
            Err(_) => {}
        }
    }

    for width in [1u16, 2, 255, 256] {
        if let Ok(entries) = tiles::decode_bundle(rest, width) {
            assert_eq!(entries.len(), usize::from(width));
            assert_eq!(tiles::encode_bundle(&entries).as_deref(), Ok(rest), "a decoded bundle encodes back");
        }
    }

    let (leaves, built) = &*TREE;
    let root = merkle::root(leaves);
    let which = data.first().map_or(0, |&b| usize::from(b) % built.len());
    let (target, real) = &built[which];
    let replaced = real.as_slice() != data;
    let mut reader = TileReader::new(leaves.len() as u64, |tile: &tiles::Tile| {
        let bytes = if tile == target {
            data.to_vec()
        } else {
            built.iter().find(|(t, _)| t == tile).map(|(_, b)| b.clone()).unwrap_or_default()
        };
        Ok::<_, std::io::Error>(bytes)
    });
    match reader.root() {
        Ok(got) if got == root => {
            // The root of 300 leaves needs the level-1 tile and the partial level-0 tile, every
            // hash of both: only the full level-0 tile may be replaced without changing it.
            assert!(!replaced || (target.level() == 0 && target.is_full()), "a forged tile gave the real root");
        }
        _ => {}
    }
    let index = u64::from(data.len() as u16) % leaves.len() as u64;
    if let Ok(proof) = reader.inclusion_proof(index) {
        if merkle::verify_inclusion(&leaves[index as usize], index, leaves.len() as u64, &proof, &root).is_ok() {
            assert_eq!(proof, merkle::inclusion_proof(index, leaves).expect("in range"));
        }
    }
});
