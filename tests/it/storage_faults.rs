//! Storage faults made for real under a running gateway: a small tmpfs filled to the last page, a
//! blob or staging directory remounted read-only, the database file taken away. Each is answered
//! 507 `insufficient_storage` or 503 `service_unavailable` with `Retry-After`, never 500, leaves
//! no partial bundle, is audited where the database can still take it, and once the fault is
//! gone the very next writes succeed, without a restart.
//!
//! These tests mount filesystems, so they need root and `mount`; without them they fail.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use sealpost::config::DatabaseUrl;

use crate::common::{self, TestServer, code, encrypt, noise, parties, require_tool};

/// A tmpfs of a fixed size, unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).expect("mount point");
        run("mount", &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", &mount.to_string_lossy()]);
        Self { mount, _dir: dir }
    }

    /// Fills the disk, leaving about `leave` bytes free (0: full to the last page).
    fn fill(&self, leave: u64) {
        let path = self.mount.join("filler");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("filler");
        let chunk = vec![0x5a_u8; 64 << 10];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = file.sync_all();
        // Pages the last failed write took may be partly used: write byte by byte to the end.
        while file.write_all(&[0x5a]).is_ok() {}
        if leave > 0 {
            let len = file.metadata().expect("len").len();
            file.set_len(len.saturating_sub(leave)).expect("make room");
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.mount.join("filler")).expect("free the disk");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Runs a system tool; fails the test when it is missing or fails.
fn run(tool: &str, args: &[&str]) {
    let program = require_tool(tool).unwrap_or_else(|| panic!("`{tool}` is needed"));
    let out = Command::new(program).args(args).output().expect("runs");
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An upload to hmpps/alice: status, `Retry-After`, body.
async fn upload(server: &TestServer, bob: &str, bundle: Vec<u8>) -> (u16, Option<String>, serde_json::Value) {
    let r = server
        .http()
        .post(format!("{}/api/v1/transfers?to=hmpps/alice", server.url))
        .bearer_auth(bob)
        .body(bundle)
        .send()
        .await
        .expect("send");
    let retry = r.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    let (status, body) = common::status_json(r).await;
    (status, retry, body)
}

/// A write that touches only the database (a new user): status, `Retry-After`, body.
async fn db_write(server: &TestServer, name: &str) -> (u16, Option<String>, serde_json::Value) {
    let r = server
        .http()
        .post(format!("{}/api/v1/users", server.url))
        .bearer_auth(&server.admin)
        .json(&json!({"user": format!("acme/{name}"), "role": "sender"}))
        .send()
        .await
        .expect("send");
    let retry = r.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    let (status, body) = common::status_json(r).await;
    (status, retry, body)
}

/// A resumable upload of `bundle` in one piece: the first answer that is not a success
/// (creation or the `PATCH`), or the `PATCH`'s 204.
async fn tus_upload(server: &TestServer, bob: &str, bundle: &[u8]) -> (u16, Option<String>, serde_json::Value) {
    use base64::Engine as _;
    let to = base64::engine::general_purpose::STANDARD.encode("hmpps/alice");
    let tus = |m: reqwest::Method, path: &str| {
        server.http().request(m, format!("{}{path}", server.url)).bearer_auth(bob).header("Tus-Resumable", "1.0.0")
    };
    let r = tus(reqwest::Method::POST, "/api/v1/uploads")
        .header("Upload-Length", bundle.len().to_string())
        .header("Upload-Metadata", format!("to {to}"))
        .send()
        .await
        .expect("create");
    let retry = r.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    let Some(location) = r.headers().get("location").map(|l| l.to_str().expect("ascii").to_owned()) else {
        let (status, body) = common::status_json(r).await;
        return (status, retry, body);
    };
    let r = tus(reqwest::Method::PATCH, &location)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(bundle.to_vec())
        .send()
        .await
        .expect("patch");
    let retry = r.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, retry, body)
}

fn assert_storage_answer(status: u16, retry: Option<&String>, body: &serde_json::Value) {
    assert!(matches!(status, 503 | 507), "a storage fault is 503 or 507, never {status}: {body}");
    assert!(matches!(code(body), "service_unavailable" | "insufficient_storage"), "{body}");
    assert!(retry.is_some_and(|r| r.parse::<u32>().is_ok_and(|s| s >= 1)), "Retry-After is set: {retry:?}");
}

fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| r.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_full_disk_is_answered_507_keeps_nothing_and_the_freed_disk_takes_every_next_write() {
    let disk = SmallDisk::mount("48m");
    let data = disk.mount.join("data");
    let server = TestServer::start_in(&data, |_| {}).await;
    let (bob, _alice, identity) = parties(&server).await;
    let recipient = identity.to_public().to_string();
    let small = encrypt(&[&recipient], b"fits anywhere");
    let (status, _, body) = upload(&server, &bob, small.clone()).await;
    assert_eq!(status, 201, "{body}");

    // Nearly full: a 4 MiB bundle cannot be kept, but the database can still record the refusal.
    disk.fill(1 << 20);
    let big = encrypt(&[&recipient], &noise(4 << 20));
    let (status, retry, body) = upload(&server, &bob, big).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(code(&body), "insufficient_storage");
    assert!(retry.is_some(), "507 carries Retry-After");
    assert!(files(&data.join("tmp")).is_empty(), "no staged leftover: {:?}", files(&data.join("tmp")));
    assert_eq!(files(&data.join("blobs")).len(), 1, "no partial bundle: {:?}", files(&data.join("blobs")));

    // Full to the last page: every write is refused as a storage fault, none is a 500.
    disk.fill(0);
    for i in 0..12 {
        let (status, retry, body) = upload(&server, &bob, small.clone()).await;
        assert_storage_answer(status, retry.as_ref(), &body);
        let (status, retry, body) = db_write(&server, &format!("full{i}")).await;
        if status != 201 {
            assert_storage_answer(status, retry.as_ref(), &body);
        }
    }
    // A resumable upload meets the same full disk at its first bytes.
    for _ in 0..3 {
        let (status, retry, body) = tus_upload(&server, &bob, &small).await;
        assert_storage_answer(status, retry.as_ref(), &body);
    }
    assert!(files(&data.join("tmp")).is_empty(), "no staged leftover: {:?}", files(&data.join("tmp")));
    assert_eq!(files(&data.join("blobs")).len(), 1, "no partial bundle");

    // Freed: the very next writes all succeed, with no warm-up and no restart.
    disk.free();
    let mut failures = Vec::new();
    for i in 0..50 {
        let (status, _, body) = upload(&server, &bob, small.clone()).await;
        if status != 201 {
            failures.push(format!("upload {i}: {status} {body}"));
        }
        let (status, _, body) = db_write(&server, &format!("freed{i}")).await;
        if status != 201 {
            failures.push(format!("user {i}: {status} {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 100 writes failed after the disk was freed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let refused = server.entries("upload.refused").await;
    assert!(
        refused.iter().any(|e| e.contains("code insufficient_storage")),
        "the refusal for lack of space is audited: {refused:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_data_directory_remounted_read_only_is_a_503_and_writable_again_works_at_once() {
    let disk = SmallDisk::mount("64m");
    let data = disk.mount.join("data");
    // The database lives elsewhere (a filesystem with a file open for writing cannot be
    // remounted read-only), so it can record each refusal.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let database = elsewhere.path().join("sealpost.db");
    let server = TestServer::start_in(&data, |c| {
        if !common::postgres_pass() {
            c.database_url = Some(DatabaseUrl::Sqlite(database));
        }
    })
    .await;
    let (bob, _alice, identity) = parties(&server).await;
    let bundle = encrypt(&[&identity.to_public().to_string()], &noise(64 << 10));
    let (status, _, body) = upload(&server, &bob, bundle.clone()).await;
    assert_eq!(status, 201, "{body}");
    // What a filesystem that met errors does by itself: it goes read-only under the gateway
    // (here a read-only bind mount of the data directory over itself, which refuses root too;
    // the files the gateway holds open keep their writable mount).
    let d = data.to_string_lossy().into_owned();
    run("mount", &["--bind", &d, &d]);
    run("mount", &["-o", "remount,bind,ro", &d, &d]);
    for i in 0..3 {
        let (status, retry, body) = upload(&server, &bob, bundle.clone()).await;
        assert_storage_answer(status, retry.as_ref(), &body);
        let (status, _, body) = db_write(&server, &format!("ro{i}")).await;
        assert_eq!(status, 201, "the database is not on the read-only disk: {body}");
    }
    // A resumable upload is created (a row in the database) and meets the read-only disk at
    // its first bytes: answered and audited like a one-shot upload, naming the upload.
    let (status, retry, body) = tus_upload(&server, &bob, &bundle).await;
    assert_storage_answer(status, retry.as_ref(), &body);
    run("umount", &[&d]);
    for i in 0..20 {
        let (status, _, body) = upload(&server, &bob, bundle.clone()).await;
        assert_eq!(status, 201, "writable again: {body}");
        let (status, _, body) = db_write(&server, &format!("rw{i}")).await;
        assert_eq!(status, 201, "writable again: {body}");
    }
    assert!(files(&data.join("tmp")).is_empty());
    assert_eq!(files(&data.join("blobs")).len(), 21, "only the accepted bundles are kept");
    let refused = server.entries("upload.refused").await;
    let lost = refused.iter().filter(|e| e.contains("code service_unavailable") && e.contains("reason storage"));
    let (resumable, one_shot): (Vec<&String>, Vec<&String>) = lost.partition(|e| e.contains("\nresumable true\n"));
    assert_eq!(one_shot.len(), 3, "each refusal is audited: {refused:?}");
    assert_eq!(resumable.len(), 1, "the resumable upload's too: {refused:?}");
    assert!(resumable[0].contains("\ntransfer ") && resumable[0].contains("\nsize 0\n"), "{}", resumable[0]);
    server.stop().await;
}

#[tokio::test]
async fn a_database_file_taken_away_is_a_503_not_a_silent_write_and_its_return_recovers() {
    if common::postgres_pass() {
        return a_database_server_that_drops_every_connection_recovers_without_a_500().await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let (bob, _alice, identity) = parties(&server).await;
    let bundle = encrypt(&[&identity.to_public().to_string()], b"small");
    let db = dir.path().join("sealpost.db");
    let away = dir.path().join("elsewhere.db");
    std::fs::rename(&db, &away).expect("take the database away");
    for i in 0..5 {
        let (status, retry, body) = db_write(&server, &format!("gone{i}")).await;
        assert_storage_answer(status, retry.as_ref(), &body);
        let (status, retry, body) = upload(&server, &bob, bundle.clone()).await;
        assert_storage_answer(status, retry.as_ref(), &body);
    }
    assert!(!db.exists(), "no empty database was made in its place");
    assert!(files(&dir.path().join("blobs")).is_empty(), "no blob without its row");
    std::fs::rename(&away, &db).expect("bring it back");
    for i in 0..20 {
        let (status, _, body) = db_write(&server, &format!("back{i}")).await;
        assert_eq!(status, 201, "{body}");
        let (status, _, body) = upload(&server, &bob, bundle.clone()).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, users) = server.get(&server.admin, "/api/v1/users").await;
    assert_eq!(status, 200, "{users}");
    let names = users.to_string();
    assert!(!names.contains("gone0"), "nothing was written to the file while it was away");
    assert!(names.contains("back19"));
    server.stop().await;
}

/// The PostgreSQL pass's lost connection: every connection of the gateway is terminated by the
/// server; the next requests are answered (at worst 503) and the pool reconnects by itself.
async fn a_database_server_that_drops_every_connection_recovers_without_a_500() {
    let server = TestServer::start().await;
    let (bob, _alice, identity) = parties(&server).await;
    let bundle = encrypt(&[&identity.to_public().to_string()], b"small");
    let admin_db = server.database().await;
    for round in 0..3 {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            .execute(&admin_db)
            .await
            .expect("terminate");
        let mut failures = Vec::new();
        for i in 0..10 {
            let (status, retry, body) = db_write(&server, &format!("r{round}u{i}")).await;
            if status != 201 {
                assert_storage_answer(status, retry.as_ref(), &body);
                failures.push(status);
            }
            let (status, retry, body) = upload(&server, &bob, bundle.clone()).await;
            if status != 201 {
                assert_storage_answer(status, retry.as_ref(), &body);
                failures.push(status);
            }
        }
        assert!(failures.is_empty(), "round {round}: writes after the connections dropped failed: {failures:?}");
    }
    server.stop().await;
}
