//! `sealpost admin migrate`: a SQLite deployment moved into a real PostgreSQL and a real
//! three-node Garage cluster, then served from there by a real gateway with the same signing key.

use crate::common::deployment::{Served, admin_token, printed, sealpost};
use crate::common::garage::GarageCluster;
use crate::common::postgres::PgCluster;
use crate::common::{assert_exit, decrypt, encrypt, noise};

/// The variables that reach the Garage bucket (the target store is named on the command line).
fn aws_env(garage: &GarageCluster) -> Vec<(String, String)> {
    garage.gateway_env().into_iter().filter(|(k, _)| k.starts_with("AWS_")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_deployment_moves_into_postgres_and_garage_with_its_links_log_and_keys() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let state = work.path().join("verifier-state");

    // Before: the default deployment, with a transfer collected, one waiting, a resumable upload
    // completed (its sealed answer) and one half sent, and a log key rotation under way (a
    // sealed log key).
    let gateway = Served::start(&data, &[], &[]);
    let admin = admin_token(&data);
    let (bob, alice, identity) = gateway.parties(&admin).await;
    let recipient = identity.to_public().to_string();
    let (collected_text, waiting_text) = (b"collected before the move".to_vec(), noise(300_000));
    let (status, collected) = gateway.upload(&bob, encrypt(&[&recipient], &collected_text)).await;
    assert_eq!(status, 201, "{collected}");
    let collected = collected["links"][0]["url"].as_str().expect("link").to_owned();
    let (status, waiting) = gateway.upload(&bob, encrypt(&[&recipient], &waiting_text)).await;
    assert_eq!(status, 201, "{waiting}");
    let waiting = waiting["links"][0]["url"].as_str().expect("link").to_owned();
    let (status, bytes) = gateway.redeem(&alice, &collected).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&identity, &bytes), collected_text);

    let completed_bundle = encrypt(&[&recipient], &noise(5_000));
    let completed = gateway.create_upload(&bob, completed_bundle.len()).await;
    assert_eq!(gateway.patch(&bob, &completed, 0, &completed_bundle).await, 204);
    let half_text = noise(100_000);
    let half_bundle = encrypt(&[&recipient], &half_text);
    let half = gateway.create_upload(&bob, half_bundle.len()).await;
    let cut = half_bundle.len() / 2;
    assert_eq!(gateway.patch(&bob, &half, 0, &half_bundle[..cut]).await, 204);

    let key = gateway.log_key().await;
    let (status, body) = gateway.post(&admin, "/api/v1/log/keys/rotate", serde_json::json!({})).await;
    assert_eq!(status, 200, "{body}");
    let rotated = gateway.log_key().await;
    assert_ne!(rotated, key);
    gateway.settle(&admin).await;
    assert_exit(&gateway.log_verify(&key, &state).await, 0);

    // A migration is a move: refused while the gateway runs.
    let target = pg.new_database("migrate_target");
    let env = aws_env(&garage);
    let data_s = data.to_string_lossy().into_owned();
    let migrate = ["admin", "migrate", "--data-dir", &data_s, "--to-database-url", &target];
    let migrate: Vec<&str> = migrate.into_iter().chain(["--to-blob-store", garage.blob_store()]).collect();
    let out = sealpost(&migrate, &env).await;
    assert_exit(&out, 1);
    assert!(
        printed(&out).contains(&format!("sealpost: error: a gateway is running on `{data_s}`")),
        "{}",
        printed(&out)
    );
    assert!(printed(&out).contains("a migration is a move, not a sync"), "{}", printed(&out));
    gateway.stop();

    let out = sealpost(&migrate, &env).await;
    assert_exit(&out, 0);
    let summary = printed(&out);
    assert!(summary.contains("copied into s3://"), "{summary}");
    assert!(summary.contains("uploads 1 unfinished"), "{summary}");

    // After: a gateway on PostgreSQL and Garage, with the data directory's signing key.
    let blob_store = garage.blob_store().to_owned();
    let moved = Served::start(&data, &["--database-url", &target, "--blob-store", &blob_store], &env);
    assert_eq!(moved.log_key().await, rotated, "the log keeps its origin and its keys");
    assert_exit(&moved.log_verify(&key, &state).await, 0);
    let (status, bytes) = moved.redeem(&alice, &waiting).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(decrypt(&identity, &bytes), waiting_text);
    assert_eq!(moved.redeem(&alice, &collected).await.0, 410, "a collected link stays collected");
    let (status, answer) = moved.upload_state(&bob, &completed).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["links"][0]["url"].is_string(), "the sealed answer opens with the same key: {answer}");
    assert_eq!(moved.patch(&bob, &half, cut, &half_bundle[cut..]).await, 204, "the half-sent upload goes on");

    // New rows get new keys (the sequences moved past the copied ones), and the log grows on.
    let (status, body) = moved.upload(&bob, encrypt(&[&recipient], b"after the move")).await;
    assert_eq!(status, 201, "{body}");
    moved.settle(&admin).await;
    assert_exit(&moved.log_verify(&key, &state).await, 0);
    moved.stop();

    // A second migration into the now busy database is refused, and changes nothing.
    let out = sealpost(&migrate, &env).await;
    assert_exit(&out, 3);
    assert!(printed(&out).contains("sealpost: error: the target database is not empty: table `"), "{}", printed(&out));
    let moved = Served::start(&data, &["--database-url", &target, "--blob-store", &blob_store], &env);
    assert_exit(&moved.log_verify(&key, &state).await, 0);
    moved.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_refuses_a_signing_key_that_does_not_open_the_log() {
    let Some(pg) = PgCluster::shared() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    Served::start(&data, &[], &[]).stop();
    // Another deployment's key.
    let elsewhere = work.path().join("elsewhere");
    Served::start(&elsewhere, &[], &[]).stop();
    let other = elsewhere.join("gateway.key");

    let target = pg.new_database("migrate_other_key");
    let (data_s, other_s) = (data.to_string_lossy().into_owned(), other.to_string_lossy().into_owned());
    let out = sealpost(
        &["admin", "migrate", "--data-dir", &data_s, "--signing-key", &other_s, "--to-database-url", &target],
        &[],
    )
    .await;
    assert_exit(&out, 3);
    assert!(
        printed(&out).contains(&format!(
            "sealpost: error: the signing key `{other_s}` does not open this deployment's log\n\
             sealpost: hint: give the deployment's own signing key with --signing-key"
        )),
        "{}",
        printed(&out)
    );
    let tables =
        pg.psql("migrate_other_key", "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'");
    assert_eq!(String::from_utf8_lossy(&tables.stdout).trim(), "0", "the target was not touched");
}
