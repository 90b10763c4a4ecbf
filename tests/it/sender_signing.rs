//! Senders sign before release (issue 13, item 2): a `sealpost.manifest/v2` travels with the
//! upload (one-shot headers, tus metadata), is checked against the request and the sender's live
//! signing keys before the body is read and against the body's digest before any link works, is
//! kept with the transfer and recorded in its `upload.accepted` entry; policy requires it for
//! OFFICIAL-SENSITIVE; `send` signs and `fetch` checks. Every refusal has its code, a sentence
//! saying what to do, and an `upload.refused` entry.

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::common::{
    self, Signer, TestServer, code, encrypt, identity_file, manifest, noise, parties, sealpost_cli as sealpost, values,
};

/// Three days, the gateway's default expiry, in seconds.
const DEFAULT_EXPIRY: u64 = 259_200;

/// acme/bob's registered signing key, with the parties of [`parties`].
async fn signed_parties(server: &TestServer) -> (String, String, age::x25519::Identity, String, Signer) {
    let (bob, alice, id) = parties(server).await;
    let signer = server.signing_key(&bob).await;
    let recipient = id.to_public().to_string();
    (bob, alice, id, recipient, signer)
}

/// Adds `probation` (an agency bob's organisation may send to) with recipient `probation/erin`
/// holding one key; answers that key.
async fn second_agency(server: &TestServer) -> String {
    server.org("probation", "agency").await;
    server.route("acme", "probation").await;
    let erin = server.user("probation/erin", "recipient").await;
    let (_, erin_key) = common::keypair();
    server.add_key(&erin, &erin_key).await;
    erin_key
}

/// The message of an error answer.
fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

/// The `reason` of every `upload.refused` entry, in order, with its code.
async fn refusals(server: &TestServer) -> Vec<(String, String)> {
    let entries = server.entries("upload.refused").await;
    values(&entries, "code").into_iter().zip(values(&entries, "reason")).collect()
}

fn pair(code: &str, reason: &str) -> (String, String) {
    (code.to_owned(), reason.to_owned())
}

#[tokio::test]
async fn a_signed_upload_is_kept_with_its_transfer_and_its_log_entry_names_key_and_manifest() {
    let server = TestServer::start().await;
    let (bob, alice, _, recipient, signer) = signed_parties(&server).await;
    let file = encrypt(&[&recipient], &noise(3000));
    let text = manifest("acme/bob", &file, "OFFICIAL-SENSITIVE", DEFAULT_EXPIRY, &["hmpps/alice"]);
    let (status, body) =
        server.upload_signed(&bob, &signer, &["hmpps/alice"], "OFFICIAL-SENSITIVE", DEFAULT_EXPIRY, file).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "awaiting_approval");
    let id = body["id"].as_str().unwrap().to_owned();

    // The manifest is served as signed, to the sender and the recipient.
    for token in [&bob, &alice] {
        let (status, shown) = server.get(token, &format!("/api/v1/transfers/{id}/manifest")).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["manifest"], text.as_str());
        assert_eq!(shown["signature"], signer.sign(&text).as_str());
        assert_eq!(shown["key"], json!({"fingerprint": signer.fingerprint, "public": signer.public}));
        assert_eq!(shown["sender"], "acme/bob");
    }
    let accepted = server.entries("upload.accepted").await;
    assert_eq!(values(&accepted, "signed"), ["yes"]);
    assert_eq!(values(&accepted, "signing_key"), [signer.fingerprint.as_str()]);
    let text_digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(text.as_bytes())));
    assert_eq!(values(&accepted, "manifest"), [text_digest.as_str()]);
    let order: Vec<&str> = accepted[0].lines().filter_map(|l| l.split_once(' ').map(|(k, _)| k)).collect();
    assert!(order.ends_with(&["payload", "signed", "signing_key", "manifest"]), "{}", accepted[0]);
    assert!(server.entries("manifest.signed").await.is_empty(), "signed with the upload, not afterwards");

    // The legacy route takes no second manifest for it.
    let legacy = json!({"manifest": text, "signature": signer.sign(&text), "key": signer.fingerprint});
    let (status, body) = server.post(&bob, &format!("/api/v1/transfers/{id}/manifest"), legacy).await;
    assert_eq!((status, code(&body)), (409, "manifest_exists"), "{body}");

    // An unsigned OFFICIAL upload says so in its entry, and has no manifest.
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"plain")).await;
    assert_eq!(status, 201, "{body}");
    let accepted = server.entries("upload.accepted").await;
    assert_eq!(values(&accepted, "signed"), ["yes", "no"]);
    assert_eq!(values(&accepted, "signing_key"), [signer.fingerprint.as_str(), ""]);
    let (status, _) = server.get(&bob, &format!("/api/v1/transfers/{}/manifest", body["id"].as_str().unwrap())).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn the_shipped_policies_refuse_unsigned_official_sensitive_with_the_advice_and_accept_it_signed() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let file = encrypt(&[&recipient], &noise(500));
    let (status, body) =
        server.upload(&bob, &["hmpps/alice"], "&classification=OFFICIAL-SENSITIVE", file.clone()).await;
    assert_eq!((status, code(&body)), (403, "policy_denied"), "{body}");
    assert_eq!(body["error"]["policies"], json!(["signed-sensitive"]));
    assert!(message(&body).contains("send with `sealpost send --signing-key FILE` (or `signing_key` in your profile)"));
    let refused = server.entries("upload.refused").await;
    assert_eq!(values(&refused, "policies"), ["signed-sensitive"]);
    assert_eq!(values(&refused, "code"), ["policy_denied"]);
    assert_eq!(server.stored_files(), (0, 0));

    // OFFICIAL needs no signature; signed, OFFICIAL-SENSITIVE passes (held for four eyes).
    assert_eq!(server.upload(&bob, &["hmpps/alice"], "", file.clone()).await.0, 201);
    let (status, body) =
        server.upload_signed(&bob, &signer, &["hmpps/alice"], "OFFICIAL-SENSITIVE", DEFAULT_EXPIRY, file).await;
    assert_eq!((status, body["policies"].clone()), (202, json!(["four-eyes-hold"])), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_forged_signature_is_refused_before_the_body_and_logged() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let file = encrypt(&[&recipient], &noise(700));
    let text = manifest("acme/bob", &file, "OFFICIAL-SENSITIVE", 3600, &["hmpps/alice"]);
    let extra = "&classification=OFFICIAL-SENSITIVE&expires=3600s";
    let with_signature = |signature: String| {
        vec![
            ("Sealpost-Manifest", STANDARD.encode(&text)),
            ("Sealpost-Manifest-Signature", signature),
            ("Sealpost-Manifest-Key", signer.fingerprint.clone()),
        ]
    };
    let mallory = Signer::generate();
    let mut flipped = STANDARD.decode(signer.sign(&text)).unwrap();
    flipped[10] ^= 1;
    let over_other_text = signer.sign(&text.replace("3600", "3601"));
    for signature in [mallory.sign(&text), STANDARD.encode(flipped), over_other_text, STANDARD.encode([7u8; 63])] {
        let (status, body) =
            server.upload_with(&bob, &["hmpps/alice"], extra, &with_signature(signature), file.clone()).await;
        assert_eq!((status, code(&body)), (422, "sender_signature_invalid"), "{body}");
        assert_eq!(
            message(&body),
            format!(
                "the manifest's signature does not verify under `{}`: sign the manifest's exact bytes with the \
                 Ed25519 key whose fingerprint you send, and send it in standard base64",
                signer.fingerprint
            )
        );
    }
    assert_eq!(refusals(&server).await, vec![pair("sender_signature_invalid", "bad_signature"); 4]);
    assert_eq!(server.stored_files(), (0, 0));
    assert!(server.entries("upload.accepted").await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_manifest_of_another_upload_is_refused_when_the_body_ends_and_nothing_is_kept() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let signed_file = encrypt(&[&recipient], &noise(2000));
    let other_file = encrypt(&[&recipient], &noise(2001));
    let text = manifest("acme/bob", &signed_file, "OFFICIAL-SENSITIVE", 3600, &["hmpps/alice"]);
    let extra = "&classification=OFFICIAL-SENSITIVE&expires=3600s";
    let (status, body) =
        server.upload_with(&bob, &["hmpps/alice"], extra, &signer.headers(&text), other_file.clone()).await;
    assert_eq!((status, code(&body)), (422, "manifest_mismatch"), "{body}");
    assert_eq!(
        message(&body),
        format!(
            "the manifest is for the file with digest `{}`, but the uploaded file's digest is `{}`: sign the \
             manifest of the file you upload (its digest is the SHA-256 of the whole age file); nothing was kept, \
             send it again",
            sealpost::wire::Digest::of(&signed_file),
            sealpost::wire::Digest::of(&other_file)
        )
    );
    assert_eq!(server.stored_files(), (0, 0), "nothing kept");
    assert!(server.entries("upload.accepted").await.is_empty());
    assert_eq!(refusals(&server).await, [pair("manifest_mismatch", "digest")]);
    let sizes = values(&server.entries("upload.refused").await, "size");
    assert_eq!(sizes, [other_file.len().to_string()]);
    // The manifest's own file, sent with it, is accepted.
    let (status, body) = server.upload_with(&bob, &["hmpps/alice"], extra, &signer.headers(&text), signed_file).await;
    assert_eq!(status, 202, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_removed_or_foreign_signing_key_signs_nothing() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let carl = server.user("acme/carl", "sender").await;
    let carls = server.signing_key(&carl).await;
    let file = encrypt(&[&recipient], &noise(300));
    let text = manifest("acme/bob", &file, "OFFICIAL", 3600, &["hmpps/alice"]);
    let extra = "&classification=OFFICIAL&expires=3600s";
    let unknown = |fingerprint: &str| {
        format!(
            "`{fingerprint}` is none of your signing keys (never registered, or removed): register the key with \
             `sealpost keys add`, or sign with one of the signing keys `sealpost keys list` shows"
        )
    };

    // Another user's key, and one never registered.
    for other in [&carls, &Signer::generate()] {
        let (status, body) =
            server.upload_with(&bob, &["hmpps/alice"], extra, &other.headers(&text), file.clone()).await;
        assert_eq!((status, code(&body)), (422, "unknown_signing_key"), "{body}");
        assert_eq!(message(&body), unknown(&other.fingerprint));
    }
    // bob's own key works, until he removes it.
    let (status, body) = server.upload_with(&bob, &["hmpps/alice"], extra, &signer.headers(&text), file.clone()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.delete(&bob, &format!("/api/v1/keys/acme/bob/{}", signer.fingerprint)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.upload_with(&bob, &["hmpps/alice"], extra, &signer.headers(&text), file).await;
    assert_eq!((status, code(&body)), (422, "unknown_signing_key"), "{body}");
    assert_eq!(message(&body), unknown(&signer.fingerprint));
    assert_eq!(refusals(&server).await, vec![pair("unknown_signing_key", "unknown_key"); 3]);
    server.stop().await;
}

#[tokio::test]
async fn a_manifest_that_disagrees_with_the_uploads_parameters_is_refused() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let erin_key = second_agency(&server).await;
    let file = encrypt(&[&recipient], &noise(400));
    let both = encrypt(&[&recipient, &erin_key], &noise(400));
    let sensitive = "OFFICIAL-SENSITIVE";
    let extra = "&classification=OFFICIAL-SENSITIVE&expires=3600s";

    type Case<'a> = (&'a str, Vec<u8>, String, &'a str, &'a str, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "acme/bob",
            file.clone(),
            manifest("acme/carl", &file, sensitive, 3600, &["hmpps/alice"]),
            extra,
            "sender",
            "the manifest names `acme/carl` as its sender, but you are `acme/bob`",
        ),
        (
            "acme/bob",
            file.clone(),
            manifest("acme/bob", &file, sensitive, 3600, &["hmpps/alice", "probation/erin"]),
            extra,
            "recipients",
            "the manifest names the recipients `hmpps/alice` `probation/erin`, but the upload is addressed to `hmpps/alice`",
        ),
        (
            "both",
            both.clone(),
            manifest("acme/bob", &both, sensitive, 3600, &["hmpps/alice"]),
            extra,
            "recipients",
            "the manifest names the recipients `hmpps/alice`, but the upload is addressed to `hmpps/alice` `probation/erin`",
        ),
        (
            "acme/bob",
            file.clone(),
            manifest("acme/bob", &file, "OFFICIAL", 3600, &["hmpps/alice"]),
            extra,
            "classification",
            "the manifest says `OFFICIAL`, but the upload is `OFFICIAL-SENSITIVE`",
        ),
        (
            "acme/bob",
            file.clone(),
            manifest("acme/bob", &file, sensitive, 3600, &["hmpps/alice"]),
            "&expires=3600s",
            "classification",
            "the manifest says `OFFICIAL-SENSITIVE`, but the upload is `OFFICIAL`",
        ),
        (
            "acme/bob",
            file.clone(),
            manifest("acme/bob", &file, sensitive, 7200, &["hmpps/alice"]),
            extra,
            "expires",
            "the manifest says the links live 7200 seconds, but the upload asks for 3600",
        ),
        (
            "acme/bob",
            file.clone(),
            manifest("acme/bob", &file, sensitive, 3600, &["hmpps/alice"]),
            "&classification=OFFICIAL-SENSITIVE",
            "expires",
            "the manifest says the links live 3600 seconds, but the upload asks for 259200",
        ),
    ];
    let mut expected = Vec::new();
    for (who, body, text, extra, reason, said) in cases {
        let to: &[&str] = if who == "both" { &["hmpps/alice", "probation/erin"] } else { &["hmpps/alice"] };
        let (status, answer) = server.upload_with(&bob, to, extra, &signer.headers(&text), body).await;
        assert_eq!((status, code(&answer)), (422, "manifest_mismatch"), "{reason}: {answer}");
        assert_eq!(
            message(&answer),
            format!(
                "{said}: sign a manifest of this upload's own parameters, and send the classification and expiry \
                 you signed explicitly"
            )
        );
        expected.push(pair("manifest_mismatch", reason));
    }
    assert_eq!(refusals(&server).await, expected);

    // Without `expires`, the manifest names the gateway's default; `expires=72h` is the same.
    let text = manifest("acme/bob", &file, sensitive, DEFAULT_EXPIRY, &["hmpps/alice"]);
    for extra in ["&classification=OFFICIAL-SENSITIVE", "&classification=OFFICIAL-SENSITIVE&expires=72h"] {
        let (status, body) =
            server.upload_with(&bob, &["hmpps/alice"], extra, &signer.headers(&text), file.clone()).await;
        assert_eq!(status, 202, "{extra}: {body}");
    }
    let (status, body) =
        server.upload_signed(&bob, &signer, &["probation/erin", "hmpps/alice"], sensitive, 3600, both).await;
    assert_eq!(status, 202, "recipients in any order in the request: {body}");
    server.stop().await;
}

#[tokio::test]
async fn a_partial_or_undecodable_manifest_header_set_is_a_bad_request_and_logged() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let file = encrypt(&[&recipient], &noise(100));
    let text = manifest("acme/bob", &file, "OFFICIAL", DEFAULT_EXPIRY, &["hmpps/alice"]);
    let all = signer.headers(&text);
    let partial = |missing: usize| -> Vec<(&str, String)> {
        all.iter().enumerate().filter(|(i, _)| *i != missing).map(|(_, h)| h.clone()).collect()
    };
    for (missing, part) in [(0, "manifest"), (1, "signature"), (2, "key")] {
        let (status, body) = server.upload_with(&bob, &["hmpps/alice"], "", &partial(missing), file.clone()).await;
        assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
        assert_eq!(
            message(&body),
            format!(
                "the upload carries a signed manifest without its {part}: send the manifest, its signature and its \
                 key together (the three `Sealpost-Manifest` headers, or the `manifest`, `manifest_signature` and \
                 `manifest_key` upload metadata), or none of them"
            )
        );
    }
    let only_key = vec![all[2].clone()];
    assert_eq!(server.upload_with(&bob, &["hmpps/alice"], "", &only_key, file.clone()).await.0, 400);
    let mut not_base64 = all.clone();
    not_base64[0].1 = "sealpost.manifest/v2 sender acme/bob".to_owned();
    let (status, body) = server.upload_with(&bob, &["hmpps/alice"], "", &not_base64, file.clone()).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    assert_eq!(
        message(&body),
        "the signed manifest's manifest is not standard base64: encode it with padding, as RFC 4648 section 4 says"
    );
    let mut url_safe = all.clone();
    url_safe[1].1 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(STANDARD.decode(&all[1].1).unwrap());
    url_safe[1].1.push('!');
    assert_eq!(server.upload_with(&bob, &["hmpps/alice"], "", &url_safe, file.clone()).await.0, 400);
    let mut reasons = vec![pair("bad_request", "partial_manifest"); 4];
    reasons.extend(vec![pair("bad_request", "manifest_encoding"); 2]);
    assert_eq!(refusals(&server).await, reasons);
    // All three: accepted.
    assert_eq!(server.upload_with(&bob, &["hmpps/alice"], "", &all, file).await.0, 201);
    server.stop().await;
}

#[tokio::test]
async fn only_the_canonical_manifest_text_is_accepted() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let erin_key = second_agency(&server).await;
    let file = encrypt(&[&recipient, &erin_key], &noise(100));
    let to = ["hmpps/alice", "probation/erin"];
    let good = manifest("acme/bob", &file, "OFFICIAL", DEFAULT_EXPIRY, &to);
    let digest = sealpost::wire::Digest::of(&file);
    let transfer = "0".repeat(32);
    let cases = [
        (good.replace('\n', "\r\n"), "its first line is not `sealpost.manifest/v2`"),
        (format!("{good}\n"), "line 8 must be `recipient ORG/NAME`"),
        (
            good.trim_end().to_owned(),
            "it is not in canonical form (every line ends in a single `\\n`, no `\\r`, no blank line)",
        ),
        (
            good.replace("hmpps/alice\nrecipient probation/erin", "probation/erin\nrecipient hmpps/alice"),
            "its recipients must be sorted bytewise, each named once",
        ),
        (
            good.replace(&digest.hex(), &digest.hex().to_uppercase()),
            "line 3 must be `digest sha256:<64 lowercase hex>`",
        ),
        (
            good.replace("expires 259200", "expires 0259200"),
            "it is not in canonical form (every line ends in a single `\\n`, no `\\r`, no blank line)",
        ),
        (
            format!(
                "sealpost.manifest/v1\ntransfer {transfer}\ndigest {digest}\nrecipient hmpps/alice\nrecipient probation/erin\n"
            ),
            "its first line is not `sealpost.manifest/v2`",
        ),
    ];
    for (text, why) in &cases {
        let (status, body) = server.upload_with(&bob, &to, "", &signer.headers(text), file.clone()).await;
        assert_eq!((status, code(&body)), (422, "manifest_mismatch"), "{text:?}: {body}");
        assert_eq!(
            message(&body),
            format!(
                "the manifest is not a canonical `sealpost.manifest/v2` text: {why}: render the manifest exactly as \
                 the `sealpost.manifest/v2` format says, or let `sealpost send --signing-key FILE` make it"
            )
        );
    }
    assert_eq!(refusals(&server).await, vec![pair("manifest_mismatch", "not_canonical"); cases.len()]);
    assert_eq!(server.upload_with(&bob, &to, "", &signer.headers(&good), file).await.0, 201);
    server.stop().await;
}

/// `Upload-Metadata` for a signed tus upload: `to`, then the manifest's three keys (the signature
/// as its 64 raw bytes, base64 as tus requires).
fn tus_metadata(to: &str, text: &str, signer: &Signer, extra: &[(&str, &str)]) -> String {
    tus_metadata_signed_by(to, text, signer, &signer.fingerprint, extra)
}

/// As [`tus_metadata`], with the signature made by `signer` but the key named `key`.
fn tus_metadata_signed_by(to: &str, text: &str, signer: &Signer, key: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![format!("to {}", STANDARD.encode(to))];
    for (name, value) in extra {
        pairs.push(format!("{name} {}", STANDARD.encode(value)));
    }
    // `sign` answers standard base64 of the raw signature bytes: exactly the tus value.
    pairs.push(format!("manifest {}", STANDARD.encode(text)));
    pairs.push(format!("manifest_signature {}", signer.sign(text)));
    pairs.push(format!("manifest_key {}", STANDARD.encode(key)));
    pairs.join(",")
}

/// Creates a tus upload with raw `Upload-Metadata`; answers the status, its location and body.
async fn tus_create(server: &TestServer, token: &str, metadata: &str, length: usize) -> (u16, String, Value) {
    let r = server
        .http()
        .post(format!("{}/api/v1/uploads", server.url))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", metadata)
        .send()
        .await
        .unwrap();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (status, body) = common::status_json(r).await;
    (status, location, body)
}

/// Appends `bytes` at `offset`; answers the status and the body.
async fn tus_patch(server: &TestServer, token: &str, location: &str, offset: usize, bytes: &[u8]) -> (u16, Value) {
    let r = server
        .http()
        .patch(format!("{}{location}", server.url))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string())
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    common::status_json(r).await
}

#[tokio::test]
async fn a_tus_upload_carries_its_manifest_in_metadata_and_is_checked_again_at_the_last_byte() {
    let server = TestServer::start().await;
    let (bob, _, _, recipient, signer) = signed_parties(&server).await;
    let file = encrypt(&[&recipient], &noise(5000));
    let text = manifest("acme/bob", &file, "OFFICIAL-SENSITIVE", 3600, &["hmpps/alice"]);
    let extra = [("classification", "OFFICIAL-SENSITIVE"), ("expires", "3600s")];

    // Signed, in two requests: accepted, kept, logged as signed.
    let (status, location, body) =
        tus_create(&server, &bob, &tus_metadata("hmpps/alice", &text, &signer, &extra), file.len()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(tus_patch(&server, &bob, &location, 0, &file[..2000]).await.0, 204);
    let (status, body) = tus_patch(&server, &bob, &location, 2000, &file[2000..]).await;
    assert_eq!(status, 204, "{body}");
    let id = location.rsplit('/').next().unwrap();
    let (status, shown) = server.get(&bob, &format!("/api/v1/transfers/{id}/manifest")).await;
    assert_eq!((status, shown["manifest"].as_str()), (200, Some(text.as_str())));
    assert_eq!(values(&server.entries("upload.accepted").await, "signed"), ["yes"]);

    // The manifest of another file: refused at the last byte, and the upload is gone.
    let other = encrypt(&[&recipient], &noise(5001));
    let (status, location, _) =
        tus_create(&server, &bob, &tus_metadata("hmpps/alice", &text, &signer, &extra), other.len()).await;
    assert_eq!(status, 201);
    assert_eq!(tus_patch(&server, &bob, &location, 0, &other[..100]).await.0, 204);
    let (status, body) = tus_patch(&server, &bob, &location, 100, &other[100..]).await;
    assert_eq!((status, code(&body)), (422, "manifest_mismatch"), "{body}");
    let head =
        server.http().head(format!("{}{location}", server.url)).bearer_auth(&bob).header("Tus-Resumable", "1.0.0");
    assert_eq!(head.send().await.unwrap().status(), 404);

    // The key removed between creation and the last byte: refused, and the upload is gone.
    let (status, location, _) =
        tus_create(&server, &bob, &tus_metadata("hmpps/alice", &text, &signer, &extra), file.len()).await;
    assert_eq!(status, 201);
    assert_eq!(server.delete(&bob, &format!("/api/v1/keys/acme/bob/{}", signer.fingerprint)).await.0, 200);
    let (status, body) = tus_patch(&server, &bob, &location, 0, &file).await;
    assert_eq!((status, code(&body)), (422, "unknown_signing_key"), "{body}");
    assert_eq!(tus_patch(&server, &bob, &location, 0, &file).await.0, 404);

    // A partial set, and a bad signature, are refused at creation.
    let partial = format!("to {},manifest {}", STANDARD.encode("hmpps/alice"), STANDARD.encode(&text));
    let (status, _, body) = tus_create(&server, &bob, &partial, file.len()).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    let signer = server.signing_key(&bob).await;
    let forged = tus_metadata_signed_by("hmpps/alice", &text, &Signer::generate(), &signer.fingerprint, &extra);
    let (status, _, body) = tus_create(&server, &bob, &forged, file.len()).await;
    assert_eq!((status, code(&body)), (422, "sender_signature_invalid"), "{body}");
    assert_eq!(
        refusals(&server).await,
        [
            pair("manifest_mismatch", "digest"),
            pair("unknown_signing_key", "unknown_key"),
            pair("bad_request", "partial_manifest"),
            pair("sender_signature_invalid", "bad_signature"),
        ]
    );
    assert_eq!(server.stored_files(), (1, 0), "only the accepted transfer's blob");
    server.stop().await;
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Sends `name` (holding `content`) from bob; answers (transfer id, the first link).
async fn send(
    server: &TestServer,
    bob: &str,
    dir: &Path,
    name: &str,
    content: &[u8],
    args: &[&str],
) -> (String, String) {
    let file = dir.join(name);
    std::fs::write(&file, content).unwrap();
    let mut all = vec!["send", file.to_str().unwrap(), "--to", "hmpps/alice"];
    all.extend_from_slice(args);
    let out = sealpost(server, bob, &all).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = stdout.lines();
    let id = lines.next().unwrap().to_owned();
    let link = lines.next().map(|l| l.split_once(' ').unwrap().1.to_owned()).unwrap_or_default();
    (id, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_before_release_and_fetch_checks_the_manifest_against_the_log() {
    let server = TestServer::start().await;
    let (bob, alice, id, _, signer) = signed_parties(&server).await;
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("bob.signing");
    signer.write(&key);
    let identity = work.path().join("alice.key");
    std::fs::write(&identity, identity_file(&id)).unwrap();

    // Unsigned OFFICIAL-SENSITIVE is refused before the body, with the advice.
    let file = work.path().join("case.csv");
    std::fs::write(&file, b"name,dob\n").unwrap();
    let args = ["send", &s(&file), "--to", "hmpps/alice", "--classification", "OFFICIAL-SENSITIVE"];
    let refused = sealpost(&server, &bob, &args).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("`sealpost send --signing-key FILE`"), "{}", stderr(&refused));

    // Signed without --expires: the manifest names the gateway's default, sent explicitly.
    let (transfer, link) = send(&server, &bob, work.path(), "a.txt", b"alpha", &["--signing-key", &s(&key)]).await;
    let (_, shown) = server.get(&bob, &format!("/api/v1/transfers/{transfer}/manifest")).await;
    let text = shown["manifest"].as_str().unwrap();
    let (_, view) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(
        text,
        format!(
            "sealpost.manifest/v2\nsender acme/bob\ndigest {}\nclassification OFFICIAL\nexpires 259200\nrecipient hmpps/alice\n",
            view["digest"].as_str().unwrap()
        )
    );
    let out =
        sealpost(&server, &alice, &["fetch", &link, "-i", &s(&identity), "-o", &s(&work.path().join("a.out"))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "sealpost: verified: `acme/bob` signed the manifest of {} with {} (in the log), before release",
            view["digest"].as_str().unwrap(),
            signer.fingerprint
        )),
        "{}",
        stderr(&out)
    );

    // An unsigned bundle is fetched, and said to be unsigned.
    let (_, plain) = send(&server, &bob, work.path(), "b.txt", b"bravo", &[]).await;
    let out =
        sealpost(&server, &alice, &["fetch", &plain, "-i", &s(&identity), "-o", &s(&work.path().join("b.out"))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("sealpost: warning: the sender did not sign this bundle"), "{}", stderr(&out));
    assert_eq!(std::fs::read(work.path().join("b.out")).unwrap(), b"bravo");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_refuses_a_bundle_whose_signed_manifest_disagrees_with_the_transfer() {
    let server = TestServer::start().await;
    let (bob, alice, id, recipient, signer) = signed_parties(&server).await;
    let work = tempfile::tempdir().unwrap();
    let identity = work.path().join("alice.key");
    std::fs::write(&identity, identity_file(&id)).unwrap();
    let db = server.database().await;
    let fetch = async |link: &str, out: &str| {
        sealpost(&server, &alice, &["fetch", link, "-i", &s(&identity), "-o", &s(&work.path().join(out))]).await
    };
    let upload = async |file: Vec<u8>, classification: &str| {
        let (status, body) = server.upload_signed(&bob, &signer, &["hmpps/alice"], classification, 3600, file).await;
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().unwrap().to_owned(), body["links"][0]["url"].as_str().unwrap().to_owned())
    };
    let swap = async |transfer: &str, text: &str| {
        let changed = sqlx::query("UPDATE manifests SET manifest = $1, signature = $2 WHERE transfer_id = $3")
            .bind(text)
            .bind(signer.sign(text))
            .bind(transfer)
            .execute(&db)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
    };
    let refused = |out: &Output, says: &str| {
        assert_eq!(out.status.code(), Some(4), "{}", stderr(out));
        let error = stderr(out).lines().find(|l| l.starts_with("sealpost: error: ")).unwrap_or_default().to_owned();
        assert!(error.starts_with(&format!("sealpost: error: manifest_mismatch: {says}")), "{}", stderr(out));
    };

    // bob's valid signature over another file's manifest, swapped in on the gateway.
    let (a, a_link) = upload(encrypt(&[&recipient], &noise(100)), "OFFICIAL").await;
    let other = encrypt(&[&recipient], &noise(101));
    swap(&a, &manifest("acme/bob", &other, "OFFICIAL", 3600, &["hmpps/alice"])).await;
    refused(
        &fetch(&a_link, "a.out").await,
        &format!("the signed manifest is for {}", sealpost::wire::Digest::of(&other)),
    );
    assert!(!work.path().join("a.out").exists());

    // …over this file but another classification.
    let file = encrypt(&[&recipient], &noise(102));
    let (b, b_link) = upload(file.clone(), "OFFICIAL").await;
    swap(&b, &manifest("acme/bob", &file, "OFFICIAL-SENSITIVE", 3600, &["hmpps/alice"])).await;
    refused(
        &fetch(&b_link, "b.out").await,
        "the signed manifest says `OFFICIAL-SENSITIVE`, but the transfer is `OFFICIAL`",
    );

    // …over this file with another lifetime: the log's record of the manifest differs.
    let file = encrypt(&[&recipient], &noise(103));
    let (c, c_link) = upload(file.clone(), "OFFICIAL").await;
    swap(&c, &manifest("acme/bob", &file, "OFFICIAL", 60, &["hmpps/alice"])).await;
    refused(&fetch(&c_link, "c.out").await, "the log records manifest sha256:");

    // The manifest withdrawn: the log says the upload was signed.
    let (d, d_link) = upload(encrypt(&[&recipient], &noise(104)), "OFFICIAL").await;
    sqlx::query("DELETE FROM manifests WHERE transfer_id = $1").bind(&d).execute(&db).await.unwrap();
    refused(&fetch(&d_link, "d.out").await, "the log records that the sender signed this upload");

    // A forged signature.
    let (e, e_link) = upload(encrypt(&[&recipient], &noise(105)), "OFFICIAL").await;
    sqlx::query("UPDATE manifests SET signature = $1 WHERE transfer_id = $2")
        .bind(Signer::generate().sign("x"))
        .bind(&e)
        .execute(&db)
        .await
        .unwrap();
    let out = fetch(&e_link, "e.out").await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("\nsealpost: error: sender_signature_invalid: "), "{}", stderr(&out));
    db.close().await;
    for out in ["a.out", "b.out", "c.out", "d.out", "e.out"] {
        assert!(!work.path().join(out).exists(), "{out} was written");
    }
    server.stop().await;
}
