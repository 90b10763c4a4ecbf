//! The `add-checkpoint` request body (c2sp.org/tlog-witness "add-checkpoint"): an `old <size>`
//! line, up to 63 base64 consistency proof lines, an empty line, then the signed checkpoint.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::transparency::tlog::Hash;
use crate::transparency::tlog::note::{Note, NoteError};

/// The most consistency proof lines a request may carry (tlog-witness "add-checkpoint").
pub const MAX_PROOF_LINES: usize = 63;

/// The content type of a `409 Conflict` answer that carries the witness's known size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why a request body was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No empty line separates the proof from the checkpoint.
    #[error("request has no empty line between the consistency proof and the checkpoint")]
    MissingSeparator,
    /// The first line is not `old <size>`.
    #[error("request does not start with an `old <size>` line")]
    MissingOldLine,
    /// The old size is not a canonical decimal.
    #[error("old size `{text}` is not a decimal number without leading zeros")]
    BadOldSize { text: String },
    /// A proof line that is not the canonical base64 of 32 bytes.
    #[error("consistency proof line {line} is not the base64 of a 32-byte hash")]
    BadProofLine { line: usize },
    /// More proof lines than the spec allows.
    #[error("request has {count} consistency proof lines, at most 63 are allowed")]
    TooManyProofLines { count: usize },
    /// The signed checkpoint is not a well-formed signed note.
    #[error("checkpoint is not a well-formed signed note: {reason}")]
    Note { reason: NoteError },
}

/// A parsed `add-checkpoint` request; the checkpoint's signatures are not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    /// The size of the checkpoint the client believes the witness last cosigned.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, unverified.
    pub note: Note,
}

/// Parses a decimal without sign or leading zeros (`0` alone is allowed).
pub(crate) fn parse_canonical_u64(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Decodes one proof line: standard, padded, canonical base64 of exactly 32 bytes.
fn parse_hash(text: &str) -> Option<Hash> {
    let bytes = B64.decode(text).ok()?;
    let hash = Hash::from_slice(&bytes)?;
    // Refuse any spelling other than the one we would write.
    (B64.encode(hash.0) == text).then_some(hash)
}

impl AddCheckpointRequest {
    /// Parses a request body strictly: every line ends in a newline, the old size is canonical,
    /// each proof line is the base64 of one hash, and the rest is a signed note.
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        // The old size and proof lines contain no empty line, so the first one ends them.
        let split = body.windows(2).position(|w| w == b"\n\n").ok_or(RequestError::MissingSeparator)?;
        let (head, note) = (&body[..split], &body[split + 2..]);
        let head = std::str::from_utf8(head).map_err(|_| RequestError::MissingOldLine)?;
        let mut lines = head.split('\n');
        let old_line = lines.next().unwrap_or_default();
        let old_text = old_line.strip_prefix("old ").ok_or(RequestError::MissingOldLine)?;
        let old_size =
            parse_canonical_u64(old_text).ok_or_else(|| RequestError::BadOldSize { text: old_text.to_owned() })?;
        let proof_lines: Vec<&str> = lines.collect();
        if proof_lines.len() > MAX_PROOF_LINES {
            return Err(RequestError::TooManyProofLines { count: proof_lines.len() });
        }
        let proof = proof_lines
            .iter()
            .enumerate()
            .map(|(i, text)| parse_hash(text).ok_or(RequestError::BadProofLine { line: i + 2 }))
            .collect::<Result<Vec<_>, _>>()?;
        let note = Note::parse_bytes(note).map_err(|reason| RequestError::Note { reason })?;
        Ok(AddCheckpointRequest { old_size, proof, note })
    }
}

/// Formats a request body: `old <size>`, one base64 hash per line, an empty line, the note.
pub fn format_body(old_size: u64, proof: &[Hash], signed_checkpoint: &str) -> String {
    let mut body = format!("old {old_size}\n");
    for hash in proof {
        body.push_str(&B64.encode(hash.0));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(signed_checkpoint);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example request of c2sp.org/tlog-witness "add-checkpoint".
    const SPEC_EXAMPLE: &str = "old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
\u{2014} example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
";

    const NOTE: &str = "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} o AAAAAAA=\n";
    const HASH: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn the_spec_example_parses() {
        let req = AddCheckpointRequest::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(req.old_size, 20_852_014);
        assert_eq!(req.proof.len(), 4);
        assert_eq!(B64.encode(req.proof[3].0), "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=");
        assert_eq!(
            req.note.text(),
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        assert_eq!(req.note.signatures().len(), 2);
        assert_eq!(format_body(req.old_size, &req.proof, &req.note.to_string()), SPEC_EXAMPLE);
    }

    #[test]
    fn a_request_without_proof_lines_parses() {
        let req = AddCheckpointRequest::parse(format!("old 0\n\n{NOTE}").as_bytes()).unwrap();
        assert_eq!((req.old_size, req.proof.len()), (0, 0));
        assert_eq!(req.note.to_string(), NOTE);
    }

    #[test]
    fn malformed_bodies_are_refused_precisely() {
        let long = format!("{HASH}\n").repeat(64);
        let cases = [
            // Without the empty line, the checkpoint's lines are read as proof lines.
            (format!("old 0\n{NOTE}"), RequestError::BadProofLine { line: 2 }),
            ("old 0\n".to_owned(), RequestError::MissingSeparator),
            (format!("\n\n{NOTE}"), RequestError::MissingOldLine),
            (format!("Old 0\n\n{NOTE}"), RequestError::MissingOldLine),
            (format!("old  0\n\n{NOTE}"), RequestError::BadOldSize { text: " 0".into() }),
            (format!("old 01\n\n{NOTE}"), RequestError::BadOldSize { text: "01".into() }),
            (format!("old +1\n\n{NOTE}"), RequestError::BadOldSize { text: "+1".into() }),
            (format!("old \n\n{NOTE}"), RequestError::BadOldSize { text: "".into() }),
            (format!("old 1\r\n\n{NOTE}"), RequestError::BadOldSize { text: "1\r".into() }),
            (
                format!("old 18446744073709551616\n\n{NOTE}"),
                RequestError::BadOldSize { text: "18446744073709551616".into() },
            ),
            (format!("old 1\nAAAA\n\n{NOTE}"), RequestError::BadProofLine { line: 2 }),
            (format!("old 1\n{HASH}\n{HASH} \n\n{NOTE}"), RequestError::BadProofLine { line: 3 }),
            (format!("old 1\n{}\n\n{NOTE}", HASH.trim_end_matches('=')), RequestError::BadProofLine { line: 2 }),
            // Non-zero trailing bits: decodes to the same bytes under a lax decoder.
            (format!("old 1\n{}\n\n{NOTE}", HASH.replace("AA=", "AB=")), RequestError::BadProofLine { line: 2 }),
            (format!("old 1\n{long}\n{NOTE}"), RequestError::TooManyProofLines { count: 64 }),
            ("old 1\n\no\n1\n".to_owned(), RequestError::Note { reason: NoteError::MissingSignatures }),
            (format!("old 1\n\n{}", NOTE.trim_end()), RequestError::Note { reason: NoteError::MissingFinalNewline }),
        ];
        for (body, want) in cases {
            assert_eq!(AddCheckpointRequest::parse(body.as_bytes()), Err(want), "{body:?}");
        }
        let mut not_utf8 = b"old 1\n\n".to_vec();
        not_utf8.extend_from_slice(b"\xff\n\n");
        assert_eq!(AddCheckpointRequest::parse(&not_utf8), Err(RequestError::Note { reason: NoteError::NotUtf8 }));
    }

    #[test]
    fn sixty_three_proof_lines_are_allowed() {
        let body = format!("old 1\n{}\n{NOTE}", format!("{HASH}\n").repeat(63));
        assert_eq!(AddCheckpointRequest::parse(body.as_bytes()).map(|r| r.proof.len()), Ok(63));
    }

    proptest! {
        #[test]
        fn bodies_round_trip(
            old_size in any::<u64>(),
            proof in prop::collection::vec(any::<[u8; 32]>(), 0..=MAX_PROOF_LINES),
        ) {
            let proof: Vec<Hash> = proof.into_iter().map(Hash).collect();
            let req = AddCheckpointRequest::parse(format_body(old_size, &proof, NOTE).as_bytes()).unwrap();
            prop_assert_eq!(req.old_size, old_size);
            prop_assert_eq!(req.proof, proof);
            prop_assert_eq!(req.note.to_string(), NOTE);
        }
    }
}
