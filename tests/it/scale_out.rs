//! Several gateways at once: two real `sealpost serve` processes over one real PostgreSQL and a
//! real three-node Garage cluster, as a load balancer would see them.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::garage::GarageCluster;
use crate::common::postgres::PgCluster;
use crate::common::{code, decrypt, encrypt, keypair, link_token, serve_process};

/// One `sealpost serve` process, killed when dropped.
struct Gateway {
    child: Child,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts a gateway over `database` and the Garage bucket, signing with the shared `key`,
    /// with `more` arguments for `serve`.
    fn start(database: &str, garage: &GarageCluster, key: &Path, more: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sealpost"));
        command
            .arg("serve")
            .args(more)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--database-url", database, "--blob-store", garage.blob_store()])
            .args(["--listen", "127.0.0.1:0", "--log-format", "human"])
            .envs(garage.gateway_env())
            .env("SEALPOST_SIGNING_KEY_FILE", key)
            // Behind one load balancer: one public URL, so one log origin for both.
            .env("SEALPOST_PUBLIC_URL", "https://sealpost.test")
            .current_dir(dir.path());
        let (child, url) = serve_process(command);
        Self { child, url, http: reqwest::Client::new(), _dir: dir }
    }

    /// The administrator token, when this gateway made the administrator.
    fn admin_token(&self) -> Option<String> {
        std::fs::read_to_string(self._dir.path().join("admin.token")).ok().map(|t| t.trim().to_owned())
    }

    async fn json(&self, r: reqwest::RequestBuilder) -> (u16, Value) {
        let r = r.send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.json(self.http.post(format!("{}{path}", self.url)).bearer_auth(token).json(&body)).await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.json(self.http.get(format!("{}{path}", self.url)).bearer_auth(token)).await
    }

    async fn user(&self, admin: &str, name: &str, role: &str) -> String {
        let (status, body) = self.post(admin, "/api/v1/users", json!({"user": name, "role": role})).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    async fn upload(&self, token: &str, to: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self.http.post(format!("{}/api/v1/transfers?to={to}", self.url)).bearer_auth(token).body(body);
        self.json(r).await
    }

    /// A tus request (`Tus-Resumable: 1.0.0`) to `location`.
    fn tus(&self, method: reqwest::Method, token: &str, location: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{location}", self.url)).bearer_auth(token).header("Tus-Resumable", "1.0.0")
    }

    /// Creates a resumable upload of `length` bytes for `to`; returns its location.
    async fn create_upload(&self, token: &str, to: &str, length: usize) -> String {
        use base64::Engine as _;
        let to = base64::engine::general_purpose::STANDARD.encode(to);
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

    /// Appends `bytes` at `offset` to a resumable upload; returns the status.
    async fn patch(&self, token: &str, location: &str, offset: usize, bytes: &[u8]) -> u16 {
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

    /// `kill -9`, and reap it.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    async fn redeem(&self, token: &str, link: &str) -> (u16, Vec<u8>) {
        let r = self
            .http
            .post(format!("{}/api/v1/redeem", self.url))
            .bearer_auth(token)
            .json(&json!({"token": link_token(link)}))
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two gateways over one database and the Garage cluster, with the parties made through the
/// first: returns (A, B, sender token, recipient token, recipient identity).
async fn two_gateways(
    database: &str,
    garage: &GarageCluster,
    key: &Path,
) -> (Gateway, Gateway, String, String, age::x25519::Identity) {
    two_gateways_with(database, garage, key, &[]).await
}

/// [`two_gateways`] with more `serve` arguments for both.
async fn two_gateways_with(
    database: &str,
    garage: &GarageCluster,
    key: &Path,
    more: &[&str],
) -> (Gateway, Gateway, String, String, age::x25519::Identity) {
    let a = Gateway::start(database, garage, key, more);
    let b = Gateway::start(database, garage, key, more);
    let admin = a.admin_token().expect("the first gateway made the administrator");
    assert_eq!(b.admin_token(), None, "exactly one gateway makes the administrator");
    for (org, kind) in [("acme", "contractor"), ("hmpps", "agency")] {
        let (status, body) = a.post(&admin, "/api/v1/orgs", json!({"name": org, "kind": kind})).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = b.post(&admin, "/api/v1/routes", json!({"from": "acme", "to": "hmpps"})).await;
    assert_eq!(status, 201, "{body}");
    let bob = a.user(&admin, "acme/bob", "sender").await;
    let alice = b.user(&admin, "hmpps/alice", "recipient").await;
    let (identity, recipient) = keypair();
    let (status, body) = a.post(&alice, "/api/v1/keys", json!({"recipient": recipient})).await;
    assert_eq!(status, 201, "{body}");
    (a, b, bob, alice, identity)
}

/// A signing key shared by every gateway of a deployment (as a mounted secret would be).
fn shared_key(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("gateway.key");
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&path)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_uploaded_through_one_gateway_is_collected_through_the_other_once() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let database = pg.new_database("scale_out_collect");
    let (a, b, bob, alice, identity) = two_gateways(&database, &garage, &shared_key(secrets.path())).await;

    for gateway in [&a, &b] {
        let r = gateway.http.get(format!("{}/readyz", gateway.url)).send().await.expect("readyz");
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
    }
    let plaintext = b"offender records, extract 7".to_vec();
    let (status, body) = b.upload(&bob, "hmpps/alice", plaintext.clone()).await;
    assert_eq!((status, code(&body)), (422, "not_age_encrypted"), "plaintext is refused on either gateway");
    let bundle = encrypt(&[&identity.to_public().to_string()], &plaintext);
    let (status, body) = a.upload(&bob, "hmpps/alice", bundle).await;
    assert_eq!(status, 201, "{body}");
    let link = body["links"][0]["url"].as_str().expect("link").to_owned();
    let id = body["id"].as_str().expect("id").to_owned();

    // The recipient's inbox through B shows what was sent through A.
    let (status, inbox) = b.get(&alice, "/api/v1/inbox").await;
    assert_eq!(status, 200, "{inbox}");
    assert!(inbox.to_string().contains(&id), "{inbox}");

    let (status, ciphertext) = b.redeem(&alice, &link).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&ciphertext));
    assert_eq!(decrypt(&identity, &ciphertext), plaintext);
    let (status, again) = a.redeem(&alice, &link).await;
    assert_eq!(status, 410, "{}", String::from_utf8_lossy(&again));

    // Both gateways publish the same log: B's checkpoint covers A's upload entry.
    let checkpoint = |g: &Gateway| {
        let url = format!("{}/log/checkpoint", g.url);
        let http = g.http.clone();
        async move { http.get(url).send().await.expect("checkpoint").text().await.expect("text") }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ca, cb) = (checkpoint(&a).await, checkpoint(&b).await);
        if ca == cb && ca.lines().nth(1).is_some_and(|size| size.parse::<u64>().is_ok_and(|n| n > 10)) {
            break;
        }
        assert!(Instant::now() < deadline, "the two gateways' checkpoints did not meet:\n{ca}\n{cb}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_raced_from_two_gateways_a_hundred_times_is_delivered_exactly_once() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let database = pg.new_database("scale_out_race");
    let (a, b, bob, alice, identity) = two_gateways(&database, &garage, &shared_key(secrets.path())).await;
    let bundle = encrypt(&[&identity.to_public().to_string()], &vec![7u8; 200_000]);
    let (status, body) = a.upload(&bob, "hmpps/alice", bundle).await;
    assert_eq!(status, 201, "{body}");
    let link = body["links"][0]["url"].as_str().expect("link").to_owned();

    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let gateway = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (alice, link) = (alice.clone(), link.clone());
        tasks.push(tokio::spawn(async move { gateway.redeem(&alice, &link).await }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        if status == 200 {
            assert_eq!(decrypt(&identity, &body), vec![7u8; 200_000]);
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [200, 409, 410].contains(s)), "only 200, 409 and 410: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_postgresql_down_requests_get_503_and_retry_after_and_service_resumes_by_itself() {
    // A cluster of this test's own: it is stopped and started again.
    let Some(pg) = PgCluster::start() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let (a, _b, bob, alice, identity) = two_gateways(&pg.url(), &garage, &shared_key(secrets.path())).await;
    let bundle = || encrypt(&[&identity.to_public().to_string()], b"waiting through the outage");

    pg.stop();
    for _ in 0..3 {
        let r = a
            .http
            .post(format!("{}/api/v1/transfers?to=hmpps/alice", a.url))
            .bearer_auth(&bob)
            .body(bundle())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 503, "an upload while the database is down");
        assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
        let body: Value = r.json().await.expect("json");
        assert_eq!(code(&body), "service_unavailable", "{body}");
    }
    let r = a.http.get(format!("{}/readyz", a.url)).send().await.expect("readyz");
    assert_eq!(r.status().as_u16(), 503);
    let ready: Value = r.json().await.expect("json");
    assert!(ready.to_string().contains("database"), "{ready}");

    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(20);
    let link = loop {
        let (status, body) = a.upload(&bob, "hmpps/alice", bundle()).await;
        if status == 201 {
            break body["links"][0]["url"].as_str().expect("link").to_owned();
        }
        assert_eq!(status, 503, "while it comes back: {body}");
        assert!(Instant::now() < deadline, "the gateway did not recover by itself");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (status, ciphertext) = a.redeem(&alice, &link).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&identity, &ciphertext), b"waiting through the outage");
    // Nothing half-written: every transfer in the database is one that was answered 201.
    let out = pg.psql("sealpost", "SELECT count(*) FROM transfers");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_one_garage_node_stopped_uploads_and_downloads_go_on() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let database = pg.new_database("scale_out_garage_node");
    let (a, b, bob, alice, identity) = two_gateways(&database, &garage, &shared_key(secrets.path())).await;
    let plaintext = vec![3u8; 3 * 1024 * 1024];
    let (status, body) = a.upload(&bob, "hmpps/alice", encrypt(&[&identity.to_public().to_string()], &plaintext)).await;
    assert_eq!(status, 201, "{body}");
    let before = body["links"][0]["url"].as_str().expect("link").to_owned();

    garage.stop_node(3);
    let (status, body) = b.upload(&bob, "hmpps/alice", encrypt(&[&identity.to_public().to_string()], &plaintext)).await;
    assert_eq!(status, 201, "an upload with one node of three down: {body}");
    let during = body["links"][0]["url"].as_str().expect("link").to_owned();
    for link in [&before, &during] {
        let (status, ciphertext) = a.redeem(&alice, link).await;
        assert_eq!(status, 200);
        assert_eq!(decrypt(&identity, &ciphertext), plaintext);
    }
    garage.start_node(3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_reload_on_one_gateway_reaches_the_other() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    // One policy directory for both, as one ConfigMap or volume would give them.
    let policies = secrets.path().join("policies");
    std::fs::create_dir_all(&policies).expect("mkdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for entry in std::fs::read_dir(shipped).expect("shipped policies") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, policies.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let database = pg.new_database("scale_out_policy");
    let dir = policies.to_str().expect("utf-8").to_owned();
    let (a, b, bob, _alice, identity) =
        two_gateways_with(&database, &garage, &shared_key(secrets.path()), &["--policies", &dir]).await;
    let bundle = || encrypt(&[&identity.to_public().to_string()], b"before and after the lockdown");
    assert_eq!(b.upload(&bob, "hmpps/alice", bundle()).await.0, 201);

    std::fs::write(policies.join("local.cedar"), "@id(\"lockdown\")\nforbid (principal, action, resource);\n")
        .expect("write");
    let admin = a.admin_token().expect("admin");
    let (status, body) = a.post(&admin, "/api/v1/policy/reload", json!({})).await;
    assert_eq!(status, 200, "{body}");
    // B has not been told anything: it follows A's reload through the database, woken by
    // PostgreSQL at once (its poll, the safety net, comes only every 30 s, which this deadline
    // does not reach).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = b.upload(&bob, "hmpps/alice", bundle()).await;
        if status == 403 {
            assert_eq!(code(&body), "policy_denied", "{body}");
            assert!(body.to_string().contains("lockdown"), "{body}");
            break;
        }
        assert_eq!(status, 201, "{body}");
        assert!(Instant::now() < deadline, "gateway B never followed A's policy reload");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumable_upload_begun_on_a_gateway_killed_halfway_is_finished_through_the_other() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let database = pg.new_database("scale_out_tus");
    let key = shared_key(secrets.path());
    let (mut a, b, bob, alice, identity) = two_gateways(&database, &garage, &key).await;
    let plaintext = crate::common::noise(10 << 20);
    let ciphertext = encrypt(&[&identity.to_public().to_string()], &plaintext);
    let location = a.create_upload(&bob, "hmpps/alice", ciphertext.len()).await;
    let half = ciphertext.len() / 2;
    assert_eq!(a.patch(&bob, &location, 0, &ciphertext[..half]).await, 204);
    a.kill();

    // B knows the upload and its offset from the database, and its bytes from the bucket.
    let r = b.tus(reqwest::Method::HEAD, &bob, &location).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["upload-offset"], half.to_string().as_str());
    assert_eq!(b.patch(&bob, &location, half, &ciphertext[half..]).await, 204);

    // A comes back as a new process (its memory gone) and the sender's next request reaches it:
    // the links B answered with are in the database, sealed, and A opens them.
    let a = Gateway::start(&database, &garage, &key, &[]);
    let (status, answer) = a.json(a.tus(reqwest::Method::GET, &bob, &location)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, got) = a.redeem(&alice, answer["links"][0]["url"].as_str().expect("link")).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&identity, &got), plaintext);
}

#[tokio::test(flavor = "multi_thread")]
async fn while_one_gateway_writes_a_resumable_upload_the_other_refuses_to_write_it_too() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let database = pg.new_database("scale_out_tus_busy");
    let (a, b, bob, _alice, identity) = two_gateways(&database, &garage, &shared_key(secrets.path())).await;
    let ciphertext = encrypt(&[&identity.to_public().to_string()], &crate::common::noise(4 << 20));
    let location = a.create_upload(&bob, "hmpps/alice", ciphertext.len()).await;

    // A PATCH through A that is still sending (a client that timed out and retried elsewhere).
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let slow = a
        .tus(reqwest::Method::PATCH, &bob, &location)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let slow = tokio::spawn(slow);
    tx.send(Ok(bytes::Bytes::copy_from_slice(&ciphertext[..64 << 10]))).await.expect("A reads");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let r = b
        .tus(reqwest::Method::PATCH, &bob, &location)
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(ciphertext.clone())
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!((status, code(&body)), (423, "upload_busy"), "{body}");

    // A's request ends; its claim goes back, and B may go on from A's offset.
    drop(tx);
    let _ = slow.await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let offset = loop {
        let r = b.tus(reqwest::Method::HEAD, &bob, &location).send().await.expect("send");
        let offset: usize = r.headers()["upload-offset"].to_str().expect("ascii").parse().expect("number");
        let status = b.patch(&bob, &location, offset, &ciphertext[offset..]).await;
        if status == 204 {
            break offset;
        }
        assert_eq!(status, 423, "only busy while A's claim is given back");
        assert!(Instant::now() < deadline, "A's claim was never given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(offset <= 64 << 10, "{offset}");
    // B completed it; A, which did not, gives the sender the links.
    let (status, answer) = a.json(a.tus(reqwest::Method::GET, &bob, &location)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["links"][0]["url"].is_string(), "{answer}");
}

impl Gateway {
    /// Whether this gateway says it is the log's sequencer (`/readyz`).
    async fn is_sequencer(&self) -> bool {
        let (_, body) = self.json(self.http.get(format!("{}/readyz", self.url))).await;
        body["sequencer"] == json!(true)
    }

    /// `sealpost log verify` against this gateway's log, keeping its state in `state`.
    async fn log_verify(&self, key: &str, state: &Path) -> std::process::Output {
        let (url, key, state) = (self.url.clone(), key.to_owned(), state.to_owned());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_sealpost"))
                .args(["log", "verify", "--url", &url, "--key", &key, "--state"])
                .arg(&state)
                .env_remove("SEALPOST_URL")
                .env_remove("SEALPOST_TOKEN")
                .output()
                .expect("sealpost runs")
        })
        .await
        .expect("task")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sequencer_killed_with_uploads_in_flight_is_replaced_and_every_answered_upload_is_logged() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let database = pg.new_database("scale_out_sequencer");
    let (mut a, b, bob, alice, identity) = two_gateways(&database, &garage, &shared_key(secrets.path())).await;
    assert!(a.is_sequencer().await, "the first gateway took the sequencer lease");
    assert!(!b.is_sequencer().await, "one sequencer at a time");
    let key = a.http.get(format!("{}/log/key", a.url)).send().await.expect("key");
    assert_eq!(key.status().as_u16(), 200);
    let key = key.text().await.expect("text").trim().to_owned();

    // A compliance officer's state, saved before the failover.
    let state = secrets.path().join("state");
    let out = b.log_verify(&key, &state).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Uploads through both gateways; the sequencer is killed while they are in flight.
    let recipient = identity.to_public().to_string();
    let (a_url, b_url) = (a.url.clone(), b.url.clone());
    let mut tasks = Vec::new();
    for i in 0..24 {
        let url = if i % 2 == 0 { a_url.clone() } else { b_url.clone() };
        let (bob, bundle) = (bob.clone(), encrypt(&[&recipient], &crate::common::noise(64 << 10)));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(25 * i)).await;
            let r = reqwest::Client::new()
                .post(format!("{url}/api/v1/transfers?to=hmpps/alice"))
                .bearer_auth(&bob)
                .body(bundle)
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 201 => r.json::<Value>().await.ok(),
                _ => None,
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    a.kill();
    let mut answered = Vec::new();
    for task in tasks {
        if let Some(body) = task.await.expect("task") {
            answered.push(body["id"].as_str().expect("id").to_owned());
        }
    }
    assert!(answered.len() >= 12, "B answered its half: {answered:?}");

    // B takes over within seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !b.is_sequencer().await {
        assert!(Instant::now() < deadline, "B never became the sequencer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every upload answered 201, through either gateway, is in the log.
    for id in &answered {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = b.get(&bob, &format!("/api/v1/transfers/{id}/receipts")).await;
            assert_eq!(status, 200, "{body}");
            if body["receipts"].as_array().is_some_and(|r| r.iter().any(|r| r["event"] == "upload.accepted")) {
                break;
            }
            assert!(Instant::now() < deadline, "upload {id} was answered 201 but is not in the log: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The log never forked: it verifies from the state saved before the failover.
    let out = b.log_verify(&key, &state).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // And it goes on: a new transfer through B is logged and collected.
    let (status, body) = b.upload(&bob, "hmpps/alice", encrypt(&[&recipient], b"after the failover")).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["receipt"].is_string(), "the new sequencer integrated it at once: {body}");
    let (status, got) = b.redeem(&alice, body["links"][0]["url"].as_str().expect("link")).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&identity, &got), b"after the failover");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_killed_in_the_middle_of_a_patch_holds_the_upload_until_its_claim_runs_out() {
    let Some(pg) = PgCluster::shared() else { return };
    let Some(garage) = GarageCluster::start() else { return };
    let secrets = tempfile::tempdir().expect("tempdir");
    let database = pg.new_database("scale_out_tus_kill");
    let (mut a, b, bob, alice, identity) = two_gateways(&database, &garage, &shared_key(secrets.path())).await;
    let plaintext = crate::common::noise(3 << 20);
    let ciphertext = encrypt(&[&identity.to_public().to_string()], &plaintext);
    let location = a.create_upload(&bob, "hmpps/alice", ciphertext.len()).await;

    // A PATCH through A is still sending when A is killed.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let slow = tokio::spawn(
        a.tus(reqwest::Method::PATCH, &bob, &location)
            .header("Upload-Offset", "0")
            .header("Content-Type", "application/offset+octet-stream")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    tx.send(Ok(bytes::Bytes::copy_from_slice(&ciphertext[..1 << 20]))).await.expect("A reads");
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill();
    assert!(slow.await.expect("task").is_err(), "the killed gateway never answered");
    drop(tx);

    // B refuses to write the upload while the dead gateway's claim lasts, then goes on from the
    // offset the database holds, and nothing half-written is left: the upload completes whole.
    let started = Instant::now();
    let mut refused = 0;
    loop {
        let r = b.tus(reqwest::Method::HEAD, &bob, &location).send().await.expect("send");
        assert_eq!(r.status().as_u16(), 200);
        let offset: usize = r.headers()["upload-offset"].to_str().expect("ascii").parse().expect("number");
        match b.patch(&bob, &location, offset, &ciphertext[offset..]).await {
            204 => break,
            423 => refused += 1,
            other => panic!("PATCH through B: {other}"),
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the dead gateway's claim never ran out");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(refused > 0, "the claim of the killed request held the upload for a while");
    let (status, answer) = b.json(b.tus(reqwest::Method::GET, &bob, &location)).await;
    assert_eq!(status, 200, "{answer}");
    let (status, got) = b.redeem(&alice, answer["links"][0]["url"].as_str().expect("link")).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&identity, &got), plaintext);
}
