//! Log entries (`sealpost.audit/v1`), as `sealpost log verify` and receipt checks read them
//! from entry bundles anyone can serve.
//!
//! Properties: an entry that parses is in its one canonical form, so writing it out again from
//! what was parsed (version, the fixed keys in order, then the facts) gives exactly its bytes;
//! its time renders back as written; `get` agrees with the accessors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::audit::ENTRY_VERSION;
use sealpost::transparency::verify::parse_entry;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = parse_entry(data) else { return };
    let mut text = format!("{ENTRY_VERSION}\nevent {}\ntime {}\n", entry.event(), entry.time_text());
    for (key, value) in
        [("actor", entry.actor()), ("transfer", entry.transfer()), ("subject", entry.subject()), ("code", entry.code())]
    {
        if let Some(v) = value {
            text.push_str(&format!("{key} {v}\n"));
            assert_eq!(entry.get(key), Some(v));
        }
    }
    for (key, value) in entry.facts() {
        text.push_str(&format!("{key} {value}\n"));
        assert_eq!(entry.get(key), Some(value.as_str()));
        assert_eq!(entry.fact(key), Some(value.as_str()));
    }
    assert_eq!(text.as_bytes(), data, "a parsed entry writes back to its bytes");
    assert_eq!(entry.get("event"), Some(entry.event()));
    assert_eq!(entry.time().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), entry.time_text());
    let _ = (entry.digest(), entry.link(), entry.size());
});
