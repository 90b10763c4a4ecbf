//! Checking what the transparency log says about a transfer's upload: the `upload.accepted`
//! receipt (a C2SP tlog-proof) verifies against the log's key, names the transfer, and carries
//! the digest of the ciphertext the sender sent and the recipient received.

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
    /// The entry registers the key to someone else (or names nobody).
    #[error("the log entry does not register the key to `{user}`")]
    NotOwner { user: String },
}

/// Key transparency: verifies that `text` is a receipt, under `trust` (the log key, or a witness
/// quorum), for the `key.added` entry that registered the key with `fingerprint` to `owner`
/// (its `owner` commitment is `owner`'s name under `name_salt`, as the directory gives it).
pub fn verify_key(
    text: &str,
    trust: &Policy,
    fingerprint: &str,
    owner: &crate::model::UserRef,
    name_salt: &str,
) -> Result<ReceiptSummary, KeyReceiptError> {
    let summary = verify_receipt(text, trust, None)?;
    let logged = summary.entry.fact("fingerprint").unwrap_or_default().to_owned();
    if summary.entry.event() != KEY_EVENT || logged != fingerprint {
        return Err(KeyReceiptError::NotThisKey {
            event: summary.entry.event().to_owned(),
            fingerprint: logged,
            expected: fingerprint.to_owned(),
        });
    }
    let commitment = crate::names::commitment(name_salt, owner).ok();
    if commitment.is_none() || summary.entry.fact("owner") != commitment.as_deref() {
        return Err(KeyReceiptError::NotOwner { user: owner.to_string() });
    }
    Ok(summary)
}

/// Verifies the receipt `text` under `trust` (the log key, or a witness quorum): the entry is
/// the `upload.accepted` of `transfer` and its digest is `digest`.
pub fn verify_upload(
    text: &str,
    trust: &Policy,
    transfer: &str,
    digest: &str,
) -> Result<ReceiptSummary, UploadReceiptError> {
    let summary = verify_receipt(text, trust, Some(digest))?;
    if summary.entry.event() != UPLOAD_EVENT {
        return Err(UploadReceiptError::WrongEvent { event: summary.entry.event().to_owned() });
    }
    let actual = summary.entry.transfer().unwrap_or_default();
    if actual != transfer {
        return Err(UploadReceiptError::WrongTransfer { expected: transfer.to_owned(), actual: actual.to_owned() });
    }
    Ok(summary)
}

/// Why a signed delivery receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedDeliveryError {
    /// The file is not a `sealpost.signed-delivery/v1` receipt.
    #[error("not a `{}` receipt", crate::wire::log::SignedDeliveryReceipt::FORMAT)]
    Format,
    /// The delivery's receipt does not verify.
    #[error("the delivery receipt does not verify")]
    Delivery(#[source] ReceiptError),
    /// The signing key's receipt does not verify.
    #[error("the signing key's receipt does not verify")]
    Key(#[source] ReceiptError),
    /// The delivery entry is not a signed `delivery.acknowledged`.
    #[error("the delivery entry is `{event}`, not a signed `delivery.acknowledged`")]
    NotSigned { event: String },
    /// The key entry does not register the key that signed.
    #[error("the key entry does not register the signing key `{key}`")]
    OtherKey { key: String },
    /// The key was registered after the delivery was signed.
    #[error("the signing key was registered at entry {key_index}, after the delivery at entry {delivery_index}")]
    KeyTooLate { key_index: u64, delivery_index: u64 },
    /// The salt is not a name salt.
    #[error("the name salt is malformed")]
    Salt,
    /// The delivery entry's recipient commitment is not the signer's name.
    #[error("the delivery entry's recipient is not `{signer}` under the given salt")]
    NotSigner { signer: String },
    /// The key entry's owner commitment is not the signer's name.
    #[error("the signing key is not registered to `{signer}` in the log")]
    NotOwner { signer: String },
    /// The statement rebuilt from the entry does not parse.
    #[error("the delivery entry does not hold a well-formed statement")]
    Statement,
    /// The signing key string is not a signing key.
    #[error("`{key}` is not a signing key")]
    BadKey { key: String },
    /// The recipient's signature does not verify.
    #[error("the recipient's signature does not verify")]
    Signature,
}

/// A verified signed delivery, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDelivery {
    /// The delivery entry's receipt.
    pub delivery: ReceiptSummary,
    /// The signing key's registration receipt.
    pub key: ReceiptSummary,
    /// The statement the recipient signed.
    pub statement: crate::delivery::Statement,
    /// The signing key string.
    pub signing_key: String,
}

/// Verifies, offline and under `policy`, that `receipt.signer` signed for the ciphertext in the
/// delivery entry: both receipts verify; the delivery entry carries a statement whose signature
/// verifies under its signing key; the key's registration came first and names the same person
/// (`owner` commitment) as the delivery (`recipient` commitment), and that person is `signer`
/// under `name_salt`. With `expect_digest`, the entry's digest must be it too.
pub fn verify_signed_delivery(
    receipt: &crate::wire::log::SignedDeliveryReceipt,
    policy: &Policy,
    expect_digest: Option<&str>,
) -> Result<SignedDelivery, SignedDeliveryError> {
    use SignedDeliveryError as E;
    if receipt.format != crate::wire::log::SignedDeliveryReceipt::FORMAT {
        return Err(E::Format);
    }
    let delivery = verify_receipt(&receipt.delivery, policy, expect_digest).map_err(E::Delivery)?;
    let key = verify_receipt(&receipt.key, policy, None).map_err(E::Key)?;
    let entry = &delivery.entry;
    let signing_key = entry.fact("signing_key").filter(|_| entry.event() == "delivery.acknowledged");
    let (Some(signing_key), Some(signature)) = (signing_key, entry.fact("signature")) else {
        return Err(E::NotSigned { event: entry.event().to_owned() });
    };
    if key.entry.event() != KEY_EVENT || key.entry.fact("key") != Some(signing_key) {
        return Err(E::OtherKey { key: signing_key.to_owned() });
    }
    if key.index >= delivery.index {
        return Err(E::KeyTooLate { key_index: key.index, delivery_index: delivery.index });
    }
    let commitment = crate::names::commitment(&receipt.name_salt, &receipt.signer).map_err(|_| E::Salt)?;
    let signer = receipt.signer.to_string();
    if entry.fact("recipient") != Some(commitment.as_str()) {
        return Err(E::NotSigner { signer });
    }
    if key.entry.fact("owner") != Some(commitment.as_str()) {
        return Err(E::NotOwner { signer });
    }
    let statement = crate::delivery::Statement::from_entry(entry, &receipt.signer).ok_or(E::Statement)?;
    let public =
        crate::directory::signing_public_key(signing_key).ok_or_else(|| E::BadKey { key: signing_key.to_owned() })?;
    if !crate::delivery::signature_verifies(&statement.text(), signature, &public) {
        return Err(E::Signature);
    }
    Ok(SignedDelivery { statement, signing_key: signing_key.to_owned(), delivery, key })
}
