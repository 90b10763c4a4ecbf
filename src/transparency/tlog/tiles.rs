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
mod tests;
