//! Test harness: the real gateway on 127.0.0.1:0 with a temporary data directory, spoken to
//! over HTTP; and the real backends a deployment of several gateways uses, each in a temporary
//! directory: PostgreSQL ([`postgres`]) and a three-node Garage S3 cluster ([`garage`]).

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use age::secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use sealpost::config::{Config, DatabaseUrl};
use sealpost::gateway::{Gateway, Startup};

pub(crate) mod deployment;
pub(crate) mod garage;
pub(crate) mod notify;
pub(crate) mod postgres;
mod watchdog;

/// A running gateway.
pub(crate) struct TestServer {
    pub(crate) url: String,
    pub(crate) admin: String,
    pub(crate) data_dir: PathBuf,
    /// The database's URL (SQLite in the data directory, or PostgreSQL in the PostgreSQL pass).
    pub(crate) database: String,
    pub(crate) startup: Startup,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A connection to this gateway's database, for tests that play an intruder with access to it.
    pub(crate) async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database).await.expect("connect to the gateway's database")
    }

    /// Starts a gateway with default settings in a fresh temporary directory.
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a gateway in a fresh temporary directory, adjusting the configuration first.
    pub(crate) async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = Self::start_in(dir.path(), adjust).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a gateway on an existing data directory (for restarts).
    pub(crate) async fn start_in(data_dir: &Path, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config { data_dir: data_dir.to_owned(), ..Config::default() };
        adjust(&mut config);
        if config.database_url.is_none() && postgres_pass() {
            config.database_url = Some(DatabaseUrl::Postgres(database_for(data_dir)));
        }
        let database = config.database().url();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (gateway, startup) = Gateway::open(config, url.clone()).await.expect("gateway opens");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sealpost::server::run(listener, gateway, async move {
            let _ = stopped.await;
        }));
        if database.starts_with("postgres") {
            assert!(!data_dir.join("sealpost.db").exists(), "a gateway on PostgreSQL made a SQLite file");
        }
        let admin = std::fs::read_to_string(data_dir.join("admin.token")).expect("admin token").trim().to_owned();
        Self {
            url,
            admin,
            data_dir: data_dir.to_owned(),
            database,
            startup,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            _dir: None,
        }
    }

    /// Stops the gateway gracefully and waits for it.
    pub(crate) async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
        self._dir.take()
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.expect("send");
        status_json(r).await
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r =
            self.http.post(format!("{}{path}", self.url)).bearer_auth(token).json(&body).send().await.expect("send");
        status_json(r).await
    }

    pub(crate) async fn http_put(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.put(format!("{}{path}", self.url)).bearer_auth(token).json(&body).send().await.expect("send");
        status_json(r).await
    }

    pub(crate) async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.http.delete(format!("{}{path}", self.url)).bearer_auth(token).send().await.expect("send");
        status_json(r).await
    }

    /// Creates an organisation as admin.
    pub(crate) async fn org(&self, name: &str, kind: &str) {
        let (status, body) = self.post(&self.admin, "/api/v1/orgs", json!({"name": name, "kind": kind})).await;
        assert_eq!(status, 201, "{body}");
    }

    /// Lets `from` send to `to`, as admin.
    pub(crate) async fn route(&self, from: &str, to: &str) {
        let (status, body) = self.post(&self.admin, "/api/v1/routes", json!({"from": from, "to": to})).await;
        assert_eq!(status, 201, "{body}");
    }

    /// Creates a user as admin and returns its token.
    pub(crate) async fn user(&self, user: &str, role: &str) -> String {
        let (status, body) = self.post(&self.admin, "/api/v1/users", json!({"user": user, "role": role})).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Registers a key for the token's user.
    pub(crate) async fn add_key(&self, token: &str, recipient: &str) {
        let (status, body) = self.post(token, "/api/v1/keys", json!({"recipient": recipient})).await;
        assert_eq!(status, 201, "{body}");
    }

    /// Uploads `body` to `to` with extra query parameters.
    pub(crate) async fn upload(&self, token: &str, to: &[&str], extra: &str, body: Vec<u8>) -> (u16, Value) {
        self.upload_with(token, to, extra, &[], body).await
    }

    /// Uploads `body` to `to` with extra query parameters and extra headers.
    pub(crate) async fn upload_with(
        &self,
        token: &str,
        to: &[&str],
        extra: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let query: Vec<String> = to.iter().map(|t| format!("to={t}")).collect();
        let url = format!("{}/api/v1/transfers?{}{extra}", self.url, query.join("&"));
        let mut request = self.http.post(url).bearer_auth(token).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        status_json(request.send().await.expect("send")).await
    }

    /// Uploads `body` to `to` as the token's user, signed with `signer` (that user's key): the
    /// classification and expiry (in seconds) are sent explicitly, as signed.
    pub(crate) async fn upload_signed(
        &self,
        token: &str,
        signer: &Signer,
        to: &[&str],
        classification: &str,
        expires: u64,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let text = manifest(&signer.owner, &body, classification, expires, to);
        let extra = format!("&classification={classification}&expires={expires}s");
        self.upload_with(token, to, &extra, &signer.headers(&text), body).await
    }

    /// Makes an Ed25519 signing key and registers it for the token's user.
    pub(crate) async fn signing_key(&self, token: &str) -> Signer {
        let (status, me) = self.get(token, "/api/v1/whoami").await;
        assert_eq!(status, 200, "{me}");
        let signer = Signer { owner: me["user"].as_str().expect("user").to_owned(), ..Signer::generate() };
        self.add_key(token, &signer.public).await;
        signer
    }

    /// Redeems a link token; returns the status and the raw body.
    pub(crate) async fn redeem(&self, token: &str, link: &str) -> (u16, Vec<u8>) {
        let r = self
            .http
            .post(format!("{}/api/v1/redeem", self.url))
            .bearer_auth(token)
            .json(&json!({"token": link_token(link)}))
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        (status, r.bytes().await.expect("body").to_vec())
    }

    /// Every audit event name, in order.
    pub(crate) async fn events(&self) -> Vec<String> {
        let (status, body) = self.get(&self.admin, "/api/v1/audit?limit=1000").await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().expect("events").iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect()
    }

    /// The audit entries of `event`, in order.
    pub(crate) async fn entries(&self, event: &str) -> Vec<String> {
        let (status, body) = self.get(&self.admin, "/api/v1/audit?limit=1000").await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().expect("events");
        events.iter().filter(|e| e["event"] == event).map(|e| e["entry"].as_str().unwrap().to_owned()).collect()
    }

    /// The `code` of every `download.failed` audit entry, in order.
    pub(crate) async fn failure_codes(&self) -> Vec<String> {
        values(&self.entries("download.failed").await, "code")
    }

    /// Files under the blob and staging directories.
    pub(crate) fn stored_files(&self) -> (usize, usize) {
        let count = |d: &str| std::fs::read_dir(self.data_dir.join(d)).map(|r| r.count()).unwrap_or(0);
        (count("blobs"), count("tmp"))
    }
}

pub(crate) async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The token part of a link (`…/d#TOKEN`).
pub(crate) fn link_token(link: &str) -> &str {
    link.rsplit_once('#').map_or(link, |(_, t)| t)
}

/// The error code of an error answer.
pub(crate) fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A fresh X25519 identity and its recipient string.
pub(crate) fn keypair() -> (age::x25519::Identity, String) {
    let id = age::x25519::Identity::generate();
    let r = id.to_public().to_string();
    (id, r)
}

/// Encrypts with the age crate to the given recipients.
pub(crate) fn encrypt(recipients: &[&str], plaintext: &[u8]) -> Vec<u8> {
    let rs: Vec<age::x25519::Recipient> =
        recipients.iter().map(|r| age::x25519::Recipient::from_str(r).expect("recipient")).collect();
    let encryptor = age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient)).expect("recipients");
    let mut out = Vec::new();
    let mut w = encryptor.wrap_output(&mut out).expect("wrap");
    w.write_all(plaintext).expect("write");
    w.finish().expect("finish");
    out
}

/// Armours an age file as `age -a` does: 64-column base64 lines between the begin and end lines.
pub(crate) fn armour(binary: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::prelude::BASE64_STANDARD.encode(binary);
    let mut out = b"-----BEGIN AGE ENCRYPTED FILE-----\n".to_vec();
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END AGE ENCRYPTED FILE-----\n");
    out
}

/// Decrypts with the age crate.
pub(crate) fn decrypt(identity: &age::x25519::Identity, ciphertext: &[u8]) -> Vec<u8> {
    age::decrypt(identity, ciphertext).expect("decrypts")
}

/// The identity file text for `age -d -i`.
pub(crate) fn identity_file(identity: &age::x25519::Identity) -> String {
    format!("{}\n", identity.to_string().expose_secret())
}

/// Sets up `acme` (contractor) with sender `acme/bob`, and `hmpps` (agency) with recipient
/// `hmpps/alice` holding one key, and a route from `acme` to `hmpps`. Returns (sender token, recipient token, recipient identity).
pub(crate) async fn parties(server: &TestServer) -> (String, String, age::x25519::Identity) {
    server.org("acme", "contractor").await;
    server.org("hmpps", "agency").await;
    server.route("acme", "hmpps").await;
    let bob = server.user("acme/bob", "sender").await;
    let alice = server.user("hmpps/alice", "recipient").await;
    let (id, r) = keypair();
    server.add_key(&alice, &r).await;
    (bob, alice, id)
}

/// A user's Ed25519 signing key (a `sealpost-signing1…` key), to sign upload manifests.
pub(crate) struct Signer {
    /// Whose it is, `ORG/NAME` (empty for a key registered nowhere).
    pub(crate) owner: String,
    pub(crate) key: ed25519_dalek::SigningKey,
    /// The public key string, as the directory holds it.
    pub(crate) public: String,
    /// Its fingerprint, `sha256:…`, as the wire names it.
    pub(crate) fingerprint: String,
}

impl Signer {
    /// A fresh key (not registered anywhere).
    pub(crate) fn generate() -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let public = sealpost::client::keys::signing_public(&key.verifying_key());
        let fingerprint = sealpost::directory::fingerprint(&public);
        Self { owner: String::new(), key, public, fingerprint }
    }

    /// Standard base64 of the signature over `text`'s bytes.
    pub(crate) fn sign(&self, text: &str) -> String {
        use base64::Engine as _;
        use ed25519_dalek::Signer as _;
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(text.as_bytes()).to_bytes())
    }

    /// The one-shot upload's three `Sealpost-Manifest` headers for the manifest `text`.
    pub(crate) fn headers(&self, text: &str) -> Vec<(&'static str, String)> {
        use base64::Engine as _;
        vec![
            ("Sealpost-Manifest", base64::engine::general_purpose::STANDARD.encode(text)),
            ("Sealpost-Manifest-Signature", self.sign(text)),
            ("Sealpost-Manifest-Key", self.fingerprint.clone()),
        ]
    }

    /// Writes the key as `sealpost keygen --signing` does (PKCS#8 PEM), for `sealpost send
    /// --signing-key`.
    pub(crate) fn write(&self, path: &Path) {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let pem = self.key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).expect("pem");
        std::fs::write(path, pem.as_bytes()).expect("write the signing key");
    }
}

/// The `sealpost.manifest/v2` text of an upload of `body` from `sender` to `to`.
pub(crate) fn manifest(sender: &str, body: &[u8], classification: &str, expires: u64, to: &[&str]) -> String {
    sealpost::manifest::ManifestV2::new(
        sender.parse().expect("sender"),
        sealpost::wire::Digest::of(body),
        classification.parse().expect("classification"),
        expires,
        to.iter().map(|t| t.parse().expect("recipient")),
    )
    .render()
}

/// Random bytes (not cryptographic; for plaintexts).
pub(crate) fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Set to `1`, lets an interop test whose external tool is missing pass without checking
/// anything. For a developer's machine only: CI never sets it.
pub(crate) const ALLOW_MISSING_TOOLS: &str = "SEALPOST_TEST_ALLOW_MISSING_TOOLS";

/// The path of `tool` (the Go `age` CLI, curl, a compressor) on `PATH`, for a test that runs it.
///
/// A missing tool fails the test with the package to install, unless [`ALLOW_MISSING_TOOLS`] is
/// `1`: then it writes a note straight to stderr (past the test harness's capture, so it shows
/// even when the test passes) and answers `None`, and the test returns.
#[track_caller]
pub(crate) fn require_tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|path| is_executable(path));
    if found.is_some() {
        return found;
    }
    let install = match tool {
        "age-keygen" => "apt-get install -y age".to_owned(),
        "xz" => "apt-get install -y xz-utils".to_owned(),
        "garage" => "cargo install garage --locked".to_owned(),
        "kill" => "apt-get install -y procps".to_owned(),
        other => format!("apt-get install -y {other}"),
    };
    missing_tool(&format!("`{tool}` is not on PATH"), &install)
}

/// Node.js and `web/test/age-tool.mjs`, the `age-encryption` npm package (the browser pages'
/// library) as a command, for a test that runs it; either missing, or the package not installed
/// in `web/`, fails the test as [`require_tool`] does.
#[track_caller]
pub(crate) fn require_age_npm() -> Option<(PathBuf, PathBuf)> {
    let node = require_tool("node")?;
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    if !web.join("node_modules/age-encryption/package.json").is_file() {
        missing_tool("the `age-encryption` npm package is not installed in `web/`", "cd web && npm ci")?;
    }
    Some((node, web.join("test/age-tool.mjs")))
}

/// The executable at `path` (a program outside `PATH`, such as PostgreSQL's `initdb`), for a test
/// that runs it; missing, it fails the test naming `install`, as [`require_tool`] does.
#[track_caller]
pub(crate) fn require_program(path: &str, install: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    if is_executable(&path) {
        return Some(path);
    }
    missing_tool(&format!("`{}` does not exist", path.display()), &format!("apt-get install -y {install}"))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Fails the test for a missing tool, or with [`ALLOW_MISSING_TOOLS`] notes it and answers `None`.
#[track_caller]
fn missing_tool(what: &str, install: &str) -> Option<PathBuf> {
    if std::env::var(ALLOW_MISSING_TOOLS).is_ok_and(|v| v == "1") {
        let test = std::thread::current().name().unwrap_or("this interop test").to_owned();
        let _ = writeln!(
            std::io::stderr(),
            "\n*** NOT TESTED: {test}: {what} and {ALLOW_MISSING_TOOLS}=1, so it checks nothing (install it \
             with `{install}`) ***\n"
        );
        return None;
    }
    panic!(
        "{what}, and this test needs it: install it with `{install}` (or set {ALLOW_MISSING_TOOLS}=1 to let the \
         test pass without checking anything)"
    );
}

/// Asserts that a `sealpost` run exited with `code`, showing both its streams if not.
pub(crate) fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of `key` in each audit entry (empty where it has none).
pub(crate) fn values(entries: &[String], key: &str) -> Vec<String> {
    let prefix = format!("{key} ");
    entries
        .iter()
        .map(|entry| entry.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_default().to_owned())
        .collect()
}

/// True in the PostgreSQL pass (`SEALPOST_TEST_DATABASE=postgres`): every test gateway then runs
/// on a database of its own in one real PostgreSQL cluster instead of SQLite.
pub(crate) fn postgres_pass() -> bool {
    std::env::var("SEALPOST_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// The PostgreSQL database of the gateway whose data directory is `data_dir` (made on first use,
/// the same one again when the gateway restarts on that directory).
/// The database URL of the pass for a gateway whose data directory is `data_dir`: the SQLite file
/// in it, or in the PostgreSQL pass a database of its own (the same one for every call).
pub(crate) fn database_url(data_dir: &Path) -> String {
    if postgres_pass() { database_for(data_dir) } else { sealpost::store::sqlite_url(&data_dir.join("sealpost.db")) }
}

pub(crate) fn database_for(data_dir: &Path) -> String {
    static DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut known = DATABASES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, url)) = known.iter().find(|(dir, _)| dir == data_dir) {
        return url.clone();
    }
    let pg = postgres::PgCluster::shared().expect("PostgreSQL 15 for the PostgreSQL pass");
    let url = pg.new_database(&format!("pass_{}", known.len()));
    known.push((data_dir.to_owned(), url.clone()));
    url
}

/// Starts the real `sealpost serve` from `command` (its arguments and environment set by the
/// caller; listening on `127.0.0.1:0`, `--log-format human`) and waits until it listens: the
/// child and its base URL. Its log keeps draining so that logging never blocks.
pub(crate) fn serve_process(mut command: std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = command
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("SEALPOST_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sealpost starts");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let bound = loop {
        let Some(Ok(line)) = lines.next() else { panic!("sealpost stopped before listening:\n{}", seen.join("\n")) };
        if line.contains("sealpost is listening") {
            let bound = line.split_whitespace().find_map(|w| w.strip_prefix("bound=")).expect("bound=");
            break bound.to_owned();
        }
        seen.push(line);
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://{bound}"))
}

/// Runs `program` with `stdin`; asserts it succeeded and answers its standard output.
pub(crate) fn run_with_stdin(program: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{} {args:?}: {}", program.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Runs the sealpost binary for `token` against `server` with no profile, no identity, log key
/// or signing key from the environment, and the server's own client state; `keygen` talks to no
/// gateway and takes neither URL nor token.
pub(crate) async fn sealpost_cli(server: &TestServer, token: &str, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sealpost"));
    command.args(args);
    if args.first() != Some(&"keygen") {
        command.args(["--url", &server.url, "--token", token]);
    }
    command
        .env_remove("SEALPOST_IDENTITY")
        .env_remove("SEALPOST_LOG_KEY")
        .env_remove("SEALPOST_SIGNING_KEY")
        .env("SEALPOST_CONFIG_FILE", "/nonexistent/sealpost-config.toml")
        .env("SEALPOST_STATE_DIR", server.data_dir.join("client-state"));
    tokio::task::spawn_blocking(move || command.output().expect("runs")).await.unwrap()
}

/// A run's standard output and standard error, as text.
pub(crate) fn output_text(o: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// acme/bob (sender) and hmpps/alice and hmpps/carol (recipients, no keys), with a route.
pub(crate) async fn three_parties(server: &TestServer) -> (String, String, String) {
    server.org("acme", "contractor").await;
    server.org("hmpps", "agency").await;
    server.route("acme", "hmpps").await;
    let bob = server.user("acme/bob", "sender").await;
    let alice = server.user("hmpps/alice", "recipient").await;
    let carol = server.user("hmpps/carol", "recipient").await;
    (bob, alice, carol)
}
