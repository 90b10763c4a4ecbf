//! Client-side verification of the gateway's transparency log and receipts, from the published
//! formats only (DESIGN.md section 6): no HTTP, no files, no clock. The caller supplies a fetch
//! function over log paths (`checkpoint`, `tile/…`) and the trust policy; `cli::log` fetches
//! over HTTP or from an export directory.
//!
//! [`verify_log`] checks a whole log: the checkpoint under the policy, every tile byte for byte
//! against the tree rebuilt from the entry bundles, the root, consistency with the checkpoint
//! saved from the last run, the entry format and the lifecycle invariants.
//! [`verify_receipt`] checks one `c2sp.org/tlog-proof@v1` receipt offline.

mod entry;
mod lifecycle;

use std::collections::BTreeMap;

pub use entry::{Entry, EntryError, parse_entry};
pub use lifecycle::Violation;

use crate::transparency::tlog::Hash;
use crate::transparency::tlog::checkpoint::{Checkpoint, CheckpointError};
use crate::transparency::tlog::merkle;
use crate::transparency::tlog::note::{Note, NoteError};
use crate::transparency::tlog::proof::{ProofError, TlogProof};
use crate::transparency::tlog::quorum::{Policy, PolicyError};
use crate::transparency::tlog::tiles::{self, TileError};

/// The log path of the checkpoint, and the name of the state file that keeps the last one.
pub const CHECKPOINT_PATH: &str = "checkpoint";
/// The log path of the verifier key string.
pub const KEY_PATH: &str = "key";

/// Why a saved checkpoint could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The saved text is not a signed checkpoint.
    #[error("saved checkpoint is malformed")]
    Malformed(#[source] CheckpointError),
}

/// The checkpoint saved after the last successful verification (file `checkpoint` in the state
/// directory): the signed note text, kept verbatim as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    note: String,
    checkpoint: Checkpoint,
}

impl SavedState {
    /// Reads a saved checkpoint note. It was verified when saved, so only its form is checked.
    pub fn parse(note: &str) -> Result<Self, StateError> {
        let parsed = Note::parse(note).map_err(|e| StateError::Malformed(e.into()))?;
        let checkpoint = Checkpoint::parse(parsed.text()).map_err(StateError::Malformed)?;
        Ok(SavedState { note: note.to_owned(), checkpoint })
    }

    /// The signed note text, to write to the state file.
    pub fn text(&self) -> &str {
        &self.note
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

/// What a verified log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// The log's origin (checkpoint first line).
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
    /// The size of the saved checkpoint this log was checked to extend, if one was given.
    pub previous_size: Option<u64>,
    /// The policy names of the witnesses whose cosignatures verified.
    pub witnesses: Vec<String>,
    /// The number of hash tiles checked.
    pub tiles: usize,
    /// The number of entry bundles read.
    pub bundles: usize,
    /// Entries per event name.
    pub counts: BTreeMap<String, u64>,
    /// The verified checkpoint, to save for the next run.
    pub state: SavedState,
}

/// Why a log failed verification; each variant names the path or leaf index concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError<E: std::error::Error + 'static> {
    /// The fetch function failed (network, disk).
    #[error("cannot fetch `{path}`")]
    Fetch {
        path: String,
        #[source]
        source: E,
    },
    /// The log does not serve a file the checkpoint requires.
    #[error("the log has no `{path}`")]
    Missing { path: String },
    /// The checkpoint does not satisfy the policy.
    #[error("checkpoint rejected")]
    Checkpoint(#[source] PolicyError),
    /// The checkpoint is for a different log than the saved one.
    #[error("checkpoint is for log `{origin}`, but the saved checkpoint is for `{saved}`")]
    OriginChanged { saved: String, origin: String },
    /// The tree is smaller than the saved checkpoint's.
    #[error("log has {size} entries, fewer than the {saved} of the saved checkpoint: it was truncated")]
    Truncated { saved: u64, size: u64 },
    /// An entry bundle that does not decode.
    #[error("entry bundle `{path}` is malformed")]
    Bundle {
        path: String,
        #[source]
        source: TileError,
    },
    /// A tile of the wrong length.
    #[error("tile `{path}` has {actual} bytes, expected {expected}")]
    TileLength { path: String, expected: usize, actual: usize },
    /// A tile hash that differs from the tree rebuilt from the entry bundles.
    #[error("tile `{path}` differs at hash {position} (leaves from {first_leaf}) from the tree of the entry bundles")]
    TileMismatch { path: String, position: usize, first_leaf: u64 },
    /// The entries do not hash to the checkpoint's root.
    #[error("the {size} entries hash to root {computed}, but the checkpoint says {expected}")]
    RootMismatch { size: u64, computed: Hash, expected: Hash },
    /// The first entries no longer hash to the saved root: history was rewritten or forked.
    #[error("the first {size} entries hash to {root}, not to the saved root {saved_root}: history was rewritten")]
    Rewritten { size: u64, saved_root: Hash, root: Hash },
    /// An entry that does not parse.
    #[error("entry {index} is malformed")]
    Entry {
        index: u64,
        #[source]
        source: EntryError,
    },
    /// An entry that breaks a lifecycle invariant.
    #[error(transparent)]
    Lifecycle(#[from] Violation),
}

fn fetch_required<E: std::error::Error + 'static>(
    fetch: &mut impl FnMut(&str) -> Result<Option<Vec<u8>>, E>,
    path: String,
) -> Result<Vec<u8>, LogError<E>> {
    match fetch(&path) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(LogError::Missing { path }),
        Err(source) => Err(LogError::Fetch { path, source }),
    }
}

/// Verifies the whole log that `fetch` serves (paths relative to the log prefix: `checkpoint`,
/// `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`; `Ok(None)` when absent) under `policy`,
/// and checks that it extends `saved`, the checkpoint kept from the last run.
///
/// Checks, in order: the checkpoint (signature, origin, witness quorum); the same origin as
/// `saved` and no fewer entries; every entry bundle decodes; every tile equals, byte for byte,
/// the one rebuilt from the entries' leaf hashes; the root equals the checkpoint's; the first
/// `saved` entries still hash to the saved root; every entry parses; the lifecycle invariants.
/// Save [`LogReport::state`] only after this returns `Ok`.
pub fn verify_log<E: std::error::Error + 'static>(
    fetch: impl FnMut(&str) -> Result<Option<Vec<u8>>, E>,
    policy: &Policy,
    saved: Option<&SavedState>,
) -> Result<LogReport, LogError<E>> {
    verify_log_visiting(fetch, policy, saved, |_, _| {})
}

/// [`verify_log`], showing `visit` every entry (its index and parsed form) in order once the
/// whole log has verified, before the report: a monitor picks out what concerns it.
pub fn verify_log_visiting<E: std::error::Error + 'static>(
    mut fetch: impl FnMut(&str) -> Result<Option<Vec<u8>>, E>,
    policy: &Policy,
    saved: Option<&SavedState>,
    mut visit: impl FnMut(u64, &Entry),
) -> Result<LogReport, LogError<E>> {
    let note_bytes = fetch_required(&mut fetch, CHECKPOINT_PATH.to_owned())?;
    let note = String::from_utf8(note_bytes)
        .map_err(|_| LogError::Checkpoint(PolicyError::Checkpoint(NoteError::NotUtf8.into())))?;
    let verified = policy.verify_checkpoint(&note).map_err(LogError::Checkpoint)?;
    let checkpoint = verified.checkpoint;
    let size = checkpoint.size();
    if let Some(saved) = saved.map(SavedState::checkpoint) {
        if saved.origin() != checkpoint.origin() {
            return Err(LogError::OriginChanged {
                saved: saved.origin().to_owned(),
                origin: checkpoint.origin().into(),
            });
        }
        if saved.size() > size {
            return Err(LogError::Truncated { saved: saved.size(), size });
        }
    }

    let all_tiles = tiles::tiles_for_size(size);
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut bundles = 0;
    for tile in all_tiles.iter().filter(|t| t.level() == 0) {
        let path = tile.entries_path();
        let bytes = fetch_required(&mut fetch, path.clone())?;
        let decoded = tiles::decode_bundle(&bytes, tile.width()).map_err(|source| LogError::Bundle { path, source })?;
        entries.extend(decoded);
        bundles += 1;
    }
    let leaves: Vec<Hash> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();

    let rebuilt = tiles::build_tiles(&leaves);
    for (tile, want) in &rebuilt {
        let path = tile.path();
        let got = fetch_required(&mut fetch, path.clone())?;
        if got.len() != want.len() {
            return Err(LogError::TileLength { path, expected: want.len(), actual: got.len() });
        }
        if let Some(position) = got.chunks(Hash::LEN).zip(want.chunks(Hash::LEN)).position(|(a, b)| a != b) {
            let span = 1u64 << (u32::from(tile.level()) * u32::from(tiles::TILE_HEIGHT));
            let first_hash = tile.index() * u64::from(tiles::TILE_WIDTH) + position as u64;
            return Err(LogError::TileMismatch { path, position, first_leaf: first_hash.saturating_mul(span) });
        }
    }

    let root = merkle::root(&leaves);
    if root != *checkpoint.root() {
        return Err(LogError::RootMismatch { size, computed: root, expected: *checkpoint.root() });
    }
    if let Some(saved) = saved.map(SavedState::checkpoint) {
        let old = usize::try_from(saved.size()).unwrap_or(usize::MAX).min(leaves.len());
        let old_root = merkle::root(&leaves[..old]);
        if old_root != *saved.root() {
            return Err(LogError::Rewritten { size: saved.size(), saved_root: *saved.root(), root: old_root });
        }
    }

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut lifecycle = lifecycle::Lifecycle::default();
    let mut parsed = Vec::with_capacity(entries.len());
    for (index, bytes) in (0u64..).zip(&entries) {
        let entry = parse_entry(bytes).map_err(|source| LogError::Entry { index, source })?;
        lifecycle.apply(index, &entry)?;
        *counts.entry(entry.event().to_owned()).or_default() += 1;
        parsed.push(entry);
    }
    for (index, entry) in (0u64..).zip(&parsed) {
        visit(index, entry);
    }

    let state = SavedState { note, checkpoint: checkpoint.clone() };
    Ok(LogReport {
        origin: checkpoint.origin().to_owned(),
        size,
        root,
        previous_size: saved.map(|s| s.checkpoint().size()),
        witnesses: verified.cosigned.into_iter().map(|c| c.witness).collect(),
        tiles: rebuilt.len(),
        bundles,
        counts,
        state,
    })
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The proof is malformed, its checkpoint fails the policy, or the entry is not included.
    #[error("receipt is not valid")]
    Proof(#[source] ProofError),
    /// The entry in the receipt does not parse.
    #[error("receipt entry is malformed")]
    Entry(#[source] EntryError),
    /// A digest was expected but the entry has none.
    #[error("receipt entry `{event}` carries no digest to compare")]
    NoDigest { event: String },
    /// The entry's digest differs from the expected one.
    #[error("receipt digest `{actual}` differs from the expected `{expected}`")]
    DigestMismatch { expected: String, actual: String },
}

/// A verified receipt, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSummary {
    /// The entry the receipt proves.
    pub entry: Entry,
    /// Its leaf index.
    pub index: u64,
    /// The log's origin.
    pub origin: String,
    /// The tree size of the checkpoint in the receipt.
    pub tree_size: u64,
    /// The root hash of that checkpoint.
    pub root: Hash,
    /// The policy names of the witnesses whose cosignatures verified.
    pub witnesses: Vec<String>,
}

fn normalise_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    format!("sha256:{}", hex.to_ascii_lowercase())
}

/// Verifies a `c2sp.org/tlog-proof@v1` receipt offline: its checkpoint under `policy`, the
/// inclusion of the entry in `extra` at `index`, the entry's format, and, if given, that its
/// digest is `expect_digest` (`sha256:<hex>`, or bare hex).
pub fn verify_receipt(
    text: &str,
    policy: &Policy,
    expect_digest: Option<&str>,
) -> Result<ReceiptSummary, ReceiptError> {
    let proof = TlogProof::parse(text).map_err(ReceiptError::Proof)?;
    let verified = proof.verify(policy).map_err(ReceiptError::Proof)?;
    let entry = parse_entry(&verified.entry).map_err(ReceiptError::Entry)?;
    if let Some(expected) = expect_digest {
        let actual = entry.digest().ok_or_else(|| ReceiptError::NoDigest { event: entry.event().to_owned() })?;
        let expected = normalise_digest(expected);
        if actual != expected {
            return Err(ReceiptError::DigestMismatch { expected, actual: actual.to_owned() });
        }
    }
    Ok(ReceiptSummary {
        entry,
        index: verified.index,
        origin: verified.checkpoint.checkpoint.origin().to_owned(),
        tree_size: verified.checkpoint.checkpoint.size(),
        root: *verified.checkpoint.checkpoint.root(),
        witnesses: verified.checkpoint.cosigned.into_iter().map(|c| c.witness).collect(),
    })
}

#[cfg(test)]
mod tests;
