//! The payload checks alone: the input is the payload behind a real age header (age 1.1.1, one
//! X25519 recipient), so every mutation exercises STREAM lengths, file signatures and the
//! randomness tests rather than the header grammar.
//!
//! Properties: chunking never matters; STREAM's length rule is exact (a length it forbids is
//! refused, an accepted payload has STREAM's chunk count); a payload of one repeated byte value,
//! or of plain text only, is always refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::envelope::{EnvelopeError, Inspector, Limits, inspect};

const HEADER: &[u8] = b"age-encryption.org/v1
-> X25519 OarofLg7W549MbWZ9eqyvR6w5NMwS1uQLlz0KChcyEM
8z84WpB1vhvG7LH3gYnYcnLaCP3BnJ5kf2zbtQSetSo
--- OemM505iQI9h0ggkJsR3eErA+N6sNU56MvJTIyhd1/w
";

const CHUNK: u64 = 65_552;

/// Whether STREAM allows a payload of `len` bytes (c2sp.org/age "Payload"), written out
/// independently of the inspector's own rule.
fn stream_allows(len: u64) -> bool {
    if len < 32 {
        return false;
    }
    let sealed = len - 16;
    let (full, rest) = (sealed / CHUNK, sealed % CHUNK);
    match rest {
        0 => full >= 1,
        1..=15 => false,
        16 => full == 0,
        _ => true,
    }
}

fuzz_target!(|payload: &[u8]| {
    let mut file = HEADER.to_vec();
    file.extend_from_slice(payload);
    let whole = inspect(&file, Limits::default());

    let mut inspector = Inspector::new(Limits::default());
    inspector.update(HEADER).expect("the header is valid");
    let step = 1 + payload.len() % 97;
    let chunked = payload.chunks(step).try_for_each(|c| inspector.update(c)).and_then(|()| inspector.finish());
    assert_eq!(chunked, whole, "chunks of {step}");

    let len = payload.len() as u64;
    match &whole {
        Ok(env) => {
            assert!(stream_allows(len), "a length STREAM forbids was accepted: {len}");
            assert_eq!(env.payload_len, len);
            assert_eq!(env.chunks, (len - 16).div_ceil(CHUNK));
            assert_eq!(env.header.header_len, HEADER.len());
        }
        Err(EnvelopeError::PayloadLength { len: l }) => {
            assert_eq!(*l, len);
            assert!(!stream_allows(len));
        }
        Err(_) => {}
    }
    if let Some(&first) = payload.first()
        && payload.iter().all(|&b| b == first)
    {
        assert!(whole.is_err(), "a payload of one byte value was accepted");
    }
    if !payload.is_empty() && payload.iter().all(|&b| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7e)) {
        assert!(whole.is_err(), "a plain text payload was accepted");
    }
});
