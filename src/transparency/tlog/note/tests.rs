//! Tests of signed notes: Go key strings, malformed notes refused, unknown keys ignored, and a
//! property test that sign then open round-trips.

use super::*;
use proptest::prelude::*;

const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

fn signer(name: &str, seed: u8) -> Signer {
    Signer::from_seed(name, &[seed; 32]).unwrap()
}

#[test]
fn key_strings_round_trip_and_ids_are_checked() {
    let s = Signer::from_skey(SKEY).unwrap();
    assert_eq!(s.to_skey(), SKEY);
    assert_eq!(s.verifier().to_vkey(), VKEY);
    assert_eq!(format!("{s:?}"), "Signer(PeterNeumann+c74f20a3)");
    let wrong_id = VKEY.replace("c74f20a3", "c74f20a4");
    assert_eq!(
        Verifier::from_vkey(&wrong_id),
        Err(NoteError::KeyIdMismatch { stated: 0xc74f20a4, computed: 0xc74f20a3 })
    );
    assert_eq!(Verifier::from_vkey("PeterNeumann+c74f20a3"), Err(NoteError::MalformedKey));
    assert_eq!(Verifier::from_vkey(&VKEY.replace("c74f20a3", "C74F20A3")), Err(NoteError::MalformedKey));
    assert!(matches!(Signer::from_skey(VKEY), Err(NoteError::MalformedKey)));
    assert!(matches!(Signer::from_seed("a b", &[0; 32]), Err(NoteError::InvalidName { .. })));
}

#[test]
fn parse_refuses_malformed_notes() {
    let good = sign("hello\n", &[&signer("a.example", 1)]).unwrap();
    assert_eq!(Note::parse("hello\n"), Err(NoteError::MissingSignatures));
    assert_eq!(Note::parse("hello\n\n"), Err(NoteError::MissingSignatures));
    assert_eq!(Note::parse(good.trim_end()), Err(NoteError::MissingFinalNewline));
    assert_eq!(Note::parse(&good.replace("hello", "he\tllo")), Err(NoteError::ControlCharacter { byte: 9, offset: 2 }));
    assert_eq!(Note::parse(&good.replace('\u{2014}', "-")), Err(NoteError::MalformedSignatureLine { line: 1 }));
    assert_eq!(
        Note::parse(&good.replace("a.example", "a+example")),
        Err(NoteError::InvalidName { name: "a+example".into() })
    );
    assert_eq!(Note::parse("x\n\n\u{2014} a AAAA\n"), Err(NoteError::MalformedSignatureLine { line: 1 }));
    assert_eq!(Note::parse_bytes(b"\xff\n\n"), Err(NoteError::NotUtf8));
    let line = good.lines().last().unwrap();
    let many = format!("hello\n\n{}", format!("{line}\n").repeat(101));
    assert_eq!(Note::parse(&many), Err(NoteError::TooManySignatures { max: 100 }));
    assert_eq!(sign("no newline", &[&signer("a", 1)]), Err(NoteError::TextNotNewlineTerminated));
}

#[test]
fn open_ignores_unknown_keys_and_rejects_bad_known_signatures() {
    let (a, b) = (signer("a.example", 1), signer("b.example", 2));
    let note = sign("text\n\nwith a blank line\n", &[&a, &b]).unwrap();
    let opened = open(&note, &[&a.verifier()]).unwrap();
    assert_eq!(opened.text, "text\n\nwith a blank line\n");
    assert_eq!((opened.verified.len(), opened.unverified.len()), (1, 1));
    assert_eq!(open(&note, &[]), Err(NoteError::NoVerifiedSignature));
    // Same name, other key: a different key ID, so unknown, not invalid.
    let imposter = signer("a.example", 3);
    assert_eq!(open(&note, &[&imposter.verifier()]), Err(NoteError::NoVerifiedSignature));
    let tampered = note.replace("blank", "blonk");
    assert_eq!(
        open(&tampered, &[&a.verifier()]),
        Err(NoteError::InvalidSignature { name: "a.example".into(), key_id: a.key_id })
    );
    let av = a.verifier();
    assert_eq!(
        open(&note, &[&av, &av]),
        Err(NoteError::AmbiguousVerifier { name: "a.example".into(), key_id: a.key_id })
    );
}

#[test]
fn adding_a_signature_replaces_the_same_key() {
    let a = signer("a", 1);
    let mut note = Note::parse(&sign("t\n", &[&a]).unwrap()).unwrap();
    note.sign_with(&a).unwrap();
    note.sign_with(&signer("b", 2)).unwrap();
    assert_eq!(note.signatures().len(), 2);
    assert_eq!(Note::parse(&note.to_string()), Ok(note));
}

proptest! {
    #[test]
    fn sign_then_open_round_trips(
        text in "([a-zA-Z0-9 .,é—]{0,40}\n){1,5}",
        name in "[a-z0-9./-]{1,20}",
        seed in any::<[u8; 32]>(),
    ) {
        let s = Signer::from_seed(&name, &seed).unwrap();
        let note = sign(&text, &[&s]).unwrap();
        let opened = open(&note, &[&s.verifier()]).unwrap();
        prop_assert_eq!(opened.text, text);
        prop_assert_eq!(Verifier::from_vkey(&s.verifier().to_vkey()).unwrap(), s.verifier());
        prop_assert_eq!(Signer::from_skey(&s.to_skey()).unwrap().to_skey(), s.to_skey());
    }
}
