//! The binary age header, parsed line by line as bytes arrive.
//!
//! Grammar (c2sp.org/age): the version line `age-encryption.org/v1`, then one or more
//! stanzas `-> TYPE [ARG...]` (TYPE and each ARG a non-empty string of VCHAR, separated by
//! single spaces) each followed by a body of canonical unpadded standard base64 in lines of
//! exactly 64 columns ended by a shorter (possibly empty) line, then `--- ` and the canonical
//! base64 of the 32-byte header MAC. Lines end with LF; a CR anywhere is refused. Limits on
//! header size, line length and stanza count are checked before a byte is buffered.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD_NO_PAD;

use super::stanza::{self, Header, Stanza, StanzaKind};
use super::{EnvelopeError, Limits};

/// The version line of age v1, without its newline.
const VERSION_LINE: &[u8] = b"age-encryption.org/v1";
/// The part of the version line shared by every age version.
const VERSION_PREFIX: &[u8] = b"age-encryption.org/";
/// Columns of a full stanza body line.
const BODY_COLUMNS: usize = 64;
/// Base64 characters of the 32-byte MAC without padding.
const MAC_COLUMNS: usize = 43;

/// Where in the header grammar the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the version line.
    Version,
    /// Expecting a stanza line or the MAC line.
    StanzaOrMac,
    /// Reading the body lines of the last stanza.
    Body,
}

/// Streaming parser for the binary header.
#[derive(Debug)]
pub(super) struct HeaderParser {
    /// The configured bounds.
    limits: Limits,
    /// Bytes of the current line so far (never more than `limits.max_line_bytes`).
    line: Vec<u8>,
    /// 1-based number of the line being read.
    line_no: usize,
    /// Header bytes consumed so far, including newlines.
    header_len: usize,
    /// Grammar position.
    state: State,
    /// Stanzas parsed so far (the last one may still be reading its body).
    stanzas: Vec<Stanza>,
    /// Random scalar for the small-order test of X25519 shares.
    scalar: [u8; 32],
    /// The body of the grease stanza being read (at most [`stanza::GREASE_MAX_BODY`] bytes and
    /// one line more), for its randomness check.
    grease_body: Vec<u8>,
}

impl HeaderParser {
    /// A parser enforcing `limits`.
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            limits,
            line: Vec::new(),
            line_no: 1,
            header_len: 0,
            state: State::Version,
            stanzas: Vec::new(),
            scalar: rand::random(),
            grease_body: Vec::new(),
        }
    }

    /// Whether no byte has been fed yet.
    pub(super) fn is_untouched(&self) -> bool {
        self.header_len == 0
    }

    /// Feeds header bytes. Once the MAC line is complete, returns the header and how many
    /// bytes of `bytes` it used; the rest is payload.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Option<(Header, usize)>, EnvelopeError> {
        for (i, &b) in bytes.iter().enumerate() {
            self.header_len += 1;
            if self.header_len > self.limits.max_header_bytes {
                return Err(EnvelopeError::HeaderTooLarge { limit: self.limits.max_header_bytes });
            }
            if b == b'\n' {
                if self.end_line()? {
                    let header = Header {
                        armored: false,
                        stanzas: std::mem::take(&mut self.stanzas),
                        header_len: self.header_len,
                        stored_len: self.header_len as u64,
                    };
                    return Ok(Some((header, i + 1)));
                }
                continue;
            }
            if b == b'\r' {
                return Err(self.malformed("lines must end with LF alone, not CRLF"));
            }
            if self.line.len() >= self.limits.max_line_bytes {
                return Err(EnvelopeError::LineTooLong { limit: self.limits.max_line_bytes });
            }
            if self.state == State::Version {
                let k = self.line.len();
                if k < VERSION_PREFIX.len() && VERSION_PREFIX[k] != b {
                    return Err(EnvelopeError::NotAge);
                }
            }
            self.line.push(b);
        }
        Ok(None)
    }

    /// The refusal when input ends before the header does.
    pub(super) fn truncated(&self) -> EnvelopeError {
        if self.state == State::Version && self.line.len() < VERSION_PREFIX.len() {
            return EnvelopeError::NotAge;
        }
        self.malformed("the file ends before the `---` line that closes the header")
    }

    /// A grammar refusal at the current line.
    fn malformed(&self, reason: &'static str) -> EnvelopeError {
        EnvelopeError::MalformedHeader { line: self.line_no, reason }
    }

    /// Handles a complete line; returns true when it was the MAC line.
    fn end_line(&mut self) -> Result<bool, EnvelopeError> {
        let line = std::mem::take(&mut self.line);
        let done = match self.state {
            State::Version => {
                if line != VERSION_LINE {
                    return Err(EnvelopeError::UnsupportedVersion);
                }
                self.state = State::StanzaOrMac;
                false
            }
            State::StanzaOrMac => self.stanza_or_mac(&line)?,
            State::Body => {
                self.body_line(&line)?;
                false
            }
        };
        self.line = line;
        self.line.clear();
        self.line_no += 1;
        Ok(done)
    }

    /// Parses a stanza line or the MAC line; returns true for the MAC line.
    fn stanza_or_mac(&mut self, line: &[u8]) -> Result<bool, EnvelopeError> {
        if let Some(rest) = line.strip_prefix(b"---") {
            let mac = rest.strip_prefix(b" ").ok_or_else(|| self.malformed("the MAC line must start with `--- `"))?;
            let canonical = mac.len() == MAC_COLUMNS && BASE64_STANDARD_NO_PAD.decode(mac).is_ok_and(|m| m.len() == 32);
            if !canonical {
                return Err(self.malformed("the MAC is not canonical base64 of 32 bytes"));
            }
            self.check_whole_header()?;
            return Ok(true);
        }
        if line == b"->" {
            return Err(self.malformed("the stanza has no type"));
        }
        let Some(rest) = line.strip_prefix(b"-> ") else {
            return Err(self.malformed("expected a `-> ` stanza line or the `---` MAC line"));
        };
        if self.stanzas.len() >= self.limits.max_stanzas {
            return Err(EnvelopeError::TooManyStanzas { limit: self.limits.max_stanzas });
        }
        let mut fields = Vec::new();
        for field in rest.split(|&b| b == b' ') {
            if !stanza::is_arbitrary_string(field) {
                return Err(self.malformed(
                    "stanza type and arguments must be non-empty printable ASCII separated by single spaces",
                ));
            }
            // VCHAR only, so this is valid UTF-8.
            fields.push(String::from_utf8_lossy(field).into_owned());
        }
        let mut fields = fields.into_iter();
        let Some(tag) = fields.next() else {
            return Err(self.malformed("the stanza has no type"));
        };
        self.stanzas.push(Stanza { kind: StanzaKind::of(&tag), tag, args: fields.collect(), body_len: 0 });
        self.state = State::Body;
        Ok(false)
    }

    /// Checks one body line of the current stanza.
    fn body_line(&mut self, line: &[u8]) -> Result<(), EnvelopeError> {
        if line.len() > BODY_COLUMNS {
            return Err(self.malformed("a stanza body line is longer than 64 columns"));
        }
        if line.first() == Some(&b'-') {
            return Err(self.malformed("the stanza body does not end with a short line"));
        }
        let mut buf = [0u8; 48];
        let n = BASE64_STANDARD_NO_PAD
            .decode_slice(line, &mut buf)
            .map_err(|_| self.malformed("the stanza body is not canonical unpadded base64"))?;
        let index = self.stanzas.len();
        let Some(current) = self.stanzas.last_mut() else {
            return Err(self.malformed("a stanza body without a stanza"));
        };
        current.body_len += n;
        if current.kind == StanzaKind::Grease {
            if current.body_len > stanza::GREASE_MAX_BODY {
                return Err(EnvelopeError::MalformedStanza {
                    stanza: index,
                    tag: current.tag.clone(),
                    reason: "a grease stanza's body is longer than grease needs (99 bytes)",
                });
            }
            self.grease_body.extend_from_slice(&buf[..n]);
        }
        if line.len() < BODY_COLUMNS {
            if current.kind == StanzaKind::Grease {
                stanza::check_grease(current, index, &std::mem::take(&mut self.grease_body))?;
            }
            let shares = stanza::check(current, index)?;
            if shares.into_iter().any(|s| stanza::is_small_order(self.scalar, s)) {
                return Err(EnvelopeError::SmallOrderShare { stanza: index });
            }
            self.state = State::StanzaOrMac;
        }
        Ok(())
    }

    /// Rules about the set of stanzas, checked at the MAC line.
    fn check_whole_header(&self) -> Result<(), EnvelopeError> {
        if self.stanzas.is_empty() {
            return Err(self.malformed("the header has no recipient stanza"));
        }
        if self.stanzas.iter().filter(|s| s.kind == StanzaKind::Grease).count() > 1 {
            return Err(self.malformed("the header has more than one grease stanza (age implementations add one)"));
        }
        if self.stanzas.len() > 1 && self.stanzas.iter().any(|s| s.kind == StanzaKind::Scrypt) {
            return Err(self.malformed("an `scrypt` stanza must be the only stanza in the header"));
        }
        Ok(())
    }
}
