//! Why an upload is not an acceptable age envelope.

/// A refusal from the envelope inspector.
///
/// Each variant carries the facts a user needs to find the problem; [`EnvelopeError::reason`]
/// gives a stable machine-readable code for logs, metrics and the HTTP edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The upload has no bytes (or only whitespace).
    #[error("the upload is empty")]
    Empty,
    /// The upload does not start like an age file, binary or armoured.
    #[error("not an age file: it does not start with `age-encryption.org/` or an age armour line")]
    NotAge,
    /// The first line names an age version other than `v1`.
    #[error("unsupported age version: the first line is not `age-encryption.org/v1`")]
    UnsupportedVersion,
    /// The ASCII armour around the file is malformed.
    #[error("malformed age armour: {reason}")]
    Armor {
        /// What is wrong with the armour.
        reason: &'static str,
    },
    /// The binary header breaks the age grammar.
    #[error("malformed age header at line {line}: {reason}")]
    MalformedHeader {
        /// 1-based line number in the binary header.
        line: usize,
        /// What is wrong with the line.
        reason: &'static str,
    },
    /// A stanza of a known type does not have the shape its type requires.
    #[error("malformed recipient stanza {stanza} (`{tag}`): {reason}")]
    MalformedStanza {
        /// 1-based stanza index in the header.
        stanza: usize,
        /// The stanza type.
        tag: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The binary header is longer than the configured limit.
    #[error("the age header is longer than {limit} bytes")]
    HeaderTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The header has more stanzas than the configured limit.
    #[error("the age header has more than {limit} stanzas")]
    TooManyStanzas {
        /// The limit on stanzas.
        limit: usize,
    },
    /// A header line is longer than the configured limit.
    #[error("a line of the age header is longer than {limit} bytes")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// An X25519 share is of small order, so the wrapped file key would not be secret.
    #[error("recipient stanza {stanza} has an X25519 share of small order")]
    SmallOrderShare {
        /// 1-based stanza index in the header.
        stanza: usize,
    },
    /// The payload length cannot be produced by age's STREAM encryption.
    #[error("a payload of {len} bytes is impossible for age: {}", stream_hint(*len))]
    PayloadLength {
        /// Payload bytes after the header.
        len: u64,
    },
    /// The payload is measurably not random, so it cannot be age ciphertext.
    #[error("the payload is not ciphertext: {reason}")]
    NotRandom {
        /// Which test refused it.
        reason: &'static str,
    },
    /// The payload starts with the signature of a known plaintext file format.
    #[error("the payload is not ciphertext: it is a `{kind}` file behind an age header")]
    FileSignature {
        /// The recognised file format.
        kind: &'static str,
    },
}

impl EnvelopeError {
    /// A stable snake_case code naming the kind of refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotAge => "not_age",
            Self::UnsupportedVersion => "unsupported_version",
            Self::Armor { .. } => "armor",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::MalformedStanza { .. } => "malformed_stanza",
            Self::HeaderTooLarge { .. } => "header_too_large",
            Self::TooManyStanzas { .. } => "too_many_stanzas",
            Self::LineTooLong { .. } => "line_too_long",
            Self::SmallOrderShare { .. } => "small_order_share",
            Self::PayloadLength { .. } => "payload_length",
            Self::NotRandom { .. } => "not_random",
            Self::FileSignature { .. } => "file_signature",
        }
    }
}

/// Explains which STREAM rule a payload length breaks (see `payload::stream_chunks`).
fn stream_hint(len: u64) -> &'static str {
    super::payload::stream_violation(len).unwrap_or("it is not a 16-byte nonce followed by whole STREAM chunks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_lowercase_line_without_final_period() {
        let all = [
            EnvelopeError::Empty,
            EnvelopeError::NotAge,
            EnvelopeError::UnsupportedVersion,
            EnvelopeError::Armor { reason: "x" },
            EnvelopeError::MalformedHeader { line: 2, reason: "x" },
            EnvelopeError::MalformedStanza { stanza: 1, tag: "X25519".into(), reason: "x" },
            EnvelopeError::HeaderTooLarge { limit: 1 },
            EnvelopeError::TooManyStanzas { limit: 1 },
            EnvelopeError::LineTooLong { limit: 1 },
            EnvelopeError::SmallOrderShare { stanza: 1 },
            EnvelopeError::PayloadLength { len: 3 },
            EnvelopeError::NotRandom { reason: "x" },
            EnvelopeError::FileSignature { kind: "zip" },
        ];
        for e in all {
            let m = e.to_string();
            assert!(!m.contains('\n') && !m.ends_with('.'), "{m}");
            assert!(m.starts_with(|c: char| c.is_ascii_lowercase()), "{m}");
            assert!(!e.reason().is_empty());
        }
    }
}
