//! The log's signing keys: the base key comes from the gateway's seed; a rotation adds a key
//! (saved 0600 under `keys/`) and lists the active ones, oldest first, in `active`; the current
//! verifier key is published in `key`. While two keys are active, every checkpoint is signed by
//! both.

use std::path::Path;

use super::durable::{write_atomic, write_private};
use super::{Log, LogError, io};
use crate::transparency::tlog::note::{NoteSigner as _, Signer, Verifier};

impl Log {
    pub(super) fn signers(&self) -> std::sync::Arc<Vec<Signer>> {
        self.signers.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Starts a key rotation: makes a new note key (saved 0600 under `keys/`), which becomes
    /// the current one; until [`Log::retire_key`] retires the old one, every checkpoint is
    /// signed by both, so verifiers can move from one to the other. Returns the new key.
    pub fn rotate_key(&self) -> Result<Verifier, LogError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        let signer = Signer::from_seed(&self.origin, &seed).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let id = format!("{:08x}", signer.key_id());
        let skey = zeroize::Zeroizing::new(signer.to_skey());
        write_private(&self.dir.join("keys").join(format!("{id}.skey")), skey.as_bytes())?;
        let mut ids: Vec<String> = self.signers().iter().map(|s| format!("{:08x}", s.key_id())).collect();
        ids.push(id);
        self.set_active(&ids)
    }

    /// Ends a key rotation: stops signing with the key `key_id` (hex), which must not be the
    /// only one. Returns the current key.
    pub fn retire_key(&self, key_id: &str) -> Result<Verifier, LogError> {
        let ids: Vec<String> = self.signers().iter().map(|s| format!("{:08x}", s.key_id())).collect();
        if !ids.iter().any(|i| i == key_id) {
            return Err(LogError::UnknownKey(key_id.to_owned()));
        }
        if ids.len() == 1 {
            return Err(LogError::LastKey(key_id.to_owned()));
        }
        let rest: Vec<String> = ids.into_iter().filter(|i| i != key_id).collect();
        self.set_active(&rest)
    }

    fn set_active(&self, ids: &[String]) -> Result<Verifier, LogError> {
        write_atomic(&self.dir.join("active"), format!("{}\n", ids.join("\n")).as_bytes())?;
        let signers = load_signers(&self.dir, &self.origin, &self.base_seed)?;
        let current = signers.last().map(Signer::verifier).ok_or_else(|| LogError::LastKey(String::new()))?;
        write_atomic(&self.dir.join("key"), format!("{}\n", current.to_vkey()).as_bytes())?;
        *self.signers.write().unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(signers);
        Ok(current)
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

/// The active signers: the ids listed in `active` (oldest first), or only the base key (from
/// the gateway's signing key) when there has been no rotation.
pub(super) fn load_signers(dir: &Path, origin: &str, base_seed: &[u8; 32]) -> Result<Vec<Signer>, LogError> {
    let base =
        Signer::from_seed(origin, base_seed).map_err(|e| LogError::Corrupt(format!("log origin `{origin}`: {e}")))?;
    let active = match std::fs::read_to_string(dir.join("active")) {
        Ok(text) => text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![base]),
        Err(e) => return Err(LogError::Io { path: dir.join("active"), source: e }),
    };
    let base_id = format!("{:08x}", base.key_id());
    let mut base = Some(base);
    let mut signers = Vec::new();
    for id in active {
        if id == base_id {
            signers.extend(base.take());
            continue;
        }
        let path = dir.join("keys").join(format!("{id}.skey"));
        let skey = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(io(&path))?);
        signers
            .push(Signer::from_skey(skey.trim()).map_err(|e| LogError::Corrupt(format!("`{}`: {e}", path.display())))?);
    }
    if signers.is_empty() {
        return Err(LogError::Corrupt("no active log key".to_owned()));
    }
    Ok(signers)
}
