//! The log's signing keys. The base key comes from the gateway's signing key. A rotation adds a
//! random key, which becomes the current one; until the old one is retired every checkpoint is
//! signed by both, so verifiers can move from one to the other. Added keys live in the database
//! (`log_keys`), so whichever gateway is the sequencer signs with them: each is sealed with
//! ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the gateway's signing key, which every
//! gateway of a deployment shares, with the key id as associated data. A copy of the database
//! alone does not give a log key away.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

use super::{Log, LogError};
use crate::store::{LogKeyRow, Store};
use crate::transparency::tlog::note::{NoteSigner as _, Signer, Verifier};

/// What the sealing key is derived for, so it is never the same as any other key from the seed.
const SEAL_INFO: &[u8] = b"sealpost/log-key-seal/v1";

fn cipher(base_seed: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit of 8160, so expand cannot fail.
    let _ = hkdf::Hkdf::<sha2::Sha256>::new(None, base_seed).expand(SEAL_INFO, key.as_mut());
    ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_slice()))
}

/// Seals the secret key string `skey` of key `id`: a random 12-byte nonce, then the ciphertext.
pub(super) fn seal(base_seed: &[u8; 32], id: &str, skey: &str) -> Result<Vec<u8>, LogError> {
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let sealed = cipher(base_seed)
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: skey.as_bytes(), aad: id.as_bytes() })
        .map_err(|_| LogError::Corrupt(format!("could not seal log key `{id}`")))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

/// Opens what [`seal`] made.
fn unseal(base_seed: &[u8; 32], id: &str, sealed: &[u8]) -> Result<Signer, LogError> {
    let refused = || {
        LogError::Corrupt(format!(
            "log key `{id}` cannot be opened with this gateway's signing key: every gateway sharing a database \
             needs the same signing key"
        ))
    };
    let (nonce, ciphertext) = sealed.split_at_checked(12).ok_or_else(refused)?;
    let skey = zeroize::Zeroizing::new(
        cipher(base_seed)
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: id.as_bytes() })
            .map_err(|_| refused())?,
    );
    let skey = std::str::from_utf8(&skey).map_err(|_| refused())?;
    Signer::from_skey(skey).map_err(|e| LogError::Corrupt(format!("log key `{id}`: {e}")))
}

/// The hex id of a signer's key.
pub(super) fn key_id(signer: &Signer) -> String {
    format!("{:08x}", signer.key_id())
}

/// The active signers, oldest first: those stored as active, or the base key alone.
pub(super) async fn load_signers(store: &Store, origin: &str, base_seed: &[u8; 32]) -> Result<Vec<Signer>, LogError> {
    let base =
        Signer::from_seed(origin, base_seed).map_err(|e| LogError::Corrupt(format!("log origin `{origin}`: {e}")))?;
    let rows = store.log_keys().await?;
    if rows.is_empty() {
        return Ok(vec![base]);
    }
    let base_id = key_id(&base);
    let mut base = Some(base);
    let mut signers = Vec::with_capacity(rows.len());
    for row in rows {
        match &row.sealed {
            Some(sealed) => signers.push(unseal(base_seed, &row.id, sealed)?),
            None if row.id == base_id => signers.extend(base.take()),
            None => return Err(LogError::OtherSigningKey),
        }
    }
    if signers.is_empty() {
        return Err(LogError::Corrupt("no active log key".to_owned()));
    }
    Ok(signers)
}

impl Log {
    pub(super) fn signers(&self) -> std::sync::Arc<Vec<Signer>> {
        self.signers.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Reads the active keys again (another gateway may have rotated them).
    pub(super) async fn reload_signers(&self) -> Result<(), LogError> {
        let signers = load_signers(&self.store, &self.origin, &self.base_seed).await?;
        *self.signers.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(signers);
        Ok(())
    }

    /// Starts a key rotation: makes a new note key, which becomes the current one; until
    /// [`Log::retire_key`] retires the old one, every checkpoint is signed by both, so
    /// verifiers can move from one to the other. Returns the new key.
    pub async fn rotate_key(&self) -> Result<Verifier, LogError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        let signer = Signer::from_seed(&self.origin, &seed).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let id = key_id(&signer);
        let sealed = seal(&self.base_seed, &id, &zeroize::Zeroizing::new(signer.to_skey()))?;
        let mut rows = self.active_rows();
        rows.push(LogKeyRow { id, sealed: Some(sealed) });
        self.set_active(&rows).await
    }

    /// Ends a key rotation: stops signing with the key `key_id` (hex), which must not be the
    /// only one. Returns the current key.
    pub async fn retire_key(&self, key_id: &str) -> Result<Verifier, LogError> {
        let rows = self.active_rows();
        if !rows.iter().any(|r| r.id == key_id) {
            return Err(LogError::UnknownKey(key_id.to_owned()));
        }
        if rows.len() == 1 {
            return Err(LogError::LastKey(key_id.to_owned()));
        }
        let rest: Vec<LogKeyRow> = rows.into_iter().filter(|r| r.id != key_id).collect();
        self.set_active(&rest).await
    }

    /// The active keys as rows to store. Keys stored already keep their sealed secret (only
    /// their place changes), so only the base key's row, which has none, matters here.
    fn active_rows(&self) -> Vec<LogKeyRow> {
        self.signers().iter().map(|s| LogKeyRow { id: key_id(s), sealed: None }).collect()
    }

    async fn set_active(&self, rows: &[LogKeyRow]) -> Result<Verifier, LogError> {
        self.store.set_log_keys(rows).await?;
        self.reload_signers().await?;
        self.signers().last().map(Signer::verifier).ok_or_else(|| LogError::LastKey(String::new()))
    }

    /// Every active verifier key, oldest first (two during a rotation).
    pub fn verifiers(&self) -> Vec<Verifier> {
        self.signers().iter().map(Signer::verifier).collect()
    }

    /// The verifier key string (`origin+hexid+base64`).
    pub fn verifier(&self) -> Verifier {
        self.signers().last().map(Signer::verifier).unwrap_or_else(|| self.verifiers().remove(0))
    }
}
