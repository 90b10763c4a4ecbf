//! C2SP signed-note (<https://c2sp.org/signed-note>): text signed by one or more keys, with
//! Ed25519 keys in the Go `golang.org/x/mod/sumdb/note` key string formats.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of plain Ed25519 note signatures (signed-note "Signature types").
pub const SIG_TYPE_ED25519: u8 = 0x01;
/// Signature type byte of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature).
pub const SIG_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// The most signature lines a note may carry; more is refused as malformed (the limit of
/// the Go implementation; the spec requires accepting at least 16).
pub const MAX_SIGNATURES: usize = 100;

const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is not UTF-8.
    #[error("note is not valid utf-8")]
    NotUtf8,
    /// A control character other than newline.
    #[error("note contains control character {byte:#04x} at byte {offset}")]
    ControlCharacter { byte: u8, offset: usize },
    /// The note text is empty or does not end in a newline.
    #[error("note text does not end in a newline")]
    TextNotNewlineTerminated,
    /// No blank line separates text and signatures, or nothing follows it.
    #[error("note has no signature block after a blank line")]
    MissingSignatures,
    /// The last signature line is not newline-terminated.
    #[error("note does not end in a newline")]
    MissingFinalNewline,
    /// A signature line not of the form `— <name> <base64>`.
    #[error("signature line {line} is malformed")]
    MalformedSignatureLine { line: usize },
    /// More signature lines than allowed.
    #[error("note has more than {max} signatures")]
    TooManySignatures { max: usize },
    /// An empty key name, or one containing spaces or `+`.
    #[error("key name `{name}` is empty or contains a space or `+`")]
    InvalidName { name: String },
    /// A signature from a known key that does not verify.
    #[error("signature by `{name}` (key id {key_id:08x}) does not verify")]
    InvalidSignature { name: String, key_id: u32 },
    /// Two configured verifiers share a name and key ID.
    #[error("more than one verifier key is named `{name}` with key id {key_id:08x}")]
    AmbiguousVerifier { name: String, key_id: u32 },
    /// No signature from a known key.
    #[error("note has no signature from a known key")]
    NoVerifiedSignature,
    /// A key string not of the form `[PRIVATE+KEY+]name+hexid+base64`.
    #[error("key is not of the form `name+hexid+base64`")]
    MalformedKey,
    /// A key whose ID does not match its name and public key.
    #[error("key id {stated:08x} does not match the key, which has id {computed:08x}")]
    KeyIdMismatch { stated: u32, computed: u32 },
    /// A key of another signature type than expected.
    #[error("key has signature type {actual:#04x}, expected {expected:#04x}")]
    WrongKeyType { expected: u8, actual: u8 },
    /// Key material of the wrong length or not a valid Ed25519 point.
    #[error("key material is not a valid ed25519 key")]
    InvalidKeyMaterial,
}

/// Whether `name` can name a key: non-empty, no Unicode spaces, no `+` (signed-note "Format").
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name || 0x0A || type || public key)[:4]` as a big-endian integer (signed-note
/// "Signatures").
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', sig_type]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// One signature line: `— <name> base64(key ID || signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 32-bit key ID.
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, with its final newline.
    pub fn line(&self) -> String {
        let mut raw = self.key_id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }

    /// Parses one line (without its newline); `line` numbers the error.
    pub fn parse_line(text: &str, line: usize) -> Result<Self, NoteError> {
        let malformed = NoteError::MalformedSignatureLine { line };
        let rest = text.strip_prefix(SIG_PREFIX).ok_or(malformed.clone())?;
        let (name, b64) = rest.split_once(' ').ok_or(malformed.clone())?;
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName { name: name.to_owned() });
        }
        let raw = B64.decode(b64).map_err(|_| malformed.clone())?;
        if raw.len() < 5 {
            return Err(malformed);
        }
        let key_id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        Ok(NoteSignature { name: name.to_owned(), key_id, signature: raw[4..].to_vec() })
    }
}

/// Something that signs note text (a log key, or a witness cosigner at a given time).
pub trait NoteSigner {
    /// The key name.
    fn name(&self) -> &str;
    /// The key ID.
    fn key_id(&self) -> u32;
    /// The signature over the note text, without the key ID.
    fn sign(&self, text: &str) -> Vec<u8>;
}

/// Something that verifies signatures over note text.
pub trait NoteVerifier {
    /// The key name.
    fn name(&self) -> &str;
    /// The key ID.
    fn key_id(&self) -> u32;
    /// Whether `signature` (without the key ID) is valid over `text`.
    fn verify(&self, text: &str, signature: &[u8]) -> bool;
}

/// A parsed key string: name, key ID, type byte and key material.
pub(crate) struct KeyString<'a> {
    pub(crate) name: &'a str,
    pub(crate) key_id: u32,
    pub(crate) sig_type: u8,
    pub(crate) material: Vec<u8>,
}

/// Parses `name+hexid+base64(type || key)`; the ID is checked by the caller, who knows the
/// public key.
pub(crate) fn parse_key_string(s: &str) -> Result<KeyString<'_>, NoteError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(hex_id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey);
    };
    if !is_valid_name(name) {
        return Err(NoteError::InvalidName { name: name.to_owned() });
    }
    if hex_id.len() != 8 || !hex_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(NoteError::MalformedKey);
    }
    let key_id = u32::from_str_radix(hex_id, 16).map_err(|_| NoteError::MalformedKey)?;
    let raw = B64.decode(b64).map_err(|_| NoteError::MalformedKey)?;
    let (&sig_type, material) = raw.split_first().ok_or(NoteError::MalformedKey)?;
    Ok(KeyString { name, key_id, sig_type, material: material.to_vec() })
}

/// Formats `name+hexid+base64(type || key)`.
pub(crate) fn format_key_string(name: &str, key_id: u32, sig_type: u8, material: &[u8]) -> String {
    let mut raw = vec![sig_type];
    raw.extend_from_slice(material);
    format!("{name}+{key_id:08x}+{}", B64.encode(raw))
}

/// Builds an Ed25519 key from a seed string's parts, checking the type byte and key ID.
pub(crate) fn signing_key_from_skey(s: &str, sig_type: u8) -> Result<(String, u32, SigningKey), NoteError> {
    let rest = s.strip_prefix("PRIVATE+KEY+").ok_or(NoteError::MalformedKey)?;
    let k = parse_key_string(rest)?;
    if k.sig_type != sig_type {
        return Err(NoteError::WrongKeyType { expected: sig_type, actual: k.sig_type });
    }
    let seed: [u8; 32] = k.material.as_slice().try_into().map_err(|_| NoteError::InvalidKeyMaterial)?;
    let key = SigningKey::from_bytes(&seed);
    let computed = key_id(k.name, sig_type, key.verifying_key().as_bytes());
    if computed != k.key_id {
        return Err(NoteError::KeyIdMismatch { stated: k.key_id, computed });
    }
    Ok((k.name.to_owned(), k.key_id, key))
}

/// Builds an Ed25519 public key from a verifier key string, checking type byte and key ID.
pub(crate) fn verifying_key_from_vkey(s: &str, sig_type: u8) -> Result<(String, u32, VerifyingKey), NoteError> {
    let k = parse_key_string(s)?;
    if k.sig_type != sig_type {
        return Err(NoteError::WrongKeyType { expected: sig_type, actual: k.sig_type });
    }
    let bytes: [u8; 32] = k.material.as_slice().try_into().map_err(|_| NoteError::InvalidKeyMaterial)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| NoteError::InvalidKeyMaterial)?;
    let computed = key_id(k.name, sig_type, &bytes);
    if computed != k.key_id {
        return Err(NoteError::KeyIdMismatch { stated: k.key_id, computed });
    }
    Ok((k.name.to_owned(), k.key_id, key))
}

/// `ed25519.Verify` with the strict checks of RFC 8032 (canonical `S`, no small-order keys).
pub(crate) fn ed25519_verify(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| key.verify_strict(msg, &s).is_ok())
}

/// An Ed25519 note signing key (signature type 0x01). Its secret is zeroized on drop and
/// never printed.
pub struct Signer {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}+{:08x})", self.name, self.key_id)
    }
}

impl Signer {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName { name: name.to_owned() });
        }
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, SIG_TYPE_ED25519, key.verifying_key().as_bytes());
        Ok(Signer { name: name.to_owned(), key_id, key })
    }

    /// A signer from `PRIVATE+KEY+name+hexid+base64(0x01 || seed)` (Go sumdb note format).
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let (name, key_id, key) = signing_key_from_skey(skey.trim_end(), SIG_TYPE_ED25519)?;
        Ok(Signer { name, key_id, key })
    }

    /// The secret key string `PRIVATE+KEY+name+hexid+base64(0x01 || seed)`: keep it secret.
    pub fn to_skey(&self) -> String {
        format!("PRIVATE+KEY+{}", format_key_string(&self.name, self.key_id, SIG_TYPE_ED25519, self.key.as_bytes()))
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier { name: self.name.clone(), key_id: self.key_id, key: self.key.verifying_key() }
    }
}

impl NoteSigner for Signer {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn sign(&self, text: &str) -> Vec<u8> {
        self.key.sign(text.as_bytes()).to_bytes().to_vec()
    }
}

/// An Ed25519 note verifier key (signature type 0x01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// A verifier from a name and an Ed25519 public key.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName { name: name.to_owned() });
        }
        Ok(Verifier { name: name.to_owned(), key_id: key_id(name, SIG_TYPE_ED25519, key.as_bytes()), key })
    }

    /// A verifier from `name+hexid+base64(0x01 || pubkey)`.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let (name, key_id, key) = verifying_key_from_vkey(vkey.trim_end(), SIG_TYPE_ED25519)?;
        Ok(Verifier { name, key_id, key })
    }

    /// The verifier key string `name+hexid+base64(0x01 || pubkey)`.
    pub fn to_vkey(&self) -> String {
        format_key_string(&self.name, self.key_id, SIG_TYPE_ED25519, self.key.as_bytes())
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl NoteVerifier for Verifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, text: &str, signature: &[u8]) -> bool {
        ed25519_verify(&self.key, text.as_bytes(), signature)
    }
}

/// A parsed, not yet verified, signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// A note whose signatures were checked: the text may be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The note text, with its final newline.
    pub text: String,
    /// Signatures by known keys, all valid, in note order.
    pub verified: Vec<NoteSignature>,
    /// Signatures by unknown keys, not checked.
    pub unverified: Vec<NoteSignature>,
}

fn check_characters(s: &str) -> Result<(), NoteError> {
    match s.bytes().enumerate().find(|(_, b)| *b < 0x20 && *b != b'\n') {
        Some((offset, byte)) => Err(NoteError::ControlCharacter { byte, offset }),
        None => Ok(()),
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    check_characters(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotNewlineTerminated);
    }
    Ok(())
}

impl Note {
    /// Parses a signed note (signed-note "Format"): UTF-8 without control characters other
    /// than newline, the text up to the last blank line, then 1 to 100 signature lines.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        check_characters(note)?;
        let split = note.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::MissingSignatures);
        }
        let body = sigs.strip_suffix('\n').ok_or(NoteError::MissingFinalNewline)?;
        let mut signatures = Vec::new();
        for (i, line) in body.split('\n').enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
            }
            signatures.push(NoteSignature::parse_line(line, i + 1)?);
        }
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// Parses a signed note from bytes, which must be UTF-8.
    pub fn parse_bytes(note: &[u8]) -> Result<Self, NoteError> {
        Note::parse(std::str::from_utf8(note).map_err(|_| NoteError::NotUtf8)?)
    }

    /// A note with no signatures yet; `text` must end in a newline.
    pub fn unsigned(text: &str) -> Result<Self, NoteError> {
        check_text(text)?;
        Ok(Note { text: text.to_owned(), signatures: Vec::new() })
    }

    /// The text, unverified.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signatures, unverified.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line made elsewhere (such as a witness cosignature), replacing any
    /// earlier one with the same name and key ID.
    pub fn add_signature(&mut self, sig: NoteSignature) -> Result<(), NoteError> {
        if !is_valid_name(&sig.name) {
            return Err(NoteError::InvalidName { name: sig.name });
        }
        self.signatures.retain(|s| (s.name.as_str(), s.key_id) != (sig.name.as_str(), sig.key_id));
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
        }
        self.signatures.push(sig);
        Ok(())
    }

    /// Signs the text with `signer` and adds the signature.
    pub fn sign_with(&mut self, signer: &dyn NoteSigner) -> Result<(), NoteError> {
        let signature = signer.sign(&self.text);
        self.add_signature(NoteSignature { name: signer.name().to_owned(), key_id: signer.key_id(), signature })
    }

    /// Checks the signatures against `verifiers` (signed-note "Signatures"): signatures by
    /// unknown keys are set aside, every signature by a known key must verify, and at least
    /// one must. Repeated signatures by one key and repeated unknown lines are dropped.
    pub fn verify(&self, verifiers: &[&dyn NoteVerifier]) -> Result<Opened, NoteError> {
        let mut verified: Vec<NoteSignature> = Vec::new();
        let mut unverified: Vec<NoteSignature> = Vec::new();
        for sig in &self.signatures {
            let mut known = verifiers.iter().filter(|v| v.name() == sig.name && v.key_id() == sig.key_id);
            let Some(v) = known.next() else {
                if !unverified.contains(sig) {
                    unverified.push(sig.clone());
                }
                continue;
            };
            if known.next().is_some() {
                return Err(NoteError::AmbiguousVerifier { name: sig.name.clone(), key_id: sig.key_id });
            }
            if verified.iter().any(|s| s.name == sig.name && s.key_id == sig.key_id) {
                continue;
            }
            if !v.verify(&self.text, &sig.signature) {
                return Err(NoteError::InvalidSignature { name: sig.name.clone(), key_id: sig.key_id });
            }
            verified.push(sig.clone());
        }
        if verified.is_empty() {
            return Err(NoteError::NoVerifiedSignature);
        }
        Ok(Opened { text: self.text.clone(), verified, unverified })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        self.signatures.iter().try_for_each(|s| f.write_str(&s.line()))
    }
}

/// Signs `text` with every signer and returns the signed note (signed-note "Format").
pub fn sign(text: &str, signers: &[&dyn NoteSigner]) -> Result<String, NoteError> {
    if signers.is_empty() {
        return Err(NoteError::MissingSignatures);
    }
    let mut note = Note::unsigned(text)?;
    for s in signers {
        note.sign_with(*s)?;
    }
    Ok(note.to_string())
}

/// Parses `note` and checks its signatures against `verifiers` (see [`Note::verify`]).
pub fn open(note: &str, verifiers: &[&dyn NoteVerifier]) -> Result<Opened, NoteError> {
    Note::parse(note)?.verify(verifiers)
}

#[cfg(test)]
mod tests;
