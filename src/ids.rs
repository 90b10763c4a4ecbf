//! Server-made identifiers and bearer secrets.
//!
//! Ids are 128 random bits in lowercase hex: they name rows and blobs, and nothing from a request
//! is ever used as a path. Secrets (API tokens, link tokens) are 256 random bits in unpadded
//! base64url; the store keeps only their SHA-256, and they never implement `Debug` or `Display`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

/// Returns `n` bytes from the operating system's random source.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(hex::encode(random_bytes::<16>()))
            }

            /// Parses an id given by a client: exactly 32 lowercase hex digits.
            pub fn parse(s: &str) -> Option<Self> {
                let ok = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                ok.then(|| Self(s.to_owned()))
            }

            /// Wraps an id read back from the store.
            #[allow(dead_code, reason = "not every id type is read back from the store")]
            pub(crate) fn from_db(s: String) -> Self {
                Self(s)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An organisation.
    OrgId
);
id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// An API token's public handle (listing and revocation), not the secret.
    TokenId
);
id_type!(
    /// A registered recipient key.
    KeyId
);
id_type!(
    /// A transfer (one uploaded bundle and its links).
    TransferId
);
id_type!(
    /// One recipient's link to a transfer.
    LinkId
);
id_type!(
    /// A browser session's public handle (audit entries), not the cookie's secret.
    SessionId
);
id_type!(
    /// A person at an identity provider bound to a user (their issuer and subject).
    IdentityId
);
id_type!(
    /// An organisation's webhook endpoint.
    WebhookId
);
id_type!(
    /// One message in the notification outbox (an email, or a webhook delivery's `webhook-id`).
    NotificationId
);

/// SHA-256 of a bearer secret: what the store keeps instead of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(pub(crate) [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// A bearer secret: 256 random bits, base64url. Used for API tokens and link tokens.
pub struct BearerSecret(SecretString);

impl fmt::Debug for BearerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerSecret(..)")
    }
}

impl BearerSecret {
    /// A fresh secret with the given prefix (`sp_` for API tokens, none for link tokens).
    pub fn generate(prefix: &str) -> Self {
        let body = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        Self(SecretString::from(format!("{prefix}{body}")))
    }

    /// Wraps a secret presented by a client. Anything shaped wrongly simply matches no hash.
    pub fn from_client(s: &str) -> Self {
        Self(SecretString::from(s.trim().to_owned()))
    }

    /// The hash under which the store keeps this secret.
    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }

    /// The secret itself, for the one place it is shown (a response, a 0600 file).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_round_trip() {
        let id = TransferId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(TransferId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn ids_from_clients_cannot_carry_paths() {
        assert_eq!(TransferId::parse("../../etc/passwd"), None);
        assert_eq!(TransferId::parse(&"A".repeat(32)), None);
        assert_eq!(TransferId::parse(""), None);
    }

    #[test]
    fn secrets_hash_stably_and_hide_in_debug() {
        let s = BearerSecret::generate("sp_");
        assert!(s.expose().starts_with("sp_"));
        assert_eq!(s.expose().len(), 3 + 43);
        assert_eq!(BearerSecret::from_client(s.expose()).hash(), s.hash());
        assert_eq!(format!("{s:?}"), "BearerSecret(..)");
    }
}
