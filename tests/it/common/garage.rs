//! A real three-node Garage cluster for tests, made by `scripts/garage-cluster.sh` in a temporary
//! directory: replication factor 3, consistent mode, one bucket and one read/write key. Nodes are
//! numbered 1 to 3 as in the script; [`GarageCluster::endpoint`] is node 1's S3 API.
//!
//! [`GarageCluster::s3`] speaks the S3 API through `curl --aws-sigv4`, so tests can look at the
//! bucket without an S3 client of their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use super::{require_tool, watchdog};

/// The nodes, numbered as in the script.
pub(crate) const NODES: [usize; 3] = [1, 2, 3];
/// How often a start that failed (a port taken meanwhile) is tried again in a new directory.
const START_TRIES: usize = 3;

/// A running cluster; dropping it stops every node and removes the directory.
pub(crate) struct GarageCluster {
    dir: Option<tempfile::TempDir>,
    garage: PathBuf,
    curl: PathBuf,
    /// DIR/env: the AWS_* variables, GARAGE_BUCKET, SEALPOST_BLOB_STORE, each node's endpoints.
    env: BTreeMap<String, String>,
    watchdog: Option<Child>,
}

impl std::fmt::Debug for GarageCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GarageCluster")
            .field("dir", &self.dir())
            .field("endpoint", &self.endpoint())
            .field("bucket", &self.bucket())
            .finish_non_exhaustive()
    }
}

impl GarageCluster {
    /// Starts three nodes and waits until the cluster serves S3 requests.
    ///
    /// `None` only when `garage` or `curl` is missing and `SEALPOST_TEST_ALLOW_MISSING_TOOLS=1`;
    /// otherwise a missing tool fails the test.
    #[track_caller]
    pub(crate) fn start() -> Option<Self> {
        let garage = find_garage()?;
        let curl = require_tool("curl")?;
        let mut failures = Vec::new();
        for _ in 0..START_TRIES {
            let dir = tempfile::Builder::new().prefix("sealpost-garage-").tempdir().expect("temporary directory");
            let stop = format!("{} stop {} >/dev/null 2>&1", quoted(&script()), quoted(dir.path()));
            let guard = watchdog::after_exit(dir.path(), &stop);
            let mut cluster = Self {
                dir: Some(dir),
                garage: garage.clone(),
                curl: curl.clone(),
                env: BTreeMap::new(),
                watchdog: Some(guard),
            };
            let out = cluster.script(&["start"]);
            if out.status.success() {
                cluster.env = parse_env(&std::fs::read_to_string(cluster.dir().join("env")).expect("DIR/env"));
                return Some(cluster);
            }
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
            // Dropping `cluster` stops whatever nodes did start, and removes the directory.
        }
        panic!("the Garage cluster did not start in {START_TRIES} tries:\n{}", failures.join("\n"));
    }

    /// The variables a gateway needs to use the bucket: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, AWS_ENDPOINT_URL (node 1), AWS_ALLOW_HTTP, and SEALPOST_BLOB_STORE.
    pub(crate) fn gateway_env(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter(|(k, _)| k.starts_with("AWS_") || *k == "SEALPOST_BLOB_STORE")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A variable of DIR/env.
    #[track_caller]
    pub(crate) fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("DIR/env has no `{name}`"))
    }

    /// Node 1's S3 endpoint (AWS_ENDPOINT_URL).
    pub(crate) fn endpoint(&self) -> &str {
        self.env.get("AWS_ENDPOINT_URL").map_or("", String::as_str)
    }

    /// Node `node`'s S3 endpoint.
    #[track_caller]
    pub(crate) fn node_endpoint(&self, node: usize) -> &str {
        check_node(node);
        self.var(&format!("GARAGE_NODE{node}_S3"))
    }

    /// The bucket's name.
    pub(crate) fn bucket(&self) -> &str {
        self.env.get("GARAGE_BUCKET").map_or("", String::as_str)
    }

    /// `s3://BUCKET`, the gateway's `--blob-store`.
    pub(crate) fn blob_store(&self) -> &str {
        self.env.get("SEALPOST_BLOB_STORE").map_or("", String::as_str)
    }

    /// Stops node `node` (1 to 3); the others go on.
    #[track_caller]
    pub(crate) fn stop_node(&self, node: usize) {
        check_node(node);
        let out = self.script(&["stop", &node.to_string()]);
        assert!(out.status.success(), "stopping node {node}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the stopped node `node` again on its ports; with another node running, waits
    /// until it serves S3 requests again.
    #[track_caller]
    pub(crate) fn start_node(&self, node: usize) {
        check_node(node);
        let out = self.script(&["start-node", &node.to_string()]);
        assert!(out.status.success(), "starting node {node} again: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `scripts/garage-cluster.sh status`: each node's process, then the cluster's view.
    pub(crate) fn status(&self) -> String {
        let out = self.script(&["status"]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// One signed S3 request to node `node`: `method` on `key` in the bucket (`key` may carry a
    /// query string; empty for the bucket itself), with `body` as the payload. Answers the HTTP
    /// status (0 when no answer came) and the body.
    pub(crate) fn s3(&self, node: usize, method: &str, key: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        check_node(node);
        let scratch = tempfile::tempdir().expect("temporary directory");
        let answer = scratch.path().join("answer");
        let url = format!("{}/{}/{key}", self.node_endpoint(node), self.bucket());
        let mut command = Command::new(&self.curl);
        command
            .args(["-sS", "--max-time", "30", "-X", method, "-o"])
            .arg(&answer)
            .args(["-w", "%{http_code}", "--aws-sigv4"])
            .arg(format!("aws:amz:{}:s3", self.var("AWS_REGION")))
            .arg("--user")
            .arg(format!("{}:{}", self.var("AWS_ACCESS_KEY_ID"), self.var("AWS_SECRET_ACCESS_KEY")))
            // Garage (like S3) wants the payload's hash header; curl signs it as given.
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
        if let Some(body) = body {
            let payload = scratch.path().join("payload");
            std::fs::write(&payload, body).expect("write the payload");
            command.arg("--data-binary").arg(format!("@{}", payload.display()));
        }
        let out = command.arg(url).output().expect("curl runs");
        let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
        (status, std::fs::read(&answer).unwrap_or_default())
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    fn script(&self, args: &[&str]) -> Output {
        let (command, rest) = args.split_first().expect("a subcommand");
        Command::new("bash")
            .arg(script())
            .arg(command)
            .arg(self.dir())
            .args(rest)
            .env("GARAGE", &self.garage)
            .output()
            .expect("scripts/garage-cluster.sh runs")
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            watchdog::dismiss(watchdog);
        }
        if self.dir.is_some() {
            let _ = self.script(&["stop"]);
        }
        drop(self.dir.take());
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/garage-cluster.sh")
}

/// `garage`: the `GARAGE` variable, else on PATH, else where `cargo install` puts it.
#[track_caller]
fn find_garage() -> Option<PathBuf> {
    let chosen = std::env::var_os("GARAGE").map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("garage"))
        .find(|p| p.is_file());
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin/garage"))
        .filter(|p| p.is_file());
    chosen.or(on_path).or(cargo_bin).map_or_else(|| require_tool("garage"), Some)
}

#[track_caller]
fn check_node(node: usize) {
    assert!(NODES.contains(&node), "no Garage node {node}: the nodes are 1, 2 and 3");
}

fn quoted(path: &Path) -> String {
    watchdog::shell_quote(&path.to_string_lossy())
}

/// `KEY=VALUE` lines; comments and blank lines skipped.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}
