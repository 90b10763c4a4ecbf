//! Receiving an upload: the one pipeline every byte goes through (hash, inspect, refuse as early
//! as the evidence allows), and the streaming of a one-shot body into a staged blob with it.
//!
//! Order of checks: the size cap on every chunk; the envelope header as soon as it is complete
//! (passphrase stanzas, unknown stanza types, and whether the stanzas match the addressed
//! recipients' directory keys: one stanza of the right type per key and, for the types whose
//! stanzas carry a tag of their key, the right tags); then, at the end, the payload (STREAM
//! length, randomness).
//! Nothing here touches the database: the caller commits only what comes back accepted.

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};

use crate::blobs::{BlobError, StagedBlob};
use crate::directory::SIGNING_TYPE;
use crate::envelope::{self, Envelope, EnvelopeError, Inspector, StanzaKind};
use crate::model::Recipient;
use crate::tagged::{self, KeyTag, Mismatch};
use crate::wire::{Digest, ErrorCode};

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
    /// A stanza of a tagged type whose tag is that of none of the addressed keys.
    #[error(
        "the file's `{stanza_type}` stanza (stanza {stanza} of the header) carries a tag that matches no key of the addressed recipients: it was encrypted to someone else's key"
    )]
    StrangerStanza {
        /// Its place in the header, from 1.
        stanza: usize,
        /// Its type.
        stanza_type: String,
    },
    /// An addressed key of a tagged type without a stanza of its own: the stanzas carrying its
    /// tag are all needed by other keys (say, two stanzas for one key and none for another).
    #[error(
        "the file has no `{stanza_type}` stanza for {owner}'s key {fingerprint}: the stanzas of that type carry the tags of other keys"
    )]
    KeyWithoutStanza {
        /// Who holds the key, `ORG/NAME`.
        owner: String,
        /// Its stanza type.
        stanza_type: String,
        /// Its fingerprint.
        fingerprint: String,
    },
}

impl Refusal {
    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::Envelope(_) | Self::UnknownStanza { .. } => ErrorCode::NotAgeEncrypted,
            Self::Passphrase => ErrorCode::PassphraseNotAllowed,
            Self::RecipientMismatch { .. } | Self::StrangerStanza { .. } | Self::KeyWithoutStanza { .. } => {
                ErrorCode::RecipientMismatch
            }
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
            Self::StrangerStanza { .. } => "stanza_for_another_key",
            Self::KeyWithoutStanza { .. } => "key_without_stanza",
        }
    }
}

/// How receiving an upload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
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

/// Proof that an upload's every byte went through the envelope inspector and SHA-256 and
/// passed: only [`Pipeline::finish`] makes one, and committing a transfer requires one, so a path
/// that skips the inspection does not compile.
#[derive(Debug)]
pub struct Inspected {
    size: u64,
    digest: Digest,
    envelope: Envelope,
}

impl Inspected {
    /// Bytes received.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// SHA-256 of the bytes as received.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// What the inspector found.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
}

/// One directory key of an addressed recipient, as the addressee check needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    /// Who holds it, `ORG/NAME`.
    pub owner: String,
    /// The stanza type a file encrypted to it carries.
    pub stanza_type: String,
    /// `sha256:` and the hex SHA-256 of the key string.
    pub fingerprint: String,
    /// What its stanzas' tags derive from, for a type whose stanzas carry one; `None` for the
    /// other types (and for a key of a tagged type that cannot be read, which then matches no
    /// stanza).
    pub tag: Option<KeyTag>,
}

/// The keys a file to `recipients` must be encrypted to, each once: every live directory key of
/// every recipient but signing keys (which sign manifests and receive no stanza).
pub fn addressees(recipients: &[Recipient]) -> Vec<Addressee> {
    recipients
        .iter()
        .flat_map(|r| r.keys.iter().map(move |k| (r, k)))
        .filter(|(_, k)| k.stanza_type != SIGNING_TYPE)
        .map(|(r, k)| Addressee {
            owner: r.user.to_string(),
            stanza_type: k.stanza_type.clone(),
            fingerprint: k.fingerprint.clone(),
            tag: KeyTag::of(&k.stanza_type, &k.recipient),
        })
        .collect()
}

/// Checks a parsed header against the rules and the addressed recipients' keys: one stanza of
/// the right type per key, and for tagged types ([`tagged`]) each stanza carrying the tag of an
/// addressed key, each key its own stanza.
pub fn check_header(header: &envelope::Header, addressees: &[Addressee], rules: &UploadRules) -> Result<(), Refusal> {
    if header.has_passphrase() {
        return Err(Refusal::Passphrase);
    }
    if !rules.allow_unknown_stanzas
        && let Some(s) = header.recipient_stanzas().find(|s| s.kind == StanzaKind::Unknown)
    {
        return Err(Refusal::UnknownStanza { tag: s.tag.clone() });
    }
    let mut found: Vec<&str> = header.recipient_stanzas().map(|s| s.tag.as_str()).collect();
    let mut expected: Vec<&str> = addressees.iter().map(|a| a.stanza_type.as_str()).collect();
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
    let keys = addressees.iter().map(|a| (a.stanza_type.as_str(), a.tag));
    tagged::match_stanzas(&header.stanzas, keys).map_err(|mismatch| match mismatch {
        Mismatch::Stranger { stanza } => {
            let stanza_type = header.stanzas.get(stanza - 1).map(|s| s.tag.clone()).unwrap_or_default();
            Refusal::StrangerStanza { stanza, stanza_type }
        }
        Mismatch::Unserved { key } => {
            let a = &addressees[key];
            Refusal::KeyWithoutStanza {
                owner: a.owner.clone(),
                stanza_type: a.stanza_type.clone(),
                fingerprint: a.fingerprint.clone(),
            }
        }
    })
}

/// The one receive-and-inspect pipeline, whatever the door: every byte of an upload goes
/// through here in order (a one-shot body, a resumable upload's `PATCH`es, or a partial file
/// read back from disk), hashed and inspected, refused as early as the evidence allows: the
/// size cap on every piece, the header against the recipients' keys as soon as it is complete,
/// the payload (STREAM length, randomness) at the end.
#[derive(Debug)]
pub struct Pipeline {
    inspector: Inspector,
    hashing: Hashing,
    size: u64,
    header_checked: bool,
    rules: UploadRules,
}

/// A [`Pipeline`] between two requests of a resumable upload: the hashing thread is joined and
/// its state kept, so nothing runs while the sender is away.
#[derive(Debug)]
pub struct PausedPipeline {
    inspector: Inspector,
    hasher: Sha256,
    size: u64,
    header_checked: bool,
    rules: UploadRules,
}

impl Pipeline {
    /// Nothing received yet.
    pub fn new(rules: &UploadRules) -> Self {
        Self {
            inspector: Inspector::new(rules.envelope.clone()),
            hashing: Hashing::new(),
            size: 0,
            header_checked: false,
            rules: rules.clone(),
        }
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True once the whole header has been read and checked.
    pub fn header_checked(&self) -> bool {
        self.header_checked
    }

    /// Feeds the next piece. `addressees` are the addressed recipients' directory keys
    /// ([`addressees`]).
    pub async fn feed(&mut self, piece: &Bytes, addressees: &[Addressee]) -> Result<(), Refusal> {
        self.size += piece.len() as u64;
        if self.size > self.rules.max_size {
            return Err(Refusal::TooLarge { limit: self.rules.max_size });
        }
        self.hashing.update(piece).await;
        self.inspector.update(piece).map_err(Refusal::Envelope)?;
        if !self.header_checked
            && let Some(header) = self.inspector.header()
        {
            check_header(header, addressees, &self.rules)?;
            self.header_checked = true;
        }
        Ok(())
    }

    /// The end of the upload: the payload checks, the header against `addressees` again (the
    /// directory may have changed while a resumable upload was paused), the digest.
    pub async fn finish(self, addressees: &[Addressee]) -> Result<Inspected, ReceiveError> {
        let envelope = self.inspector.finish().map_err(|e| ReceiveError::Refused(Refusal::Envelope(e)))?;
        check_header(&envelope.header, addressees, &self.rules).map_err(ReceiveError::Refused)?;
        let digest = self.hashing.finish().await.map_err(|e| ReceiveError::Blob(BlobError::Io(e)))?;
        Ok(Inspected { size: self.size, digest: Digest::from_bytes(digest), envelope })
    }

    /// Stops the hashing thread and keeps the state for the next request.
    pub async fn pause(self) -> Result<PausedPipeline, ReceiveError> {
        let (hasher, hashed) = self.hashing.pause().await.map_err(|e| ReceiveError::Blob(BlobError::Io(e)))?;
        debug_assert_eq!(hashed, self.size);
        Ok(PausedPipeline {
            inspector: self.inspector,
            hasher,
            size: self.size,
            header_checked: self.header_checked,
            rules: self.rules,
        })
    }
}

impl PausedPipeline {
    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Goes on where it stopped.
    pub fn resume(self) -> Pipeline {
        Pipeline {
            inspector: self.inspector,
            hashing: Hashing::resume(self.hasher, self.size),
            size: self.size,
            header_checked: self.header_checked,
            rules: self.rules,
        }
    }
}

/// Streams `body` into `staged` through a [`Pipeline`]. On a refusal the rest of the body is
/// left unread in `body`, so the caller can decide whether to drain it; the staged file is
/// dropped (deleted) with the error.
pub async fn receive<S, E>(
    body: &mut S,
    mut staged: StagedBlob,
    addressees: &[Addressee],
    rules: &UploadRules,
) -> Result<(StagedBlob, Inspected), (ReceiveError, u64)>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut pipeline = Pipeline::new(rules);
    while let Some(piece) = body.next().await {
        let Ok(piece) = piece else { return Err((ReceiveError::Aborted, pipeline.size())) };
        pipeline.feed(&piece, addressees).await.map_err(|r| (ReceiveError::Refused(r), pipeline.size()))?;
        staged.write_bytes(piece).await.map_err(|e| (e.into(), pipeline.size()))?;
    }
    let size = pipeline.size();
    let inspected = pipeline.finish(addressees).await.map_err(|e| (e, size))?;
    Ok((staged, inspected))
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

    /// One addressed X25519 key: its stanzas name no key, so only the count is checked.
    fn x25519_key() -> Vec<Addressee> {
        let owner = "hmpps/alice".to_owned();
        vec![Addressee { owner, stanza_type: "X25519".into(), fingerprint: "sha256:00".into(), tag: None }]
    }

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
            let (staged, inspected) = receive(&mut body, staged, &x25519_key(), &rules).await.expect("accepted");
            assert_eq!(inspected.size(), file.len() as u64);
            assert_eq!(inspected.digest(), Digest::of(&file));
            let key = BlobStore::key_for(&id);
            blobs.commit(staged, &key).await.expect("commit");
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
        let refused = receive(&mut body, staged, &x25519_key(), &rules).await.expect_err("too large");
        assert!(matches!(refused.0, ReceiveError::Refused(Refusal::TooLarge { .. })));
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("read").count(), 0);
    }
}
