//! Recipient keys for the key directory: parsing, canonical form, stanza type and fingerprint.
//!
//! A key is accepted only if the `age` crate parses it, and is stored in the crate's canonical
//! spelling, so what the directory hands out is exactly what `age -r` takes. The stanza type
//! recorded with it is what a file encrypted to it carries, which lets the envelope gate check
//! that an upload is addressed to the keys it claims.
//!
//! Hybrid post-quantum recipients (`age1pq1…`, stanza `mlkem768x25519`) are parsed by our own
//! [`crate::hybrid`], as the `age` crate does not know them yet; they are checked the same way
//! (canonical Bech32, a valid ML-KEM-768 encapsulation key).

use sha2::{Digest as _, Sha256};

/// Why a recipient key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An age identity (private key) was offered instead of a recipient.
    #[error("that is a private key: never send it anywhere, register the public `age1…` recipient instead")]
    PrivateKey,
    /// SSH keys are switched off in this gateway's configuration.
    #[error("ssh keys are not allowed on this gateway: register an `age1…` recipient made by `age-keygen`")]
    SshNotAllowed,
    /// A recipient type the gateway knows of but cannot handle.
    #[error(
        "`{0}` recipients are not supported yet: register an X25519 `age1…` or a post-quantum `age1pq1…` recipient"
    )]
    Unsupported(&'static str),
    /// Not a recipient at all, or a damaged one.
    #[error("`{0}` is not a valid age recipient: {1}")]
    Invalid(String, String),
}

/// A parsed, canonical recipient key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientKey {
    recipient: String,
    stanza_type: &'static str,
    fingerprint: String,
}

impl RecipientKey {
    /// Parses a recipient as a user would paste it. SSH keys are accepted only when
    /// `allow_ssh` is set; their comment (often an e-mail address) is dropped.
    pub fn parse(input: &str, allow_ssh: bool) -> Result<Self, KeyError> {
        let s = input.trim();
        let invalid = |why: &dyn std::fmt::Display| KeyError::Invalid(shorten(s), why.to_string());
        if s.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") || s.contains("PRIVATE KEY") {
            return Err(KeyError::PrivateKey);
        }
        let (recipient, stanza_type) = if let Some(encoded) = s.strip_prefix(SIGNING_PREFIX) {
            (format!("{SIGNING_PREFIX}{}", signing_key(encoded).map_err(|e| invalid(&e))?.0), SIGNING_TYPE)
        } else if s.starts_with("ssh-") {
            if !allow_ssh {
                return Err(KeyError::SshNotAllowed);
            }
            let key: String = s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            let parsed: age::ssh::Recipient = key.parse().map_err(|e| invalid(&format!("{e:?}")))?;
            let kind = match parsed {
                age::ssh::Recipient::SshRsa(..) => "ssh-rsa",
                age::ssh::Recipient::SshEd25519(..) => "ssh-ed25519",
            };
            (key, kind)
        } else {
            let lower = s.to_ascii_lowercase();
            if lower.starts_with("age1tagpq1") {
                let r: age::tagpq::Recipient = lower.parse().map_err(|e: &str| invalid(&e))?;
                (r.to_string(), "mlkem768p256tag")
            } else if lower.starts_with("age1tag1") {
                let r: age::tag::Recipient = lower.parse().map_err(|e: &str| invalid(&e))?;
                (r.to_string(), "p256tag")
            } else if lower.starts_with(crate::hybrid::RECIPIENT_PREFIX) {
                let r: crate::hybrid::Recipient = lower.parse().map_err(|e| invalid(&e))?;
                (r.to_string(), crate::hybrid::STANZA_TYPE)
            } else if lower.starts_with("age1") && !lower[4..].contains('1') {
                let r: age::x25519::Recipient = lower.parse().map_err(|e: &str| invalid(&e))?;
                (r.to_string(), "X25519")
            } else if lower.starts_with("age1") {
                return Err(KeyError::Unsupported("plugin"));
            } else {
                return Err(invalid(&"expected `age1…` as printed by `age-keygen`"));
            }
        };
        let fingerprint = fingerprint(&recipient);
        Ok(Self { recipient, stanza_type, fingerprint })
    }

    /// The canonical recipient string.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// The stanza type a file encrypted to this key carries.
    pub fn stanza_type(&self) -> &'static str {
        self.stanza_type
    }

    /// `sha256:` and the hex SHA-256 of the canonical recipient string.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The prefix of a sender's signing public key (`sealpost keygen --signing`).
pub const SIGNING_PREFIX: &str = "sealpost-signing1";

/// The `stanza_type` stored with a signing key: it marks a key that signs manifests and never
/// receives a stanza, so the envelope gate leaves it out.
pub const SIGNING_TYPE: &str = "sealpost-signing";

/// Decodes the part of a signing key after [`SIGNING_PREFIX`] (32 bytes, unpadded base64url, a
/// valid Ed25519 point); answers its canonical spelling and the key.
fn signing_key(encoded: &str) -> Result<(String, ed25519_dalek::VerifyingKey), &'static str> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = engine.decode(encoded).map_err(|_| "the key is not unpadded base64url")?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "an Ed25519 key is 32 bytes")?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key")?;
    Ok((engine.encode(key.as_bytes()), key))
}

/// The Ed25519 key of a `sealpost-signing1…` public key string.
pub fn signing_public_key(public: &str) -> Option<ed25519_dalek::VerifyingKey> {
    signing_key(public.trim().strip_prefix(SIGNING_PREFIX)?).ok().map(|(_, key)| key)
}

/// `sha256:` and the lowercase hex SHA-256 of a recipient string.
pub fn fingerprint(recipient: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(recipient.as_bytes())))
}

/// Keeps error messages one short line whatever was pasted.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret as _;

    #[test]
    fn x25519_recipients_are_accepted_in_canonical_form() {
        let id = age::x25519::Identity::generate();
        let r = id.to_public().to_string();
        let key = RecipientKey::parse(&format!("  {}\n", r.to_uppercase()), false).expect("valid");
        assert_eq!(key.recipient(), r);
        assert_eq!(key.stanza_type(), "X25519");
        assert_eq!(key.fingerprint(), fingerprint(&r));
        assert_eq!(key.fingerprint().len(), 7 + 64);
    }

    #[test]
    fn private_keys_are_refused_with_a_warning() {
        let id = age::x25519::Identity::generate();
        let secret = id.to_string();
        assert_eq!(RecipientKey::parse(secret.expose_secret(), false), Err(KeyError::PrivateKey));
    }

    #[test]
    fn ssh_keys_need_the_setting() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@example";
        assert_eq!(RecipientKey::parse(key, false), Err(KeyError::SshNotAllowed));
        let parsed = RecipientKey::parse(key, true).expect("valid ssh key");
        assert_eq!(parsed.stanza_type(), "ssh-ed25519");
        assert!(!parsed.recipient().contains("alice"));
    }

    #[test]
    fn signing_keys_are_accepted_with_their_own_type() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let public = crate::client::keys::signing_public(&key.verifying_key());
        let parsed = RecipientKey::parse(&format!(" {public}\n"), false).expect("valid signing key");
        assert_eq!(parsed.recipient(), public);
        assert_eq!(parsed.stanza_type(), SIGNING_TYPE);
        assert_eq!(parsed.fingerprint(), fingerprint(&public));
        assert_eq!(signing_public_key(&public), Some(key.verifying_key()));
        let short = format!("{SIGNING_PREFIX}{}", &public[SIGNING_PREFIX.len() + 2..]);
        assert!(matches!(RecipientKey::parse(&short, false), Err(KeyError::Invalid(..))));
        let padded = format!("{public}=");
        assert!(matches!(RecipientKey::parse(&padded, false), Err(KeyError::Invalid(..))));
    }

    #[test]
    fn hybrid_post_quantum_recipients_are_accepted_in_canonical_form() {
        let id = crate::hybrid::Identity::generate();
        let r = id.to_public().to_string();
        let key = RecipientKey::parse(&format!("\n{}  ", r.to_uppercase()), false).expect("valid");
        assert_eq!(key.recipient(), r);
        assert_eq!(key.stanza_type(), "mlkem768x25519");
        assert_eq!(key.fingerprint(), fingerprint(&r));
        let secret = id.to_string();
        assert_eq!(RecipientKey::parse(secret.expose_secret(), false), Err(KeyError::PrivateKey));
        let cut = &r[..r.len() - 1];
        assert_eq!(
            RecipientKey::parse(cut, false),
            Err(KeyError::Invalid(shorten(cut), "it is not valid Bech32 (a character is wrong or missing)".into()))
        );
    }

    #[test]
    fn tagged_recipients_are_accepted_in_canonical_form_with_their_stanza_types() {
        // The age spec's example keys (c2sp.org/age, "The tagged recipient types").
        let p256tag = "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e";
        let key = RecipientKey::parse(&format!(" {}\n", p256tag.to_uppercase()), false).expect("valid");
        assert_eq!((key.recipient(), key.stanza_type()), (p256tag, "p256tag"));
        let tagpq = include_str!("tagged/npm_mlkem768p256tag.txt").lines().next().expect("recipient line");
        let key = RecipientKey::parse(tagpq, false).expect("valid");
        assert_eq!((key.recipient(), key.stanza_type()), (tagpq, "mlkem768p256tag"));
        // One character changed: refused.
        let damaged = p256tag.replace("qt8l", "qt8m");
        assert!(matches!(RecipientKey::parse(&damaged, false), Err(KeyError::Invalid(..))));
    }

    #[test]
    fn garbage_is_invalid() {
        assert!(matches!(RecipientKey::parse("age1qqqq", false), Err(KeyError::Invalid(..))));
        assert!(matches!(RecipientKey::parse("hello", false), Err(KeyError::Invalid(..))));
    }
}
