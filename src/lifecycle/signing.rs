//! The sender's signature before release: the `sealpost.manifest/v2` text that travels with an
//! upload (headers on the one-shot `POST /api/v1/transfers`, `Upload-Metadata` on tus creation),
//! checked when the request arrives (the sender, recipients, classification and expiry it names;
//! a live signing key of the caller; the signature) and, for its digest, when the body ends. A
//! transfer counts as signed for policy only through this path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{LifecycleError, RequestError};
use crate::audit::{Event, EventKind};
use crate::directory::{SIGNING_TYPE, signing_public_key};
use crate::gateway::Gateway;
use crate::ids::UserId;
use crate::manifest::{ManifestError, ManifestV2};
use crate::model::{Classification, Principal, UserRef};
use crate::store::{Manifest, StoreError, UploadManifest};
use crate::wire::{Digest, ErrorCode};

/// A signed manifest as an upload carries it, after the transport's own decoding: any part may
/// be missing (all three or none is the rule, checked here, so that a partial set is refused and
/// logged like any other bad request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestParts {
    /// Standard base64 of the manifest text.
    pub manifest: Option<String>,
    /// Standard base64 of the 64 signature bytes.
    pub signature: Option<String>,
    /// The signing key's fingerprint, `sha256:…`.
    pub key: Option<String>,
}

impl ManifestParts {
    /// The parts of a manifest kept with a resumable upload.
    pub(super) fn of_stored(stored: Option<&UploadManifest>) -> Self {
        stored.map_or_else(Self::default, |m| Self {
            manifest: Some(STANDARD.encode(&m.manifest)),
            signature: Some(m.signature.clone()),
            key: Some(m.key.clone()),
        })
    }
}

/// Why a sender's manifest was refused. Each has a stable wire code and a finer `reason` for
/// the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestRefusal {
    /// The text is not a canonical `sealpost.manifest/v2`.
    #[error("the manifest is not a canonical `sealpost.manifest/v2` text: {0}")]
    NotCanonical(ManifestError),
    /// The key is none of the caller's live signing keys.
    #[error("`{0}` is none of your signing keys (never registered, or removed)")]
    UnknownKey(String),
    /// The signature does not verify under the key.
    #[error("the manifest's signature does not verify under `{0}`")]
    BadSignature(String),
    /// The manifest names another sender.
    #[error("the manifest names `{signed}` as its sender, but you are `{caller}`")]
    Sender {
        /// What the manifest says.
        signed: UserRef,
        /// The caller.
        caller: UserRef,
    },
    /// The manifest names other recipients.
    #[error("the manifest names the recipients {signed}, but the upload is addressed to {addressed}")]
    Recipients {
        /// What the manifest says, space-separated.
        signed: String,
        /// The addressed recipients, space-separated.
        addressed: String,
    },
    /// The manifest names another classification.
    #[error("the manifest says `{signed}`, but the upload is `{resolved}`")]
    Classification {
        /// What the manifest says.
        signed: Classification,
        /// The upload's classification (`OFFICIAL` when it names none).
        resolved: Classification,
    },
    /// The manifest names another lifetime.
    #[error("the manifest says the links live {signed} seconds, but the upload asks for {resolved}")]
    Expires {
        /// What the manifest says.
        signed: u64,
        /// The upload's expiry in seconds (the gateway's default when it names none).
        resolved: u64,
    },
    /// The body is not the file the manifest names (a manifest of another upload, replayed).
    #[error("the manifest is for the file with digest `{signed}`, but the uploaded file's digest is `{received}`")]
    Digest {
        /// What the manifest says.
        signed: Digest,
        /// What arrived.
        received: Digest,
    },
}

impl ManifestRefusal {
    /// The stable wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownKey(_) => ErrorCode::UnknownSigningKey,
            Self::BadSignature(_) => ErrorCode::SenderSignatureInvalid,
            _ => ErrorCode::ManifestMismatch,
        }
    }

    /// The finer reason recorded in the `upload.refused` entry.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotCanonical(_) => "not_canonical",
            Self::UnknownKey(_) => "unknown_key",
            Self::BadSignature(_) => "bad_signature",
            Self::Sender { .. } => "sender",
            Self::Recipients { .. } => "recipients",
            Self::Classification { .. } => "classification",
            Self::Expires { .. } => "expires",
            Self::Digest { .. } => "digest",
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::NotCanonical(_) => {
                "render the manifest exactly as the `sealpost.manifest/v2` format says, or let `sealpost send --signing-key FILE` make it"
            }
            Self::UnknownKey(_) => {
                "register the key with `sealpost keys add`, or sign with one of the signing keys `sealpost keys list` shows"
            }
            Self::BadSignature(_) => {
                "sign the manifest's exact bytes with the Ed25519 key whose fingerprint you send, and send it in standard base64"
            }
            Self::Sender { .. } | Self::Recipients { .. } | Self::Classification { .. } | Self::Expires { .. } => {
                "sign a manifest of this upload's own parameters, and send the classification and expiry you signed explicitly"
            }
            Self::Digest { .. } => {
                "sign the manifest of the file you upload (its digest is the SHA-256 of the whole age file); nothing was kept, send it again"
            }
        }
    }
}

/// A manifest that passed the checks on arrival: canonical, naming the caller, the addressed
/// recipients, the resolved classification and expiry, and signed by a live signing key of the
/// caller. Only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct SignedUpload {
    text: String,
    digest: Digest,
    signature: String,
    key_fingerprint: String,
    key_public: String,
}

impl SignedUpload {
    /// Refuses a body whose digest is not the one the manifest names.
    pub(super) fn check_digest(&self, received: Digest) -> Result<(), ManifestRefusal> {
        if received == self.digest { Ok(()) } else { Err(ManifestRefusal::Digest { signed: self.digest, received }) }
    }

    /// What a resumable upload keeps of it, to check again at every request.
    pub(super) fn stored(&self) -> UploadManifest {
        UploadManifest {
            manifest: self.text.clone(),
            signature: self.signature.clone(),
            key: self.key_fingerprint.clone(),
        }
    }

    /// What is kept with the transfer.
    pub(super) fn manifest(&self) -> Manifest {
        Manifest {
            manifest: self.text.clone(),
            signature: self.signature.clone(),
            key_fingerprint: self.key_fingerprint.clone(),
            key_public: self.key_public.clone(),
        }
    }
}

/// What the manifest must name: the request as the gateway resolved it.
#[derive(Debug)]
pub(super) struct Resolved<'a> {
    /// The addressed recipients.
    pub(super) recipients: &'a [UserRef],
    /// The classification (`OFFICIAL` when the request names none).
    pub(super) classification: Classification,
    /// The links' lifetime in whole seconds.
    pub(super) expires: u64,
}

/// A user-given value fit for an error message: one short line.
fn shown(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(80).collect()
}

fn names(users: &[UserRef]) -> String {
    users.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(" ")
}

/// Checks the manifest an upload carries, if any, when the request arrives: all three parts or
/// none (`bad_request`), canonical text, a live signing key of the caller, a signature that
/// verifies, and the request's own parameters.
pub(super) async fn verify(
    gw: &Gateway,
    caller: &Principal,
    parts: &ManifestParts,
    resolved: &Resolved<'_>,
) -> Result<Option<SignedUpload>, LifecycleError> {
    let (manifest, signature, key) = match (&parts.manifest, &parts.signature, &parts.key) {
        (None, None, None) => return Ok(None),
        (Some(m), Some(s), Some(k)) => (m, s, k),
        (m, s, _) => {
            let missing = if m.is_none() {
                "manifest"
            } else if s.is_none() {
                "signature"
            } else {
                "key"
            };
            return Err(RequestError::PartialManifest { missing }.into());
        }
    };
    let text = STANDARD.decode(manifest.trim()).map_err(|_| RequestError::ManifestEncoding { part: "manifest" })?;
    let signature =
        STANDARD.decode(signature.trim()).map_err(|_| RequestError::ManifestEncoding { part: "signature" })?;
    let parsed = ManifestV2::parse_bytes(&text).map_err(ManifestRefusal::NotCanonical)?;
    let key = key.trim();
    let keys = gw.store.list_keys(&caller.user).await?;
    let Some(registered) = keys.iter().find(|k| k.stanza_type == SIGNING_TYPE && k.fingerprint == key) else {
        return Err(ManifestRefusal::UnknownKey(shown(key)).into());
    };
    let public = signing_public_key(&registered.recipient).ok_or_else(|| StoreError::Unreadable {
        column: "recipient_keys.recipient",
        value: registered.fingerprint.clone(),
    })?;
    let bad_signature = || ManifestRefusal::BadSignature(key.to_owned());
    let signature = ed25519_dalek::Signature::from_slice(&signature).map_err(|_| bad_signature())?;
    public.verify_strict(&text, &signature).map_err(|_| bad_signature())?;
    if parsed.sender != caller.user {
        return Err(ManifestRefusal::Sender { signed: parsed.sender, caller: caller.user.clone() }.into());
    }
    let addressed = ManifestV2::new(
        caller.user.clone(),
        parsed.digest,
        resolved.classification,
        resolved.expires,
        resolved.recipients.iter().cloned(),
    );
    if parsed.recipients != addressed.recipients {
        return Err(ManifestRefusal::Recipients {
            signed: names(&parsed.recipients),
            addressed: names(&addressed.recipients),
        }
        .into());
    }
    if parsed.classification != resolved.classification {
        return Err(ManifestRefusal::Classification {
            signed: parsed.classification,
            resolved: resolved.classification,
        }
        .into());
    }
    if parsed.expires != resolved.expires {
        return Err(ManifestRefusal::Expires { signed: parsed.expires, resolved: resolved.expires }.into());
    }
    Ok(Some(SignedUpload {
        // Valid UTF-8: it parsed.
        text: String::from_utf8_lossy(&text).into_owned(),
        digest: parsed.digest,
        signature: STANDARD.encode(signature.to_bytes()),
        key_fingerprint: registered.fingerprint.clone(),
        key_public: registered.recipient.clone(),
    }))
}

/// Records an upload refused for its manifest once its body ended (`upload.refused`, with the
/// code and reason) and makes the error that says what to do.
pub(super) async fn refuse(gw: &Gateway, sender: &UserId, refusal: ManifestRefusal, size: u64) -> LifecycleError {
    let event = Event::new(EventKind::UploadRefused)
        .actor(sender)
        .code(refusal.code().as_str())
        .field("reason", refusal.reason())
        .field("size", size);
    if let Err(e) = gw.store.record(&event, gw.clock.now()).await {
        return e.into();
    }
    refusal.into()
}
