//! Streaming facts about the payload: its length under STREAM, and its randomness.
//!
//! age encrypts the payload with STREAM (c2sp.org/age, "payload"): a 16-byte nonce, then
//! chunks of 64 KiB of plaintext sealed with ChaCha20-Poly1305 (64 KiB + 16 bytes each).
//! The last chunk may be shorter but not empty, unless it is the only chunk (an empty
//! file); it may also be full. The payload is never stored: only a byte histogram, the
//! current window's histogram, the first 64 and the last 16 bytes are kept.
//!
//! Bytes are also placed in that geometry (nonce, chunk body or tag) to count the bytes of
//! chunk bodies that are entirely zero. The last chunk's tag is its last 16 bytes, known
//! only at the end, so a byte is placed once 16 more have arrived (the tail buffer holds
//! the pending ones); every earlier byte sits where full chunks put it. See `mod.rs` for
//! why zero bodies are left out of the randomness tests.

use super::signature::{self, Evidence, HEAD, TAIL};
use super::{EnvelopeError, random};

/// Length of the STREAM nonce.
const NONCE_LEN: u64 = 16;
/// Length of a Poly1305 tag.
const TAG_LEN: u64 = 16;
/// Plaintext bytes per STREAM chunk.
const CHUNK_PLAINTEXT: u64 = 64 * 1024;
/// Ciphertext bytes of a full STREAM chunk.
const CHUNK_LEN: u64 = CHUNK_PLAINTEXT + TAG_LEN;
/// Bytes per window of the windowed tests.
const WINDOW: usize = 64 * 1024;
/// Interleaved window histograms (see [`Payload::window`]).
const LANES: usize = 4;
/// Claimed bits of the whole-payload text test (the one that matters for tiny payloads).
const WHOLE_TEXT_BITS: f64 = 44.0;
/// Claimed bits of the other whole-payload tests and of each family of window tests.
const TEST_BITS: f64 = 48.0;

/// Which STREAM rule a payload of `len` bytes breaks, if any.
pub(super) fn stream_violation(len: u64) -> Option<&'static str> {
    if len < NONCE_LEN {
        return Some("it is shorter than the 16-byte nonce");
    }
    let sealed = len - NONCE_LEN;
    if sealed == 0 {
        return Some("it has a nonce but no chunk");
    }
    let (full, rest) = (sealed / CHUNK_LEN, sealed % CHUNK_LEN);
    match rest {
        0 => None,
        1..TAG_LEN => Some("the last chunk is shorter than its 16-byte tag"),
        TAG_LEN if full > 0 => Some("the last chunk is empty but follows a full chunk"),
        _ => None,
    }
}

/// The number of STREAM chunks in a payload of `len` bytes, or the refusal.
pub(super) fn stream_chunks(len: u64) -> Result<u64, EnvelopeError> {
    if stream_violation(len).is_some() {
        return Err(EnvelopeError::PayloadLength { len });
    }
    Ok((len - NONCE_LEN).div_ceil(CHUNK_LEN))
}

/// Running statistics of the payload.
#[derive(Debug)]
pub(super) struct Payload {
    /// Bytes seen.
    len: u64,
    /// Histogram of all bytes.
    counts: Box<[u64; 256]>,
    /// Histogram of the current window, split over [`LANES`] interleaved counters (summed
    /// when the window closes): consecutive bytes of one value then bump different
    /// counters, so the counting loop is not serialised on one memory location. A window
    /// has at most 64 KiB, so `u32` never overflows.
    window: Box<[[u32; 256]; LANES]>,
    /// Bytes in the current window.
    window_fill: usize,
    /// Completed windows.
    windows: u64,
    /// The first bytes.
    head: [u8; HEAD],
    /// The last bytes, oldest first (only the last `min(len, TAIL)` are meaningful).
    tail: [u8; TAIL],
    /// Whether the head-only signature rules have run.
    head_checked: bool,
    /// Whether every chunk-body byte placed so far is zero.
    zero_so_far: bool,
    /// Body bytes of the current chunk placed so far.
    body_len: u64,
    /// Whether they are all zero.
    body_zero: bool,
    /// Bytes of the completed chunk bodies that are entirely zero.
    zero_body_bytes: u64,
}

impl Payload {
    /// Empty statistics.
    pub(super) fn new() -> Self {
        Self {
            len: 0,
            counts: Box::new([0; 256]),
            window: Box::new([[0; 256]; LANES]),
            window_fill: 0,
            windows: 0,
            head: [0; HEAD],
            tail: [0; TAIL],
            head_checked: false,
            zero_so_far: true,
            body_len: 0,
            body_zero: true,
            zero_body_bytes: 0,
        }
    }

    /// Counts payload bytes; refuses as soon as a completed window or the head is conclusive.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), EnvelopeError> {
        while !bytes.is_empty() {
            let take = bytes.len().min(WINDOW - self.window_fill);
            let (now, later) = bytes.split_at(take);
            // Per window piece, so what is placed when a window closes never depends on chunking.
            self.place_settled(now);
            self.keep_edges(now);
            count(&mut self.window, now);
            self.window_fill += take;
            self.len += take as u64;
            bytes = later;
            // Before the window can close: the head is judged first whatever the chunking (a
            // window closes at 64 KiB, long after the head is complete), so the refusal does
            // not depend on how the bytes arrived.
            self.check_head()?;
            if self.window_fill == WINDOW {
                self.close_window()?;
            }
        }
        Ok(())
    }

    /// Runs the head-only signature rules once the head and a tail's worth of bytes are in.
    fn check_head(&mut self) -> Result<(), EnvelopeError> {
        if !self.head_checked && self.len >= (HEAD + TAIL) as u64 {
            self.head_checked = true;
            let evidence = Evidence { head: &self.head, tail: None, body_weak: false };
            if let Some(kind) = signature::detect(&evidence) {
                return Err(EnvelopeError::FileSignature { kind });
            }
        }
        Ok(())
    }

    /// Places the bytes that `bytes` pushes out of the pending tail (call before `keep_edges`).
    fn place_settled(&mut self, bytes: &[u8]) {
        let pending = usize::try_from(self.len).map_or(TAIL, |len| len.min(TAIL));
        let settle = (pending + bytes.len()).saturating_sub(TAIL);
        let from_tail = settle.min(pending);
        let old: [u8; TAIL] = self.tail;
        let start = self.len - pending as u64;
        self.place(start, &old[TAIL - pending..TAIL - pending + from_tail]);
        self.place(start + from_tail as u64, &bytes[..settle - from_tail]);
    }

    /// Places `bytes`, starting at payload offset `at`, in the nonce, a chunk body or a tag.
    fn place(&mut self, mut at: u64, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (run, body) = match at.checked_sub(NONCE_LEN) {
                None => (NONCE_LEN - at, false),
                Some(sealed) => match sealed % CHUNK_LEN {
                    r @ 0..CHUNK_PLAINTEXT => (CHUNK_PLAINTEXT - r, true),
                    r => (CHUNK_LEN - r, false),
                },
            };
            let (now, later) = bytes.split_at(usize::try_from(run).map_or(bytes.len(), |r| r.min(bytes.len())));
            if body {
                // Only a body that may still be all zero needs its bytes looked at.
                if self.body_zero || self.zero_so_far {
                    let zero = all_zero(now);
                    self.zero_so_far &= zero;
                    self.body_zero &= zero;
                }
                self.body_len += now.len() as u64;
                if now.len() as u64 == run {
                    self.close_body();
                }
            }
            at += now.len() as u64;
            bytes = later;
        }
    }

    /// Ends the current chunk body, counting it if it is entirely zero.
    fn close_body(&mut self) {
        if self.body_zero {
            self.zero_body_bytes += self.body_len;
        }
        self.body_len = 0;
        self.body_zero = true;
    }

    /// The current window's histogram: its lanes summed.
    fn window_counts(&self) -> [u64; 256] {
        let mut counts = [0u64; 256];
        for lane in self.window.iter() {
            for (c, &n) in counts.iter_mut().zip(lane) {
                *c += u64::from(n);
            }
        }
        counts
    }

    /// Updates the head and tail buffers.
    fn keep_edges(&mut self, bytes: &[u8]) {
        if let Some(room) = HEAD.checked_sub(usize::try_from(self.len).unwrap_or(HEAD)) {
            let n = room.min(bytes.len());
            let start = HEAD - room;
            self.head[start..start + n].copy_from_slice(&bytes[..n]);
        }
        if bytes.len() >= TAIL {
            self.tail.copy_from_slice(&bytes[bytes.len() - TAIL..]);
        } else {
            self.tail.rotate_left(bytes.len());
            self.tail[TAIL - bytes.len()..].copy_from_slice(bytes);
        }
    }

    /// Tests a completed window and folds it into the totals.
    ///
    /// Window `i` (1-based) is tested at `2^-(48 + log2(i (i + 1)))`; these targets sum to
    /// 2^-48 over all windows (telescoping), so streaming never inflates the budget.
    fn close_window(&mut self) -> Result<(), EnvelopeError> {
        self.windows += 1;
        let i = self.windows as f64;
        let bits = TEST_BITS + (i * (i + 1.0)).log2();
        let window = self.window_counts();
        let verdict = random::check_counts(&window, WINDOW as u64, bits);
        for (total, w) in self.counts.iter_mut().zip(window) {
            *total += w;
        }
        *self.window = [[0; 256]; LANES];
        self.window_fill = 0;
        if self.zero_so_far {
            // Zero bodies may explain the failure: `finish` decides without them.
            return Ok(());
        }
        verdict.map_err(|reason| EnvelopeError::NotRandom { reason })
    }

    /// Checks the length and the whole payload; returns (length, chunks).
    pub(super) fn finish(mut self) -> Result<(u64, u64), EnvelopeError> {
        let chunks = stream_chunks(self.len)?;
        let window = self.window_counts();
        for (total, w) in self.counts.iter_mut().zip(window) {
            *total += w;
        }
        let n = self.len;
        // A valid length is at least 32 bytes, so the tail and the head are disjoint.
        let head_len = usize::try_from(n - TAIL as u64).unwrap_or(HEAD).min(HEAD);
        let head = &self.head[..head_len];
        let mut body = *self.counts;
        for &b in head.iter().chain(self.tail.iter()) {
            body[usize::from(b)] -= 1;
        }
        let body_len = n - (head_len + TAIL) as u64;
        let evidence =
            Evidence { head, tail: Some((&self.tail, n)), body_weak: random::weak_evidence(&body, body_len) };
        if let Some(kind) = signature::detect(&evidence) {
            return Err(EnvelopeError::FileSignature { kind });
        }
        // Every byte but the final tag is placed: the final chunk's body is complete.
        self.close_body();
        if let Err(reason) = whole_tests(&self.counts, n) {
            // Zero bodies carry no information: judge the rest (nonce, tags, other bodies).
            let mut rest = *self.counts;
            rest[0] -= self.zero_body_bytes;
            let rest_len = n - self.zero_body_bytes;
            let fine =
                self.zero_body_bytes > 0 && rest_len >= NONCE_LEN + TAG_LEN && whole_tests(&rest, rest_len).is_ok();
            if !fine {
                return Err(EnvelopeError::NotRandom { reason });
            }
        }
        Ok((n, chunks))
    }
}

/// Adds `bytes` to the interleaved histogram, eight bytes per load.
fn count(lanes: &mut [[u32; 256]; LANES], bytes: &[u8]) {
    let (words, rest) = bytes.as_chunks::<8>();
    for word in words {
        let w = u64::from_le_bytes(*word);
        for (i, shift) in (0..64).step_by(8).enumerate() {
            lanes[i % LANES][usize::from((w >> shift) as u8)] += 1;
        }
    }
    for &b in rest {
        lanes[0][usize::from(b)] += 1;
    }
}

/// Whether every byte is zero: OR-folds 64-byte blocks (vectorised) and stops at the first
/// block that is not zero, as ciphertext's first block almost always is.
fn all_zero(bytes: &[u8]) -> bool {
    let (blocks, rest) = bytes.as_chunks::<64>();
    blocks.iter().all(|block| block.iter().fold(0, |acc, &b| acc | b) == 0) && rest.iter().all(|&b| b == 0)
}

/// The whole-payload randomness tests (also run on the payload without its zero bodies).
fn whole_tests(counts: &[u64; 256], n: u64) -> Result<(), random::Refusal> {
    random::check_text(counts, n, WHOLE_TEXT_BITS).and_then(|()| random::check_counts(counts, n, TEST_BITS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_lengths_follow_the_cctv_cases() {
        let full = CHUNK_LEN;
        for (len, chunks) in [(32, 1), (33, 1), (16 + full, 1), (16 + full + 17, 2), (16 + 2 * full, 2)] {
            assert_eq!(stream_chunks(len), Ok(chunks), "{len}");
        }
        for len in [0, 12, 16, 19, 31, 16 + full + 16, 16 + full + 12, 16 + 2 * full + 16] {
            assert_eq!(stream_chunks(len), Err(EnvelopeError::PayloadLength { len }), "{len}");
        }
    }

    #[test]
    fn edges_survive_any_chunking() {
        let data: Vec<u8> = (0..200u8).collect();
        for step in [1, 3, 16, 17, 64, 200] {
            let mut p = Payload::new();
            for c in data.chunks(step) {
                p.keep_edges(c);
                p.len += c.len() as u64;
            }
            assert_eq!(&p.head[..], &data[..HEAD]);
            assert_eq!(&p.tail[..], &data[200 - TAIL..]);
        }
    }

    #[test]
    fn the_interleaved_histogram_counts_like_a_plain_one_under_any_chunking() {
        let data: Vec<u8> =
            (0..3 * WINDOW as u32 + 1000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut plain = [0u64; 256];
        for &b in &data[..2 * WINDOW] {
            plain[usize::from(b)] += 1;
        }
        let mut tail = [0u64; 256];
        for &b in &data[2 * WINDOW..] {
            tail[usize::from(b)] += 1;
        }
        for step in [1, 7, 8, 9, 4096, 65_537, data.len()] {
            let mut p = Payload::new();
            for c in data[..2 * WINDOW].chunks(step) {
                p.feed(c).expect("pseudo-random bytes pass");
            }
            assert_eq!(&p.counts[..], &plain[..], "{step}");
            for c in data[2 * WINDOW..].chunks(step) {
                p.feed(c).expect("pseudo-random bytes pass");
            }
            // One window closed since; the rest is pending in the lanes.
            let mut got = p.window_counts();
            for (g, (&t, &w)) in got.iter_mut().zip(p.counts.iter().zip(plain.iter())) {
                *g += t - w;
            }
            assert_eq!(got, tail, "{step}");
        }
    }

    #[test]
    fn all_zero_agrees_with_a_byte_scan() {
        for len in [0, 1, 63, 64, 65, 200] {
            let zeros = vec![0u8; len];
            assert!(all_zero(&zeros));
            for at in 0..len {
                let mut one = zeros.clone();
                one[at] = 0x80;
                assert!(!all_zero(&one), "{len} {at}");
            }
        }
    }

    #[test]
    fn zero_bodies_are_placed_the_same_under_any_chunking() {
        // Nonce and tags of 0xff; the last body is short and holds one non-zero byte.
        let len = 16 + 3 * CHUNK_LEN as usize + 100;
        let mut data = vec![0u8; len];
        data[..16].fill(0xff);
        for k in 1..=3 {
            let end = 16 + k * CHUNK_LEN as usize;
            data[end - 16..end].fill(0xff);
        }
        data[len - 16..].fill(0xff);
        data[16 + 3 * CHUNK_LEN as usize + 5] = 1;
        for step in [1, 15, 16, 17, 4096, 65_552, len] {
            let mut p = Payload::new();
            for c in data.chunks(step) {
                p.feed(c).expect("zero windows are deferred");
            }
            p.close_body();
            assert_eq!(p.zero_body_bytes, 3 * CHUNK_PLAINTEXT, "{step}");
            assert!(!p.zero_so_far, "{step}");
        }
    }
}
