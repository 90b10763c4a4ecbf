//! The recipient types whose stanzas name their key, and the addressee check they allow a gateway
//! that holds no private key.
//!
//! age's default stanzas (`X25519`, `mlkem768x25519`) hide which key they were made for. Four
//! types do not: the first argument of their stanza is a 4-byte tag anyone holding the public key
//! can recompute.
//!
//! * `ssh-ed25519` and `ssh-rsa`, age's SSH recipients: the tag is the first 4 bytes of SHA-256
//!   of the SSH wire-format public key (the base64 blob of its `authorized_keys` line), the same
//!   in every stanza to that key.
//! * `p256tag` (`age1tag1…`) and `mlkem768p256tag` (`age1tagpq1…`), the tagged types of the age
//!   spec (c2sp.org/age, "The tagged recipient types"), made for hardware keys:
//!   `tag = HKDF-Extract-SHA-256(ikm = enc || SHA-256(K)[:4], salt = "age-encryption.org/TYPE")[:4]`,
//!   where `enc` is the stanza's second argument (the HPKE encapsulated key) and `K` the
//!   recipient's 33-byte compressed P-256 point (`p256tag`), or the 65-byte uncompressed P-256
//!   point that ends the 1249-byte hybrid recipient, `recipient[1184:]` (`mlkem768p256tag`). It
//!   differs with every stanza, yet is checked against a key in one hash.
//!
//! The spec's example `p256tag` stanza (`CXBuUw`) was made with an earlier draft's rule
//! (`ikm = enc || pkR`, the whole uncompressed key) and does not follow its own text; the Go
//! reference (`filippo.io/age/tag`), the `age` crate 0.12 and the `age-encryption` npm package all
//! follow the text, and so does this module (its tests hold stanzas the npm package made).
//!
//! What the check proves, and what not: a tag that matches no addressed key means the file was
//! encrypted to someone else's key, the mistake this check is for. A matching tag does not prove
//! the stanza opens (that needs the private key, and the header MAC the file key): a sender set on
//! it can copy a key's tag onto a stanza for another key. Only the recipient's decryption closes
//! that loop, as for the untagged types.

use base64::Engine as _;
use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD};
use hkdf::Hkdf;
use sha2::{Digest as _, Sha256};

use crate::envelope::{Stanza, StanzaKind};

/// Bytes of a tag.
pub const TAG_LEN: usize = 4;
/// HKDF's salt for `p256tag` tags (also HPKE's `info`).
const P256TAG_SALT: &[u8] = b"age-encryption.org/p256tag";
/// HKDF's salt for `mlkem768p256tag` tags (also HPKE's `info`).
const MLKEM768P256TAG_SALT: &[u8] = b"age-encryption.org/mlkem768p256tag";
/// The HRP of a `p256tag` recipient.
const P256TAG_HRP: &str = "age1tag";
/// What a `p256tag` recipient starts with.
pub const P256TAG_PREFIX: &str = "age1tag1";
/// The HRP of a `mlkem768p256tag` recipient.
const MLKEM768P256TAG_HRP: &str = "age1tagpq";
/// What a `mlkem768p256tag` recipient starts with.
pub const MLKEM768P256TAG_PREFIX: &str = "age1tagpq1";
/// Bytes of a `p256tag` recipient: a compressed SEC 1 P-256 point.
const P256TAG_RECIPIENT_LEN: usize = 33;
/// Bytes of a `mlkem768p256tag` recipient: ML-KEM-768's encapsulation key, then an uncompressed
/// SEC 1 P-256 point.
const MLKEM768P256TAG_RECIPIENT_LEN: usize = 1184 + 65;
/// Where the P-256 point starts in a `mlkem768p256tag` recipient.
const MLKEM768P256TAG_POINT_AT: usize = 1184;

/// How a type's stanza tag derives from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagScheme {
    /// `ssh-ed25519`, `ssh-rsa`: the key hash itself.
    Ssh,
    /// `p256tag`: HKDF-Extract over the encapsulated key and the key hash.
    P256Tag,
    /// `mlkem768p256tag`: the same, with its own salt and the hash of the P-256 part only.
    MlKem768P256Tag,
}

impl TagScheme {
    /// The scheme of a stanza type; `None` for a type that hides its recipient.
    pub fn of(kind: StanzaKind) -> Option<Self> {
        match kind {
            StanzaKind::SshEd25519 | StanzaKind::SshRsa => Some(Self::Ssh),
            StanzaKind::P256Tag => Some(Self::P256Tag),
            StanzaKind::MlKem768P256Tag => Some(Self::MlKem768P256Tag),
            _ => None,
        }
    }
}

/// Whether stanzas of `kind` carry a tag of their key.
pub fn is_tagged(kind: StanzaKind) -> bool {
    TagScheme::of(kind).is_some()
}

/// What a key's stanza tags are computed from: its scheme, and the first 4 bytes of SHA-256 of
/// the key bytes the scheme hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTag {
    kind: StanzaKind,
    scheme: TagScheme,
    key_hash: [u8; TAG_LEN],
}

impl KeyTag {
    /// The tag of a directory key in its canonical spelling (as `RecipientKey` stores it), of
    /// stanza type `stanza_type`. `None` for a type without tags, or a key that cannot be read.
    pub fn of(stanza_type: &str, recipient: &str) -> Option<Self> {
        let kind = StanzaKind::of(stanza_type);
        let scheme = TagScheme::of(kind)?;
        let hashed = match scheme {
            TagScheme::Ssh => {
                let (kind, blob) = recipient.split_once(' ')?;
                if kind != stanza_type {
                    return None;
                }
                BASE64_STANDARD.decode(blob.split(' ').next()?).ok()?
            }
            TagScheme::P256Tag => {
                let bytes = crate::hybrid::decode(recipient, P256TAG_HRP, P256TAG_PREFIX).ok()?;
                (bytes.len() == P256TAG_RECIPIENT_LEN).then_some(bytes)?
            }
            TagScheme::MlKem768P256Tag => {
                let bytes = crate::hybrid::decode(recipient, MLKEM768P256TAG_HRP, MLKEM768P256TAG_PREFIX).ok()?;
                (bytes.len() == MLKEM768P256TAG_RECIPIENT_LEN).then(|| bytes[MLKEM768P256TAG_POINT_AT..].to_vec())?
            }
        };
        Some(Self { kind, scheme, key_hash: truncated_sha256(&hashed) })
    }

    /// The scheme.
    pub fn scheme(&self) -> TagScheme {
        self.scheme
    }

    /// The tag a stanza to this key with encapsulated key `enc` carries (`enc` is ignored for SSH
    /// keys, whose tag is the same in every stanza).
    pub fn stanza_tag(&self, enc: &[u8]) -> [u8; TAG_LEN] {
        let salt = match self.scheme {
            TagScheme::Ssh => return self.key_hash,
            TagScheme::P256Tag => P256TAG_SALT,
            TagScheme::MlKem768P256Tag => MLKEM768P256TAG_SALT,
        };
        let mut ikm = Vec::with_capacity(enc.len() + TAG_LEN);
        ikm.extend_from_slice(enc);
        ikm.extend_from_slice(&self.key_hash);
        let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &ikm);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&prk[..TAG_LEN]);
        tag
    }

    /// Whether `stanza` is of this key's type and carries this key's tag. Stanzas come from the
    /// envelope inspector, which has checked their arguments' grammar; anything else is no match.
    pub fn matches(&self, stanza: &Stanza) -> bool {
        if stanza.kind != self.kind {
            return false;
        }
        let decode = |i: usize| stanza.args.get(i).and_then(|a| BASE64_STANDARD_NO_PAD.decode(a).ok());
        let Some(tag) = decode(0) else { return false };
        let enc = match self.scheme {
            TagScheme::Ssh => Vec::new(),
            TagScheme::P256Tag | TagScheme::MlKem768P256Tag => match decode(1) {
                Some(enc) => enc,
                None => return false,
            },
        };
        tag == self.stanza_tag(&enc)
    }
}

/// The first 4 bytes of SHA-256 of `bytes`.
fn truncated_sha256(bytes: &[u8]) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&Sha256::digest(bytes)[..TAG_LEN]);
    out
}

/// Why the tagged stanzas of a file do not fit the addressed keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The stanza (1-based, counted over the whole header) is of a tagged type, but its tag is that
    /// of none of the addressed keys of its type: it was made for another key.
    Stranger {
        /// Its place in the header.
        stanza: usize,
    },
    /// The addressed key (an index into the keys given) is of a tagged type, but no stanza is left
    /// for it: every stanza with its tag is needed by another key (two stanzas for one key).
    Unserved {
        /// Its index.
        key: usize,
    },
}

/// Checks the tagged stanzas against the addressed keys: every tagged stanza carries the tag of
/// an addressed key of its type, and every addressed key of a tagged type has a stanza of its
/// own (a matching of stanzas to keys; tags are only 4 bytes, so two keys may share one).
///
/// `keys` are the addressed keys, each its stanza type and [`KeyTag`] (`None` matches no stanza:
/// a key of a tagged type that cannot be read). Stanzas of untagged types and grease are left
/// out: that there is one stanza per key is the count check's, which comes first.
pub fn match_stanzas<'a>(
    stanzas: &[Stanza],
    keys: impl IntoIterator<Item = (&'a str, Option<KeyTag>)>,
) -> Result<(), Mismatch> {
    let keys: Vec<(&str, Option<KeyTag>)> = keys.into_iter().collect();
    let mut candidates: Vec<Vec<usize>> = Vec::new();
    for (at, stanza) in stanzas.iter().enumerate().filter(|(_, s)| is_tagged(s.kind)) {
        let fits: Vec<usize> = keys
            .iter()
            .enumerate()
            .filter(|(_, (_, tag))| tag.is_some_and(|t| t.matches(stanza)))
            .map(|(k, _)| k)
            .collect();
        if fits.is_empty() {
            return Err(Mismatch::Stranger { stanza: at + 1 });
        }
        candidates.push(fits);
    }
    // Kuhn's augmenting paths: `served[k]` is the stanza (index into `candidates`) key `k` has.
    let mut served: Vec<Option<usize>> = vec![None; keys.len()];
    for s in 0..candidates.len() {
        let mut visited = vec![false; keys.len()];
        augment(s, &candidates, &mut served, &mut visited);
    }
    let unserved =
        keys.iter().enumerate().find(|(k, (kind, _))| is_tagged(StanzaKind::of(kind)) && served[*k].is_none());
    match unserved {
        Some((key, _)) => Err(Mismatch::Unserved { key }),
        None => Ok(()),
    }
}

/// Finds a key for stanza `s`, moving earlier stanzas to other keys they fit where needed.
fn augment(s: usize, candidates: &[Vec<usize>], served: &mut [Option<usize>], visited: &mut [bool]) -> bool {
    for &k in &candidates[s] {
        if visited[k] {
            continue;
        }
        visited[k] = true;
        let free = match served[k] {
            None => true,
            Some(other) => augment(other, candidates, served, visited),
        };
        if free {
            served[k] = Some(s);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests;
