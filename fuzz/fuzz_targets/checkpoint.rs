//! Checkpoints (c2sp.org/tlog-checkpoint): the input is read both as checkpoint text and as a
//! signed checkpoint note opened with the fuzz log key and witness.
//!
//! Properties: a checkpoint that parses renders back to exactly its text, and building it again
//! from its parts gives the same value; signed with the log key it opens again, equal, and a
//! witness cosignature on it verifies and carries its timestamp; opening the input as a signed
//! note never panics, and what opens has the log key's origin and renders back to its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::transparency::tlog::checkpoint::Checkpoint;
use sealpost::transparency::tlog::cosignature;
use sealpost::transparency::tlog::note::{Note, NoteVerifier};
use sealpost::transparency::tlog::quorum::Policy;

include!("keys.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Ok(cp) = Checkpoint::parse(text) {
        assert_eq!(cp.to_text(), text, "a parsed checkpoint renders back to its text");
        let again = Checkpoint::with_extensions(cp.origin(), cp.size(), *cp.root(), cp.extensions().to_vec());
        assert_eq!(again.as_ref(), Ok(&cp));
        // Signed by a log named after its origin, it opens again.
        if let Ok(signer) = sealpost::transparency::tlog::note::Signer::from_seed(cp.origin(), &[9; 32]) {
            let signed = cp.sign(&[&signer]).expect("a valid checkpoint signs");
            let verifier = signer.verifier();
            let (opened, _) = Checkpoint::open(&signed, &verifier, &[]).expect("own signature opens");
            assert_eq!(opened, cp);
            let time = u64::from(data.len() as u32) * 1_000_003;
            let mut note = Note::parse(&signed).expect("a signed checkpoint is a note");
            note.add_signature(WITNESS.cosign(&cp, time).expect("cosigns")).expect("room for a cosignature");
            let witness: &dyn NoteVerifier = &*WITNESS_VERIFIER;
            let (reopened, opened_note) =
                Checkpoint::open(&note.to_string(), &verifier, &[witness]).expect("cosigned checkpoint opens");
            assert_eq!(reopened, cp);
            // By name and key ID: a log may share the witness's name (its origin is anything),
            // and then its own signature carries that name too.
            let cosig = opened_note
                .verified
                .iter()
                .find(|s| s.name == WITNESS_NAME && s.key_id == WITNESS_VERIFIER.key_id())
                .expect("cosignature kept");
            assert_eq!(cosignature::timestamp(cosig), Ok(time));
        }
    }

    let witness: &dyn NoteVerifier = &*WITNESS_VERIFIER;
    if let Ok((cp, opened)) = Checkpoint::open(text, &LOG_VERIFIER, &[witness]) {
        assert_eq!(cp.origin(), LOG_NAME);
        assert_eq!(cp.to_text(), opened.text);
    }
    let _ = Policy::log_only(LOG_VERIFIER.clone()).verify_checkpoint(text);
});
