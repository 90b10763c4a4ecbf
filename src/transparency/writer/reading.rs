//! Reading the log's hash tiles from the database. The tree maths (`TileReader`) asks for tiles
//! one at a time and cannot wait; so [`Log::read_tiles`] runs it over the tiles at hand, and
//! when it stops at one that is missing, fetches that tile and runs it again. Tiles are kept in
//! a small cache: a full tile never changes, and a partial one only ever grows, so a cached tile
//! serves any width up to its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Log, LogError};
use crate::transparency::tlog::merkle::Hash;
use crate::transparency::tlog::tiles::{Tile, TileReadError, TileReader};

/// Tiles kept at most; past that the cache starts again (each is at most 8 KiB).
const CACHED_MAX: usize = 2048;

/// At most this many tiles are fetched for one reading (a proof in a tree of 2^64 leaves needs
/// fewer).
const FETCHES_MAX: usize = 64;

/// Tiles by tile level and index.
type Tiles = HashMap<(u8, u64), Arc<Vec<u8>>>;

/// Recently read or written tiles, the widest seen of each.
#[derive(Debug, Default)]
pub(super) struct TileCache(Mutex<Tiles>);

impl TileCache {
    fn get(&self, level: u8, index: u64) -> Option<Arc<Vec<u8>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&(level, index)).cloned()
    }

    /// Keeps `bytes` as tile `level`, `index` unless a wider one is kept already.
    pub(super) fn offer(&self, level: u8, index: u64, bytes: Vec<u8>) {
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHED_MAX {
            cache.clear();
        }
        let wider = cache.get(&(level, index)).is_none_or(|b| b.len() < bytes.len());
        if wider {
            cache.insert((level, index), Arc::new(bytes));
        }
    }
}

/// A tile the reader needed that was not at hand.
#[derive(Debug, thiserror::Error)]
#[error("tile {0}/{1} is not at hand")]
pub(super) struct Missing(u8, u64);

/// The reader [`Log::read_tiles`] lends.
pub(super) type Reader<'a> = TileReader<Box<dyn FnMut(&Tile) -> Result<Vec<u8>, Missing> + 'a>>;

impl Log {
    /// Runs `op` on a reader of the tree of `size` leaves, whose tiles come from `unpublished`
    /// (this batch's, not committed yet), the cache, or the database.
    pub(super) async fn read_tiles<T>(
        &self,
        size: u64,
        unpublished: &HashMap<(u8, u64), Vec<u8>>,
        op: impl Fn(&mut Reader<'_>) -> Result<T, TileReadError<Missing>>,
    ) -> Result<T, LogError> {
        let mut fetched = Tiles::new();
        for _ in 0..=FETCHES_MAX {
            let result = {
                let fetched = &fetched;
                let fetch = move |tile: &Tile| {
                    let key = (tile.level(), tile.index());
                    let want = usize::from(tile.width()) * Hash::LEN;
                    let at_hand = unpublished
                        .get(&key)
                        .filter(|b| b.len() >= want)
                        .map(|b| b[..want].to_vec())
                        .or_else(|| fetched.get(&key).filter(|b| b.len() >= want).map(|b| b[..want].to_vec()))
                        .or_else(|| {
                            self.tiles.get(key.0, key.1).filter(|b| b.len() >= want).map(|b| b[..want].to_vec())
                        });
                    at_hand.ok_or(Missing(key.0, key.1))
                };
                let mut reader: Reader<'_> = TileReader::new(size, Box::new(fetch));
                op(&mut reader)
            };
            match result {
                Ok(value) => return Ok(value),
                Err(TileReadError::Fetch { source: Missing(level, index), .. }) => {
                    if fetched.contains_key(&(level, index)) {
                        return Err(LogError::Corrupt(format!("tile {level}/{index} is narrower than the tree needs")));
                    }
                    let bytes = self.fetch_tile(level, index).await?;
                    fetched.insert((level, index), bytes);
                }
                Err(e) => return Err(LogError::Corrupt(e.to_string())),
            }
        }
        Err(LogError::Corrupt(format!("reading the tree of size {size} needed more than {FETCHES_MAX} tiles")))
    }

    /// Tile `level`, `index`, at least `want` bytes of it, from the cache or the database.
    pub(super) async fn tile_bytes(&self, level: u8, index: u64, want: usize) -> Result<Arc<Vec<u8>>, LogError> {
        if let Some(bytes) = self.tiles.get(level, index).filter(|b| b.len() >= want) {
            return Ok(bytes);
        }
        let bytes = self.fetch_tile(level, index).await?;
        if bytes.len() < want {
            return Err(LogError::Corrupt(format!("tile {level}/{index} is narrower than the tree needs")));
        }
        Ok(bytes)
    }

    /// Tile `level`, `index` from the database (and into the cache).
    async fn fetch_tile(&self, level: u8, index: u64) -> Result<Arc<Vec<u8>>, LogError> {
        let bytes = self
            .store
            .log_tile(level, index)
            .await?
            .ok_or_else(|| LogError::Corrupt(format!("tile {level}/{index} is missing from the database")))?;
        self.tiles.offer(level, index, bytes.clone());
        Ok(Arc::new(bytes))
    }
}
