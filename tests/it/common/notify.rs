//! The real servers the notification tests talk to, run from a virtualenv that
//! `scripts/notify-tools.sh` makes on first use (PyPI: `aiosmtpd`, `standardwebhooks`): an SMTP
//! server that keeps each message it accepts as a file (or refuses the first few), and a webhook
//! receiver that verifies each delivery with the Standard Webhooks reference library.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

/// The virtualenv's python, installing it on first use; a failure fails the test with what to do.
pub(crate) fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("notify-venv");
            let out = Command::new("bash")
                .arg(root.join("scripts/notify-tools.sh"))
                .arg(&venv)
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| format!("cannot run scripts/notify-tools.sh: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "scripts/notify-tools.sh could not install aiosmtpd and standardwebhooks from PyPI into {}: {}",
                    venv.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
        .clone()
        .unwrap_or_else(|e| {
            panic!("{e}\nthe notification tests need them: install python3 and python3-venv, and let pip reach PyPI")
        })
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify").join(name)
}

/// A port nothing listens on now (for a server started later).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Reads the first line a child prints, failing if it stops first.
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    assert!(!line.is_empty(), "the test server stopped before it was ready");
    line.trim().to_owned()
}

/// A running aiosmtpd.
pub(crate) struct Smtp {
    child: Child,
    /// The port it listens on.
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts the SMTP server on `port`, refusing (550) the first `refuse` messages.
    pub(crate) fn start(port: u16, refuse: u32) -> Self {
        Self::start_with(port, refuse, None)
    }

    /// Starts the SMTP server on `port` requiring STARTTLS with `tls`'s certificate.
    pub(crate) fn start_tls(port: u16, tls: &TestCa) -> Self {
        Self::start_with(port, 0, Some(tls))
    }

    fn start_with(port: u16, refuse: u32, tls: Option<&TestCa>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python());
        command
            .arg(script("smtp_server.py"))
            .arg(port.to_string())
            .arg(dir.path())
            .args(["--refuse", &refuse.to_string()]);
        if let Some(tls) = tls {
            command.arg("--starttls").arg(tls.dir.path().join("cert.pem")).arg(tls.dir.path().join("key.pem"));
        }
        let mut child = command.stdout(Stdio::piped()).spawn().expect("the SMTP server starts");
        assert_eq!(first_line(&mut child), "ready");
        Self { child, port, dir }
    }

    /// Every message accepted so far, oldest first: `{"to", "from", "subject", "body", "raw"}`.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()).collect()
    }

    /// How many messages it refused.
    pub(crate) fn refused(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("refused.log")).map(|s| s.lines().count()).unwrap_or(0)
    }

    /// Waits (bounded) until `n` messages have arrived, and answers them.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{n} message(s) did not arrive within 30 s: got {:?}", self.messages());
    }
}

impl Smtp {
    /// Waits (bounded) until a message with `subject` has arrived, and answers it.
    pub(crate) async fn wait_subject(&self, subject: &str) -> Value {
        for _ in 0..300 {
            if let Some(m) = self.messages().into_iter().find(|m| m["subject"] == subject) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got: Vec<Value> = self.messages().into_iter().map(|m| m["subject"].clone()).collect();
        panic!("no message `{subject}` within 30 s: got {got:?}");
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA (`ca.pem`) and a server certificate it issued for 127.0.0.1 (`cert.pem`,
/// `key.pem`), made with the `openssl` command line tool, for a mail server speaking TLS.
pub(crate) struct TestCa {
    pub(crate) dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes the CA and the certificate (`None` when `openssl` is missing and missing tools are
    /// allowed).
    pub(crate) fn make() -> Option<Self> {
        let openssl = super::require_tool("openssl")?;
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(&openssl).args(args).current_dir(dir.path()).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sealpost test mail CA"],
        ]
        .concat());
        run(&[&["req"][..], &ec, &["-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]].concat());
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        Some(Self { dir })
    }
}

/// A running webhook receiver.
pub(crate) struct Receiver {
    child: Child,
    pub(crate) url: String,
    dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts a receiver that answers 500 to the first `fail_first` verified deliveries.
    pub(crate) fn start(fail_first: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(script("webhook_receiver.py"))
            .arg(dir.path())
            .args(["--fail-first", &fail_first.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the webhook receiver starts");
        let line = first_line(&mut child);
        let port = line.strip_prefix("port ").expect("port line");
        Self { child, url: format!("http://127.0.0.1:{port}/events"), dir }
    }

    /// Gives the receiver the endpoint's secret.
    pub(crate) fn set_secret(&self, secret: &str) {
        std::fs::write(self.dir.path().join("secret"), secret).unwrap();
    }

    fn lines(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every request: `{"id", "verified", "status"}`.
    pub(crate) fn requests(&self) -> Vec<Value> {
        self.lines("requests.jsonl")
    }

    /// Every verified delivery answered 2xx: `{"id", "payload"}`.
    pub(crate) fn deliveries(&self) -> Vec<Value> {
        self.lines("deliveries.jsonl")
    }

    /// Waits (bounded) until a delivery of `kind` has arrived, and answers it.
    pub(crate) async fn wait_for(&self, kind: &str) -> Value {
        for _ in 0..300 {
            if let Some(d) = self.deliveries().into_iter().find(|d| d["payload"]["type"] == kind) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no `{kind}` delivery within 30 s: requests {:?}", self.requests());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
