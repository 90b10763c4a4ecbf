//! The upload pipeline: stream the body to a staged blob while hashing it and inspecting its
//! envelope, and refuse as early as the evidence allows.
//!
//! Order of checks: the size cap on every chunk; the envelope header as soon as it is complete
//! (passphrase stanzas, unknown stanza types, and whether the stanzas match the addressed
//! recipients' directory keys); then, at the end, the payload (STREAM length, randomness).
//! Nothing here touches the database: the caller commits only what comes back accepted.

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use crate::blobs::{BlobError, StagedBlob};
use crate::envelope::{self, Envelope, EnvelopeError, Inspector, StanzaKind};

/// Limits and switches for uploads.
#[derive(Debug, Clone)]
pub struct UploadRules {
    /// Largest accepted body, in bytes.
    pub max_size: u64,
    /// Header bounds for the envelope inspector.
    pub envelope: envelope::Limits,
    /// Whether stanza types the gateway does not know may pass.
    pub allow_unknown_stanzas: bool,
}

/// Why an upload was refused. Each maps to a stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The body is larger than allowed.
    #[error("the upload is larger than this gateway's limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Not an age file, or a damaged or forged one.
    #[error("{0}")]
    Envelope(EnvelopeError),
    /// Encrypted with a passphrase rather than to recipients' keys.
    #[error("the file is encrypted with a passphrase, which can be guessed and must be shared some other way")]
    Passphrase,
    /// A stanza type that is not allowed.
    #[error("the file has a `{tag}` recipient stanza, which this gateway does not accept")]
    UnknownStanza {
        /// The stanza's type.
        tag: String,
    },
    /// The stanzas do not match the addressed recipients' directory keys.
    #[error(
        "the file is encrypted to {found} recipient key(s) ({found_types}) but the addressed users have {expected} key(s) ({expected_types}) in the directory"
    )]
    RecipientMismatch {
        /// Number of directory keys.
        expected: usize,
        /// Their stanza types.
        expected_types: String,
        /// Number of recipient stanzas in the file.
        found: usize,
        /// Their types.
        found_types: String,
    },
}

impl Refusal {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "payload_too_large",
            Self::Envelope(_) | Self::UnknownStanza { .. } => "not_age_encrypted",
            Self::Passphrase => "passphrase_not_allowed",
            Self::RecipientMismatch { .. } => "recipient_mismatch",
        }
    }

    /// A finer machine reason, for the audit trail and the error body.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Envelope(e) => e.reason(),
            Self::UnknownStanza { .. } => "unknown_stanza",
            Self::TooLarge { .. } => "too_large",
            Self::Passphrase => "passphrase",
            Self::RecipientMismatch { .. } => "recipient_mismatch",
        }
    }
}

/// How an upload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The gateway refused it.
    #[error(transparent)]
    Refused(Refusal),
    /// The sender's body broke off before its end.
    #[error("the upload broke off before its end")]
    Aborted,
    /// Staging failed on the server side.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// An upload that passed every check, staged and not yet committed.
#[derive(Debug)]
pub struct Received {
    /// The staged ciphertext.
    pub staged: StagedBlob,
    /// Bytes received.
    pub size: u64,
    /// `sha256:` and the hex digest of the bytes as received.
    pub digest: String,
    /// What the inspector found.
    pub envelope: Envelope,
}

/// Checks a parsed header against the rules and the addressed recipients' key types.
pub fn check_header(header: &envelope::Header, expected_types: &[&str], rules: &UploadRules) -> Result<(), Refusal> {
    if header.has_passphrase() {
        return Err(Refusal::Passphrase);
    }
    if !rules.allow_unknown_stanzas
        && let Some(s) = header.recipient_stanzas().find(|s| s.kind == StanzaKind::Unknown)
    {
        return Err(Refusal::UnknownStanza { tag: s.tag.clone() });
    }
    let mut found: Vec<&str> = header.recipient_stanzas().map(|s| s.tag.as_str()).collect();
    let mut expected = expected_types.to_vec();
    found.sort_unstable();
    expected.sort_unstable();
    if found != expected {
        return Err(Refusal::RecipientMismatch {
            expected: expected.len(),
            expected_types: expected.join(", "),
            found: found.len(),
            found_types: if found.is_empty() { "none".to_owned() } else { found.join(", ") },
        });
    }
    Ok(())
}

/// Streams `body` into `staged`, hashing and inspecting on the way. On a refusal the rest of
/// the body is left unread in `body`, so the caller can decide whether to drain it.
pub async fn receive<S, E>(
    body: &mut S,
    mut staged: StagedBlob,
    expected_types: &[&str],
    rules: &UploadRules,
) -> Result<Received, (UploadError, u64)>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut hasher = Hashing::new();
    let mut inspector = Inspector::new(rules.envelope.clone());
    let mut size: u64 = 0;
    let mut header_checked = false;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { return Err((UploadError::Aborted, size)) };
        size += chunk.len() as u64;
        if size > rules.max_size {
            return Err((UploadError::Refused(Refusal::TooLarge { limit: rules.max_size }), size));
        }
        hasher.update(&chunk).await;
        if let Err(e) = inspector.update(&chunk) {
            return Err((UploadError::Refused(Refusal::Envelope(e)), size));
        }
        if !header_checked && let Some(header) = inspector.header() {
            check_header(header, expected_types, rules).map_err(|r| (UploadError::Refused(r), size))?;
            header_checked = true;
        }
        staged.write_bytes(chunk).await.map_err(|e| (e.into(), size))?;
    }
    let envelope = inspector.finish().map_err(|e| (UploadError::Refused(Refusal::Envelope(e)), size))?;
    if !header_checked {
        check_header(&envelope.header, expected_types, rules).map_err(|r| (UploadError::Refused(r), size))?;
    }
    let digest = hasher.finish().await.map_err(|e| (UploadError::Blob(BlobError::Io(e)), size))?;
    Ok(Received { staged, size, digest: format!("sha256:{}", hex::encode(digest)), envelope })
}

/// Bytes hashed on the receiving task before hashing moves to a thread of its own: small
/// uploads never start one.
const INLINE_HASH: u64 = 1 << 20;
/// Body pieces queued for the hashing thread.
const HASH_QUEUE: usize = 8;

/// SHA-256 of an upload: on the receiving task at first, then on its own thread, fed clones
/// of the body's pieces (no copy) through a short queue, so that on a multi-core machine
/// hashing runs alongside receiving and inspecting instead of after them.
#[derive(Debug)]
pub(crate) enum Hashing {
    /// Hashed here; bytes so far.
    Inline(Sha256, u64),
    /// Hashed by a thread, which hands its state back when the queue closes; bytes so far.
    Thread { queue: tokio::sync::mpsc::Sender<Bytes>, state: tokio::sync::oneshot::Receiver<Sha256>, hashed: u64 },
}

impl Hashing {
    /// Nothing hashed yet.
    pub(crate) fn new() -> Self {
        Self::Inline(Sha256::new(), 0)
    }

    /// Goes on from a state [`Hashing::pause`] returned (a resumable upload's next request).
    pub(crate) fn resume(hasher: Sha256, hashed: u64) -> Self {
        Self::Inline(hasher, hashed)
    }

    /// Adds a piece of the body.
    pub(crate) async fn update(&mut self, piece: &Bytes) {
        match self {
            Self::Inline(hasher, hashed) => {
                hasher.update(piece);
                *hashed += piece.len() as u64;
                if *hashed >= INLINE_HASH
                    && let Some(thread) = Self::spawn(hasher.clone(), *hashed)
                {
                    *self = thread;
                }
            }
            Self::Thread { queue, hashed, .. } => {
                // A closed queue means the thread is gone: `finish` reports it.
                let _ = queue.send(piece.clone()).await;
                *hashed += piece.len() as u64;
            }
        }
    }

    /// Moves `hasher` to a thread; `None` if no thread can be started (hashing stays here).
    fn spawn(mut hasher: Sha256, hashed: u64) -> Option<Self> {
        let (queue, mut pieces) = tokio::sync::mpsc::channel::<Bytes>(HASH_QUEUE);
        let (report, state) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("sealpost-hash".to_owned())
            .spawn(move || {
                while let Some(piece) = pieces.blocking_recv() {
                    hasher.update(&piece);
                }
                let _ = report.send(hasher);
            })
            .ok()?;
        Some(Self::Thread { queue, state, hashed })
    }

    /// The state after everything added, and how many bytes that was (ends the thread).
    pub(crate) async fn pause(self) -> std::io::Result<(Sha256, u64)> {
        match self {
            Self::Inline(hasher, hashed) => Ok((hasher, hashed)),
            Self::Thread { queue, state, hashed } => {
                drop(queue);
                let hasher = state.await.map_err(|_| std::io::Error::other("the hashing thread stopped"))?;
                Ok((hasher, hashed))
            }
        }
    }

    /// The digest of everything added.
    pub(crate) async fn finish(self) -> std::io::Result<[u8; 32]> {
        Ok(self.pause().await?.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::prelude::BASE64_STANDARD_NO_PAD;
    use rand::RngCore as _;

    use super::*;
    use crate::blobs::BlobStore;
    use crate::ids::TransferId;

    /// A file with a well-formed X25519 header and `payload_len` random payload bytes.
    fn age_like(payload_len: usize) -> Vec<u8> {
        let mut random = vec![0u8; 64 + payload_len];
        rand::thread_rng().fill_bytes(&mut random);
        let mut share = [0u8; 32];
        share[0] = 9;
        let mut file = format!(
            "age-encryption.org/v1\n-> X25519 {}\n{}\n--- {}\n",
            BASE64_STANDARD_NO_PAD.encode(share),
            BASE64_STANDARD_NO_PAD.encode(&random[..32]),
            BASE64_STANDARD_NO_PAD.encode(&random[32..64]),
        )
        .into_bytes();
        file.extend_from_slice(&random[64..]);
        file
    }

    #[tokio::test]
    async fn a_large_upload_in_small_pieces_is_staged_and_hashed_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::open(dir.path()).await.expect("open");
        let rules =
            UploadRules { max_size: 1 << 30, envelope: envelope::Limits::default(), allow_unknown_stanzas: false };
        // Past the inline-hash and staging thresholds; pieces both smaller and larger than a
        // staged write.
        let file = age_like(16 + 80 * (64 * 1024 + 16) + 100);
        for piece in [7_000, 300_000] {
            let id = TransferId::generate();
            let pieces: Vec<Result<Bytes, std::io::Error>> =
                file.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            let mut body = futures_util::stream::iter(pieces);
            let staged = blobs.stage(&id).await.expect("stage");
            let received = receive(&mut body, staged, &["X25519"], &rules).await.expect("accepted");
            assert_eq!(received.size, file.len() as u64);
            assert_eq!(received.digest, format!("sha256:{}", hex::encode(Sha256::digest(&file))));
            let key = BlobStore::key_for(&id);
            blobs.commit(received.staged, &key).await.expect("commit");
            let stored = std::fs::read(dir.path().join("blobs").join(&key)).expect("read");
            assert!(stored == file, "stored bytes differ ({piece})");
        }
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("read").count(), 0);
    }

    #[tokio::test]
    async fn a_refused_large_upload_leaves_nothing_staged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::open(dir.path()).await.expect("open");
        let rules =
            UploadRules { max_size: 3 << 20, envelope: envelope::Limits::default(), allow_unknown_stanzas: false };
        let file = age_like(16 + 80 * (64 * 1024 + 16));
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            file.chunks(100_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let mut body = futures_util::stream::iter(pieces);
        let staged = blobs.stage(&TransferId::generate()).await.expect("stage");
        let refused = receive(&mut body, staged, &["X25519"], &rules).await.expect_err("too large");
        assert!(matches!(refused.0, UploadError::Refused(Refusal::TooLarge { .. })));
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("read").count(), 0);
    }
}
