//! The transparency log end to end: receipts in answers, the tiles under /log/, restarts.

use crate::common::{self, TestServer, encrypt, noise, parties};
use sealpost::transparency::tlog::checkpoint::Checkpoint;
use sealpost::transparency::tlog::merkle::leaf_hash;
use sealpost::transparency::tlog::note::Verifier;
use sealpost::transparency::tlog::proof::TlogProof;
use sealpost::transparency::tlog::quorum::Policy;
use sealpost::transparency::tlog::tiles;

async fn text(server: &TestServer, path: &str) -> (u16, String) {
    let r = server.http().get(format!("{}{path}", server.url)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn verifier(server: &TestServer) -> Verifier {
    let (status, key) = text(server, "/log/key").await;
    assert_eq!(status, 200);
    Verifier::from_vkey(key.trim()).expect("a verifier key string")
}

/// Waits until the published checkpoint covers every event, and returns it.
async fn settled(server: &TestServer) -> Checkpoint {
    let key = verifier(server).await;
    for _ in 0..200 {
        let events = server.events().await.len() as u64;
        let (_, note) = text(server, "/log/checkpoint").await;
        let (checkpoint, _) = Checkpoint::open(&note, &key, &[]).expect("the checkpoint verifies");
        // Reading the audit trail is not itself an event, so the count is stable once idle.
        if checkpoint.size() >= events {
            return checkpoint;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the log never caught up");
}

#[tokio::test]
async fn an_upload_answer_carries_a_receipt_that_verifies_offline_against_the_log_key() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let ciphertext = encrypt(&[&id.to_public().to_string()], &noise(1000));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "", ciphertext.clone()).await;
    assert_eq!(status, 201, "{body}");
    let receipt = TlogProof::parse(body["receipt"].as_str().expect("a receipt")).unwrap();
    let policy = Policy::log_only(verifier(&server).await);
    let verified = receipt.verify(&policy).expect("the receipt verifies");
    let entry = String::from_utf8(verified.entry).unwrap();
    assert!(entry.starts_with("sealpost.audit/v1\nevent upload.accepted\n"), "{entry}");
    assert!(entry.contains(&format!("transfer {}\n", body["id"].as_str().unwrap())));
    assert!(entry.contains(&format!("digest {}\n", body["digest"].as_str().unwrap())));

    // Tampering with the entry breaks it.
    let mut forged = receipt.clone();
    forged.extra = Some(entry.replace("upload.accepted", "upload.refused").into_bytes());
    assert!(forged.verify(&policy).is_err());

    // After delivery the sender can fetch a proof of delivery too.
    let (status, _) = server.redeem(&alice, body["links"][0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    settled(&server).await;
    let (status, list) =
        server.get(&bob, &format!("/api/v1/transfers/{}/receipts", body["id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{list}");
    let events: Vec<&str> = list["receipts"].as_array().unwrap().iter().map(|r| r["event"].as_str().unwrap()).collect();
    // The ciphertext is deleted right after the last delivery; its purge may already be logged.
    assert_eq!(events[..2], ["upload.accepted", "download.completed"]);
    assert!(events[2..].iter().all(|e| *e == "object.purged"), "{events:?}");
    for r in list["receipts"].as_array().unwrap() {
        TlogProof::parse(r["receipt"].as_str().unwrap()).unwrap().verify(&policy).expect("verifies");
    }
    let (status, _) = server
        .get(
            &server.user("hmpps/eve", "recipient").await,
            &format!("/api/v1/transfers/{}/receipts", body["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 404, "strangers see no receipts");
    server.stop().await;
}

#[tokio::test]
async fn the_published_tiles_rebuild_the_checkpoint_root_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let (bob, _, id) = parties(&server).await;
    for _ in 0..3 {
        let (status, _) =
            server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&id.to_public().to_string()], b"x")).await;
        assert_eq!(status, 201);
    }
    let checkpoint = settled(&server).await;
    let (status, _) = text(&server, "/log/tile/0/../../sealpost.db").await;
    assert_eq!(status, 404);
    let leaves = fetch_leaves(&server, checkpoint.size()).await;
    assert_eq!(sealpost::transparency::tlog::merkle::root(&leaves), *checkpoint.root());
    let first_key = verifier(&server).await.to_vkey();
    server.stop().await;

    let server = TestServer::start_in(dir.path(), |_| {}).await;
    assert_eq!(verifier(&server).await.to_vkey(), first_key, "the log key and origin survive a restart");
    let (status, _) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&id.to_public().to_string()], b"y")).await;
    assert_eq!(status, 201);
    let later = settled(&server).await;
    assert!(later.size() > checkpoint.size());
    let leaves = fetch_leaves(&server, later.size()).await;
    assert_eq!(sealpost::transparency::tlog::merkle::root(&leaves), *later.root());
    let old = sealpost::transparency::tlog::merkle::root(&leaves[..checkpoint.size() as usize]);
    assert_eq!(old, *checkpoint.root(), "the old tree is a prefix of the new one");
    server.stop().await;
}

/// Every leaf hash of the tree, from the published entry bundles, checked against the tiles.
async fn fetch_leaves(server: &TestServer, size: u64) -> Vec<sealpost::transparency::tlog::merkle::Hash> {
    let mut leaves = Vec::new();
    for tile in tiles::tiles_for_size(size).into_iter().filter(|t| t.level() == 0) {
        let r = server.http().get(format!("{}/log/{}", server.url, tile.entries_path())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", tile.entries_path());
        let bundle = r.bytes().await.unwrap();
        let entries = tiles::decode_bundle(&bundle, tile.width()).unwrap();
        let hashes: Vec<_> = entries.iter().map(|e| leaf_hash(e)).collect();
        let r = server.http().get(format!("{}/log/{}", server.url, tile.path())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(tile.hashes(&r.bytes().await.unwrap()).unwrap(), hashes);
        leaves.extend(hashes);
    }
    leaves
}

#[tokio::test]
async fn the_log_can_be_restricted_to_signed_in_users() {
    let server = TestServer::start_with(|c| c.log_public = false).await;
    assert_eq!(text(&server, "/log/checkpoint").await.0, 401);
    let r =
        server.http().get(format!("{}/log/checkpoint", server.url)).bearer_auth(&server.admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.stop().await;
}

fn sealpost(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(args)
        .env_remove("SEALPOST_URL")
        .env_remove("SEALPOST_TOKEN")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliance_officer_verifies_the_live_log_and_a_receipt_with_the_cli() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let ciphertext = encrypt(&[&id.to_public().to_string()], &noise(5000));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "", ciphertext.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(server.redeem(&alice, body["links"][0]["url"].as_str().unwrap()).await.0, 200);
    settled(&server).await;

    let work = tempfile::tempdir().unwrap();
    let key = verifier(&server).await.to_vkey();
    let state = work.path().join("state");
    let url = server.url.clone();
    let (state_s, key_s) = (state.to_str().unwrap().to_owned(), key.clone());
    let out = tokio::task::spawn_blocking(move || {
        sealpost(&["log", "verify", "--url", &url, "--key", &key_s, "--state", &state_s])
    })
    .await
    .unwrap();
    common::assert_exit(&out, 0);
    assert!(state.join("checkpoint").exists());

    let receipt = work.path().join("upload.receipt");
    std::fs::write(&receipt, body["receipt"].as_str().unwrap()).unwrap();
    let bundle = work.path().join("bundle.age");
    std::fs::write(&bundle, &ciphertext).unwrap();
    let r = receipt.to_str().unwrap();
    let ok = sealpost(&["receipt", "verify", r, "--key", &key, "--expect-file", bundle.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("upload.accepted"));
    std::fs::write(&bundle, b"a different bundle").unwrap();
    let swapped = sealpost(&["receipt", "verify", r, "--key", &key, "--expect-file", bundle.to_str().unwrap()]);
    assert_eq!(swapped.status.code(), Some(4));
    let mut bytes = std::fs::read(&receipt).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 1;
    std::fs::write(&receipt, bytes).unwrap();
    assert_eq!(sealpost(&["receipt", "verify", r, "--key", &key]).status.code(), Some(4));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_cosigns_every_checkpoint_and_receipts_verify_against_a_policy_that_requires_it() {
    // First start: learn the log's key, which the witness must know.
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(data.path(), |_| {}).await;
    let log_key = verifier(&server).await;
    let (bob, _, id) = parties(&server).await;
    server.stop().await;

    let (skey, vkey) = sealpost::transparency::witness::witness_keygen("witness.test").unwrap();
    let cosigner = {
        use age::secrecy::ExposeSecret as _;
        sealpost::transparency::tlog::cosignature::Cosigner::from_skey(skey.expose_secret()).unwrap()
    };
    let state = tempfile::tempdir().unwrap();
    let witness = std::sync::Arc::new(
        sealpost::transparency::witness::Witness::open(
            state.path(),
            cosigner,
            [Verifier::from_vkey(&log_key.to_vkey()).unwrap()],
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let witness_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sealpost::transparency::witness::run(listener, witness.clone(), async move {
        let _ = stopped.await;
    }));

    let config = sealpost::transparency::writer::WitnessConfig { url: witness_url.clone(), key: vkey.clone() };
    let server = TestServer::start_in(data.path(), move |c| c.witnesses = vec![config]).await;
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&id.to_public().to_string()], b"z")).await;
    assert_eq!(status, 201, "{body}");
    let policy = Policy::parse(&format!("log {}\nwitness w {vkey}\nquorum w\n", log_key.to_vkey())).unwrap();
    let receipt = TlogProof::parse(body["receipt"].as_str().unwrap()).unwrap();
    let verified = receipt.verify(&policy).expect("cosigned by the witness");
    assert_eq!(verified.checkpoint.cosigned.len(), 1);
    let checkpoint = settled(&server).await;
    assert_eq!(witness.known_size(checkpoint.origin()).await, Some(checkpoint.size()));
    server.stop().await;
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

async fn upload_receipt(server: &TestServer, bob: &str, recipient: &str) -> TlogProof {
    let (status, body) = server.upload(bob, &["hmpps/alice"], "", encrypt(&[recipient], b"r")).await;
    assert_eq!(status, 201, "{body}");
    TlogProof::parse(body["receipt"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_log_key_rotates_with_dual_signed_checkpoints_and_old_receipts_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let (bob, _, id) = parties(&server).await;
    let recipient = id.to_public().to_string();
    let old = verifier(&server).await;
    let old_policy = Policy::log_only(Verifier::from_vkey(&old.to_vkey()).unwrap());
    let before = upload_receipt(&server, &bob, &recipient).await;

    let (status, body) = server.post(&server.admin, "/api/v1/log/keys/rotate", serde_json::json!({})).await;
    assert_eq!(status, 200, "{body}");
    let new = Verifier::from_vkey(body["current"].as_str().unwrap()).unwrap();
    let new_policy = Policy::log_only(Verifier::from_vkey(&new.to_vkey()).unwrap());
    assert_eq!(text(&server, "/log/keys").await.1.lines().count(), 2);
    let during = upload_receipt(&server, &bob, &recipient).await;
    during.verify(&old_policy).expect("dual-signed: the old key still verifies");
    during.verify(&new_policy).expect("dual-signed: the new key verifies");

    let old_id = old.to_vkey().split('+').nth(1).unwrap().to_owned();
    let (status, body) =
        server.post(&server.admin, "/api/v1/log/keys/retire", serde_json::json!({ "key_id": old_id })).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;

    // The rotation survives a restart, and the old receipt still verifies with the old key.
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    assert_eq!(verifier(&server).await.to_vkey(), new.to_vkey());
    let after = upload_receipt(&server, &bob, &recipient).await;
    after.verify(&new_policy).expect("signed by the new key");
    assert!(after.verify(&old_policy).is_err(), "the retired key no longer signs");
    before.verify(&old_policy).expect("receipts made before the rotation still verify");
    let (status, body) =
        server.post(&server.admin, "/api/v1/log/keys/retire", serde_json::json!({ "key_id": "0000beef" })).await;
    assert_eq!((status, common::code(&body)), (400, "bad_request"));
    let events = server.events().await;
    assert!(events.iter().any(|e| e == "log.key_added") && events.iter().any(|e| e == "log.key_retired"));
    server.stop().await;
}

#[tokio::test]
async fn directory_keys_come_with_a_receipt_for_the_log_entry_that_registered_them() {
    let server = TestServer::start().await;
    let (bob, _, _) = parties(&server).await;
    settled(&server).await;
    let (status, body) = server.get(&bob, "/api/v1/keys/hmpps/alice").await;
    assert_eq!(status, 200);
    let key = &body["keys"][0];
    let receipt = TlogProof::parse(key["receipt"].as_str().expect("a receipt")).unwrap();
    let verified = receipt.verify(&Policy::log_only(verifier(&server).await)).expect("verifies");
    let entry = String::from_utf8(verified.entry).unwrap();
    assert!(entry.contains("event key.added\n"), "{entry}");
    assert!(entry.contains(&format!("fingerprint {}\n", key["fingerprint"].as_str().unwrap())), "{entry}");
    server.stop().await;
}
