//! What can go wrong in a transfer's life, each case with its stable wire code.

use crate::blobs::BlobError;
use crate::intake::Refusal;
use crate::model::{ParseError, UserRef};
use crate::policy::{Denial, PolicyError};
use crate::store::{RedeemRefusal, StoreError};
use crate::wire::ErrorCode;

use super::signing::ManifestRefusal;

/// Why a transfer request (query string or upload metadata) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A recipient is named twice.
    #[error("`{0}` is addressed twice: name each recipient once")]
    DuplicateRecipient(UserRef),
    /// No recipient is named.
    #[error("name at least one recipient with `?to=ORG/NAME`")]
    NoRecipient,
    /// The expiry is not a duration.
    #[error("`{0}` is not a duration such as `72h` or `7d`")]
    BadExpiry(String),
    /// A parameter that takes one value is given more than once.
    #[error("`{0}` is given more than once: give it once")]
    Repeated(&'static str),
    /// An expiry of zero: the link would be dead on arrival.
    #[error("an expiry of `{0}` would end the links at once: give a duration such as `72h` or `7d`")]
    ZeroExpiry(String),
    /// A parameter the gateway does not know.
    #[error("unknown parameter `{0}`: use `to`, `expires` and `classification`")]
    UnknownParameter(String),
    /// A name, user or classification that does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Only some of the signed manifest's three parts came with the upload.
    #[error(
        "the upload carries a signed manifest without its {missing}: send the manifest, its signature and its key together (the three `Sealpost-Manifest` headers, or the `manifest`, `manifest_signature` and `manifest_key` upload metadata), or none of them"
    )]
    PartialManifest {
        /// The part that is missing: `manifest`, `signature` or `key`.
        missing: &'static str,
    },
    /// A part of the signed manifest is not base64.
    #[error("the signed manifest's {part} is not standard base64: encode it with padding, as RFC 4648 section 4 says")]
    ManifestEncoding {
        /// `manifest` or `signature`.
        part: &'static str,
    },
}

/// How a step of a transfer's life failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The request could not be read.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The transparency log cannot be written: nothing it would record may happen.
    #[error(
        "the gateway cannot write its transparency log, so it accepts no transfers now; nothing was changed, try again later"
    )]
    LogUnavailable,
    /// An addressed user does not exist.
    #[error("there is no user `{0}`: check the address with the recipient's organisation")]
    UnknownRecipient(UserRef),
    /// An addressed user has no key.
    #[error("`{0}` has no key in the directory: ask them to register one with `sealpost keys add`")]
    RecipientHasNoKey(UserRef),
    /// Policy said no.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// The sender's signed manifest was refused, with the fix.
    #[error("{0}: {hint}", hint = .0.hint())]
    Manifest(#[from] ManifestRefusal),
    /// The upload was refused (the envelope, its size, or its recipients), with the fix.
    #[error("{refusal}: {hint}")]
    Refused {
        /// What the gateway found.
        refusal: Refusal,
        /// What to do instead.
        hint: String,
    },
    /// The sender's body broke off.
    #[error("the upload broke off before its end; nothing was kept, send it again")]
    Aborted,
    /// No such transfer, or none the caller may see.
    #[error("there is no transfer `{0}`")]
    UnknownTransfer(String),
    /// A link could not be used.
    #[error("{}", link_message(*.0))]
    Link(RedeemRefusal),
    /// No such resumable upload, or none of the caller's.
    #[error("there is no upload `{0}`: create one with `POST /api/v1/uploads`")]
    UnknownUpload(String),
    /// Another request is writing to the upload.
    #[error("another request is writing to this upload: wait for it to end, then resume from `HEAD`")]
    UploadBusy,
    /// The upload became a transfer already.
    #[error("upload `{0}` is complete: `GET` it for the transfer and its links")]
    UploadComplete(String),
    /// The request assumed a different offset.
    #[error("the upload holds {held} bytes, not {asked}: resume at the `Upload-Offset` `HEAD` gives")]
    OffsetMismatch {
        /// Bytes held.
        held: u64,
        /// Offset the request gave.
        asked: u64,
    },
    /// More bytes than declared.
    #[error("the upload was declared as {length} bytes: send no more than that")]
    UploadLengthExceeded {
        /// The declared length.
        length: u64,
    },
    /// A resumable upload's request body broke off; what arrived is kept.
    #[error("the request body broke off; the upload holds {received} bytes: resume from there")]
    BrokenOff {
        /// Bytes held now.
        received: u64,
    },
    /// The policy set on disk is invalid.
    #[error("{0}: the old policies stay in force")]
    InvalidPolicy(PolicyError),
    /// The database failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Blob storage failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

fn link_message(r: RedeemRefusal) -> &'static str {
    match r {
        RedeemRefusal::NotFound => {
            "no link with that token is addressed to you: check that you copied the whole link and are signed in as its recipient"
        }
        RedeemRefusal::Used => "this link has already been used: ask the sender for a new transfer",
        RedeemRefusal::Expired => "this link has expired: ask the sender to send the bundle again",
        RedeemRefusal::Revoked => "the sender recalled this transfer: contact them if you still need it",
        RedeemRefusal::AwaitingApproval => {
            "this transfer waits for a compliance officer's approval: try again once it is approved"
        }
        RedeemRefusal::InUse => {
            "a download of this link is running: wait for it to finish or break off, then try again"
        }
    }
}

impl LifecycleError {
    /// True for a write lost to storage: no space (507), or a directory or the database that
    /// cannot be written now (503).
    pub fn is_storage_fault(&self) -> bool {
        matches!(
            self,
            Self::Blob(BlobError::Full | BlobError::Unwritable(_))
                | Self::Store(StoreError::Full | StoreError::Unavailable(_))
        )
    }

    /// The stable wire code (which fixes the HTTP status).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Request(RequestError::Repeated(_) | RequestError::ZeroExpiry(_)) => ErrorCode::AmbiguousRequest,
            Self::Request(_) | Self::Aborted | Self::BrokenOff { .. } => ErrorCode::BadRequest,
            Self::LogUnavailable => ErrorCode::LogUnavailable,
            Self::UnknownRecipient(_) => ErrorCode::UnknownRecipient,
            Self::RecipientHasNoKey(_) => ErrorCode::RecipientHasNoKey,
            Self::Denied(d) if d.explicit() => ErrorCode::PolicyDenied,
            Self::Denied(_) => ErrorCode::Forbidden,
            Self::Refused { refusal, .. } => refusal.code(),
            Self::Manifest(refusal) => refusal.code(),
            Self::UnknownTransfer(_) | Self::UnknownUpload(_) => ErrorCode::NotFound,
            Self::Link(r) => r.code(),
            Self::UploadBusy => ErrorCode::UploadBusy,
            Self::UploadComplete(_) => ErrorCode::UploadComplete,
            Self::OffsetMismatch { .. } => ErrorCode::OffsetMismatch,
            Self::UploadLengthExceeded { .. } => ErrorCode::UploadLengthExceeded,
            Self::InvalidPolicy(_) => ErrorCode::InvalidPolicy,
            Self::Store(e) => e.code(),
            Self::Blob(BlobError::Full) => ErrorCode::InsufficientStorage,
            Self::Blob(BlobError::Unavailable(_) | BlobError::Unwritable(_)) => ErrorCode::ServiceUnavailable,
            Self::Blob(_) => ErrorCode::Internal,
        }
    }

    /// True when the client's request is at fault or was refused (a 4xx answer).
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.code().status())
    }

    /// A finer reason for the audit trail, where the code alone does not say it.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::Manifest(refusal) => Some(refusal.reason()),
            Self::Request(RequestError::PartialManifest { .. }) => Some("partial_manifest"),
            Self::Request(RequestError::ManifestEncoding { .. }) => Some("manifest_encoding"),
            _ => None,
        }
    }

    /// The ids of the policies that decided a denial.
    pub fn policies(&self) -> Option<&[String]> {
        match self {
            Self::Denied(d) => Some(&d.policies),
            _ => None,
        }
    }
}
