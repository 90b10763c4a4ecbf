//! What the benchmark runs against: the reference tools (found or installed), the gateway and
//! nginx as real processes on loopback, the accounts, and the test files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret as _;
use anyhow::{Context as _, bail};
use rand::{RngCore as _, SeedableRng as _};

use crate::measure::output;

/// The release binary cargo built for this benchmark.
pub(crate) const SEALPOST: &str = env!("CARGO_BIN_EXE_sealpost");

/// A reference tool: found on PATH, installed, or missing (and why).
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) nginx: Option<PathBuf>,
    pub(crate) age: Option<PathBuf>,
    pub(crate) curl: Option<PathBuf>,
    /// Debian's PostgreSQL 15 server programs (their directory), for the backends comparison.
    pub(crate) postgres: Option<PathBuf>,
    /// Garage 2.x, for the backends comparison.
    pub(crate) garage: Option<PathBuf>,
    /// What could not be found or installed, for the report.
    pub(crate) missing: Vec<String>,
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let extra = [PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")];
    std::env::split_paths(&path).chain(extra).map(|d| d.join(name)).find(|p| p.is_file())
}

impl Tools {
    /// Finds nginx, age and curl; installs the missing ones from Debian's packages when allowed
    /// (root and `apt-get` present), otherwise lists them as missing.
    pub(crate) fn find(may_install: bool) -> Self {
        let wanted = [("nginx", "nginx"), ("age", "age"), ("curl", "curl")];
        let absent: Vec<&str> = wanted.iter().filter(|(bin, _)| which(bin).is_none()).map(|(_, pkg)| *pkg).collect();
        if !absent.is_empty() && may_install && which("apt-get").is_some() && is_root() {
            eprintln!("bench: installing {} with apt-get", absent.join(", "));
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(&absent)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status();
        }
        let mut missing = Vec::new();
        let mut find = |bin: &str| {
            let found = which(bin);
            if found.is_none() {
                missing.push(format!("`{bin}` (Debian package `{bin}`: `apt-get install -y {bin}`)"));
            }
            found
        };
        let (nginx, age, curl) = (find("nginx"), find("age"), find("curl"));
        let postgres = crate::cluster::find_postgres();
        if postgres.is_none() {
            missing.push(format!(
                "PostgreSQL 15 (`{}/initdb`, `pg_ctl` and `psql`{}: `apt-get install -y postgresql-15`)",
                crate::cluster::PG_BIN,
                if is_root() { ", and `runuser`" } else { "" }
            ));
        }
        let garage = crate::cluster::find_garage();
        if garage.is_none() {
            missing.push("`garage` 2.x (`cargo install garage --locked`, about 12 minutes)".to_owned());
        }
        Self { nginx, age, curl, postgres, garage, missing }
    }
}

pub(crate) fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something listens on `port` (both servers bind only when ready to serve).
fn wait_ready(port: u16, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited during start-up ({status})");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on port {port} within 30 s")
}

/// Where a gateway keeps its metadata and ciphertext, and what it shares with other gateways.
#[derive(Debug, Clone, Default)]
pub(crate) struct Backend {
    /// `--database-url` (default: SQLite in the data directory).
    pub(crate) database_url: Option<String>,
    /// Environment for the blob store (`SEALPOST_BLOB_STORE=s3://…` and the `AWS_*` variables;
    /// default: a directory in the data directory).
    pub(crate) env: Vec<(String, String)>,
    /// `SEALPOST_SIGNING_KEY_FILE`: the key every gateway of one deployment signs with.
    pub(crate) signing_key: Option<PathBuf>,
}

impl Backend {
    /// Whether gateways over this backend share their state (it is not the embedded default).
    fn shared(&self) -> bool {
        self.database_url.is_some()
    }
}

/// The recipient's age identity file and public key, when a gateway should register an existing
/// one (so that a file encrypted once can go through several gateways).
#[derive(Debug, Clone)]
pub(crate) struct Recipient {
    pub(crate) identity: PathBuf,
    pub(crate) public_key: String,
}

/// The gateway, running as its own process (so its memory is its own), with a sender and a
/// recipient who has registered a key.
#[derive(Debug)]
pub(crate) struct Gateway {
    child: Child,
    pub(crate) url: String,
    /// The address links are built from (the same for every gateway of a deployment).
    public_url: String,
    pub(crate) sender: String,
    pub(crate) recipient: String,
    /// The recipient's age identity file and public key.
    pub(crate) identity: PathBuf,
    pub(crate) public_key: String,
    pub(crate) log_key: String,
}

impl Gateway {
    /// A gateway on the embedded default (SQLite and a local directory) in `dir`, with a new
    /// recipient key.
    pub(crate) fn start(dir: &Path, rt: &tokio::runtime::Runtime) -> anyhow::Result<Self> {
        Self::start_with(dir, rt, &Backend::default(), None)
    }

    /// A gateway over `backend` whose database is new: it makes the administrator, and through
    /// it the organisations, the route, the sender and the recipient (with `recipient`'s key, or
    /// a new one).
    pub(crate) fn start_with(
        dir: &Path,
        rt: &tokio::runtime::Runtime,
        backend: &Backend,
        recipient: Option<&Recipient>,
    ) -> anyhow::Result<Self> {
        let data = dir.join("sealpost-data");
        let (child, url, public_url) = spawn(dir, rt, backend, None)?;
        let admin = std::fs::read_to_string(data.join("admin.token"))
            .with_context(|| format!("no admin token in {}", data.display()))?
            .trim()
            .to_owned();
        let cli = |token: &str, args: &[&str]| {
            output(Command::new(SEALPOST).args(args).env("SEALPOST_URL", &url).env("SEALPOST_TOKEN", token))
                .map(|s| s.trim().to_owned())
        };
        cli(&admin, &["admin", "org", "add", "acme", "--kind", "contractor"])?;
        cli(&admin, &["admin", "org", "add", "hmpps", "--kind", "agency"])?;
        cli(&admin, &["admin", "route", "add", "acme", "hmpps"])?;
        let sender = cli(&admin, &["admin", "user", "add", "acme/bob", "--role", "sender"])?;
        let recipient_token = cli(&admin, &["admin", "user", "add", "hmpps/alice", "--role", "recipient"])?;
        let Recipient { identity, public_key } = match recipient {
            Some(r) => r.clone(),
            None => new_recipient(dir)?,
        };
        cli(&recipient_token, &["keys", "add", &public_key])?;
        let log_key = log_key(rt, &url)?;
        Ok(Self { child, url, public_url, sender, recipient: recipient_token, identity, public_key, log_key })
    }

    /// Another gateway of `first`'s deployment (same `backend`, public URL and accounts), in
    /// `dir`: as a load balancer's second upstream would be. Fails unless it signs the log with
    /// `first`'s key.
    pub(crate) fn join(
        dir: &Path,
        rt: &tokio::runtime::Runtime,
        backend: &Backend,
        first: &Self,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(backend.shared(), "a gateway can only join one over a shared database");
        let (child, url, public_url) = spawn(dir, rt, backend, Some(&first.public_url))?;
        let log_key = log_key(rt, &url)?;
        anyhow::ensure!(log_key == first.log_key, "the second gateway signs with another key than the first");
        Ok(Self {
            child,
            url,
            public_url,
            sender: first.sender.clone(),
            recipient: first.recipient.clone(),
            identity: first.identity.clone(),
            public_key: first.public_key.clone(),
            log_key,
        })
    }

    /// The recipient's key, to register on another deployment.
    pub(crate) fn recipient_key(&self) -> Recipient {
        Recipient { identity: self.identity.clone(), public_key: self.public_key.clone() }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `sealpost` client command with the gateway, a token and the pinned log key set.
    pub(crate) fn client(&self, token: &str) -> Command {
        let mut cmd = Command::new(SEALPOST);
        cmd.env("SEALPOST_URL", &self.url)
            .env("SEALPOST_TOKEN", token)
            .env("SEALPOST_LOG_KEY", &self.log_key)
            .env_remove("SEALPOST_PROFILE")
            .env("XDG_CONFIG_HOME", "/nonexistent");
        cmd
    }

    pub(crate) fn upload_url(&self) -> String {
        format!("{}/api/v1/transfers?to=hmpps/alice", self.url)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sealpost serve` over `backend` with its data in `dir`, and waits until it is ready
/// (`/readyz`: its database, blob store and log are usable). Links name `public_url`, or the
/// gateway's own address. Returns the process, its URL and its public URL.
fn spawn(
    dir: &Path,
    rt: &tokio::runtime::Runtime,
    backend: &Backend,
    public_url: Option<&str>,
) -> anyhow::Result<(Child, String, String)> {
    std::fs::create_dir_all(dir)?;
    let data = dir.join("sealpost-data");
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let public_url = public_url.unwrap_or(&url).to_owned();
    let log = std::fs::File::create(dir.join("sealpost.log"))?;
    let mut command = Command::new(SEALPOST);
    command
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--max-upload-size", "16GiB"])
        .env("RUST_LOG", "warn")
        .env_remove("SEALPOST_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if backend.shared() {
        command.env("SEALPOST_PUBLIC_URL", &public_url);
    }
    if let Some(database) = &backend.database_url {
        command.args(["--database-url", database]);
    }
    if let Some(key) = &backend.signing_key {
        command.env("SEALPOST_SIGNING_KEY_FILE", key);
    }
    command.envs(backend.env.iter().map(|(k, v)| (k, v)));
    let mut child = command.spawn().context("cannot start `sealpost serve`")?;
    wait_ready(port, &mut child, "sealpost serve")?;
    let ready = rt.block_on(async {
        for _ in 0..600 {
            match reqwest::get(format!("{url}/readyz")).await {
                Ok(r) if r.status().is_success() => return true,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        false
    });
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        bail!("sealpost serve never reported ready at {url}/readyz (its log: {})", dir.join("sealpost.log").display());
    }
    Ok((child, url, public_url))
}

/// A new age identity for the recipient, written to `dir/alice.key`.
fn new_recipient(dir: &Path) -> anyhow::Result<Recipient> {
    let id = age::x25519::Identity::generate();
    let public_key = id.to_public().to_string();
    let identity = dir.join("alice.key");
    let mut f = std::fs::File::create(&identity)?;
    writeln!(f, "# public key: {public_key}\n{}", id.to_string().expose_secret())?;
    Ok(Recipient { identity, public_key })
}

/// The log's public key, as the gateway at `url` publishes it.
fn log_key(rt: &tokio::runtime::Runtime, url: &str) -> anyhow::Result<String> {
    Ok(rt
        .block_on(async { reqwest::get(format!("{url}/log/key")).await?.error_for_status()?.text().await })?
        .trim()
        .to_owned())
}

/// nginx serving a directory with WebDAV PUT, on the same disk as the gateway's data.
#[derive(Debug)]
pub(crate) struct Nginx {
    child: Child,
    pub(crate) url: String,
    pub(crate) root: PathBuf,
}

impl Nginx {
    pub(crate) fn start(binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let prefix = dir.join("nginx");
        let root = prefix.join("dav");
        for d in ["dav", "body", "logs"] {
            std::fs::create_dir_all(prefix.join(d))?;
        }
        let port = free_port()?;
        // As root, nginx's workers would switch to `nobody` and could not write here.
        let user = if is_root() { "user root root;" } else { "" };
        let conf = format!(
            "{user}
worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_max_body_size 0;
    client_body_temp_path {prefix}/body;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ dav_methods PUT DELETE; create_full_put_path on; }}
    }}
}}
",
            prefix = prefix.display(),
            root = root.display(),
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(&prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nginx")?;
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(port, &mut child, "nginx")?;
        Ok(Self { child, url, root })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `size` random bytes to `path` (incompressible, like an encrypted extract would be).
pub(crate) fn random_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64))?;
        rng.fill_bytes(&mut buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Encrypts `plain` to `recipient` with the age crate, streaming, into `out`.
pub(crate) fn encrypt_file(plain: &Path, recipient: &str, out: &Path) -> anyhow::Result<()> {
    let recipient: age::x25519::Recipient = recipient.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))?;
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut writer = encryptor.wrap_output(file)?;
    std::io::copy(&mut std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(plain)?), &mut writer)?;
    writer.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Encrypts bytes in memory.
pub(crate) fn encrypt_bytes(plain: &[u8], recipient: &str) -> anyhow::Result<Vec<u8>> {
    let recipient: age::x25519::Recipient = recipient.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(age::encrypt(&recipient, plain)?)
}

/// A line describing this machine, for the report.
pub(crate) fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |k| k / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cores} cores, {mem_gib:.0} GiB RAM, Linux {}", kernel.trim())
}

/// The versions of what ran, for the report.
pub(crate) fn versions(tools: &Tools) -> Vec<String> {
    let mut v = vec![format!("sealpost {}", env!("CARGO_PKG_VERSION"))];
    if let Some(nginx) = &tools.nginx {
        // nginx prints its version on standard error.
        if let Ok(out) = Command::new(nginx).arg("-v").output() {
            v.push(String::from_utf8_lossy(&out.stderr).trim().replace("nginx version: ", ""));
        }
    }
    if let Some(age) = &tools.age
        && let Ok(out) = output(Command::new(age).arg("--version"))
    {
        v.push(format!("age {}", out.trim()));
    }
    if let Some(curl) = &tools.curl
        && let Ok(out) = output(Command::new(curl).arg("--version"))
    {
        v.push(out.lines().next().unwrap_or_default().split(" (").next().unwrap_or_default().to_owned());
    }
    if let Some(bin) = &tools.postgres
        && let Ok(out) = output(Command::new(bin.join("postgres")).arg("--version"))
    {
        // `postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)`
        v.push(
            out.trim().replace("postgres (PostgreSQL)", "PostgreSQL").split(" (").next().unwrap_or_default().to_owned(),
        );
    }
    if let Some(garage) = &tools.garage
        && let Ok(out) = output(Command::new(garage).arg("--version"))
    {
        // `garage cargo:2.5.0 [features: …]`
        v.push(out.split(" [").next().unwrap_or_default().trim().replace("cargo:", ""));
    }
    v
}
