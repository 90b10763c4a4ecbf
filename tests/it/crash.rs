//! `sealpost admin check` and the crash test: the checker finds each kind of inconsistency made
//! by hand (a lost blob, an orphan blob, an edited log entry, a stale lease) and passes on a
//! sound deployment; and a real `sealpost serve`, killed with SIGKILL at random moments of a
//! mixed workload (one-shot and resumable uploads, redemptions, recalls) many times over, comes
//! back consistent with every upload it answered 201 still there.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;

use crate::common::deployment::{Served, admin_token, fresh_deployment, printed, sealpost};
use crate::common::{self, TestServer, encrypt, link_token, noise, parties};

/// `sealpost admin check` on the deployment in `data_dir` (its database in the pass's place).
async fn admin_check(data_dir: &Path, json: bool) -> std::process::Output {
    let dir = data_dir.to_string_lossy().into_owned();
    let database = common::database_url(data_dir);
    let mut args = vec!["admin", "check", "--data-dir", &dir, "--database-url", &database];
    if json {
        args.push("--json");
    }
    sealpost(&args, &[]).await
}

/// Runs the checker and answers its findings' kinds, asserting the exit code goes with them.
async fn findings(data_dir: &Path) -> Vec<(String, String)> {
    let out = admin_check(data_dir, true).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("JSON: {}", printed(&out)));
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["kind"].as_str().unwrap().to_owned(), f["subject"].as_str().unwrap().to_owned()))
        .collect();
    let code = out.status.code();
    if found.is_empty() {
        assert_eq!(code, Some(0), "consistent is exit 0: {}", printed(&out));
        assert_eq!(report["consistent"], true);
    } else {
        assert_eq!(code, Some(4), "inconsistent is exit 4: {}", printed(&out));
        let text = admin_check(data_dir, false).await;
        let lines = String::from_utf8_lossy(&text.stdout).lines().count();
        assert_eq!(lines, found.len(), "one line per finding: {}", printed(&text));
    }
    found
}

/// Waits until the log's checkpoint covers every audit event.
async fn settle(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = server.events().await.len();
        let note = server.http().get(format!("{}/log/checkpoint", server.url)).send().await.expect("checkpoint");
        let size: usize = note.text().await.expect("text").lines().nth(1).and_then(|l| l.parse().ok()).expect("size");
        if size >= events {
            return;
        }
        assert!(Instant::now() < deadline, "the log stayed at {size} of {events}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sets a file's modification time an hour back (so the checker no longer spares it as young).
fn age(path: &Path) {
    let touch = common::require_tool("touch").expect("touch");
    let out = std::process::Command::new(touch).args(["-d", "2 hours ago"]).arg(path).output().expect("touch");
    assert!(out.status.success());
}

#[tokio::test]
async fn the_checker_passes_a_sound_deployment_and_names_each_inconsistency() {
    let server = TestServer::start().await;
    let (bob, _alice, identity) = parties(&server).await;
    let recipient = identity.to_public().to_string();
    let mut ids = Vec::new();
    for i in 0..3 {
        let (status, body) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], &noise(1000 + i))).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    settle(&server).await;
    let data = server.data_dir.clone();
    let db = server.database().await;
    assert_eq!(findings(&data).await, vec![], "a sound deployment, checked while it runs");

    // A lost blob.
    let blob = data.join("blobs").join(format!("{}.age", ids[0]));
    let kept = std::fs::read(&blob).expect("blob");
    std::fs::remove_file(&blob).expect("lose it");
    assert_eq!(findings(&data).await, vec![("missing_blob".to_owned(), ids[0].clone())]);
    std::fs::write(&blob, &kept).expect("put it back");

    // An orphan blob: young, it may be an upload between its commit and its row; old, it is not.
    let orphan = data.join("blobs").join("0123456789abcdef0123456789abcdef.age");
    std::fs::write(&orphan, b"nobody's").expect("orphan");
    assert_eq!(findings(&data).await, vec![], "a young orphan is spared");
    age(&orphan);
    let orphan_key = "0123456789abcdef0123456789abcdef.age".to_owned();
    assert_eq!(findings(&data).await, vec![("orphan_blob".to_owned(), orphan_key)]);
    std::fs::remove_file(&orphan).expect("remove it");

    // A stale staged file.
    let staged = data.join("tmp").join("left-over.part");
    std::fs::write(&staged, b"half").expect("staged");
    assert_eq!(findings(&data).await, vec![], "a staged file being written is spared");
    age(&staged);
    let found = findings(&data).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "stale_staging");
    std::fs::remove_file(&staged).expect("remove it");

    // An edited log entry (by an intruder who first drops the append-only trigger): the stored
    // tiles no longer match the entries.
    let drop_trigger = if common::postgres_pass() {
        "DROP TRIGGER audit_events_no_update ON audit_events"
    } else {
        "DROP TRIGGER audit_events_no_update"
    };
    sqlx::query(drop_trigger).execute(&db).await.expect("drop the trigger");
    sqlx::query("UPDATE audit_events SET entry = entry || 'edited' WHERE idx = 2").execute(&db).await.expect("edit");
    let found = findings(&data).await;
    assert_eq!(found, vec![("log".to_owned(), "log".to_owned())]);
    sqlx::query("UPDATE audit_events SET entry = substr(entry, 1, length(entry) - 6) WHERE idx = 2")
        .execute(&db)
        .await
        .expect("mend");
    // A corrupted hash tile.
    let (level, index, tile): (i64, i64, Vec<u8>) =
        sqlx::query_as("SELECT level, idx, bytes FROM log_tiles ORDER BY level, idx LIMIT 1")
            .fetch_one(&db)
            .await
            .expect("tile");
    let mut bad = tile.clone();
    bad[0] ^= 0xff;
    let set = "UPDATE log_tiles SET bytes = $1 WHERE level = $2 AND idx = $3";
    sqlx::query(set).bind(&bad).bind(level).bind(index).execute(&db).await.expect("corrupt");
    assert_eq!(findings(&data).await, vec![("log".to_owned(), "log".to_owned())]);
    sqlx::query(set).bind(&tile).bind(level).bind(index).execute(&db).await.expect("mend");

    // A link leased by a gateway that has been silent for an hour.
    sqlx::query("INSERT INTO gateways (id, started_at, seen_at) VALUES ('gone', 0, 0)").execute(&db).await.expect("gw");
    sqlx::query("UPDATE links SET state = 'leased', lease_id = 'l1', lease_gateway = 'gone' WHERE transfer_id = $1")
        .bind(&ids[1])
        .execute(&db)
        .await
        .expect("lease");
    let found = findings(&data).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "stale_lease");
    sqlx::query("UPDATE links SET state = 'issued', lease_id = NULL, lease_gateway = NULL WHERE transfer_id = $1")
        .bind(&ids[1])
        .execute(&db)
        .await
        .expect("give back");
    assert_eq!(findings(&data).await, vec![], "mended, consistent again");
    server.stop().await;
}

/// What the workload saw answered: each accepted transfer with its link token.
#[derive(Default)]
struct Answered {
    accepted: Vec<(String, String)>,
    recalled: Vec<String>,
    redeemed: Vec<String>,
}

/// One round's workload against `served` until it is killed: several tasks, each looping.
fn workload(
    served: &Arc<Served>,
    bob: &str,
    alice: &str,
    recipient: &str,
    seed: u64,
    answered: &Arc<Mutex<Answered>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for t in 0..3u64 {
        let (served, bob, recipient, answered) =
            (served.clone(), bob.to_owned(), recipient.to_owned(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ t);
            loop {
                let size = rng.gen_range(100..200_000);
                let url = format!("{}/api/v1/transfers?to=hmpps/alice", served.url);
                let Ok(r) =
                    served.http.post(url).bearer_auth(&bob).body(encrypt(&[&recipient], &noise(size))).send().await
                else {
                    return;
                };
                if r.status().as_u16() == 201 {
                    let Ok(body) = r.json::<Value>().await else { return };
                    let id = body["id"].as_str().unwrap().to_owned();
                    let link = link_token(body["links"][0]["url"].as_str().unwrap()).to_owned();
                    answered.lock().unwrap().accepted.push((id, link));
                }
            }
        }));
    }
    {
        let (served, bob, recipient, answered) =
            (served.clone(), bob.to_owned(), recipient.to_owned(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x7005);
            let to = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "hmpps/alice");
            loop {
                let bundle = encrypt(&[&recipient], &noise(rng.gen_range(1000..300_000)));
                let tus = |m: reqwest::Method, path: &str| {
                    served
                        .http
                        .request(m, format!("{}{path}", served.url))
                        .bearer_auth(&bob)
                        .header("Tus-Resumable", "1.0.0")
                };
                let Ok(r) = tus(reqwest::Method::POST, "/api/v1/uploads")
                    .header("Upload-Length", bundle.len().to_string())
                    .header("Upload-Metadata", format!("to {to}"))
                    .send()
                    .await
                else {
                    return;
                };
                let Some(location) = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned)
                else {
                    continue;
                };
                let half = bundle.len() / 2;
                let mut ok = true;
                for (offset, piece) in [(0, &bundle[..half]), (half, &bundle[half..])] {
                    let Ok(r) = tus(reqwest::Method::PATCH, &location)
                        .header("Upload-Offset", offset.to_string())
                        .header("Content-Type", "application/offset+octet-stream")
                        .body(piece.to_vec())
                        .send()
                        .await
                    else {
                        return;
                    };
                    ok &= r.status().as_u16() == 204;
                }
                if !ok {
                    continue;
                }
                let Ok(r) = tus(reqwest::Method::GET, &location).send().await else { return };
                if r.status().as_u16() == 200 {
                    let Ok(body) = r.json::<Value>().await else { return };
                    if let (Some(id), Some(url)) = (body["id"].as_str(), body["links"][0]["url"].as_str()) {
                        answered.lock().unwrap().accepted.push((id.to_owned(), link_token(url).to_owned()));
                    }
                }
            }
        }));
    }
    {
        let (served, alice, bob, answered) = (served.clone(), alice.to_owned(), bob.to_owned(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x4ede);
            loop {
                let pick = {
                    let a = answered.lock().unwrap();
                    (!a.accepted.is_empty()).then(|| a.accepted[rng.gen_range(0..a.accepted.len())].clone())
                };
                let Some((id, link)) = pick else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if rng.gen_bool(0.2) {
                    let url = format!("{}/api/v1/transfers/{id}", served.url);
                    let Ok(r) = served.http.delete(url).bearer_auth(&bob).send().await else { return };
                    if r.status().is_success() {
                        answered.lock().unwrap().recalled.push(id);
                    }
                } else {
                    let body = serde_json::json!({"token": link});
                    let url = format!("{}/api/v1/redeem", served.url);
                    let Ok(r) = served.http.post(url).bearer_auth(&alice).json(&body).send().await else { return };
                    let ok = r.status().as_u16() == 200;
                    if r.bytes().await.is_ok() && ok {
                        answered.lock().unwrap().redeemed.push(id);
                    }
                }
            }
        }));
    }
    tasks
}

#[tokio::test]
async fn a_gateway_killed_at_random_moments_of_a_mixed_workload_comes_back_consistent_with_every_answered_upload() {
    let seed: u64 = std::env::var("SEALPOST_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("crash test seed {seed} (set SEALPOST_CRASH_SEED={seed} to repeat it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (_dir, data, storage) = fresh_deployment();
    let more: Vec<&str> = storage.iter().map(String::as_str).collect();
    let first = Served::start(&data, &more, &[]);
    let admin = admin_token(&data);
    let (bob, alice, identity) = first.parties(&admin).await;
    let recipient = identity.to_public().to_string();
    drop(first);
    let answered = Arc::new(Mutex::new(Answered::default()));
    let started = Instant::now();
    let rounds = 20;
    for round in 0..rounds {
        let served = Arc::new(Served::start(&data, &more, &[]));
        let tasks = workload(&served, &bob, &alice, &recipient, seed ^ round, &answered);
        let run_for = Duration::from_millis(rng.gen_range(100..1500));
        tokio::time::sleep(run_for).await;
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        // The only owner left: dropping it kills the process with SIGKILL.
        drop(Arc::try_unwrap(served).ok().expect("one owner"));
    }
    // Back up once more: every upload answered 201 is there, and the checker finds nothing.
    let served = Served::start(&data, &more, &[]);
    let (answered, done) = {
        let a = answered.lock().unwrap();
        let done: std::collections::HashSet<String> = a.recalled.iter().chain(&a.redeemed).cloned().collect();
        (a.accepted.clone(), done)
    };
    assert!(answered.len() >= rounds as usize, "the workload got uploads through: {}", answered.len());
    let mut delivered_now = 0;
    for (id, link) in &answered {
        let (status, body) = served.get(&bob, &format!("/api/v1/transfers/{id}")).await;
        assert_eq!(status, 200, "seed {seed}: transfer {id}, answered 201 before a crash, is there: {body}");
        if done.contains(id) {
            continue;
        }
        // Neither redeemed nor recalled as far as the workload saw: redeemable now, or used up
        // or recalled by a request whose answer the kill cut off.
        let (status, bytes) = served.redeem(&alice, &format!("x/d#{link}")).await;
        if status == 200 {
            let plain = common::decrypt(&identity, &bytes);
            assert!(!plain.is_empty(), "seed {seed}: transfer {id} decrypts");
            delivered_now += 1;
        } else {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = common::code(&body).to_owned();
            assert!(
                matches!(code.as_str(), "link_used" | "link_revoked"),
                "seed {seed}: transfer {id}, answered 201, is neither redeemable nor accounted for: {status} {body}"
            );
        }
    }
    assert!(delivered_now > 0, "some answered uploads were still waiting and are delivered now");
    served.settle(&admin).await;
    let out = admin_check(&data, false).await;
    assert_eq!(out.status.code(), Some(0), "seed {seed}: {}", printed(&out));
    println!("crash test: {rounds} kills, {} answered uploads, {:?}", answered.len(), started.elapsed());
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reads_a_postgresql_and_s3_deployment_as_serve_does() {
    use object_store::ObjectStoreExt as _;
    let Some(pg) = common::postgres::PgCluster::shared() else { return };
    let Some(garage) = common::garage::GarageCluster::start() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let database = pg.new_database("admin_check_s3");
    let env: Vec<(String, String)> = garage.gateway_env().into_iter().filter(|(k, _)| k.starts_with("AWS_")).collect();
    let more = ["--database-url", database.as_str(), "--blob-store", garage.blob_store()];
    let served = Served::start(&data, &more, &env);
    let admin = admin_token(&data);
    let (bob, _alice, identity) = served.parties(&admin).await;
    let recipient = identity.to_public().to_string();
    let (status, body) = served.upload(&bob, encrypt(&[&recipient], &noise(10_000))).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    served.settle(&admin).await;
    let dir = data.to_string_lossy().into_owned();
    let args = ["admin", "check", "--data-dir", &dir, "--database-url", &database, "--blob-store", garage.blob_store()];
    let out = sealpost(&args, &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));

    let bucket = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(garage.bucket())
        .with_region(garage.var("AWS_REGION"))
        .with_endpoint(garage.endpoint())
        .with_access_key_id(garage.var("AWS_ACCESS_KEY_ID"))
        .with_secret_access_key(garage.var("AWS_SECRET_ACCESS_KEY"))
        .with_allow_http(true)
        .build()
        .expect("an S3 client");
    bucket.delete(&object_store::path::Path::from(format!("{id}.age"))).await.expect("lose the blob");
    let out = sealpost(&args, &env).await;
    assert_eq!(out.status.code(), Some(4), "{}", printed(&out));
    let (stdout, _) = common::output_text(&out);
    assert!(stdout.starts_with(&format!("missing_blob: {id}: ")), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    served.stop();
}
