//! The transparency log: every audit event becomes a leaf of an append-only Merkle tree,
//! published in the C2SP tlog-tiles layout under `DATA/log/` with a signed C2SP checkpoint.
//!
//! Events are durable in the database first (in the same transaction as what they record); the
//! sequencer ([`sequencer`]) integrates them in index order in batches: it writes the new tiles
//! and entry bundles (temporary file, fsync, rename), then signs and writes the checkpoint, which
//! is the commit point. A crash at any point leaves the last checkpoint and everything it covers
//! intact, and the next integration rewrites the same bytes. The maths and formats are the pure
//! [`crate::transparency::tlog`] module; this one does the I/O. Two private submodules hold
//! the parts with a life of their own: `durable` (temporary file, fsync, rename, fsync of the
//! directory) and `keys` (the log's signing keys and their rotation).

mod durable;
mod keys;
pub mod sequencer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use durable::{write_all_atomic, write_atomic};
use keys::load_signers;

use crate::store::{Store, StoreError};
use crate::transparency::tlog::checkpoint::Checkpoint;
use crate::transparency::tlog::cosignature::CosignatureVerifier;
use crate::transparency::tlog::frontier::Frontier;
use crate::transparency::tlog::merkle::{Hash, leaf_hash};
use crate::transparency::tlog::note::{Note, NoteSigner as _, NoteVerifier, Signer};
use crate::transparency::tlog::proof::TlogProof;
use crate::transparency::tlog::tiles::{self, Tile, TileReader};
use crate::transparency::witness::{self, WitnessClientError};

/// Leaves integrated per batch at most (the rest waits for the next round).
const BATCH: u32 = 4096;

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A log file could not be read or written.
    #[error("log file `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored checkpoint or tiles are damaged or not ours.
    #[error("the log on disk is inconsistent: {0}")]
    Corrupt(String),
    /// No active log key has that id.
    #[error("no active log key has id `{0}`")]
    UnknownKey(String),
    /// The only active key cannot be retired.
    #[error("`{0}` is the only active log key: rotate first, then retire the old one")]
    LastKey(String),
    /// The requested entry is not in the log yet.
    #[error("entry {index} is not integrated yet (log size {size})")]
    NotYet {
        /// The entry.
        index: u64,
        /// The current size.
        size: u64,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.to_owned(), source }
}

/// The log's state in memory: its size, right edge, and the signed checkpoint.
#[derive(Debug)]
struct Head {
    frontier: Frontier,
    checkpoint: String,
}

/// The transparency log under a directory.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    origin: String,
    base_seed: zeroize::Zeroizing<[u8; 32]>,
    /// The active note keys, oldest first; the last is the current one. During a key rotation
    /// there are two, and every checkpoint is signed by both.
    signers: std::sync::RwLock<std::sync::Arc<Vec<Signer>>>,
    head: std::sync::Mutex<Head>,
    witnesses: Vec<Witness>,
    http: reqwest::Client,
}

/// A witness the log asks to cosign each new checkpoint.
#[derive(Debug)]
struct Witness {
    url: String,
    verifier: CosignatureVerifier,
    /// The size it last cosigned, as far as we know.
    known: std::sync::Mutex<u64>,
}

/// A witness as configured: where it is and its cosignature verifier key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its base URL (it serves `POST /add-checkpoint`).
    pub url: String,
    /// Its verifier key string (`name+hexid+base64`).
    pub key: String,
}

impl Log {
    /// Opens (creating) the log in `dir`, signed as `origin` with the gateway's Ed25519 seed.
    /// The origin is fixed at the first start (file `origin`), so links and ports may change.
    pub fn open(dir: &Path, default_origin: &str, seed: &[u8; 32]) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let origin_path = dir.join("origin");
        let origin = match std::fs::read_to_string(&origin_path) {
            Ok(o) => o.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&origin_path, format!("{default_origin}\n").as_bytes())?;
                default_origin.to_owned()
            }
            Err(e) => return Err(LogError::Io { path: origin_path, source: e }),
        };
        let signers = load_signers(dir, &origin, seed)?;
        let current = signers.last().map(|s| s.verifier().to_vkey()).unwrap_or_default();
        write_atomic(&dir.join("key"), format!("{current}\n").as_bytes())?;
        let checkpoint_path = dir.join("checkpoint");
        let (frontier, checkpoint) = match std::fs::read_to_string(&checkpoint_path) {
            Ok(note) => {
                let opened = signers
                    .iter()
                    .find_map(|signer| Checkpoint::open(&note, &signer.verifier(), &[]).ok())
                    .ok_or_else(|| {
                        LogError::Corrupt("checkpoint does not verify with this gateway's log keys".to_owned())
                    })?
                    .0;
                let size = opened.size();
                let frontier = reader(dir, size)
                    .frontier()
                    .map_err(|e| LogError::Corrupt(format!("tiles for size {size}: {e}")))?;
                if frontier.root() != *opened.root() {
                    return Err(LogError::Corrupt(format!("tiles do not match the checkpoint at size {size}")));
                }
                (frontier, note)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let frontier = Frontier::new();
                let note = sign(&signers, &frontier)?;
                write_atomic(&checkpoint_path, note.as_bytes())?;
                (frontier, note)
            }
            Err(e) => return Err(LogError::Io { path: checkpoint_path, source: e }),
        };
        Ok(Self {
            dir: dir.to_owned(),
            origin,
            base_seed: zeroize::Zeroizing::new(*seed),
            signers: std::sync::RwLock::new(std::sync::Arc::new(signers)),
            head: std::sync::Mutex::new(Head { frontier, checkpoint }),
            witnesses: Vec::new(),
            http: reqwest::Client::new(),
        })
    }

    /// Adds the witnesses to ask for cosignatures.
    pub fn with_witnesses(mut self, witnesses: &[WitnessConfig]) -> Result<Self, LogError> {
        for w in witnesses {
            let verifier = CosignatureVerifier::from_vkey(w.key.trim())
                .map_err(|e| LogError::Corrupt(format!("witness key for `{}`: {e}", w.url)))?;
            self.witnesses.push(Witness { url: w.url.clone(), verifier, known: std::sync::Mutex::new(0) });
        }
        self.http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| LogError::Corrupt(format!("http client: {e}")))?;
        Ok(self)
    }

    /// Asks every witness to cosign the checkpoint of `size` leaves and adds the cosignatures
    /// that verify. A witness that is down or refuses is logged and skipped: the checkpoint is
    /// published without it (a policy that requires it will then refuse receipts).
    async fn cosign(&self, note: String, size: u64) -> String {
        let Ok(mut signed) = Note::parse(&note) else { return note };
        for w in &self.witnesses {
            let mut old = *w.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut result = Err(WitnessClientError::BadResponse { reason: "not asked".to_owned() });
            for _ in 0..2 {
                let proof = match self.consistency_proof(old, size) {
                    Ok(p) => p,
                    Err(e) => {
                        result = Err(WitnessClientError::BadResponse { reason: e.to_string() });
                        break;
                    }
                };
                result = witness::add_checkpoint(&self.http, &w.url, old, &proof, &note).await;
                match &result {
                    Err(WitnessClientError::Conflict { known_size }) if *known_size <= size => old = *known_size,
                    _ => break,
                }
            }
            match result {
                Ok(sigs) => {
                    for sig in sigs {
                        let mut candidate = signed.clone();
                        if candidate.add_signature(sig).is_err() {
                            continue;
                        }
                        let log = self.verifier();
                        let opened = Checkpoint::open(&candidate.to_string(), &log, &[&w.verifier]);
                        if opened
                            .is_ok_and(|(_, o)| o.verified.iter().any(|s| s.name == NoteVerifier::name(&w.verifier)))
                        {
                            signed = candidate;
                            *w.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = size;
                        }
                    }
                }
                Err(e) => tracing::warn!(witness = %w.url, error = %e, "witness did not cosign; published without it"),
            }
        }
        signed.to_string()
    }

    /// A consistency proof from `old` to `new` leaves, from the tiles on disk.
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        if old == 0 || old == new {
            return Ok(Vec::new());
        }
        reader(&self.dir, new).consistency_proof(old).map_err(|e| LogError::Corrupt(format!("consistency proof: {e}")))
    }

    fn head(&self) -> std::sync::MutexGuard<'_, Head> {
        self.head.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The number of integrated entries.
    pub fn size(&self) -> u64 {
        self.head().frontier.size()
    }

    /// The current signed checkpoint.
    pub fn checkpoint(&self) -> String {
        self.head().checkpoint.clone()
    }

    /// The log's directory (served under `/log/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Integrates the next batch of pending events; returns the new size. Only the sequencer
    /// calls this (one writer).
    pub async fn integrate(&self, store: &Store) -> Result<u64, LogError> {
        let size = self.size();
        let pending = store.entries_from(size, BATCH).await?;
        if pending.is_empty() {
            return Ok(size);
        }
        let dir = self.dir.clone();
        let mut frontier = self.head().frontier.clone();
        let mut new_nodes: HashMap<(u8, u64), Hash> = HashMap::new();
        let mut new_entries: HashMap<u64, Vec<u8>> = HashMap::new();
        for (expected, (idx, entry)) in (size..).zip(&pending) {
            if *idx != expected {
                return Err(LogError::Corrupt(format!("event index {idx} where {expected} was expected")));
            }
            frontier.append(leaf_hash(entry.as_bytes()), |level, index, hash| {
                if level % 8 == 0 {
                    new_nodes.insert((level, index), *hash);
                }
            });
            new_entries.insert(*idx, entry.clone().into_bytes());
        }
        let new_size = frontier.size();
        // Entries of partial bundles integrated before this batch come back from the store.
        let first_bundle_start = (size / 256) * 256;
        for (idx, entry) in store.entries_from(first_bundle_start, (size - first_bundle_start) as u32).await? {
            new_entries.entry(idx).or_insert_with(|| entry.into_bytes());
        }
        let signers = self.signers();
        let written = frontier.clone();
        let note = tokio::task::spawn_blocking(move || -> Result<String, LogError> {
            let frontier = written;
            let mut old = reader(&dir, size);
            let mut files = Vec::new();
            for tile in tiles::tiles_added(size, new_size) {
                let bytes = tile
                    .contents(|level, index| match new_nodes.get(&(level, index)) {
                        Some(h) => Ok(*h),
                        None => old.perfect_hash(level, index).map_err(|e| e.to_string()),
                    })
                    .map_err(|e| LogError::Corrupt(format!("building {}: {e}", tile.path())))?;
                files.push((dir.join(tile.path()), bytes));
                if tile.level() == 0 {
                    let start = tile.index() * 256;
                    let entries: Vec<&Vec<u8>> = (start..start + u64::from(tile.width()))
                        .map(|i| new_entries.get(&i).ok_or_else(|| LogError::Corrupt(format!("entry {i} missing"))))
                        .collect::<Result<_, _>>()?;
                    let bundle = tiles::encode_bundle(&entries).map_err(|e| LogError::Corrupt(e.to_string()))?;
                    files.push((dir.join(tile.entries_path()), bundle));
                }
            }
            write_all_atomic(&files)?;
            sign(&signers, &frontier)
        })
        .await
        .map_err(|e| LogError::Corrupt(format!("log writer task failed: {e}")))??;
        let note = self.cosign(note, new_size).await;
        let path = self.dir.join("checkpoint");
        let bytes = note.clone().into_bytes();
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| LogError::Corrupt(format!("log writer task failed: {e}")))??;
        let mut head = self.head();
        head.frontier = frontier;
        head.checkpoint = note;
        Ok(new_size)
    }

    /// A C2SP tlog-proof receipt for entry `index`, whose exact bytes are `entry`, against the
    /// current checkpoint.
    pub fn receipt(&self, index: u64, entry: &[u8]) -> Result<String, LogError> {
        let (size, checkpoint) = {
            let head = self.head();
            (head.frontier.size(), head.checkpoint.clone())
        };
        if index >= size {
            return Err(LogError::NotYet { index, size });
        }
        let proof = reader(&self.dir, size)
            .inclusion_proof(index)
            .map_err(|e| LogError::Corrupt(format!("inclusion proof for {index}: {e}")))?;
        Ok(TlogProof { extra: Some(entry.to_vec()), index, proof, checkpoint }.to_text())
    }
}

/// Signs the checkpoint for the tree `frontier` describes, with every active key.
fn sign(signers: &[Signer], frontier: &Frontier) -> Result<String, LogError> {
    let name = signers.first().map(|s| s.name().to_owned()).unwrap_or_default();
    let checkpoint =
        Checkpoint::new(&name, frontier.size(), frontier.root()).map_err(|e| LogError::Corrupt(e.to_string()))?;
    let refs: Vec<&dyn crate::transparency::tlog::note::NoteSigner> = signers.iter().map(|s| s as _).collect();
    checkpoint.sign(&refs).map_err(|e| LogError::Corrupt(e.to_string()))
}

/// A tile reader over the files of a tree of `size` leaves in `dir`.
fn reader(dir: &Path, size: u64) -> TileReader<impl FnMut(&Tile) -> Result<Vec<u8>, std::io::Error>> {
    let dir = dir.to_owned();
    TileReader::new(size, move |tile: &Tile| std::fs::read(dir.join(tile.path())))
}
