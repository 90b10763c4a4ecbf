//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): origin, tree size and root hash
//! as the text of a signed note.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::merkle::Hash;
use super::note::{self, Note, NoteError, NoteSigner, NoteVerifier, Opened, Verifier};

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The signed note around the checkpoint was refused.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// Fewer than the three mandatory lines, or no final newline.
    #[error("checkpoint needs origin, size and root hash lines, each ending in a newline")]
    Truncated,
    /// An empty origin line.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// A control character in a line.
    #[error("checkpoint line {line} contains a control character")]
    ControlCharacter { line: usize },
    /// A size that is not a decimal number without leading zeros.
    #[error("checkpoint size `{text}` is not a decimal number without leading zeros")]
    BadSize { text: String },
    /// A root hash that is not the base64 of 32 bytes.
    #[error("checkpoint root hash `{text}` is not the base64 of 32 bytes")]
    BadRootHash { text: String },
    /// An empty extension line.
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtension { line: usize },
    /// The log's key signed nothing, or its signature is missing.
    #[error("checkpoint is not signed by the log key `{name}`")]
    MissingLogSignature { name: String },
    /// The origin line differs from the log key's name.
    #[error("checkpoint origin `{origin}` does not match the log key name `{key_name}`")]
    OriginMismatch { origin: String, key_name: String },
}

/// A checkpoint: the tree head of a log at one size (tlog-checkpoint "Note text").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

fn check_line(line: &str, number: usize) -> Result<(), CheckpointError> {
    if line.chars().any(char::is_control) {
        return Err(CheckpointError::ControlCharacter { line: number });
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        Checkpoint::with_extensions(origin, size, root, Vec::new())
    }

    /// A checkpoint with extension lines (not recommended by the spec, as monitors cannot
    /// audit them).
    pub fn with_extensions(
        origin: &str,
        size: u64,
        root: Hash,
        extensions: Vec<String>,
    ) -> Result<Self, CheckpointError> {
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        check_line(origin, 1)?;
        for (i, ext) in extensions.iter().enumerate() {
            if ext.is_empty() {
                return Err(CheckpointError::EmptyExtension { line: i + 4 });
            }
            check_line(ext, i + 4)?;
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root, extensions })
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root hash.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The extension lines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The note text: origin, size, base64 root hash, extension lines, each ending in newline.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root.0));
        for ext in &self.extensions {
            s.push_str(ext);
            s.push('\n');
        }
        s
    }

    /// Parses note text strictly (tlog-checkpoint "Note text").
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::Truncated)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::Truncated);
        };
        check_line(size, 2)?;
        check_line(root, 3)?;
        let bad_size = || CheckpointError::BadSize { text: (*size).to_owned() };
        let canonical =
            !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (*size == "0" || !size.starts_with('0'));
        let size: u64 = if canonical { size.parse().map_err(|_| bad_size())? } else { return Err(bad_size()) };
        let root = B64
            .decode(root)
            .ok()
            .and_then(|b| Hash::from_slice(&b))
            .ok_or_else(|| CheckpointError::BadRootHash { text: (*root).to_owned() })?;
        Checkpoint::with_extensions(origin, size, root, extensions.iter().map(|e| (*e).to_owned()).collect())
    }

    /// Signs the checkpoint, returning the signed note.
    pub fn sign(&self, signers: &[&dyn NoteSigner]) -> Result<String, CheckpointError> {
        Ok(note::sign(&self.to_text(), signers)?)
    }

    /// Opens a signed checkpoint: `log` must have signed it and be named after its origin;
    /// signatures by `others` (such as witnesses) must be valid too, and unknown ones are
    /// ignored.
    pub fn open(
        signed: &str,
        log: &Verifier,
        others: &[&dyn NoteVerifier],
    ) -> Result<(Checkpoint, Opened), CheckpointError> {
        let mut verifiers: Vec<&dyn NoteVerifier> = vec![log];
        verifiers.extend_from_slice(others);
        Checkpoint::open_note(&Note::parse(signed)?, log, &verifiers)
    }

    /// As [`Checkpoint::open`], for a parsed note and a complete list of verifiers that
    /// includes `log`.
    pub fn open_note(
        note: &Note,
        log: &Verifier,
        verifiers: &[&dyn NoteVerifier],
    ) -> Result<(Checkpoint, Opened), CheckpointError> {
        let opened = note.verify(verifiers)?;
        let log_name = NoteVerifier::name(log);
        let signed_by_log = opened.verified.iter().any(|s| s.name == log_name && s.key_id == NoteVerifier::key_id(log));
        if !signed_by_log {
            return Err(CheckpointError::MissingLogSignature { name: log_name.to_owned() });
        }
        let checkpoint = Checkpoint::parse(&opened.text)?;
        if checkpoint.origin != log_name {
            return Err(CheckpointError::OriginMismatch { origin: checkpoint.origin, key_name: log_name.to_owned() });
        }
        Ok((checkpoint, opened))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparency::tlog::merkle::empty_root;
    use crate::transparency::tlog::note::Signer;
    use proptest::prelude::*;

    const SPEC_EXAMPLE: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn the_spec_example_parses_and_formats_back() {
        let c = Checkpoint::parse(SPEC_EXAMPLE).unwrap();
        assert_eq!((c.origin(), c.size()), ("example.com/behind-the-sofa", 20_852_163));
        assert_eq!(c.to_text(), SPEC_EXAMPLE);
    }

    #[test]
    fn malformed_checkpoints_are_refused_precisely() {
        let root = B64.encode([0u8; 32]);
        let cases = [
            ("o\n1\n".to_owned(), CheckpointError::Truncated),
            (format!("o\n1\n{root}"), CheckpointError::Truncated),
            (format!("\n1\n{root}\n"), CheckpointError::EmptyOrigin),
            (format!("o\n01\n{root}\n"), CheckpointError::BadSize { text: "01".into() }),
            (format!("o\n+1\n{root}\n"), CheckpointError::BadSize { text: "+1".into() }),
            (format!("o\n\n{root}\n"), CheckpointError::BadSize { text: "".into() }),
            (
                format!("o\n18446744073709551616\n{root}\n"),
                CheckpointError::BadSize { text: "18446744073709551616".into() },
            ),
            ("o\n1\nAAAA\n".to_owned(), CheckpointError::BadRootHash { text: "AAAA".into() }),
            (
                format!("o\n1\n{}\n", root.trim_end_matches('=')),
                CheckpointError::BadRootHash { text: root.trim_end_matches('=').into() },
            ),
            (format!("o\n1\n{root}\next\n\n"), CheckpointError::EmptyExtension { line: 5 }),
            (format!("o\t\n1\n{root}\n"), CheckpointError::ControlCharacter { line: 1 }),
        ];
        for (text, want) in cases {
            assert_eq!(Checkpoint::parse(&text), Err(want), "{text:?}");
        }
        assert_eq!(Checkpoint::parse(&format!("o\n0\n{root}\n")).map(|c| c.size()), Ok(0));
    }

    #[test]
    fn open_requires_the_log_signature_and_a_matching_origin() {
        let log = Signer::from_seed("example.com/log", &[7; 32]).unwrap();
        let other = Signer::from_seed("example.com/other", &[8; 32]).unwrap();
        let c = Checkpoint::new("example.com/log", 0, empty_root()).unwrap();
        let signed = c.sign(&[&log]).unwrap();
        let (opened, _) = Checkpoint::open(&signed, &log.verifier(), &[]).unwrap();
        assert_eq!(opened, c);
        let by_other = c.sign(&[&other]).unwrap();
        assert_eq!(
            Checkpoint::open(&by_other, &log.verifier(), &[&other.verifier()]),
            Err(CheckpointError::MissingLogSignature { name: "example.com/log".into() })
        );
        let misnamed = Checkpoint::new("example.com/other", 0, empty_root()).unwrap().sign(&[&log]).unwrap();
        assert_eq!(
            Checkpoint::open(&misnamed, &log.verifier(), &[]),
            Err(CheckpointError::OriginMismatch {
                origin: "example.com/other".into(),
                key_name: "example.com/log".into()
            })
        );
    }

    proptest! {
        #[test]
        fn checkpoints_round_trip(
            origin in "[a-z0-9./-]{1,30}",
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            extensions in prop::collection::vec("[ -~]{1,20}", 0..3),
        ) {
            let c = Checkpoint::with_extensions(&origin, size, Hash(root), extensions).unwrap();
            prop_assert_eq!(Checkpoint::parse(&c.to_text()), Ok(c));
        }
    }
}
