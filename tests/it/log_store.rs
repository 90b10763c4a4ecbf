//! The log in the database, through the library, on the database of the pass (SQLite, or
//! PostgreSQL with `SEALPOST_TEST_DATABASE=postgres`): integration, receipts, the whole log
//! verifying as an auditor sees it, one sequencer at a time with fencing, keys shared between
//! gateways, moving in a log kept in files by an earlier version; and the duties (one sweeper).

use std::collections::HashMap;
use std::path::Path;

use chrono::{TimeDelta, Utc};
use sealpost::audit::{Event, EventKind};
use sealpost::store::{LogLease, Store};
use sealpost::transparency::tlog::checkpoint::Checkpoint;
use sealpost::transparency::tlog::frontier::Frontier;
use sealpost::transparency::tlog::merkle::{self, leaf_hash};
use sealpost::transparency::tlog::note::{NoteSigner, NoteVerifier as _, Signer};
use sealpost::transparency::tlog::quorum::Policy;
use sealpost::transparency::tlog::tiles::{self, Tile};
use sealpost::transparency::verify::{SavedState, verify_log, verify_receipt};
use sealpost::transparency::writer::{Log, LogError};

use crate::common::database_url;

const SEED: [u8; 32] = [7; 32];
const ORIGIN: &str = "test.example/log";

/// The store of the pass for `dir` (every call for one `dir` opens the same database).
async fn store(dir: &Path, gateway: &str) -> Store {
    Store::connect(&database_url(dir)).await.expect("store").for_gateway(gateway)
}

async fn open(store: &Store, dir: &Path) -> Log {
    Log::open(store.clone(), &dir.join("log"), ORIGIN, &SEED).await.expect("open log")
}

async fn record(store: &Store, n: usize) {
    for i in 0..n {
        let event = Event::new(EventKind::UploadRefused).field("code", format!("plaintext{i}"));
        store.record(&event, Utc::now()).await.expect("record");
    }
}

/// Every file of the log as `/log/` serves it, read through `log`.
async fn files(log: &Log) -> HashMap<String, Vec<u8>> {
    let size = log.size();
    let mut out = HashMap::from([("checkpoint".to_owned(), log.checkpoint().into_bytes())]);
    for tile in tiles::tiles_for_size(size) {
        out.insert(tile.path(), log.hash_tile(tile).await.expect("hash tile"));
        if tile.level() == 0 {
            out.insert(tile.entries_path(), log.entry_bundle(tile).await.expect("bundle"));
        }
    }
    out
}

async fn verify(log: &Log, saved: Option<&SavedState>) -> SavedState {
    let files = files(log).await;
    let policy = Policy::log_only(log.verifier());
    let report = verify_log(|p: &str| Ok::<_, std::convert::Infallible>(files.get(p).cloned()), &policy, saved)
        .expect("the log verifies");
    report.state
}

async fn run_until_quiet(log: &Log) -> u64 {
    loop {
        let before = log.size();
        let after = log.step().await.expect("step");
        if after == before {
            return after;
        }
    }
}

#[tokio::test]
async fn integrates_events_into_tiles_a_checkpoint_and_receipts_that_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), "a").await;
    let log = open(&store, dir.path()).await;
    assert_eq!(log.size(), 0);
    // More than one full tile, so that level-1 tiles and partial tiles both appear.
    record(&store, 600).await;
    assert_eq!(run_until_quiet(&log).await, 600);
    let state = verify(&log, None).await;
    record(&store, 5).await;
    assert_eq!(run_until_quiet(&log).await, 605);
    verify(&log, Some(&state)).await;
    let entries = store.entries_from(300, 1).await.expect("entry");
    let receipt = log.receipt(300, entries[0].1.as_bytes()).await.expect("receipt");
    let summary = verify_receipt(&receipt, &Policy::log_only(log.verifier()), None).expect("receipt verifies");
    assert_eq!((summary.index, summary.tree_size), (300, 605));
    assert!(matches!(log.receipt(605, b"x").await, Err(LogError::NotYet { index: 605, size: 605 })));
}

#[tokio::test]
async fn a_second_gateway_follows_and_a_sequencer_that_lost_its_lease_publishes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sa, sb) = (store(dir.path(), "a").await, store(dir.path(), "b").await);
    let a = open(&sa, dir.path()).await;
    let b = open(&sb, dir.path()).await;
    record(&sa, 10).await;
    assert_eq!(run_until_quiet(&a).await, 10);
    assert!(a.is_sequencer());
    // B follows: it reads A's checkpoint and does not write.
    assert_eq!(b.step().await.expect("b follows"), 10);
    assert!(!b.is_sequencer());
    assert_eq!(b.checkpoint(), a.checkpoint());
    let before = verify(&b, None).await;

    // A stalls; its lease runs out and B takes over (as B's own round would, later).
    record(&sa, 7).await;
    let later = Utc::now() + TimeDelta::seconds(60);
    assert!(matches!(sb.take_log_lease(later, later + TimeDelta::seconds(8)).await.expect("lease"), LogLease::Held(2)));
    // A wakes up and tries to publish its batch: fenced, nothing written.
    assert_eq!(a.step().await.expect("a is fenced"), 10);
    assert!(!a.is_sequencer());
    assert_eq!(sa.log_head().await.expect("head").expect("some").size, 10);
    // B integrates what A could not, growing the same tree.
    assert_eq!(run_until_quiet(&b).await, 17);
    assert!(b.is_sequencer());
    let after = verify(&b, Some(&before)).await;
    assert_eq!(after.checkpoint().size(), 17);
    let leaves: Vec<_> =
        sa.entries_from(0, 100).await.expect("entries").iter().map(|(_, e)| leaf_hash(e.as_bytes())).collect();
    assert_eq!(*after.checkpoint().root(), merkle::root(&leaves));
    // A follows B now.
    assert_eq!(a.step().await.expect("a follows"), 17);
    assert_eq!(a.checkpoint(), b.checkpoint());
    // B stops and gives the lease back: A takes over at once.
    b.resign().await;
    record(&sa, 1).await;
    assert_eq!(run_until_quiet(&a).await, 18);
    assert!(a.is_sequencer());
    verify(&a, Some(&after)).await;
}

#[tokio::test]
async fn a_rotated_key_is_shared_through_the_database_and_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sa, sb) = (store(dir.path(), "a").await, store(dir.path(), "b").await);
    let a = open(&sa, dir.path()).await;
    let b = open(&sb, dir.path()).await;
    let new = b.rotate_key().await.expect("rotate");
    record(&sa, 3).await;
    run_until_quiet(&a).await;
    assert_eq!(a.verifiers().len(), 2, "A reloaded the keys B changed");
    for v in a.verifiers() {
        Checkpoint::open(&a.checkpoint(), &v, &[]).expect("signed by both keys");
    }
    let sealed = sa.log_keys().await.expect("keys");
    let stored = sealed.iter().find(|k| k.id == format!("{:08x}", new.key_id())).expect("stored");
    let bytes = stored.sealed.as_ref().expect("sealed");
    assert!(!bytes.windows(11).any(|w| w == b"PRIVATE+KEY"), "the secret key is not stored in clear");
    // The base key retires; the new one alone signs, on whichever gateway is the sequencer.
    let base_id = format!("{:08x}", Signer::from_seed(ORIGIN, &SEED).expect("base").key_id());
    b.retire_key(&base_id).await.expect("retire");
    record(&sa, 1).await;
    run_until_quiet(&a).await;
    assert_eq!(a.verifiers(), vec![new.clone()]);
    Checkpoint::open(&a.checkpoint(), &new, &[]).expect("signed by the new key");
    // A gateway whose signing key differs cannot open the sealed key, and says why.
    let other = Log::open(sa.clone(), &dir.path().join("log"), ORIGIN, &[9; 32]).await;
    assert!(other.is_err());
}

#[tokio::test]
async fn a_gateway_with_another_signing_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), "a").await;
    open(&store, dir.path()).await;
    let other = Log::open(store, &dir.path().join("log"), ORIGIN, &[9; 32]).await;
    assert!(matches!(other, Err(LogError::OtherSigningKey)));
}

#[tokio::test]
async fn a_log_kept_in_files_by_an_earlier_version_moves_into_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path(), "a").await;
    record(&store, 300).await;
    // The files an earlier version wrote for the first 290 events.
    let entries = store.entries_from(0, 290).await.expect("entries");
    let leaves: Vec<_> = entries.iter().map(|(_, e)| leaf_hash(e.as_bytes())).collect();
    let old = dir.path().join("log");
    for (tile, bytes) in tiles::build_tiles(&leaves) {
        let path = old.join(tile.path());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("tile");
    }
    std::fs::write(old.join("origin"), "files.example/log\n").expect("origin");
    let signer = Signer::from_seed("files.example/log", &SEED).expect("signer");
    let mut frontier = Frontier::new();
    for leaf in &leaves {
        frontier.append(*leaf, |_, _, _| {});
    }
    let checkpoint = Checkpoint::new("files.example/log", frontier.size(), frontier.root()).expect("checkpoint");
    let signers: [&dyn NoteSigner; 1] = [&signer];
    std::fs::write(old.join("checkpoint"), checkpoint.sign(&signers).expect("sign")).expect("checkpoint");

    let log = open(&store, dir.path()).await;
    assert_eq!(log.size(), 290);
    assert!(log.checkpoint().starts_with("files.example/log\n"), "the origin is kept");
    assert!(!old.exists() && dir.path().join("log.moved").exists());
    let before = SavedState::parse(&log.checkpoint()).expect("saved");
    assert_eq!(run_until_quiet(&log).await, 300);
    verify(&log, Some(&before)).await;
    // A tile of the moved log reads back as it was written.
    let tile = Tile::new(0, 0, 256).expect("tile");
    assert_eq!(log.hash_tile(tile).await.expect("tile"), tiles::build_tiles(&leaves)[0].1);
}

#[tokio::test]
async fn one_gateway_at_a_time_holds_a_duty_until_it_runs_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (store(dir.path(), "a").await, store(dir.path(), "b").await);
    let now = Utc::now();
    let until = now + TimeDelta::seconds(30);
    assert!(a.take_duty("sweeper", now, until).await.expect("a"));
    assert!(!b.take_duty("sweeper", now, until).await.expect("b"), "A holds it");
    assert!(a.take_duty("sweeper", now + TimeDelta::seconds(10), until).await.expect("a renews"));
    assert!(b.take_duty("other", now, until).await.expect("another duty is free"));
    let later = now + TimeDelta::seconds(31);
    assert!(b.take_duty("sweeper", later, later + TimeDelta::seconds(30)).await.expect("b"), "A's ran out");
    assert!(!a.take_duty("sweeper", later, later).await.expect("a"), "B holds it now");
}
