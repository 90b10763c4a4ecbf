//! Start-up, accounts, tokens and the key directory, over HTTP.

use std::os::unix::fs::PermissionsExt as _;

use crate::common::{self, TestServer, code, keypair};
use serde_json::json;

#[tokio::test]
async fn first_start_writes_a_private_admin_token_and_signing_key_and_is_healthy() {
    let server = TestServer::start().await;
    for file in ["admin.token", "gateway.key"] {
        let mode = std::fs::metadata(server.data_dir.join(file)).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    assert!(server.admin.starts_with("sp_"));
    assert_eq!(server.startup.admin_token.as_ref().map(|(path, _)| path), Some(&server.data_dir.join("admin.token")));
    let r = server.http().get(format!("{}/healthz", server.url)).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let (status, me) = server.get(&server.admin, "/api/v1/whoami").await;
    assert_eq!((status, me["user"].as_str(), me["role"].as_str()), (200, Some("sealpost/admin"), Some("admin")));
    server.stop().await;
}

#[tokio::test]
async fn the_contract_is_served_without_a_token_exactly_as_committed() {
    let server = TestServer::start().await;
    let r = server.http().get(format!("{}/api/v1/openapi.json", server.url)).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served = r.text().await.expect("body");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).expect("read");
    assert!(served == committed, "the served contract differs from docs/openapi.json");
    server.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_unauthenticated() {
    let server = TestServer::start().await;
    let r = server.http().get(format!("{}/api/v1/whoami", server.url)).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let (status, body) = server.get("sp_not-a-token", "/api/v1/whoami").await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    server.stop().await;
}

#[tokio::test]
async fn admins_make_orgs_and_users_with_clear_errors_for_mistakes() {
    let server = TestServer::start().await;
    server.org("acme", "contractor").await;
    let (status, body) = server.post(&server.admin, "/api/v1/orgs", json!({"name": "acme", "kind": "agency"})).await;
    assert_eq!((status, code(&body)), (409, "already_exists"));
    let (status, body) = server.post(&server.admin, "/api/v1/orgs", json!({"name": "bank", "kind": "bank"})).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    assert!(body["error"]["message"].as_str().unwrap().contains("contractor"));

    let token = server.user("acme/bob", "sender").await;
    assert!(token.starts_with("sp_"));
    let (status, body) =
        server.post(&server.admin, "/api/v1/users", json!({"user": "acme/bob", "role": "sender"})).await;
    assert_eq!((status, code(&body)), (409, "already_exists"));
    let (status, body) =
        server.post(&server.admin, "/api/v1/users", json!({"user": "nowhere/x", "role": "sender"})).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = server.post(&server.admin, "/api/v1/users", json!({"user": "acme/eve", "role": "root"})).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    let (status, body) = server.post(&server.admin, "/api/v1/users", "not json".into()).await;
    assert_eq!((status, code(&body)), (400, "bad_request"));

    // Only admins administer.
    let (status, body) = server.post(&token, "/api/v1/orgs", json!({"name": "x", "kind": "agency"})).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, users) = server.get(&server.admin, "/api/v1/users").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = users["users"].as_array().unwrap().iter().map(|u| u["user"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme/bob", "sealpost/admin"]);
    server.stop().await;
}

#[tokio::test]
async fn revoked_and_expired_tokens_stop_working() {
    let server = TestServer::start().await;
    server.org("acme", "contractor").await;
    let first = server.user("acme/bob", "sender").await;
    let (status, second) = server.post(&server.admin, "/api/v1/tokens", json!({"user": "acme/bob"})).await;
    assert_eq!(status, 201);
    let second = second["token"].as_str().unwrap().to_owned();
    let (_, tokens) = server.get(&server.admin, "/api/v1/tokens?user=acme/bob").await;
    let ids: Vec<String> =
        tokens["tokens"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2);
    assert!(!tokens.to_string().contains(&first), "token listings never show secrets");

    let (status, _) = server.delete(&server.admin, "/api/v1/users/acme/bob/tokens").await;
    assert_eq!(status, 200);
    assert_eq!(server.get(&first, "/api/v1/whoami").await.0, 401);
    assert_eq!(server.get(&second, "/api/v1/whoami").await.0, 401);

    let (status, short) =
        server.post(&server.admin, "/api/v1/tokens", json!({"user": "acme/bob", "lifetime": "1s"})).await;
    assert_eq!(status, 201);
    let short = short["token"].as_str().unwrap().to_owned();
    assert_eq!(server.get(&short, "/api/v1/whoami").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(server.get(&short, "/api/v1/whoami").await.0, 401);

    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "token.revoked").count(), 2);
    server.stop().await;
}

#[tokio::test]
async fn recipients_register_their_own_keys_and_anyone_signed_in_can_look_them_up() {
    let server = TestServer::start().await;
    let (bob, alice, _) = common::parties(&server).await;
    let (status, keys) = server.get(&bob, "/api/v1/keys/hmpps/alice").await;
    assert_eq!(status, 200);
    let key = &keys["keys"][0];
    let recipient = key["recipient"].as_str().unwrap();
    assert!(recipient.starts_with("age1"));
    assert_eq!(key["fingerprint"].as_str().unwrap(), sealpost::directory::fingerprint(recipient));
    assert!(key["added_at"].is_string());

    // Adding the same key twice, a private key, or garbage: clear errors.
    let (status, body) = server.post(&alice, "/api/v1/keys", json!({"recipient": recipient})).await;
    assert_eq!((status, code(&body)), (409, "already_exists"));
    let (id, _) = keypair();
    let secret = common::identity_file(&id);
    let (status, body) = server.post(&alice, "/api/v1/keys", json!({"recipient": secret.trim()})).await;
    assert_eq!((status, code(&body)), (422, "private_key_refused"));
    let (status, body) = server.post(&alice, "/api/v1/keys", json!({"recipient": "hello"})).await;
    assert_eq!((status, code(&body)), (422, "invalid_key"));
    let (status, body) = server
        .post(
            &alice,
            "/api/v1/keys",
            json!({"recipient": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN"}),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "invalid_key"), "ssh keys are off by default");

    // Only the owner (or an admin) removes a key.
    let fp = key["fingerprint"].as_str().unwrap();
    let (status, _) = server.delete(&bob, &format!("/api/v1/keys/hmpps/alice/{fp}")).await;
    assert_eq!(status, 403);
    let (status, _) = server.delete(&alice, &format!("/api/v1/keys/hmpps/alice/{fp}")).await;
    assert_eq!(status, 200);
    let (_, keys) = server.get(&bob, "/api/v1/keys/hmpps/alice").await;
    assert_eq!(keys["keys"], json!([]));
    let (status, body) = server.get(&bob, "/api/v1/keys/hmpps/nobody").await;
    assert_eq!((status, code(&body)), (404, "not_found"));

    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "key.added").count(), 1);
    assert_eq!(events.iter().filter(|e| *e == "key.removed").count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_audit_trail_is_for_compliance_and_admins_and_filters_by_party() {
    let server = TestServer::start().await;
    let (bob, alice, _) = common::parties(&server).await;
    server.org("ico", "compliance").await;
    let officer = server.user("ico/carol", "compliance").await;
    assert_eq!(server.get(&bob, "/api/v1/audit").await.0, 403);
    assert_eq!(server.get(&alice, "/api/v1/audit").await.0, 403);
    let (status, body) = server.get(&officer, "/api/v1/audit?party=hmpps/alice").await;
    assert_eq!(status, 200);
    let events: Vec<&str> = body["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["user.created", "key.added"]);
    for e in body["events"].as_array().unwrap() {
        let entry = e["entry"].as_str().unwrap();
        assert!(entry.starts_with("sealpost.audit/v1\n"));
        assert!(!entry.contains("alice"), "entries name parties by id, not by name: {entry}");
    }
    let (status, body) = server.get(&officer, "/api/v1/audit?since=yesterday").await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    server.stop().await;
}

#[tokio::test]
async fn the_last_administrator_cannot_revoke_themself_into_a_lock_out() {
    let server = TestServer::start().await;
    let (_, me) = server.get(&server.admin, "/api/v1/whoami").await;
    let me = me["user"].as_str().unwrap().to_owned();
    let (_, tokens) = server.get(&server.admin, &format!("/api/v1/tokens?user={me}")).await;
    let mine = tokens["tokens"][0]["id"].as_str().unwrap().to_owned();

    // Alone: neither my token nor all of my tokens can go, and nothing changed.
    for path in [format!("/api/v1/tokens/{mine}"), format!("/api/v1/users/{me}/tokens")] {
        let (status, body) = server.delete(&server.admin, &path).await;
        assert_eq!((status, code(&body)), (409, "last_administrator"), "{path}: {body}");
        assert!(body.to_string().contains("make another administrator"), "{body}");
    }
    assert_eq!(server.get(&server.admin, "/api/v1/whoami").await.0, 200);
    assert!(!server.events().await.iter().any(|e| e == "token.revoked"));

    // With a second administrator, the first may go; then the second is the last.
    let (org, _) = me.split_once('/').unwrap();
    let second = server.user(&format!("{org}/second"), "admin").await;
    let (status, _) = server.delete(&server.admin, &format!("/api/v1/users/{me}/tokens")).await;
    assert_eq!(status, 200);
    assert_eq!(server.get(&server.admin, "/api/v1/whoami").await.0, 401);
    let (status, body) = server.delete(&second, &format!("/api/v1/users/{org}/second/tokens")).await;
    assert_eq!((status, code(&body)), (409, "last_administrator"), "{body}");
    assert_eq!(server.get(&second, "/api/v1/whoami").await.0, 200);
    server.stop().await;
}
