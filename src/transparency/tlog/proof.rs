//! C2SP tlog-proof (<https://c2sp.org/tlog-proof>): an offline-verifiable proof that an entry
//! is in a log, made of the entry index, its inclusion proof and the signed checkpoint.
//! sealpost puts the exact entry bytes in the `extra` line.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::checkpoint::CheckpointError;
use super::merkle::{self, Hash, MerkleError};
use super::note::Note;
use super::quorum::{Policy, PolicyError, VerifiedCheckpoint};

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// No inclusion proof in a tree of at most 2^64 leaves has more hashes.
pub const MAX_PROOF_HASHES: usize = 64;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The first line is not `c2sp.org/tlog-proof@v1`.
    #[error("proof does not start with `{HEADER}`")]
    MissingHeader,
    /// The `extra` line is not base64.
    #[error("proof `extra` line is not base64")]
    BadExtra,
    /// No `index <n>` line, or not a decimal without leading zeros.
    #[error("proof has no valid `index` line")]
    BadIndex,
    /// A proof line that is not the base64 of 32 bytes.
    #[error("proof line {line} is not the base64 of a 32-byte hash")]
    BadHash { line: usize },
    /// More hashes than any tree can need.
    #[error("proof has more than {MAX_PROOF_HASHES} hashes")]
    TooManyHashes,
    /// No blank line and checkpoint after the hashes.
    #[error("proof has no checkpoint after a blank line")]
    MissingCheckpoint,
    /// The checkpoint note is malformed.
    #[error("proof checkpoint is malformed")]
    BadCheckpoint(#[source] CheckpointError),
    /// The proof has no `extra` line holding the entry.
    #[error("proof has no `extra` line with the entry")]
    MissingExtra,
    /// The entry in `extra` differs from the one expected.
    #[error("proof `extra` is not the expected entry")]
    ExtraMismatch,
    /// The checkpoint does not satisfy the policy.
    #[error("checkpoint rejected")]
    Checkpoint(#[source] PolicyError),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof rejected")]
    Inclusion(#[source] MerkleError),
}

/// A parsed `c2sp.org/tlog-proof@v1` (tlog-proof "Format").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// The opaque extra data; sealpost puts the exact entry bytes here. Unauthenticated
    /// until [`TlogProof::verify`] has checked it against the tree.
    pub extra: Option<Vec<u8>>,
    /// The zero-based entry index.
    pub index: u64,
    /// The inclusion proof, from the leaf's sibling up to the root's child.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// A proof that verified: the entry is in the log the policy trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The entry bytes (now authenticated).
    pub entry: Vec<u8>,
    /// The entry index.
    pub index: u64,
    /// The checkpoint and its witness cosignatures.
    pub checkpoint: VerifiedCheckpoint,
}

/// Takes the next newline-terminated line off `rest`.
fn next_line<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (line, tail) = rest.split_once('\n')?;
    *rest = tail;
    Some(line)
}

fn parse_index(s: &str) -> Option<u64> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

impl TlogProof {
    /// The text form (tlog-proof "Format").
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            s.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            s.push_str(&B64.encode(h.0));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses the text form strictly; the checkpoint must be a well-formed signed note.
    pub fn parse(text: &str) -> Result<Self, ProofError> {
        let mut rest = text.strip_prefix(HEADER).and_then(|r| r.strip_prefix('\n')).ok_or(ProofError::MissingHeader)?;
        let mut line_no = 2;
        let mut line = next_line(&mut rest).ok_or(ProofError::BadIndex)?;
        let extra = match line.strip_prefix("extra ") {
            Some(b64) => {
                let extra = B64.decode(b64).map_err(|_| ProofError::BadExtra)?;
                line = next_line(&mut rest).ok_or(ProofError::BadIndex)?;
                line_no += 1;
                Some(extra)
            }
            None => None,
        };
        let index = line.strip_prefix("index ").and_then(parse_index).ok_or(ProofError::BadIndex)?;
        let mut proof = Vec::new();
        loop {
            line_no += 1;
            let line = next_line(&mut rest).ok_or(ProofError::MissingCheckpoint)?;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_HASHES {
                return Err(ProofError::TooManyHashes);
            }
            let hash = B64.decode(line).ok().and_then(|b| Hash::from_slice(&b));
            proof.push(hash.ok_or(ProofError::BadHash { line: line_no })?);
        }
        if rest.is_empty() {
            return Err(ProofError::MissingCheckpoint);
        }
        Note::parse(rest).map_err(|e| ProofError::BadCheckpoint(e.into()))?;
        Ok(TlogProof { extra, index, proof, checkpoint: rest.to_owned() })
    }

    /// Verifies the proof for the entry carried in `extra`: the checkpoint satisfies `policy`
    /// (log signature, origin, witness quorum), then `leaf_hash(extra)` is included at
    /// `index` under the checkpoint's root (RFC 9162 section 2.1.3.2).
    pub fn verify(&self, policy: &Policy) -> Result<VerifiedProof, ProofError> {
        let entry = self.extra.as_ref().ok_or(ProofError::MissingExtra)?;
        self.verify_entry(entry, policy)
    }

    /// As [`TlogProof::verify`], for an entry known from elsewhere; if `extra` is present it
    /// must be that entry.
    pub fn verify_entry(&self, entry: &[u8], policy: &Policy) -> Result<VerifiedProof, ProofError> {
        if self.extra.as_deref().is_some_and(|e| e != entry) {
            return Err(ProofError::ExtraMismatch);
        }
        let checkpoint = policy.verify_checkpoint(&self.checkpoint).map_err(ProofError::Checkpoint)?;
        let (size, root) = (checkpoint.checkpoint.size(), *checkpoint.checkpoint.root());
        merkle::verify_inclusion(&merkle::leaf_hash(entry), self.index, size, &self.proof, &root)
            .map_err(ProofError::Inclusion)?;
        Ok(VerifiedProof { entry: entry.to_vec(), index: self.index, checkpoint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparency::tlog::checkpoint::Checkpoint;
    use crate::transparency::tlog::merkle::{inclusion_proof, leaf_hash, root};
    use crate::transparency::tlog::note::{NoteError, Signer};

    fn fixture() -> (Signer, Vec<Vec<u8>>, TlogProof) {
        let log = Signer::from_seed("sealpost.example/log", &[5; 32]).unwrap();
        let entries: Vec<Vec<u8>> = (0..7).map(|i| format!("event upload.accepted\nseq {i}\n").into_bytes()).collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let c = Checkpoint::new("sealpost.example/log", 7, root(&leaves)).unwrap();
        let proof = TlogProof {
            extra: Some(entries[3].clone()),
            index: 3,
            proof: inclusion_proof(3, &leaves).unwrap(),
            checkpoint: c.sign(&[&log]).unwrap(),
        };
        (log, entries, proof)
    }

    #[test]
    fn a_receipt_round_trips_and_verifies() {
        let (log, entries, proof) = fixture();
        let text = proof.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra ZXZlbnQg"));
        assert_eq!(TlogProof::parse(&text), Ok(proof.clone()));
        let policy = Policy::log_only(log.verifier());
        let v = TlogProof::parse(&text).unwrap().verify(&policy).unwrap();
        assert_eq!((v.entry.as_slice(), v.index, v.checkpoint.checkpoint.size()), (entries[3].as_slice(), 3, 7));
        assert_eq!(proof.verify_entry(&entries[2], &policy), Err(ProofError::ExtraMismatch));
    }

    #[test]
    fn flipping_any_byte_of_a_receipt_is_detected() {
        let (log, _, proof) = fixture();
        let policy = Policy::log_only(log.verifier());
        let text = proof.to_text().into_bytes();
        for i in 0..text.len() {
            for flip in [0x01u8, 0x20] {
                let mut bad = text.clone();
                bad[i] ^= flip;
                let Ok(s) = String::from_utf8(bad) else { continue };
                let verdict = TlogProof::parse(&s).and_then(|p| p.verify(&policy));
                assert!(verdict.is_err(), "byte {i} flipped with {flip:#x} still verifies");
            }
        }
    }

    #[test]
    fn errors_are_precise() {
        let (log, entries, proof) = fixture();
        let text = proof.to_text();
        assert_eq!(TlogProof::parse("c2sp.org/tlog-proof@v2\n"), Err(ProofError::MissingHeader));
        assert_eq!(TlogProof::parse(&text.replace("index 3", "index 03")), Err(ProofError::BadIndex));
        assert_eq!(TlogProof::parse(&text.replace("extra ", "extra !")), Err(ProofError::BadExtra));
        let mut lines: Vec<&str> = text.lines().collect();
        lines[3] = "AAAA";
        assert_eq!(TlogProof::parse(&(lines.join("\n") + "\n")), Err(ProofError::BadHash { line: 4 }));
        let cut = text.find("\n\n").unwrap() + 1;
        assert_eq!(TlogProof::parse(&text[..cut]), Err(ProofError::MissingCheckpoint));
        assert_eq!(
            TlogProof::parse(&format!("{}x\n", &text[..cut + 1])),
            Err(ProofError::BadCheckpoint(CheckpointError::Note(NoteError::MissingSignatures)))
        );
        let other = Signer::from_seed("sealpost.example/log", &[6; 32]).unwrap();
        assert_eq!(
            proof.verify(&Policy::log_only(other.verifier())),
            Err(ProofError::Checkpoint(PolicyError::Checkpoint(CheckpointError::Note(NoteError::NoVerifiedSignature))))
        );
        let policy = Policy::log_only(log.verifier());
        let wrong_index = TlogProof { extra: Some(entries[4].clone()), index: 4, ..proof.clone() };
        assert!(matches!(wrong_index.verify(&policy), Err(ProofError::Inclusion(MerkleError::RootMismatch { .. }))));
        let no_extra = TlogProof { extra: None, ..proof };
        assert_eq!(no_extra.verify(&policy), Err(ProofError::MissingExtra));
        assert_eq!(no_extra.verify_entry(&entries[3], &policy).map(|v| v.index), Ok(3));
    }
}
