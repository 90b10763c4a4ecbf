//! Tests of tiles: the spec's path examples, canonical paths only, tile sets per tree size,
//! entry bundles, and rebuilding roots and proofs from tiles.

use super::*;
use crate::transparency::tlog::merkle::leaf_hash;
use proptest::prelude::*;

#[test]
fn tile_paths_follow_the_spec_examples() {
    assert_eq!(encode_index(1_234_067), "x001/x234/067");
    assert_eq!(encode_index(0), "000");
    assert_eq!(encode_index(1000), "x001/000");
    assert_eq!(Tile::new(0, 1_234_067, 256).unwrap().path(), "tile/0/x001/x234/067");
    assert_eq!(Tile::new(2, 5, 17).unwrap().path(), "tile/2/005.p/17");
    assert_eq!(Tile::new(0, 7, 3).unwrap().entries_path(), "tile/entries/007.p/3");
}

#[test]
fn non_canonical_paths_are_refused() {
    for p in [
        "tile/0/x000/001",
        "tile/00/001",
        "tile/0/1",
        "tile/0/001.p/256",
        "tile/0/001.p/0",
        "tile/0/001.p/05",
        "tile/0/x001",
        "tile/0/001/002",
        "tile/64/000",
        "tiles/0/000",
        "tile/entries/000.p/",
    ] {
        assert!(parse_path(p).is_err(), "{p}");
    }
    assert_eq!(parse_path("tile/64/000"), Err(TileError::LevelTooHigh { level: 64 }));
    assert_eq!(parse_path("tile/0/000.p/256"), Err(TileError::BadWidth { width: 256 }));
}

#[test]
fn a_tree_of_70000_has_the_tiles_the_spec_lists() {
    let tiles = tiles_for_size(70_000);
    let count = |level: u8, full: bool| tiles.iter().filter(|t| t.level() == level && t.is_full() == full).count();
    assert_eq!((count(0, true), count(1, true), count(2, true)), (273, 1, 0));
    let partial: Vec<_> = tiles.iter().filter(|t| !t.is_full()).map(|t| (t.level(), t.width())).collect();
    assert_eq!(partial, vec![(0, 112), (1, 17), (2, 1)]);
    let t256: Vec<_> = tiles_for_size(256).iter().map(|t| t.path()).collect();
    assert_eq!(t256, vec!["tile/0/000", "tile/1/000.p/1"]);
    assert!(tiles_for_size(0).is_empty());
}

#[test]
fn tiles_added_are_the_difference_of_the_two_tile_sets() {
    for (old, new) in [(0, 1), (1, 2), (255, 256), (256, 257), (300, 70_000), (70_000, 70_000)] {
        let before = tiles_for_size(old);
        let want: Vec<_> = tiles_for_size(new).into_iter().filter(|t| !before.contains(t)).collect();
        assert_eq!(tiles_added(old, new), want, "{old} -> {new}");
    }
}

#[test]
fn tile_contents_come_from_the_stored_hashes_and_refuse_impossible_tiles() {
    let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let perfect = |l: u8, i: u64| merkle::perfect_subtree_hash(&leaves, l, i);
    for (tile, bytes) in build_tiles(&leaves) {
        assert_eq!(tile.contents(perfect), Ok(bytes), "{}", tile.path());
    }
    let impossible = Tile::new(63, u64::MAX, 256).unwrap();
    assert!(matches!(impossible.contents(perfect), Err(MerkleError::IncompleteSubtree { level: 255, .. })));
}

#[test]
fn bundles_refuse_long_entries_and_bad_counts() {
    let long = vec![0u8; MAX_ENTRY_LEN + 1];
    assert_eq!(encode_bundle(&[&long[..]]), Err(TileError::EntryTooLong { index: 0, len: 65_536 }));
    let ok = encode_bundle(&[b"ab".as_slice(), b""]).unwrap();
    assert_eq!(ok, vec![0, 2, b'a', b'b', 0, 0]);
    assert_eq!(decode_bundle(&ok, 3), Err(TileError::BundleCount { expected: 3, actual: 2 }));
    assert_eq!(decode_bundle(&ok[..3], 1), Err(TileError::BundleTruncated { index: 0 }));
    assert_eq!(decode_bundle(&ok[..5], 2), Err(TileError::BundleTruncated { index: 1 }));
}

fn reader_over(
    tiles: &[(Tile, Vec<u8>)],
    size: u64,
) -> TileReader<impl FnMut(&Tile) -> Result<Vec<u8>, std::io::Error> + '_> {
    TileReader::new(size, move |t: &Tile| {
        tiles.iter().find(|(x, _)| x == t).map(|(_, b)| b.clone()).ok_or_else(|| std::io::ErrorKind::NotFound.into())
    })
}

#[test]
fn tile_reader_rebuilds_roots_and_proofs_from_tiles() {
    let leaves: Vec<Hash> = (0u32..66_000).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for size in [1u64, 255, 256, 257, 65_536, 65_537, 66_000] {
        let tree = &leaves[..size as usize];
        let tiles = build_tiles(tree);
        let mut reader = reader_over(&tiles, size);
        assert_eq!(reader.root().unwrap(), merkle::root(tree), "size {size}");
        let mut frontier = Frontier::new();
        tree.iter().for_each(|h| frontier.append(*h, |_, _, _| {}));
        assert_eq!(reader.frontier().unwrap(), frontier);
        for index in [0, size / 2, size - 1] {
            let proof = reader.inclusion_proof(index).unwrap();
            assert_eq!(proof, merkle::inclusion_proof(index, tree).unwrap());
        }
        for old in [1, size / 3, size - 1] {
            let proof = reader.consistency_proof(old).unwrap();
            let old_root = merkle::root(&tree[..old as usize]);
            merkle::verify_consistency(old, size, &proof, &old_root, &merkle::root(tree)).unwrap();
        }
    }
}

#[test]
fn tile_reader_reports_short_tiles_and_missing_ones() {
    let leaves: Vec<Hash> = (0u32..10).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut tiles = build_tiles(&leaves);
    tiles[0].1.pop();
    let mut reader = reader_over(&tiles, 10);
    assert!(matches!(
        reader.root(),
        Err(TileReadError::Tile(TileError::TileLength { expected: 320, actual: 319, .. }))
    ));
    let mut reader = reader_over(&tiles, 11);
    assert!(matches!(reader.root(), Err(TileReadError::Fetch { path, .. }) if path == "tile/0/000.p/11"));
    assert!(matches!(
        reader.perfect_hash(4, 0),
        Err(TileReadError::Merkle(MerkleError::IncompleteSubtree { level: 4, index: 0, size: 11 }))
    ));
}

proptest! {
    #[test]
    fn tile_paths_round_trip(level in 0u8..=63, index in any::<u64>(), width in 1u16..=256) {
        let tile = Tile::new(level, index, width).unwrap();
        prop_assert_eq!(parse_path(&tile.path()), Ok(TilePath::Hashes(tile)));
        let bundle = Tile::new(0, index, width).unwrap();
        prop_assert_eq!(parse_path(&bundle.entries_path()), Ok(TilePath::Entries(bundle)));
    }

    #[test]
    fn entry_bundles_round_trip(entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..=256)) {
        let bytes = encode_bundle(&entries).unwrap();
        prop_assert_eq!(decode_bundle(&bytes, entries.len() as u16), Ok(entries));
    }
}
