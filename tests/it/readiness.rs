//! Liveness and readiness (`/healthz`, `/readyz`), and where the gateway finds its signing key.

use serde_json::json;

use crate::common::{TestServer, status_json};

/// `GET path` without a token: status, `Retry-After` if any, JSON body.
async fn probe(server: &TestServer, path: &str) -> (u16, Option<String>, serde_json::Value) {
    let r = server.http().get(format!("{}{path}", server.url)).send().await.expect("send");
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    let (status, body) = status_json(r).await;
    (status, retry_after, body)
}

#[tokio::test]
async fn a_gateway_on_the_defaults_is_ready_and_says_so_check_by_check() {
    let server = TestServer::start().await;
    assert_eq!(
        probe(&server, "/readyz").await,
        (
            200,
            None,
            json!({"ready": true, "checks": {"database": "ok", "blobs": "ok", "log": "ok"}, "sequencer": true})
        )
    );
    assert_eq!(probe(&server, "/healthz").await, (200, None, json!({"status": "ok"})));
    server.stop().await;
}

#[tokio::test]
async fn a_missing_blob_directory_makes_the_gateway_not_ready_yet_still_alive() {
    let server = TestServer::start().await;
    let blobs = server.data_dir.join("blobs");
    let aside = server.data_dir.join("blobs.aside");
    std::fs::rename(&blobs, &aside).expect("move the blobs away");
    assert_eq!(
        probe(&server, "/readyz").await,
        (
            503,
            Some("5".to_owned()),
            json!({"ready": false, "checks": {"database": "ok", "blobs": "the blob store does not answer", "log": "ok"}, "sequencer": true})
        )
    );
    assert_eq!(probe(&server, "/healthz").await.0, 200, "liveness does not depend on the blob store");
    std::fs::rename(&aside, &blobs).expect("put them back");
    assert_eq!(probe(&server, "/readyz").await.0, 200);
    server.stop().await;
}

#[tokio::test]
async fn gateways_given_one_signing_key_file_sign_their_logs_with_it() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let key = secrets.path().join("gateway.key");
    let shared = |c: &mut sealpost::config::Config| {
        c.signing_key = Some(key.clone());
        c.log_origin = Some("sealpost.example/log".to_owned());
    };
    let first = TestServer::start_with(shared).await;
    assert!(key.is_file(), "the first start writes the key where it was told");
    assert!(!first.data_dir.join("gateway.key").exists(), "and not in the data directory");
    let second = TestServer::start_with(shared).await;
    let log_key = |server: &TestServer| {
        let url = format!("{}/log/key", server.url);
        let http = server.http().clone();
        async move { http.get(url).send().await.expect("send").text().await.expect("text") }
    };
    let (a, b) = (log_key(&first).await, log_key(&second).await);
    assert!(a.starts_with("sealpost.example/log+"), "{a}");
    assert_eq!(a, b);
    first.stop().await;
    second.stop().await;
}
