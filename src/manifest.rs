//! The sender's manifest: what a sender signs about an upload, and what a recipient checks
//! before decrypting (DESIGN section 6, sender authentication).
//!
//! Version 2 is signed before release and travels with the upload, so the gateway checks it
//! before any link works:
//!
//! ```text
//! sealpost.manifest/v2
//! sender ORG/NAME
//! digest sha256:HEX            (the whole age file)
//! classification OFFICIAL-SENSITIVE
//! expires 259200               (the links' lifetime in whole seconds)
//! recipient ORG/NAME           (one line per addressed recipient, sorted bytewise, each once)
//! ```
//!
//! Version 1 (`transfer ID`, `digest`, `recipient` lines) was signed after the upload and posted
//! to `POST /api/v1/transfers/{id}/manifest`; it is still read for transfers made that way.
//!
//! Both are parsed strictly: every line ends in one `\n` (no `\r`, no blank line), and only the
//! exact canonical text is accepted (parse, render again, compare bytes). The sender signs exactly
//! those bytes with Ed25519.

use crate::model::{Classification, UserRef};
use crate::wire::Digest;

/// The first line of a version 1 manifest.
pub const VERSION_V1: &str = "sealpost.manifest/v1";

/// The first line of a version 2 manifest.
pub const VERSION_V2: &str = "sealpost.manifest/v2";

/// Why a text is not a canonical manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes are not UTF-8.
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// The first line names no version this gateway reads.
    #[error("its first line is not `{VERSION_V2}`")]
    Version,
    /// A line is missing or is not what its place requires.
    #[error("line {line} must be `{expected}`")]
    Line {
        /// The 1-based line number.
        line: usize,
        /// What that line must look like.
        expected: &'static str,
    },
    /// No `recipient` line.
    #[error("it names no recipient")]
    NoRecipient,
    /// The recipients are out of bytewise order, or one is named twice.
    #[error("its recipients must be sorted bytewise, each named once")]
    RecipientOrder,
    /// Everything parses, but rendering it again gives other bytes (a `\r`, a leading zero, a
    /// missing final newline…).
    #[error("it is not in canonical form (every line ends in a single `\\n`, no `\\r`, no blank line)")]
    NotCanonical,
}

/// A version 2 manifest: who sends which ciphertext to whom, at what marking, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestV2 {
    /// The uploader.
    pub sender: UserRef,
    /// SHA-256 of the whole age file.
    pub digest: Digest,
    /// The classification, as the gateway resolves it.
    pub classification: Classification,
    /// The links' lifetime in whole seconds, as the gateway resolves the `expires` parameter.
    pub expires: u64,
    /// The addressed recipients, sorted bytewise by `ORG/NAME`, each once.
    pub recipients: Vec<UserRef>,
}

/// Sorts users bytewise by their `ORG/NAME` spelling (not by organisation, then name: `a.b/x`
/// comes before `a/x`) and drops repeats.
fn sorted(users: impl IntoIterator<Item = UserRef>) -> Vec<UserRef> {
    let mut users: Vec<UserRef> = users.into_iter().collect();
    users.sort_by_cached_key(ToString::to_string);
    users.dedup();
    users
}

impl ManifestV2 {
    /// A manifest; the recipients are sorted and repeats dropped.
    pub fn new(
        sender: UserRef,
        digest: Digest,
        classification: Classification,
        expires: u64,
        recipients: impl IntoIterator<Item = UserRef>,
    ) -> Self {
        Self { sender, digest, classification, expires, recipients: sorted(recipients) }
    }

    /// The canonical text: exactly the bytes the sender signs.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{VERSION_V2}\nsender {}\ndigest {}\nclassification {}\nexpires {}\n",
            self.sender, self.digest, self.classification, self.expires
        );
        for r in &self.recipients {
            out.push_str("recipient ");
            out.push_str(&r.to_string());
            out.push('\n');
        }
        out
    }

    /// Parses a manifest strictly: only the exact canonical text is accepted.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let body = text.strip_suffix('\n').ok_or(ManifestError::NotCanonical)?;
        let mut lines = body.split('\n');
        if lines.next() != Some(VERSION_V2) {
            return Err(ManifestError::Version);
        }
        let mut field = |line: usize, key: &str, expected: &'static str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key))
                .and_then(|v| v.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or(ManifestError::Line { line, expected })
        };
        const SENDER: &str = "sender ORG/NAME";
        const DIGEST: &str = "digest sha256:<64 lowercase hex>";
        const CLASSIFICATION: &str = "classification OFFICIAL|OFFICIAL-SENSITIVE|SECRET|TOP-SECRET";
        const EXPIRES: &str = "expires <seconds>";
        let sender =
            field(2, "sender", SENDER)?.parse().map_err(|_| ManifestError::Line { line: 2, expected: SENDER })?;
        let digest =
            field(3, "digest", DIGEST)?.parse().map_err(|_| ManifestError::Line { line: 3, expected: DIGEST })?;
        let classification = field(4, "classification", CLASSIFICATION)?
            .parse()
            .map_err(|_| ManifestError::Line { line: 4, expected: CLASSIFICATION })?;
        let expires = field(5, "expires", EXPIRES)?
            .parse::<u64>()
            .map_err(|_| ManifestError::Line { line: 5, expected: EXPIRES })?;
        const RECIPIENT: &str = "recipient ORG/NAME";
        let recipients = lines
            .enumerate()
            .map(|(i, l)| {
                let bad = || ManifestError::Line { line: i + 6, expected: RECIPIENT };
                l.strip_prefix("recipient ").ok_or_else(bad)?.parse::<UserRef>().map_err(|_| bad())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if recipients.is_empty() {
            return Err(ManifestError::NoRecipient);
        }
        if sorted(recipients.clone()) != recipients {
            return Err(ManifestError::RecipientOrder);
        }
        let parsed = Self { sender, digest, classification, expires, recipients };
        if parsed.render() != text {
            return Err(ManifestError::NotCanonical);
        }
        Ok(parsed)
    }

    /// Parses the bytes of a manifest strictly (they must be UTF-8).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, ManifestError> {
        Self::parse(std::str::from_utf8(bytes).map_err(|_| ManifestError::NotUtf8)?)
    }
}

/// A version 1 manifest (signed after the upload, through the legacy route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestV1 {
    /// The transfer id.
    pub transfer: String,
    /// The ciphertext digest, `sha256:<hex>`.
    pub digest: String,
    /// The addressed recipients, sorted.
    pub recipients: Vec<String>,
}

impl ManifestV1 {
    /// The canonical version 1 text for a transfer (recipients sorted).
    pub fn text(transfer: &str, digest: &str, recipients: &[impl AsRef<str>]) -> String {
        let mut sorted: Vec<&str> = recipients.iter().map(AsRef::as_ref).collect();
        sorted.sort_unstable();
        let mut out = format!("{VERSION_V1}\ntransfer {transfer}\ndigest {digest}\n");
        for r in sorted {
            out.push_str("recipient ");
            out.push_str(r);
            out.push('\n');
        }
        out
    }

    /// Parses a version 1 manifest strictly: only the exact canonical text is accepted.
    pub fn parse(manifest: &str) -> Option<Self> {
        let mut lines = manifest.strip_suffix('\n')?.split('\n');
        if lines.next()? != VERSION_V1 {
            return None;
        }
        let transfer = lines.next()?.strip_prefix("transfer ")?.to_owned();
        let digest = lines.next()?.strip_prefix("digest ")?.to_owned();
        let recipients: Vec<String> =
            lines.map(|l| l.strip_prefix("recipient ").map(str::to_owned)).collect::<Option<_>>()?;
        let parsed = Self { transfer, digest, recipients };
        (Self::text(&parsed.transfer, &parsed.digest, &parsed.recipients) == manifest).then_some(parsed)
    }
}

/// A manifest of either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyManifest {
    /// Signed after the upload (legacy).
    V1(ManifestV1),
    /// Signed before release, with the upload.
    V2(ManifestV2),
}

/// Parses a manifest of either version strictly; the error is the version 2 reading's.
pub fn parse_any(text: &str) -> Result<AnyManifest, ManifestError> {
    if text.starts_with(&format!("{VERSION_V1}\n")) {
        return ManifestV1::parse(text).map(AnyManifest::V1).ok_or(ManifestError::NotCanonical);
    }
    ManifestV2::parse(text).map(AnyManifest::V2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserRef {
        s.parse().expect("user")
    }

    fn digest() -> Digest {
        Digest::of(b"age file")
    }

    fn example() -> ManifestV2 {
        ManifestV2::new(
            user("acme/bob"),
            digest(),
            Classification::OfficialSensitive,
            259_200,
            [user("hmpps/zed"), user("hmpps/alice"), user("hmpps/alice")],
        )
    }

    #[test]
    fn a_v2_manifest_renders_as_the_spec_shows_and_parses_back() {
        let text = example().render();
        assert_eq!(
            text,
            format!(
                "sealpost.manifest/v2\nsender acme/bob\ndigest {}\nclassification OFFICIAL-SENSITIVE\n\
                 expires 259200\nrecipient hmpps/alice\nrecipient hmpps/zed\n",
                digest()
            )
        );
        assert_eq!(ManifestV2::parse(&text), Ok(example()));
        assert_eq!(parse_any(&text), Ok(AnyManifest::V2(example())));
    }

    #[test]
    fn recipients_sort_bytewise_by_their_whole_name() {
        let m = ManifestV2::new(
            user("acme/bob"),
            digest(),
            Classification::Official,
            60,
            [user("a/x"), user("a.b/x"), user("a-c/x")],
        );
        // `-` (0x2d) and `.` (0x2e) sort before `/` (0x2f).
        let names: Vec<String> = m.recipients.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["a-c/x", "a.b/x", "a/x"]);
        assert_eq!(ManifestV2::parse(&m.render()), Ok(m));
    }

    #[test]
    fn only_the_canonical_v2_text_parses() {
        let good = example().render();
        let bad = |text: &str| ManifestV2::parse(text).unwrap_err();
        assert_eq!(bad(&good.replace('\n', "\r\n")), ManifestError::Version);
        assert_eq!(
            bad(&good.replace("259200\n", "259200\r\n")),
            ManifestError::Line { line: 5, expected: "expires <seconds>" }
        );
        assert_eq!(bad(good.trim_end()), ManifestError::NotCanonical);
        assert_eq!(bad(&format!("{good}\n")), ManifestError::Line { line: 8, expected: "recipient ORG/NAME" });
        assert_eq!(bad(&good.replace("/v2", "/v3")), ManifestError::Version);
        assert_eq!(
            bad(&good.replace("hmpps/alice\nrecipient hmpps/zed", "hmpps/zed\nrecipient hmpps/alice")),
            ManifestError::RecipientOrder
        );
        assert_eq!(
            bad(&good.replace("recipient hmpps/zed\n", "recipient hmpps/alice\n")),
            ManifestError::RecipientOrder,
            "a recipient named twice"
        );
        assert_eq!(bad(&good.replace("expires 259200", "expires 0259200")), ManifestError::NotCanonical);
        assert_eq!(bad(&good.replace("expires 259200", "expires +259200")), ManifestError::NotCanonical);
        assert_eq!(
            bad(&good.replace("expires 259200", "expires 72h")),
            ManifestError::Line { line: 5, expected: "expires <seconds>" }
        );
        assert_eq!(
            bad(&good.replace("sender ", "sender  ")),
            ManifestError::Line { line: 2, expected: "sender ORG/NAME" }
        );
        assert_eq!(
            bad(&good.replace("OFFICIAL-SENSITIVE", "official-sensitive")),
            ManifestError::Line { line: 4, expected: "classification OFFICIAL|OFFICIAL-SENSITIVE|SECRET|TOP-SECRET" }
        );
        assert_eq!(
            bad(&good.replace("sha256:", "SHA256:")),
            ManifestError::Line { line: 3, expected: "digest sha256:<64 lowercase hex>" }
        );
        let upper = good.replace(&digest().hex(), &digest().hex().to_uppercase());
        assert_eq!(bad(&upper), ManifestError::Line { line: 3, expected: "digest sha256:<64 lowercase hex>" });
        let no_recipients: String = good.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert_eq!(bad(&no_recipients), ManifestError::NoRecipient);
        assert_eq!(
            bad(&good.replace("classification", "marking")),
            ManifestError::Line { line: 4, expected: "classification OFFICIAL|OFFICIAL-SENSITIVE|SECRET|TOP-SECRET" }
        );
        assert_eq!(ManifestV2::parse_bytes(b"sealpost.manifest/v2\n\xff\n"), Err(ManifestError::NotUtf8));
    }

    #[test]
    fn v1_manifests_round_trip_and_only_the_canonical_text_parses() {
        let m = ManifestV1::text("t1", "sha256:ab", &["hmpps/zed", "hmpps/alice"]);
        assert_eq!(
            m,
            "sealpost.manifest/v1\ntransfer t1\ndigest sha256:ab\nrecipient hmpps/alice\nrecipient hmpps/zed\n"
        );
        let parsed = ManifestV1::parse(&m).expect("canonical");
        assert_eq!(parsed.recipients, ["hmpps/alice", "hmpps/zed"]);
        assert_eq!(parse_any(&m), Ok(AnyManifest::V1(parsed)));
        let swapped = m.replace("hmpps/alice\nrecipient hmpps/zed", "hmpps/zed\nrecipient hmpps/alice");
        assert_eq!(ManifestV1::parse(&swapped), None);
        assert_eq!(parse_any(&swapped), Err(ManifestError::NotCanonical));
        assert_eq!(ManifestV1::parse(&m.replace('\n', "\r\n")), None);
        assert_eq!(ManifestV1::parse(m.trim_end()), None);
    }
}
