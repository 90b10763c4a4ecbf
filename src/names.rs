//! Names in the transparency log, kept erasable.
//!
//! The log is append-only, so it must never hold a person's name: a name in a leaf could never be
//! erased. Yet key transparency needs a key entry to say whose key it is, and a signed delivery
//! to say who signed. Both carry a keyed commitment instead:
//!
//! ```text
//! commitment = hex(HMAC-SHA256(key = name_salt, message = "ORG/NAME"))
//! ```
//!
//! Each user has a random 32-byte `name_salt`, kept in the database and given to anyone who may
//! look the user up, so a client can check that an entry names the user it expects. Erasing a
//! user clears the salt: the commitments stay in the log, and then point at nobody (a name has
//! too little entropy to be found again without the salt).

use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;

use crate::model::UserRef;

/// The length of a name salt in bytes.
pub const SALT_LEN: usize = 32;

/// A new random name salt, as lowercase hex.
pub fn new_salt() -> String {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    hex::encode(salt)
}

/// Why a salt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a name salt is {SALT_LEN} bytes as 64 lowercase hex digits")]
pub struct BadSalt;

/// The commitment to `user` under `salt_hex` (64 lowercase hex digits).
pub fn commitment(salt_hex: &str, user: &UserRef) -> Result<String, BadSalt> {
    if salt_hex.len() != 2 * SALT_LEN || !salt_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(BadSalt);
    }
    let salt = hex::decode(salt_hex).map_err(|_| BadSalt)?;
    let mut mac = <Hmac<Sha256>>::new_from_slice(&salt).map_err(|_| BadSalt)?;
    mac.update(user.to_string().as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_commitment_is_hmac_sha256_of_the_name_under_the_salt() {
        // Computed independently: `printf 'hmpps/alice' | openssl dgst -sha256 -mac HMAC
        // -macopt hexkey:000102…1f`.
        let salt: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
        let user: UserRef = "hmpps/alice".parse().unwrap();
        assert_eq!(
            commitment(&salt, &user).unwrap(),
            "2f59305fc8a03391e7d22d8c718022fb0381d33465d12adec4c02c8394873f03"
        );
        let other: UserRef = "hmpps/alicf".parse().unwrap();
        assert_ne!(commitment(&salt, &user).unwrap(), commitment(&salt, &other).unwrap());
        assert_ne!(commitment(&salt, &user).unwrap(), commitment(&new_salt(), &user).unwrap());
    }

    #[test]
    fn only_a_canonical_salt_is_accepted() {
        let user: UserRef = "hmpps/alice".parse().unwrap();
        assert_eq!(commitment("00", &user), Err(BadSalt));
        assert_eq!(commitment(&"AB".repeat(32), &user), Err(BadSalt));
        assert_eq!(commitment(&"zz".repeat(32), &user), Err(BadSalt));
        assert!(commitment(&new_salt(), &user).is_ok());
    }
}
