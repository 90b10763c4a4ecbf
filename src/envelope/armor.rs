//! Strict streaming decoder for age's ASCII armour.
//!
//! The armour (c2sp.org/age, "ASCII armor") is PEM with the type `AGE ENCRYPTED FILE`, no
//! headers, and strict standard base64 (padding only at the very end, canonical trailing
//! bits) in lines of exactly 64 columns except the last, which may be shorter or full.
//! As in the reference implementations and the CCTV vectors, whitespace is allowed before
//! the begin line and after the end line, the end line may lack its newline, and lines may
//! end with CRLF instead of LF (consistently, as the begin line sets it). Anything else,
//! including blank lines, spaces inside lines and PGP-style checksums, is refused.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;

use super::EnvelopeError;

/// The begin line, without its line ending.
const BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// The end line, without its line ending.
const END: &[u8] = b"-----END AGE ENCRYPTED FILE-----";
/// Columns of a full base64 line.
const COLUMNS: usize = 64;
/// Longest line the decoder buffers: the begin line plus CR.
const MAX_LINE: usize = 36;
/// Most whitespace accepted before the begin line or after the end line.
const MAX_OUTSIDE_WHITESPACE: usize = 4096;

/// Where in the armour the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Skipping whitespace before the begin line.
    Leading,
    /// Reading the begin line.
    Begin,
    /// Reading full base64 lines (or the end line after a full line).
    Data,
    /// After the short final line: only the end line may follow.
    AfterFinal,
    /// After the end line: only whitespace may follow.
    Trailing,
}

/// The streaming armour decoder: raw bytes in, binary age file bytes out.
#[derive(Debug)]
pub(super) struct ArmorDecoder {
    /// Grammar position.
    state: State,
    /// Bytes of the current line (at most `COLUMNS + 1`).
    line: Vec<u8>,
    /// Whether lines end with CRLF (set by the begin line).
    crlf: bool,
    /// Base64 lines decoded so far.
    data_lines: usize,
    /// Whitespace bytes seen outside the armour.
    outside: usize,
    /// Raw bytes fed so far.
    pos: u64,
    /// Where the current line started in the raw bytes.
    line_start: u64,
}

/// An armour refusal.
fn armor(reason: &'static str) -> EnvelopeError {
    EnvelopeError::Armor { reason }
}

/// Where decoded bytes go: each line's bytes, with the raw offset where the line starts.
pub(super) type Sink<'a> = dyn FnMut(&[u8], u64) -> Result<(), EnvelopeError> + 'a;

/// Whitespace allowed around the armour.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl ArmorDecoder {
    /// A decoder waiting for the begin line.
    pub(super) fn new() -> Self {
        Self {
            state: State::Leading,
            line: Vec::with_capacity(COLUMNS + 2),
            crlf: false,
            data_lines: 0,
            outside: 0,
            pos: 0,
            line_start: 0,
        }
    }

    /// Whether only whitespace has been seen.
    pub(super) fn is_blank(&self) -> bool {
        self.state == State::Leading
    }

    /// Feeds raw armoured bytes, passing each decoded line's bytes to `sink` with the raw
    /// offset where that line starts.
    pub(super) fn feed(&mut self, chunk: &[u8], sink: &mut Sink<'_>) -> Result<(), EnvelopeError> {
        for &b in chunk {
            let pos = self.pos;
            self.pos += 1;
            if self.line.is_empty() {
                self.line_start = pos;
            }
            match self.state {
                State::Leading | State::Trailing if is_space(b) => {
                    self.outside += 1;
                    if self.outside > MAX_OUTSIDE_WHITESPACE {
                        return Err(armor("too much whitespace around the armour"));
                    }
                }
                State::Leading => {
                    if b != b'-' {
                        return Err(EnvelopeError::NotAge);
                    }
                    self.state = State::Begin;
                    self.outside = 0;
                    self.line.push(b);
                }
                State::Trailing => {
                    return Err(armor("data after the `-----END AGE ENCRYPTED FILE-----` line"));
                }
                State::Begin => self.begin_byte(b)?,
                State::Data | State::AfterFinal => {
                    if b == b'\n' {
                        self.end_line(sink)?;
                    } else if self.line.len() > COLUMNS {
                        return Err(armor("a line is longer than 64 columns"));
                    } else {
                        self.line.push(b);
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks one byte of the begin line against the expected text.
    fn begin_byte(&mut self, b: u8) -> Result<(), EnvelopeError> {
        let k = self.line.len();
        let ok = match k {
            _ if k < BEGIN.len() => BEGIN[k] == b,
            _ if k == BEGIN.len() => b == b'\n' || b == b'\r',
            _ => b == b'\n' && k == BEGIN.len() + 1,
        };
        if !ok {
            return Err(armor("the first line is not `-----BEGIN AGE ENCRYPTED FILE-----`"));
        }
        if b == b'\n' {
            self.crlf = k == BEGIN.len() + 1;
            self.line.clear();
            self.state = State::Data;
        } else {
            self.line.push(b);
        }
        debug_assert!(self.line.len() <= MAX_LINE);
        Ok(())
    }

    /// Handles a complete line in the data part.
    fn end_line(&mut self, sink: &mut Sink<'_>) -> Result<(), EnvelopeError> {
        let mut line = std::mem::take(&mut self.line);
        if self.crlf && line.pop() != Some(b'\r') {
            return Err(armor("lines mix CRLF and LF endings"));
        }
        self.data_line(&line, sink)?;
        line.clear();
        self.line = line;
        Ok(())
    }

    /// Handles the content of a line in the data part (line ending removed).
    fn data_line(&mut self, line: &[u8], sink: &mut Sink<'_>) -> Result<(), EnvelopeError> {
        if line == END {
            if self.data_lines == 0 {
                return Err(armor("the armour holds no data"));
            }
            self.state = State::Trailing;
            return Ok(());
        }
        if line.first() == Some(&b'-') {
            return Err(armor("expected the `-----END AGE ENCRYPTED FILE-----` line"));
        }
        if self.state == State::AfterFinal {
            return Err(armor("a line shorter than 64 columns must be the last before the end line"));
        }
        if line.is_empty() {
            return Err(armor("blank line inside the armour"));
        }
        if !line.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
            return Err(armor("a line has a character outside standard base64"));
        }
        if line.len() > COLUMNS {
            return Err(armor("a line is longer than 64 columns"));
        }
        let mut buf = [0u8; 48];
        let n =
            BASE64_STANDARD.decode_slice(line, &mut buf).map_err(|_| armor("a line is not canonical padded base64"))?;
        self.data_lines += 1;
        if line.len() < COLUMNS || line.ends_with(b"=") {
            self.state = State::AfterFinal;
        }
        sink(&buf[..n], self.line_start)
    }

    /// Checks the armour is complete at end of input.
    pub(super) fn finish(&mut self, sink: &mut Sink<'_>) -> Result<(), EnvelopeError> {
        match self.state {
            State::Trailing => Ok(()),
            State::Leading => Err(EnvelopeError::Empty),
            State::Begin => Err(armor("the file ends inside the begin line")),
            State::Data | State::AfterFinal => {
                // The end line may lack its line ending.
                let line = std::mem::take(&mut self.line);
                if line == END {
                    return self.data_line(&line, sink);
                }
                Err(armor("the file ends before the `-----END AGE ENCRYPTED FILE-----` line"))
            }
        }
    }
}
