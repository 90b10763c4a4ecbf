//! Making the log on first start, or moving in the log that versions before the log lived in
//! the database kept under `DATA/log/` (tlog-tiles files, `checkpoint`, `origin`, and after a
//! key rotation `active` and `keys/*.skey`). The move is checked (the checkpoint must verify and
//! the tiles must match it), committed in one transaction, and the old directory is then renamed
//! `log.moved`, so it is not mistaken for the live log.

use std::path::Path;

use chrono::Utc;

use super::keys::{key_id, seal};
use super::{LogError, sign};
use crate::store::{LogKeyRow, Store, TileBytes};
use crate::transparency::tlog::checkpoint::Checkpoint;
use crate::transparency::tlog::frontier::Frontier;
use crate::transparency::tlog::note::Signer;
use crate::transparency::tlog::tiles::{self, TileReader};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_owned(), source }
}

/// Makes the log in `store` (moving in the one under `legacy_dir` if there is one). Another
/// gateway may make it at the same moment: then its log is the log, and this does nothing.
pub(super) async fn make_or_import(
    store: &Store,
    legacy_dir: &Path,
    default_origin: &str,
    seed: &[u8; 32],
) -> Result<(), LogError> {
    let now = Utc::now();
    if legacy_dir.join("checkpoint").exists() {
        let old = read_legacy(legacy_dir, seed)?;
        if store.create_log(&old.origin, old.size, &old.checkpoint, &old.tiles, &old.keys, now).await? {
            let moved = legacy_dir.with_extension("moved");
            std::fs::rename(legacy_dir, &moved).map_err(io(legacy_dir))?;
            tracing::info!(size = old.size, moved = %moved.display(), "moved the log from its files into the database");
        }
        return Ok(());
    }
    let base = Signer::from_seed(default_origin, seed)
        .map_err(|e| LogError::Corrupt(format!("log origin `{default_origin}`: {e}")))?;
    let checkpoint = sign(&[base], &Frontier::new())?;
    store.create_log(default_origin, 0, &checkpoint, &[], &[], now).await?;
    Ok(())
}

/// A log as an earlier version kept it in files.
struct Legacy {
    origin: String,
    size: u64,
    checkpoint: String,
    tiles: Vec<TileBytes>,
    keys: Vec<LogKeyRow>,
}

fn read_legacy(dir: &Path, seed: &[u8; 32]) -> Result<Legacy, LogError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(io(&path))
    };
    let origin = read("origin")?.trim().to_owned();
    let checkpoint = read("checkpoint")?;
    let base =
        Signer::from_seed(&origin, seed).map_err(|e| LogError::Corrupt(format!("log origin `{origin}`: {e}")))?;
    let base_id = key_id(&base);
    let mut signers = Vec::new();
    match std::fs::read_to_string(dir.join("active")) {
        Ok(active) => {
            for id in active.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if id == base_id {
                    signers
                        .push((None, Signer::from_seed(&origin, seed).map_err(|e| LogError::Corrupt(e.to_string()))?));
                    continue;
                }
                let skey = zeroize::Zeroizing::new(read(&format!("keys/{id}.skey"))?);
                let signer =
                    Signer::from_skey(skey.trim()).map_err(|e| LogError::Corrupt(format!("log key `{id}`: {e}")))?;
                signers.push((Some(seal(seed, id, skey.trim())?), signer));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => signers.push((None, base)),
        Err(e) => return Err(LogError::Io { path: dir.join("active"), source: e }),
    }
    let opened = signers
        .iter()
        .find_map(|(_, s)| Checkpoint::open(&checkpoint, &s.verifier(), &[]).ok())
        .ok_or(LogError::OtherSigningKey)?
        .0;
    let size = opened.size();
    let mut tiles = Vec::new();
    for tile in tiles::tiles_for_size(size) {
        let path = dir.join(tile.path());
        tiles.push((tile.level(), tile.index(), std::fs::read(&path).map_err(io(&path))?));
    }
    let root = TileReader::new(size, |t: &tiles::Tile| {
        tiles
            .iter()
            .find(|(l, i, _)| *l == t.level() && *i == t.index())
            .map(|(_, _, b)| b.clone())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    })
    .root()
    .map_err(|e| LogError::Corrupt(format!("the log's tiles: {e}")))?;
    if root != *opened.root() {
        return Err(LogError::Corrupt(format!("the log's tiles do not match its checkpoint at size {size}")));
    }
    let keys = if dir.join("active").exists() {
        signers.into_iter().map(|(sealed, s)| LogKeyRow { id: key_id(&s), sealed }).collect()
    } else {
        Vec::new()
    };
    Ok(Legacy { origin, size, checkpoint, tiles, keys })
}
