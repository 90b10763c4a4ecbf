//! Small logs built in memory with `tlog`, verified, then tampered with.

use std::collections::BTreeMap;
use std::convert::Infallible;

use super::*;
use crate::transparency::tlog::cosignature::Cosigner;
use crate::transparency::tlog::note::Signer;
use crate::transparency::tlog::tiles::{build_tiles, encode_bundle};

const ORIGIN: &str = "sealpost.test/log";

type Files = BTreeMap<String, Vec<u8>>;

fn log_key() -> Signer {
    Signer::from_seed(ORIGIN, &[1; 32]).unwrap()
}

fn witness() -> Cosigner {
    Cosigner::from_seed("witness.test", &[2; 32]).unwrap()
}

fn policy() -> Policy {
    Policy::log_only(log_key().verifier())
}

fn witnessed_policy() -> Policy {
    let text =
        format!("log {}\nwitness w1 {}\nquorum w1\n", log_key().verifier().to_vkey(), witness().verifier().to_vkey());
    Policy::parse(&text).unwrap()
}

fn id(c: char) -> String {
    c.to_string().repeat(32)
}

fn digest(n: u8) -> String {
    format!("sha256:{}", hex::encode([n; 32]))
}

fn entry(event: &str, lines: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("sealpost.audit/v1\nevent {event}\ntime 2026-11-21T12:00:00.000Z\n");
    for (k, v) in lines {
        s.push_str(&format!("{k} {v}\n"));
    }
    s.into_bytes()
}

fn upload(t: &str, d: &str) -> Vec<u8> {
    entry("upload.accepted", &[("transfer", t), ("size", "12"), ("digest", d)])
}

fn issued(t: &str, l: &str) -> Vec<u8> {
    entry("link.issued", &[("transfer", t), ("subject", &id('9')), ("link", l)])
}

fn link_event(event: &str, t: &str, l: &str) -> Vec<u8> {
    entry(event, &[("transfer", t), ("link", l)])
}

fn partial(t: &str, l: &str, range: &str) -> Vec<u8> {
    entry("download.partial", &[("transfer", t), ("link", l), ("range", range), ("size", "12")])
}

fn completed(t: &str, l: &str, d: &str) -> Vec<u8> {
    entry("download.completed", &[("transfer", t), ("link", l), ("size", "12"), ("digest", d)])
}

/// Two transfers: one downloaded through one link and the other link revoked, one expired.
fn history() -> Vec<Vec<u8>> {
    let (t, u, l1, l2, l3) = (id('a'), id('b'), id('1'), id('2'), id('3'));
    vec![
        upload(&t, &digest(1)),
        issued(&t, &l1),
        issued(&t, &l2),
        link_event("download.started", &t, &l1),
        completed(&t, &l1, &digest(1)),
        link_event("link.revoked", &t, &l2),
        upload(&u, &digest(2)),
        issued(&u, &l3),
        link_event("link.expired", &u, &l3),
    ]
}

fn leaves(entries: &[Vec<u8>]) -> Vec<Hash> {
    entries.iter().map(|e| merkle::leaf_hash(e)).collect()
}

fn signed_checkpoint(entries: &[Vec<u8>], cosign: bool) -> String {
    let c = Checkpoint::new(ORIGIN, entries.len() as u64, merkle::root(&leaves(entries))).unwrap();
    let mut note = Note::parse(&c.sign(&[&log_key()]).unwrap()).unwrap();
    if cosign {
        note.add_signature(witness().cosign(&c, 1_790_000_000).unwrap()).unwrap();
    }
    note.to_string()
}

/// The files a server would publish for `entries`, as tlog-tiles lays them out.
fn publish(entries: &[Vec<u8>]) -> Files {
    let mut files = Files::new();
    for (tile, bytes) in build_tiles(&leaves(entries)) {
        if tile.level() == 0 {
            let start = tile.index() as usize * 256;
            let bundle = encode_bundle(&entries[start..start + usize::from(tile.width())]).unwrap();
            files.insert(tile.entries_path(), bundle);
        }
        files.insert(tile.path(), bytes);
    }
    files.insert("checkpoint".into(), signed_checkpoint(entries, false).into_bytes());
    files
}

fn verify_with(files: &Files, policy: &Policy, saved: Option<&SavedState>) -> Result<LogReport, LogError<Infallible>> {
    verify_log(|path: &str| Ok(files.get(path).cloned()), policy, saved)
}

fn verify(files: &Files, saved: Option<&SavedState>) -> Result<LogReport, LogError<Infallible>> {
    verify_with(files, &policy(), saved)
}

fn saved_from(entries: &[Vec<u8>]) -> SavedState {
    SavedState::parse(&signed_checkpoint(entries, false)).unwrap()
}

#[test]
fn a_good_log_verifies_and_counts_its_events() {
    let entries = history();
    let files = publish(&entries);
    let report = verify(&files, None).unwrap();
    assert_eq!((report.origin.as_str(), report.size, report.root), (ORIGIN, 9, merkle::root(&leaves(&entries))));
    assert_eq!((report.tiles, report.bundles, report.previous_size), (1, 1, None));
    let counts: Vec<(&str, u64)> = report.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        counts,
        [
            ("download.completed", 1),
            ("download.started", 1),
            ("link.expired", 1),
            ("link.issued", 3),
            ("link.revoked", 1),
            ("upload.accepted", 2)
        ]
    );
    assert_eq!(report.state.text().as_bytes(), files["checkpoint"].as_slice());
    assert!(report.witnesses.is_empty());
}

#[test]
fn an_empty_log_verifies() {
    let report = verify(&publish(&[]), None).unwrap();
    assert_eq!((report.size, report.tiles, report.bundles), (0, 0, 0));
}

#[test]
fn a_log_of_several_tiles_verifies_and_a_level_one_tile_is_checked() {
    let entries: Vec<Vec<u8>> = (0..600u32).map(|i| upload(&format!("{i:032x}"), &digest(3))).collect();
    let mut files = publish(&entries);
    let report = verify(&files, None).unwrap();
    assert_eq!((report.size, report.tiles, report.bundles), (600, 4, 3));
    assert!(files.contains_key("tile/1/000.p/2") && files.contains_key("tile/entries/002.p/88"));
    files.get_mut("tile/1/000.p/2").unwrap()[40] ^= 1;
    assert_eq!(
        verify(&files, None).unwrap_err(),
        LogError::TileMismatch { path: "tile/1/000.p/2".into(), position: 1, first_leaf: 256 }
    );
}

#[test]
fn a_witnessed_log_reports_its_witnesses_and_needs_them() {
    let entries = history();
    let mut files = publish(&entries);
    assert_eq!(
        verify_with(&files, &witnessed_policy(), None).unwrap_err(),
        LogError::Checkpoint(PolicyError::QuorumNotMet)
    );
    files.insert("checkpoint".into(), signed_checkpoint(&entries, true).into_bytes());
    assert_eq!(verify_with(&files, &witnessed_policy(), None).unwrap().witnesses, ["w1"]);
}

#[test]
fn flipping_any_byte_of_a_tile_an_entry_bundle_or_the_checkpoint_is_detected() {
    let files = publish(&history());
    for (path, bytes) in &files {
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80] {
                let mut bad = files.clone();
                bad.get_mut(path).unwrap()[i] ^= flip;
                assert!(verify(&bad, None).is_err(), "{path} byte {i} flipped with {flip:#x} still verifies");
            }
        }
    }
}

#[test]
fn tampering_errors_name_the_file_and_the_place() {
    let files = publish(&history());
    let tile = "tile/0/000.p/9";
    let bundle = "tile/entries/000.p/9";
    let mut bad = files.clone();
    bad.get_mut(tile).unwrap()[3 * 32 + 5] ^= 1;
    assert_eq!(
        verify(&bad, None).unwrap_err(),
        LogError::TileMismatch { path: tile.into(), position: 3, first_leaf: 3 }
    );
    let mut bad = files.clone();
    let second_entry = 2 + history()[0].len() + 2;
    bad.get_mut(bundle).unwrap()[second_entry + 30] ^= 1;
    assert_eq!(
        verify(&bad, None).unwrap_err(),
        LogError::TileMismatch { path: tile.into(), position: 1, first_leaf: 1 }
    );
    let mut bad = files.clone();
    bad.get_mut(bundle).unwrap().pop();
    assert_eq!(
        verify(&bad, None).unwrap_err(),
        LogError::Bundle { path: bundle.into(), source: TileError::BundleTruncated { index: 8 } }
    );
    let mut bad = files.clone();
    bad.get_mut(tile).unwrap().pop();
    assert_eq!(verify(&bad, None).unwrap_err(), LogError::TileLength { path: tile.into(), expected: 288, actual: 287 });
    let mut bad = files.clone();
    bad.remove(bundle);
    assert_eq!(verify(&bad, None).unwrap_err(), LogError::Missing { path: bundle.into() });
    let mut bad = files.clone();
    bad.remove("checkpoint");
    assert_eq!(verify(&bad, None).unwrap_err(), LogError::Missing { path: "checkpoint".into() });
    let mut bad = files;
    let other = Signer::from_seed(ORIGIN, &[7; 32]).unwrap();
    let c = Checkpoint::new(ORIGIN, 9, merkle::root(&leaves(&history()))).unwrap();
    bad.insert("checkpoint".into(), c.sign(&[&other]).unwrap().into_bytes());
    assert_eq!(
        verify(&bad, None).unwrap_err(),
        LogError::Checkpoint(PolicyError::Checkpoint(CheckpointError::Note(NoteError::NoVerifiedSignature)))
    );
}

#[test]
fn consistent_tiles_for_other_entries_do_not_match_the_signed_root() {
    let mut entries = history();
    let signed = signed_checkpoint(&entries, false);
    entries[6] = upload(&id('b'), &digest(9));
    let mut files = publish(&entries);
    files.insert("checkpoint".into(), signed.into_bytes());
    let err = verify(&files, None).unwrap_err();
    assert_eq!(
        err,
        LogError::RootMismatch {
            size: 9,
            computed: merkle::root(&leaves(&entries)),
            expected: merkle::root(&leaves(&history()))
        }
    );
}

#[test]
fn a_log_that_grew_from_the_saved_checkpoint_verifies() {
    let entries = history();
    let saved = saved_from(&entries[..5]);
    let report = verify(&publish(&entries), Some(&saved)).unwrap();
    assert_eq!((report.size, report.previous_size), (9, Some(5)));
    let same = saved_from(&entries);
    assert_eq!(verify(&publish(&entries), Some(&same)).unwrap().previous_size, Some(9));
}

#[test]
fn a_truncated_log_is_detected_against_the_saved_checkpoint() {
    let entries = history();
    let saved = saved_from(&entries);
    assert_eq!(verify(&publish(&entries[..5]), Some(&saved)).unwrap_err(), LogError::Truncated { saved: 9, size: 5 });
}

#[test]
fn a_rewritten_or_forked_history_is_detected_against_the_saved_checkpoint() {
    let entries = history();
    let saved = saved_from(&entries[..5]);
    let mut rewritten = entries.clone();
    rewritten[2] = issued(&id('a'), &id('7'));
    rewritten[5] = link_event("link.revoked", &id('a'), &id('7'));
    let want = |n: usize| LogError::Rewritten {
        size: n as u64,
        saved_root: merkle::root(&leaves(&entries[..n])),
        root: merkle::root(&leaves(&rewritten[..n])),
    };
    assert_eq!(verify(&publish(&rewritten), Some(&saved)).unwrap_err(), want(5));
    let fork = saved_from(&entries);
    assert_eq!(verify(&publish(&rewritten), Some(&fork)).unwrap_err(), want(9));
}

#[test]
fn a_checkpoint_for_another_log_is_refused_against_the_saved_one() {
    let other = Signer::from_seed("elsewhere.test/log", &[1; 32]).unwrap();
    let c = Checkpoint::new("elsewhere.test/log", 0, merkle::empty_root()).unwrap();
    let saved = SavedState::parse(&c.sign(&[&other]).unwrap()).unwrap();
    assert_eq!(
        verify(&publish(&history()), Some(&saved)).unwrap_err(),
        LogError::OriginChanged { saved: "elsewhere.test/log".into(), origin: ORIGIN.into() }
    );
}

#[test]
fn a_saved_state_that_is_not_a_checkpoint_is_refused() {
    assert_eq!(
        SavedState::parse("hello\n"),
        Err(StateError::Malformed(CheckpointError::Note(NoteError::MissingSignatures)))
    );
}

#[test]
fn each_lifecycle_violation_is_reported_with_its_entry() {
    let (t, u, l1, l2) = (id('a'), id('b'), id('1'), id('2'));
    let (d1, d2) = (digest(1), digest(2));
    let started = |t: &str, l: &str| link_event("download.started", t, l);
    let cases: Vec<(Vec<Vec<u8>>, Violation)> = vec![
        (
            vec![started(&t, &l1)],
            Violation::UnknownTransfer { index: 0, event: "download.started".into(), transfer: t.clone() },
        ),
        (
            vec![upload(&t, &d1), completed(&t, &l1, &d1)],
            Violation::UnknownLink { index: 1, event: "download.completed".into(), link: l1.clone() },
        ),
        (
            vec![upload(&t, &d1), partial(&t, &l1, "0-63")],
            Violation::UnknownLink { index: 1, event: "download.partial".into(), link: l1.clone() },
        ),
        (
            vec![upload(&t, &d1), upload(&u, &d2), issued(&t, &l1), partial(&u, &l1, "0-63")],
            Violation::LinkTransferMismatch {
                index: 3,
                event: "download.partial".into(),
                link: l1.clone(),
                transfer: u.clone(),
                issued_for: t.clone(),
            },
        ),
        (
            vec![upload(&t, &d1), upload(&u, &d2), issued(&t, &l1), started(&u, &l1)],
            Violation::LinkTransferMismatch {
                index: 3,
                event: "download.started".into(),
                link: l1.clone(),
                transfer: u.clone(),
                issued_for: t.clone(),
            },
        ),
        (
            vec![upload(&t, &d1), issued(&t, &l1), started(&t, &l1), completed(&t, &l1, &d1), completed(&t, &l1, &d1)],
            Violation::SecondCompletion { index: 4, link: l1.clone(), first: 3 },
        ),
        (
            vec![upload(&t, &d1), issued(&t, &l1), link_event("link.revoked", &t, &l1), started(&t, &l1)],
            Violation::DownloadAfterEnd { index: 3, link: l1.clone(), ended_by: "link.revoked".into(), ended_at: 2 },
        ),
        (
            vec![upload(&t, &d1), issued(&t, &l1), link_event("link.expired", &t, &l1), started(&t, &l1)],
            Violation::DownloadAfterEnd { index: 3, link: l1.clone(), ended_by: "link.expired".into(), ended_at: 2 },
        ),
        (
            vec![upload(&t, &d1), issued(&t, &l1), started(&t, &l1), completed(&t, &l1, &d1), started(&t, &l1)],
            Violation::DownloadAfterEnd {
                index: 4,
                link: l1.clone(),
                ended_by: "download.completed".into(),
                ended_at: 3,
            },
        ),
        (
            vec![upload(&t, &d1), issued(&t, &l2), entry("transfer.recalled", &[("transfer", &t)]), started(&t, &l2)],
            Violation::DownloadAfterEnd {
                index: 3,
                link: l2.clone(),
                ended_by: "transfer.recalled".into(),
                ended_at: 2,
            },
        ),
        (
            vec![upload(&t, &d1), issued(&t, &l1), started(&t, &l1), completed(&t, &l1, &d2)],
            Violation::DigestMismatch { index: 3, transfer: t.clone(), uploaded: d1.clone(), downloaded: d2.clone() },
        ),
        (
            vec![upload(&t, &d1), upload(&t, &d2)],
            Violation::DuplicateUpload { index: 1, transfer: t.clone(), first: 0 },
        ),
    ];
    for (entries, want) in cases {
        assert_eq!(verify(&publish(&entries), None).unwrap_err(), LogError::Lifecycle(want.clone()), "{want}");
    }
}

#[test]
fn failed_downloads_can_be_retried_and_a_malformed_entry_is_named() {
    let (t, l1) = (id('a'), id('1'));
    let retried = vec![
        upload(&t, &digest(1)),
        issued(&t, &l1),
        link_event("download.started", &t, &l1),
        partial(&t, &l1, "0-63"),
        link_event("download.started", &t, &l1),
        link_event("download.failed", &t, &l1),
        link_event("download.started", &t, &l1),
        completed(&t, &l1, &digest(1)),
    ];
    assert_eq!(verify(&publish(&retried), None).unwrap().size, 8);
    let broken = vec![upload(&t, &digest(1)), b"sealpost.audit/v1\nevent x.y\n".to_vec()];
    assert_eq!(
        verify(&publish(&broken), None).unwrap_err(),
        LogError::Entry { index: 1, source: EntryError::MissingKey { key: "time" } }
    );
}

fn receipt(entries: &[Vec<u8>], index: u64, cosign: bool) -> String {
    TlogProof {
        extra: Some(entries[index as usize].clone()),
        index,
        proof: merkle::inclusion_proof(index, &leaves(entries)).unwrap(),
        checkpoint: signed_checkpoint(entries, cosign),
    }
    .to_text()
}

#[test]
fn a_good_receipt_verifies_and_summarises_its_entry() {
    let entries = history();
    let summary = verify_receipt(&receipt(&entries, 4, false), &policy(), None).unwrap();
    assert_eq!(summary.entry, parse_entry(&entries[4]).unwrap());
    assert_eq!((summary.index, summary.tree_size, summary.origin.as_str()), (4, 9, ORIGIN));
    assert_eq!((summary.entry.event(), summary.entry.transfer()), ("download.completed", Some(id('a').as_str())));
    assert!(summary.witnesses.is_empty());
    let witnessed = verify_receipt(&receipt(&entries, 0, true), &witnessed_policy(), None).unwrap();
    assert_eq!(witnessed.witnesses, ["w1"]);
    assert_eq!(
        verify_receipt(&receipt(&entries, 0, false), &witnessed_policy(), None),
        Err(ReceiptError::Proof(ProofError::Checkpoint(PolicyError::QuorumNotMet)))
    );
}

#[test]
fn flipping_any_byte_of_a_receipt_is_detected() {
    let text = receipt(&history(), 4, false).into_bytes();
    for i in 0..text.len() {
        for flip in [0x01u8, 0x20] {
            let mut bad = text.clone();
            bad[i] ^= flip;
            let Ok(s) = String::from_utf8(bad) else { continue };
            assert!(verify_receipt(&s, &policy(), None).is_err(), "byte {i} flipped with {flip:#x} still verifies");
        }
    }
}

#[test]
fn a_receipt_checks_the_expected_digest() {
    let entries = history();
    let text = receipt(&entries, 0, false);
    let hex_upper = digest(1).trim_start_matches("sha256:").to_ascii_uppercase();
    assert!(verify_receipt(&text, &policy(), Some(&digest(1))).is_ok());
    assert!(verify_receipt(&text, &policy(), Some(&hex_upper)).is_ok());
    assert_eq!(
        verify_receipt(&text, &policy(), Some(&digest(2))),
        Err(ReceiptError::DigestMismatch { expected: digest(2), actual: digest(1) })
    );
    assert_eq!(
        verify_receipt(&receipt(&entries, 1, false), &policy(), Some(&digest(1))),
        Err(ReceiptError::NoDigest { event: "link.issued".into() })
    );
}

#[test]
fn a_receipt_for_an_entry_that_is_not_an_audit_event_is_refused() {
    let entries = vec![b"hello\n".to_vec()];
    assert_eq!(
        verify_receipt(&receipt(&entries, 0, false), &policy(), None),
        Err(ReceiptError::Entry(EntryError::BadVersion { found: "hello".into() }))
    );
    let other = Policy::log_only(Signer::from_seed(ORIGIN, &[8; 32]).unwrap().verifier());
    assert_eq!(
        verify_receipt(&receipt(&history(), 0, false), &other, None),
        Err(ReceiptError::Proof(ProofError::Checkpoint(PolicyError::Checkpoint(CheckpointError::Note(
            NoteError::NoVerifiedSignature
        )))))
    );
}
