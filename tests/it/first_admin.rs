//! The first administrator's life cycle (issue 15, item 8): the bootstrap token is exchanged
//! once for a named administrator and leaves the disk, an unclaimed one expires and leaves the
//! disk, and `sealpost admin recover` on the server issues an administrator token, audited.

use std::time::Duration;

use serde_json::json;

use crate::common::deployment::{Served, admin_token, fresh_deployment, printed, sealpost};
use crate::common::{self, TestServer, code};

#[tokio::test]
async fn the_bootstrap_token_is_exchanged_once_for_a_named_administrator_and_leaves_the_disk() {
    let server = TestServer::start().await;
    let bootstrap = server.admin.clone();
    let file = server.data_dir.join("admin.token");
    assert!(file.exists());
    let (status, tokens) = server.get(&bootstrap, "/api/v1/tokens").await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["tokens"][0]["kind"], "bootstrap", "{tokens}");
    assert!(tokens["tokens"][0]["expires_at"].is_string(), "the bootstrap token expires: {tokens}");

    // A claim that fails loses nothing: the bootstrap token still works and its file stays.
    let (status, body) = server.post(&bootstrap, "/api/v1/bootstrap/claim", json!({"user": "sealpost/admin"})).await;
    assert_eq!((status, code(&body)), (409, "already_exists"), "{body}");
    let (status, body) = server.post(&bootstrap, "/api/v1/bootstrap/claim", json!({"user": "nowhere/jane"})).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = server.post(&bootstrap, "/api/v1/bootstrap/claim", json!({"user": "jane"})).await;
    assert_eq!((status, code(&body)), (400, "bad_request"), "{body}");
    assert!(file.exists(), "a failed claim keeps the bootstrap token");

    // Another administrator's token is not the bootstrap token.
    let ops = server.user("sealpost/ops", "admin").await;
    let (status, body) = server.post(&ops, "/api/v1/bootstrap/claim", json!({"user": "sealpost/jane"})).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");

    let (status, body) = server
        .post(&bootstrap, "/api/v1/bootstrap/claim", json!({"user": "sealpost/jane", "email": "Jane@Example.gov.uk"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"], "sealpost/jane");
    assert_eq!(body["role"], "admin");
    assert!(body["expires_at"].is_null(), "{body}");
    let jane = body["token"].as_str().expect("token").to_owned();
    assert!(!file.exists(), "the gateway removed the exchanged token from its data directory");

    let (status, me) = server.get(&jane, "/api/v1/whoami").await;
    assert_eq!((status, me["user"].as_str(), me["role"].as_str()), (200, Some("sealpost/jane"), Some("admin")));
    let (status, body) = server.get(&bootstrap, "/api/v1/whoami").await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"), "the bootstrap token no longer works");
    let (status, body) = server.post(&bootstrap, "/api/v1/bootstrap/claim", json!({"user": "sealpost/mallory"})).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"), "a second exchange: {body}");

    let (status, users) = server.get(&jane, "/api/v1/users").await;
    assert_eq!(status, 200);
    let jane_row = users["users"].as_array().expect("users").iter().find(|u| u["user"] == "sealpost/jane").cloned();
    assert_eq!(jane_row.expect("listed")["email"], "jane@example.gov.uk");
    let (_, tokens) = server.get(&jane, "/api/v1/tokens?user=sealpost/admin").await;
    assert_eq!(tokens["tokens"][0]["kind"], "bootstrap");
    assert!(tokens["tokens"][0]["revoked_at"].is_string(), "{tokens}");
    let mut server = server;
    server.admin = jane;
    let revoked = server.entries("token.revoked").await;
    assert!(revoked.iter().any(|e| e.contains("\ncode exchanged\n")), "{revoked:?}");
    server.stop().await;
}

#[tokio::test]
async fn sealpost_admin_claim_prints_the_new_token_and_the_file_is_gone() {
    let (_dir, data, storage) = fresh_deployment();
    let more: Vec<&str> = storage.iter().map(String::as_str).collect();
    let served = Served::start(&data, &more, &[]);
    let bootstrap = admin_token(&data);
    let env = |token: &str| {
        vec![("SEALPOST_URL".to_owned(), served.url.clone()), ("SEALPOST_TOKEN".to_owned(), token.to_owned())]
    };

    let out = sealpost(&["admin", "claim", "sealpost/jane", "--email", "jane@example.gov.uk"], &env(&bootstrap)).await;
    assert!(out.status.success(), "{}", printed(&out));
    let jane = String::from_utf8(out.stdout.clone()).expect("utf-8");
    let jane = jane.trim();
    assert!(jane.starts_with("sp_") && !jane.contains('\n'), "the token alone on stdout: {jane:?}");
    assert!(!data.join("admin.token").exists());
    let (status, me) = served.get(jane, "/api/v1/whoami").await;
    assert_eq!((status, me["user"].as_str()), (200, Some("sealpost/jane")));

    let out = sealpost(&["admin", "claim", "sealpost/again"], &env(&bootstrap)).await;
    assert!(!out.status.success());
    assert!(printed(&out).contains("unauthenticated") || printed(&out).contains("token"), "{}", printed(&out));
    served.stop();
}

#[tokio::test(start_paused = true)]
async fn an_unclaimed_bootstrap_token_expires_and_its_file_is_removed() {
    // SQLite answers from its own thread; a task that only yields keeps the runtime busy, so
    // paused time moves only when this test advances it (see the sweeper's test).
    let _awake = tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config =
        sealpost::config::Config { data_dir: dir.path().to_owned(), ..sealpost::config::Config::default() };
    config.bootstrap_token_lifetime = Duration::from_secs(3600);
    if common::postgres_pass() {
        config.database_url = Some(sealpost::config::DatabaseUrl::Postgres(common::database_for(dir.path())));
    }
    let (gateway, startup) =
        sealpost::gateway::Gateway::open(config, "http://127.0.0.1:1".to_owned()).await.expect("opens");
    let (path, expires) = startup.admin_token.expect("first start");
    let started = gateway.clock.now();
    assert_eq!(expires - started, chrono::TimeDelta::hours(1), "{expires} vs {started}");
    let token = sealpost::ids::BearerSecret::from_client(std::fs::read_to_string(&path).expect("file").trim());
    let store = &gateway.store;

    tokio::time::advance(Duration::from_secs(59 * 60)).await;
    assert!(store.authenticate(&token.hash(), gateway.clock.now()).await.expect("store").is_some());
    assert!(!sealpost::gateway::retire_admin_token(store, dir.path(), gateway.clock.now()).await.expect("store"));
    assert!(path.exists(), "a token that still works stays");

    tokio::time::advance(Duration::from_secs(2 * 60)).await;
    assert!(store.authenticate(&token.hash(), gateway.clock.now()).await.expect("store").is_none(), "expired");
    assert!(sealpost::gateway::retire_admin_token(store, dir.path(), gateway.clock.now()).await.expect("store"));
    assert!(!path.exists(), "the expired token left the disk");
}

#[tokio::test]
async fn admin_recover_on_the_server_issues_an_expiring_administrator_token_and_is_logged() {
    let (_dir, data, storage) = fresh_deployment();
    let storage: Vec<&str> = storage.iter().map(String::as_str).collect();
    let served = Served::start(&data, &storage, &[]);
    let bootstrap = admin_token(&data);
    let (_bob, _alice, _identity) = served.parties(&bootstrap).await;
    let data_dir = data.to_str().expect("utf-8");
    let recover = |more: &[&str]| {
        let mut args = vec!["admin", "recover", "--data-dir", data_dir];
        args.extend_from_slice(&storage);
        args.extend_from_slice(more);
        args.iter().map(|a| (*a).to_owned()).collect::<Vec<String>>()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sealpost(&args, &[]).await
    };

    // Without a name it does not guess: it lists the administrators.
    let out = run(recover(&["--reason", "locked out"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(printed(&out).contains("sealpost/admin"), "{}", printed(&out));
    // A sender is not made an administrator.
    let out = run(recover(&["--user", "acme/bob", "--reason", "locked out"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert!(printed(&out).contains("not an administrator"), "{}", printed(&out));
    // Nor without a reason.
    let out = run(recover(&["--user", "sealpost/admin", "--reason", " "])).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));

    let out = run(recover(&[
        "--user",
        "sealpost/ops",
        "--reason",
        "the bootstrap token expired unclaimed",
        "--lifetime",
        "2h",
    ]))
    .await;
    assert!(out.status.success(), "{}", printed(&out));
    let ops = String::from_utf8(out.stdout.clone()).expect("utf-8").trim().to_owned();
    assert!(ops.starts_with("sp_") && !ops.contains('\n'), "the token alone on stdout: {ops:?}");
    let (status, me) = served.get(&ops, "/api/v1/whoami").await;
    assert_eq!((status, me["user"].as_str(), me["role"].as_str()), (200, Some("sealpost/ops"), Some("admin")));
    let (_, tokens) = served.get(&ops, "/api/v1/tokens?user=sealpost/ops").await;
    assert_eq!(tokens["tokens"][0]["kind"], "recovery", "{tokens}");
    let expires = tokens["tokens"][0]["expires_at"].as_str().expect("it expires");
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("time");
    let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(left > chrono::TimeDelta::minutes(110) && left <= chrono::TimeDelta::hours(2), "{left}");

    // The recovery is in the audit trail and, once the gateway's sequencer ran, in the log.
    served.settle(&ops).await;
    let (status, page) = served.get(&ops, "/api/v1/audit?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    let events: Vec<_> =
        page["events"].as_array().expect("events").iter().filter(|e| e["event"] == "admin.recovered").collect();
    assert_eq!(events.len(), 1, "{page}");
    let entry = events[0]["entry"].as_str().expect("entry");
    assert!(entry.contains("\nreason the bootstrap token expired unclaimed\n"), "{entry}");
    assert!(entry.contains("\noperator ") && entry.contains(" on "), "{entry}");
    served.stop();
}
