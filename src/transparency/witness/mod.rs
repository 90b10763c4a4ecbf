//! A C2SP tlog-witness (<https://c2sp.org/tlog-witness>): it cosigns a log's checkpoints only
//! when they are consistent with the last one it cosigned for that log, so a log that shows
//! different histories to different people is caught (DESIGN.md section 6, "Split views").
//!
//! | module | what |
//! |---|---|
//! | [`request`] | the `add-checkpoint` request body, parsed strictly |
//! | `state` | one file per log in the state directory, replaced atomically |
//! | [`http`] | `POST /add-checkpoint` (axum) and [`run`] |
//! | [`client`] | [`add_checkpoint`], for the gateway's side |
//!
//! [`Witness::add_checkpoint`] holds the protocol's checks and knows nothing of HTTP.

pub mod client;
pub mod http;
pub mod request;
mod state;

pub use client::{WitnessClientError, add_checkpoint};
pub use http::{router, run};
pub use request::{AddCheckpointRequest, MAX_PROOF_LINES, RequestError, SIZE_CONTENT_TYPE, format_body};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::RngCore as _;
use secrecy::SecretString;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::transparency::tlog::checkpoint::Checkpoint;
use crate::transparency::tlog::cosignature::{CosignatureError, CosignatureVerifier, Cosigner, MAX_TIMESTAMP};
use crate::transparency::tlog::merkle::{self, MerkleError, empty_root};
use crate::transparency::tlog::note::{NoteError, NoteSignature, NoteVerifier, Verifier};
use state::Latest;

/// Why the witness could not start or remember a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// No log key was configured.
    #[error("the witness needs at least one log key")]
    NoLogKeys,
    /// A log origin too long to name its state file.
    #[error("log origin `{origin}` is too long to name a state file")]
    OriginTooLong { origin: String },
    /// A file system operation failed.
    #[error("cannot {op} `{path}`: {reason}")]
    Io { op: &'static str, path: PathBuf, reason: String },
    /// A state file that does not hold a checkpoint of its log.
    #[error("state file `{path}` is not a checkpoint of its log: {reason}")]
    CorruptState { path: PathBuf, reason: String },
}

/// Why an `add-checkpoint` request was refused; [`AddError::status`] is its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// The body is malformed (400).
    #[error(transparent)]
    Malformed(#[from] RequestError),
    /// The note text is not a checkpoint (400).
    #[error("the note is not a checkpoint: {reason}")]
    NotACheckpoint { reason: crate::transparency::tlog::checkpoint::CheckpointError },
    /// No log key is configured for this origin (404).
    #[error("this witness does not know the log `{origin}`")]
    UnknownLog { origin: String },
    /// No valid signature by a trusted key, or an invalid one by a trusted key (403).
    #[error("checkpoint of `{origin}` is not validly signed by its log: {reason}")]
    BadSignature { origin: String, reason: NoteError },
    /// The old size is above the checkpoint's size (400).
    #[error("old size {old} is above the checkpoint size {size}")]
    OldSizeAboveSize { old: u64, size: u64 },
    /// The old size is not the size the witness last cosigned (409, with that size).
    #[error("old size {old} does not match size {known}, the latest this witness cosigned for `{origin}`")]
    StaleOldSize { origin: String, old: u64, known: u64 },
    /// A checkpoint of the size last cosigned with another root hash (409).
    #[error("this witness cosigned another root hash for `{origin}` at size {size}")]
    RootMismatch { origin: String, size: u64 },
    /// The consistency proof does not verify (422).
    #[error("consistency proof for `{origin}` from size {old} to {size} does not verify: {reason}")]
    InconsistentProof { origin: String, old: u64, size: u64, reason: MerkleError },
    /// The cosignature could not be made (500).
    #[error("cannot cosign: {reason}")]
    Cosign { reason: CosignatureError },
    /// The new checkpoint could not be persisted (500).
    #[error(transparent)]
    Storage(#[from] WitnessError),
}

impl AddError {
    /// The HTTP status the spec requires for this refusal.
    pub fn status(&self) -> u16 {
        match self {
            AddError::Malformed(_) | AddError::NotACheckpoint { .. } | AddError::OldSizeAboveSize { .. } => 400,
            AddError::BadSignature { .. } => 403,
            AddError::UnknownLog { .. } => 404,
            AddError::StaleOldSize { .. } | AddError::RootMismatch { .. } => 409,
            AddError::InconsistentProof { .. } => 422,
            AddError::Cosign { .. } | AddError::Storage(_) => 500,
        }
    }
}

/// One witnessed log: its trusted keys and the latest checkpoint cosigned.
#[derive(Debug)]
struct Log {
    keys: Vec<Verifier>,
    path: PathBuf,
    /// Held from the old-size check until the new checkpoint is on disk, so two requests
    /// cannot roll the log back (tlog-witness "add-checkpoint", last paragraph).
    latest: Mutex<Option<Latest>>,
}

/// A witness: its cosigning key, and per log origin the trusted keys and latest checkpoint.
#[derive(Debug)]
pub struct Witness {
    cosigner: Cosigner,
    logs: HashMap<String, Log>,
}

impl Witness {
    /// Opens the state in `state_dir` (created if missing) for the logs of `log_keys`; keys
    /// with the same name are keys of the same log (during a key rotation).
    pub fn open(
        state_dir: &Path,
        cosigner: Cosigner,
        log_keys: impl IntoIterator<Item = Verifier>,
    ) -> Result<Self, WitnessError> {
        std::fs::create_dir_all(state_dir).map_err(|e| WitnessError::Io {
            op: "create",
            path: state_dir.to_owned(),
            reason: e.to_string(),
        })?;
        let mut logs: HashMap<String, Log> = HashMap::new();
        for key in log_keys {
            let origin = NoteVerifier::name(&key).to_owned();
            if let Some(log) = logs.get_mut(&origin) {
                if !log.keys.contains(&key) {
                    log.keys.push(key);
                }
                continue;
            }
            let path = state_dir.join(state::file_name(&origin)?);
            let latest = state::load(&path, &origin)?;
            logs.insert(origin, Log { keys: vec![key], path, latest: Mutex::new(latest) });
        }
        if logs.is_empty() {
            return Err(WitnessError::NoLogKeys);
        }
        Ok(Witness { cosigner, logs })
    }

    /// The verifier key of this witness's cosignatures.
    pub fn verifier(&self) -> CosignatureVerifier {
        self.cosigner.verifier()
    }

    /// The origins of the witnessed logs, sorted.
    pub fn origins(&self) -> Vec<&str> {
        let mut origins: Vec<&str> = self.logs.keys().map(String::as_str).collect();
        origins.sort_unstable();
        origins
    }

    /// The size of the latest checkpoint cosigned for `origin`: `None` for an unknown log,
    /// `Some(0)` before the first.
    pub async fn known_size(&self, origin: &str) -> Option<u64> {
        let log = self.logs.get(origin)?;
        Some(log.latest.lock().await.as_ref().map_or(0, |l| l.size))
    }

    /// Handles an `add-checkpoint` body (tlog-witness "add-checkpoint"), cosigning at `now`
    /// (seconds since the epoch): checks the log's signature, the old size and the consistency
    /// proof, persists the checkpoint, and returns the cosignature lines.
    pub async fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<Vec<NoteSignature>, AddError> {
        let req = AddCheckpointRequest::parse(body)?;
        let unverified = Checkpoint::parse(req.note.text()).map_err(|reason| AddError::NotACheckpoint { reason })?;
        let origin = unverified.origin().to_owned();
        // "If the checkpoint origin is unknown, the witness MUST respond with 404."
        let log = self.logs.get(&origin).ok_or_else(|| AddError::UnknownLog { origin: origin.clone() })?;
        // "MUST verify the checkpoint signature against the public key(s) it trusts for the
        // checkpoint origin, and it MUST ignore signatures from unknown keys": the keys are
        // named after the origin, so a verified signature is a trusted log signature.
        {
            let verifiers: Vec<&dyn NoteVerifier> = log.keys.iter().map(|k| k as &dyn NoteVerifier).collect();
            req.note.verify(&verifiers).map_err(|reason| AddError::BadSignature { origin: origin.clone(), reason })?;
        }
        let checkpoint = unverified;
        let size = checkpoint.size();
        // "The old size MUST be equal to or lower than the checkpoint size."
        if req.old_size > size {
            return Err(AddError::OldSizeAboveSize { old: req.old_size, size });
        }
        let mut latest = log.latest.lock().await;
        let (known, known_root) = latest.as_ref().map_or((0, empty_root()), |l| (l.size, l.root));
        // "MUST check that the old size matches the size of the latest checkpoint it cosigned."
        if req.old_size != known {
            return Err(AddError::StaleOldSize { origin, old: req.old_size, known });
        }
        let inconsistent = |reason| AddError::InconsistentProof { origin: origin.clone(), old: known, size, reason };
        if size == known {
            // "If the old size matches the checkpoint size, the witness MUST check that the root
            // hashes are also identical"; the proof between equal sizes is empty.
            if !req.proof.is_empty() {
                return Err(inconsistent(MerkleError::ProofNotEmpty { old: known, new: size }));
            }
            if size == 0 && *checkpoint.root() != empty_root() {
                let reason = MerkleError::NewRootMismatch { computed: empty_root(), expected: *checkpoint.root() };
                return Err(inconsistent(reason));
            }
            if *checkpoint.root() != known_root {
                return Err(AddError::RootMismatch { origin, size });
            }
        } else {
            merkle::verify_consistency(known, size, &req.proof, &known_root, checkpoint.root()).map_err(|reason| {
                tracing::warn!(%origin, old = known, size, %reason, checkpoint = %req.note.text(), "refused an inconsistent checkpoint: possible split view");
                inconsistent(reason)
            })?;
        }
        // Never a zero timestamp (tlog-witness "add-checkpoint"); the checkpoint's text is the
        // submitted text, as parsing is strict and canonical.
        let cosignature = self
            .cosigner
            .cosign(&checkpoint, now.clamp(1, MAX_TIMESTAMP))
            .map_err(|reason| AddError::Cosign { reason })?;
        if latest.as_ref().is_none_or(|l| l.size != size) {
            let (path, contents) = (log.path.clone(), req.note.to_string());
            let stored = tokio::task::spawn_blocking(move || state::store(&path, &contents)).await;
            stored.map_err(|e| WitnessError::Io { op: "write", path: log.path.clone(), reason: e.to_string() })??;
            *latest = Some(Latest { size, root: *checkpoint.root() });
            tracing::info!(%origin, size, "cosigned a new checkpoint");
        }
        Ok(vec![cosignature])
    }
}

/// Makes a witness cosigning key named `name`: the secret key string
/// `PRIVATE+KEY+name+hexid+base64(0x04 || seed)` and the verifier key string.
pub fn witness_keygen(name: &str) -> Result<(SecretString, String), CosignatureError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let cosigner = Cosigner::from_seed(name, &seed)?;
    Ok((SecretString::from(cosigner.to_skey()), cosigner.verifier().to_vkey()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn keygen_makes_a_matching_cosignature_key_pair() {
        let (skey, vkey) = witness_keygen("witness.example/w1").unwrap();
        assert!(skey.expose_secret().starts_with("PRIVATE+KEY+witness.example/w1+"));
        let cosigner = Cosigner::from_skey(skey.expose_secret()).unwrap();
        assert_eq!(cosigner.verifier().to_vkey(), vkey);
        assert_eq!(
            witness_keygen("bad name").err(),
            Some(CosignatureError::Note(NoteError::InvalidName { name: "bad name".into() }))
        );
    }

    #[tokio::test]
    async fn each_refusal_is_precise_and_carries_the_status_the_spec_requires() {
        use crate::transparency::tlog::merkle::{consistency_proof, leaf_hash, root};
        use crate::transparency::tlog::note::Signer;
        let dir = tempfile::tempdir().unwrap();
        let log = Signer::from_seed("l", &[1; 32]).unwrap();
        let cosigner = Cosigner::from_seed("w", &[2; 32]).unwrap();
        let w = Witness::open(dir.path(), cosigner, [log.verifier()]).unwrap();
        let leaves: Vec<_> = (0u8..8).map(|i| leaf_hash(&[i])).collect();
        let signed = |n: usize| Checkpoint::new("l", n as u64, root(&leaves[..n])).unwrap().sign(&[&log]).unwrap();
        let add = async |old: u64, proof: &[crate::transparency::tlog::Hash], note: &str| {
            w.add_checkpoint(format_body(old, proof, note).as_bytes(), 7).await
        };
        let lines = add(0, &[], &signed(3)).await.unwrap();
        assert_eq!(crate::transparency::tlog::cosignature::timestamp(&lines[0]), Ok(7));
        assert_eq!(w.known_size("l").await, Some(3));

        let stale = add(0, &[], &signed(4)).await.unwrap_err();
        assert_eq!(stale, AddError::StaleOldSize { origin: "l".into(), old: 0, known: 3 });
        assert_eq!(stale.status(), 409);
        let above = add(5, &[], &signed(4)).await.unwrap_err();
        assert_eq!((above.status(), above), (400, AddError::OldSizeAboveSize { old: 5, size: 4 }));
        let short = add(3, &[], &signed(4)).await.unwrap_err();
        let want = AddError::InconsistentProof {
            origin: "l".into(),
            old: 3,
            size: 4,
            reason: MerkleError::ProofEmpty { old: 3, new: 4 },
        };
        assert_eq!((short.status(), short), (422, want));
        let mut fork = leaves.clone();
        fork[0] = leaf_hash(b"x");
        let forked = Checkpoint::new("l", 3, root(&fork[..3])).unwrap().sign(&[&log]).unwrap();
        let conflict = add(3, &[], &forked).await.unwrap_err();
        assert_eq!((conflict.status(), conflict), (409, AddError::RootMismatch { origin: "l".into(), size: 3 }));
        let other = Signer::from_seed("m", &[3; 32]).unwrap();
        let unknown = Checkpoint::new("m", 0, empty_root()).unwrap().sign(&[&other]).unwrap();
        let unknown = add(0, &[], &unknown).await.unwrap_err();
        assert_eq!((unknown.status(), unknown), (404, AddError::UnknownLog { origin: "m".into() }));
        let imposter = Signer::from_seed("l", &[4; 32]).unwrap();
        let unsigned = Checkpoint::new("l", 4, root(&leaves[..4])).unwrap().sign(&[&imposter]).unwrap();
        let unsigned = add(3, &consistency_proof(3, &leaves[..4]).unwrap(), &unsigned).await.unwrap_err();
        let want = AddError::BadSignature { origin: "l".into(), reason: NoteError::NoVerifiedSignature };
        assert_eq!((unsigned.status(), unsigned), (403, want));
        assert_eq!(w.known_size("l").await, Some(3));
        assert_eq!(w.known_size("m").await, None);
    }

    #[test]
    fn a_witness_needs_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let cosigner = Cosigner::from_seed("w", &[1; 32]).unwrap();
        assert_eq!(Witness::open(dir.path(), cosigner, []).err(), Some(WitnessError::NoLogKeys));
    }
}
