//! Webhooks against a receiver that verifies each delivery with the Standard Webhooks reference
//! library (`standardwebhooks` from PyPI, see `common::notify`): registered by an administrator
//! with the CLI, signed, retried through the outbox, carrying no link token, and removable.

use std::time::Duration;

use serde_json::json;

use crate::common::notify::Receiver;
use crate::common::{TestServer, assert_exit, code, encrypt, link_token, output_text, parties, sealpost_cli, values};

async fn gateway() -> TestServer {
    TestServer::start_with(|c| {
        c.notification_interval = Duration::from_millis(100);
        c.notification_retry_base = Duration::from_millis(200);
        c.notification_retry_max = Duration::from_millis(800);
    })
    .await
}

#[tokio::test]
async fn deliveries_are_signed_retried_and_carry_no_link() {
    let receiver = Receiver::start(1);
    let server = gateway().await;
    let (bob, alice, _identity) = parties(&server).await;

    // Only an administrator registers endpoints, and only at an https:// (or loopback) URL.
    let (status, answer) =
        server.post(&bob, "/api/v1/webhooks", json!({"org": "hmpps", "url": receiver.url.clone()})).await;
    assert_eq!((status, code(&answer)), (403, "forbidden"), "{answer}");
    let (status, answer) =
        server.post(&server.admin, "/api/v1/webhooks", json!({"org": "hmpps", "url": "http://cases.example/x"})).await;
    assert_eq!((status, code(&answer)), (400, "bad_request"), "{answer}");
    let (status, answer) =
        server.post(&server.admin, "/api/v1/webhooks", json!({"org": "nobody", "url": receiver.url.clone()})).await;
    assert_eq!((status, code(&answer)), (404, "not_found"), "{answer}");

    let out = sealpost_cli(&server, &server.admin, &["admin", "webhook", "add", "hmpps", &receiver.url]).await;
    assert_exit(&out, 0);
    let (secret, note) = output_text(&out);
    let secret = secret.trim();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    assert!(note.contains("shown this once"), "{note}");
    receiver.set_secret(secret);
    let out = sealpost_cli(&server, &server.admin, &["admin", "webhook", "list"]).await;
    assert_exit(&out, 0);
    let (list, _) = output_text(&out);
    assert!(list.contains("hmpps") && list.contains(&receiver.url) && !list.contains(secret), "{list}");
    let pool = server.database().await;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhooks").fetch_one(&pool).await.unwrap();
    let secret_bytes = &secret["whsec_".len()..];
    assert!(!String::from_utf8_lossy(&stored).contains(secret_bytes), "the secret is kept sealed");

    let alice_key = {
        let (status, keys) = server.get(&alice, "/api/v1/keys").await;
        assert_eq!(status, 200, "{keys}");
        keys["keys"][0]["recipient"].as_str().unwrap().to_owned()
    };
    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&alice_key], b"case notes")).await;
    assert_eq!(status, 201, "{sent}");
    let transfer = sent["id"].as_str().unwrap();
    let link = sent["links"][0]["url"].as_str().unwrap();

    let delivery = receiver.wait_for("transfer.waiting").await;
    let payload = &delivery["payload"];
    assert_eq!(payload["data"]["transfer"], transfer);
    assert_eq!(payload["data"]["sender"], "acme/bob");
    assert_eq!(payload["data"]["recipient"], "hmpps/alice");
    assert_eq!(payload["data"]["classification"], "OFFICIAL");
    assert!(payload["timestamp"].is_string());
    let text = payload.to_string();
    assert!(!text.contains(link_token(link)) && !text.contains("case notes"), "{text}");
    // The first verified delivery was answered 500 and retried with the same webhook-id.
    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r["verified"] == true), "every delivery verifies: {requests:?}");
    let tries: Vec<_> = requests.iter().filter(|r| r["id"] == delivery["id"]).map(|r| r["status"].clone()).collect();
    assert_eq!(tries.first(), Some(&json!(500)), "{requests:?}");
    assert_eq!(tries.last(), Some(&json!(204)), "{requests:?}");

    // Every delivery is an audit event naming the organisation, the kind and the channel.
    let hmpps: String = sqlx::query_scalar("SELECT id FROM orgs WHERE name = 'hmpps'").fetch_one(&pool).await.unwrap();
    let mut sent_events = Vec::new();
    for _ in 0..100 {
        sent_events = server.entries("notification.sent").await;
        if sent_events.iter().any(|e| e.contains("kind transfer.waiting")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waiting: Vec<String> = sent_events.into_iter().filter(|e| e.contains("\nkind transfer.waiting\n")).collect();
    assert_eq!(values(&waiting, "subject"), vec![hmpps.clone()], "{waiting:?}");
    assert_eq!(values(&waiting, "channel"), vec!["webhook"]);

    // Collected: hmpps (the recipient's organisation) hears of that too.
    let (status, _) = server.redeem(&alice, link).await;
    assert_eq!(status, 200);
    let collected = receiver.wait_for("transfer.collected").await;
    assert_eq!(collected["payload"]["data"]["recipient"], "hmpps/alice");

    // Removed: nothing more is delivered there.
    let id = {
        let (status, list) = server.get(&server.admin, "/api/v1/webhooks").await;
        assert_eq!(status, 200, "{list}");
        list["webhooks"][0]["id"].as_str().unwrap().to_owned()
    };
    let out = sealpost_cli(&server, &server.admin, &["admin", "webhook", "remove", &id]).await;
    assert_exit(&out, 0);
    let (status, list) = server.get(&server.admin, "/api/v1/webhooks").await;
    assert_eq!((status, list["webhooks"].as_array().unwrap().len()), (200, 0));
    let (status, answer) = server.delete(&server.admin, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!((status, code(&answer)), (404, "not_found"), "{answer}");
    assert_eq!(server.entries("webhook.added").await.len(), 1);
    assert_eq!(server.entries("webhook.removed").await.len(), 1);
    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&alice_key], b"more")).await;
    assert_eq!(status, 201, "{sent}");
    let queued: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE channel = 'webhook'").fetch_one(&pool).await.unwrap();
    assert_eq!(queued, 0, "no endpoint, no delivery");
    server.stop().await;
}
