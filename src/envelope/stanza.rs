//! Recipient stanzas: what a parsed header holds, and the keyless grammar of known types.
//!
//! The shapes come from the age spec (c2sp.org/age) and the reference implementations:
//! `X25519` (age v1), `scrypt` (passphrase), `ssh-ed25519` and `ssh-rsa` (age's SSH
//! recipients), `mlkem768x25519` (the hybrid post-quantum type), and the tagged types
//! `p256tag` / `mlkem768p256tag` (HPKE, shapes as in the `age` crate 0.12).

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD_NO_PAD;

use super::EnvelopeError;

/// Length of an X25519 share or key.
const X25519_LEN: usize = 32;
/// Length of an ML-KEM-768 ciphertext.
const MLKEM768_CT_LEN: usize = 1088;
/// Length of an uncompressed SEC 1 P-256 point (the HPKE encapsulation of DHKEM(P-256)).
const P256_POINT_LEN: usize = 65;
/// Length of the body of every native stanza: a 16-byte file key sealed with a 16-byte tag.
const WRAPPED_KEY_LEN: usize = 32;
/// Length of the SSH key tag and of the tagged types' stanza tag.
const TAG_LEN: usize = 4;
/// Length of an scrypt salt.
const SCRYPT_SALT_LEN: usize = 16;
/// Largest scrypt work factor (log2 N) the reference implementations accept by default.
pub(super) const SCRYPT_MAX_WORK_FACTOR: u32 = 22;

/// The parsed binary header of an age file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Whether the upload was ASCII-armoured.
    pub armored: bool,
    /// The recipient stanzas, in file order (grease included).
    pub stanzas: Vec<Stanza>,
    /// Bytes of the binary header, including the `---` MAC line and its newline.
    pub header_len: usize,
    /// Bytes of the file as uploaded (and stored) that hold the whole header and as little as
    /// possible past it: `header_len` for a binary file; for armour, everything through the
    /// base64 group of 4 characters that encodes the header's last byte (which may carry up
    /// to 2 bytes of the payload's nonce, never of a chunk).
    pub stored_len: u64,
}

impl Header {
    /// The stanzas that address a recipient: all but `*-grease` stanzas.
    pub fn recipient_stanzas(&self) -> impl Iterator<Item = &Stanza> {
        self.stanzas.iter().filter(|s| s.kind != StanzaKind::Grease)
    }

    /// Whether every recipient stanza (there is at least one) is of a hybrid post-quantum type,
    /// so that a quantum computer breaking X25519 does not open the file.
    pub fn is_post_quantum(&self) -> bool {
        self.recipient_stanzas().next().is_some() && self.recipient_stanzas().all(|s| s.kind.is_post_quantum())
    }

    /// Whether the file is passphrase-encrypted (has an `scrypt` stanza).
    pub fn has_passphrase(&self) -> bool {
        self.stanzas.iter().any(|s| s.kind == StanzaKind::Scrypt)
    }
}

/// One recipient stanza of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// The recognised type.
    pub kind: StanzaKind,
    /// The type string as written in the file.
    pub tag: String,
    /// The arguments after the type, as written.
    pub args: Vec<String>,
    /// Decoded length of the body in bytes.
    pub body_len: usize,
}

/// The stanza types the inspector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    /// `X25519`: the native public-key type.
    X25519,
    /// `scrypt`: a passphrase.
    Scrypt,
    /// `ssh-ed25519`: an SSH Ed25519 key.
    SshEd25519,
    /// `ssh-rsa`: an SSH RSA key.
    SshRsa,
    /// `mlkem768x25519`: the hybrid post-quantum type.
    MlKem768X25519,
    /// `p256tag`: the tagged P-256 type for hardware keys.
    P256Tag,
    /// `mlkem768p256tag`: the tagged hybrid post-quantum type.
    MlKem768P256Tag,
    /// `*-grease`: random stanzas implementations add to keep parsers tolerant.
    Grease,
    /// Any other type (plugins, future types): reported, left to policy.
    Unknown,
}

impl StanzaKind {
    /// The kind of a stanza type string (case-sensitive, as the spec requires).
    pub fn of(tag: &str) -> Self {
        match tag {
            "X25519" => Self::X25519,
            "scrypt" => Self::Scrypt,
            "ssh-ed25519" => Self::SshEd25519,
            "ssh-rsa" => Self::SshRsa,
            "mlkem768x25519" => Self::MlKem768X25519,
            "p256tag" => Self::P256Tag,
            "mlkem768p256tag" => Self::MlKem768P256Tag,
            t if t.ends_with("-grease") => Self::Grease,
            _ => Self::Unknown,
        }
    }

    /// Whether the type resists a quantum adversary (hybrid ML-KEM types).
    pub fn is_post_quantum(self) -> bool {
        matches!(self, Self::MlKem768X25519 | Self::MlKem768P256Tag)
    }
}

/// Whether `s` is a non-empty age "arbitrary string" (VCHAR: `!` to `~`).
pub(super) fn is_arbitrary_string(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// Decodes a canonical unpadded standard base64 argument, requiring `len` bytes.
fn decode_exact(arg: &str, len: usize) -> Option<Vec<u8>> {
    BASE64_STANDARD_NO_PAD.decode(arg).ok().filter(|v| v.len() == len)
}

/// Checks a finished stanza against the grammar of its type.
///
/// Returns the X25519 shares the caller must test for small order. `index` is 1-based.
pub(super) fn check(stanza: &Stanza, index: usize) -> Result<Vec<[u8; 32]>, EnvelopeError> {
    let bad = |reason: &'static str| EnvelopeError::MalformedStanza { stanza: index, tag: stanza.tag.clone(), reason };
    let args = &stanza.args;
    let arity = |n: usize, reason: &'static str| {
        if args.len() == n { Ok(()) } else { Err(bad(reason)) }
    };
    let body = |n: usize, reason: &'static str| {
        if stanza.body_len == n { Ok(()) } else { Err(bad(reason)) }
    };
    let share = |bytes: &[u8]| -> Result<[u8; 32], EnvelopeError> {
        bytes.try_into().map_err(|_| bad("the X25519 share is not 32 bytes"))
    };

    match stanza.kind {
        StanzaKind::X25519 => {
            arity(1, "expected exactly one argument, the ephemeral share")?;
            let s = decode_exact(&args[0], X25519_LEN)
                .ok_or_else(|| bad("the share is not canonical base64 of 32 bytes"))?;
            body(WRAPPED_KEY_LEN, "the body is not a 32-byte wrapped file key")?;
            Ok(vec![share(&s)?])
        }
        StanzaKind::Scrypt => {
            arity(2, "expected exactly two arguments, salt and work factor")?;
            decode_exact(&args[0], SCRYPT_SALT_LEN)
                .ok_or_else(|| bad("the salt is not canonical base64 of 16 bytes"))?;
            parse_work_factor(&args[1])
                .ok_or_else(|| bad("the work factor is not a decimal between `1` and `22` without leading zeros"))?;
            body(WRAPPED_KEY_LEN, "the body is not a 32-byte wrapped file key")?;
            Ok(Vec::new())
        }
        StanzaKind::SshEd25519 => {
            arity(2, "expected exactly two arguments, key tag and ephemeral share")?;
            decode_exact(&args[0], TAG_LEN).ok_or_else(|| bad("the key tag is not canonical base64 of 4 bytes"))?;
            let s = decode_exact(&args[1], X25519_LEN)
                .ok_or_else(|| bad("the share is not canonical base64 of 32 bytes"))?;
            body(WRAPPED_KEY_LEN, "the body is not a 32-byte wrapped file key")?;
            Ok(vec![share(&s)?])
        }
        StanzaKind::SshRsa => {
            arity(1, "expected exactly one argument, the key tag")?;
            decode_exact(&args[0], TAG_LEN).ok_or_else(|| bad("the key tag is not canonical base64 of 4 bytes"))?;
            if stanza.body_len == 0 {
                return Err(bad("the body is empty"));
            }
            Ok(Vec::new())
        }
        StanzaKind::MlKem768X25519 => {
            arity(1, "expected exactly one argument, the encapsulation")?;
            let enc = decode_exact(&args[0], MLKEM768_CT_LEN + X25519_LEN)
                .ok_or_else(|| bad("the encapsulation is not canonical base64 of 1120 bytes"))?;
            body(WRAPPED_KEY_LEN, "the body is not a 32-byte wrapped file key")?;
            Ok(vec![share(&enc[MLKEM768_CT_LEN..])?])
        }
        StanzaKind::P256Tag | StanzaKind::MlKem768P256Tag => {
            let (enc_len, reason) = if stanza.kind == StanzaKind::P256Tag {
                (P256_POINT_LEN, "the encapsulation is not canonical base64 of 65 bytes")
            } else {
                (MLKEM768_CT_LEN + P256_POINT_LEN, "the encapsulation is not canonical base64 of 1153 bytes")
            };
            arity(2, "expected exactly two arguments, tag and encapsulation")?;
            decode_exact(&args[0], TAG_LEN).ok_or_else(|| bad("the tag is not canonical base64 of 4 bytes"))?;
            decode_exact(&args[1], enc_len).ok_or_else(|| bad(reason))?;
            body(WRAPPED_KEY_LEN, "the body is not a 32-byte wrapped file key")?;
            Ok(Vec::new())
        }
        StanzaKind::Grease | StanzaKind::Unknown => Ok(Vec::new()),
    }
}

/// Most bytes in a grease stanza's body: age implementations add 0 to 99 random bytes.
pub(super) const GREASE_MAX_BODY: usize = 99;
/// Most characters before `-grease` in a grease stanza's type, and in each of its arguments.
const GREASE_MAX_WORD: usize = 8;
/// Most arguments of a grease stanza.
const GREASE_MAX_ARGS: usize = 4;
/// The false-refusal target of the grease body's randomness tests, as for the payload's.
const GREASE_BITS: f64 = 48.0;

/// Checks a grease stanza (`*-grease`, which rage adds to every file to keep parsers tolerant)
/// against what grease needs, so that it cannot carry data past the gate: a type of at most 8
/// characters before `-grease`, at most 4 arguments of at most 8 characters, a body of at most
/// 99 bytes that passes the payload's randomness tests. What is left is at most 40 printable
/// characters and a short body that looks random: see the README's threat model.
pub(super) fn check_grease(stanza: &Stanza, index: usize, body: &[u8]) -> Result<(), EnvelopeError> {
    let bad = |reason: &'static str| EnvelopeError::MalformedStanza { stanza: index, tag: stanza.tag.clone(), reason };
    let prefix = stanza.tag.strip_suffix("-grease").unwrap_or(&stanza.tag);
    if prefix.len() > GREASE_MAX_WORD {
        return Err(bad("a grease stanza's type is longer than grease needs (8 characters and `-grease`)"));
    }
    if stanza.args.len() > GREASE_MAX_ARGS || stanza.args.iter().any(|a| a.len() > GREASE_MAX_WORD) {
        return Err(bad("a grease stanza has more or longer arguments than grease needs (4 of 8 characters)"));
    }
    if body.len() > GREASE_MAX_BODY {
        return Err(bad("a grease stanza's body is longer than grease needs (99 bytes)"));
    }
    let mut counts = [0u64; 256];
    for &b in body {
        counts[usize::from(b)] += 1;
    }
    super::random::check_counts(&counts, body.len() as u64, GREASE_BITS)
        .map_err(|_| bad("a grease stanza's body does not look like random bytes"))
}

/// Parses an scrypt work factor: decimal, no sign or leading zero, 1 to 22.
fn parse_work_factor(s: &str) -> Option<u32> {
    let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || s.starts_with('0') || s.len() > 2 {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| (1..=SCRYPT_MAX_WORK_FACTOR).contains(n))
}

/// Whether X25519(random scalar, share) is all zeros, i.e. the share has small order.
///
/// Clamping makes every scalar a multiple of the cofactor 8, so the result is zero exactly
/// for the points of order 1, 2, 4 or 8 (and their non-canonical encodings).
pub(crate) fn is_small_order(scalar: [u8; 32], share: [u8; 32]) -> bool {
    x25519_dalek::x25519(scalar, share) == [0u8; 32]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_case_sensitive_and_grease_is_a_suffix() {
        assert_eq!(StanzaKind::of("X25519"), StanzaKind::X25519);
        assert_eq!(StanzaKind::of("x25519"), StanzaKind::Unknown);
        assert_eq!(StanzaKind::of("a%b-grease"), StanzaKind::Grease);
        assert_eq!(StanzaKind::of("-grease-x"), StanzaKind::Unknown);
        assert!(StanzaKind::MlKem768X25519.is_post_quantum());
    }

    #[test]
    fn work_factor_grammar_matches_the_reference() {
        for ok in ["1", "9", "18", "22"] {
            assert!(parse_work_factor(ok).is_some(), "{ok}");
        }
        for bad in ["", "0", "018", "+18", "-1", "0x12", "23", "1a", "99999999999999999999"] {
            assert_eq!(parse_work_factor(bad), None, "{bad}");
        }
    }

    #[test]
    fn small_order_points_are_caught_and_a_basepoint_is_not() {
        let scalar = rand::random::<[u8; 32]>();
        let mut base = [0u8; 32];
        base[0] = 9;
        assert!(!is_small_order(scalar, base));
        assert!(is_small_order(scalar, [0u8; 32]));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(is_small_order(scalar, one));
    }
}
