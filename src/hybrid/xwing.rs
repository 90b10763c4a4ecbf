//! The MLKEM768-X25519 hybrid KEM (X-Wing), as HPKE's `Kem` for rust-hpke 0.12, the HPKE the
//! `age` crate 0.12 builds on. The functions are those of filippo.io/hpke-pq (the reference for
//! draft-ietf-hpke-pq-03, draft-irtf-cfrg-hybrid-kems-07 and draft-connolly-cfrg-xwing-kem),
//! with ML-KEM-768 from `ml-kem` (FIPS 203), X25519 from `x25519-dalek` (RFC 7748) and SHAKE256
//! and SHA3-256 from `sha3` (FIPS 202):
//!
//! ```text
//! expandKey(seed):        seed_full = SHAKE256(seed, 64 + 32)
//!                         (ek_PQ, dk_PQ) = ML-KEM-768.KeyGen_internal(seed_full[0:32], seed_full[32:64])
//!                         dk_T = seed_full[64:96]; ek_T = X25519(dk_T, 9)
//! Encaps(ek_PQ || ek_T):  (ss_PQ, ct_PQ) = ML-KEM-768.Encaps(ek_PQ)
//!                         sk_E = random(32); ct_T = X25519(sk_E, 9); ss_T = X25519(sk_E, ek_T)
//!                         ss = SHA3-256(ss_PQ || ss_T || ct_T || ek_T || "\.//^\"); ct = ct_PQ || ct_T
//! Decaps(seed, ct):       ss_PQ = ML-KEM-768.Decaps(dk_PQ, ct_PQ); ss_T = X25519(dk_T, ct_T)
//!                         ss = SHA3-256(ss_PQ || ss_T || ct_T || ek_T || "\.//^\")
//! ```
//!
//! The private key is the 32-byte seed, expanded when used; the public key 1216 bytes, the
//! encapsulation 1120. A public key is checked as FIPS 203 section 7.2 requires of an ML-KEM
//! encapsulation key (every coefficient below q). RustCrypto's `x-wing` crate implements the same
//! KEM, but on a newer `kem` crate than the one `age` 0.12's `ml-kem` needs; Cargo can build only
//! one of them (see the README's Decisions). The file key's HPKE around this (key schedule,
//! SealBase, OpenBase) is rust-hpke's.

use hpke::generic_array::GenericArray;
use hpke::generic_array::typenum::{Sum, U32, U96, U192, U1024, Unsigned as _};
use hpke::kem::SharedSecret;
use hpke::{Deserializable, HpkeError, Serializable};
use ml_kem::kem::{Decapsulate as _, Encapsulate as _};
use ml_kem::{EncodedSizeUser as _, KemCore as _, MlKem768};
use sha3::digest::{ExtendableOutput as _, Update as _, XofReader as _};
use sha3::{Digest as _, Sha3_256, Shake256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The KEM's label in the combiner (`\./` over `/^\`, the X-Wing drawing).
const LABEL: &[u8] = b"\\.//^\\";
/// Bytes of an ML-KEM-768 encapsulation key.
const EK_PQ_LEN: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
const CT_PQ_LEN: usize = 1088;
/// ML-KEM's modulus q.
const Q: u16 = 3329;

type EncapsulationKeyPq = <MlKem768 as ml_kem::KemCore>::EncapsulationKey;
type DecapsulationKeyPq = <MlKem768 as ml_kem::KemCore>::DecapsulationKey;

/// The KEM, for rust-hpke (KEM id 0x647a).
#[derive(Debug)]
pub(super) struct XWing;

/// A private key: the 32-byte seed.
#[derive(Clone)]
pub(super) struct PrivateKey(Zeroizing<[u8; 32]>);

/// A public key: ML-KEM-768's encapsulation key, then X25519's public key.
#[derive(Clone, PartialEq)]
pub(super) struct PublicKey {
    ek_pq: EncapsulationKeyPq,
    ek_t: x25519_dalek::PublicKey,
}

/// An encapsulation: ML-KEM-768's ciphertext, then the X25519 share.
#[derive(Clone)]
pub(super) struct EncappedKey {
    ct_pq: ml_kem::Ciphertext<MlKem768>,
    ct_t: x25519_dalek::PublicKey,
}

impl PrivateKey {
    /// The seed, which is the key.
    pub(super) fn seed(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}

impl Eq for PrivateKey {}

impl Eq for PublicKey {}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("ek_t", &self.ek_t.as_bytes()).finish_non_exhaustive()
    }
}

/// The expanded private key and its public key (filippo.io/hpke-pq `expandKey`).
struct Expanded {
    dk_pq: DecapsulationKeyPq,
    dk_t: x25519_dalek::StaticSecret,
    public: PublicKey,
}

fn expand(seed: &[u8; 32]) -> Expanded {
    let mut xof = Shake256::default().chain(seed).finalize_xof();
    let mut d = Zeroizing::new([0u8; 32]);
    let mut z = Zeroizing::new([0u8; 32]);
    let mut dk_t = Zeroizing::new([0u8; 32]);
    xof.read(d.as_mut());
    xof.read(z.as_mut());
    xof.read(dk_t.as_mut());
    let (dk_pq, ek_pq) = MlKem768::generate_deterministic(&(*d).into(), &(*z).into());
    let dk_t = x25519_dalek::StaticSecret::from(*dk_t);
    let ek_t = x25519_dalek::PublicKey::from(&dk_t);
    Expanded { dk_pq, dk_t, public: PublicKey { ek_pq, ek_t } }
}

/// SHA3-256(ss_PQ || ss_T || ct_T || ek_T || label).
fn combine(ss_pq: &[u8], ss_t: &[u8], ct_t: &[u8], ek_t: &[u8]) -> GenericArray<u8, U32> {
    let digest = Sha3_256::new().chain(ss_pq).chain(ss_t).chain(ct_t).chain(ek_t).chain(LABEL).finalize();
    GenericArray::clone_from_slice(digest.as_slice())
}

/// FIPS 203 section 7.2, the modulus check: the 1152 bytes before `rho` are 768 coefficients
/// of 12 bits, each of which must be below q.
fn coefficients_reduced(ek_pq: &[u8]) -> bool {
    ek_pq[..EK_PQ_LEN - 32].chunks_exact(3).all(|b| {
        let low = u16::from(b[0]) | (u16::from(b[1] & 0x0f) << 8);
        let high = u16::from(b[1] >> 4) | (u16::from(b[2]) << 4);
        low < Q && high < Q
    })
}

impl Serializable for PrivateKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&*self.0);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let seed: [u8; 32] =
            encoded.try_into().map_err(|_| HpkeError::IncorrectInputLength(U32::to_usize(), encoded.len()))?;
        Ok(Self(Zeroizing::new(seed)))
    }
}

impl Serializable for PublicKey {
    type OutputSize = Sum<U1024, U192>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf[..EK_PQ_LEN].copy_from_slice(&self.ek_pq.as_bytes());
        buf[EK_PQ_LEN..].copy_from_slice(self.ek_t.as_bytes());
    }
}

impl Deserializable for PublicKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let want = Self::OutputSize::to_usize();
        if encoded.len() != want {
            return Err(HpkeError::IncorrectInputLength(want, encoded.len()));
        }
        let (pq, t) = encoded.split_at(EK_PQ_LEN);
        if !coefficients_reduced(pq) {
            return Err(HpkeError::ValidationError);
        }
        let pq: [u8; EK_PQ_LEN] = pq.try_into().map_err(|_| HpkeError::ValidationError)?;
        let ek_pq = EncapsulationKeyPq::from_bytes(&pq.into());
        let ek_t: [u8; 32] = t.try_into().map_err(|_| HpkeError::ValidationError)?;
        Ok(Self { ek_pq, ek_t: ek_t.into() })
    }
}

impl Serializable for EncappedKey {
    type OutputSize = Sum<U1024, U96>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf[..CT_PQ_LEN].copy_from_slice(&self.ct_pq);
        buf[CT_PQ_LEN..].copy_from_slice(self.ct_t.as_bytes());
    }
}

impl Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let want = Self::OutputSize::to_usize();
        if encoded.len() != want {
            return Err(HpkeError::IncorrectInputLength(want, encoded.len()));
        }
        let (pq, t) = encoded.split_at(CT_PQ_LEN);
        let ct_pq: [u8; CT_PQ_LEN] = pq.try_into().map_err(|_| HpkeError::ValidationError)?;
        let ct_pq = ct_pq.into();
        let ct_t: [u8; 32] = t.try_into().map_err(|_| HpkeError::ValidationError)?;
        Ok(Self { ct_pq, ct_t: ct_t.into() })
    }
}

impl hpke::Kem for XWing {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;
    const KEM_ID: u16 = 0x647a;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        expand(&sk.0).public
    }

    /// `SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32)` (draft-ietf-hpke-pq-03), then the
    /// seed's key pair. age never derives keys from HPKE input keying material; this completes
    /// the trait.
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let label = b"DeriveKeyPair";
        let mut seed = Zeroizing::new([0u8; 32]);
        Shake256::default()
            .chain(ikm)
            .chain(b"HPKE-v1")
            .chain(b"KEM")
            .chain(Self::KEM_ID.to_be_bytes())
            .chain(u16::try_from(label.len()).unwrap_or(u16::MAX).to_be_bytes())
            .chain(label)
            .chain(32u16.to_be_bytes())
            .finalize_xof_into(seed.as_mut());
        let public = expand(&seed).public;
        (PrivateKey(seed), public)
    }

    fn decap(
        sk_recip: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        encapped_key: &EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            // X-Wing has no authenticated mode; age never asks for one.
            return Err(HpkeError::DecapError);
        }
        let key = expand(&sk_recip.0);
        let ss_pq = key.dk_pq.decapsulate(&encapped_key.ct_pq).map_err(|()| HpkeError::DecapError)?;
        let ss_t = key.dk_t.diffie_hellman(&encapped_key.ct_t);
        let ct_t = encapped_key.ct_t.as_bytes();
        Ok(SharedSecret(combine(&ss_pq, ss_t.as_bytes(), ct_t, key.public.ek_t.as_bytes())))
    }

    fn encap<R: hpke::rand_core::CryptoRng + hpke::rand_core::RngCore>(
        pk_recip: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut R,
    ) -> Result<(SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let (ct_pq, ss_pq) = pk_recip.ek_pq.encapsulate(csprng).map_err(|()| HpkeError::EncapError)?;
        let mut sk_e = Zeroizing::new([0u8; 32]);
        csprng.fill_bytes(sk_e.as_mut());
        let sk_e = x25519_dalek::StaticSecret::from(*sk_e);
        let ct_t = x25519_dalek::PublicKey::from(&sk_e);
        let ss_t = sk_e.diffie_hellman(&pk_recip.ek_t);
        let ss = combine(&ss_pq, ss_t.as_bytes(), ct_t.as_bytes(), pk_recip.ek_t.as_bytes());
        Ok((SharedSecret(ss), EncappedKey { ct_pq, ct_t }))
    }
}

#[cfg(test)]
mod tests {
    use hpke::Kem as _;

    use super::*;

    #[test]
    fn encapsulation_and_decapsulation_agree() {
        let sk = PrivateKey(Zeroizing::new([5; 32]));
        let pk = XWing::sk_to_pk(&sk);
        let (ss, enc) = XWing::encap(&pk, None, &mut rand::rngs::OsRng).unwrap_or_else(|e| panic!("{e}"));
        let again = EncappedKey::from_bytes(&enc.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let ss2 = XWing::decap(&sk, None, &again).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ss.0, ss2.0);
        let other = XWing::decap(&PrivateKey(Zeroizing::new([6; 32])), None, &again).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(ss.0, other.0, "ML-KEM's implicit rejection gives another secret");
        assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).ok(), Some(pk));
    }

    #[test]
    fn derived_key_pairs_are_deterministic() {
        let (sk1, pk1) = XWing::derive_keypair(b"input keying material");
        let (sk2, pk2) = XWing::derive_keypair(b"input keying material");
        assert!(sk1 == sk2 && pk1 == pk2);
        assert!(XWing::derive_keypair(b"other").1 != pk1);
    }
}
