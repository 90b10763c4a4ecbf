//! The shared backends of a deployment of several gateways, as real processes on loopback: a
//! PostgreSQL 15 cluster of our own (Debian's server programs, run as the `postgres` user when we
//! are root, since PostgreSQL refuses to run as root) and a three-node Garage cluster made by
//! `scripts/garage-cluster.sh`. Each lives in a directory of its own, which dropping it stops and
//! removes (Garage keeps three copies of every blob: the disk is shared).
//!
//! PostgreSQL keeps its defaults, durable ones (`fsync`, `synchronous_commit`), as a deployment
//! would, unlike the integration tests' cluster; Garage runs as the script configures it
//! (replication factor 3, consistent mode, Garage's default of no fsync).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::measure::output;
use crate::setup::{free_port, is_root, which};

/// Debian's PostgreSQL 15 server programs (package `postgresql-15`).
pub(crate) const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser `initdb` makes; loopback connections need no password (`trust`).
const PG_USER: &str = "postgres";
/// The database the gateways use.
const PG_DATABASE: &str = "sealpost";

/// The directory of PostgreSQL 15's programs, if `initdb`, `pg_ctl`, `postgres` and `psql` are
/// there (and `runuser`, to run them as `postgres`, when we are root).
pub(crate) fn find_postgres() -> Option<PathBuf> {
    let bin = PathBuf::from(PG_BIN);
    let complete = ["initdb", "pg_ctl", "postgres", "psql"].iter().all(|p| bin.join(p).is_file());
    (complete && (!is_root() || which("runuser").is_some())).then_some(bin)
}

/// Garage, found as `scripts/garage-cluster.sh` finds it: `$GARAGE`, on PATH, or in
/// `~/.cargo/bin` (the script checks that it is 2.x).
pub(crate) fn find_garage() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GARAGE").map(PathBuf::from) {
        return path.is_file().then_some(path);
    }
    which("garage").or_else(|| {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        Some(home.join(".cargo/bin/garage")).filter(|p| p.is_file())
    })
}

/// A running PostgreSQL cluster with an empty database `sealpost`.
#[derive(Debug)]
pub(crate) struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Postgres {
    /// Makes a cluster in `dir` (new) and starts it on a free loopback port.
    pub(crate) fn start(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if is_root() {
            let uid: u32 = output(Command::new("id").args(["-u", PG_USER]))?.trim().parse()?;
            let gid: u32 = output(Command::new("id").args(["-g", PG_USER]))?.trim().parse()?;
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        }
        let mut pg = Self { bin: bin.to_owned(), dir: dir.to_owned(), port: 0 };
        let data = pg.data();
        pg.server("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"])
            .output()
            .map_err(anyhow::Error::from)
            .and_then(|o| check(&o, "initdb"))
            .with_context(|| {
                format!(
                    "cannot make a PostgreSQL cluster in {} (initdb runs as `{PG_USER}`, who must be able to enter every directory above it)",
                    dir.display()
                )
            })?;
        pg.port = free_port()?;
        let settings = format!(
            "\n# sealpost benchmark (benches/gateway/cluster.rs): loopback only, otherwise the defaults\n\
             listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n",
            pg.port,
            dir.display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str(&settings);
        std::fs::write(&conf, text)?;
        let log = dir.join("postgres.log");
        let out =
            pg.server("pg_ctl").arg("-D").arg(&data).arg("-l").arg(&log).args(["-w", "-t", "60", "start"]).output()?;
        if !out.status.success() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("PostgreSQL did not start: {}\n{tail}", String::from_utf8_lossy(&out.stderr).trim());
        }
        output(
            Command::new(bin.join("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", PG_USER])
                .args(["-p", &pg.port.to_string(), "-d", "postgres", "-c"])
                .arg(format!("CREATE DATABASE {PG_DATABASE}")),
        )?;
        Ok(pg)
    }

    /// The gateways' `--database-url`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{PG_DATABASE}", self.port)
    }

    /// The postmaster's process id (its first line of `postmaster.pid`); the server's other
    /// processes are its children.
    pub(crate) fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server program, run as `postgres` when we are root, from the cluster's directory.
    fn server(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.current_dir(&self.dir);
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ =
            self.server("pg_ctl").arg("-D").arg(self.data()).args(["stop", "-m", "fast", "-w", "-t", "60"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running three-node Garage cluster with one bucket and a key that may use it.
#[derive(Debug)]
pub(crate) struct Garage {
    garage: PathBuf,
    dir: PathBuf,
    /// DIR/env: the `AWS_*` variables, `SEALPOST_BLOB_STORE`, each node's endpoints.
    env: BTreeMap<String, String>,
}

impl Garage {
    /// Starts the cluster in `dir` (new) with `scripts/garage-cluster.sh start`.
    pub(crate) fn start(garage: &Path, dir: &Path) -> anyhow::Result<Self> {
        let mut cluster = Self { garage: garage.to_owned(), dir: dir.to_owned(), env: BTreeMap::new() };
        cluster.script("start")?;
        let text = std::fs::read_to_string(dir.join("env")).context("the Garage script wrote no DIR/env")?;
        cluster.env = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(cluster)
    }

    /// What a gateway needs to use the bucket: the `AWS_*` variables and `SEALPOST_BLOB_STORE`.
    pub(crate) fn gateway_env(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter(|(k, _)| k.starts_with("AWS_") || *k == "SEALPOST_BLOB_STORE")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The three nodes' process ids.
    pub(crate) fn pids(&self) -> Vec<u32> {
        (1..=3)
            .filter_map(|n| {
                std::fs::read_to_string(self.dir.join(format!("node{n}/garage.pid"))).ok()?.trim().parse().ok()
            })
            .collect()
    }

    fn script(&self, command: &str) -> anyhow::Result<String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/garage-cluster.sh");
        output(Command::new("bash").arg(script).arg(command).arg(&self.dir).env("GARAGE", &self.garage))
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.script("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new Ed25519 signing key for a deployment's gateways to share, written by `sealpost keygen
/// --signing` (PKCS#8 PEM, mode 0600: what `openssl genpkey -algorithm ed25519` writes).
pub(crate) fn signing_key(path: &Path) -> anyhow::Result<()> {
    output(Command::new(crate::setup::SEALPOST).args(["keygen", "--signing", "-o"]).arg(path)).map(drop)
}

fn check(out: &std::process::Output, what: &str) -> anyhow::Result<()> {
    if out.status.success() {
        Ok(())
    } else {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim())
    }
}
