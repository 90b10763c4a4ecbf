//! Webhook signing secrets: made here, shown to the administrator once (`whsec_` and the base64
//! of 32 random bytes, the Standard Webhooks form), and kept sealed in the database.
//!
//! The gateway has to keep each secret to sign deliveries, so it cannot keep only a hash. It
//! seals it instead, as it seals resumable uploads' answers: XChaCha20-Poly1305 under a key
//! derived by HKDF-SHA256 from the gateway's Ed25519 signing key (which every gateway of a
//! deployment shares and which never enters the database) with a label of its own, a random
//! 192-bit nonce, and the endpoint's id as associated data (a sealed secret moved to another
//! endpoint does not open). Stored as `nonce ‖ ciphertext ‖ tag`. A dump of the database alone
//! therefore lets nobody forge deliveries.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ids::WebhookId;

/// The HKDF label of the sealing key, and the first part of the associated data.
const LABEL: &[u8] = b"sealpost webhook-secret v1";
/// XChaCha20-Poly1305's nonce length.
const NONCE_LEN: usize = 24;
/// The secret's length in bytes.
const SECRET_LEN: usize = 32;

/// A sealed secret that does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the webhook's sealed secret does not open with this gateway's signing key")]
pub struct DoesNotOpen;

fn cipher(signing_key: &SigningKey) -> XChaCha20Poly1305 {
    let seed = Zeroizing::new(signing_key.to_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit, so expanding cannot fail.
    let _ = Hkdf::<Sha256>::new(None, seed.as_slice()).expand(LABEL, key.as_mut_slice());
    XChaCha20Poly1305::new(key.as_slice().into())
}

fn associated_data(id: &WebhookId) -> Vec<u8> {
    [LABEL, b"\n", id.as_str().as_bytes()].concat()
}

/// A new secret: its bytes, and the `whsec_…` text shown to the administrator once.
pub fn generate() -> (Zeroizing<Vec<u8>>, String) {
    let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let text = format!("whsec_{}", STANDARD.encode(bytes.as_slice()));
    (bytes, text)
}

/// Seals `secret` for endpoint `id`.
pub fn seal(signing_key: &SigningKey, id: &WebhookId, secret: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let aad = associated_data(id);
    // Encrypting a short message in memory does not fail.
    let sealed =
        cipher(signing_key).encrypt(XNonce::from_slice(&nonce), Payload { msg: secret, aad: &aad }).unwrap_or_default();
    [nonce.as_slice(), &sealed].concat()
}

/// Opens what [`seal`] sealed for endpoint `id`.
pub fn open(signing_key: &SigningKey, id: &WebhookId, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, DoesNotOpen> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(DoesNotOpen);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let aad = associated_data(id);
    cipher(signing_key)
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
        .map(Zeroizing::new)
        .map_err(|_| DoesNotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_for_its_endpoint_only() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let (secret, text) = generate();
        assert!(text.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&text["whsec_".len()..]).unwrap(), secret.as_slice());
        let id = WebhookId::generate();
        let sealed = seal(&key, &id, &secret);
        assert_eq!(open(&key, &id, &sealed).unwrap().as_slice(), secret.as_slice());
        assert_eq!(open(&key, &WebhookId::generate(), &sealed), Err(DoesNotOpen));
        assert_eq!(open(&SigningKey::from_bytes(&[8; 32]), &id, &sealed), Err(DoesNotOpen));
    }
}
