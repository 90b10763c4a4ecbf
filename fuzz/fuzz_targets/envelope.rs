//! The envelope inspector on raw uploads (binary or armoured age files, or anything else).
//!
//! Properties, beyond not panicking:
//! * chunking never matters: the whole input at once, one byte at a time (small inputs) and two
//!   irregular chunkings give the same verdict, and a refusal from `update` is the one `finish`
//!   repeats; the header seen through `header()` is the one the verdict carries;
//! * armour is transparent: a binary input and its canonical armour (LF and CRLF) get the same
//!   verdict (only `armored` differs);
//! * an accepted file adds up: header plus payload is the whole binary file, the payload has
//!   room for the nonce and one tag, the chunk count is STREAM's, at least one stanza, `scrypt`
//!   alone.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use sealpost::envelope::{Envelope, EnvelopeError, Header, Inspector, Limits, StanzaKind, inspect};

/// Chunk sizes around the inspector's boundaries: armour lines (64 columns, 48 bytes), the
/// STREAM nonce and tag (16), a chunk (65 552), a window (65 536).
const STEPS: [usize; 12] = [1, 2, 3, 15, 16, 17, 48, 63, 64, 65, 4095, 65_552];

/// Feeds `data` in chunks whose sizes cycle through `STEPS` from `seed`.
fn chunked(data: &[u8], seed: usize) -> Result<Envelope, EnvelopeError> {
    let mut inspector = Inspector::new(Limits::default());
    let (mut at, mut k) = (0, seed);
    let mut seen_header = None;
    while at < data.len() {
        let step = STEPS[k % STEPS.len()].min(data.len() - at);
        k = k.wrapping_mul(7).wrapping_add(5);
        if let Err(e) = inspector.update(&data[at..at + step]) {
            // The inspector is spent: every later call repeats the refusal.
            assert_eq!(inspector.update(b"more"), Err(e.clone()));
            assert_eq!(inspector.finish(), Err(e.clone()));
            return Err(e);
        }
        if let Some(h) = &seen_header {
            assert_eq!(inspector.header(), Some(h), "the header changed once complete");
        }
        seen_header = inspector.header().cloned();
        at += step;
    }
    let header = inspector.header().cloned();
    let verdict = inspector.finish();
    if let Ok(env) = &verdict {
        assert_eq!(header.as_ref(), Some(&env.header));
    }
    verdict
}

/// The canonical armour of a binary age file.
fn armor(binary: &[u8], eol: &str) -> Vec<u8> {
    let mut out = format!("-----BEGIN AGE ENCRYPTED FILE-----{eol}");
    let b64 = STANDARD.encode(binary);
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str(eol);
    }
    out.push_str(&format!("-----END AGE ENCRYPTED FILE-----{eol}"));
    out.into_bytes()
}

fn check_accepted(data: &[u8], env: &Envelope) {
    let h = &env.header;
    let armoured = data.first().is_some_and(|&b| b == b'-' || b.is_ascii_whitespace());
    assert_eq!(h.armored, armoured);
    if !armoured {
        assert_eq!(h.header_len as u64 + env.payload_len, data.len() as u64, "header and payload are the file");
    }
    assert!(env.payload_len >= 32, "a payload holds a nonce and a tag at least");
    assert_eq!(env.chunks, (env.payload_len - 16).div_ceil(65_552));
    assert!(!h.stanzas.is_empty());
    if h.stanzas.iter().any(|s| s.kind == StanzaKind::Scrypt) {
        assert_eq!(h.stanzas.len(), 1, "scrypt must be alone");
    }
    assert!(h.header_len <= Limits::default().max_header_bytes);
    assert!(h.stanzas.len() <= Limits::default().max_stanzas);
}

fuzz_target!(|data: &[u8]| {
    let whole = inspect(data, Limits::default());
    if let Ok(env) = &whole {
        check_accepted(data, env);
    }
    if data.len() <= 4096 {
        let mut inspector = Inspector::new(Limits::default());
        let bytewise = data.iter().try_for_each(|b| inspector.update(std::slice::from_ref(b)));
        let bytewise = bytewise.and_then(|()| inspector.finish());
        assert_eq!(bytewise, whole, "one byte at a time");
    }
    for seed in [data.len(), data.len() / 3 + 1] {
        assert_eq!(chunked(data, seed), whole, "chunking {seed}");
    }
    let binary = data.first().is_some_and(|&b| b != b'-' && !b.is_ascii_whitespace());
    if binary {
        for eol in ["\n", "\r\n"] {
            // The same verdict; only where the stored header ends differs (the armour's begin
            // line and base64 come first), and it still holds the whole header.
            let without_end = |env: Envelope| Envelope { header: Header { stored_len: 0, ..env.header }, ..env };
            let expected = whole.clone().map(|mut env| {
                env.header.armored = true;
                without_end(env)
            });
            let got = inspect(&armor(data, eol), Limits::default());
            if let Ok(env) = &got {
                assert!(env.header.stored_len > env.header.header_len as u64, "armour {eol:?}: {env:?}");
            }
            assert_eq!(got.map(without_end), expected, "armour {eol:?}");
        }
    }
});
