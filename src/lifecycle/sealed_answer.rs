//! A completed resumable upload's answer, sealed for the database: the answer holds the links'
//! one-time tokens, which the gateway otherwise never stores (only their hashes), so it is kept
//! encrypted, and a dump of the database alone reveals no token.
//!
//! The key: HKDF-SHA256 (RFC 5869) of the gateway's Ed25519 signing key, which every gateway of
//! a deployment shares (`--signing-key`) and which never enters the database, under a label of
//! its own. A key held by the sender would be stronger, but no secret of theirs lasts as long as
//! the answer for every kind of sender: a browser sends with a session that may idle out or be
//! replaced by a new sign-in while the upload resumes, and a token may be rotated. The cipher:
//! XChaCha20-Poly1305 with a random 192-bit nonce; the upload's id and its sender's id are the
//! associated data, so a sealed answer moved to another upload or sender does not open.
//!
//! Stored as `nonce ‖ ciphertext ‖ tag`.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ids::{TransferId, UserId};
use crate::wire::transfers::UploadAnswer;

/// The HKDF label of the sealing key, and the first part of the associated data.
const LABEL: &[u8] = b"sealpost upload-answer v1";
/// XChaCha20-Poly1305's nonce length.
const NONCE_LEN: usize = 24;

/// Why a sealed answer did not open (or could not be sealed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub(super) enum SealError {
    /// Too short, tampered with, sealed under another signing key, or for another upload or
    /// sender.
    #[error("the sealed answer does not open with this gateway's key for this upload and sender")]
    DoesNotOpen,
    /// It opened, but is not an answer (sealed by another version).
    #[error("the sealed answer is not an upload answer")]
    NotAnAnswer,
    /// The answer could not be encoded or encrypted.
    #[error("the answer could not be sealed")]
    Unsealable,
}

/// The key answers are sealed with, derived from the signing key. Zeroized on drop, never
/// printed.
pub(super) struct AnswerKey(XChaCha20Poly1305);

impl std::fmt::Debug for AnswerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerKey(..)")
    }
}

impl AnswerKey {
    /// The sealing key of the deployment whose signing key is `signing_key`.
    pub(super) fn derive(signing_key: &SigningKey) -> Self {
        let seed = Zeroizing::new(signing_key.to_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 × 32, so expanding cannot fail.
        let _ = Hkdf::<Sha256>::new(None, seed.as_slice()).expand(LABEL, key.as_mut_slice());
        Self(XChaCha20Poly1305::new(key.as_slice().into()))
    }

    /// Seals `answer`, the answer of upload `id` sent by `sender`.
    pub(super) fn seal(&self, id: &TransferId, sender: &UserId, answer: &UploadAnswer) -> Result<Vec<u8>, SealError> {
        let plaintext = Zeroizing::new(serde_json::to_vec(answer).map_err(|_| SealError::Unsealable)?);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(id, sender);
        let sealed = self
            .0
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad })
            .map_err(|_| SealError::Unsealable)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`AnswerKey::seal`] sealed for upload `id` and `sender`.
    pub(super) fn open(&self, id: &TransferId, sender: &UserId, sealed: &[u8]) -> Result<UploadAnswer, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = associated_data(id, sender);
        let plaintext = Zeroizing::new(
            self.0
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
                .map_err(|_| SealError::DoesNotOpen)?,
        );
        serde_json::from_slice(&plaintext).map_err(|_| SealError::NotAnAnswer)
    }
}

/// What a sealed answer is bound to: the label, then the upload's id and its sender's id, each
/// after its length (so no two pairs make the same bytes).
fn associated_data(id: &TransferId, sender: &UserId) -> Vec<u8> {
    let mut aad = LABEL.to_vec();
    for part in [id.as_str(), sender.as_str()] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TransferStatus;

    const TOKEN: &str = "Vq3k0cZ6lH1u9yXcB0w8m2YJ3s5nQ7rT1pL4aE6dF8g";

    fn answer(id: &TransferId) -> UploadAnswer {
        serde_json::from_value(serde_json::json!({
            "id": id.as_str(),
            "status": TransferStatus::Available,
            "policies": ["default-send"],
            "receipt": null,
            "size": 1234,
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "classification": "OFFICIAL",
            "expires_at": "2030-01-01T00:00:00Z",
            "links": [{"recipient": "hmpps/alice", "url": format!("https://sealpost.test/d#{TOKEN}"),
                "expires_at": "2030-01-01T00:00:00Z"}],
        }))
        .expect("an answer")
    }

    fn key(seed: u8) -> AnswerKey {
        AnswerKey::derive(&SigningKey::from_bytes(&[seed; 32]))
    }

    #[test]
    fn a_sealed_answer_opens_for_its_upload_and_sender_and_shows_no_token() {
        let (id, sender) = (TransferId::generate(), UserId::generate());
        let sealed = key(1).seal(&id, &sender, &answer(&id)).expect("sealed");
        assert!(!sealed.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
        assert!(!sealed.windows(6).any(|w| w == b"hmpps/"), "nothing of the answer is in clear");
        assert_eq!(key(1).open(&id, &sender, &sealed), Ok(answer(&id)));
        // A fresh nonce each time: the same answer never seals to the same bytes.
        assert_ne!(key(1).seal(&id, &sender, &answer(&id)).expect("sealed"), sealed);
    }

    #[test]
    fn a_sealed_answer_does_not_open_elsewhere_or_after_tampering() {
        let (id, sender) = (TransferId::generate(), UserId::generate());
        let sealed = key(1).seal(&id, &sender, &answer(&id)).expect("sealed");
        assert_eq!(key(2).open(&id, &sender, &sealed), Err(SealError::DoesNotOpen), "another signing key");
        assert_eq!(key(1).open(&TransferId::generate(), &sender, &sealed), Err(SealError::DoesNotOpen));
        assert_eq!(key(1).open(&id, &UserId::generate(), &sealed), Err(SealError::DoesNotOpen));
        for at in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[at] ^= 1;
            assert_eq!(key(1).open(&id, &sender, &tampered), Err(SealError::DoesNotOpen), "byte {at} flipped");
        }
        assert_eq!(key(1).open(&id, &sender, &sealed[..NONCE_LEN - 1]), Err(SealError::DoesNotOpen));
        assert_eq!(key(1).open(&id, &sender, &[]), Err(SealError::DoesNotOpen));
    }

    #[test]
    fn the_key_is_not_printed() {
        assert_eq!(format!("{:?}", key(1)), "AnswerKey(..)");
    }
}
