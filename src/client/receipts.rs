//! Checking what the transparency log says about a transfer's upload: the `upload.accepted`
//! receipt (a C2SP tlog-proof) verifies against the log's key, names the transfer, and carries
//! the digest of the ciphertext the sender sent and the recipient received.

use crate::transparency::tlog::note::Verifier;
use crate::transparency::tlog::quorum::Policy;
use crate::transparency::verify::{ReceiptError, ReceiptSummary, verify_receipt};

/// The event an upload receipt proves.
pub const UPLOAD_EVENT: &str = "upload.accepted";

/// Why an upload receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadReceiptError {
    /// The log key is not a verifier key string.
    #[error("`{key}` is not a log verifier key")]
    BadKey { key: String },
    /// The receipt does not verify, or its digest differs.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// The receipt proves another event.
    #[error("the receipt proves `{event}`, not `{UPLOAD_EVENT}`")]
    WrongEvent { event: String },
    /// The receipt is for another transfer.
    #[error("the receipt is for transfer `{actual}`, not `{expected}`")]
    WrongTransfer { expected: String, actual: String },
}

/// The event a key receipt proves.
pub const KEY_EVENT: &str = "key.added";

/// Why a directory key's receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyReceiptError {
    /// The log key is not a verifier key string.
    #[error("`{key}` is not a log verifier key")]
    BadKey { key: String },
    /// The receipt does not verify.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// The receipt proves something else than this key's registration.
    #[error("the log entry is `{event}` for key `{fingerprint}`, not the registration of `{expected}`")]
    NotThisKey { event: String, fingerprint: String, expected: String },
}

/// Key transparency: verifies that `text` is a receipt, under the log key `vkey`, for the
/// `key.added` entry that registered the key with `fingerprint`.
pub fn verify_key(text: &str, vkey: &str, fingerprint: &str) -> Result<ReceiptSummary, KeyReceiptError> {
    let verifier =
        Verifier::from_vkey(vkey.trim()).map_err(|_| KeyReceiptError::BadKey { key: vkey.trim().to_owned() })?;
    let summary = verify_receipt(text, &Policy::log_only(verifier), None)?;
    let logged = summary.entry.fact("fingerprint").unwrap_or_default().to_owned();
    if summary.entry.event() != KEY_EVENT || logged != fingerprint {
        return Err(KeyReceiptError::NotThisKey {
            event: summary.entry.event().to_owned(),
            fingerprint: logged,
            expected: fingerprint.to_owned(),
        });
    }
    Ok(summary)
}

/// Verifies the receipt `text` against the log key `vkey` (`name+hexid+base64`): the entry is
/// the `upload.accepted` of `transfer` and its digest is `digest`.
pub fn verify_upload(
    text: &str,
    vkey: &str,
    transfer: &str,
    digest: &str,
) -> Result<ReceiptSummary, UploadReceiptError> {
    let verifier =
        Verifier::from_vkey(vkey.trim()).map_err(|_| UploadReceiptError::BadKey { key: vkey.trim().to_owned() })?;
    let summary = verify_receipt(text, &Policy::log_only(verifier), Some(digest))?;
    if summary.entry.event() != UPLOAD_EVENT {
        return Err(UploadReceiptError::WrongEvent { event: summary.entry.event().to_owned() });
    }
    let actual = summary.entry.transfer().unwrap_or_default();
    if actual != transfer {
        return Err(UploadReceiptError::WrongTransfer { expected: transfer.to_owned(), actual: actual.to_owned() });
    }
    Ok(summary)
}
