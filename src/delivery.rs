//! The recipient's delivery statement: what a recipient signs, with a `sealpost-signing` key of
//! their own, after the bundle decrypted and its digest checked ("signed for on receipt").
//!
//! ```text
//! sealpost.delivery/v1
//! transfer ID                       (32 lowercase hex)
//! digest sha256:HEX                 (the ciphertext digest the client checked)
//! recipient ORG/NAME                (the signer)
//! time 2026-12-06T09:30:00Z         (UTC, whole seconds)
//! checkpoint SIZE ROOT              (the checkpoint the upload receipt was verified against)
//! ```
//!
//! The gateway logs a signed statement as the `delivery.acknowledged` entry, with the name
//! replaced by its commitment ([`crate::names`]): `digest`, `recipient` (the commitment),
//! `signed_at`, `checkpoint`, `signing_key` and `signature` facts, from which anyone who knows the
//! name rebuilds the exact signed text ([`Statement::from_entry`]).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::UserRef;
use crate::transparency::verify::Entry;

/// The first line of every statement.
pub const VERSION: &str = "sealpost.delivery/v1";

/// A delivery statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The transfer id (32 lowercase hex digits).
    pub transfer: String,
    /// The ciphertext digest, `sha256:<64 lowercase hex>`.
    pub digest: String,
    /// Who signs for it.
    pub recipient: UserRef,
    /// When, in whole seconds.
    pub time: DateTime<Utc>,
    /// The size of the checkpoint the client verified the upload receipt against.
    pub checkpoint_size: u64,
    /// Its root hash, standard base64 as in the checkpoint.
    pub checkpoint_root: String,
}

/// Why a statement text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// The text is not the canonical v1 form.
    #[error("the statement is not a `{VERSION}` text in its canonical form: {0}")]
    NotCanonical(&'static str),
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Statement {
    /// The canonical text.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            "{VERSION}\ntransfer {}\ndigest {}\nrecipient {}\ntime {}\ncheckpoint {} {}\n",
            self.transfer,
            self.digest,
            self.recipient,
            self.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.checkpoint_size,
            self.checkpoint_root,
        );
        out
    }

    /// Parses a statement strictly: only the exact canonical text is accepted.
    pub fn parse(text: &str) -> Result<Self, StatementError> {
        use StatementError::NotCanonical as Bad;
        let body = text.strip_suffix('\n').ok_or(Bad("it must end in one newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [version, transfer, digest, recipient, time, checkpoint] = lines.as_slice() else {
            return Err(Bad("it must have exactly six lines"));
        };
        if *version != VERSION {
            return Err(Bad("the first line must be the version"));
        }
        let transfer =
            transfer.strip_prefix("transfer ").filter(|t| is_hex(t, 32)).ok_or(Bad("bad `transfer` line"))?;
        let digest = digest
            .strip_prefix("digest ")
            .filter(|d| d.strip_prefix("sha256:").is_some_and(|h| is_hex(h, 64)))
            .ok_or(Bad("bad `digest` line"))?;
        let recipient: UserRef =
            recipient.strip_prefix("recipient ").and_then(|r| r.parse().ok()).ok_or(Bad("bad `recipient` line"))?;
        let time = time
            .strip_prefix("time ")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or(Bad("bad `time` line"))?;
        let (size, root) = checkpoint
            .strip_prefix("checkpoint ")
            .and_then(|c| c.split_once(' '))
            .ok_or(Bad("bad `checkpoint` line"))?;
        let checkpoint_size: u64 = size.parse().map_err(|_| Bad("bad checkpoint size"))?;
        let root_ok = STANDARD.decode(root).is_ok_and(|b| b.len() == 32);
        if !root_ok {
            return Err(Bad("the checkpoint root must be 32 bytes in standard base64"));
        }
        let parsed = Self {
            transfer: transfer.to_owned(),
            digest: digest.to_owned(),
            recipient,
            time,
            checkpoint_size,
            checkpoint_root: root.to_owned(),
        };
        if parsed.text() != text {
            return Err(Bad("a value is not written in its canonical form"));
        }
        Ok(parsed)
    }

    /// Rebuilds the statement a signed `delivery.acknowledged` entry records, given the name
    /// the entry's `recipient` commitment stands for (checked by the caller). `None` when the
    /// entry is not a signed delivery.
    pub fn from_entry(entry: &Entry, recipient: &UserRef) -> Option<Self> {
        let (size, root) = entry.fact("checkpoint")?.split_once(' ')?;
        let text = Self {
            transfer: entry.transfer()?.to_owned(),
            digest: entry.fact("digest")?.to_owned(),
            recipient: recipient.clone(),
            time: DateTime::parse_from_rfc3339(entry.fact("signed_at")?).ok()?.with_timezone(&Utc),
            checkpoint_size: size.parse().ok()?,
            checkpoint_root: root.to_owned(),
        }
        .text();
        Self::parse(&text).ok()
    }
}

/// Whether `signature` (standard base64 of 64 bytes) is `public`'s Ed25519 signature of `text`.
pub fn signature_verifies(text: &str, signature: &str, public: &ed25519_dalek::VerifyingKey) -> bool {
    let Ok(bytes) = STANDARD.decode(signature.trim()) else { return false };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(&bytes) else { return false };
    public.verify_strict(text.as_bytes(), &signature).is_ok()
}

/// Signs `text` with `key`: standard base64 of the signature.
pub fn sign(text: &str, key: &ed25519_dalek::SigningKey) -> String {
    use ed25519_dalek::Signer as _;
    STANDARD.encode(key.sign(text.as_bytes()).to_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use chrono::TimeZone as _;

    use super::*;

    fn example() -> Statement {
        Statement {
            transfer: "0123456789abcdef0123456789abcdef".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            recipient: "hmpps/alice".parse().unwrap(),
            time: Utc.with_ymd_and_hms(2026, 12, 6, 9, 30, 0).single().unwrap(),
            checkpoint_size: 42,
            checkpoint_root: STANDARD.encode([7u8; 32]),
        }
    }

    #[test]
    fn a_statement_has_one_canonical_text() {
        let text = example().text();
        assert_eq!(
            text,
            format!(
                "sealpost.delivery/v1\ntransfer 0123456789abcdef0123456789abcdef\ndigest sha256:{}\n\
                 recipient hmpps/alice\ntime 2026-12-06T09:30:00Z\ncheckpoint 42 {}\n",
                "ab".repeat(32),
                STANDARD.encode([7u8; 32])
            )
        );
        assert_eq!(Statement::parse(&text).unwrap(), example());
        for bad in [
            text.replace('\n', "\r\n"),
            text.trim_end().to_owned(),
            format!("{text}\n"),
            text.replace("09:30:00Z", "09:30:00.000Z"),
            text.replace("09:30:00Z", "10:30:00+01:00"),
            text.replace("checkpoint 42", "checkpoint 042"),
            text.replace("sha256:abab", "sha256:ABAB"),
            text.replace("recipient hmpps/alice", "recipient hmpps/Alice"),
            text.replace("transfer 0123", "transfer  0123"),
            text.replace("sealpost.delivery/v1", "sealpost.delivery/v2"),
        ] {
            assert!(Statement::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_text() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
        let other = ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]);
        let text = example().text();
        let signature = sign(&text, &key);
        assert!(signature_verifies(&text, &signature, &key.verifying_key()));
        assert!(!signature_verifies(&text, &signature, &other.verifying_key()));
        assert!(!signature_verifies(&text.replace("42", "43"), &signature, &key.verifying_key()));
        assert!(!signature_verifies(&text, "not base64!", &key.verifying_key()));
        assert!(!signature_verifies(&text, &STANDARD.encode([0u8; 63]), &key.verifying_key()));
    }
}
