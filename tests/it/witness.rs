//! The witness on 127.0.0.1:0 with a temporary state directory, spoken to over HTTP by the
//! gateway's client and by raw requests: it cosigns only checkpoints that extend what it saw.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use sealpost::transparency::tlog::Hash;
use sealpost::transparency::tlog::checkpoint::Checkpoint;
use sealpost::transparency::tlog::cosignature::{self, CosignatureVerifier, Cosigner};
use sealpost::transparency::tlog::merkle::{consistency_proof, leaf_hash, root};
use sealpost::transparency::tlog::note::{Note, NoteSignature, Signer};
use sealpost::transparency::witness::{self, Witness, WitnessClientError};

const ORIGIN: &str = "gateway.example/log";
const WITNESS_SEED: [u8; 32] = [9; 32];

/// A running witness.
struct TestWitness {
    url: String,
    verifier: CosignatureVerifier,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestWitness {
    async fn start(state: &Path, log_keys: &[&Signer]) -> Self {
        let cosigner = Cosigner::from_seed("witness.example/w1", &WITNESS_SEED).unwrap();
        let verifier = cosigner.verifier();
        let witness = Witness::open(state, cosigner, log_keys.iter().map(|s| s.verifier())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(witness::run(listener, Arc::new(witness), async move {
            let _ = stopped.await;
        }));
        TestWitness { url, verifier, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }

    /// Posts a raw body; returns status, content type and body.
    async fn post(&self, body: String) -> (u16, String, String) {
        let response =
            reqwest::Client::new().post(format!("{}/add-checkpoint", self.url)).body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }
}

/// A log: its key and the leaf hashes of its entries.
struct Log {
    key: Signer,
    leaves: Vec<Hash>,
}

impl Log {
    fn new(seed: u8, entries: u64, prefix: &str) -> Self {
        let key = Signer::from_seed(ORIGIN, &[seed; 32]).unwrap();
        let leaves = (0..entries).map(|i| leaf_hash(format!("{prefix} {i}").as_bytes())).collect();
        Log { key, leaves }
    }

    fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint::new(ORIGIN, size, root(&self.leaves[..size as usize])).unwrap()
    }

    fn signed(&self, size: u64) -> String {
        self.checkpoint(size).sign(&[&self.key]).unwrap()
    }

    fn proof(&self, old: u64, size: u64) -> Vec<Hash> {
        consistency_proof(old, &self.leaves[..size as usize]).unwrap()
    }
}

fn body(old: u64, proof: &[Hash], signed: &str) -> String {
    witness::format_body(old, proof, signed)
}

/// Checks that `lines` hold one valid cosignature by `witness` over `signed`, and returns its
/// timestamp.
fn check_cosigned(signed: &str, log: &Signer, witness: &CosignatureVerifier, lines: &[NoteSignature]) -> u64 {
    assert_eq!(lines.len(), 1);
    let mut note = Note::parse(signed).unwrap();
    note.add_signature(lines[0].clone()).unwrap();
    let (_, opened) = Checkpoint::open(&note.to_string(), &log.verifier(), &[witness]).unwrap();
    assert_eq!(opened.verified.len(), 2);
    assert_eq!(opened.verified[1], lines[0]);
    cosignature::timestamp(&lines[0]).unwrap()
}

#[tokio::test]
async fn the_first_checkpoint_from_size_zero_is_cosigned() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    let http = reqwest::Client::new();
    let signed = log.signed(5);
    let lines = witness::add_checkpoint(&http, &w.url, 0, &[], &signed).await.unwrap();
    let time = check_cosigned(&signed, &log.key, &w.verifier, &lines);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(time > 0 && time.abs_diff(now) < 60, "timestamp {time} is not now ({now})");
    // The answer is exactly the cosignature lines.
    let (status, content_type, text) = w.post(body(5, &[], &signed)).await;
    assert_eq!((status, content_type.as_str()), (200, "text/plain; charset=utf-8"));
    assert!(text.starts_with("\u{2014} witness.example/w1 ") && text.ends_with('\n') && text.lines().count() == 1);
    w.stop().await;
}

#[tokio::test]
async fn a_consistent_bigger_checkpoint_is_cosigned() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    let http = reqwest::Client::new();
    witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(5)).await.unwrap();
    for (old, new) in [(5, 12), (12, 13), (13, 16), (16, 20)] {
        let signed = log.signed(new);
        let lines = witness::add_checkpoint(&http, &w.url, old, &log.proof(old, new), &signed).await.unwrap();
        check_cosigned(&signed, &log.key, &w.verifier, &lines);
    }
    // Sending the same checkpoint again is cosigned again; nothing changes.
    let lines = witness::add_checkpoint(&http, &w.url, 20, &[], &log.signed(20)).await.unwrap();
    check_cosigned(&log.signed(20), &log.key, &w.verifier, &lines);
    w.stop().await;
}

#[tokio::test]
async fn a_wrong_old_size_is_a_conflict_that_names_the_known_size() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    let http = reqwest::Client::new();
    witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(5)).await.unwrap();
    let (status, content_type, text) = w.post(body(3, &log.proof(3, 12), &log.signed(12))).await;
    assert_eq!((status, content_type.as_str(), text.as_str()), (409, "text/x.tlog.size", "5\n"));
    assert_eq!(
        witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(12)).await,
        Err(WitnessClientError::Conflict { known_size: 5 })
    );
    // Retrying from the known size succeeds.
    let lines = witness::add_checkpoint(&http, &w.url, 5, &log.proof(5, 12), &log.signed(12)).await.unwrap();
    check_cosigned(&log.signed(12), &log.key, &w.verifier, &lines);
    w.stop().await;
}

#[tokio::test]
async fn an_inconsistent_checkpoint_is_refused_and_the_state_is_unchanged() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    // The same key signs a fork that rewrote entry 2.
    let mut fork = Log::new(1, 20, "entry");
    fork.leaves[2] = leaf_hash(b"rewritten");
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    let http = reqwest::Client::new();
    witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(5)).await.unwrap();
    let before = std::fs::read(state.path().join("gateway.example_2flog.checkpoint")).unwrap();

    let (status, _, text) = w.post(body(5, &fork.proof(5, 12), &fork.signed(12))).await;
    assert_eq!(status, 422);
    assert!(
        text.starts_with("consistency proof for `gateway.example/log` from size 5 to 12 does not verify"),
        "{text}"
    );
    let forked = witness::add_checkpoint(&http, &w.url, 5, &fork.proof(5, 12), &fork.signed(12)).await;
    assert!(matches!(forked, Err(WitnessClientError::InconsistentProof { .. })), "{forked:?}");
    // An honest proof for the fork's checkpoint cannot exist; the log's own one fails too.
    let (status, _, _) = w.post(body(5, &log.proof(5, 12), &fork.signed(12))).await;
    assert_eq!(status, 422);
    // The fork at the same size as the stored checkpoint is a conflict without a size.
    let (status, content_type, _) = w.post(body(5, &[], &fork.signed(5))).await;
    assert_eq!((status, content_type.as_str()), (409, "text/plain; charset=utf-8"));
    assert!(matches!(
        witness::add_checkpoint(&http, &w.url, 5, &[], &fork.signed(5)).await,
        Err(WitnessClientError::RootConflict { .. })
    ));

    assert_eq!(std::fs::read(state.path().join("gateway.example_2flog.checkpoint")).unwrap(), before);
    assert_eq!(
        witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(12)).await,
        Err(WitnessClientError::Conflict { known_size: 5 })
    );
    witness::add_checkpoint(&http, &w.url, 5, &log.proof(5, 12), &log.signed(12)).await.unwrap();
    w.stop().await;
}

#[tokio::test]
async fn a_checkpoint_without_a_valid_log_signature_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    let http = reqwest::Client::new();
    // Another key with the log's name: its signature is ignored, so none is trusted.
    let imposter = Log::new(2, 20, "entry");
    let (status, _, text) = w.post(body(0, &[], &imposter.signed(5))).await;
    assert_eq!(
        (status, text.as_str()),
        (
            403,
            "checkpoint of `gateway.example/log` is not validly signed by its log: note has no signature from a known key\n"
        )
    );
    // The log's key over other text: a trusted key whose signature fails.
    let signed = log.signed(5);
    let tampered = signed.replacen("\n5\n", "\n6\n", 1);
    let (status, _, _) = w.post(body(0, &[], &tampered)).await;
    assert_eq!(status, 403);
    assert!(matches!(
        witness::add_checkpoint(&http, &w.url, 0, &[], &tampered).await,
        Err(WitnessClientError::SignatureRefused { .. })
    ));
    // A log the witness does not know.
    let other = Signer::from_seed("other.example/log", &[3; 32]).unwrap();
    let unknown = log.checkpoint(5);
    let unknown = Checkpoint::new("other.example/log", 5, *unknown.root()).unwrap().sign(&[&other]).unwrap();
    let (status, _, text) = w.post(body(0, &[], &unknown)).await;
    assert_eq!((status, text.as_str()), (404, "this witness does not know the log `other.example/log`\n"));
    assert!(matches!(
        witness::add_checkpoint(&http, &w.url, 0, &[], &unknown).await,
        Err(WitnessClientError::UnknownLog { .. })
    ));
    // Nothing was cosigned.
    assert_eq!(
        witness::add_checkpoint(&http, &w.url, 3, &log.proof(3, 5), &signed).await,
        Err(WitnessClientError::Conflict { known_size: 0 })
    );
    w.stop().await;
}

#[tokio::test]
async fn malformed_and_impossible_requests_are_bad_requests() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    let signed = log.signed(5);
    let (status, _, text) = w.post(body(6, &[], &signed)).await;
    assert_eq!((status, text.as_str()), (400, "old size 6 is above the checkpoint size 5\n"));
    let (status, _, text) = w.post(format!("old 0\n{signed}")).await;
    assert_eq!((status, text.as_str()), (400, "consistency proof line 2 is not the base64 of a 32-byte hash\n"));
    let (status, _, text) = w.post(format!("old 00\n\n{signed}")).await;
    assert_eq!((status, text.as_str()), (400, "old size `00` is not a decimal number without leading zeros\n"));
    // From size zero the proof must be empty.
    let (status, _, _) = w.post(body(0, &[Hash([0; 32])], &signed)).await;
    assert_eq!(status, 422);
    // A size-zero checkpoint must carry the empty tree's root.
    let bogus = Checkpoint::new(ORIGIN, 0, Hash([1; 32])).unwrap().sign(&[&log.key]).unwrap();
    let (status, _, _) = w.post(body(0, &[], &bogus)).await;
    assert_eq!(status, 422);
    let get = reqwest::get(format!("{}/add-checkpoint", w.url)).await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let (status, _, _) = w.post(format!("old 0\n{}\n{signed}", format!("{}\n", B64.encode([0; 32])).repeat(64))).await;
    assert_eq!(status, 400);
    w.stop().await;
}

#[tokio::test]
async fn a_restarted_witness_remembers_the_size_it_cosigned() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    let http = reqwest::Client::new();
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(5)).await.unwrap();
    witness::add_checkpoint(&http, &w.url, 5, &log.proof(5, 12), &log.signed(12)).await.unwrap();
    w.stop().await;

    let w = TestWitness::start(state.path(), &[&log.key]).await;
    assert_eq!(
        witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(13)).await,
        Err(WitnessClientError::Conflict { known_size: 12 })
    );
    let mut fork = Log::new(1, 20, "entry");
    fork.leaves[7] = leaf_hash(b"rewritten");
    let (status, _, _) = w.post(body(12, &fork.proof(12, 13), &fork.signed(13))).await;
    assert_eq!(status, 422);
    witness::add_checkpoint(&http, &w.url, 12, &log.proof(12, 13), &log.signed(13)).await.unwrap();
    w.stop().await;
}

#[tokio::test]
async fn a_rotated_log_key_is_trusted_alongside_the_old_one() {
    let state = tempfile::tempdir().unwrap();
    let log = Log::new(1, 20, "entry");
    let new_key = Signer::from_seed(ORIGIN, &[4; 32]).unwrap();
    let w = TestWitness::start(state.path(), &[&log.key, &new_key]).await;
    let http = reqwest::Client::new();
    witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(5)).await.unwrap();
    let by_new = log.checkpoint(12).sign(&[&new_key]).unwrap();
    let lines = witness::add_checkpoint(&http, &w.url, 5, &log.proof(5, 12), &by_new).await.unwrap();
    check_cosigned(&by_new, &new_key, &w.verifier, &lines);
    w.stop().await;
}

#[tokio::test]
async fn concurrent_submissions_never_roll_the_witness_back() {
    let state = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::new(1, 40, "entry"));
    let w = TestWitness::start(state.path(), &[&log.key]).await;
    let http = reqwest::Client::new();
    witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(5)).await.unwrap();
    // Every size from 6 to 40, all claiming to extend 5: exactly one can win.
    let tasks: Vec<_> = (6..=40)
        .map(|size| {
            let (http, url, log) = (http.clone(), w.url.clone(), log.clone());
            tokio::spawn(async move {
                witness::add_checkpoint(&http, &url, 5, &log.proof(5, size), &log.signed(size)).await.map(|_| size)
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(size) => won.push(size),
            Err(e) => assert!(matches!(e, WitnessClientError::Conflict { .. }), "{e:?}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(
        witness::add_checkpoint(&http, &w.url, 0, &[], &log.signed(40)).await,
        Err(WitnessClientError::Conflict { known_size: won[0] })
    );
    w.stop().await;
}
