//! The encrypting and decrypting streams: a bundle sealed with age to every recipient key while
//! its ciphertext is hashed, the check that an identity can open a file from its header alone
//! (so a download can stop before its last byte), and decryption into place.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use age::armor::ArmoredReader;

use super::bundle::{self, BundleError, Item, PipeWriter, Target};
use super::keys::Identities;
use crate::{hybrid, tagged};

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A directory key that the age library cannot encrypt to.
    #[error("cannot encrypt to `{recipient}`: {reason}")]
    Recipient { recipient: String, reason: String },
    /// The bundle could not be written or extracted.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Writing or reading the ciphertext failed.
    #[error("cannot write the ciphertext: {0}")]
    Io(#[source] io::Error),
    /// No identity in the file can open the ciphertext.
    #[error("none of the identities can decrypt this bundle")]
    NoMatchingIdentity,
    /// The ciphertext is not an age file, or fails to decrypt or authenticate.
    #[error("the bundle does not decrypt: {0}")]
    Decrypt(String),
    /// A plain age file (not a bundle) cannot be extracted into a directory.
    #[error("this is a plain age file, not a sealpost bundle")]
    PlainFile,
    /// The output file exists.
    #[error("`{path}` exists already")]
    Exists { path: PathBuf },
}

/// Parses a directory key (`age1…`, `age1pq1…`, the tagged `age1tag1…` and `age1tagpq1…`, or an
/// SSH public key) into an age recipient. The tagged types are the `age` crate's (0.12 has them,
/// for encryption: their identities live on hardware, behind plugins).
pub fn recipient(key: &str) -> Result<Box<dyn age::Recipient + Send>, SealError> {
    let fail = |reason: String| SealError::Recipient { recipient: key.to_owned(), reason };
    if hybrid::is_recipient_string(key) {
        let r = hybrid::Recipient::from_str(key).map_err(|e| fail(e.to_string()))?;
        Ok(Box::new(r))
    } else if key.starts_with(tagged::MLKEM768P256TAG_PREFIX) {
        let r = age::tagpq::Recipient::from_str(key).map_err(|e| fail(e.to_owned()))?;
        Ok(Box::new(r))
    } else if key.starts_with(tagged::P256TAG_PREFIX) {
        let r = age::tag::Recipient::from_str(key).map_err(|e| fail(e.to_owned()))?;
        Ok(Box::new(r))
    } else if key.starts_with("age1") {
        let r = age::x25519::Recipient::from_str(key).map_err(|e| fail(e.to_string()))?;
        Ok(Box::new(r))
    } else {
        let r = age::ssh::Recipient::from_str(key).map_err(|e| fail(format!("{e:?}")))?;
        Ok(Box::new(r))
    }
}

/// How many of a file's recipient keys resist a quantum computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostQuantum {
    /// Every key is post-quantum: so is the file.
    All,
    /// Some are: the file is only as safe as its classical keys.
    Partly,
    /// None is.
    None,
}

/// Whether a directory key is post-quantum (`age1pq1…`, or the tagged hybrid `age1tagpq1…`).
fn is_post_quantum(key: &str) -> bool {
    hybrid::is_recipient_string(key) || key.starts_with(tagged::MLKEM768P256TAG_PREFIX)
}

/// Whether the directory keys `keys` are post-quantum.
pub fn post_quantum(keys: &[String]) -> PostQuantum {
    match keys.iter().filter(|k| is_post_quantum(k)).count() {
        0 => PostQuantum::None,
        n if n == keys.len() => PostQuantum::All,
        _ => PostQuantum::Partly,
    }
}

/// Parses the directory keys a bundle is sealed to. The gateway requires a file to be encrypted
/// to every key of every addressed user, so a user holding a post-quantum and a classical key
/// (say a browser key) gets both: there the hybrid recipients drop age's `postquantum` label,
/// which would make the `age` crate refuse the mix, and the caller says what that means
/// ([`post_quantum`] answers [`PostQuantum::Partly`]).
pub fn recipients(keys: &[String]) -> Result<Vec<Box<dyn age::Recipient + Send>>, SealError> {
    let partly = post_quantum(keys) == PostQuantum::Partly;
    keys.iter()
        .map(|key| {
            if partly && hybrid::is_recipient_string(key) {
                let r = hybrid::Recipient::from_str(key)
                    .map_err(|e| SealError::Recipient { recipient: key.clone(), reason: e.to_string() })?;
                Ok(Box::new(r.alongside_classical()) as Box<dyn age::Recipient + Send>)
            } else if partly && is_post_quantum(key) {
                Ok(Box::new(Unlabelled(recipient(key)?)) as Box<dyn age::Recipient + Send>)
            } else {
                recipient(key)
            }
        })
        .collect()
}

/// A recipient without the labels it gives a file (age's `postquantum`, for the `age` crate's
/// tagged hybrid type), for the mix [`recipients`] allows.
struct Unlabelled(Box<dyn age::Recipient + Send>);

impl age::Recipient for Unlabelled {
    fn wrap_file_key(
        &self,
        file_key: &age_core::format::FileKey,
    ) -> Result<(Vec<age_core::format::Stanza>, std::collections::HashSet<String>), age::EncryptError> {
        let (stanzas, _labels) = self.0.wrap_file_key(file_key)?;
        Ok((stanzas, std::collections::HashSet::new()))
    }
}

/// What was sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The ciphertext's `sha256:<hex>`.
    pub digest: String,
    /// The ciphertext's size.
    pub size: u64,
    /// The bundle's manifest.
    pub items: Vec<Item>,
}

/// Bundles `paths` and encrypts the bundle to every recipient, writing the ciphertext to `out`,
/// streaming. `progress` gets the source bytes read so far.
pub fn seal(
    paths: &[PathBuf],
    recipients: &[Box<dyn age::Recipient + Send>],
    out: &File,
    progress: impl FnMut(u64),
) -> Result<Sealed, SealError> {
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        .map_err(|e| SealError::Recipient { recipient: "the recipients".into(), reason: e.to_string() })?;
    let (items, digest, size) = PipeWriter::run(out, SealError::Io, |pipe| {
        let mut writer = encryptor.wrap_output(pipe).map_err(SealError::Io)?;
        let items = bundle::write(paths, &mut writer, progress)?;
        writer.finish().map_err(SealError::Io)?;
        Ok::<_, SealError>(items)
    })?;
    Ok(Sealed { digest, size, items })
}

/// What the header of a partly downloaded file says about an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderCheck {
    /// The prefix does not hold the whole header yet.
    NeedMore,
    /// An identity unwraps the file key and the header MAC verifies.
    Opens,
    /// No identity matches any stanza.
    NoMatch,
    /// An identity matched, but the header does not authenticate.
    Broken(String),
}

/// Checks from the first bytes of a ciphertext (binary or armored) whether `ids` can open it.
/// Before a link is used up the gateway serves the age header and nothing past it (for armour,
/// through the base64 group that completes it, which may end mid-line), so this needs no more:
/// the header is found in the (unarmoured) prefix, and the age crate, which reads the payload's
/// nonce with the header, is given a placeholder nonce that nothing is decrypted with.
pub fn check_header(prefix: &[u8], ids: &Identities) -> HeaderCheck {
    let binary = match unarmor_prefix(prefix) {
        Ok(Some(binary)) => binary,
        Ok(None) => prefix.to_vec(),
        Err(e) => return HeaderCheck::Broken(e),
    };
    let Some(header) = header_of(&binary) else { return HeaderCheck::NeedMore };
    let mut file = header.to_vec();
    file.extend_from_slice(&[0; 16]);
    let decryptor = match age::Decryptor::new(&file[..]) {
        Ok(decryptor) => decryptor,
        Err(e) => return HeaderCheck::Broken(e.to_string()),
    };
    match decryptor.decrypt(ids.identities.iter().map(|i| i.as_ref() as &dyn age::Identity)) {
        Ok(_) => HeaderCheck::Opens,
        Err(age::DecryptError::NoMatchingKeys) => HeaderCheck::NoMatch,
        Err(e) => HeaderCheck::Broken(e.to_string()),
    }
}

/// The binary header at the start of `binary`, through its `---` MAC line, once complete (no
/// other header line starts with `---`).
fn header_of(binary: &[u8]) -> Option<&[u8]> {
    let mac = binary.windows(5).position(|w| w == b"\n--- ")? + 1;
    let end = binary[mac..].iter().position(|&b| b == b'\n')?;
    Some(&binary[..mac + end + 1])
}

/// The binary bytes an armoured prefix holds (its whole base64 groups, across lines; the begin
/// line first); `None` when `prefix` is not armour.
fn unarmor_prefix(prefix: &[u8]) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    const BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
    let text = prefix.trim_ascii_start();
    let Some(rest) = text.strip_prefix(BEGIN) else {
        return Ok(None);
    };
    let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
    let Some(rest) = rest.strip_prefix(b"\n") else { return Ok(Some(Vec::new())) };
    let mut chars: Vec<u8> = Vec::with_capacity(rest.len());
    for &b in rest {
        match b {
            b'\r' | b'\n' => {}
            b'-' => break,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => chars.push(b),
            _ => return Err("the armour holds a character outside base64".to_owned()),
        }
    }
    chars.truncate(chars.len() / 4 * 4);
    base64::prelude::BASE64_STANDARD.decode(&chars).map(Some).map_err(|e| format!("the armour is not base64: {e}"))
}

/// What decryption produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A sealpost bundle, extracted; its manifest.
    Bundle(Vec<Item>),
    /// A plain age file written to the output; its plaintext size.
    Plain(u64),
}

/// Decrypts the ciphertext in `file` into `target`: a bundle is extracted (to a directory, or its
/// single file to a path), a plain age file is written to a path. Nothing appears unless the
/// whole stream decrypted and authenticated.
pub fn open(file: File, ids: &Identities, target: &Target<'_>, force: bool) -> Result<Opened, SealError> {
    let decrypt_err = |e: age::DecryptError| match e {
        age::DecryptError::NoMatchingKeys => SealError::NoMatchingIdentity,
        other => SealError::Decrypt(other.to_string()),
    };
    let decryptor = age::Decryptor::new(ArmoredReader::new(BufReader::new(file))).map_err(decrypt_err)?;
    let mut reader =
        decryptor.decrypt(ids.identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(decrypt_err)?;
    let mut prefix = Vec::with_capacity(512);
    (&mut reader).take(512).read_to_end(&mut prefix).map_err(|e| SealError::Decrypt(e.to_string()))?;
    let whole = io::Cursor::new(prefix.clone()).chain(reader);
    if bundle::is_bundle(&prefix) {
        return Ok(Opened::Bundle(bundle::extract(whole, target, force)?));
    }
    match target {
        Target::Dir(_) => Err(SealError::PlainFile),
        Target::File(path) => write_plain(whole, path, force).map(Opened::Plain),
    }
}

fn write_plain(mut plaintext: impl Read, path: &Path, force: bool) -> Result<u64, SealError> {
    if !force && path.symlink_metadata().is_ok() {
        return Err(SealError::Exists { path: path.to_owned() });
    }
    let temp = tempfile::Builder::new()
        .prefix(".sealpost-")
        .tempfile_in(bundle::parent_dir(path))
        .map_err(|e| SealError::Bundle(BundleError::Write(e)))?;
    let mut out = BufWriter::new(temp.as_file());
    let size = io::copy(&mut plaintext, &mut out).map_err(|e| SealError::Decrypt(e.to_string()))?;
    out.into_inner().map_err(|e| SealError::Bundle(BundleError::Write(e.into_error())))?;
    temp.as_file().sync_all().map_err(|e| SealError::Bundle(BundleError::Write(e)))?;
    let persisted = if force { temp.persist(path) } else { temp.persist_noclobber(path) };
    persisted.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            SealError::Exists { path: path.to_owned() }
        } else {
            SealError::Bundle(BundleError::Write(e.error))
        }
    })?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::io::Write as _;

    use age::secrecy::ExposeSecret as _;

    use super::*;

    /// Encrypts to `keys` as `seal` does, and decrypts with `identity`.
    fn round_trip(keys: &[String], identity: &dyn age::Identity) -> Vec<u8> {
        let recipients = recipients(keys).unwrap();
        let encryptor =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient)).unwrap();
        let mut file = Vec::new();
        let mut w = encryptor.wrap_output(&mut file).unwrap();
        w.write_all(b"extract").unwrap();
        w.finish().unwrap();
        let mut out = Vec::new();
        age::Decryptor::new(&file[..])
            .unwrap()
            .decrypt(std::iter::once(identity))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn post_quantum_and_classical_keys_seal_together_and_say_so() {
        let pq = hybrid::Identity::generate();
        let classical = age::x25519::Identity::generate();
        let both = vec![pq.to_public().to_string(), classical.to_public().to_string()];
        assert_eq!(post_quantum(&both), PostQuantum::Partly);
        assert_eq!(round_trip(&both, &pq), b"extract");
        assert_eq!(round_trip(&both, &classical), b"extract");
        let only_pq = vec![pq.to_public().to_string(), hybrid::Identity::generate().to_public().to_string()];
        assert_eq!(post_quantum(&only_pq), PostQuantum::All);
        assert_eq!(round_trip(&only_pq, &pq), b"extract");
        assert_eq!(post_quantum(&both[1..]), PostQuantum::None);
        let secret = pq.to_string();
        assert!(matches!(recipient(secret.expose_secret()), Err(SealError::Recipient { .. })));
    }

    #[test]
    fn tagged_keys_seal_and_a_tagged_post_quantum_key_mixes_with_classical_ones() {
        let tagpq = include_str!("../tagged/npm_mlkem768p256tag.txt").lines().next().unwrap().to_owned();
        let p256 = "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e".to_owned();
        let classical = age::x25519::Identity::generate();
        let mixed = vec![tagpq, p256, classical.to_public().to_string()];
        assert_eq!(post_quantum(&mixed[..1]), PostQuantum::All);
        assert_eq!(post_quantum(&mixed), PostQuantum::Partly);
        // With age's `postquantum` label kept, the `age` crate would refuse this mix.
        assert_eq!(round_trip(&mixed, &classical), b"extract");
        assert!(matches!(recipient("age1tag1qqqq"), Err(SealError::Recipient { .. })));
    }
}
