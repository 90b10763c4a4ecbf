//! The client end to end: `sealpost send` and `sealpost fetch` against the real gateway, driven
//! as a user would, and interop with the Go `age` CLI and curl.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{self, TestServer, identity_file, keypair, noise, parties, require_tool};

/// Runs the sealpost binary with `--url`/`--token` for `token`, off the async runtime.
pub(crate) async fn sealpost(server: &TestServer, token: &str, args: &[&str]) -> Output {
    let command = command(server, token, args);
    tokio::task::spawn_blocking(move || { command }.output().expect("runs")).await.unwrap()
}

/// The sealpost command with `--url`/`--token` for `token` and the server's own client state
/// directory (so no test touches the user's).
fn command(server: &TestServer, token: &str, args: &[&str]) -> std::process::Command {
    command_via(server, &server.url, token, args)
}

/// [`command`], speaking to the gateway at `url` (a proxy in front of `server`).
fn command_via(server: &TestServer, url: &str, token: &str, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sealpost"));
    command
        .args(args)
        .args(["--url", url, "--token", token])
        .env_remove("SEALPOST_IDENTITY")
        .env_remove("SEALPOST_LOG_KEY")
        .env_remove("SEALPOST_TUS_CHUNK")
        .env("SEALPOST_STATE_DIR", state_dir(server));
    command
}

/// Where the clients of `server`'s tests keep their upload state.
fn state_dir(server: &TestServer) -> PathBuf {
    server.data_dir.join("client-state")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error and hint lines of a failed run.
fn failure_lines(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("sealpost: error:") || l.starts_with("sealpost: hint:"))
        .map(str::to_owned)
        .collect()
}

/// A work directory with alice's identity file.
pub(crate) struct Work {
    dir: tempfile::TempDir,
    pub(crate) identity: PathBuf,
}

impl Work {
    pub(crate) fn new(id: &age::x25519::Identity) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let identity = dir.path().join("alice.key");
        std::fs::write(&identity, identity_file(id)).unwrap();
        Self { dir, identity }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        s(&p)
    }
}

pub(crate) fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// Sends `files` to hmpps/alice and returns (transfer id, link).
pub(crate) async fn send(server: &TestServer, bob: &str, files: &[&str]) -> (String, String) {
    let mut args = vec!["send"];
    args.extend(files);
    args.extend(["--to", "hmpps/alice"]);
    let out = sealpost(server, bob, &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let id = lines.next().unwrap().to_owned();
    let link_line = lines.next().unwrap();
    assert_eq!(lines.next(), None, "one link for one recipient: {text}");
    let (recipient, link) = link_line.split_once(' ').unwrap();
    assert_eq!(recipient, "hmpps/alice");
    let notes = stderr(&out);
    let notes: Vec<&str> = notes.lines().collect();
    // One line per recipient key, then the receipt check; no progress bar off a terminal.
    let (verified, keys) = notes.split_last().unwrap();
    assert!(
        !keys.is_empty() && keys.iter().all(|l| l.starts_with("sealpost: hmpps/alice: X25519 key sha256:")),
        "{notes:?}"
    );
    assert!(verified.starts_with("sealpost: verified: the log records the upload of sha256:"), "{notes:?}");
    (id, link.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_edge_size_round_trip_through_send_and_fetch() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    for size in [0usize, 1, 65_535, 65_536, 65_537] {
        let content = noise(size);
        let name = format!("data-{size}.bin");
        let src = work.file(&name, &content);
        let (_, link) = send(&server, &bob, &[&src]).await;
        let out_path = work.path(&format!("out-{size}"));
        let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&out_path)]).await;
        assert_eq!(out.status.code(), Some(0), "size {size}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{}\n", s(&out_path)));
        assert_eq!(std::fs::read(&out_path).unwrap(), content, "size {size}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_files_arrive_in_a_directory_with_their_names() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let a = work.file("a.csv", b"id,name\n1,x\n");
    let b = work.file("b.bin", &noise(70_000));
    let c = work.file("empty", b"");
    let (_, link) = send(&server, &bob, &[&a, &b, &c]).await;
    let dir = work.path("inbox");
    std::fs::create_dir(&dir).unwrap();
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "--dir", &s(&dir)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{}\n{}\n{}\n", s(&dir.join("a.csv")), s(&dir.join("b.bin")), s(&dir.join("empty")))
    );
    assert_eq!(std::fs::read(dir.join("a.csv")).unwrap(), b"id,name\n1,x\n");
    assert_eq!(std::fs::read(dir.join("b.bin")).unwrap(), noise(70_000));
    assert_eq!(std::fs::read(dir.join("empty")).unwrap(), b"");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3, "no temporary files are left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_link_is_refused_with_the_gateways_message() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let src = work.file("a", b"once");
    let (_, link) = send(&server, &bob, &[&src]).await;
    let first =
        sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("one"))]).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let again =
        sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("two"))]).await;
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        failure_lines(&again),
        vec!["sealpost: error: this link has already been used: ask the sender for a new transfer".to_owned()]
    );
    assert!(!work.path("two").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_identity_is_refused_before_the_link_is_used_and_the_right_one_then_collects_it() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let (other, _) = keypair();
    let wrong = work.file("wrong.key", identity_file(&other).as_bytes());

    // The identity is checked against alice's registered keys before redeeming.
    let src = work.file("small", b"small");
    let (_, link) = send(&server, &bob, &[&src]).await;
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &wrong, "-o", &s(&work.path("small.out"))]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(failure_lines(&out), vec![
        format!("sealpost: error: the identity in `{wrong}` is not one of your registered keys"),
        "sealpost: hint: the link was not used: fetch it with the identity whose recipient you registered (`sealpost keys list`), or pass --skip-key-check".to_owned(),
    ]);
    let ok =
        sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("small.out"))]).await;
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(std::fs::read(work.path("small.out")).unwrap(), b"small");

    // Without the directory check, the age header is read first with ranges that stop short of
    // the last byte: a wrong identity stops the fetch before the link is used up, whether the
    // bundle is tiny (it would arrive whole in one answer) or large.
    for (name, content) in [("tiny", b"x".to_vec()), ("big", noise(4 << 20))] {
        let src = work.file(name, &content);
        let (transfer, link) = send(&server, &bob, &[&src]).await;
        let dest = work.path(&format!("{name}.out"));
        let out = sealpost(&server, &alice, &["fetch", &link, "-i", &wrong, "--skip-key-check", "-o", &s(&dest)]).await;
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert_eq!(
            failure_lines(&out),
            vec![
                format!("sealpost: error: none of the identities in `{wrong}` can decrypt this bundle"),
                "sealpost: hint: the link is still usable: fetch it again with the right identity (-i)".to_owned(),
            ],
            "{name}"
        );
        assert!(!dest.exists(), "{name}");
        assert!(!work.path(&format!("{name}.out.sealpost-part")).exists(), "{name}: no partial file is left");
        let (_, inbox) = server.get(&alice, "/api/v1/inbox").await;
        let waiting = inbox["transfers"].as_array().unwrap().iter().find(|t| t["transfer"] == transfer.as_str());
        assert_eq!(waiting.map(|t| t["state"].clone()), Some("issued".into()), "{name}: {inbox}");

        let ok = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&dest)]).await;
        assert_eq!(ok.status.code(), Some(0), "{name}: {}", stderr(&ok));
        assert!(std::fs::read(&dest).unwrap() == content, "{name}");
    }
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "download.completed").count(), 3, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_swapped_on_the_gateways_disk_is_refused_and_nothing_is_written() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let src = work.file("report.csv", &noise(5000));
    let (transfer, link) = send(&server, &bob, &[&src]).await;
    let blob = server.data_dir.join("blobs").join(format!("{transfer}.age"));
    let original = std::fs::read(&blob).expect("the blob is where the gateway keeps it");
    // Another bundle to the same key, of the same length.
    std::fs::create_dir(work.path("forger")).unwrap();
    let forged_src = work.path("forger").join("report.csv");
    std::fs::write(&forged_src, b"x".repeat(5000)).unwrap();
    // age headers vary in length (the crate adds random "grease" stanzas): try until it matches.
    let forged = (0..500)
        .map(|_| {
            let mut forged = Vec::new();
            let recipient = id.to_public();
            let encryptor =
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
            let mut w = encryptor.wrap_output(&mut forged).unwrap();
            sealpost::client::bundle::write(std::slice::from_ref(&forged_src), &mut w, |_| {}).unwrap();
            w.finish().unwrap();
            forged
        })
        .find(|f| f.len() == original.len())
        // Grease makes lengths random; if no forgery matched, tamper with the original instead
        // (same length, same refusal: the digest no longer matches).
        .unwrap_or_else(|| {
            let mut tampered = original.clone();
            let at = tampered.len() - 20;
            tampered[at] ^= 1;
            tampered
        });
    std::fs::write(&blob, &forged).unwrap();

    let out_path = work.path("report.out");
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&out_path)]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let lines = failure_lines(&out);
    assert!(lines[0].starts_with("sealpost: error: digest_mismatch: the downloaded bundle `sha256:"), "{lines:?}");
    assert!(lines[0].ends_with("; nothing was written"), "{lines:?}");
    assert!(!out_path.exists());
    assert_eq!(std::fs::read_dir(work.dir.path()).unwrap().count(), 3, "alice.key, report.csv, forger: nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_sent_by_sealpost_downloads_with_curl_and_decrypts_with_the_go_age_cli() {
    let (Some(age_bin), Some(curl_bin)) = (require_tool("age"), require_tool("curl")) else { return };
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let src = work.file("ledger.csv", b"a,b\n1,2\n");
    let (_, link) = send(&server, &bob, &[&src]).await;
    let token = common::link_token(&link).to_owned();
    let ciphertext = work.path("bundle.age");
    let (url, c) = (format!("{}/api/v1/redeem", server.url), s(&ciphertext));
    let curl = tokio::task::spawn_blocking(move || {
        std::process::Command::new(curl_bin)
            .args(["-sf", "-X", "POST", &url, "-H", &format!("Authorization: Bearer {alice}")])
            .args(["-H", "Content-Type: application/json", "--data", &format!("{{\"token\":\"{token}\"}}"), "-o", &c])
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(curl.success());
    let plain = work.path("bundle.tar");
    let age = std::process::Command::new(age_bin)
        .args(["-d", "-i", &s(&work.identity), "-o", &s(&plain), &s(&ciphertext)])
        .status()
        .unwrap();
    assert!(age.success());
    let out = work.path("x");
    std::fs::create_dir(&out).unwrap();
    let tar = std::process::Command::new("tar").args(["-xf", &s(&plain), "-C", &s(&out)]).status().unwrap();
    assert!(tar.success());
    assert_eq!(std::fs::read(out.join("ledger.csv")).unwrap(), b"a,b\n1,2\n");
    let manifest = std::fs::read_to_string(out.join(".sealpost-manifest")).unwrap();
    assert!(manifest.starts_with("sealpost.bundle/v1\nsha256:"), "{manifest}");
    assert!(manifest.ends_with(" 8 ledger.csv\n"), "{manifest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_made_by_the_go_age_cli_and_uploaded_with_curl_is_collected_by_fetch() {
    let (Some(age_bin), Some(curl_bin)) = (require_tool("age"), require_tool("curl")) else { return };
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let plain = work.file("plain.txt", &noise(100_000));
    let ciphertext = work.path("plain.txt.age");
    let age = std::process::Command::new(age_bin)
        .args(["-r", &id.to_public().to_string(), "-o", &s(&ciphertext), &plain])
        .status()
        .unwrap();
    assert!(age.success());
    let (url, c) = (format!("{}/api/v1/transfers?to=hmpps/alice", server.url), s(&ciphertext));
    let answer = tokio::task::spawn_blocking(move || {
        std::process::Command::new(curl_bin)
            .args(["-sf", "-X", "POST", &url, "-H", &format!("Authorization: Bearer {bob}"), "--data-binary"])
            .arg(format!("@{c}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(answer.status.success(), "{}", stdout(&answer));
    let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    let link = answer["links"][0]["url"].as_str().unwrap();
    let out_path = work.path("plain.out");
    let out = sealpost(&server, &alice, &["fetch", link, "-i", &s(&work.identity), "-o", &s(&out_path)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(&out_path).unwrap(), noise(100_000));
}

/// Exit 2 comes only from a gateway's `policy_denied` answer, so it is pinned here, against the
/// real gateway, and not as a transcript in `tests/cmd`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_policy_denies_exits_2_naming_the_deciding_policy_and_uploads_nothing() {
    let server = TestServer::start().await;
    server.org("acme", "contractor").await;
    server.org("hmpps", "agency").await;
    let bob = server.user("acme/bob", "sender").await;
    let alice = server.user("hmpps/alice", "recipient").await;
    let (id, recipient) = keypair();
    server.add_key(&alice, &recipient).await;
    let work = Work::new(&id);
    let src = work.file("report.csv", b"no route from acme to hmpps");

    let out = sealpost(&server, &bob, &["send", &src, "--to", "hmpps/alice"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        failure_lines(&out),
        vec![
            "sealpost: error: your organisation has no route to the recipient's organisation: ask an administrator \
             to add one with `sealpost admin route add`"
                .to_owned(),
            "sealpost: hint: denied by policy routes".to_owned(),
        ]
    );
    assert_eq!(server.stored_files(), (0, 0), "no blob and nothing staged");
    assert_eq!(server.events().await.last().map(String::as_str), Some("upload.refused"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_gives_one_link_per_recipient_and_refuses_a_recipient_without_a_key() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let carol = server.user("hmpps/carol", "recipient").await;
    let (carol_id, carol_r) = keypair();
    server.add_key(&carol, &carol_r).await;
    server.user("hmpps/dave", "recipient").await;
    let work = Work::new(&id);
    let carol_key = work.file("carol.key", identity_file(&carol_id).as_bytes());
    let src = work.file("minutes.txt", b"both of you");

    let out =
        sealpost(&server, &bob, &["send", &src, "--to", "hmpps/alice", "--to", "hmpps/carol", "--json", "-q"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "--quiet prints nothing on success");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let links = answer["links"].as_array().unwrap();
    let who: Vec<&str> = links.iter().map(|l| l["recipient"].as_str().unwrap()).collect();
    assert_eq!(who, vec!["hmpps/alice", "hmpps/carol"]);
    for (link, (token, key)) in links.iter().zip([(&alice, s(&work.identity)), (&carol, carol_key)]) {
        let dest = work.path(&format!("got-{}", &key[key.len() - 5..]));
        let got =
            sealpost(&server, token, &["fetch", link["url"].as_str().unwrap(), "-i", &key, "-o", &s(&dest)]).await;
        assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
        assert_eq!(std::fs::read(&dest).unwrap(), b"both of you");
    }

    let refused = sealpost(&server, &bob, &["send", &src, "--to", "hmpps/alice", "--to", "hmpps/dave"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        failure_lines(&refused),
        vec![
            "sealpost: error: `hmpps/dave` has no registered key".to_owned(),
            "sealpost: hint: ask them to make one with `sealpost keygen` and register it with `sealpost keys add`"
                .to_owned(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_from_sealpost_keygen_and_age_keygen_work_with_both_tools() {
    let (Some(age_bin), Some(age_keygen_bin)) = (require_tool("age"), require_tool("age-keygen")) else { return };
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);

    // sealpost keygen: the Go CLI decrypts with it.
    let ours = work.path("ours.key");
    let made =
        std::process::Command::new(env!("CARGO_BIN_EXE_sealpost")).args(["keygen", "-o", &s(&ours)]).output().unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let recipient = stdout(&made).trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let ciphertext = work.path("to-ours.age");
    let plain = work.file("hello.txt", b"hello");
    let enc =
        std::process::Command::new(&age_bin).args(["-r", &recipient, "-o", &s(&ciphertext), &plain]).status().unwrap();
    assert!(enc.success());
    let dec = std::process::Command::new(&age_bin).args(["-d", "-i", &s(&ours), &s(&ciphertext)]).output().unwrap();
    assert_eq!(dec.stdout, b"hello");

    // age-keygen: registered as a second key, it collects a bundle with sealpost fetch.
    let theirs = work.path("theirs.key");
    let keygen = std::process::Command::new(age_keygen_bin).args(["-o", &s(&theirs)]).output().unwrap();
    assert!(keygen.status.success());
    let text = std::fs::read_to_string(&theirs).unwrap();
    let their_recipient = text.lines().find_map(|l| l.strip_prefix("# public key: ")).unwrap().to_owned();
    server.add_key(&alice, &their_recipient).await;
    let (_, link) = send(&server, &bob, &[&plain]).await;
    let dest = work.path("hello.out");
    let got = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&theirs), "-o", &s(&dest)]).await;
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_files_for_one_output_file_are_refused_the_ciphertext_is_kept_and_the_failure_reported() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let a = work.file("a", b"1");
    let b = work.file("b", b"2");
    let (transfer, link) = send(&server, &bob, &[&a, &b]).await;
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("one"))]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let kept = work.path(&format!("{transfer}.age"));
    assert_eq!(
        failure_lines(&out),
        vec![
            "sealpost: error: the bundle holds several files, but one output file was given; nothing was written"
                .to_owned(),
            format!(
                "sealpost: hint: extract them with --dir DIR; the checked ciphertext was kept in `{}` (decrypt it with `age -d -i IDENTITY`)",
                s(&kept)
            ),
        ]
    );
    assert!(!work.path("one").exists());
    let plaintext = common::decrypt(&id, &std::fs::read(&kept).unwrap());
    assert!(sealpost::client::bundle::is_bundle(&plaintext));
    // The failure after the download is reported to the gateway, with a code, not a message.
    assert_eq!(acknowledged(&server, &bob, &transfer).await, "failed");
    let (status, audit) = server.get(&server.admin, "/api/v1/audit?limit=1000").await;
    assert_eq!(status, 200, "{audit}");
    let entry = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "delivery.acknowledged")
        .map(|e| e["entry"].as_str().unwrap().to_owned())
        .expect("the report is in the audit trail");
    assert!(entry.contains("code failed\nreason several_files\n"), "{entry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refuses_a_directory_key_that_is_not_the_one_the_log_recorded() {
    let server = TestServer::start().await;
    let (bob, _, _) = common::parties(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    std::fs::write(&report, b"id,name\n").unwrap();
    let report = report.to_str().unwrap().to_owned();
    // The key in the log first; then someone with access to the database swaps it for theirs.
    let ok = sealpost(&server, &bob, &["send", &report, "--to", "hmpps/alice", "-q"]).await;
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let (_, swapped) = common::keypair();
    let db = server.database().await;
    sqlx::query("UPDATE recipient_keys SET recipient = $1, fingerprint = $2")
        .bind(&swapped)
        .bind(sealpost::directory::fingerprint(&swapped))
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let out = sealpost(&server, &bob, &["send", &report, "--to", "hmpps/alice"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("not the one the log recorded"), "{}", stderr(&out));
    server.stop().await;
}

/// The files in a directory (none when it does not exist).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_killed_halfway_resumes_from_the_gateways_offset_without_encrypting_again() {
    use sha2::Digest as _;
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let content = noise(24 << 20);
    let src = work.file("extract.bin", &content);
    let send_args = ["send", &src, "--to", "hmpps/alice"];

    // Small PATCHes, so the upload takes many requests; kill the client a few MiB in.
    let mut first = command(&server, &bob, &send_args);
    first.env("SEALPOST_TUS_CHUNK", "262144").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = first.spawn().unwrap();
    let uploads = server.data_dir.join("uploads");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let held = files_in(&uploads).iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).max();
        if held.unwrap_or(0) > 6 << 20 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the client ended before it was killed");
        assert!(std::time::Instant::now() < deadline, "the upload never got going");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The sealed ciphertext and the upload's URL survived the client, privately.
    let state = state_dir(&server);
    let kept = files_in(&state);
    let names: Vec<String> = kept.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].ends_with(".age") && names[1].ends_with(".json"), "{names:?}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
        for p in &kept {
            assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
    }
    let ciphertext = std::fs::read(&kept[0]).unwrap();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&ciphertext)));
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept[1]).unwrap()).unwrap();
    let upload = saved["upload"].as_str().unwrap().to_owned();
    assert!(upload.starts_with("/api/v1/uploads/"), "{saved}");
    let head = server.http().get(format!("{}{upload}", server.url)).bearer_auth(&bob).header("Tus-Resumable", "1.0.0");
    let (status, progress) = common::status_json(head.send().await.unwrap()).await;
    assert_eq!(status, 200, "{progress}");
    assert_eq!(progress["status"], "uploading");
    let offset = progress["offset"].as_u64().unwrap();
    assert!(offset > 0 && offset < ciphertext.len() as u64, "{progress}");

    // `--resume` continues from the gateway's offset with the same ciphertext.
    let mut args = send_args.to_vec();
    args.push("--resume");
    let mut again = command(&server, &bob, &args);
    again.env("SEALPOST_TUS_CHUNK", "4194304");
    let out = tokio::task::spawn_blocking(move || again.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("sealpost: resuming the upload of {digest} (")), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let transfer = lines.next().unwrap().to_owned();
    let link = lines.next().unwrap().split_once(' ').unwrap().1.to_owned();
    assert_eq!(format!("/api/v1/uploads/{transfer}"), upload, "the transfer takes the upload's id");
    let (status, info) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["digest"], digest.as_str(), "the gateway holds exactly the ciphertext sealed before the kill");
    assert_eq!(files_in(&state), Vec::<PathBuf>::new(), "a completed upload leaves no state");

    let out_path = work.path("extract.out");
    let got = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&out_path)]).await;
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    assert!(std::fs::read(&out_path).unwrap() == content);

    // With nothing to resume, `--resume` says so.
    let none = sealpost(&server, &bob, &args).await;
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(
        failure_lines(&none),
        vec![
            "sealpost: error: there is no interrupted upload of these files to these recipients".to_owned(),
            "sealpost: hint: run the command without --resume to start one (a changed file starts afresh too)"
                .to_owned(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_deletes_its_state() {
    let server = TestServer::start().await;
    let (bob, _, id) = parties(&server).await;
    let work = Work::new(&id);
    let src = work.file("secret.txt", b"classified");
    let out =
        sealpost(&server, &bob, &["send", &src, "--to", "hmpps/alice", "--classification", "NO-SUCH-LEVEL"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(files_in(&state_dir(&server)), Vec::<PathBuf>::new(), "{}", stderr(&out));
}

/// The transfer as its sender sees it, once the link of `recipient` carries a report.
async fn acknowledged(server: &TestServer, bob: &str, transfer: &str) -> serde_json::Value {
    let (status, info) = server.get(bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(status, 200, "{info}");
    info["links"][0]["acknowledged"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reports_the_delivery_and_the_sender_sees_it_in_status_and_receipts() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let carol = server.user("hmpps/carol", "recipient").await;
    let work = Work::new(&id);
    let src = work.file("minutes.txt", b"delivered");
    let (transfer, link) = send(&server, &bob, &[&src]).await;
    assert_eq!(acknowledged(&server, &bob, &transfer).await, serde_json::Value::Null);
    // Before the link is used, nobody may report.
    let path = format!("/api/v1/transfers/{transfer}/delivery");
    let (status, body) = server.post(&alice, &path, serde_json::json!({"status": "decrypted"})).await;
    assert_eq!((status, common::code(&body)), (404, "not_found"), "{body}");

    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("m"))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(acknowledged(&server, &bob, &transfer).await, "decrypted");
    let status_out = sealpost(&server, &bob, &["status", &transfer, "--json"]).await;
    assert_eq!(status_out.status.code(), Some(0), "{}", stderr(&status_out));
    let shown: serde_json::Value = serde_json::from_slice(&status_out.stdout).unwrap();
    assert_eq!(shown["links"][0]["acknowledged"], "decrypted");

    // The sender gets a receipt for it once the log integrates the entry.
    let mut receipt = None;
    for _ in 0..40 {
        let (status, list) = server.get(&bob, &format!("/api/v1/transfers/{transfer}/receipts")).await;
        assert_eq!(status, 200, "{list}");
        receipt = list["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["event"] == "delivery.acknowledged")
            .and_then(|r| r["receipt"].as_str().map(str::to_owned));
        if receipt.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let receipt = receipt.expect("a receipt for the delivery report");
    let entry = receipt.lines().find_map(|l| l.strip_prefix("extra ")).expect("the receipt carries its entry");
    let entry =
        String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, entry).unwrap()).unwrap();
    assert!(entry.contains("event delivery.acknowledged\n"), "{entry}");
    assert!(entry.contains("code decrypted\n"), "{entry}");

    // Once only; and only from the recipient whose link was used.
    let (status, body) = server.post(&alice, &path, serde_json::json!({"status": "decrypted"})).await;
    assert_eq!((status, common::code(&body)), (409, "already_reported"), "{body}");
    for other in [&carol, &bob] {
        let (status, body) =
            server.post(other, &path, serde_json::json!({"status": "failed", "reason": "forged"})).await;
        assert_eq!((status, common::code(&body)), (404, "not_found"), "{body}");
    }
    for bad in [
        serde_json::json!({"status": "maybe"}),
        serde_json::json!({"status": "failed", "reason": "/home/alice/secret-plan.pdf"}),
    ] {
        let (status, body) = server.post(&alice, &path, bad).await;
        assert_eq!(status, 400, "{body}");
    }
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "delivery.acknowledged").count(), 1, "{events:?}");
}

/// Which way the proxy counts bytes before it cuts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Request bytes (an upload).
    Up,
    /// Answer bytes (a download).
    Down,
}

/// A TCP proxy in front of `upstream` that cuts the one connection carrying the bytes (in the
/// direction `way`) past `cut_after`, counted over all connections, once; returns its URL and
/// whether it cut.
async fn cutting_proxy_on(
    upstream: &str,
    cut_after: u64,
    way: Cut,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
    /// Copies `from` to `to`, counting into `seen` and stopping at the cut when `counting`.
    async fn pipe(
        mut from: impl AsyncRead + Unpin,
        mut to: impl AsyncWrite + Unpin,
        counting: bool,
        seen: &AtomicU64,
        cut: &AtomicBool,
        cut_after: u64,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            if counting {
                let total = seen.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if total > cut_after && !cut.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, cut) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let cut_flag = cut.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            // A small receive buffer, so that the gateway cannot park the rest of an answer in
            // the kernel's buffers (and count it as delivered) before the cut.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(64 * 1024).unwrap();
            let server = socket.connect(upstream.parse().unwrap()).await.unwrap();
            let (seen, cut) = (seen.clone(), cut.clone());
            tokio::spawn(async move {
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::select! {
                    () = pipe(cr, sw, way == Cut::Up, &seen, &cut, cut_after) => {}
                    () = pipe(sr, cw, way == Cut::Down, &seen, &cut, cut_after) => {}
                }
            });
        }
    });
    (url, cut_flag)
}

/// [`cutting_proxy_on`] cutting an upload.
async fn cutting_proxy(upstream: &str, cut_after: u64) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    cutting_proxy_on(upstream, cut_after, Cut::Up).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_broken_mid_upload_is_resumed_from_the_gateways_offset_in_the_same_run() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let content = noise(8 << 20);
    let src = work.file("big.bin", &content);
    let (proxy, cut) = cutting_proxy(&server.url, 3 << 20).await;
    let mut send = command_via(&server, &proxy, &bob, &["send", &src, "--to", "hmpps/alice"]);
    send.env("SEALPOST_TUS_CHUNK", "1048576");
    let out = tokio::task::spawn_blocking(move || send.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(cut.load(std::sync::atomic::Ordering::SeqCst), "the proxy cut a connection");
    let text = stdout(&out);
    let mut lines = text.lines();
    let transfer = lines.next().unwrap().to_owned();
    let link = lines.next().unwrap().split_once(' ').unwrap().1.to_owned();
    assert_eq!(files_in(&state_dir(&server)), Vec::<PathBuf>::new());
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "upload.started").count(), 1, "one upload, resumed: {events:?}");
    let out_path = work.path("big.out");
    let got = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&out_path)]).await;
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    assert!(std::fs::read(&out_path).unwrap() == content);
    let (_, info) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    assert_eq!(info["links"][0]["acknowledged"], "decrypted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_without_a_target_extracts_into_the_current_directory_and_dir_is_created() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let src = work.file("report.csv", b"id,name\n1,Example Person\n");
    let (_, link) = send(&server, &bob, &[&src]).await;
    let here = work.path("here");
    std::fs::create_dir(&here).unwrap();
    let mut fetch = command(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-q"]);
    fetch.current_dir(&here);
    let out = tokio::task::spawn_blocking(move || fetch.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(here.join("report.csv")).unwrap(), b"id,name\n1,Example Person\n");

    let (_, link) = send(&server, &bob, &[&src]).await;
    let missing = work.path("not/yet/there");
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "--dir", &s(&missing), "-q"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(missing.join("report.csv").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_broken_mid_way_resumes_with_a_range_in_the_same_run() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let content = noise(12 << 20);
    let src = work.file("big.bin", &content);
    let (_, link) = send(&server, &bob, &[&src]).await;
    let (proxy, cut) = cutting_proxy_on(&server.url, 4 << 20, Cut::Down).await;
    let dest = work.path("big.out");
    let fetch = command_via(&server, &proxy, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&dest)]);
    let out = tokio::task::spawn_blocking(move || { fetch }.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(cut.load(std::sync::atomic::Ordering::SeqCst), "the proxy cut the download");
    assert_eq!(std::fs::read(&dest).unwrap(), content);
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "download.completed").count(), 1);
    let failures = server.failure_codes().await;
    assert!(failures.iter().any(|c| c == "client_disconnected"), "{failures:?}");
}

/// A TCP proxy in front of `upstream` that, once the answers (over all connections) pass
/// `stall_after` bytes, stops passing answer bytes on that connection for good, keeping it open;
/// later connections pass freely. Returns its URL, whether it stalled, and the answer bytes passed.
async fn stalling_proxy(
    upstream: &str,
    stall_after: u64,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stalled, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (stalled_flag, seen_count) = (stalled.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            // A small receive buffer, so that the gateway cannot park the whole answer in the
            // kernel's buffers (and count it as delivered) while the proxy holds it back.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(64 * 1024).unwrap();
            let server = socket.connect(upstream.parse().unwrap()).await.unwrap();
            let (stalled, seen) = (stalled.clone(), seen.clone());
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                };
                let down = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = sr.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        let total = seen.load(Ordering::SeqCst) + n as u64;
                        if total > stall_after && !stalled.swap(true, Ordering::SeqCst) {
                            // Hold the connection open, passing nothing more, until the client goes.
                            std::future::pending::<()>().await;
                        }
                        seen.fetch_add(n as u64, Ordering::SeqCst);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    () = up => {}
                    () = down => {}
                }
            });
        }
    });
    (url, stalled_flag, seen_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_killed_mid_download_resumes_from_its_partial_file_when_run_again() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    // Larger than what the kernel's buffers on the gateway's side can hold while the proxy stalls.
    let content = noise(12 << 20);
    let src = work.file("extract.bin", &content);
    let (transfer, link) = send(&server, &bob, &[&src]).await;
    let blob = std::fs::read(server.data_dir.join("blobs").join(format!("{transfer}.age"))).unwrap();
    let (proxy, stalled, seen) = stalling_proxy(&server.url, 2 << 20).await;
    let dest = work.path("extract.out");
    let part = work.path("extract.out.sealpost-part");
    let args = ["fetch", &link, "-i", &s(&work.identity), "-o", &s(&dest)];

    // The proxy stops passing bytes 2 MiB in, so the client waits mid-download: kill it there.
    let mut first = command_via(&server, &proxy, &alice, &args);
    first.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = first.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !(stalled.load(std::sync::atomic::Ordering::SeqCst)
        && std::fs::metadata(&part).is_ok_and(|m| m.len() > 1 << 20))
    {
        assert!(child.try_wait().unwrap().is_none(), "the client ended before it was killed");
        assert!(std::time::Instant::now() < deadline, "the download never got going");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dest.exists());
    let saved = std::fs::read(&part).unwrap();
    let (line, bytes) = saved.split_at(saved.iter().position(|b| *b == b'\n').unwrap() + 1);
    let (_, info) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    let digest = info["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        String::from_utf8_lossy(line),
        format!("sealpost.part/v1 {transfer} {digest} {}\n", blob.len()),
        "the partial file names what it is part of"
    );
    assert!(bytes.len() > 1 << 20 && bytes.len() < blob.len(), "{}", bytes.len());
    assert!(bytes == &blob[..bytes.len()], "the partial file holds the ciphertext's first bytes");
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&part).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The gateway gives the link back once it sees the client gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !server.failure_codes().await.iter().any(|c| c == "client_disconnected") {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway never noticed the killed client: {:?} {:?}",
            server.failure_codes().await,
            server.events().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The same command again: it continues from the bytes it has.
    let before = seen.load(std::sync::atomic::Ordering::SeqCst);
    let again = command_via(&server, &proxy, &alice, &args);
    let out = tokio::task::spawn_blocking(move || { again }.output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "sealpost: resuming the download of {digest} from byte {} of {} (`{}`)",
            bytes.len(),
            blob.len(),
            s(&part)
        )),
        "{}",
        stderr(&out)
    );
    let passed = seen.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(passed < blob.len() as u64 - (1 << 20), "the second run took {passed} bytes of {}", blob.len());
    assert!(std::fs::read(&dest).unwrap() == content);
    assert!(!part.exists(), "a completed download leaves no partial file");
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| *e == "download.completed").count(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_file_of_another_transfer_is_discarded_and_a_corrupt_one_fails_the_digest_and_goes() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let content = noise(20_000);
    let src = work.file("a.bin", &content);

    // Another transfer's bytes under the same output name: never mixed in.
    let (_, link) = send(&server, &bob, &[&src]).await;
    let dest = work.path("a.out");
    let part = work.path("a.out.sealpost-part");
    let other = format!("sealpost.part/v1 {} sha256:{} 30000\n", "0".repeat(32), "1".repeat(64));
    std::fs::write(&part, [other.as_bytes(), &[7u8; 5000]].concat()).unwrap();
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&dest)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("resuming"), "{}", stderr(&out));
    assert!(std::fs::read(&dest).unwrap() == content);
    assert!(!part.exists());

    // This transfer's line, its first bytes, then bytes that are not the ciphertext's: the
    // resumed download fails the digest check, nothing is written, and the partial file goes.
    let (transfer, link) = send(&server, &bob, &[&src]).await;
    let blob = std::fs::read(server.data_dir.join("blobs").join(format!("{transfer}.age"))).unwrap();
    let (_, info) = server.get(&bob, &format!("/api/v1/transfers/{transfer}")).await;
    let digest = info["digest"].as_str().unwrap();
    let mut forged = blob[..4000].to_vec();
    forged[3000] ^= 1;
    let line = format!("sealpost.part/v1 {transfer} {digest} {}\n", blob.len());
    let dest = work.path("b.out");
    let part = work.path("b.out.sealpost-part");
    std::fs::write(&part, [line.as_bytes(), &forged].concat()).unwrap();
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&dest)]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("resuming the download of {digest} from byte 4000 ")), "{}", stderr(&out));
    let lines = failure_lines(&out);
    assert!(lines[0].starts_with("sealpost: error: digest_mismatch: "), "{lines:?}");
    assert!(!dest.exists());
    assert!(!part.exists(), "a partial file that failed the digest is deleted");
}

/// Makes a signing key for `token`'s user with `sealpost keygen --signing`, registers it with
/// `sealpost keys add`, and returns the key file and its fingerprint.
async fn signing_key(server: &TestServer, token: &str, dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(["keygen", "--signing", "-o", &s(&file)])
        .output()
        .unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let public = stdout(&made).trim().to_owned();
    assert!(public.starts_with("sealpost-signing1"), "{public}");
    let added = sealpost(server, token, &["keys", "add", &public]).await;
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    (file, sealpost::directory::fingerprint(&public))
}

/// Sends `src` to hmpps/alice signed with `key`; returns (transfer id, link).
async fn send_signed(server: &TestServer, bob: &str, src: &str, key: &Path, fingerprint: &str) -> (String, String) {
    let out = sealpost(server, bob, &["send", src, "--to", "hmpps/alice", "--signing-key", &s(key)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("sealpost: signed the manifest with {fingerprint}")), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let id = lines.next().unwrap().to_owned();
    let link = lines.next().unwrap().split_once(' ').unwrap().1.to_owned();
    (id, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_manifest_is_verified_by_fetch_against_the_senders_key_in_the_log() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let (key, fingerprint) = signing_key(&server, &bob, work.dir.path(), "bob.signing").await;
    let src = work.file("report.csv", b"id,name\n1,x\n");
    let (transfer, link) = send_signed(&server, &bob, &src, &key, &fingerprint).await;

    // The manifest is there for the recipient, named by the sender's key.
    let shown =
        sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("out"))]).await;
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(
        stderr(&shown).contains("sealpost: verified: `acme/bob` signed the manifest of sha256:"),
        "{}",
        stderr(&shown)
    );
    assert!(stderr(&shown).contains(&fingerprint), "{}", stderr(&shown));
    assert_eq!(std::fs::read(work.path("out")).unwrap(), b"id,name\n1,x\n");

    // The sender sees it too; handing it in again is a conflict.
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/transfers/{transfer}/manifest", server.url);
    let stored: serde_json::Value = http.get(&url).bearer_auth(&bob).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["sender"], "acme/bob");
    assert_eq!(stored["key"]["fingerprint"], fingerprint.as_str());
    assert!(stored["manifest"].as_str().unwrap().starts_with("sealpost.manifest/v2\nsender acme/bob\n"));
    let body =
        serde_json::json!({ "manifest": stored["manifest"], "signature": stored["signature"], "key": fingerprint });
    let again = http.post(&url).bearer_auth(&bob).json(&body).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let by_recipient = http.post(&url).bearer_auth(&alice).json(&body).send().await.unwrap();
    assert_eq!(by_recipient.status().as_u16(), 404, "only the sender signs");
    // An unsigned transfer answers 404 and fetch notes it.
    let (_, plain_link) = send(&server, &bob, &[&src]).await;
    let plain =
        sealpost(&server, &alice, &["fetch", &plain_link, "-i", &s(&work.identity), "-o", &s(&work.path("o2"))]).await;
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    assert!(stderr(&plain).contains("did not sign"), "{}", stderr(&plain));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_with_an_altered_signature_is_refused_and_nothing_is_written() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let (key, fingerprint) = signing_key(&server, &bob, work.dir.path(), "bob.signing").await;
    let src = work.file("report.csv", &noise(3000));
    let (transfer, link) = send_signed(&server, &bob, &src, &key, &fingerprint).await;
    let db = server.database().await;
    let forged = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([1u8; 64])
    };
    let changed = sqlx::query("UPDATE manifests SET signature = $1 WHERE transfer_id = $2")
        .bind(&forged)
        .bind(&transfer)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    db.close().await;

    let out_path = work.path("report.out");
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&out_path)]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let lines = failure_lines(&out);
    assert!(lines[0].starts_with("sealpost: error: sender_signature_invalid: "), "{lines:?}");
    assert!(!out_path.exists());
    assert_eq!(std::fs::read_dir(work.dir.path()).unwrap().count(), 3, "alice.key, bob.signing, report.csv only");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipients_signing_key_is_not_a_recipient_stanza() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let work = Work::new(&id);
    signing_key(&server, &alice, work.dir.path(), "alice.signing").await;
    let src = work.file("report.csv", b"id\n");
    let (_, link) = send(&server, &bob, &[&src]).await;
    let out = sealpost(&server, &alice, &["fetch", &link, "-i", &s(&work.identity), "-o", &s(&work.path("out"))]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(work.path("out")).unwrap(), b"id\n");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_send_tells_the_sender_it_waits_for_a_compliance_officer() {
    let server = TestServer::start().await;
    let (bob, _alice, id) = parties(&server).await;
    let work = Work::new(&id);
    let src = work.file("case.csv", b"name,dob\n");
    let (key, _) = signing_key(&server, &bob, work.dir.path(), "bob.signing").await;
    let args =
        ["send", &src, "--to", "hmpps/alice", "--classification", "OFFICIAL-SENSITIVE", "--signing-key", &s(&key)];
    let out = sealpost(&server, &bob, &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).lines().any(|l| l
            == "sealpost: the transfer is held until a compliance officer approves it; its links work from then on"),
        "{}",
        stderr(&out)
    );

    let plain = work.file("plain.txt", b"not sensitive");
    let out = sealpost(&server, &bob, &["send", &plain, "--to", "hmpps/alice"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("held"), "an OFFICIAL send is not held: {}", stderr(&out));
}
