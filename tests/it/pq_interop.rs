//! Hybrid post-quantum recipients (`age1pq1…`, stanza `mlkem768x25519`) end to end, against the
//! real gateway: a key made by `sealpost keygen --pq` is registered and counted by the addressee
//! check; a bundle encrypted by the `age-encryption` npm package (the browser pages' library,
//! run under Node by `web/test/age-tool.mjs`) passes the gateway and opens with `sealpost fetch`;
//! one made by `sealpost send` to a key the npm package generated opens with the npm package; and
//! a policy can require post-quantum keys for a classification.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::client::s;
use crate::common::{
    TestServer, code, noise, output_text as text, require_age_npm, run_with_stdin, sealpost_cli as sealpost,
    three_parties as parties,
};

/// Runs the npm package's command with `stdin`; asserts it succeeded and answers its output.
fn npm_age(node: &Path, tool: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let tool = tool.to_str().expect("a UTF-8 path");
    let mut all = vec![tool];
    all.extend_from_slice(args);
    run_with_stdin(node, &all, stdin)
}

/// `sealpost keygen --pq -o DIR/NAME` and `sealpost keys add` of its recipient, as `token`.
async fn pq_key(server: &TestServer, token: &str, dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let made = sealpost(server, token, &["keygen", "--pq", "-o", &s(&path)]).await;
    assert_eq!(made.status.code(), Some(0), "{:?}", text(&made));
    let recipient = text(&made).0.trim().to_owned();
    assert!(recipient.starts_with("age1pq1") && recipient.len() > 1900, "{recipient}");
    let added = sealpost(server, token, &["keys", "add", &recipient]).await;
    assert_eq!(added.status.code(), Some(0), "{:?}", text(&added));
    assert!(text(&added).1.contains("registered mlkem768x25519 key age1pq1"), "{:?}", text(&added));
    (path, recipient)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_to_post_quantum_keys_cross_between_sealpost_and_the_npm_library() {
    let Some((node, tool)) = require_age_npm() else { return };
    let server = TestServer::start().await;
    let (bob, alice, carol) = parties(&server).await;
    let work = tempfile::tempdir().unwrap();

    // alice's key is made and registered by sealpost; the directory serves it as it came.
    let (alice_key, alice_recipient) = pq_key(&server, &alice, work.path(), "alice-pq.key").await;
    let (status, keys) = server.get(&bob, "/api/v1/keys/hmpps/alice").await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["keys"][0]["recipient"], alice_recipient.as_str());
    assert_eq!(keys["keys"][0]["stanza_type"], "mlkem768x25519");

    // The npm package encrypts to it; the gateway counts the hybrid stanza against the hybrid
    // key and lets it through; `sealpost fetch` opens it.
    let plaintext = noise(150_000);
    let from_npm = npm_age(&node, &tool, &["encrypt", &alice_recipient], &plaintext);
    let (status, answer) = server.upload(&bob, &["hmpps/alice"], "", from_npm).await;
    assert_eq!(status, 201, "{answer}");
    let link = answer["links"][0]["url"].as_str().unwrap().to_owned();
    let out = work.path().join("from-npm.out");
    let fetched = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&alice_key), "-o", &s(&out)]).await;
    assert_eq!(fetched.status.code(), Some(0), "{:?}", text(&fetched));
    assert_eq!(std::fs::read(&out).unwrap(), plaintext);

    // A file the npm package encrypted to a classical key instead is refused for alice.
    let classical = age::x25519::Identity::generate().to_public().to_string();
    let wrong = npm_age(&node, &tool, &["encrypt", &classical], b"misaddressed");
    let (status, refused) = server.upload(&bob, &["hmpps/alice"], "", wrong).await;
    assert_eq!((status, code(&refused)), (422, "recipient_mismatch"), "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().starts_with(
            "the file is encrypted to 1 recipient key(s) (X25519) but the addressed users have 1 key(s) (mlkem768x25519)"
        ),
        "{refused}"
    );

    // carol's identity is made by the npm package; `sealpost send` encrypts to her recipient,
    // and the npm package decrypts what the gateway hands out: the bundle, byte for byte what
    // our own identity makes of it.
    let made = String::from_utf8(npm_age(&node, &tool, &["keygen-pq"], b"")).unwrap();
    let (carol_identity, carol_recipient) = made.trim().split_once('\n').unwrap();
    let carol_key = work.path().join("carol-npm.key");
    std::fs::write(&carol_key, format!("{carol_identity}\n")).unwrap();
    server.add_key(&carol, carol_recipient).await;
    let report = work.path().join("report.csv");
    std::fs::write(&report, b"id,name\n1,Example Person\n").unwrap();
    let sent = sealpost(&server, &bob, &["send", &s(&report), "--to", "hmpps/carol"]).await;
    let (sent_out, sent_err) = text(&sent);
    assert_eq!(sent.status.code(), Some(0), "{sent_err}");
    assert!(sent_err.contains("sealpost: hmpps/carol: mlkem768x25519 key sha256:"), "{sent_err}");
    assert!(!sent_err.contains("only some of the recipients' keys are post-quantum"), "{sent_err}");
    let link = sent_out.lines().nth(1).unwrap().split_once(' ').unwrap().1.to_owned();
    let (status, ciphertext) = server.redeem(&carol, &link).await;
    assert_eq!(status, 200);
    assert!(ciphertext.starts_with(b"age-encryption.org/v1\n-> mlkem768x25519 "));
    let tar = npm_age(&node, &tool, &["decrypt", &s(&carol_key)], &ciphertext);
    let ours: sealpost::hybrid::Identity = carol_identity.parse().unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut age::Decryptor::new(&ciphertext[..])
            .unwrap()
            .decrypt(std::iter::once(&ours as &dyn age::Identity))
            .unwrap(),
        &mut plain,
    )
    .unwrap();
    assert_eq!(tar, plain);
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    std::fs::write(work.path().join("bundle.tar"), &tar).unwrap();
    let untar =
        Command::new("tar").args(["-xf", &s(&work.path().join("bundle.tar")), "-C", &s(&unpacked)]).status().unwrap();
    assert!(untar.success());
    assert_eq!(std::fs::read(unpacked.join("report.csv")).unwrap(), b"id,name\n1,Example Person\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_with_a_post_quantum_and_a_classical_key_gets_both_and_the_sender_is_told() {
    let server = TestServer::start().await;
    let (bob, alice, _) = parties(&server).await;
    let work = tempfile::tempdir().unwrap();
    let (pq_key_path, _) = pq_key(&server, &alice, work.path(), "alice-pq.key").await;
    let classical = age::x25519::Identity::generate();
    server.add_key(&alice, &classical.to_public().to_string()).await;
    let src = work.path().join("notes.txt");
    std::fs::write(&src, b"notes").unwrap();
    let sent = sealpost(&server, &bob, &["send", &s(&src), "--to", "hmpps/alice"]).await;
    let (sent_out, sent_err) = text(&sent);
    assert_eq!(sent.status.code(), Some(0), "{sent_err}");
    assert!(
        sent_err.contains(
            "sealpost: note: only some of the recipients' keys are post-quantum (`mlkem768x25519`): the bundle is \
             encrypted to the classical ones too, so it is only as safe from a future quantum computer as they are"
        ),
        "{sent_err}"
    );
    let link = sent_out.lines().nth(1).unwrap().split_once(' ').unwrap().1.to_owned();
    let out = work.path().join("notes.out");
    let fetched = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&pq_key_path), "-o", &s(&out)]).await;
    assert_eq!(fetched.status.code(), Some(0), "{:?}", text(&fetched));
    assert_eq!(std::fs::read(&out).unwrap(), b"notes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_can_require_post_quantum_keys_for_sensitive_transfers() {
    let policies = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, policies.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(shipped.join("examples/post-quantum.cedar"), policies.path().join("post-quantum.cedar")).unwrap();
    let dir = policies.path().to_owned();
    let server = TestServer::start_with(move |c| c.policies = Some(dir)).await;
    let (bob, alice, carol) = parties(&server).await;
    let work = tempfile::tempdir().unwrap();
    pq_key(&server, &alice, work.path(), "alice-pq.key").await;
    server.add_key(&carol, &age::x25519::Identity::generate().to_public().to_string()).await;

    // carol holds a classical key: OFFICIAL-SENSITIVE is refused before the body, signed or not,
    // OFFICIAL is not.
    let signer = server.signing_key(&bob).await;
    let (status, denied) =
        server.upload_signed(&bob, &signer, &["hmpps/carol"], "OFFICIAL-SENSITIVE", 3600, b"x".to_vec()).await;
    assert_eq!((status, code(&denied)), (403, "policy_denied"), "{denied}");
    assert_eq!(denied["error"]["policies"], serde_json::json!(["post-quantum-sensitive"]));
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("OFFICIAL-SENSITIVE material goes only to post-quantum keys")
    );
    let to_carol = sealpost(&server, &bob, &["send", &s(&write(work.path(), "a.txt")), "--to", "hmpps/carol"]).await;
    assert_eq!(to_carol.status.code(), Some(0), "{:?}", text(&to_carol));

    // alice holds only a post-quantum key: her OFFICIAL-SENSITIVE transfer, signed, is accepted
    // (and held for the four-eyes approval, as every OFFICIAL-SENSITIVE transfer is).
    let key = work.path().join("bob.signing");
    signer.write(&key);
    let file = s(&write(work.path(), "b.txt"));
    let args =
        ["send", &file, "--to", "hmpps/alice", "--classification", "OFFICIAL-SENSITIVE", "--signing-key", &s(&key)];
    let to_alice = sealpost(&server, &bob, &args).await;
    assert_eq!(to_alice.status.code(), Some(0), "{:?}", text(&to_alice));
    assert!(text(&to_alice).1.contains("held until a compliance officer approves it"), "{:?}", text(&to_alice));
}

/// Writes a small file `name` in `dir`.
fn write(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, name.as_bytes()).unwrap();
    path
}
