//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): tile coordinates and paths, tile and entry
//! bundle encodings, and a reader that rebuilds any tree hash or proof from fetched tiles.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::frontier::Frontier;
use super::merkle::{self, Hash, MerkleError};

/// Tile height: each tile spans 8 levels of the tree (tlog-tiles "Merkle Tree").
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile, and entries in a full entry bundle.
pub const TILE_WIDTH: u16 = 256;
/// The largest entry an entry bundle can hold (big-endian uint16 length prefix).
pub const MAX_ENTRY_LEN: usize = 65_535;
/// The largest tile level a path may name (tlog-tiles: "between 0 and 63").
pub const MAX_TILE_LEVEL: u8 = 63;

/// Why a tile path, tile or entry bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileError {
    /// A tile level above 63.
    #[error("tile level {level} is above {MAX_TILE_LEVEL}")]
    LevelTooHigh { level: u64 },
    /// A tile width outside 1..=256.
    #[error("tile width {width} is outside 1 to 256")]
    BadWidth { width: u64 },
    /// A path that is not `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` in canonical form.
    #[error("`{path}` is not a canonical tile path")]
    BadPath { path: String },
    /// Tile bytes whose length does not match the tile's width.
    #[error("tile `{path}` has {actual} bytes, expected {expected}")]
    TileLength { path: String, expected: usize, actual: usize },
    /// An entry too long for the 16-bit length prefix.
    #[error("entry {index} is {len} bytes long, more than {MAX_ENTRY_LEN}")]
    EntryTooLong { index: usize, len: usize },
    /// An entry bundle that ends inside an entry.
    #[error("entry bundle is truncated in entry {index}")]
    BundleTruncated { index: usize },
    /// An entry bundle with a different number of entries than its width.
    #[error("entry bundle holds {actual} entries, expected {expected}")]
    BundleCount { expected: usize, actual: usize },
}

/// A tile: `width` consecutive hashes at tree level `8 * level`, starting at hash
/// `index * 256` of that level (tlog-tiles "Merkle Tree"). Full tiles have width 256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    level: u8,
    index: u64,
    width: u16,
}

/// What a parsed path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`: a tile of hashes.
    Hashes(Tile),
    /// `tile/entries/<N>[.p/<W>]`: the entry bundle matching level-0 tile `N`.
    Entries(Tile),
}

impl Tile {
    /// A tile, if `level <= 63` and `1 <= width <= 256`.
    pub fn new(level: u8, index: u64, width: u16) -> Result<Self, TileError> {
        if level > MAX_TILE_LEVEL {
            return Err(TileError::LevelTooHigh { level: level.into() });
        }
        if width == 0 || width > TILE_WIDTH {
            return Err(TileError::BadWidth { width: width.into() });
        }
        Ok(Tile { level, index, width })
    }

    /// The tile level `L` (tree level `8 * L`).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The tile index `N` within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The number of hashes (or entries) in the tile.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the tile holds all 256 hashes.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The tile's path: `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, self.suffix())
    }

    /// The matching entry bundle's path, `tile/entries/<N>[.p/<W>]` (meaningful at level 0).
    pub fn entries_path(&self) -> String {
        format!("tile/entries/{}", self.suffix())
    }

    fn suffix(&self) -> String {
        let mut s = encode_index(self.index);
        if !self.is_full() {
            let _ = write!(s, ".p/{}", self.width);
        }
        s
    }

    /// The bytes of this tile: `width` hashes of 32 bytes, hash `i` being the perfect subtree
    /// at tree level `8 * L`, index `N * 256 + i` (tlog-tiles "Merkle Tree").
    pub fn contents<E>(&self, mut perfect: impl FnMut(u8, u64) -> Result<Hash, E>) -> Result<Vec<u8>, E> {
        let mut out = Vec::with_capacity(usize::from(self.width) * Hash::LEN);
        let first = self.index.saturating_mul(u64::from(TILE_WIDTH));
        for i in 0..u64::from(self.width) {
            out.extend_from_slice(perfect(self.level.saturating_mul(TILE_HEIGHT), first.saturating_add(i))?.as_bytes());
        }
        Ok(out)
    }

    /// Splits tile bytes into hashes, checking the length against the width.
    pub fn hashes(&self, bytes: &[u8]) -> Result<Vec<Hash>, TileError> {
        let expected = usize::from(self.width) * Hash::LEN;
        if bytes.len() != expected {
            return Err(TileError::TileLength { path: self.path(), expected, actual: bytes.len() });
        }
        Ok(bytes.chunks_exact(Hash::LEN).filter_map(Hash::from_slice).collect())
    }
}

/// `N` as zero-padded three-digit path elements, all but the last prefixed with `x`:
/// 1234067 becomes `x001/x234/067` (tlog-tiles "Merkle Tree").
pub fn encode_index(mut n: u64) -> String {
    let mut groups = vec![n % 1000];
    n /= 1000;
    while n > 0 {
        groups.push(n % 1000);
        n /= 1000;
    }
    let mut s = String::new();
    for (i, g) in groups.iter().rev().enumerate() {
        let last = i + 1 == groups.len();
        let _ = write!(s, "{}{g:03}{}", if last { "" } else { "x" }, if last { "" } else { "/" });
    }
    s
}

fn parse_decimal(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// Parses a tile or entry bundle path (relative to the log prefix), accepting only the
/// canonical encoding that [`Tile::path`] and [`Tile::entries_path`] produce.
pub fn parse_path(path: &str) -> Result<TilePath, TileError> {
    let bad = || TileError::BadPath { path: path.to_owned() };
    let rest = path.strip_prefix("tile/").ok_or_else(bad)?;
    let (level_part, rest) = rest.split_once('/').ok_or_else(bad)?;
    let (index_part, width) = match rest.split_once(".p/") {
        Some((index_part, w)) => {
            let w = parse_decimal(w).ok_or_else(bad)?;
            if w == 0 || w >= u64::from(TILE_WIDTH) {
                return Err(TileError::BadWidth { width: w });
            }
            (index_part, w as u16)
        }
        None => (rest, TILE_WIDTH),
    };
    let mut index = 0u64;
    let segments: Vec<&str> = index_part.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let digits = if i + 1 == segments.len() { *seg } else { seg.strip_prefix('x').ok_or_else(bad)? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let group: u64 = digits.parse().map_err(|_| bad())?;
        index = index.checked_mul(1000).and_then(|n| n.checked_add(group)).ok_or_else(bad)?;
    }
    if encode_index(index) != index_part {
        return Err(bad());
    }
    if level_part == "entries" {
        return Ok(TilePath::Entries(Tile::new(0, index, width)?));
    }
    let level = parse_decimal(level_part).ok_or_else(bad)?;
    let level = u8::try_from(level).map_err(|_| TileError::LevelTooHigh { level })?;
    Ok(TilePath::Hashes(Tile::new(level, index, width)?))
}

/// The number of hashes at tile level `level` in a tree of `size` leaves.
fn hashes_at(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT)).unwrap_or(0)
}

/// The tile at `level` and `index` as it exists in a tree of `size` leaves, if it exists.
pub fn tile_at(size: u64, level: u8, index: u64) -> Option<Tile> {
    let n = hashes_at(size, level);
    let start = index.checked_mul(u64::from(TILE_WIDTH))?;
    let width = n.checked_sub(start).filter(|w| *w > 0)?.min(u64::from(TILE_WIDTH));
    Tile::new(level, index, width as u16).ok()
}

/// Every tile of a tree of `size` leaves, full and partial, by level then index
/// (tlog-tiles "Partial Tiles"). Level-0 tiles double as the entry bundles.
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let n = hashes_at(size, level);
        if n == 0 {
            break;
        }
        out.extend((0..n.div_ceil(u64::from(TILE_WIDTH))).filter_map(|i| tile_at(size, level, i)));
    }
    out
}

/// The tiles a tree of `new` leaves has that a tree of `old` leaves does not (new full tiles
/// and new or wider partial tiles): what a sequencer writes when it grows the tree.
pub fn tiles_added(old: u64, new: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let (n_old, n_new) = (hashes_at(old, level), hashes_at(new, level));
        if n_new <= n_old {
            break;
        }
        let first = n_old / u64::from(TILE_WIDTH);
        let last = n_new.div_ceil(u64::from(TILE_WIDTH));
        out.extend((first..last).filter_map(|i| tile_at(new, level, i)));
    }
    out
}

/// Encodes an entry bundle: each entry as a big-endian uint16 length then its bytes
/// (tlog-tiles "Log entries").
pub fn encode_bundle<T: AsRef<[u8]>>(entries: &[T]) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLong { index, len: entry.len() })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// Decodes an entry bundle that must hold exactly `width` entries and nothing after them.
pub fn decode_bundle(bytes: &[u8], width: u16) -> Result<Vec<Vec<u8>>, TileError> {
    let mut out = Vec::with_capacity(width.into());
    let mut rest = bytes;
    while !rest.is_empty() {
        let index = out.len();
        let (len, tail) = match rest {
            [a, b, tail @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            _ => return Err(TileError::BundleTruncated { index }),
        };
        if tail.len() < len {
            return Err(TileError::BundleTruncated { index });
        }
        out.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    if out.len() != usize::from(width) {
        return Err(TileError::BundleCount { expected: width.into(), actual: out.len() });
    }
    Ok(out)
}

/// Every tile of the tree made of `leaves`, with its bytes: what an auditor recomputes from
/// the entry bundles and compares with what the log serves.
pub fn build_tiles(leaves: &[Hash]) -> Vec<(Tile, Vec<u8>)> {
    let mut levels: Vec<Vec<Hash>> = vec![leaves.to_vec()];
    // Tile level L + 1 holds the hashes of the full tiles of level L.
    while let Some(below) = levels.last().filter(|l| l.len() >= usize::from(TILE_WIDTH)) {
        let above = below.chunks_exact(usize::from(TILE_WIDTH)).map(merkle::root).collect();
        levels.push(above);
    }
    tiles_for_size(leaves.len() as u64)
        .into_iter()
        .map(|tile| {
            let start = tile.index as usize * usize::from(TILE_WIDTH);
            let hashes = &levels[usize::from(tile.level)][start..start + usize::from(tile.width)];
            (tile, hashes.iter().flat_map(|h| h.0).collect())
        })
        .collect()
}

/// Why the tile reader could not produce a hash.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TileReadError<E: std::error::Error + 'static> {
    /// The fetch function failed.
    #[error("cannot fetch tile `{path}`")]
    Fetch {
        path: String,
        #[source]
        source: E,
    },
    /// A fetched tile was malformed.
    #[error(transparent)]
    Tile(#[from] TileError),
    /// A node or proof outside the tree was asked for.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// Reads any hash of a tree of fixed size from its tiles, fetching each tile once.
///
/// The tree size must come from a verified checkpoint: tlog-tiles forbids fetching partial
/// tiles that no checkpoint requires. Results are only as good as the tiles; compare the
/// [`TileReader::root`] with the checkpoint before trusting anything else it returns.
pub struct TileReader<F> {
    size: u64,
    fetch: F,
    cache: HashMap<Tile, Vec<Hash>>,
}

impl<F> std::fmt::Debug for TileReader<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileReader").field("size", &self.size).field("cached_tiles", &self.cache.len()).finish()
    }
}

impl<F, E> TileReader<F>
where
    F: FnMut(&Tile) -> Result<Vec<u8>, E>,
    E: std::error::Error + 'static,
{
    /// A reader for the tree of `size` leaves; `fetch` returns a tile's bytes.
    pub fn new(size: u64, fetch: F) -> Self {
        TileReader { size, fetch, cache: HashMap::new() }
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hash of the perfect subtree at tree `level`, `index` (the "stored hash" that a tile
    /// holds directly when `level` is a multiple of 8, or that is rebuilt from one tile).
    pub fn perfect_hash(&mut self, level: u8, index: u64) -> Result<Hash, TileReadError<E>> {
        let size = self.size;
        let incomplete = || MerkleError::IncompleteSubtree { level, index, size };
        let end =
            index.checked_add(1).and_then(|i| i.checked_shl(u32::from(level))).filter(|e| e >> level == index + 1);
        if level > 63 || end.is_none_or(|e| e > size) {
            return Err(incomplete().into());
        }
        let (tile_level, sub) = (level / TILE_HEIGHT, level % TILE_HEIGHT);
        let start = index << sub;
        let count = 1usize << sub;
        let tile = tile_at(size, tile_level, start / u64::from(TILE_WIDTH)).ok_or_else(incomplete)?;
        let offset = (start % u64::from(TILE_WIDTH)) as usize;
        let hashes = self.tile_hashes(tile)?;
        let span = hashes.get(offset..offset + count).ok_or_else(incomplete)?;
        Ok(merkle::root(span))
    }

    fn tile_hashes(&mut self, tile: Tile) -> Result<&[Hash], TileReadError<E>> {
        if !self.cache.contains_key(&tile) {
            let bytes = (self.fetch)(&tile).map_err(|source| TileReadError::Fetch { path: tile.path(), source })?;
            let hashes = tile.hashes(&bytes)?;
            self.cache.insert(tile, hashes);
        }
        Ok(self.cache.get(&tile).map(Vec::as_slice).unwrap_or_default())
    }

    /// The root hash of the tree.
    pub fn root(&mut self) -> Result<Hash, TileReadError<E>> {
        merkle::root_with(self.size, |l, i| self.perfect_hash(l, i))
    }

    /// The inclusion proof of leaf `index` (RFC 9162 section 2.1.3.1).
    pub fn inclusion_proof(&mut self, index: u64) -> Result<Vec<Hash>, TileReadError<E>> {
        let size = self.size;
        merkle::inclusion_proof_with(index, size, |l, i| self.perfect_hash(l, i))
    }

    /// The consistency proof from a tree of `old` leaves to this one (RFC 9162 section 2.1.4.1).
    pub fn consistency_proof(&mut self, old: u64) -> Result<Vec<Hash>, TileReadError<E>> {
        let size = self.size;
        merkle::consistency_proof_with(old, size, |l, i| self.perfect_hash(l, i))
    }

    /// The tree's right edge, to resume appending after a restart.
    pub fn frontier(&mut self) -> Result<Frontier, TileReadError<E>> {
        Frontier::from_tree(self.size, |l, i| self.perfect_hash(l, i))
    }
}

#[cfg(test)]
mod tests {
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
            tiles
                .iter()
                .find(|(x, _)| x == t)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
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
}
