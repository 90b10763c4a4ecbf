//! The HTTP headers the gateway parses itself: `Range` on `POST /api/v1/redeem`, and the tus
//! headers `Upload-Length`, `Upload-Offset` (and a `PATCH`'s `Content-Length`, read by the same
//! parser) and `Upload-Metadata`. The input is one header value, given to each parser (through
//! `sealpost::fuzzing`, which builds the header map a request would carry).
//!
//! Properties: a refusal is always 400 `bad_request`, never a 5xx; a range accepted is exactly
//! `bytes=A-` or `bytes=A-B` with A <= B in decimal digits (RFC 9110 `int-range`), re-rendered it
//! parses to the same range; a tus number accepted is `1*DIGIT` (tus 1.0: a non-negative
//! integer) and its value; an accepted `Upload-Metadata` names each key once, decodes each value
//! from base64 to UTF-8, and puts only `to`, `expires` and `classification` into the query.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use sealpost::fuzzing::{self, ErrorCode, Refusal, TusNumber};

const BAD_REQUEST: Refusal = Refusal { status: 400, code: ErrorCode::BadRequest };

/// `1*DIGIT` as a u64, if it fits.
fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fuzz_target!(|data: &[u8]| {
    let text = std::str::from_utf8(data).ok();

    if let Some(range) = fuzzing::range(data) {
        match range {
            Ok(Some(r)) => {
                let spec = text.and_then(|t| t.strip_prefix("bytes=")).expect("accepted ranges are `bytes=`").trim();
                let (a, b) = spec.split_once('-').expect("accepted ranges have a dash");
                assert_eq!(digits(a), Some(r.start));
                assert_eq!(if b.is_empty() { None } else { Some(digits(b).expect("digits")) }, r.last);
                assert!(r.last.is_none_or(|last| last >= r.start));
                let canonical = match r.last {
                    Some(last) => format!("bytes={}-{last}", r.start),
                    None => format!("bytes={}-", r.start),
                };
                assert_eq!(fuzzing::range(canonical.as_bytes()), Some(Ok(Some(r))));
            }
            Ok(None) => panic!("a Range header that is present was read as absent"),
            Err(refusal) => assert_eq!(refusal, BAD_REQUEST),
        }
    }

    for which in [TusNumber::UploadLength, TusNumber::UploadOffset, TusNumber::ContentLength] {
        match fuzzing::tus_number(which, data) {
            Some(Ok(Some(n))) => assert_eq!(text.and_then(digits), Some(n), "{which:?} accepted {text:?}"),
            Some(Ok(None)) => panic!("a {which:?} header that is present was read as absent"),
            Some(Err(refusal)) => assert_eq!(refusal, BAD_REQUEST),
            None => {}
        }
    }

    match fuzzing::tus_metadata(data) {
        Some(Ok((query, parts))) => {
            let text = text.expect("accepted metadata is ASCII");
            let mut keys = Vec::new();
            for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let key = pair.split_once(' ').map_or(pair, |(k, _)| k);
                assert!(!keys.contains(&key), "`{key}` named twice");
                keys.push(key);
            }
            assert!(keys.contains(&"to"));
            let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            for (k, v) in &pairs {
                assert!(matches!(k.as_str(), "to" | "expires" | "classification"), "{k} in the query");
                assert!(!v.is_empty() || k != "to");
                if k == "to" {
                    assert!(!v.chars().any(char::is_whitespace));
                }
            }
            for key in ["expires", "classification"] {
                assert!(pairs.iter().filter(|(k, _)| k == key).count() <= 1);
            }
            if let Some(key) = &parts.key {
                let encoded = text
                    .split(',')
                    .map(str::trim)
                    .map(|p| p.split_once(' ').unwrap_or((p, "")))
                    .find_map(|(k, v)| (k == "manifest_key").then(|| v.trim()));
                assert_eq!(encoded.and_then(|e| STANDARD.decode(e).ok()).as_deref(), Some(key.as_bytes()));
            }
        }
        Some(Err(refusal)) => assert_eq!(refusal, BAD_REQUEST),
        None => {}
    }
});
