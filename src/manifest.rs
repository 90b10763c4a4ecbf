//! The sender's manifest: what a sender signs about a transfer, and what a recipient checks
//! before decrypting (DESIGN section 6, sender authentication).
//!
//! ```text
//! sealpost.manifest/v1
//! transfer ID
//! digest sha256:HEX
//! recipient ORG/NAME        (one line per addressed recipient, sorted)
//! ```

/// The first line of every manifest.
pub const VERSION: &str = "sealpost.manifest/v1";

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The transfer id.
    pub transfer: String,
    /// The ciphertext digest, `sha256:<hex>`.
    pub digest: String,
    /// The addressed recipients, sorted.
    pub recipients: Vec<String>,
}

/// The canonical manifest text for a transfer (recipients sorted).
pub fn text(transfer: &str, digest: &str, recipients: &[impl AsRef<str>]) -> String {
    let mut sorted: Vec<&str> = recipients.iter().map(AsRef::as_ref).collect();
    sorted.sort_unstable();
    let mut out = format!("{VERSION}\ntransfer {transfer}\ndigest {digest}\n");
    for r in sorted {
        out.push_str("recipient ");
        out.push_str(r);
        out.push('\n');
    }
    out
}

/// Parses a manifest strictly: only the exact canonical text is accepted.
pub fn parse(manifest: &str) -> Option<Manifest> {
    let mut lines = manifest.strip_suffix('\n')?.split('\n');
    if lines.next()? != VERSION {
        return None;
    }
    let transfer = lines.next()?.strip_prefix("transfer ")?.to_owned();
    let digest = lines.next()?.strip_prefix("digest ")?.to_owned();
    let recipients: Vec<String> =
        lines.map(|l| l.strip_prefix("recipient ").map(str::to_owned)).collect::<Option<_>>()?;
    let parsed = Manifest { transfer, digest, recipients };
    (text(&parsed.transfer, &parsed.digest, &parsed.recipients) == manifest).then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_only_the_canonical_text_parses() {
        let m = text("t1", "sha256:ab", &["hmpps/zed", "hmpps/alice"]);
        assert_eq!(
            m,
            "sealpost.manifest/v1\ntransfer t1\ndigest sha256:ab\nrecipient hmpps/alice\nrecipient hmpps/zed\n"
        );
        let parsed = parse(&m).expect("canonical");
        assert_eq!(parsed.recipients, ["hmpps/alice", "hmpps/zed"]);
        assert_eq!(parse(&m.replace("hmpps/alice\nrecipient hmpps/zed", "hmpps/zed\nrecipient hmpps/alice")), None);
        assert_eq!(parse(&m.replace('\n', "\r\n")), None);
        assert_eq!(parse(m.trim_end()), None);
    }
}
