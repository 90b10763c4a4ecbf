//! Restarts and crashes: what survives a stop, what a `kill -9` mid-upload leaves behind, and
//! what a download broken off half-way does to its link.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::common::{self, TestServer, decrypt, encrypt, link_token, noise, parties, status_json};

const MIB: usize = 1 << 20;

#[tokio::test]
async fn a_restart_keeps_accounts_keys_and_unused_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), |_| {}).await;
    let (bob, alice, identity) = parties(&server).await;
    let plaintext = noise(100_000);
    let ciphertext = encrypt(&[&identity.to_public().to_string()], &plaintext);
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "", ciphertext).await;
    assert_eq!(status, 201, "{upload}");
    let link = upload["links"][0]["url"].as_str().expect("link").to_owned();
    let admin_token = std::fs::read_to_string(dir.path().join("admin.token")).expect("admin token");
    let bob_before = server.get(&bob, "/api/v1/whoami").await;
    let alice_before = server.get(&alice, "/api/v1/whoami").await;
    let keys_before = server.get(&bob, "/api/v1/keys/hmpps/alice").await;
    let without_id = |(status, mut v): (u16, serde_json::Value)| {
        assert_eq!(v["id"].as_str().map(str::len), Some(32), "{v}");
        v.as_object_mut().expect("an object").remove("id");
        (status, v)
    };
    let whoami = |user: &str, role: &str, org_kind: &str| json!({"user": user, "role": role, "org_kind": org_kind, "default_expiry_seconds": 259_200});
    assert_eq!(without_id(bob_before.clone()), (200, whoami("acme/bob", "sender", "contractor")));
    assert_eq!(without_id(alice_before.clone()), (200, whoami("hmpps/alice", "recipient", "agency")));
    server.stop().await;

    let server = TestServer::start_in(dir.path(), |_| {}).await;
    assert_eq!(server.startup.admin_token, None);
    assert_eq!(server.get(&bob, "/api/v1/whoami").await, bob_before);
    assert_eq!(server.get(&alice, "/api/v1/whoami").await, alice_before);
    let keys_after = server.get(&bob, "/api/v1/keys/hmpps/alice").await;
    assert_eq!(keys_after, keys_before);
    assert_eq!(keys_after.1["keys"][0]["recipient"], json!(identity.to_public().to_string()));
    let (status, body) = server.redeem(&alice, &link).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(decrypt(&identity, &body), plaintext);
    assert_eq!(std::fs::read_to_string(dir.path().join("admin.token")).expect("admin token"), admin_token);
    assert_eq!(server.admin, admin_token.trim());
    server.stop().await;
}

#[tokio::test]
async fn a_crash_during_upload_leaves_nothing_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Gateway::spawn(dir.path());
    let http = reqwest::Client::new();
    let admin = std::fs::read_to_string(dir.path().join("admin.token")).expect("admin token").trim().to_owned();
    let api = Api { http: &http, url: &first.url, admin: &admin };
    let (bob, alice, recipient) = api.parties().await;

    // A valid 8 MiB bundle, fed slowly as a chunked body; the last chunk is never sent.
    let ciphertext = encrypt(&[&recipient], &noise(8 * MIB));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let request = http
        .post(format!("{}/api/v1/transfers?to=hmpps/alice", first.url))
        .bearer_auth(&bob)
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let upload = tokio::spawn(request);
    let chunk_count = ciphertext.len().div_ceil(64 << 10);
    let mut sent = 0;
    for chunk in ciphertext.chunks(64 << 10).take(chunk_count - 1) {
        tx.send(Ok(Bytes::copy_from_slice(chunk))).await.expect("the gateway reads the upload");
        sent += chunk.len();
        if sent >= 2 * MIB && staged_bytes(dir.path()) >= MIB as u64 {
            break;
        }
    }
    // Everything but the last chunk may be in flight: wait for the gateway to stage 1 MiB.
    for _ in 0..500 {
        if staged_bytes(dir.path()) >= MIB as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(staged_bytes(dir.path()) >= MIB as u64, "the gateway staged {} bytes", staged_bytes(dir.path()));

    first.kill();
    drop(tx);
    let answer = upload.await.expect("upload task");
    assert!(answer.is_err(), "the upload was answered: {answer:?}");

    let second = Gateway::spawn(dir.path());
    assert_eq!(second.recovered(), Some((1, 0, 0)), "{:#?}", second.startup_log);
    let api = Api { http: &http, url: &second.url, admin: &admin };
    assert_eq!(api.get(&alice, "/api/v1/inbox").await, (200, json!({"transfers": []})));
    assert_eq!(file_names(&dir.path().join("tmp")), Vec::<String>::new());
    assert_eq!(file_names(&dir.path().join("blobs")), Vec::<String>::new());
    let (status, audit) = api.get(&admin, "/api/v1/audit?limit=1000").await;
    assert_eq!(status, 200, "{audit}");
    let uploads: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|e| e.starts_with("upload."))
        .collect();
    assert_eq!(uploads, Vec::<&str>::new());
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_the_log_integrates_loses_no_acknowledged_event_and_the_log_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Gateway::spawn(dir.path());
    let http = reqwest::Client::new();
    let admin = std::fs::read_to_string(dir.path().join("admin.token")).expect("admin token").trim().to_owned();
    let api = Api { http: &http, url: &first.url, admin: &admin };
    let (bob, _alice, recipient) = api.parties().await;
    let key = http.get(format!("{}/log/key", first.url)).send().await.expect("key").text().await.expect("text");

    // Many uploads at once, then SIGKILL the moment the last answer is in: some entries are
    // integrated, some only in the database, and a batch may be half written.
    let file = encrypt(&[&recipient], &noise(2000));
    let uploads = (0..24).map(|_| {
        let url = format!("{}/api/v1/transfers?to=hmpps/alice", first.url);
        http.post(url).bearer_auth(&bob).body(file.clone()).send()
    });
    let answers = futures_util::future::join_all(uploads).await;
    first.kill();
    let acknowledged = answers.iter().filter(|r| r.as_ref().is_ok_and(|r| r.status().as_u16() == 201)).count();
    assert_eq!(acknowledged, 24, "every upload was acknowledged before the kill");

    let second = Gateway::spawn(dir.path());
    let api = Api { http: &http, url: &second.url, admin: &admin };
    let mut events = 0;
    for _ in 0..200 {
        let (_, audit) = api.get(&admin, "/api/v1/audit?limit=1000").await;
        events = audit["events"].as_array().expect("events").len() as u64;
        let accepted =
            audit["events"].as_array().expect("events").iter().filter(|e| e["event"] == "upload.accepted").count();
        assert_eq!(accepted, 24, "no acknowledged upload is missing from the trail");
        let note =
            http.get(format!("{}/log/checkpoint", second.url)).send().await.expect("cp").text().await.expect("t");
        let size: u64 = note.lines().nth(1).and_then(|l| l.parse().ok()).expect("size line");
        if size >= events {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let state = dir.path().join("verifier-state");
    let out = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(["log", "verify", "--url", &second.url, "--key", key.trim(), "--state"])
        .arg(&state)
        .env_remove("SEALPOST_TOKEN")
        .output()
        .expect("log verify runs");
    common::assert_exit(&out, 0);
    assert!(events >= 24 + 24, "each upload logged its acceptance and its link");
}

#[tokio::test]
async fn a_broken_off_download_leaves_the_link_usable() {
    let server = TestServer::start().await;
    let (bob, alice, identity) = parties(&server).await;
    let plaintext = noise(8 * MIB);
    let ciphertext = encrypt(&[&identity.to_public().to_string()], &plaintext);
    let (status, upload) = server.upload(&bob, &["hmpps/alice"], "", ciphertext).await;
    assert_eq!(status, 201, "{upload}");
    let link = upload["links"][0]["url"].as_str().expect("link").to_owned();

    let mut response = server
        .http()
        .post(format!("{}/api/v1/redeem", server.url))
        .bearer_auth(&alice)
        .json(&json!({"token": link_token(&link)}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let first = response.chunk().await.expect("first chunk").expect("a chunk");
    assert!(!first.is_empty());
    drop(response);
    // The lease is released by a task the server spawns when the body is dropped.
    wait_for_event(&server, "download.failed").await;

    let (status, body) = server.redeem(&alice, &link).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(decrypt(&identity, &body), plaintext);
    wait_for_event(&server, "download.completed").await;

    let (status, audit) = server.get(&server.admin, "/api/v1/audit?limit=1000").await;
    assert_eq!(status, 200, "{audit}");
    let downloads: Vec<(&str, &Value)> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|e| e.starts_with("download.")))
        .map(|e| (e["event"].as_str().unwrap(), &e["code"]))
        .collect();
    assert_eq!(
        downloads,
        vec![
            ("download.started", &Value::Null),
            ("download.failed", &json!("client_disconnected")),
            ("download.started", &Value::Null),
            ("download.completed", &Value::Null),
        ]
    );
    let (status, _) = server.redeem(&alice, &link).await;
    assert_eq!(status, 410);
    server.stop().await;
}

/// Polls the audit trail until `event` appears (a few seconds at most).
async fn wait_for_event(server: &TestServer, event: &str) {
    for _ in 0..100 {
        if server.events().await.iter().any(|e| e == event) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no `{event}` in the audit trail: {:?}", server.events().await);
}

/// Bytes staged under `DATA/tmp`.
fn staged_bytes(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir.join("tmp"))
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// File names in a directory, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The real `sealpost serve` binary, killed when dropped (also when an assertion fails).
struct Gateway {
    child: Child,
    url: String,
    /// Log lines up to and including `sealpost is listening`, without colour codes.
    startup_log: Vec<String>,
}

impl Gateway {
    /// Starts `sealpost serve` on `data_dir` and a free port; returns once it listens.
    fn spawn(data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--log-format", "human"])
            .current_dir(data_dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("SEALPOST_CONFIG")
            .env_remove("SEALPOST_PUBLIC_URL")
            .env_remove("SEALPOST_MAX_UPLOAD_SIZE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sealpost starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut gateway = Self { child, url: String::new(), startup_log: Vec::new() };
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = strip_ansi(&line.expect("stderr line"));
            let listening = line.contains("sealpost is listening");
            gateway.startup_log.push(line);
            if listening {
                break;
            }
        }
        let last = gateway.startup_log.last().map(String::as_str).unwrap_or_default();
        assert!(
            last.contains("sealpost is listening"),
            "sealpost stopped before listening: {:#?}",
            gateway.startup_log
        );
        let bound = field(last, "bound").expect("bound= in the listening line");
        gateway.url = format!("http://{bound}");
        // Keep reading so that logging never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        gateway
    }

    /// `kill -9`, and reap it.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// (staged, orphans, leases) from the start-up recovery line, if there was one.
    fn recovered(&self) -> Option<(u64, u64, u64)> {
        let line = self.startup_log.iter().find(|l| l.contains("recovered from an earlier stop"))?;
        let number = |key| field(line, key).and_then(|v| v.parse().ok());
        Some((number("staged")?, number("orphans")?, number("leases")?))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key=value` in a human-format tracing line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("{key}=");
    line.split_whitespace().find_map(|word| word.strip_prefix(pattern.as_str()))
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The few API calls the crash test makes against the spawned binary.
struct Api<'a> {
    http: &'a reqwest::Client,
    url: &'a str,
    admin: &'a str,
}

impl Api<'_> {
    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.expect("send");
        status_json(r).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r =
            self.http.post(format!("{}{path}", self.url)).bearer_auth(token).json(&body).send().await.expect("send");
        status_json(r).await
    }

    /// Same parties as `common::parties`: returns (bob's token, alice's token, alice's recipient).
    async fn parties(&self) -> (String, String, String) {
        for (name, kind) in [("acme", "contractor"), ("hmpps", "agency")] {
            let (status, body) = self.post(self.admin, "/api/v1/orgs", json!({"name": name, "kind": kind})).await;
            assert_eq!(status, 201, "{body}");
        }
        let (status, body) = self.post(self.admin, "/api/v1/routes", json!({"from": "acme", "to": "hmpps"})).await;
        assert_eq!(status, 201, "{body}");
        let mut tokens = Vec::new();
        for (user, role) in [("acme/bob", "sender"), ("hmpps/alice", "recipient")] {
            let (status, body) = self.post(self.admin, "/api/v1/users", json!({"user": user, "role": role})).await;
            assert_eq!(status, 201, "{body}");
            tokens.push(body["token"].as_str().expect("token").to_owned());
        }
        let (_identity, recipient) = common::keypair();
        let (status, body) = self.post(&tokens[1], "/api/v1/keys", json!({"recipient": recipient})).await;
        assert_eq!(status, 201, "{body}");
        let alice = tokens.pop().expect("alice");
        let bob = tokens.pop().expect("bob");
        (bob, alice, recipient)
    }
}
