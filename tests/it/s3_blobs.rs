//! Blobs in a real S3 store: a single-node Garage (replication factor 1) in a temporary
//! directory, and `sealpost serve --blob-store s3://BUCKET` reaching it with the standard AWS_*
//! variables. Uploads go up (one `PUT`, or a multipart upload for the large one), come back down
//! (whole and by ranges), never stay on the gateway's disk, and a store that stops answering
//! makes uploads 503 `unavailable` and the gateway not ready, until it is back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use serde_json::{Value, json};

use crate::common::{code, decrypt, encrypt, keypair, link_token, noise, require_tool, serve_process, status_json};

const BUCKET: &str = "sealpost";
const REGION: &str = "garage";

/// One Garage node serving S3 on a loopback port; dropping it kills the node.
struct Garage {
    dir: tempfile::TempDir,
    bin: PathBuf,
    node: Option<Child>,
    s3_port: u16,
    key_id: String,
    secret: String,
}

impl Garage {
    /// Starts a node, lays it out alone, and makes the bucket and a key that may use it.
    fn start() -> Self {
        let bin = require_tool("garage").expect("garage (SEALPOST_TEST_ALLOW_MISSING_TOOLS is not for this test)");
        let dir = tempfile::Builder::new().prefix("sealpost-garage-").tempdir().expect("tempdir");
        let [rpc, s3_port, admin] = free_ports();
        let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let config = format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\n\
             replication_factor = 1\nconsistency_mode = \"consistent\"\n\
             rpc_secret = \"{secret}\"\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             [s3_api]\napi_bind_addr = \"127.0.0.1:{s3_port}\"\ns3_region = \"{REGION}\"\n\
             [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("garage.toml"), config).expect("garage.toml");
        let mut garage = Self { dir, bin, node: None, s3_port, key_id: String::new(), secret: String::new() };
        garage.run_node();
        let id = garage.until_ok("node id", &["node", "id", "-q"]);
        let id = id.lines().next().and_then(|l| l.split('@').next()).expect("a node id").to_owned();
        garage.until_ok("layout assign", &["layout", "assign", "-z", "z1", "-c", "1G", &id]);
        garage.until_ok("layout apply", &["layout", "apply", "--version", "1"]);
        garage.until_ok("bucket create", &["bucket", "create", BUCKET]);
        let info = garage.until_ok("key create", &["key", "create", "sealpost-test"]);
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no `{name}` in `garage key create`'s answer:\n{info}"))
        };
        garage.key_id = field("Key ID:");
        garage.secret = field("Secret key:");
        let key_id = garage.key_id.clone();
        garage.until_ok("bucket allow", &["bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", &key_id]);
        garage
    }

    /// Starts (or starts again) the node's server process and waits until it answers.
    fn run_node(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).expect("log file");
        let node = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config())
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("garage server starts");
        self.node = Some(node);
        self.until_ok("status", &["status"]);
    }

    /// Kills the node (SIGKILL) and reaps it.
    fn kill(&mut self) {
        if let Some(mut node) = self.node.take() {
            let _ = node.kill();
            let _ = node.wait();
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    /// Runs `garage ARGS` until it succeeds (the node may still be settling), at most 60 s.
    fn until_ok(&self, what: &str, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new(&self.bin).arg("-c").arg(self.config()).args(args).output().expect("garage runs");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            let log = std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "`garage {what}` kept failing: {}\nnode log:\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The variables a gateway (or any S3 client) needs.
    fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// An S3 client of the test's own, to look into the bucket.
    fn client(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region(REGION)
            .with_endpoint(self.endpoint())
            .with_access_key_id(&self.key_id)
            .with_secret_access_key(&self.secret)
            .with_allow_http(true)
            .build()
            .expect("an S3 client")
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three loopback ports free a moment ago.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<std::net::TcpListener> =
        (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let port = |i: usize| listeners[i].local_addr().expect("addr").port();
    [port(0), port(1), port(2)]
}

/// `sealpost serve` over the bucket, as its own process; dropping it kills it.
struct Gateway {
    child: Child,
    url: String,
    admin: String,
    data_dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Gateway {
    fn start(garage: &Garage) -> Self {
        Self::start_in(garage, tempfile::tempdir().expect("tempdir"))
    }

    /// Starts on an existing data directory (after [`Gateway::kill`]).
    fn start_in(garage: &Garage, data_dir: tempfile::TempDir) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sealpost"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--blob-store", &format!("s3://{BUCKET}"), "--listen", "127.0.0.1:0", "--log-format", "human"])
            .envs(garage.env())
            .env_remove("SEALPOST_BLOB_STORE")
            .env_remove("SEALPOST_DATABASE_URL")
            .current_dir(data_dir.path());
        let (child, url) = serve_process(command);
        let admin =
            std::fs::read_to_string(data_dir.path().join("admin.token")).expect("admin token").trim().to_owned();
        Self { child, url, admin, data_dir, http: reqwest::Client::new() }
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r =
            self.http.post(format!("{}{path}", self.url)).bearer_auth(token).json(&body).send().await.expect("send");
        status_json(r).await
    }

    /// `GET path` without a token: status, `Retry-After`, JSON body.
    async fn probe(&self, path: &str) -> (u16, Option<String>, Value) {
        let r = self.http.get(format!("{}{path}", self.url)).send().await.expect("send");
        let retry_after = r.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
        let (status, body) = status_json(r).await;
        (status, retry_after, body)
    }

    /// Sender `acme/bob` and recipient `hmpps/alice` with one key, and a route between them.
    async fn parties(&self) -> (String, String, age::x25519::Identity) {
        let admin = self.admin.clone();
        for (name, kind) in [("acme", "contractor"), ("hmpps", "agency")] {
            let (status, body) = self.post(&admin, "/api/v1/orgs", json!({"name": name, "kind": kind})).await;
            assert_eq!(status, 201, "{body}");
        }
        let (status, body) = self.post(&admin, "/api/v1/routes", json!({"from": "acme", "to": "hmpps"})).await;
        assert_eq!(status, 201, "{body}");
        let mut tokens = Vec::new();
        for (user, role) in [("acme/bob", "sender"), ("hmpps/alice", "recipient")] {
            let (status, body) = self.post(&admin, "/api/v1/users", json!({"user": user, "role": role})).await;
            assert_eq!(status, 201, "{body}");
            tokens.push(body["token"].as_str().expect("token").to_owned());
        }
        let (id, recipient) = keypair();
        let (status, body) = self.post(&tokens[1], "/api/v1/keys", json!({"recipient": recipient})).await;
        assert_eq!(status, 201, "{body}");
        (tokens[0].clone(), tokens[1].clone(), id)
    }

    async fn upload(&self, token: &str, body: Vec<u8>) -> (u16, Option<String>, Value) {
        let r = self
            .http
            .post(format!("{}/api/v1/transfers?to=hmpps/alice", self.url))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("send");
        let retry_after = r.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
        let (status, body) = status_json(r).await;
        (status, retry_after, body)
    }

    async fn redeem(&self, token: &str, link: &str, range: Option<&str>) -> (u16, Vec<u8>) {
        let mut request = self
            .http
            .post(format!("{}/api/v1/redeem", self.url))
            .bearer_auth(token)
            .json(&json!({"token": link_token(link)}));
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        let r = request.send().await.expect("send");
        (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
    }

    /// Files the gateway keeps on its own disk under `dir` of its data directory.
    fn files_in(&self, dir: &str) -> usize {
        count_files(&self.data_dir.path().join(dir))
    }
}

impl Gateway {
    /// `kill -9`; hands back the data directory.
    fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.data_dir, dir)
    }

    /// A tus request to `location`.
    fn tus(&self, method: reqwest::Method, token: &str, location: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{location}", self.url)).bearer_auth(token).header("Tus-Resumable", "1.0.0")
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
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

/// The bucket's keys, sorted.
async fn keys(garage: &Garage) -> Vec<String> {
    use futures_util::StreamExt as _;
    let store = garage.client();
    let mut keys: Vec<String> = object_store::ObjectStore::list(&store, None)
        .map(|meta| meta.expect("listing").location.to_string())
        .collect()
        .await;
    keys.sort();
    keys
}

#[tokio::test]
async fn transfers_go_up_into_garage_and_come_back_down_whole_and_by_ranges() {
    let garage = Garage::start();
    let gateway = Gateway::start(&garage);
    assert_eq!(
        gateway.probe("/readyz").await,
        (
            200,
            None,
            json!({"ready": true, "checks": {"database": "ok", "blobs": "ok", "log": "ok"}, "sequencer": true})
        )
    );
    let (bob, alice, identity) = gateway.parties().await;
    let recipient = identity.to_public().to_string();

    // One small enough for a single PUT, one that takes a multipart upload of three parts.
    let small = noise(100_000);
    let large = noise(20 << 20);
    let mut sent = Vec::new();
    for plaintext in [&small, &large] {
        let ciphertext = encrypt(&[&recipient], plaintext);
        let (status, _, body) = gateway.upload(&bob, ciphertext.clone()).await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().expect("id").to_owned();
        let link = body["links"][0]["url"].as_str().expect("link").to_owned();
        sent.push((id, link, ciphertext));
    }
    let mut wanted: Vec<String> = sent.iter().map(|(id, ..)| format!("{id}.age")).collect();
    wanted.push("sealpost-blob-store".to_owned());
    wanted.sort();
    assert_eq!(keys(&garage).await, wanted, "the blobs are in the bucket under their keys");
    let store = garage.client();
    for (id, _, ciphertext) in &sent {
        let stored = store.get(&format!("{id}.age").into()).await.expect("get").bytes().await.expect("bytes");
        assert!(stored == ciphertext.as_slice(), "{id}: the bucket holds the ciphertext byte for byte");
    }
    assert_eq!((gateway.files_in("blobs"), gateway.files_in("tmp")), (0, 0), "nothing stays on the gateway's disk");

    // The small one whole; the large one as a browser collects it: the header, then the rest.
    let (status, got) = gateway.redeem(&alice, &sent[0].1, None).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&identity, &got), small);
    let (status, header) = gateway.redeem(&alice, &sent[1].1, Some("bytes=0-63")).await;
    assert_eq!((status, header.as_slice()), (206, &sent[1].2[..64]));
    let (status, rest) = gateway.redeem(&alice, &sent[1].1, Some("bytes=64-")).await;
    assert_eq!(status, 206);
    assert!(rest == sent[1].2[64..], "the rest of the large blob comes back byte for byte");
    let (status, body) = gateway.redeem(&alice, &sent[1].1, None).await;
    assert_eq!(status, 410, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn a_store_that_stops_answering_makes_uploads_503_and_the_gateway_not_ready_until_it_is_back() {
    let mut garage = Garage::start();
    let gateway = Gateway::start(&garage);
    let (bob, alice, identity) = gateway.parties().await;
    let recipient = identity.to_public().to_string();
    let ciphertext = encrypt(&[&recipient], &noise(50_000));

    garage.kill();
    let (status, retry_after, body) = gateway.upload(&bob, ciphertext.clone()).await;
    assert_eq!((status, retry_after.as_deref(), code(&body)), (503, Some("2"), "service_unavailable"), "{body}");
    assert_eq!(
        gateway.probe("/readyz").await,
        (
            503,
            Some("5".to_owned()),
            json!({"ready": false, "checks": {"database": "ok", "blobs": "the blob store does not answer", "log": "ok"}, "sequencer": true})
        )
    );
    assert_eq!(gateway.probe("/healthz").await.0, 200, "alive all the same");
    assert_eq!(gateway.files_in("tmp"), 0, "the refused upload left nothing staged");

    garage.run_node();
    let deadline = Instant::now() + Duration::from_secs(30);
    while gateway.probe("/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "the gateway did not become ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _, body) = gateway.upload(&bob, ciphertext.clone()).await;
    assert_eq!(status, 201, "{body}");
    let (status, got) = gateway.redeem(&alice, body["links"][0]["url"].as_str().expect("link"), None).await;
    assert_eq!((status, got == ciphertext), (200, true));
}

#[tokio::test]
async fn a_resumable_upload_keeps_its_pieces_in_the_bucket_and_survives_the_gateway_being_killed() {
    use base64::Engine as _;
    let garage = Garage::start();
    let gateway = Gateway::start(&garage);
    let (bob, alice, identity) = gateway.parties().await;
    let ciphertext = encrypt(&[&identity.to_public().to_string()], &noise(12 << 20));
    let to = base64::engine::general_purpose::STANDARD.encode("hmpps/alice");
    let r = gateway
        .tus(reqwest::Method::POST, &bob, "/api/v1/uploads")
        .header("Upload-Length", ciphertext.len().to_string())
        .header("Upload-Metadata", format!("to {to}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 201);
    let location = r.headers()["location"].to_str().expect("ascii").to_owned();
    let id = location.rsplit('/').next().expect("an id").to_owned();
    let half = ciphertext.len() / 2;
    assert_eq!(gateway.patch(&bob, &location, 0, &ciphertext[..half]).await, 204);
    assert_eq!(
        keys(&garage).await,
        ["sealpost-blob-store".to_owned(), format!("uploads/{id}/{:020}", 0)],
        "the acknowledged bytes are a piece in the bucket"
    );
    assert_eq!((gateway.files_in("uploads"), gateway.files_in("tmp")), (0, 0), "and not on the gateway's disk");

    let gateway = Gateway::start_in(&garage, gateway.kill());
    let r = gateway.tus(reqwest::Method::HEAD, &bob, &location).send().await.expect("send");
    assert_eq!(r.headers()["upload-offset"], half.to_string().as_str());
    assert_eq!(gateway.patch(&bob, &location, half, &ciphertext[half..]).await, 204);
    assert_eq!(keys(&garage).await, [format!("{id}.age"), "sealpost-blob-store".to_owned()], "the pieces are gone");
    let r = gateway.tus(reqwest::Method::GET, &bob, &location).send().await.expect("send");
    let (status, answer) = status_json(r).await;
    assert_eq!(status, 200, "{answer}");
    let (status, got) = gateway.redeem(&alice, answer["links"][0]["url"].as_str().expect("link"), None).await;
    assert_eq!((status, got == ciphertext), (200, true));
}
