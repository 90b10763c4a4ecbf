//! `sealpost log verify|export` and `sealpost receipt verify` as a user runs them: a log built on
//! disk with `tlog` in the tlog-tiles layout, verified, exported over HTTP, then tampered with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sealpost::transparency::tlog::checkpoint::Checkpoint;
use sealpost::transparency::tlog::merkle::{self, Hash};
use sealpost::transparency::tlog::note::Signer;
use sealpost::transparency::tlog::proof::TlogProof;
use sealpost::transparency::tlog::tiles::{build_tiles, encode_bundle};
use sha2::{Digest as _, Sha256};

const ORIGIN: &str = "sealpost.test/log";
const CIPHERTEXT: &[u8] = b"age-encryption.org/v1 pretend ciphertext";

fn log_key() -> Signer {
    Signer::from_seed(ORIGIN, &[1; 32]).expect("valid key")
}

fn vkey() -> String {
    log_key().verifier().to_vkey()
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn entry(event: &str, lines: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("sealpost.audit/v1\nevent {event}\ntime 2026-11-21T12:00:00.000Z\n");
    for (k, v) in lines {
        s.push_str(&format!("{k} {v}\n"));
    }
    s.into_bytes()
}

/// One transfer uploaded, its link issued and the download completed, then `n - 4` more uploads.
fn entries(n: usize) -> Vec<Vec<u8>> {
    let (t, l, d) = ("a".repeat(32), "1".repeat(32), digest_of(CIPHERTEXT));
    let mut out = vec![
        entry("upload.accepted", &[("transfer", &t), ("size", "40"), ("digest", &d)]),
        entry("link.issued", &[("transfer", &t), ("subject", &"9".repeat(32)), ("link", &l)]),
        entry("download.started", &[("transfer", &t), ("link", &l)]),
        entry("download.completed", &[("transfer", &t), ("link", &l), ("size", "40"), ("digest", &d)]),
    ];
    for i in out.len()..n {
        out.push(entry("upload.accepted", &[("transfer", &format!("{i:032x}")), ("size", "1"), ("digest", &d)]));
    }
    out.truncate(n);
    out
}

fn leaves(entries: &[Vec<u8>]) -> Vec<Hash> {
    entries.iter().map(|e| merkle::leaf_hash(e)).collect()
}

fn signed_checkpoint(entries: &[Vec<u8>]) -> String {
    let c = Checkpoint::new(ORIGIN, entries.len() as u64, merkle::root(&leaves(entries))).expect("checkpoint");
    c.sign(&[&log_key()]).expect("signed")
}

/// Writes the log as a server publishes it: checkpoint, key, tiles and entry bundles.
fn write_log(dir: &Path, entries: &[Vec<u8>]) {
    let _ = std::fs::remove_dir_all(dir);
    let write = |path: &str, bytes: &[u8]| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    for (tile, bytes) in build_tiles(&leaves(entries)) {
        if tile.level() == 0 {
            let start = tile.index() as usize * 256;
            write(
                &tile.entries_path(),
                &encode_bundle(&entries[start..start + usize::from(tile.width())]).expect("bundle"),
            );
        }
        write(&tile.path(), &bytes);
    }
    write("key", format!("{}\n", vkey()).as_bytes());
    write("checkpoint", signed_checkpoint(entries).as_bytes());
}

fn sealpost(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(args)
        .env_remove("SEALPOST_URL")
        .env_remove("SEALPOST_TOKEN")
        .output()
        .expect("run sealpost")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn verify_dir(dir: &Path, state: &Path) -> Output {
    let (dir, state) = (dir.to_str().expect("utf-8"), state.to_str().expect("utf-8"));
    sealpost(&["log", "verify", "--dir", dir, "--key", &vkey(), "--state", state])
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 1;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_log_directory_verifies_and_any_tampering_exits_4() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, state) = (tmp.path().join("log"), tmp.path().join("state"));
    write_log(&log, &entries(300));
    let out = verify_dir(&log, &state);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("entries    300"), "{}", text(&out));
    assert_eq!(std::fs::read(state.join("checkpoint")).ok(), std::fs::read(log.join("checkpoint")).ok());

    for (file, at) in
        [("tile/0/000", 100), ("tile/0/001.p/44", 0), ("tile/1/000.p/1", 31), ("tile/entries/001.p/44", 60)]
    {
        flip(&log.join(file), at);
        let out = verify_dir(&log, &state);
        assert_eq!(code(&out), 4, "{file}: {}", text(&out));
        assert!(text(&out).contains("sealpost: error: log rejected"), "{}", text(&out));
        flip(&log.join(file), at);
    }
    flip(&log.join("checkpoint"), 3);
    assert_eq!(code(&verify_dir(&log, &state)), 4);
    flip(&log.join("checkpoint"), 3);
    std::fs::remove_file(log.join("tile/0/000")).expect("remove");
    let out = verify_dir(&log, &state);
    assert_eq!(code(&out), 4);
    assert!(text(&out).contains("the log has no `tile/0/000`"), "{}", text(&out));
}

#[test]
fn a_truncated_or_rewritten_log_exits_4_against_the_saved_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, state) = (tmp.path().join("log"), tmp.path().join("state"));
    let mut history = entries(20);
    write_log(&log, &history[..10]);
    assert_eq!(code(&verify_dir(&log, &state)), 0);
    write_log(&log, &history);
    let out = verify_dir(&log, &state);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("extends    the saved checkpoint of 10 entries"), "{}", text(&out));
    let saved = std::fs::read(state.join("checkpoint")).expect("saved");

    write_log(&log, &history[..15]);
    let out = verify_dir(&log, &state);
    assert_eq!(code(&out), 4);
    assert!(text(&out).contains("it was truncated"), "{}", text(&out));
    assert_eq!(std::fs::read(state.join("checkpoint")).ok(), Some(saved), "a failed run must not save");

    history[7] = entry("upload.accepted", &[("transfer", &"f".repeat(32)), ("size", "1"), ("digest", &digest_of(b""))]);
    write_log(&log, &history);
    let out = verify_dir(&log, &state);
    assert_eq!(code(&out), 4);
    assert!(text(&out).contains("history was rewritten"), "{}", text(&out));
}

#[test]
fn a_log_verified_with_the_wrong_key_exits_4_and_a_key_file_is_accepted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, state) = (tmp.path().join("log"), tmp.path().join("state"));
    write_log(&log, &entries(5));
    let other = Signer::from_seed(ORIGIN, &[2; 32]).expect("key").verifier().to_vkey();
    let (dir, st) = (log.to_str().expect("utf-8"), state.to_str().expect("utf-8"));
    let out = sealpost(&["log", "verify", "--dir", dir, "--key", &other, "--state", st]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(!state.join("checkpoint").exists());
    let key_file = log.join("key");
    let out = sealpost(&["log", "verify", "--dir", dir, "--key", key_file.to_str().expect("utf-8"), "--state", st]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

fn write_receipt(dir: &Path, index: u64) -> PathBuf {
    let entries = entries(7);
    let proof = TlogProof {
        extra: Some(entries[index as usize].clone()),
        index,
        proof: merkle::inclusion_proof(index, &leaves(&entries)).expect("proof"),
        checkpoint: signed_checkpoint(&entries),
    };
    let path = dir.join(format!("receipt-{index}.txt"));
    std::fs::write(&path, proof.to_text()).expect("write");
    path
}

#[test]
fn receipt_verify_exits_0_for_a_good_receipt_and_4_otherwise() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let receipt = write_receipt(tmp.path(), 3);
    let r = receipt.to_str().expect("utf-8");
    let out = sealpost(&["receipt", "verify", r, "--key", &vkey()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let shown = text(&out);
    for want in ["download.completed", &digest_of(CIPHERTEXT), "index      3", "tree size  7", "witnesses  none"] {
        assert!(shown.contains(want), "{want} missing from {shown}");
    }

    let ciphertext = tmp.path().join("bundle.age");
    std::fs::write(&ciphertext, CIPHERTEXT).expect("write");
    let c = ciphertext.to_str().expect("utf-8");
    assert_eq!(code(&sealpost(&["receipt", "verify", r, "--key", &vkey(), "--expect-file", c])), 0);
    std::fs::write(&ciphertext, b"something else").expect("write");
    let out = sealpost(&["receipt", "verify", r, "--key", &vkey(), "--expect-file", c]);
    assert_eq!(code(&out), 4);
    assert!(text(&out).contains("differs from the expected"), "{}", text(&out));

    let policy = tmp.path().join("policy");
    std::fs::write(&policy, format!("log {}\nquorum none\n", vkey())).expect("write");
    let p = policy.to_str().expect("utf-8");
    assert_eq!(code(&sealpost(&["receipt", "verify", r, "--policy", p])), 0);

    let length = std::fs::read(&receipt).expect("read").len();
    for at in (0..length).step_by(7) {
        flip(&receipt, at);
        let out = sealpost(&["receipt", "verify", r, "--key", &vkey()]);
        assert_eq!(code(&out), 4, "byte {at}: {}", text(&out));
        assert!(text(&out).starts_with("sealpost: error: "), "{}", text(&out));
        flip(&receipt, at);
    }
    assert_eq!(code(&sealpost(&["receipt", "verify", "/nonexistent/receipt", "--key", &vkey()])), 4);
}

/// Serves `dir` under `/log/` as the gateway does, requiring `token` when given.
fn serve(dir: PathBuf, token: Option<&'static str>) -> String {
    async fn file(
        State(served): State<Arc<(PathBuf, Option<&'static str>)>>,
        UrlPath(path): UrlPath<String>,
        headers: HeaderMap,
    ) -> Response {
        let (dir, token) = (&served.0, served.1);
        let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Some(token) = token
            && sent != Some(format!("Bearer {token}").as_str())
        {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if path.split('/').any(|s| s == "..") {
            return StatusCode::BAD_REQUEST.into_response();
        }
        match std::fs::read(dir.join(&path)) {
            Ok(bytes) => bytes.into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let app = axum::Router::new().route("/log/{*path}", get(file)).with_state(Arc::new((dir, token)));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("address"))
}

#[test]
fn log_export_downloads_a_verified_copy_that_verifies_offline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, export, state) = (tmp.path().join("log"), tmp.path().join("export"), tmp.path().join("state"));
    write_log(&log, &entries(260));
    let url = serve(log.clone(), None);
    let ex = export.to_str().expect("utf-8");
    let out = sealpost(&["log", "export", ex, "--url", &url, "--key", &vkey()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for file in ["checkpoint", "key", "tile/0/000", "tile/0/001.p/4", "tile/1/000.p/1", "tile/entries/001.p/4"] {
        assert_eq!(std::fs::read(export.join(file)).ok(), std::fs::read(log.join(file)).ok(), "{file}");
    }
    assert_eq!(code(&verify_dir(&export, &state)), 0);

    let st = state.to_str().expect("utf-8");
    let out = sealpost(&["log", "verify", "--url", &format!("{url}/log/"), "--key", &vkey(), "--state", st]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    flip(&log.join("tile/entries/000"), 50);
    let out = sealpost(&["log", "export", ex, "--url", &url]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert_eq!(code(&verify_dir(&export, &state)), 0, "a failed export must leave the earlier one intact");
    flip(&log.join("tile/entries/000"), 50);
}

#[test]
fn log_verify_sends_the_token_and_exits_1_when_the_log_cannot_be_fetched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (log, state) = (tmp.path().join("log"), tmp.path().join("state"));
    write_log(&log, &entries(3));
    let url = serve(log, Some("t0ken"));
    let st = state.to_str().expect("utf-8");
    let out = sealpost(&["log", "verify", "--url", &url, "--key", &vkey(), "--state", st]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));
    let out = sealpost(&["log", "verify", "--url", &url, "--token", "t0ken", "--key", &vkey(), "--state", st]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let out = sealpost(&["log", "verify", "--url", &dead, "--key", &vkey(), "--state", st]);
    assert_eq!(code(&out), 1, "{}", text(&out));
}
