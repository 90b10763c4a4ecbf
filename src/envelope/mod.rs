//! Keyless, streaming inspection of age-encrypted uploads (age-encryption.org/v1).
//!
//! The gateway never decrypts, yet it must refuse anything that is not an age file: a
//! plaintext smuggled behind a forged header would otherwise be stored and delivered as if
//! it were protected. [`Inspector`] reads the raw upload (binary, or ASCII-armoured per the
//! spec) in chunks of any size and checks, without any key:
//!
//! * the header grammar (c2sp.org/age): version line, stanzas, canonical unpadded base64 in
//!   64-column body lines, LF only, the `---` MAC line; header size, line length and stanza
//!   count bounded by [`Limits`] before a byte past a cap is buffered;
//! * the shape of known stanza types (share, salt, tag and body lengths, the scrypt work
//!   factor, `scrypt` alone in its header) and X25519 shares of small order;
//! * the payload length against age's STREAM layout;
//! * that the payload looks like ciphertext: no known file signature at its start, no excess
//!   of text bytes or of one byte value, uniform byte frequencies (chi-square) over the
//!   whole payload and per 64 KiB window; or the same of what is left once the STREAM
//!   chunk bodies that are entirely zero are set aside (see "Zero chunk bodies" below).
//!
//! It cannot check the header MAC or the payload tags (they need the file key), nor which
//! public key a stanza was made for (age hides recipients by design): the recipient's
//! decryption closes that loop. Stanza counts and types are reported in [`Header`] for the
//! caller's policy (passphrase files, unknown types, the number of recipients).
//!
//! **False refusals.** Real ciphertext is uniform bytes, so each randomness test refuses it
//! only with the probability its threshold allows (see `random.rs` and `signature.rs` for
//! the maths). Budget per file: the whole-payload text test 2^-44 (16 x 2^-48); the other
//! whole-payload tests (most frequent value, distinct values, chi-square) 2^-48 each; the
//! windowed tests (text, most frequent value, distinct values, chi-square) 2^-48 each,
//! summed over all windows; 39 signature rules at 2^-48 each. Total at most
//! 62 x 2^-48 < 2.3e-13 per file; chi-square thresholds are computed for targets 2^16 times
//! smaller than claimed, to absorb the error of the approximation (see `random.rs`).
//! Memory stays bounded: after the header only counters and 80 edge bytes are kept.
//!
//! **Zero chunk bodies.** A STREAM chunk body that is entirely zero bytes fails the tests
//! above, yet is what STREAM produces when the plaintext is the ChaCha20 keystream itself:
//! the C2SP/CCTV multi-chunk vectors were made so. Such a body carries no information, so
//! it cannot leak plaintext. What tells those vectors from a forged header over a
//! zero-filled or plaintext file is the rest: the nonce and tags, where STREAM puts them
//! (16 + 16 bytes per chunk), and any body that is not all zero. So a payload also passes if
//! it has all-zero bodies and, without them, the rest (at least 32 bytes) passes the
//! whole-payload tests at the same thresholds, as a payload made of just those informative
//! bytes would. A forged file of zeros leaves zeros at the tag positions, one of text
//! leaves text, and both are refused. This rule only adds acceptances (of bytes that carry
//! nothing, next to bytes that pass the whole-payload tests), so the false-refusal budget
//! above is unchanged. While every body byte placed so far is zero, a failing 64 KiB window
//! does not refuse: it holds nothing but the nonce, tags, zeros and at most 16 bytes not
//! yet placed, all judged again at [`Inspector::finish`], which checks the length first.
//! Later windows refuse as usual, so a zero body after an informative one gets no
//! exemption from the window tests.

mod armor;
mod error;
mod header;
mod payload;
mod random;
mod signature;
mod stanza;

pub use error::EnvelopeError;
pub(crate) use stanza::is_small_order;
pub use stanza::{Header, Stanza, StanzaKind};

use armor::ArmorDecoder;
use header::HeaderParser;
use payload::Payload;

/// Bounds on the header, enforced while streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes in the binary header, MAC line included (default 64 KiB).
    pub max_header_bytes: usize,
    /// Most stanzas in the header, grease included (default 64).
    pub max_stanzas: usize,
    /// Most bytes in one header line, newline excluded (default 4 KiB).
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_header_bytes: 64 * 1024, max_stanzas: 64, max_line_bytes: 4 * 1024 }
    }
}

/// What a successful inspection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The parsed header.
    pub header: Header,
    /// Binary payload bytes after the header (after armour decoding).
    pub payload_len: u64,
    /// Number of STREAM chunks in the payload.
    pub chunks: u64,
}

/// How the raw upload is framed.
#[derive(Debug)]
enum Input {
    /// No byte seen yet.
    Undecided,
    /// A binary age file.
    Binary,
    /// An ASCII-armoured age file.
    Armored(ArmorDecoder),
}

/// The binary age file: header, then payload.
#[derive(Debug)]
struct Binary {
    /// Whether it arrived armoured (recorded in the header).
    armored: bool,
    /// The header parser, until the MAC line.
    parser: HeaderParser,
    /// The header, once complete.
    header: Option<Header>,
    /// Payload statistics.
    payload: Payload,
}

impl Binary {
    /// Feeds binary age-file bytes; says how many of them ended the header, when they did.
    fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, EnvelopeError> {
        if self.header.is_some() {
            return self.payload.feed(bytes).map(|()| None);
        }
        match self.parser.feed(bytes)? {
            None => Ok(None),
            Some((mut header, used)) => {
                header.armored = self.armored;
                self.header = Some(header);
                self.payload.feed(&bytes[used..])?;
                Ok(Some(used))
            }
        }
    }
}

/// Streaming envelope inspector over the raw upload bytes.
#[derive(Debug)]
pub struct Inspector {
    /// Framing of the upload.
    input: Input,
    /// The binary age file being checked.
    binary: Binary,
    /// The first refusal, repeated on every later call.
    failed: Option<EnvelopeError>,
    /// Raw bytes fed so far.
    fed: u64,
}

impl Inspector {
    /// An inspector enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            input: Input::Undecided,
            binary: Binary { armored: false, parser: HeaderParser::new(limits), header: None, payload: Payload::new() },
            failed: None,
            fed: 0,
        }
    }

    /// Feeds the next chunk of raw upload bytes (any chunk boundaries, even 1 byte at a time).
    ///
    /// Returns the first refusal; after it the inspector is spent and repeats that error.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), EnvelopeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.update_inner(chunk);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    /// [`Inspector::update`] without the fuse.
    fn update_inner(&mut self, chunk: &[u8]) -> Result<(), EnvelopeError> {
        let Some(&first) = chunk.first() else {
            return Ok(());
        };
        if matches!(self.input, Input::Undecided) {
            // A binary file starts with `a`; armour may follow leading whitespace.
            self.input = if first == b'-' || first.is_ascii_whitespace() {
                self.binary.armored = true;
                Input::Armored(ArmorDecoder::new())
            } else {
                Input::Binary
            };
        }
        let binary = &mut self.binary;
        let fed = self.fed;
        self.fed += chunk.len() as u64;
        let mut header_end = None;
        match &mut self.input {
            Input::Armored(decoder) => decoder.feed(chunk, &mut |bytes, line_start| {
                // Lines hold 48 bytes, whole base64 groups: the header ends within the group
                // of 4 characters that encodes its last byte.
                if let Some(used) = binary.feed(bytes)? {
                    header_end = Some(line_start + (used as u64).div_ceil(3) * 4);
                }
                Ok(())
            })?,
            Input::Binary | Input::Undecided => {
                header_end = binary.feed(chunk)?.map(|used| fed + used as u64);
            }
        }
        if let (Some(end), Some(header)) = (header_end, self.binary.header.as_mut()) {
            header.stored_len = end;
        }
        Ok(())
    }

    /// The parsed header, once the `---` MAC line has been read.
    pub fn header(&self) -> Option<&Header> {
        self.binary.header.as_ref()
    }

    /// Ends the input: checks the armour end, the payload length and its randomness.
    pub fn finish(mut self) -> Result<Envelope, EnvelopeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let binary = &mut self.binary;
        match &mut self.input {
            Input::Undecided => return Err(EnvelopeError::Empty),
            Input::Armored(decoder) => {
                if decoder.is_blank() {
                    return Err(EnvelopeError::Empty);
                }
                decoder.finish(&mut |bytes, _| binary.feed(bytes).map(|_| ()))?;
            }
            Input::Binary => {}
        }
        let Binary { parser, header, payload, .. } = self.binary;
        let Some(header) = header else {
            return Err(if parser.is_untouched() { EnvelopeError::Empty } else { parser.truncated() });
        };
        let (payload_len, chunks) = payload.finish()?;
        Ok(Envelope { header, payload_len, chunks })
    }
}

/// Inspects a whole upload held in memory.
pub fn inspect(bytes: &[u8], limits: Limits) -> Result<Envelope, EnvelopeError> {
    let mut inspector = Inspector::new(limits);
    inspector.update(bytes)?;
    inspector.finish()
}

#[cfg(test)]
mod tests;
