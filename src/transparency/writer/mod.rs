//! The transparency log: every audit event becomes a leaf of an append-only Merkle tree,
//! published in the C2SP tlog-tiles layout (served under `/log/`) with a signed C2SP checkpoint.
//!
//! Events are durable in the database first (in the same transaction as what they record). The
//! log itself lives in the database too (`store::log_state`): the checkpoint, the hash tiles, and
//! the log keys, so every gateway sharing the database serves the same log; entry bundles are
//! read from the events themselves. One gateway at a time is the sequencer: it holds a lease in
//! the database, and taking the lease adds one to a fencing number. The sequencer integrates
//! pending events in index order, in batches: it computes the new tiles, signs the checkpoint,
//! asks the witnesses to cosign, and commits checkpoint and tiles in one transaction that only
//! succeeds under its fencing number and the size it grew from. A sequencer that lost its lease
//! (paused, cut off, killed) therefore publishes nothing, and the one that took over grows the
//! same tree from the same events: the log never forks and no event is skipped.
//!
//! Private submodules: `keys` (the log's signing keys, rotation, sealing), `import` (moving a
//! log kept in files by earlier versions into the database), `reading` (tiles read from the
//! database, cached).

mod import;
mod keys;
mod reading;
pub mod sequencer;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{LogHead, LogLease, Store, StoreError, TileBytes};
use crate::transparency::tlog::checkpoint::Checkpoint;
use crate::transparency::tlog::cosignature::CosignatureVerifier;
use crate::transparency::tlog::frontier::Frontier;
use crate::transparency::tlog::merkle::{Hash, leaf_hash};
use crate::transparency::tlog::note::{Note, NoteSigner as _, NoteVerifier, Signer};
use crate::transparency::tlog::proof::TlogProof;
use crate::transparency::tlog::tiles::{self, Tile};
use crate::transparency::witness::{self, WitnessClientError};

/// Leaves integrated per batch at most (the rest waits for the next round).
const BATCH: u32 = 4096;

/// How long the sequencer lease lasts unless renewed: how soon another gateway takes over from
/// a sequencer that died.
pub const LEASE: Duration = Duration::from_secs(8);

/// The sequencer renews its lease once less than this is left.
const RENEW_BELOW: Duration = Duration::from_secs(6);

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A log file (of a log kept in files by an earlier version) could not be read or moved.
    #[error("log file `{path}`: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored checkpoint or tiles are damaged or not ours.
    #[error("the log is inconsistent: {0}")]
    Corrupt(String),
    /// The log was made with another signing key than this gateway's.
    #[error(
        "the log's checkpoint does not verify with this gateway's log keys: every gateway sharing a database \
         needs the same signing key (--signing-key)"
    )]
    OtherSigningKey,
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
    /// Another gateway took the sequencer lease: this one's batch was not published.
    #[error("another gateway became the log's sequencer; this gateway's batch was not published")]
    Fenced,
}

impl LogError {
    /// True for a failure that may pass by itself (the database busy, or its connection lost),
    /// so that the same step is worth trying again at once.
    pub fn is_passing(&self) -> bool {
        matches!(self, Self::Store(StoreError::Busy | StoreError::Unavailable(_)))
    }
}

/// The log as this gateway last saw it, and, while it is the sequencer, what it needs to write.
#[derive(Debug)]
struct Head {
    size: u64,
    checkpoint: String,
    written_at: DateTime<Utc>,
    keys_version: u64,
    writer: Option<Writer>,
}

/// The sequencer's state: its fencing number, its lease, and the tree's right edge.
#[derive(Debug, Clone)]
struct Writer {
    fence: u64,
    lease_until: DateTime<Utc>,
    frontier: Frontier,
}

/// The transparency log, kept in the gateway's database.
#[derive(Debug)]
pub struct Log {
    store: Store,
    origin: String,
    base_seed: zeroize::Zeroizing<[u8; 32]>,
    /// The active note keys, oldest first; the last is the current one. During a key rotation
    /// there are two, and every checkpoint is signed by both.
    signers: std::sync::RwLock<std::sync::Arc<Vec<Signer>>>,
    head: std::sync::Mutex<Head>,
    tiles: reading::TileCache,
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
    /// Opens the log in `store`, signed with the gateway's Ed25519 seed; makes it on first start,
    /// named `default_origin` (fixed from then on, so links and ports may change), or moves in
    /// the log an earlier version kept in files under `legacy_dir`.
    pub async fn open(
        store: Store,
        legacy_dir: &Path,
        default_origin: &str,
        seed: &[u8; 32],
    ) -> Result<Self, LogError> {
        let head = match store.log_head().await? {
            Some(head) => head,
            None => {
                import::make_or_import(&store, legacy_dir, default_origin, seed).await?;
                store.log_head().await?.ok_or_else(|| LogError::Corrupt("the log was not made".to_owned()))?
            }
        };
        let signers = keys::load_signers(&store, &head.origin, seed).await?;
        if !signers.iter().any(|s| Checkpoint::open(&head.checkpoint, &s.verifier(), &[]).is_ok()) {
            return Err(LogError::OtherSigningKey);
        }
        Ok(Self {
            store,
            origin: head.origin,
            base_seed: zeroize::Zeroizing::new(*seed),
            signers: std::sync::RwLock::new(std::sync::Arc::new(signers)),
            head: std::sync::Mutex::new(Head {
                size: head.size,
                checkpoint: head.checkpoint,
                written_at: head.written_at,
                keys_version: head.keys_version,
                writer: None,
            }),
            tiles: reading::TileCache::default(),
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
    /// published without it (a policy that requires it will then refuse receipts). `unpublished`
    /// holds the tiles of this batch, which consistency proofs need before they are committed.
    async fn cosign(&self, note: String, size: u64, unpublished: &HashMap<(u8, u64), Vec<u8>>) -> String {
        let Ok(mut signed) = Note::parse(&note) else { return note };
        for w in &self.witnesses {
            let mut old = *w.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut result = Err(WitnessClientError::BadResponse { reason: "not asked".to_owned() });
            for _ in 0..2 {
                let proof = match self.consistency_proof(old, size, unpublished).await {
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

    /// A consistency proof from `old` to `new` leaves.
    async fn consistency_proof(
        &self,
        old: u64,
        new: u64,
        unpublished: &HashMap<(u8, u64), Vec<u8>>,
    ) -> Result<Vec<Hash>, LogError> {
        if old == 0 || old == new {
            return Ok(Vec::new());
        }
        self.read_tiles(new, unpublished, |r| r.consistency_proof(old)).await
    }

    fn head(&self) -> std::sync::MutexGuard<'_, Head> {
        self.head.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The number of integrated entries, as this gateway last saw it.
    pub fn size(&self) -> u64 {
        self.head().size
    }

    /// The current signed checkpoint, as this gateway last saw it.
    pub fn checkpoint(&self) -> String {
        self.head().checkpoint.clone()
    }

    /// When the current checkpoint was written.
    pub fn written_at(&self) -> DateTime<Utc> {
        self.head().written_at
    }

    /// True while this gateway is the log's sequencer.
    pub fn is_sequencer(&self) -> bool {
        self.head().writer.is_some()
    }

    /// One round of the log's work: reads what the database holds (other gateways' checkpoints,
    /// key changes), takes or renews the sequencer lease when it is free or ours, and if this
    /// gateway is the sequencer integrates the next batch. Returns the log size.
    pub async fn step(&self) -> Result<u64, LogError> {
        let now = Utc::now();
        let state = self.refresh().await?;
        if !self.lead(&state, now).await? {
            return Ok(self.size());
        }
        match self.integrate(now).await {
            Err(LogError::Fenced) => {
                tracing::warn!("another gateway took over as the log's sequencer");
                self.head().writer = None;
                Ok(self.size())
            }
            other => other,
        }
    }

    /// Reads the log's state from the database and takes in what changed.
    async fn refresh(&self) -> Result<LogHead, LogError> {
        let state =
            self.store.log_head().await?.ok_or_else(|| LogError::Corrupt("the log's state is gone".to_owned()))?;
        let reload_keys = {
            let mut head = self.head();
            if state.size < head.size {
                return Err(LogError::Corrupt(format!(
                    "the database's log has {} entries where {} were published: was an old backup restored \
                     under a running gateway?",
                    state.size, head.size
                )));
            }
            if state.size > head.size {
                head.size = state.size;
                head.checkpoint.clone_from(&state.checkpoint);
                head.written_at = state.written_at;
            }
            head.keys_version != state.keys_version
        };
        if reload_keys {
            self.reload_signers().await?;
            self.head().keys_version = state.keys_version;
        }
        Ok(state)
    }

    /// Takes or renews the sequencer lease when it is free or ours; true if this gateway is the
    /// sequencer afterwards (with its tree's right edge loaded).
    async fn lead(&self, state: &LogHead, now: DateTime<Utc>) -> Result<bool, LogError> {
        let me = self.store.gateway_id();
        let ours = state.holder.as_deref() == Some(me);
        let fresh = {
            let head = self.head();
            head.writer
                .as_ref()
                .is_some_and(|w| ours && w.fence == state.fence && w.lease_until - now > lease(RENEW_BELOW))
        };
        if fresh {
            return Ok(true);
        }
        if !ours && state.holder.is_some() && state.lease_until > now {
            self.head().writer = None;
            return Ok(false);
        }
        let until = now + lease(LEASE);
        let fence = match self.store.take_log_lease(now, until).await? {
            LogLease::Held(fence) => fence,
            LogLease::Elsewhere(_) => {
                self.head().writer = None;
                return Ok(false);
            }
        };
        let known =
            self.head().writer.as_ref().filter(|w| w.fence == fence && w.frontier.size() == state.size).cloned();
        let frontier = match known {
            Some(w) => w.frontier,
            None => {
                tracing::info!(fence, size = state.size, "this gateway is now the log's sequencer");
                self.frontier_at(state).await?
            }
        };
        self.head().writer = Some(Writer { fence, lease_until: until, frontier });
        Ok(true)
    }

    /// The right edge of the published tree, checked against its checkpoint.
    async fn frontier_at(&self, state: &LogHead) -> Result<Frontier, LogError> {
        let frontier = self.read_tiles(state.size, &HashMap::new(), |r| r.frontier()).await?;
        let root = self
            .verifiers()
            .iter()
            .find_map(|v| Checkpoint::open(&state.checkpoint, v, &[]).ok())
            .map(|(c, _)| *c.root())
            .ok_or(LogError::OtherSigningKey)?;
        if frontier.root() != root {
            return Err(LogError::Corrupt(format!("the tiles do not match the checkpoint at size {}", state.size)));
        }
        Ok(frontier)
    }

    /// Integrates the next batch of pending events, as the sequencer; returns the new size.
    async fn integrate(&self, now: DateTime<Utc>) -> Result<u64, LogError> {
        let Some(Writer { fence, frontier, .. }) = self.head().writer.clone() else {
            return Ok(self.size());
        };
        let size = frontier.size();
        let pending = self.store.entries_from(size, BATCH).await?;
        if pending.is_empty() {
            return Ok(size);
        }
        let mut frontier = frontier;
        let mut new_nodes: HashMap<(u8, u64), Hash> = HashMap::new();
        for (expected, (idx, entry)) in (size..).zip(&pending) {
            if *idx != expected {
                return Err(LogError::Corrupt(format!("event index {idx} where {expected} was expected")));
            }
            frontier.append(leaf_hash(entry.as_bytes()), |level, index, hash| {
                if level % 8 == 0 {
                    new_nodes.insert((level, index), *hash);
                }
            });
        }
        let new_size = frontier.size();
        let added = tiles::tiles_added(size, new_size);
        let built: Vec<(Tile, Vec<u8>)> = self
            .read_tiles(size, &HashMap::new(), |old| {
                added
                    .iter()
                    .map(|tile| {
                        let bytes = tile.contents(|level, index| match new_nodes.get(&(level, index)) {
                            Some(h) => Ok(*h),
                            None => old.perfect_hash(level, index),
                        })?;
                        Ok((*tile, bytes))
                    })
                    .collect()
            })
            .await?;
        let unpublished: HashMap<(u8, u64), Vec<u8>> =
            built.iter().map(|(t, b)| ((t.level(), t.index()), b.clone())).collect();
        let signers = self.signers();
        let note = sign(&signers, &frontier)?;
        let note = self.cosign(note, new_size, &unpublished).await;
        let rows: Vec<TileBytes> = built.into_iter().map(|(t, b)| (t.level(), t.index(), b)).collect();
        if !self.store.publish_log(fence, size, new_size, &note, &rows, now).await? {
            return Err(LogError::Fenced);
        }
        for (level, index, bytes) in rows {
            self.tiles.offer(level, index, bytes);
        }
        let mut head = self.head();
        head.size = new_size;
        head.checkpoint = note;
        head.written_at = now;
        if let Some(w) = head.writer.as_mut().filter(|w| w.fence == fence) {
            w.frontier = frontier;
        }
        Ok(new_size)
    }

    /// Gives the sequencer lease back, if this gateway holds it (at shutdown), so another
    /// gateway takes over at once instead of when the lease runs out.
    pub async fn resign(&self) {
        let writer = self.head().writer.take();
        if let Some(w) = writer
            && let Err(e) = self.store.release_log_lease(w.fence).await
        {
            tracing::warn!(error = %e, "could not give back the log's sequencer lease; another gateway takes over when it runs out");
        }
    }

    /// A C2SP tlog-proof receipt for entry `index`, whose exact bytes are `entry`, against the
    /// current checkpoint.
    pub async fn receipt(&self, index: u64, entry: &[u8]) -> Result<String, LogError> {
        let (size, checkpoint) = {
            let head = self.head();
            (head.size, head.checkpoint.clone())
        };
        if index >= size {
            return Err(LogError::NotYet { index, size });
        }
        let proof = self.read_tiles(size, &HashMap::new(), |r| r.inclusion_proof(index)).await?;
        Ok(TlogProof { extra: Some(entry.to_vec()), index, proof, checkpoint }.to_text())
    }

    /// The root hash of the tree's first `size` entries (a state this log passed through), to
    /// check a checkpoint a client says it verified against.
    pub async fn root_at(&self, size: u64) -> Result<Hash, LogError> {
        let current = self.size();
        if size > current {
            return Err(LogError::NotYet { index: size, size: current });
        }
        self.read_tiles(size, &HashMap::new(), |r| r.root()).await
    }

    /// The bytes of hash tile `tile`, which must be within the current tree.
    pub async fn hash_tile(&self, tile: Tile) -> Result<Vec<u8>, LogError> {
        let want = usize::from(tile.width()) * Hash::LEN;
        let bytes = self.tile_bytes(tile.level(), tile.index(), want).await?;
        Ok(bytes[..want].to_vec())
    }

    /// The entry bundle matching level-0 tile `tile`, which must be within the current tree.
    pub async fn entry_bundle(&self, tile: Tile) -> Result<Vec<u8>, LogError> {
        let start = tile.index() * 256;
        let entries = self.store.entries_from(start, u32::from(tile.width())).await?;
        if entries.len() != usize::from(tile.width()) {
            return Err(LogError::NotYet { index: start + entries.len() as u64, size: self.size() });
        }
        let entries: Vec<&[u8]> = entries.iter().map(|(_, e)| e.as_bytes()).collect();
        tiles::encode_bundle(&entries).map_err(|e| LogError::Corrupt(e.to_string()))
    }
}

/// A lease duration as a chrono duration.
fn lease(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// Signs the checkpoint for the tree `frontier` describes, with every active key.
fn sign(signers: &[Signer], frontier: &Frontier) -> Result<String, LogError> {
    let name = signers.first().map(|s| s.name().to_owned()).unwrap_or_default();
    let checkpoint =
        Checkpoint::new(&name, frontier.size(), frontier.root()).map_err(|e| LogError::Corrupt(e.to_string()))?;
    let refs: Vec<&dyn crate::transparency::tlog::note::NoteSigner> = signers.iter().map(|s| s as _).collect();
    checkpoint.sign(&refs).map_err(|e| LogError::Corrupt(e.to_string()))
}
