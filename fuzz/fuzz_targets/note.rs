//! Signed notes (c2sp.org/signed-note): `Note::parse_bytes`, then verification.
//!
//! Properties: a note that parses renders back to exactly its bytes (the format has one
//! spelling); its text, signed afresh with the fuzz log key, opens with that key and yields the
//! same text; verification against the log and witness keys never panics, and what it accepts
//! was signed by them (the verified lines are theirs); the text read as a checkpoint, and every
//! line read as a cosignature, never panics, and a checkpoint that parses renders back exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::transparency::tlog::checkpoint::Checkpoint;
use sealpost::transparency::tlog::cosignature;
use sealpost::transparency::tlog::note::{self, Note, NoteVerifier};
use sealpost::transparency::verify::SavedState;

include!("keys.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(note) = Note::parse_bytes(data) else { return };
    assert_eq!(note.to_string().as_bytes(), data, "a parsed note renders back to its bytes");
    assert!(note.text().ends_with('\n'));
    assert!(!note.signatures().is_empty() && note.signatures().len() <= note::MAX_SIGNATURES);

    let verifiers: [&dyn NoteVerifier; 2] = [&*LOG_VERIFIER, &*WITNESS_VERIFIER];
    if let Ok(opened) = note.verify(&verifiers) {
        assert_eq!(opened.text, note.text());
        for sig in &opened.verified {
            let ours =
                [(LOG_VERIFIER.name(), LOG_VERIFIER.key_id()), (WITNESS_VERIFIER.name(), WITNESS_VERIFIER.key_id())];
            assert!(ours.contains(&(sig.name.as_str(), sig.key_id)));
        }
    }
    for sig in note.signatures() {
        let _ = cosignature::timestamp(sig);
    }

    let mut fresh = Note::unsigned(note.text()).expect("a parsed note's text is valid note text");
    fresh.sign_with(&*LOG).expect("the log key signs");
    let opened = note::open(&fresh.to_string(), &[&*LOG_VERIFIER]).expect("a fresh signature verifies");
    assert_eq!(opened.text, note.text());

    if let Ok(checkpoint) = Checkpoint::parse(note.text()) {
        assert_eq!(checkpoint.to_text(), note.text(), "a parsed checkpoint renders back to its text");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SavedState::parse(text);
    }
});
