//! The witness's `add-checkpoint` request body (c2sp.org/tlog-witness), which any client may
//! post to a running witness.
//!
//! Properties: a body that parses formats back to exactly its bytes (`format_body` of its
//! parts); the proof has at most 63 hashes; its note parses again equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::transparency::tlog::note::Note;
use sealpost::transparency::witness::request::{self, AddCheckpointRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(req) = AddCheckpointRequest::parse(data) else { return };
    let note = req.note.to_string();
    assert_eq!(request::format_body(req.old_size, &req.proof, &note).as_bytes(), data, "formats back to its bytes");
    assert!(req.proof.len() <= request::MAX_PROOF_LINES);
    assert_eq!(Note::parse(&note).as_ref(), Ok(&req.note));
});
