//! A real PostgreSQL 15 for tests: Debian's server binaries in a temporary directory, listening
//! on a free 127.0.0.1 port with `trust` authentication. PostgreSQL refuses to run as root, and
//! the tests run as root in CI, so the server runs as the `postgres` user (through `runuser`).
//!
//! [`PgCluster::start`] gives a test a cluster of its own, to stop and start again;
//! [`PgCluster::shared`] is one cluster for the whole test process, in which each test takes a
//! database of its own with [`PgCluster::new_database`], and which no test stops.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;

use super::{require_program, require_tool, watchdog};

/// Debian's PostgreSQL 15 server programs (package `postgresql-15`).
const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser `initdb` makes; local TCP connections need no password (`trust`).
const SUPERUSER: &str = "postgres";
/// The database made at start, which [`PgCluster::url`] names.
const DATABASE: &str = "sealpost";
/// How often a start on a port taken meanwhile by someone else is tried again on another.
const PORT_TRIES: usize = 5;

/// A running PostgreSQL cluster; dropping it stops the server and removes its directory.
pub(crate) struct PgCluster {
    dir: Option<tempfile::TempDir>,
    port: u16,
    /// Run the server programs through `runuser -u postgres` (we are root).
    runuser: Option<PathBuf>,
    watchdog: Option<Child>,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster").field("dir", &self.dir()).field("port", &self.port).finish_non_exhaustive()
    }
}

impl PgCluster {
    /// Makes and starts a cluster of the test's own, with an empty database `sealpost`.
    ///
    /// `None` only when PostgreSQL 15 is missing and `SEALPOST_TEST_ALLOW_MISSING_TOOLS=1`;
    /// otherwise a missing PostgreSQL fails the test.
    #[track_caller]
    pub(crate) fn start() -> Option<Self> {
        let initdb = require_program(&format!("{BIN}/initdb"), "postgresql-15")?;
        require_program(&format!("{BIN}/psql"), "postgresql-client-15")?;
        let runuser = if running_as_root() { Some(require_tool("runuser")?) } else { None };

        let dir = tempfile::Builder::new().prefix("sealpost-pg-").tempdir().expect("temporary directory");
        if runuser.is_some() {
            let (uid, gid) = postgres_user();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the cluster directory");
        }
        let mut cluster = Self { dir: Some(dir), port: 0, runuser, watchdog: None };
        let stop = format!(
            "{} >/dev/null 2>&1",
            cluster
                .server_command_line("pg_ctl", &["-D", &cluster.data().to_string_lossy(), "stop", "-m", "immediate"])
        );
        cluster.watchdog = Some(watchdog::after_exit(cluster.dir(), &stop));

        let data = cluster.data().to_string_lossy().into_owned();
        let out = cluster.server(
            &initdb.to_string_lossy(),
            &[
                "-D",
                &data,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        // Test settings: durability off (a test cluster need not survive a power cut), sockets in
        // our directory, room for many gateways' connection pools at once.
        let settings = format!(
            "\n# sealpost tests (tests/it/common/postgres.rs)\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = 300\n",
            cluster.dir().display()
        );
        append(&cluster.data().join("postgresql.conf"), &settings);

        for attempt in 1..=PORT_TRIES {
            cluster.port = free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => break,
                Err(log) if log.contains("Address already in use") && attempt < PORT_TRIES => continue,
                Err(log) => panic!("PostgreSQL did not start on port {}; its log ends:\n{log}", cluster.port),
            }
        }
        cluster.new_database(DATABASE);
        Some(cluster)
    }

    /// The cluster shared by every test of this process, started by the first test that asks.
    /// Take a database of your own in it with [`PgCluster::new_database`]; never stop it.
    ///
    /// A `static` is never dropped: a watchdog stops the server and removes its directory once
    /// the test process has exited.
    #[track_caller]
    pub(crate) fn shared() -> Option<&'static Self> {
        static SHARED: OnceLock<Option<PgCluster>> = OnceLock::new();
        SHARED.get_or_init(Self::start).as_ref()
    }

    /// The URL of the database `sealpost`: `postgres://postgres@127.0.0.1:PORT/sealpost`.
    pub(crate) fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// The URL of `database` in this cluster.
    pub(crate) fn url_of(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The server's TCP address.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Creates the empty database `name` (lowercase letters, digits and `_`; new in this
    /// cluster) and answers its URL.
    #[track_caller]
    pub(crate) fn new_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name.len() <= 63
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name `{name}`: use 1 to 63 lowercase letters, digits and `_`"
        );
        let out = self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        assert!(out.status.success(), "CREATE DATABASE {name}: {}", String::from_utf8_lossy(&out.stderr));
        self.url_of(name)
    }

    /// Runs `sql` in `database` with `psql` (unaligned, tuples only, stopping at the first
    /// error); answers its output, whatever the outcome.
    pub(crate) fn psql(&self, database: &str, sql: &str) -> Output {
        Command::new(format!("{BIN}/psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", SUPERUSER])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("psql runs")
    }

    /// Stops the server (fast shutdown: sessions are disconnected); the data stays.
    #[track_caller]
    pub(crate) fn stop(&self) {
        let data = self.data().to_string_lossy().into_owned();
        let out = self.server("pg_ctl", &["-D", &data, "stop", "-m", "fast", "-w", "-t", "60"]);
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the stopped server again on the same port and data: a PostgreSQL restart.
    #[track_caller]
    pub(crate) fn start_again(&self) {
        if let Err(log) = self.pg_ctl_start() {
            panic!("PostgreSQL did not start again on port {}; its log ends:\n{log}", self.port);
        }
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    fn data(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir().join("postgres.log")
    }

    /// `pg_ctl start`, waiting until the server accepts connections; on failure, the log's end.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let (data, log) = (self.data().to_string_lossy().into_owned(), self.log().to_string_lossy().into_owned());
        let port = format!("-p {}", self.port);
        let out = self.server("pg_ctl", &["-D", &data, "-l", &log, "-o", &port, "-w", "-t", "60", "start"]);
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// Runs a server program (`pg_ctl`, `initdb`: a name in [`BIN`] or a path) as `postgres`.
    fn server(&self, program: &str, args: &[&str]) -> Output {
        let program = if program.contains('/') { program.to_owned() } else { format!("{BIN}/{program}") };
        let mut command = match &self.runuser {
            Some(runuser) => {
                let mut c = Command::new(runuser);
                c.args(["-u", SUPERUSER, "--", &program]);
                c
            }
            None => Command::new(&program),
        };
        // From our directory: the postgres user may not enter the test's working directory.
        command.args(args).current_dir(self.dir()).output().expect("the PostgreSQL program runs")
    }

    /// The shell command line that [`PgCluster::server`] would run (for the watchdog).
    fn server_command_line(&self, program: &str, args: &[&str]) -> String {
        let mut words: Vec<String> = Vec::new();
        if let Some(runuser) = &self.runuser {
            words.extend([runuser.to_string_lossy().into_owned(), "-u".into(), SUPERUSER.into(), "--".into()]);
        }
        words.push(format!("{BIN}/{program}"));
        words.extend(args.iter().map(|a| (*a).to_owned()));
        words.iter().map(|w| watchdog::shell_quote(w)).collect::<Vec<_>>().join(" ")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog::dismiss(watchdog);
        }
        let data = self.data().to_string_lossy().into_owned();
        let _ = self.server("pg_ctl", &["-D", &data, "stop", "-m", "immediate", "-w"]);
        // The TempDir removes the directory (as root, whoever owns the files).
        drop(self.dir.take());
    }
}

fn running_as_root() -> bool {
    // /proc/self belongs to the effective user of this process.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The `postgres` user's uid and gid, from /etc/passwd (the Debian package makes the user).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&SUPERUSER) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .expect("a `postgres` user (the postgresql-15 package makes it)")
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("a free port").port()
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("open postgresql.conf");
    file.write_all(text.as_bytes()).expect("append to postgresql.conf");
}
