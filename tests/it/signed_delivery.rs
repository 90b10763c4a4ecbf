//! Signed for on receipt (issue 13 items 1 and 3): a recipient signs for what they collect, an
//! auditor checks it offline from the receipt and the log key alone, every bad signature is
//! refused and logged, and keys are bound to names in the log and watched by their owners.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::client::{Work, s, sealpost, send, stderr, stdout};
use crate::common::{self, TestServer, parties};
use sealpost::delivery::{Statement, sign};

/// A new signing key, registered for the user of `token`; answers the key and its fingerprint.
async fn signing_key(server: &TestServer, token: &str) -> (SigningKey, String) {
    let key = SigningKey::from_bytes(&rand_bytes());
    let public = sealpost::client::keys::signing_public(&key.verifying_key());
    server.add_key(token, &public).await;
    (key, sealpost::directory::fingerprint(&public))
}

fn rand_bytes() -> [u8; 32] {
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Runs sealpost with no gateway at all (what an auditor or a fresh key needs).
fn offline(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sealpost")).args(args).output().unwrap()
}

/// `sealpost keygen --signing -o PATH`; answers the public key it printed.
fn keygen_signing(path: &str) -> String {
    let out = offline(&["keygen", "--signing", "-o", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// `sealpost keygen --signing` into `work`, registered with `keys add`; answers the key file.
async fn cli_signing_key(server: &TestServer, token: &str, work: &Work) -> String {
    let path = s(&work.path("signing.pem"));
    let public = keygen_signing(&path);
    let out = sealpost(server, token, &["keys", "add", &public]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    path
}

/// The log's verifier key.
async fn log_key(server: &TestServer) -> String {
    let r = server.http().get(format!("{}/log/key", server.url)).send().await.unwrap();
    r.text().await.unwrap().trim().to_owned()
}

/// Waits until the log has integrated every event so far.
async fn integrated(server: &TestServer) {
    let db = server.database().await;
    for _ in 0..100 {
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(&db).await.unwrap();
        let r = server.http().get(format!("{}/log/checkpoint", server.url)).send().await.unwrap();
        let text = r.text().await.unwrap();
        let size: i64 = text.lines().nth(1).unwrap().parse().unwrap();
        if size >= events {
            db.close().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the log did not integrate the events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_signs_for_what_she_collects_and_an_auditor_verifies_it_offline() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let key_file = cli_signing_key(&server, &alice, &work).await;
    let src = work.file("extract.csv", b"id,name\n1,someone\n");
    let (transfer, link) = send(&server, &bob, &[&src]).await;

    let out = sealpost(
        &server,
        &alice,
        &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("out.csv")), "--signing-key", &key_file],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("sealpost: signed for the delivery as hmpps/alice"), "{}", stderr(&out));

    // The sender's view and `status` say who signed.
    let status = sealpost(&server, &bob, &["status", &transfer]).await;
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(stdout(&status).contains("signed for by hmpps/alice at "), "{}", stdout(&status));
    let (_, view) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(view["links"][0]["signed_for"]["by"], "hmpps/alice", "{view}");

    // The entry names alice by commitment only.
    let entries = server.entries("delivery.acknowledged").await;
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].contains("alice"), "{}", entries[0]);
    assert!(entries[0].contains("\nsignature "), "{}", entries[0]);

    // The auditor: the receipt file and the log key, nothing else.
    integrated(&server).await;
    let receipt = work.path("delivery.json");
    let got = sealpost(&server, &bob, &["receipt", "get", &transfer, "-o", &s(&receipt)]).await;
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    let vkey = log_key(&server).await;
    let verified = offline(&["receipt", "verify", &s(&receipt), "--key", &vkey]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert!(stdout(&verified).contains("signed for by hmpps/alice at "), "{}", stdout(&verified));
    assert!(stdout(&verified).contains("event      delivery.acknowledged"), "{}", stdout(&verified));

    // Any change to the file fails the check: another signer, another salt, another entry.
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&receipt).unwrap()).unwrap();
    let carol = server.user("hmpps/carol", "recipient").await;
    let (_, carol_keys) = server.get(&carol, "/api/v1/keys").await;
    let (_, upload) = server.get(&bob, &format!("/api/v1/transfers/{transfer}/receipts")).await;
    let upload_receipt = upload["receipts"][0]["receipt"].as_str().unwrap().to_owned();
    for (field, value) in [
        ("signer", json!("hmpps/carol")),
        ("name_salt", carol_keys["name_salt"].clone()),
        ("delivery", json!(upload_receipt)),
        ("key", json!(upload_receipt)),
    ] {
        let mut tampered = original.clone();
        tampered[field] = value;
        let path = work.path(&format!("tampered-{field}.json"));
        std::fs::write(&path, serde_json::to_string(&tampered).unwrap()).unwrap();
        let out = offline(&["receipt", "verify", &s(&path), "--key", &vkey]);
        assert_eq!(out.status.code(), Some(4), "{field}: {}", stdout(&out));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_without_a_signing_key_is_recorded_and_shown_as_unsigned() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let src = work.file("a.txt", b"unsigned");
    let (transfer, link) = send(&server, &bob, &[&src]).await;
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("a"))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("the delivery is recorded as unsigned"), "{}", stderr(&out));
    let status = sealpost(&server, &bob, &["status", &transfer]).await;
    assert!(stdout(&status).contains("delivery decrypted (not signed for)"), "{}", stdout(&status));
    let (_, view) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(view["links"][0]["signed_for"], Value::Null, "{view}");

    // A signing key that is not registered is refused before the link is touched.
    let (_, link2) = send(&server, &bob, &[&src]).await;
    let stray = work.path("stray.pem");
    keygen_signing(&s(&stray));
    let out = sealpost(
        &server,
        &alice,
        &["fetch", &link2, "-i", &s(&work.identity), "-o", &s(&work.path("b")), "--signing-key", &s(&stray)],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not one of your registered keys"), "{}", stderr(&out));
    assert!(stderr(&out).contains("the link was not used"), "{}", stderr(&out));
    let (status, _) = server.redeem(&alice, &link2).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// An uploaded and collected transfer, and what a recipient's client knows after checking it.
struct Collected {
    transfer: String,
    digest: String,
    tree_size: u64,
    root: String,
}

async fn collected(server: &TestServer, bob: &str, alice: &str, recipient: &str) -> Collected {
    let body = common::encrypt(&[recipient], b"personal data");
    let (status, upload) = server.upload(bob, &["hmpps/alice"], "", body).await;
    assert_eq!(status, 201, "{upload}");
    let (status, _) = server.redeem(alice, upload["links"][0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let vkey = log_key(server).await;
    let trust = sealpost::transparency::tlog::quorum::Policy::log_only(
        sealpost::transparency::tlog::note::Verifier::from_vkey(&vkey).unwrap(),
    );
    let summary = sealpost::client::receipts::verify_upload(
        upload["receipt"].as_str().unwrap(),
        &trust,
        upload["id"].as_str().unwrap(),
        upload["digest"].as_str().unwrap(),
    )
    .unwrap();
    Collected {
        transfer: upload["id"].as_str().unwrap().to_owned(),
        digest: upload["digest"].as_str().unwrap().to_owned(),
        tree_size: summary.tree_size,
        root: STANDARD.encode(summary.root.as_bytes()),
    }
}

fn statement(c: &Collected, who: &str) -> Statement {
    let now = chrono::Utc::now();
    Statement {
        transfer: c.transfer.clone(),
        digest: c.digest.clone(),
        recipient: who.parse().unwrap(),
        time: chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap(),
        checkpoint_size: c.tree_size,
        checkpoint_root: c.root.clone(),
    }
}

fn report(text: &str, key: &SigningKey, fingerprint: &str) -> Value {
    json!({"status": "decrypted", "statement": text, "signature": sign(text, key), "key": fingerprint})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_late_mismatched_and_removed_key_signatures_are_refused_logged_and_change_nothing() {
    // A short refusal window: the same refusal repeated is counted into one summary (floods),
    // and the summaries arrive within the test.
    let server = TestServer::start_with(|c| c.refusal_window = std::time::Duration::from_secs(1)).await;
    let (bob, alice, id) = parties(&server).await;
    let recipient = id.to_public().to_string();
    let (key, fingerprint) = signing_key(&server, &alice).await;
    let (old_key, old_fingerprint) = signing_key(&server, &alice).await;
    let (status, body) = server.delete(&alice, &format!("/api/v1/keys/hmpps/alice/{old_fingerprint}")).await;
    assert_eq!(status, 200, "{body}");
    let first = collected(&server, &bob, &alice, &recipient).await;
    let second = collected(&server, &bob, &alice, &recipient).await;
    let path = format!("/api/v1/transfers/{}/delivery", first.transfer);
    let good = statement(&first, "hmpps/alice");
    let stranger = SigningKey::from_bytes(&rand_bytes());

    let mut late = good.clone();
    late.time -= chrono::TimeDelta::minutes(11);
    let mut ahead = good.clone();
    ahead.time += chrono::TimeDelta::minutes(5);
    let mut wrong_digest = good.clone();
    wrong_digest.digest = second.digest.clone();
    let mut wrong_root = good.clone();
    wrong_root.checkpoint_root = second.root.clone();
    let mut too_early = good.clone();
    too_early.checkpoint_size = 1;
    let mut beyond = good.clone();
    beyond.checkpoint_size = 1_000_000;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("forged", report(&good.text(), &stranger, &fingerprint), 422, "delivery_signature_invalid"),
        (
            "unregistered key",
            report(&good.text(), &stranger, &sealpost::directory::fingerprint("x")),
            422,
            "unknown_signing_key",
        ),
        ("removed key", report(&good.text(), &old_key, &old_fingerprint), 422, "unknown_signing_key"),
        ("replayed", report(&statement(&second, "hmpps/alice").text(), &key, &fingerprint), 422, "statement_mismatch"),
        ("wrong name", report(&statement(&first, "hmpps/carol").text(), &key, &fingerprint), 422, "statement_mismatch"),
        ("wrong digest", report(&wrong_digest.text(), &key, &fingerprint), 422, "statement_mismatch"),
        ("not this log", report(&wrong_root.text(), &key, &fingerprint), 422, "statement_mismatch"),
        ("before the upload", report(&too_early.text(), &key, &fingerprint), 422, "statement_mismatch"),
        ("beyond the log", report(&beyond.text(), &key, &fingerprint), 422, "statement_mismatch"),
        ("late", report(&late.text(), &key, &fingerprint), 422, "statement_late"),
        ("ahead", report(&ahead.text(), &key, &fingerprint), 422, "statement_late"),
        ("not canonical", report(&good.text().replace('\n', "\r\n"), &key, &fingerprint), 422, "statement_mismatch"),
        ("partial", json!({"status": "decrypted", "statement": good.text()}), 400, "bad_request"),
        (
            "failed and signed",
            {
                let mut r = report(&good.text(), &key, &fingerprint);
                r["status"] = json!("failed");
                r
            },
            400,
            "bad_request",
        ),
    ];
    let mut refused = Vec::new();
    for (what, body, status, code) in &cases {
        let (got, answer) = server.post(&alice, &path, body.clone()).await;
        assert_eq!((got, common::code(&answer)), (*status, *code), "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.len() > 30, "{what}: a sentence saying what to do: {message}");
        if *status == 422 {
            refused.push(code.to_string());
        }
    }
    // Every refusal reaches the trail: the first of each kind as its own entry at once, the
    // same refusal repeated (alice, this transfer, this code) counted in one summary when its
    // window closes, so that repeating a refused report cannot grow the log by a leaf each.
    let mut firsts: Vec<String> = Vec::new();
    for code in &refused {
        if !firsts.contains(code) {
            firsts.push(code.clone());
        }
    }
    let entries = server.entries("delivery.refused").await;
    assert_eq!(common::values(&entries, "code"), firsts, "{entries:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let counted = loop {
        let entries = server.entries("delivery.refused").await;
        let mut counted = std::collections::BTreeMap::<String, u64>::new();
        for e in &entries {
            let code = common::values(std::slice::from_ref(e), "code").remove(0);
            let repeated = common::values(std::slice::from_ref(e), "repeated").remove(0);
            *counted.entry(code).or_default() += if repeated.is_empty() { 1 } else { repeated.parse::<u64>().unwrap() };
        }
        if counted.values().sum::<u64>() == refused.len() as u64 || std::time::Instant::now() > deadline {
            break counted;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for code in &firsts {
        let sent = refused.iter().filter(|c| *c == code).count() as u64;
        assert_eq!(counted.get(code), Some(&sent), "{code}: {counted:?}");
    }
    assert!(server.entries("delivery.acknowledged").await.is_empty());

    // Nothing changed: the genuine statement is still taken, once.
    let (status, answer) = server.post(&alice, &path, report(&good.text(), &key, &fingerprint)).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["signed"], true);
    let (status, answer) = server.post(&alice, &path, report(&good.text(), &key, &fingerprint)).await;
    assert_eq!((status, common::code(&answer)), (409, "already_reported"), "{answer}");
    let (_, view) = server.get(&bob, &format!("/api/v1/transfers/{}", first.transfer)).await;
    assert_eq!(view["links"][0]["signed_for"]["key"], fingerprint.as_str(), "{view}");

    // Someone who holds no used link learns nothing and leaves no refusal behind.
    let carol = server.user("hmpps/carol", "recipient").await;
    let before = server.entries("delivery.refused").await.len();
    let (status, answer) = server
        .post(
            &carol,
            &format!("/api/v1/transfers/{}/delivery", second.transfer),
            report(&good.text(), &key, &fingerprint),
        )
        .await;
    assert_eq!((status, common::code(&answer)), (404, "not_found"), "{answer}");
    assert_eq!(server.entries("delivery.refused").await.len(), before);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_monitor_reports_a_key_the_administrator_registered_under_my_name() {
    let server = TestServer::start().await;
    let (_, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let state = s(&work.path("monitor"));
    let monitor = |token: String| {
        let state = state.clone();
        let server = &server;
        async move { sealpost(server, &token, &["keys", "monitor", "--state", &state]).await }
    };
    integrated(&server).await;
    let first = monitor(alice.clone()).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let own = id.to_public().to_string();
    let lines: Vec<String> = stdout(&first).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("added    {own} (X25519) at ")), "{lines:?}");
    assert!(lines[0].ends_with(", by you"), "{lines:?}");
    assert!(stderr(&first).contains("pinned the log key"), "{}", stderr(&first));

    // Nothing new, nothing printed.
    let again = monitor(alice.clone()).await;
    assert_eq!((again.status.code(), stdout(&again)), (Some(0), String::new()), "{}", stderr(&again));

    // The administrator slips a key in under alice's name: her next run reports it.
    let (_, slipped) = common::keypair();
    let out = sealpost(&server, &server.admin, &["admin", "key", "add", "hmpps/alice", &slipped]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Someone else's key is not hers.
    let carol = server.user("hmpps/carol", "recipient").await;
    server.add_key(&carol, &common::keypair().1).await;
    integrated(&server).await;
    let after = monitor(alice.clone()).await;
    assert_eq!(after.status.code(), Some(0), "{}", stderr(&after));
    let lines: Vec<String> = stdout(&after).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("added    {slipped} (X25519) at ")), "{lines:?}");
    assert!(lines[0].ends_with(", by another account"), "{lines:?}");

    // Removing it is reported too.
    let fingerprint = sealpost::directory::fingerprint(&slipped);
    let (status, body) = server.delete(&alice, &format!("/api/v1/keys/hmpps/alice/{fingerprint}")).await;
    assert_eq!(status, 200, "{body}");
    integrated(&server).await;
    let removed = monitor(alice.clone()).await;
    let lines: Vec<String> = stdout(&removed).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("removed  {slipped} (X25519) at ")), "{lines:?}");

    // A log that no longer extends the saved checkpoint is refused (exit 4), and nothing is
    // reported from it.
    std::fs::write(
        work.path("monitor").join("checkpoint"),
        std::fs::read_to_string(work.path("monitor").join("checkpoint")).unwrap().replacen('\n', "\n9", 1),
    )
    .unwrap();
    let forked = monitor(alice.clone()).await;
    assert_ne!(forked.status.code(), Some(0), "{}", stdout(&forked));
    assert_eq!(stdout(&forked), "");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refuses_a_key_whose_log_entry_names_someone_else() {
    let server = TestServer::start().await;
    let (bob, _, _) = parties(&server).await;
    let carol = server.user("hmpps/carol", "recipient").await;
    let (_, carols) = common::keypair();
    server.add_key(&carol, &carols).await;
    integrated(&server).await;
    // Someone with the database moves carol's logged key under alice's name (and hides alice's).
    let db = server.database().await;
    let alice_id: String =
        sqlx::query_scalar("SELECT u.id FROM users u WHERE u.name = 'alice'").fetch_one(&db).await.unwrap();
    sqlx::query("DELETE FROM recipient_keys WHERE user_id = $1").bind(&alice_id).execute(&db).await.unwrap();
    sqlx::query("UPDATE recipient_keys SET user_id = $1 WHERE recipient = $2")
        .bind(&alice_id)
        .bind(&carols)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let work = Work::new(&common::keypair().0);
    let src = work.file("r.csv", b"id\n");
    let out = sealpost(&server, &bob, &["send", &src, "--to", "hmpps/alice"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not register the key to `hmpps/alice`"), "{}", stderr(&out));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_checks_directory_keys_under_the_witness_quorum_it_is_given() {
    let server = TestServer::start().await;
    let (bob, _, id) = parties(&server).await;
    integrated(&server).await;
    let work = Work::new(&id);
    let src = work.file("r.csv", b"id\n");
    let vkey = log_key(&server).await;
    let (_, witness) = sealpost::transparency::witness::witness_keygen("witness.test").unwrap();
    // A witness that has cosigned nothing: the key's receipt cannot meet the quorum, so nothing
    // is encrypted or uploaded.
    let strict = work.file("strict.policy", format!("log {vkey}\nwitness w {witness}\nquorum w\n").as_bytes());
    let out = sealpost(&server, &bob, &["send", &src, "--to", "hmpps/alice", "--log-policy", &strict]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not the one the log recorded"), "{}", stderr(&out));
    assert!(server.entries("upload.accepted").await.is_empty());
    // The log key alone as a policy: the same checks pass.
    let log_only = work.file("log.policy", format!("log {vkey}\nquorum none\n").as_bytes());
    let out = sealpost(&server, &bob, &["send", &src, "--to", "hmpps/alice", "--log-policy", &log_only]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_an_earlier_version_are_bound_to_their_owners_at_start_and_sends_to_them_work() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(data.path(), |_| {}).await;
    let (bob, _, _) = parties(&server).await;
    server.user("hmpps/carol", "recipient").await;
    // A key as an earlier version left it: a directory row whose log entry names no owner.
    let (identity, legacy) = common::keypair();
    let db = server.database().await;
    let carol_id: String =
        sqlx::query_scalar("SELECT id FROM users WHERE name = 'carol'").fetch_one(&db).await.unwrap();
    sqlx::query(
        "INSERT INTO recipient_keys (id, user_id, recipient, stanza_type, fingerprint, added_at) \
         VALUES ($1, $2, $3, 'X25519', $4, 0)",
    )
    .bind("f".repeat(32))
    .bind(&carol_id)
    .bind(&legacy)
    .bind(sealpost::directory::fingerprint(&legacy))
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    server.stop().await;

    let server = TestServer::start_in(data.path(), |_| {}).await;
    assert_eq!(server.startup.keys_bound, 1, "only the key without an owner in the log");
    let bound = server.entries("key.added").await;
    let last = bound.last().unwrap();
    assert!(last.contains("\ncode bound\n") && last.contains(&format!("\nkey {legacy}\n")), "{last}");
    assert!(!last.contains("\nactor "), "the gateway did it: {last}");
    integrated(&server).await;
    let work = Work::new(&identity);
    let src = work.file("r.csv", b"id\n");
    let out = sealpost(&server, &bob, &["send", &src, "--to", "hmpps/carol", "-q"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    server.stop().await;
    let server = TestServer::start_in(data.path(), |_| {}).await;
    assert_eq!(server.startup.keys_bound, 0, "bound once");
    server.stop().await;
}
