//! age's hybrid post-quantum recipient type, `mlkem768x25519` (c2sp.org/age, "The
//! MLKEM768-X25519 (i.e. X-Wing) hybrid post-quantum recipient type"), which the `age` crate 0.12
//! does not have yet. Our [`Recipient`] and [`Identity`] implement the crate's traits, so the
//! header, its MAC and the payload's STREAM stay the crate's; only the stanza is ours.
//!
//! From the spec:
//! * an identity is 32 random bytes (the KEM's private key seed), written as Bech32 with the HRP
//!   `AGE-SECRET-KEY-PQ-`, in upper case;
//! * its recipient is `PrivateKeyToPublicKey(identity)` of filippo.io/hpke-pq: the 1216-byte
//!   X-Wing encapsulation key (ML-KEM-768's 1184 bytes, then X25519's 32), written as Bech32 with
//!   the HRP `age1pq`, in lower case. Both strings are Bech32 without BIP 173's 90-character limit;
//! * the stanza is `-> mlkem768x25519 ENC` and a body, from HPKE `SealBase` (RFC 9180, section
//!   6.1) with the KEM MLKEM768-X25519 (0x647a, draft-ietf-hpke-pq-03), HKDF-SHA256 and
//!   ChaCha20Poly1305, `pkR` the recipient, `info` = `age-encryption.org/mlkem768x25519`, an empty
//!   `aad`, and the file key as plaintext: ENC is the 1120-byte encapsulated key (canonical
//!   unpadded base64), the body the 32-byte ciphertext.
//!
//! What is age's is here: the key strings, the stanza's grammar, the `info` string, the body
//! length checked before any decryption (partitioning oracles), and the refusal of an X25519
//! share of small order, which makes the X25519 secret all zero (the KEM itself accepts it; age
//! refuses it, as for X25519 stanzas: the C2SP/CCTV vectors `hybrid_low_order` and
//! `hybrid_identity`). HPKE itself (the key schedule, `SealBase`, `OpenBase`) is rust-hpke's, as
//! age-core calls it for age's own HPKE types; the KEM is [`xwing`], built on `ml-kem`,
//! `x25519-dalek` and `sha3`.
//!
//! Files to these recipients carry the age label `postquantum`, as in the reference
//! implementations: the `age` crate then refuses to mix them with recipients that lack it, since
//! a file is only as strong as its weakest stanza. [`Recipient::alongside_classical`] drops the
//! label for a caller that decided, and said, otherwise.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use age::secrecy::{ExposeSecret as _, SecretString};
use age_core::format::{FILE_KEY_BYTES, FileKey, Stanza};
use age_core::primitives::{hpke_open, hpke_seal};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use bech32::Hrp;
use bech32::primitives::decode::CheckedHrpstring;
use hpke::{Deserializable as _, Kem as _, Serializable as _};
use zeroize::Zeroizing;

mod xwing;

use xwing::XWing;

/// The stanza type (its first argument).
pub const STANZA_TYPE: &str = "mlkem768x25519";
/// The HRP of a recipient string.
pub const RECIPIENT_HRP: &str = "age1pq";
/// The HRP of an identity string.
pub const IDENTITY_HRP: &str = "AGE-SECRET-KEY-PQ-";
/// What a recipient string starts with (HRP and Bech32's separator).
pub const RECIPIENT_PREFIX: &str = "age1pq1";
/// What an identity string starts with.
pub const IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-PQ-1";
/// The label age gives files encrypted to post-quantum recipients.
pub const LABEL: &str = "postquantum";

/// HPKE's `info` for this stanza type.
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// Bytes of the recipient: the X-Wing encapsulation key (`Npk`).
const RECIPIENT_LEN: usize = 1216;
/// Bytes of the identity: the X-Wing private key seed (`Nsk`).
const IDENTITY_LEN: usize = 32;
/// Bytes of the encapsulated key (`Nenc`): ML-KEM-768's ciphertext, then the X25519 share.
const ENC_LEN: usize = 1120;
/// Where the X25519 share starts in the encapsulated key.
const ENC_X25519_AT: usize = 1088;
/// Bytes of the stanza body: the 16-byte file key and ChaCha20Poly1305's 16-byte tag.
const BODY_LEN: usize = FILE_KEY_BYTES + 16;

/// Bech32 (BIP 173) without its 90-character limit on the whole string, as age uses it for
/// these long keys: the same checksum, only the length check is lifted.
#[derive(Debug)]
pub enum Bech32Long {}

impl bech32::Checksum for Bech32Long {
    type MidstateRepr = u32;
    const CODE_LENGTH: usize = usize::MAX;
    const CHECKSUM_LENGTH: usize = bech32::Bech32::CHECKSUM_LENGTH;
    const GENERATOR_SH: [u32; 5] = bech32::Bech32::GENERATOR_SH;
    const TARGET_RESIDUE: u32 = bech32::Bech32::TARGET_RESIDUE;
}

/// Why a key string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStringError {
    /// Not Bech32: a bad character, mixed case, a missing separator or a wrong checksum.
    #[error("it is not valid Bech32 (a character is wrong or missing)")]
    Bech32,
    /// Bech32, but not in the one spelling age writes (its padding bits are not zero).
    #[error("it is not in the canonical Bech32 encoding")]
    NotCanonical,
    /// Another kind of key.
    #[error("expected a key starting with `{expected}`")]
    WrongKind {
        /// The prefix expected.
        expected: &'static str,
    },
    /// The right kind, but the wrong number of bytes.
    #[error("a hybrid key of this kind holds {expected} bytes, this one {found}")]
    Length {
        /// The length the spec fixes.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The right length, but the ML-KEM-768 encapsulation key in it is not valid (FIPS 203's
    /// input check: a coefficient is not reduced modulo q).
    #[error("its ML-KEM-768 encapsulation key is not valid")]
    InvalidKey,
}

/// Decodes a key string of `hrp` (either case, not mixed) to bytes, requiring the canonical
/// encoding: the bytes must encode back to the same string, so there is one spelling per key.
/// Also reads the tagged types' keys (`crate::tagged`), which age writes the same way.
pub(crate) fn decode(s: &str, hrp: &str, prefix: &'static str) -> Result<Vec<u8>, KeyStringError> {
    let checked = CheckedHrpstring::new::<Bech32Long>(s).map_err(|_| KeyStringError::Bech32)?;
    let expected = Hrp::parse_unchecked(hrp);
    if checked.hrp() != expected {
        return Err(KeyStringError::WrongKind { expected: prefix });
    }
    let bytes: Vec<u8> = checked.byte_iter().collect();
    // For an identity this string is the secret again: wiped like the bytes when dropped.
    let again =
        Zeroizing::new(bech32::encode_lower::<Bech32Long>(expected, &bytes).map_err(|_| KeyStringError::Bech32)?);
    if !again.eq_ignore_ascii_case(s) {
        return Err(KeyStringError::NotCanonical);
    }
    Ok(bytes)
}

/// A hybrid post-quantum recipient (`age1pq1…`): files encrypted to it open with the matching
/// [`Identity`] only, and resist an adversary with a quantum computer.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient {
    key: <XWing as hpke::Kem>::PublicKey,
}

impl Recipient {
    /// The 1216-byte encapsulation key.
    fn bytes(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }

    /// This recipient without age's `postquantum` label, so that the `age` crate lets it share a
    /// file with classical recipients. Such a file is only as strong as its classical stanzas:
    /// use this only where that has been decided, and said, elsewhere.
    pub fn alongside_classical(self) -> AlongsideClassical {
        AlongsideClassical(self)
    }

    /// The stanza wrapping `file_key` to this recipient: HPKE `SealBase` (HKDF-SHA256,
    /// ChaCha20Poly1305, empty `aad`), whose encapsulated key is the argument.
    fn stanza(&self, file_key: &FileKey) -> Stanza {
        let (enc, body) = hpke_seal::<XWing, _>(&self.key, INFO, file_key.expose_secret(), &mut rand::rngs::OsRng);
        Stanza { tag: STANZA_TYPE.to_owned(), args: vec![BASE64_STANDARD_NO_PAD.encode(enc.to_bytes())], body }
    }
}

impl FromStr for Recipient {
    type Err = KeyStringError;

    /// Parses `age1pq1…` (lower or upper case): canonical Bech32 of a valid encapsulation key.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode(s, RECIPIENT_HRP, RECIPIENT_PREFIX)?;
        if bytes.len() != RECIPIENT_LEN {
            return Err(KeyStringError::Length { expected: RECIPIENT_LEN, found: bytes.len() });
        }
        let key = <XWing as hpke::Kem>::PublicKey::from_bytes(&bytes).map_err(|_| KeyStringError::InvalidKey)?;
        Ok(Self { key })
    }
}

impl fmt::Display for Recipient {
    /// The canonical spelling: lower case, as `age-keygen -pq` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(RECIPIENT_HRP);
        bech32::encode_lower_to_fmt::<Bech32Long, _>(f, hrp, &self.bytes()).map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.to_string();
        write!(f, "Recipient({}…{})", &s[..16], &s[s.len() - 8..])
    }
}

impl age::Recipient for Recipient {
    fn wrap_file_key(&self, file_key: &FileKey) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        Ok((vec![self.stanza(file_key)], HashSet::from([LABEL.to_owned()])))
    }
}

/// A [`Recipient`] that does not carry age's `postquantum` label
/// ([`Recipient::alongside_classical`]).
#[derive(Debug, Clone)]
pub struct AlongsideClassical(Recipient);

impl age::Recipient for AlongsideClassical {
    fn wrap_file_key(&self, file_key: &FileKey) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        Ok((vec![self.0.stanza(file_key)], HashSet::new()))
    }
}

/// A hybrid post-quantum identity (`AGE-SECRET-KEY-PQ-1…`): the private key. Never printed by
/// `Debug`; its string form is a [`SecretString`].
#[derive(Clone)]
pub struct Identity {
    key: <XWing as hpke::Kem>::PrivateKey,
}

impl Identity {
    /// A new identity from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; IDENTITY_LEN]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The identity of a 32-byte seed.
    fn from_seed(seed: &[u8; IDENTITY_LEN]) -> Self {
        // Infallible: any 32 bytes are an X-Wing private key.
        match <XWing as hpke::Kem>::PrivateKey::from_bytes(seed) {
            Ok(key) => Self { key },
            Err(_) => unreachable!("an X-Wing private key is any 32 bytes"),
        }
    }

    /// Its recipient.
    pub fn to_public(&self) -> Recipient {
        Recipient { key: XWing::sk_to_pk(&self.key) }
    }

    /// The identity string, `AGE-SECRET-KEY-PQ-1…` in upper case, as age writes it.
    pub fn to_string(&self) -> SecretString {
        let hrp = Hrp::parse_unchecked(IDENTITY_HRP);
        match bech32::encode_upper::<Bech32Long>(hrp, self.key.seed()) {
            Ok(s) => SecretString::from(s),
            Err(_) => unreachable!("Bech32Long has no length limit"),
        }
    }

    /// Unwraps a stanza of our type: `None` when it is for another key, an error when it is
    /// malformed or its X25519 share has small order.
    fn unwrap(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        let invalid = Some(Err(age::DecryptError::InvalidHeader));
        let [arg] = stanza.args.as_slice() else { return invalid };
        let Some(enc) = BASE64_STANDARD_NO_PAD.decode(arg).ok().filter(|e| e.len() == ENC_LEN) else {
            return invalid;
        };
        if stanza.body.len() != BODY_LEN {
            return invalid;
        }
        let share: [u8; 32] = enc[ENC_X25519_AT..].try_into().ok()?;
        if crate::envelope::is_small_order(rand::random(), share) {
            return invalid;
        }
        let Ok(enc) = <XWing as hpke::Kem>::EncappedKey::from_bytes(&enc) else { return invalid };
        let opened = hpke_open::<XWing>(&enc, &self.key, INFO, &stanza.body);
        // A stanza that does not open was made for another key: not ours, as with X25519.
        let plaintext = Zeroizing::new(opened.ok()?);
        let file_key: &[u8; FILE_KEY_BYTES] = plaintext.as_slice().try_into().ok()?;
        Some(Ok(FileKey::init_with_mut(|k| k.copy_from_slice(file_key))))
    }
}

impl FromStr for Identity {
    type Err = KeyStringError;

    /// Parses `AGE-SECRET-KEY-PQ-1…` (upper or lower case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = Zeroizing::new(decode(s, IDENTITY_HRP, IDENTITY_PREFIX)?);
        let seed: &[u8; IDENTITY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyStringError::Length { expected: IDENTITY_LEN, found: bytes.len() })?;
        Ok(Self::from_seed(seed))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("recipient", &self.to_public()).finish_non_exhaustive()
    }
}

impl age::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        (stanza.tag == STANZA_TYPE).then(|| self.unwrap(stanza)).flatten()
    }
}

/// Whether a recipient string names the hybrid post-quantum type (by its prefix, any case).
pub fn is_recipient_string(s: &str) -> bool {
    s.get(..RECIPIENT_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(RECIPIENT_PREFIX))
}

/// Whether an identity file line is a hybrid post-quantum identity (by its prefix, any case).
pub fn is_identity_string(s: &str) -> bool {
    s.get(..IDENTITY_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(IDENTITY_PREFIX))
}

#[cfg(test)]
mod tests;
