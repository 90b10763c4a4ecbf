//! The sender's manifest (`sealpost.manifest/v2`, and the legacy v1) and the recipient's
//! delivery statement (`sealpost.delivery/v1`): signed texts that arrive from clients.
//!
//! Properties: each has one spelling, so whatever parses renders back to exactly its bytes;
//! a v2 manifest built again from its parts is equal (recipients sorted bytewise, each once);
//! `parse_any` agrees with the version-specific parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::delivery::Statement;
use sealpost::manifest::{self, AnyManifest, ManifestV1, ManifestV2};

fuzz_target!(|data: &[u8]| {
    let v2 = ManifestV2::parse_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(v2.is_err());
        return;
    };
    if let Ok(m) = &v2 {
        assert_eq!(m.render(), text, "a parsed v2 manifest renders back to its text");
        let again =
            ManifestV2::new(m.sender.clone(), m.digest.clone(), m.classification, m.expires, m.recipients.clone());
        assert_eq!(&again, m);
        let names: Vec<String> = m.recipients.iter().map(ToString::to_string).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "recipients sorted bytewise, each once");
    }
    let v1 = ManifestV1::parse(text);
    if let Some(m) = &v1 {
        assert_eq!(ManifestV1::text(&m.transfer, &m.digest, &m.recipients), text);
    }
    match manifest::parse_any(text) {
        Ok(AnyManifest::V1(m)) => assert_eq!(Some(m), v1),
        Ok(AnyManifest::V2(m)) => assert_eq!(Ok(m), v2),
        Err(_) => assert!(v1.is_none() && v2.is_err()),
    }
    if let Ok(s) = Statement::parse(text) {
        assert_eq!(s.text(), text, "a parsed delivery statement renders back to its text");
    }
});
