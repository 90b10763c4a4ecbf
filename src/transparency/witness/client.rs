//! The log's side of c2sp.org/tlog-witness: submit a checkpoint with a consistency proof and
//! read back the witness's cosignature lines.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use super::request::{MAX_PROOF_LINES, SIZE_CONTENT_TYPE, format_body, parse_canonical_u64};
use crate::transparency::tlog::Hash;
use crate::transparency::tlog::note::NoteSignature;

/// The most of an answer the client reads.
const MAX_RESPONSE: usize = 64 * 1024;

/// How much of a refusal's text the error keeps.
const MAX_MESSAGE: usize = 200;

/// Why a witness did not cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessClientError {
    /// More proof hashes than the protocol allows (not sent).
    #[error("consistency proof has {count} hashes, at most 63 can be sent")]
    ProofTooLong { count: usize },
    /// The witness could not be reached, or the answer broke off.
    #[error("cannot reach the witness at `{url}`: {reason}")]
    Transport { url: String, reason: String },
    /// 409 with `text/x.tlog.size`: the witness last cosigned `known_size`; send again with
    /// a proof from that size.
    #[error("the witness last cosigned size {known_size}, not the old size sent")]
    Conflict { known_size: u64 },
    /// 409 without a size: the witness cosigned another root hash at this size.
    #[error("the witness cosigned another checkpoint of this size: {message}")]
    RootConflict { message: String },
    /// 404: the witness does not know this log.
    #[error("the witness does not know this log: {message}")]
    UnknownLog { message: String },
    /// 403: the witness found no valid signature by the log's key.
    #[error("the witness refused the checkpoint's signature: {message}")]
    SignatureRefused { message: String },
    /// 422: the witness found the consistency proof invalid.
    #[error("the witness refused the consistency proof: {message}")]
    InconsistentProof { message: String },
    /// Any other refusal.
    #[error("the witness answered {status}: {message}")]
    Refused { status: u16, message: String },
    /// An answer that does not follow the protocol.
    #[error("the witness's answer is malformed: {reason}")]
    BadResponse { reason: String },
}

/// Sends `signed_checkpoint` to the witness at `witness_url` (its submission prefix) with the
/// consistency proof from `old_size` (tlog-witness "add-checkpoint") and returns the
/// cosignature lines. They are not verified here: check them with the witness's
/// [`crate::transparency::tlog::cosignature::CosignatureVerifier`] and ignore lines from unknown keys.
///
/// On [`WitnessClientError::Conflict`], send again with a proof from `known_size`.
pub async fn add_checkpoint(
    http: &reqwest::Client,
    witness_url: &str,
    old_size: u64,
    proof: &[Hash],
    signed_checkpoint: &str,
) -> Result<Vec<NoteSignature>, WitnessClientError> {
    if proof.len() > MAX_PROOF_LINES {
        return Err(WitnessClientError::ProofTooLong { count: proof.len() });
    }
    let url = format!("{}/add-checkpoint", witness_url.trim_end_matches('/'));
    let transport = |e: reqwest::Error| WitnessClientError::Transport { url: url.clone(), reason: e.to_string() };
    let mut response = http
        .post(&url)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(format_body(old_size, proof, signed_checkpoint))
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(WitnessClientError::BadResponse { reason: format!("longer than {MAX_RESPONSE} bytes") });
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    let message = || text.trim_end().chars().take(MAX_MESSAGE).collect::<String>();
    match status {
        StatusCode::OK => parse_cosignatures(&text),
        StatusCode::CONFLICT if content_type.as_deref() == Some(SIZE_CONTENT_TYPE) => {
            let known_size = text.strip_suffix('\n').and_then(parse_canonical_u64).ok_or_else(|| {
                WitnessClientError::BadResponse { reason: format!("409 size `{}` is not a decimal line", message()) }
            })?;
            Err(WitnessClientError::Conflict { known_size })
        }
        StatusCode::CONFLICT => Err(WitnessClientError::RootConflict { message: message() }),
        StatusCode::NOT_FOUND => Err(WitnessClientError::UnknownLog { message: message() }),
        StatusCode::FORBIDDEN => Err(WitnessClientError::SignatureRefused { message: message() }),
        StatusCode::UNPROCESSABLE_ENTITY => Err(WitnessClientError::InconsistentProof { message: message() }),
        other => Err(WitnessClientError::Refused { status: other.as_u16(), message: message() }),
    }
}

/// Parses a 200 answer: one or more note signature lines, each ending in a newline.
fn parse_cosignatures(text: &str) -> Result<Vec<NoteSignature>, WitnessClientError> {
    let bad = |reason: String| WitnessClientError::BadResponse { reason };
    let lines = text.strip_suffix('\n').ok_or_else(|| bad("cosignatures do not end in a newline".into()))?;
    lines
        .split('\n')
        .enumerate()
        .map(|(i, line)| NoteSignature::parse_line(line, i + 1).map_err(|e| bad(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosignature_answers_are_parsed_strictly() {
        let line = "\u{2014} witness.example/w1 AAAAAAA=";
        assert_eq!(parse_cosignatures(&format!("{line}\n{line}\n")).map(|v| v.len()), Ok(2));
        let bad = |reason: &str| Err(WitnessClientError::BadResponse { reason: reason.into() });
        assert_eq!(parse_cosignatures(line), bad("cosignatures do not end in a newline"));
        assert_eq!(parse_cosignatures(""), bad("cosignatures do not end in a newline"));
        assert_eq!(parse_cosignatures("\n"), bad("signature line 1 is malformed"));
        assert_eq!(parse_cosignatures(&format!("{line}\n\n")), bad("signature line 2 is malformed"));
    }
}
