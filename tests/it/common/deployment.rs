//! A deployment as an operator runs it, for the tests of `admin migrate`, `backup` and `restore`:
//! real `sealpost serve` processes on a data directory, stopped with SIGTERM as a service
//! manager stops them, the `sealpost` commands run beside them, and the HTTP calls a sender and
//! a recipient make.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{keypair, link_token, require_tool, serve_process, status_json};

/// A fresh deployment for `sealpost serve` processes: its temporary directory (kept alive by the
/// caller), the data directory in it, and the storage arguments every command on it takes
/// (`--database-url` and a database of its own on the PostgreSQL pass, none otherwise).
pub(crate) fn fresh_deployment() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let storage =
        if super::postgres_pass() { vec!["--database-url".to_owned(), super::database_url(&data)] } else { vec![] };
    (dir, data, storage)
}

/// One `sealpost serve` process; killed when dropped, if still running.
pub(crate) struct Served {
    child: Option<Child>,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
}

impl Served {
    /// Starts `sealpost serve --data-dir DIR` on 127.0.0.1:0 with `more` arguments and `env`.
    pub(crate) fn start(data_dir: &Path, more: &[&str], env: &[(String, String)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sealpost"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(more)
            .args(["--listen", "127.0.0.1:0", "--log-format", "human"])
            .env_remove("SEALPOST_DATABASE_URL")
            .env_remove("SEALPOST_BLOB_STORE")
            .env_remove("SEALPOST_SIGNING_KEY_FILE")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(data_dir.parent().unwrap_or(data_dir));
        let (child, url) = serve_process(command);
        Self { child: Some(child), url, http: reqwest::Client::new() }
    }

    /// Stops the gateway with SIGTERM and waits until it has exited.
    pub(crate) fn stop(mut self) {
        let Some(kill) = require_tool("kill") else { return };
        if let Some(mut child) = self.child.take() {
            let out = Command::new(kill).args(["-TERM", &child.id().to_string()]).output().expect("kill runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let status = child.wait().expect("reaped");
            // A SIGTERM that comes before the gateway listens for it ends the process at once,
            // which stops it as well (the system lets go of its data directory either way).
            let by_signal = std::os::unix::process::ExitStatusExt::signal(&status) == Some(15);
            assert!(status.success() || by_signal, "sealpost serve exited with {status} after SIGTERM");
        }
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.url)).bearer_auth(token).json(&body).send().await;
        status_json(r.expect("send")).await
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.expect("send");
        status_json(r).await
    }

    /// Sets up `acme/bob` (sender) and `hmpps/alice` (recipient, with a key) and a route between
    /// their organisations: (bob's token, alice's token, alice's identity).
    pub(crate) async fn parties(&self, admin: &str) -> (String, String, age::x25519::Identity) {
        for (org, kind) in [("acme", "contractor"), ("hmpps", "agency")] {
            let (status, body) = self.post(admin, "/api/v1/orgs", json!({"name": org, "kind": kind})).await;
            assert_eq!(status, 201, "{body}");
        }
        let (status, body) = self.post(admin, "/api/v1/routes", json!({"from": "acme", "to": "hmpps"})).await;
        assert_eq!(status, 201, "{body}");
        let mut tokens = Vec::new();
        for (user, role) in [("acme/bob", "sender"), ("hmpps/alice", "recipient")] {
            let (status, body) = self.post(admin, "/api/v1/users", json!({"user": user, "role": role})).await;
            assert_eq!(status, 201, "{body}");
            tokens.push(body["token"].as_str().expect("token").to_owned());
        }
        let (identity, recipient) = keypair();
        let (status, body) = self.post(&tokens[1], "/api/v1/keys", json!({"recipient": recipient})).await;
        assert_eq!(status, 201, "{body}");
        let alice = tokens.pop().expect("alice");
        (tokens.pop().expect("bob"), alice, identity)
    }

    /// Uploads `bundle` to `hmpps/alice`: the answer.
    pub(crate) async fn upload(&self, token: &str, bundle: Vec<u8>) -> (u16, Value) {
        let url = format!("{}/api/v1/transfers?to=hmpps/alice", self.url);
        status_json(self.http.post(url).bearer_auth(token).body(bundle).send().await.expect("send")).await
    }

    /// Redeems a link: the status and the body.
    pub(crate) async fn redeem(&self, token: &str, link: &str) -> (u16, Vec<u8>) {
        let body = json!({"token": link_token(link)});
        let r = self.http.post(format!("{}/api/v1/redeem", self.url)).bearer_auth(token).json(&body).send().await;
        let r = r.expect("send");
        (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
    }

    /// Creates a resumable upload of `length` bytes to `hmpps/alice`: its location.
    pub(crate) async fn create_upload(&self, token: &str, length: usize) -> String {
        let to = base64::engine::general_purpose::STANDARD.encode("hmpps/alice");
        let r = self
            .tus(reqwest::Method::POST, token, "/api/v1/uploads")
            .header("Upload-Length", length.to_string())
            .header("Upload-Metadata", format!("to {to}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 201);
        r.headers()["location"].to_str().expect("ascii").to_owned()
    }

    /// Appends `bytes` at `offset` to a resumable upload: the status.
    pub(crate) async fn patch(&self, token: &str, location: &str, offset: usize, bytes: &[u8]) -> u16 {
        let r = self
            .tus(reqwest::Method::PATCH, token, location)
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("send");
        r.status().as_u16()
    }

    /// `GET` on a resumable upload (its progress, or its answer once complete).
    pub(crate) async fn upload_state(&self, token: &str, location: &str) -> (u16, Value) {
        status_json(self.tus(reqwest::Method::GET, token, location).send().await.expect("send")).await
    }

    fn tus(&self, method: reqwest::Method, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(token).header("Tus-Resumable", "1.0.0")
    }

    /// The log's verifier key string.
    pub(crate) async fn log_key(&self) -> String {
        let r = self.http.get(format!("{}/log/key", self.url)).send().await.expect("key");
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.expect("text").trim().to_owned()
    }

    /// Waits until the log's checkpoint covers every audit event (the trail read as `admin`).
    pub(crate) async fn settle(&self, admin: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, audit) = self.get(admin, "/api/v1/audit?limit=1000").await;
            assert_eq!(status, 200, "{audit}");
            let events = audit["events"].as_array().expect("events").len() as u64;
            let note = self.http.get(format!("{}/log/checkpoint", self.url)).send().await.expect("checkpoint");
            let note = note.text().await.expect("text");
            let size: u64 = note.lines().nth(1).and_then(|l| l.parse().ok()).expect("a size line");
            if size >= events {
                return;
            }
            assert!(Instant::now() < deadline, "the log stayed at {size} of {events} events");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `sealpost log verify` against this gateway, keeping its state in `state`.
    pub(crate) async fn log_verify(&self, key: &str, state: &Path) -> Output {
        sealpost(&["log", "verify", "--url", &self.url, "--key", key, "--state", &state.to_string_lossy()], &[]).await
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `sealpost ARGS` with `env` (off the async runtime): its output.
pub(crate) async fn sealpost(args: &[&str], env: &[(String, String)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env = env.to_vec();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sealpost"))
            .args(&args)
            .env_remove("SEALPOST_URL")
            .env_remove("SEALPOST_TOKEN")
            .env_remove("SEALPOST_CONFIG")
            .env_remove("SEALPOST_DATA_DIR")
            .env_remove("SEALPOST_DATABASE_URL")
            .env_remove("SEALPOST_BLOB_STORE")
            .env_remove("SEALPOST_SIGNING_KEY_FILE")
            .envs(env)
            .output()
            .expect("sealpost runs")
    })
    .await
    .expect("joined")
}

/// What a run printed, both streams.
pub(crate) fn printed(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The administrator token a gateway wrote into its data directory at first start.
pub(crate) fn admin_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin.token")).expect("admin.token").trim().to_owned()
}
