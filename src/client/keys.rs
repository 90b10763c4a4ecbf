//! Keys on the client: age identities in the standard file format (the one `age-keygen` writes,
//! so `age -d -i FILE` reads ours and we read theirs), X25519 or hybrid post-quantum
//! (`AGE-SECRET-KEY-PQ-1…`, as `age-keygen -pq` writes them), and the sender's Ed25519 signing
//! key.
//!
//! Signing key files are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`); the public half is written
//! `sealpost-signing1` followed by the 32-byte Ed25519 public key in unpadded base64url.

use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use age::secrecy::ExposeSecret as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::hybrid;

/// The prefix of a sealpost signing public key string.
pub const SIGNING_PREFIX: &str = crate::directory::SIGNING_PREFIX;

/// Why a key could not be made, written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The output exists; keys are never overwritten.
    #[error("`{path}` already exists")]
    Exists { path: PathBuf },
    /// Creating or writing the file failed.
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading an identity file failed.
    #[error("cannot read the identity file `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file holds no usable identity.
    #[error("`{path}` holds no age identity")]
    NoIdentity { path: PathBuf },
    /// An identity the age library could not load.
    #[error("`{path}` holds an identity that cannot be used: {reason}")]
    Unusable { path: PathBuf, reason: String },
    /// Encoding the signing key failed.
    #[error("cannot encode the signing key")]
    Encode,
    /// Reading a signing key file failed.
    #[error("cannot read the signing key `{path}`: {source}")]
    ReadSigning {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file holds no Ed25519 signing key.
    #[error("`{path}` holds no Ed25519 signing key")]
    NoSigningKey { path: PathBuf },
}

/// A new age X25519 identity: the identity file text (secret) and the recipient (`age1…`).
pub fn new_identity(now: chrono::DateTime<chrono::Utc>) -> (Zeroizing<String>, String) {
    let identity = age::x25519::Identity::generate();
    identity_file(now, &identity.to_public().to_string(), identity.to_string().expose_secret())
}

/// A new hybrid post-quantum identity: the identity file text (secret) and the recipient
/// (`age1pq1…`).
pub fn new_pq_identity(now: chrono::DateTime<chrono::Utc>) -> (Zeroizing<String>, String) {
    let identity = hybrid::Identity::generate();
    identity_file(now, &identity.to_public().to_string(), identity.to_string().expose_secret())
}

/// The identity file `age-keygen` writes: two comment lines, then the identity.
fn identity_file(now: chrono::DateTime<chrono::Utc>, recipient: &str, identity: &str) -> (Zeroizing<String>, String) {
    let text = Zeroizing::new(format!(
        "# created: {}\n# public key: {recipient}\n{identity}\n",
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ));
    (text, recipient.to_owned())
}

/// A new Ed25519 signing key: the PKCS#8 PEM text (secret) and the public key string.
pub fn new_signing_key() -> Result<(Zeroizing<String>, String), KeyFileError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|_| KeyFileError::Encode)?;
    let public = signing_public(&key.verifying_key());
    Ok((Zeroizing::new(pem.as_str().to_owned()), public))
}

/// Reads a signing key file (PKCS#8 PEM, as `sealpost keygen --signing` writes it).
pub fn read_signing_key(path: &Path) -> Result<ed25519_dalek::SigningKey, KeyFileError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| KeyFileError::ReadSigning { path: path.to_owned(), source })?,
    );
    ed25519_dalek::SigningKey::from_pkcs8_pem(&text).map_err(|_| KeyFileError::NoSigningKey { path: path.to_owned() })
}

/// The public key string of a signing key: `sealpost-signing1<base64url>`.
pub fn signing_public(key: &ed25519_dalek::VerifyingKey) -> String {
    format!("{SIGNING_PREFIX}{}", URL_SAFE_NO_PAD.encode(key.as_bytes()))
}

/// Writes `text` to a new file `path` with mode 0600, refusing to replace an existing file.
pub fn write_new_secret(path: &Path, text: &str) -> Result<(), KeyFileError> {
    let write_err = |source| KeyFileError::Write { path: path.to_owned(), source };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            KeyFileError::Exists { path: path.to_owned() }
        } else {
            write_err(e)
        }
    })?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(write_err)
}

/// Identities loaded from a file, with the native recipients they answer to (for checking them
/// against the directory; plugin identities have none listed here).
pub struct Identities {
    /// Every identity in the file.
    pub identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// The recipients (`age1…`, `age1pq1…`) of the X25519 and hybrid post-quantum identities.
    pub recipients: Vec<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.identities.len())
            .field("recipients", &self.recipients)
            .finish()
    }
}

/// Reads an identity file in the age format, as `age-keygen` (with or without `-pq`) and
/// `sealpost keygen` write it: `#` comments, blank lines, and one identity per line.
///
/// The `age` crate reads every line but the hybrid post-quantum ones, which it does not know:
/// those are parsed here, and blanked in the crate's copy, so its line numbers stay right.
pub fn load_identities(path: &Path) -> Result<Identities, KeyFileError> {
    let read_err = |source| KeyFileError::Read { path: path.to_owned(), source };
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read_err)?);
    let mut rest = Zeroizing::new(String::with_capacity(text.len()));
    let mut hybrid_ids = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if hybrid::is_identity_string(line) {
            let id: hybrid::Identity = line.parse().map_err(|e| KeyFileError::Unusable {
                path: path.to_owned(),
                reason: format!("line {} is not a valid post-quantum identity: {e}", number + 1),
            })?;
            hybrid_ids.push(id);
        } else {
            rest.push_str(line);
        }
        rest.push('\n');
    }
    let file = age::IdentityFile::from_buffer(rest.as_bytes()).map_err(read_err)?;
    let mut identities =
        file.into_identities().map_err(|e| KeyFileError::Unusable { path: path.to_owned(), reason: e.to_string() })?;
    let mut recipients: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .filter_map(|l| l.parse::<age::x25519::Identity>().ok())
        .map(|i| i.to_public().to_string())
        .collect();
    recipients.extend(hybrid_ids.iter().map(|i| i.to_public().to_string()));
    identities.extend(hybrid_ids.into_iter().map(|i| Box::new(i) as Box<dyn age::Identity + Send + Sync>));
    if identities.is_empty() {
        return Err(KeyFileError::NoIdentity { path: path.to_owned() });
    }
    Ok(Identities { identities, recipients })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_new_identity_file_loads_back_and_names_its_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        let (text, recipient) = new_identity(chrono::Utc::now());
        write_new_secret(&path, &text).unwrap();
        let loaded = load_identities(&path).unwrap();
        assert_eq!(loaded.recipients, vec![recipient.clone()]);
        assert_eq!(text.lines().nth(1), Some(format!("# public key: {recipient}").as_str()));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_post_quantum_identity_file_loads_back_beside_an_x25519_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        let (pq, pq_recipient) = new_pq_identity(chrono::Utc::now());
        assert!(pq_recipient.starts_with("age1pq1"), "{pq_recipient}");
        assert_eq!(pq.lines().nth(1), Some(format!("# public key: {pq_recipient}").as_str()));
        assert!(pq.lines().nth(2).unwrap().starts_with("AGE-SECRET-KEY-PQ-1"));
        let (classic, classic_recipient) = new_identity(chrono::Utc::now());
        write_new_secret(&path, &format!("{}\n{}", *pq, *classic)).unwrap();
        let loaded = load_identities(&path).unwrap();
        assert_eq!(loaded.recipients, vec![classic_recipient, pq_recipient]);
        assert_eq!(loaded.identities.len(), 2);
    }

    #[test]
    fn a_damaged_line_is_named_by_its_number_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        let (pq, _) = new_pq_identity(chrono::Utc::now());
        let damaged = pq.replacen("AGE-SECRET-KEY-PQ-1", "AGE-SECRET-KEY-PQ-1Q", 1);
        write_new_secret(&path, &damaged).unwrap();
        let err = load_identities(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "`{}` holds an identity that cannot be used: line 3 is not a valid post-quantum identity: it is not valid Bech32 (a character is wrong or missing)",
                path.display()
            )
        );
        std::fs::remove_file(&path).unwrap();
        write_new_secret(&path, &format!("{}not a key\n", *pq)).unwrap();
        let err = load_identities(&path).unwrap_err().to_string();
        assert!(err.ends_with("contains non-identity data on line 4"), "{err}");
    }

    #[test]
    fn an_existing_key_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        std::fs::write(&path, "keep").unwrap();
        let err = write_new_secret(&path, "new").unwrap_err();
        assert_eq!(err.to_string(), format!("`{}` already exists", path.display()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
    }

    #[test]
    fn a_signing_key_round_trips_through_pkcs8_pem() {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let (pem, public) = new_signing_key().unwrap();
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(signing_public(&key.verifying_key()), public);
        assert_eq!(public.len(), SIGNING_PREFIX.len() + 43);
    }
}
