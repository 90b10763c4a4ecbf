//! Cedar policies: the shipped tests as data, and every rule over HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, TestServer, code, encrypt, noise};
use sealpost::policy::testing;
use sealpost::policy::{Policies, PolicySource};
use serde_json::{Value, json};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

#[test]
fn every_shipped_policy_test_passes_and_every_policy_is_shown_permitting_and_denying() {
    let policies = Policies::load(&PolicySource::Dir(shipped())).expect("shipped policies are valid");
    let results = testing::run_dir(&policies, &shipped().join("tests")).expect("test files parse");
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{}: {} -> {:?}", r.file, r.case.name, r.decision))
        .collect();
    assert_eq!(failed, Vec::<String>::new());
    assert_eq!(testing::uncovered(&policies, &results), Vec::<(String, &str)>::new());
}

#[test]
fn the_embedded_policies_are_the_shipped_directory() {
    let embedded = Policies::load(&PolicySource::Embedded).expect("valid");
    let dir = Policies::load(&PolicySource::Dir(shipped())).expect("valid");
    assert_eq!(embedded.ids(), dir.ids());
}

/// A contractor, an agency and a compliance organisation, without a route.
async fn world(server: &TestServer) -> (String, String, String, String) {
    server.org("acme", "contractor").await;
    server.org("hmpps", "agency").await;
    server.org("ico", "compliance").await;
    let bob = server.user("acme/bob", "sender").await;
    let alice = server.user("hmpps/alice", "recipient").await;
    let olga = server.user("ico/olga", "compliance").await;
    let (_, r) = common::keypair();
    server.add_key(&alice, &r).await;
    (bob, alice, olga, r)
}

#[tokio::test]
async fn uploads_need_a_route_and_stay_within_expiry_and_classification() {
    let server = TestServer::start().await;
    let (bob, _, _, r) = world(&server).await;
    let file = encrypt(&[&r], &noise(2000));

    let (status, body) = server.upload(&bob, &["hmpps/alice"], "", file.clone()).await;
    assert_eq!((status, code(&body)), (403, "policy_denied"), "{body}");
    assert_eq!(body["error"]["policies"], json!(["routes"]));
    assert!(body["error"]["message"].as_str().unwrap().contains("sealpost admin route add"));

    server.route("acme", "hmpps").await;
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "", file.clone()).await;
    assert_eq!(status, 201, "{body}");

    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&expires=2000h", file.clone()).await;
    assert_eq!((status, code(&body), &body["error"]["policies"]), (403, "policy_denied", &json!(["max-expiry"])));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&classification=SECRET", file.clone()).await;
    assert_eq!((status, &body["error"]["policies"]), (403, &json!(["classification-ceiling", "signed-sensitive"])));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&classification=BANANA", file.clone()).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));

    let (status, routes) = server.get(&server.admin, "/api/v1/routes").await;
    assert_eq!(status, 200);
    assert_eq!(routes["routes"][0]["from"], "acme");
    let (status, _) = server.delete(&server.admin, "/api/v1/routes/acme/hmpps").await;
    assert_eq!(status, 200);
    let (status, _) = server.upload(&bob, &["hmpps/alice"], "", file).await;
    assert_eq!(status, 403);

    let events = server.events().await;
    assert!(events.iter().any(|e| e == "route.added") && events.iter().any(|e| e == "route.removed"));
    let (_, audit) = server.get(&server.admin, "/api/v1/audit?limit=1000").await;
    let refused: Vec<&Value> =
        audit["events"].as_array().unwrap().iter().filter(|e| e["event"] == "upload.refused").collect();
    assert!(refused[0]["entry"].as_str().unwrap().contains("policies routes"), "{}", refused[0]["entry"]);
    server.stop().await;
}

#[tokio::test]
async fn official_sensitive_transfers_wait_for_a_compliance_officer_who_is_not_the_sender() {
    let server = TestServer::start().await;
    let (bob, alice, olga, r) = world(&server).await;
    server.route("acme", "hmpps").await;
    let ciphertext = encrypt(&[&r], &noise(3000));
    let signer = server.signing_key(&bob).await;
    let (status, body) =
        server.upload_signed(&bob, &signer, &["hmpps/alice"], "OFFICIAL-SENSITIVE", 259_200, ciphertext.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "awaiting_approval");
    assert_eq!(body["policies"], json!(["four-eyes-hold"]));
    let id = body["id"].as_str().unwrap().to_owned();
    let link = body["links"][0]["url"].as_str().unwrap().to_owned();

    let (status, got) = server.redeem(&alice, &link).await;
    let answer: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!((status, code(&answer)), (409, "awaiting_approval"));
    let (_, inbox) = server.get(&alice, "/api/v1/inbox").await;
    assert_eq!(inbox["transfers"][0]["state"], "awaiting_approval");

    // Neither the sender nor a recipient may approve.
    let (status, body) = server.post(&bob, &format!("/api/v1/transfers/{id}/approve"), json!({})).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = server.post(&alice, &format!("/api/v1/transfers/{id}/approve"), json!({})).await;
    assert_eq!(status, 403);

    let (status, body) = server.post(&olga, &format!("/api/v1/transfers/{id}/approve"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["status"].as_str(), body["decided_by"].as_str()), (Some("available"), Some("ico/olga")));
    let (status, body) = server.post(&olga, &format!("/api/v1/transfers/{id}/approve"), json!({})).await;
    assert_eq!((status, code(&body)), (409, "not_awaiting_approval"));

    let (status, got) = server.redeem(&alice, &link).await;
    assert_eq!((status, got), (200, ciphertext));
    let (_, audit) = server.get(&olga, &format!("/api/v1/audit?transfer={id}")).await;
    let approved = audit["events"].as_array().unwrap().iter().find(|e| e["event"] == "transfer.approved").unwrap();
    assert_eq!(approved["actor"], "ico/olga");
    server.stop().await;
}

#[tokio::test]
async fn a_rejected_transfer_loses_its_links_and_its_ciphertext() {
    let server = TestServer::start().await;
    let (bob, alice, olga, r) = world(&server).await;
    server.route("acme", "hmpps").await;
    let signer = server.signing_key(&bob).await;
    let file = encrypt(&[&r], &noise(100));
    let (status, body) = server.upload_signed(&bob, &signer, &["hmpps/alice"], "OFFICIAL-SENSITIVE", 3600, file).await;
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let link = body["links"][0]["url"].as_str().unwrap().to_owned();
    let (status, body) = server.post(&olga, &format!("/api/v1/transfers/{id}/reject"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["status"].as_str(), body["purged"].as_bool()), (Some("rejected"), Some(true)));
    assert_eq!(server.stored_files(), (0, 0));
    let (status, got) = server.redeem(&alice, &link).await;
    let answer: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!((status, code(&answer)), (410, "link_revoked"));
    assert!(server.events().await.iter().any(|e| e == "transfer.rejected"));
    server.stop().await;
}

#[tokio::test]
async fn roles_are_decided_by_policy_for_recall_and_the_audit_trail() {
    let server = TestServer::start().await;
    let (bob, alice, olga, r) = world(&server).await;
    server.route("acme", "hmpps").await;
    let (_, body) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&r], &noise(100))).await;
    let id = body["id"].as_str().unwrap();
    let (status, body) = server.get(&bob, "/api/v1/audit").await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    assert_eq!(body["error"]["policies"], json!([]));
    assert_eq!(server.get(&olga, "/api/v1/audit").await.0, 200);
    let (status, body) = server.delete(&alice, &format!("/api/v1/transfers/{id}")).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "the recipient is involved, so it hears why");
    let (status, _) = server.delete(&bob, &format!("/api/v1/transfers/{id}")).await;
    assert_eq!(status, 200);
    server.stop().await;
}

fn write_policies(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(shipped()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(dir.join("local.cedar"), extra).unwrap();
}

#[tokio::test]
async fn a_local_lockdown_policy_denies_every_upload_and_reloads_are_validated_and_recorded() {
    let policies = tempfile::tempdir().unwrap();
    write_policies(policies.path(), "");
    let dir = policies.path().to_owned();
    let server = TestServer::start_with(move |c| c.policies = Some(dir)).await;
    let (bob, _, _, r) = world(&server).await;
    server.route("acme", "hmpps").await;
    let file = encrypt(&[&r], &noise(100));
    assert_eq!(server.upload(&bob, &["hmpps/alice"], "", file.clone()).await.0, 201);

    // An invalid set is refused and the old one stays.
    std::fs::write(policies.path().join("local.cedar"), "@id(\"broken\")\npermit (principal, action, resource) when {")
        .unwrap();
    let (status, body) = server.post(&server.admin, "/api/v1/policy/reload", json!({})).await;
    assert_eq!((status, code(&body)), (422, "invalid_policy"));
    assert!(body["error"]["message"].as_str().unwrap().contains("local.cedar:2"), "{body}");
    assert_eq!(server.upload(&bob, &["hmpps/alice"], "", file.clone()).await.0, 201);

    std::fs::write(policies.path().join("local.cedar"), "@id(\"lockdown\")\nforbid (principal, action, resource);\n")
        .unwrap();
    let (status, body) = server.post(&server.admin, "/api/v1/policy/reload", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let digest = body["digest"].as_str().unwrap().to_owned();
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "", file).await;
    assert_eq!((status, code(&body)), (403, "policy_denied"));
    assert!(body["error"]["policies"].as_array().unwrap().contains(&json!("lockdown")), "{body}");
    // The lockdown forbids everything, reading the audit trail too: lift it, then look.
    let (status, _) = server.get(&server.admin, "/api/v1/audit").await;
    assert_eq!(status, 403);
    std::fs::write(policies.path().join("local.cedar"), "").unwrap();
    assert_eq!(server.post(&server.admin, "/api/v1/policy/reload", json!({})).await.0, 200);
    let (_, audit) = server.get(&server.admin, "/api/v1/audit?limit=1000").await;
    let changed = audit["events"].as_array().unwrap().iter().find(|e| e["event"] == "policy.changed").unwrap();
    assert!(changed["entry"].as_str().unwrap().contains(&format!("digest {digest}")));
    server.stop().await;
}

#[test]
fn an_invalid_policy_stops_serve_and_policy_check_with_exit_3_naming_the_file() {
    let policies = tempfile::tempdir().unwrap();
    write_policies(
        policies.path(),
        "@id(\"bad\")\npermit (principal, action == Sealpost::Action::\"upload\", resource)\nwhen { principal.shoe_size > 3 };\n",
    );
    let data = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_sealpost");
    let serve = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--policies"])
        .arg(policies.path())
        .arg("--data-dir")
        .arg(data.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(stderr.contains("local.cedar:3"), "{stderr}");
    assert!(!data.path().join("d").exists(), "nothing else is touched");

    let check = Command::new(bin).args(["policy", "check"]).arg(policies.path()).output().unwrap();
    assert_eq!(check.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&check.stderr).contains("local.cedar:3"));
    let ok = Command::new(bin).args(["policy", "check"]).arg(shipped()).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let test = Command::new(bin).args(["policy", "test"]).arg(shipped()).output().unwrap();
    assert_eq!(test.status.code(), Some(0), "{}", String::from_utf8_lossy(&test.stdout));
}

#[test]
fn policy_explain_prints_the_decision_and_the_deciding_policies() {
    let bin = env!("CARGO_BIN_EXE_sealpost");
    let out = Command::new(bin).args(["policy", "explain"]).arg(shipped().join("tests/upload.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2000 hours is longer than fourteen days and denied: deny by max-expiry"), "{stdout}");
}
