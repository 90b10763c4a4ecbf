//! Offline receipts (c2sp.org/tlog-proof): `TlogProof::parse`, then verification under a policy
//! trusting the fuzz log key.
//!
//! Properties: a proof that parses renders back to exactly its text and parses again equal;
//! verification never panics; a proof that verifies names an entry whose leaf hash, index and
//! proof lead to the checkpoint's root, and the checkpoint's origin is the log's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost::transparency::tlog::merkle;
use sealpost::transparency::tlog::proof::TlogProof;
use sealpost::transparency::tlog::quorum::Policy;

include!("keys.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(proof) = TlogProof::parse(text) else { return };
    assert_eq!(proof.to_text(), text, "a parsed proof renders back to its text");
    assert_eq!(TlogProof::parse(&proof.to_text()).as_ref(), Ok(&proof));
    assert!(proof.proof.len() <= sealpost::transparency::tlog::proof::MAX_PROOF_HASHES);

    let policy = Policy::log_only(LOG_VERIFIER.clone());
    if let Ok(verified) = proof.verify(&policy) {
        let cp = &verified.checkpoint.checkpoint;
        assert_eq!(cp.origin(), LOG_NAME);
        assert_eq!(Some(&verified.entry), proof.extra.as_ref());
        let leaf = merkle::leaf_hash(&verified.entry);
        assert_eq!(merkle::verify_inclusion(&leaf, proof.index, cp.size(), &proof.proof, cp.root()), Ok(()));
        assert!(proof.index < cp.size());
    }
    let _ = proof.verify_entry(b"sealpost.audit/v1\nevent upload.accepted\n", &policy);
});
