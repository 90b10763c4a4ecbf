//! C2SP tlog-cosignature v1 (<https://c2sp.org/tlog-cosignature>): timestamped Ed25519
//! witness cosignatures over a checkpoint, as note signatures of type 0x04.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::checkpoint::Checkpoint;
use super::note::{
    self, NoteError, NoteSignature, NoteSigner, NoteVerifier, SIG_TYPE_COSIGNATURE_V1, ed25519_verify, key_id,
};

/// Why a cosignature could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// A key or note problem.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A timestamp above 2^63 - 1.
    #[error("cosignature timestamp {time} is above 2^63 - 1")]
    TimestampTooLarge { time: u64 },
    /// A signature that is not 8 bytes of timestamp and 64 bytes of Ed25519 signature.
    #[error("cosignature by `{name}` is {len} bytes long, expected 72")]
    BadLength { name: String, len: usize },
}

/// The largest timestamp a cosignature may carry.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The signed message: `cosignature/v1\ntime <time>\n` then the checkpoint note text
/// (tlog-cosignature "Ed25519 signed message").
pub fn signed_message(checkpoint_text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{checkpoint_text}")
}

/// The timestamp of a cosignature line, if it has the v1 length.
pub fn timestamp(sig: &NoteSignature) -> Result<u64, CosignatureError> {
    if sig.signature.len() != 72 {
        return Err(CosignatureError::BadLength { name: sig.name.clone(), len: sig.signature.len() });
    }
    let mut be = [0u8; 8];
    be.copy_from_slice(&sig.signature[..8]);
    Ok(u64::from_be_bytes(be))
}

/// A witness's Ed25519 cosigning key. Its secret is zeroized on drop and never printed.
pub struct Cosigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cosigner({}+{:08x})", self.name, self.key_id)
    }
}

impl Cosigner {
    /// A cosigner from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, CosignatureError> {
        if !note::is_valid_name(name) {
            return Err(NoteError::InvalidName { name: name.to_owned() }.into());
        }
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, SIG_TYPE_COSIGNATURE_V1, key.verifying_key().as_bytes());
        Ok(Cosigner { name: name.to_owned(), key_id, key })
    }

    /// A cosigner from `PRIVATE+KEY+name+hexid+base64(0x04 || seed)`.
    pub fn from_skey(skey: &str) -> Result<Self, CosignatureError> {
        let (name, key_id, key) = note::signing_key_from_skey(skey.trim_end(), SIG_TYPE_COSIGNATURE_V1)?;
        Ok(Cosigner { name, key_id, key })
    }

    /// The secret key string `PRIVATE+KEY+name+hexid+base64(0x04 || seed)`: keep it secret.
    pub fn to_skey(&self) -> String {
        let k = note::format_key_string(&self.name, self.key_id, SIG_TYPE_COSIGNATURE_V1, self.key.as_bytes());
        format!("PRIVATE+KEY+{k}")
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier { name: self.name.clone(), key_id: self.key_id, key: self.key.verifying_key() }
    }

    /// A note signer that cosigns at `time` (seconds since the epoch).
    pub fn at(&self, time: u64) -> Result<TimedCosigner<'_>, CosignatureError> {
        if time > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampTooLarge { time });
        }
        Ok(TimedCosigner { cosigner: self, time })
    }

    /// The cosignature line for `checkpoint` at `time`.
    pub fn cosign(&self, checkpoint: &Checkpoint, time: u64) -> Result<NoteSignature, CosignatureError> {
        let timed = self.at(time)?;
        Ok(NoteSignature { name: self.name.clone(), key_id: self.key_id, signature: timed.sign(&checkpoint.to_text()) })
    }
}

/// A cosigner fixed to one timestamp, usable wherever a [`NoteSigner`] is.
#[derive(Debug)]
pub struct TimedCosigner<'a> {
    cosigner: &'a Cosigner,
    time: u64,
}

impl NoteSigner for TimedCosigner<'_> {
    fn name(&self) -> &str {
        &self.cosigner.name
    }

    fn key_id(&self) -> u32 {
        self.cosigner.key_id
    }

    /// `timestamp (8 bytes, big-endian) || Ed25519(signed_message)`.
    fn sign(&self, text: &str) -> Vec<u8> {
        let sig = self.cosigner.key.sign(signed_message(text, self.time).as_bytes());
        let mut out = self.time.to_be_bytes().to_vec();
        out.extend_from_slice(&sig.to_bytes());
        out
    }
}

/// A witness's cosignature verifier key (signature type 0x04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// A verifier from a name and an Ed25519 public key.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, CosignatureError> {
        if !note::is_valid_name(name) {
            return Err(NoteError::InvalidName { name: name.to_owned() }.into());
        }
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            key_id: key_id(name, SIG_TYPE_COSIGNATURE_V1, key.as_bytes()),
            key,
        })
    }

    /// A verifier from the vkey `name+hexid+base64(0x04 || pubkey)`.
    pub fn from_vkey(vkey: &str) -> Result<Self, CosignatureError> {
        let (name, key_id, key) = note::verifying_key_from_vkey(vkey.trim_end(), SIG_TYPE_COSIGNATURE_V1)?;
        Ok(CosignatureVerifier { name, key_id, key })
    }

    /// The vkey `name+hexid+base64(0x04 || pubkey)`.
    pub fn to_vkey(&self) -> String {
        note::format_key_string(&self.name, self.key_id, SIG_TYPE_COSIGNATURE_V1, self.key.as_bytes())
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl NoteVerifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Checks the length, the timestamp bound and the Ed25519 signature over
    /// [`signed_message`].
    fn verify(&self, text: &str, signature: &[u8]) -> bool {
        if signature.len() != 72 {
            return false;
        }
        let (t, sig) = signature.split_at(8);
        let mut be = [0u8; 8];
        be.copy_from_slice(t);
        let time = u64::from_be_bytes(be);
        time <= MAX_TIMESTAMP && ed25519_verify(&self.key, signed_message(text, time).as_bytes(), sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparency::tlog::merkle::empty_root;
    use crate::transparency::tlog::note::{Note, Signer};

    #[test]
    fn a_cosigned_checkpoint_opens_with_log_and_witness_keys() {
        let log = Signer::from_seed("example.com/log", &[1; 32]).unwrap();
        let witness = Cosigner::from_seed("witness.example/w1", &[2; 32]).unwrap();
        let c = Checkpoint::new("example.com/log", 0, empty_root()).unwrap();
        let mut note = Note::parse(&c.sign(&[&log]).unwrap()).unwrap();
        let line = witness.cosign(&c, 1_679_315_147).unwrap();
        assert_eq!(timestamp(&line), Ok(1_679_315_147));
        note.add_signature(line).unwrap();
        let wv = witness.verifier();
        let (_, opened) = Checkpoint::open(&note.to_string(), &log.verifier(), &[&wv]).unwrap();
        assert_eq!(opened.verified.len(), 2);
        // A plain Ed25519 verifier with the same key and name has another key ID: ignored.
        let plain = crate::transparency::tlog::note::Verifier::new("witness.example/w1", *wv.public_key()).unwrap();
        let (_, opened) = Checkpoint::open(&note.to_string(), &log.verifier(), &[&plain]).unwrap();
        assert_eq!(opened.unverified.len(), 1);
    }

    #[test]
    fn the_timestamp_is_signed() {
        let w = Cosigner::from_seed("w", &[3; 32]).unwrap();
        let text = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let mut sig = w.at(10).unwrap().sign(text);
        assert!(w.verifier().verify(text, &sig));
        sig[7] = 11;
        assert!(!w.verifier().verify(text, &sig));
        assert_eq!(w.at(1 << 63).err(), Some(CosignatureError::TimestampTooLarge { time: 1 << 63 }));
    }

    #[test]
    fn keys_round_trip_with_type_0x04() {
        let w = Cosigner::from_seed("witness.example", &[4; 32]).unwrap();
        let again = Cosigner::from_skey(&w.to_skey()).unwrap();
        assert_eq!(again.verifier(), w.verifier());
        assert_eq!(CosignatureVerifier::from_vkey(&w.verifier().to_vkey()), Ok(w.verifier()));
        let as_note_key = crate::transparency::tlog::note::Verifier::from_vkey(&w.verifier().to_vkey());
        assert_eq!(as_note_key, Err(NoteError::WrongKeyType { expected: 0x01, actual: 0x04 }));
    }
}
