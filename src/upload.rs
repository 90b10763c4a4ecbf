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
    let mut hasher = Sha256::new();
    let mut inspector = Inspector::new(rules.envelope.clone());
    let mut size: u64 = 0;
    let mut header_checked = false;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { return Err((UploadError::Aborted, size)) };
        size += chunk.len() as u64;
        if size > rules.max_size {
            return Err((UploadError::Refused(Refusal::TooLarge { limit: rules.max_size }), size));
        }
        hasher.update(&chunk);
        if let Err(e) = inspector.update(&chunk) {
            return Err((UploadError::Refused(Refusal::Envelope(e)), size));
        }
        if !header_checked && let Some(header) = inspector.header() {
            check_header(header, expected_types, rules).map_err(|r| (UploadError::Refused(r), size))?;
            header_checked = true;
        }
        staged.write(&chunk).await.map_err(|e| (e.into(), size))?;
    }
    let envelope = inspector.finish().map_err(|e| (UploadError::Refused(Refusal::Envelope(e)), size))?;
    if !header_checked {
        check_header(&envelope.header, expected_types, rules).map_err(|r| (UploadError::Refused(r), size))?;
    }
    Ok(Received { staged, size, digest: format!("sha256:{}", hex::encode(hasher.finalize())), envelope })
}
