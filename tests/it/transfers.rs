//! Uploads through the envelope and policy gates, over HTTP, with files from the age crate and
//! the Go `age` CLI.

use std::process::Command;

use crate::common::{self, TestServer, code, decrypt, encrypt, keypair, noise, parties};
use futures_util::StreamExt as _;
use serde_json::json;

#[tokio::test]
async fn an_age_file_uploads_with_one_link_per_recipient_and_collects_byte_for_byte() {
    let server = TestServer::start().await;
    let (bob, alice, alice_id) = parties(&server).await;
    let dave = server.user("hmpps/dave", "recipient").await;
    let (dave_id, dave_r) = keypair();
    server.add_key(&dave, &dave_r).await;
    let alice_r = alice_id.to_public().to_string();
    let plaintext = noise(200_000);
    let ciphertext = encrypt(&[&alice_r, &dave_r], &plaintext);
    let (status, body) = server.upload(&bob, &["hmpps/alice", "hmpps/dave"], "&expires=48h", ciphertext.clone()).await;
    assert_eq!(status, 201, "{body}");
    let links = body["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["recipient"], "hmpps/alice");
    assert_eq!(links[1]["recipient"], "hmpps/dave");
    for link in links {
        let url = link["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/d#", server.url)), "{url}");
        assert!(common::link_token(url).len() >= 43, "at least 256 bits of token");
    }
    use sha2::Digest as _;
    assert_eq!(body["digest"].as_str().unwrap(), format!("sha256:{}", hex::encode(sha2::Sha256::digest(&ciphertext))));
    assert_eq!(body["size"], ciphertext.len());
    assert_eq!(body["classification"], "OFFICIAL");

    let (status, got) = server.redeem(&alice, links[0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(got, ciphertext);
    assert_eq!(decrypt(&alice_id, &got), plaintext);
    let (status, got) = server.redeem(&dave, links[1]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&dave_id, &got), plaintext);

    let events = server.events().await;
    for e in ["upload.accepted", "link.issued", "download.started", "download.completed"] {
        assert!(events.iter().any(|x| x == e), "{e} missing from {events:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn files_from_the_go_age_cli_pass_through_and_decrypt_with_it_again() {
    let Some(age_bin) = common::require_tool("age") else { return };
    let server = TestServer::start().await;
    let (bob, alice, alice_id) = parties(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("records.csv");
    let mut csv = String::from("id,name,dob\n");
    for i in 0..5000 {
        csv.push_str(&format!("{i},Person {i},19{:02}-01-01\n", i % 100));
    }
    std::fs::write(&plain, &csv).unwrap();
    let identity = dir.path().join("alice.txt");
    std::fs::write(&identity, common::identity_file(&alice_id)).unwrap();
    let recipient = alice_id.to_public().to_string();
    for armor in [false, true] {
        let out = dir.path().join(if armor { "bundle.age.asc" } else { "bundle.age" });
        let mut cmd = Command::new(&age_bin);
        cmd.arg("-r").arg(&recipient).arg("-o").arg(&out);
        if armor {
            cmd.arg("-a");
        }
        assert!(cmd.arg(&plain).status().unwrap().success());
        let (status, body) = server.upload(&bob, &["hmpps/alice"], "", std::fs::read(&out).unwrap()).await;
        assert_eq!(status, 201, "armor={armor}: {body}");
        let (status, got) = server.redeem(&alice, body["links"][0]["url"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        let fetched = dir.path().join("fetched.age");
        std::fs::write(&fetched, &got).unwrap();
        let decrypted = Command::new(&age_bin).arg("-d").arg("-i").arg(&identity).arg(&fetched).output().unwrap();
        assert!(decrypted.status.success(), "{}", String::from_utf8_lossy(&decrypted.stderr));
        assert_eq!(decrypted.stdout, csv.as_bytes());
    }
    server.stop().await;
}

#[tokio::test]
async fn age_piped_into_curl_with_a_chunked_body_is_accepted() {
    // The pipe is the point (a chunked body of unknown length), so the shell finds both on PATH.
    let (Some(_), Some(_)) = (common::require_tool("age"), common::require_tool("curl")) else { return };
    let server = TestServer::start().await;
    let (bob, alice, alice_id) = parties(&server).await;
    let recipient = alice_id.to_public().to_string();
    let script = format!(
        "head -c 300000 /dev/urandom | age -r {recipient} | curl -sS -X POST -T - -H 'Authorization: Bearer {bob}' '{}/api/v1/transfers?to=hmpps/alice'",
        server.url
    );
    let url = server.url.clone();
    let out =
        tokio::task::spawn_blocking(move || Command::new("sh").arg("-c").arg(script).output().unwrap()).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(body["status"], "available", "{body}");
    let (status, got) = server.redeem(&alice, body["links"][0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&alice_id, &got).len(), 300_000);
    assert!(body["links"][0]["url"].as_str().unwrap().starts_with(&url));
    server.stop().await;
}

#[tokio::test]
async fn a_streamed_body_of_unknown_length_is_accepted() {
    let server = TestServer::start().await;
    let (bob, alice, alice_id) = parties(&server).await;
    let plaintext = noise(1_000_000);
    let ciphertext = encrypt(&[&alice_id.to_public().to_string()], &plaintext);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = ciphertext.chunks(7919).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = server
        .http()
        .post(format!("{}/api/v1/transfers?to=hmpps/alice", server.url))
        .bearer_auth(&bob)
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, body) = common::status_json(r).await;
    assert_eq!(status, 201, "{body}");
    let (status, got) = server.redeem(&alice, body["links"][0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&alice_id, &got), plaintext);
    server.stop().await;
}

/// Uploads `body`, expects a refusal with `status` and `code`, and checks nothing was kept.
async fn assert_refused(server: &TestServer, bob: &str, body: Vec<u8>, status: u16, expected: &str) {
    let (got, answer) = server.upload(bob, &["hmpps/alice"], "", body).await;
    assert_eq!((got, code(&answer)), (status, expected), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(!message.is_empty() && !message.ends_with('.'), "{message}");
    assert_eq!(server.stored_files(), (0, 0), "a refused upload leaves nothing behind");
}

#[tokio::test]
async fn everything_that_is_not_age_ciphertext_to_the_directory_keys_is_refused_with_its_code() {
    let server = TestServer::start().await;
    let (bob, alice, alice_id) = parties(&server).await;
    let alice_r = alice_id.to_public().to_string();

    let mut csv = b"id,name,passport\n".to_vec();
    for i in 0..2000 {
        csv.extend_from_slice(format!("{i},Person {i},{:09}\n", i * 7919).as_bytes());
    }
    assert_refused(&server, &bob, csv.clone(), 422, "not_age_encrypted").await;

    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip.extend_from_slice(&csv);
    assert_refused(&server, &bob, zip, 422, "not_age_encrypted").await;

    assert_refused(&server, &bob, Vec::new(), 422, "not_age_encrypted").await;

    // A real header over plaintext: the header is well formed, the payload is not ciphertext.
    let real = encrypt(&[&alice_r], b"x");
    let header_end = real.windows(4).position(|w| w == b"\n---").unwrap();
    let mac_end = header_end + 1 + real[header_end + 1..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut forged = real[..mac_end].to_vec();
    forged.extend_from_slice(&csv[..5000]);
    assert_refused(&server, &bob, forged, 422, "not_age_encrypted").await;

    // Header only: no nonce, no chunk.
    assert_refused(&server, &bob, real[..mac_end].to_vec(), 422, "not_age_encrypted").await;

    // Passphrase-encrypted.
    let passphrase = age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from("correct horse".to_owned()));
    let mut out = Vec::new();
    let mut w = passphrase.wrap_output(&mut out).unwrap();
    std::io::Write::write_all(&mut w, &noise(1000)).unwrap();
    w.finish().unwrap();
    assert_refused(&server, &bob, out, 422, "passphrase_not_allowed").await;

    // Encrypted to the directory key and one more: not addressed as declared.
    let (_, stranger) = keypair();
    assert_refused(&server, &bob, encrypt(&[&alice_r, &stranger], &noise(1000)), 422, "recipient_mismatch").await;

    let (_, body) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(body["transfers"], json!([]));
    let refused = server.events().await.iter().filter(|e| *e == "upload.refused").count();
    assert_eq!(refused, 7);
    server.stop().await;
}

#[tokio::test]
async fn uploads_over_the_size_limit_are_refused_whether_declared_or_streamed() {
    let server = TestServer::start_with(|c| c.max_upload_size = 10_000).await;
    let (bob, _, alice_id) = parties(&server).await;
    let ciphertext = encrypt(&[&alice_id.to_public().to_string()], &noise(50_000));
    assert_refused(&server, &bob, ciphertext.clone(), 413, "payload_too_large").await;
    let stream = futures_util::stream::iter(
        ciphertext.chunks(4096).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let r = server
        .http()
        .post(format!("{}/api/v1/transfers?to=hmpps/alice", server.url))
        .bearer_auth(&bob)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let (status, body) = common::status_json(r).await;
    assert_eq!((status, code(&body)), (413, "payload_too_large"));
    assert_eq!(server.stored_files(), (0, 0));
    server.stop().await;
}

#[tokio::test]
async fn only_senders_upload_and_only_to_existing_recipients_with_keys_within_policy() {
    let server = TestServer::start().await;
    let (bob, alice, alice_id) = parties(&server).await;
    let file = encrypt(&[&alice_id.to_public().to_string()], &noise(1000));

    // A route inside hmpps, so that only the role decides: no permit lets a recipient upload.
    server.route("hmpps", "hmpps").await;
    let (status, body) = server.upload(&alice, &["hmpps/alice"], "", file.clone()).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    assert_eq!(body["error"]["policies"], json!([]));
    let (status, body) = server.upload(&bob, &["hmpps/nobody"], "", file.clone()).await;
    assert_eq!((status, code(&body)), (422, "unknown_recipient"));
    server.user("hmpps/nokey", "recipient").await;
    let (status, body) = server.upload(&bob, &["hmpps/nokey"], "", file.clone()).await;
    assert_eq!((status, code(&body)), (422, "recipient_has_no_key"));
    let (status, body) = server.upload(&bob, &[], "", file.clone()).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&expires=15d", file.clone()).await;
    assert_eq!((status, code(&body)), (403, "policy_denied"));
    assert_eq!(body["error"]["policies"], json!(["max-expiry"]));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&classification=SECRET", file.clone()).await;
    assert_eq!((status, code(&body)), (403, "policy_denied"));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&classification=PUBLIC", file.clone()).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("OFFICIAL-SENSITIVE"));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&expires=soon", file.clone()).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    let signer = server.signing_key(&bob).await;
    let fourteen_days = 14 * 86_400;
    let (status, body) =
        server.upload_signed(&bob, &signer, &["hmpps/alice"], "OFFICIAL-SENSITIVE", fourteen_days, file).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "awaiting_approval");
    assert_eq!(server.stored_files(), (1, 0));
    let (_, audit) = server.get(&server.admin, "/api/v1/audit?limit=1000").await;
    let refusals: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "upload.refused")
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        refusals,
        [
            "forbidden",
            "unknown_recipient",
            "recipient_has_no_key",
            "bad_request",
            "policy_denied",
            "policy_denied",
            "bad_request",
            "bad_request"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_sender_breaking_off_mid_upload_leaves_nothing_and_is_recorded() {
    let server = TestServer::start().await;
    let (bob, _, alice_id) = parties(&server).await;
    let ciphertext = encrypt(&[&alice_id.to_public().to_string()], &noise(2_000_000));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let url = format!("{}/api/v1/transfers?to=hmpps/alice", server.url);
    let request = server.http().post(url).bearer_auth(&bob).body(body).send();
    let feeder = async move {
        for chunk in ciphertext[..1_000_000].chunks(65536) {
            tx.send(Ok(chunk.to_vec())).await.unwrap();
        }
        tx.send(Err(std::io::Error::other("sender went away"))).await.unwrap();
    };
    let (result, ()) = tokio::join!(request, feeder);
    assert!(result.is_err() || result.is_ok_and(|r| !r.status().is_success()));
    // The server notices the broken body and records it.
    for _ in 0..100 {
        if server.events().await.iter().any(|e| e == "upload.aborted") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(server.events().await.iter().any(|e| e == "upload.aborted"));
    assert_eq!(server.stored_files(), (0, 0));
    server.stop().await;
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
