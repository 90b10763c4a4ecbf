//! Client profiles end to end: `sealpost login` against the real gateway, then commands that
//! take the gateway, token and identity from the config file; flags over profiles; refused
//! config files and token files; completions and the man page.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{self, TestServer};

/// A home directory and config file of one's own, with no gateway settings in the environment.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("home/.config/sealpost/config.toml")
    }

    /// Runs the binary with `stdin` as its standard input, off the async runtime.
    async fn run(&self, args: &[&str], stdin: &str) -> Output {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let home = self.dir.path().join("home");
        let config = self.config();
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sealpost"))
                .args(&args)
                .env("HOME", &home)
                .env("SEALPOST_CONFIG_FILE", &config)
                .env_remove("XDG_CONFIG_HOME")
                .env_remove("SEALPOST_URL")
                .env_remove("SEALPOST_TOKEN")
                .env_remove("SEALPOST_PROFILE")
                .env_remove("SEALPOST_IDENTITY")
                .env_remove("SEALPOST_LOG_KEY")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("runs");
            child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn login_from_stdin_then_whoami_needs_no_flags() {
    let server = TestServer::start().await;
    server.org("hmpps", "agency").await;
    let alice = server.user("hmpps/alice", "recipient").await;
    let home = Home::new();

    let login = home.run(&["login", "--url", &server.url], &format!("{alice}\n")).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    assert!(stdout(&login).starts_with("logged in to "), "{}", stdout(&login));
    assert!(stdout(&login).contains("hmpps/alice"), "{}", stdout(&login));

    let dir = home.config().parent().unwrap().to_owned();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("default.token")), 0o600);
    assert_eq!(std::fs::read_to_string(dir.join("default.token")).unwrap(), format!("{alice}\n"));
    let config = std::fs::read_to_string(home.config()).unwrap();
    assert_eq!(
        config,
        format!(
            "default_profile = \"default\"\n\n[profiles.default]\nurl = \"{}\"\ntoken_file = \"~/.config/sealpost/default.token\"\n",
            server.url
        )
    );

    let whoami = home.run(&["whoami"], "").await;
    assert_eq!(whoami.status.code(), Some(0), "{}", stderr(&whoami));
    assert_eq!(stdout(&whoami), "hmpps/alice (recipient, agency organisation)\n");

    let logout = home.run(&["logout"], "").await;
    assert_eq!(logout.status.code(), Some(0), "{}", stderr(&logout));
    assert!(!dir.join("default.token").exists());
    let whoami = home.run(&["whoami"], "").await;
    assert_eq!(whoami.status.code(), Some(3));
    assert!(stderr(&whoami).starts_with("sealpost: error: cannot read the token file `"), "{}", stderr(&whoami));
}

#[tokio::test]
async fn a_bad_token_is_not_saved() {
    let server = TestServer::start().await;
    let home = Home::new();
    let login = home.run(&["login", "--url", &server.url], "not-a-token\n").await;
    assert_eq!(login.status.code(), Some(1));
    assert!(stderr(&login).contains("sealpost: hint: check SEALPOST_TOKEN"), "{}", stderr(&login));
    assert!(!home.config().exists());
}

#[tokio::test]
async fn a_second_profile_is_chosen_with_profile_and_flags_override_it() {
    let server = TestServer::start().await;
    server.org("hmpps", "agency").await;
    server.org("acme", "contractor").await;
    let alice = server.user("hmpps/alice", "recipient").await;
    let bob = server.user("acme/bob", "sender").await;
    let home = Home::new();

    let first = home.run(&["login", "--profile", "work", "--url", &server.url], &alice).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = home.run(&["login", "--profile", "contractor", "--url", &server.url], &bob).await;
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let config = std::fs::read_to_string(home.config()).unwrap();
    assert!(config.starts_with("default_profile = \"work\"\n"), "{config}");
    assert!(config.contains("[profiles.work]") && config.contains("[profiles.contractor]"), "{config}");

    let default = home.run(&["whoami"], "").await;
    assert_eq!(stdout(&default), "hmpps/alice (recipient, agency organisation)\n", "{}", stderr(&default));
    let chosen = home.run(&["whoami", "--profile", "contractor"], "").await;
    assert_eq!(stdout(&chosen), "acme/bob (sender, contractor organisation)\n", "{}", stderr(&chosen));
    let chosen = home.run(&["--profile", "contractor", "whoami"], "").await;
    assert_eq!(stdout(&chosen), "acme/bob (sender, contractor organisation)\n", "{}", stderr(&chosen));

    // A flag beats the profile: bob's token with the default profile's gateway.
    let flagged = home.run(&["whoami", "--token", &bob], "").await;
    assert_eq!(stdout(&flagged), "acme/bob (sender, contractor organisation)\n", "{}", stderr(&flagged));
    let flagged = home.run(&["whoami", "--url", "http://127.0.0.1:9"], "").await;
    assert_eq!(flagged.status.code(), Some(1));
    assert!(
        stderr(&flagged).starts_with("sealpost: error: cannot reach the gateway at http://127.0.0.1:9:"),
        "{}",
        stderr(&flagged)
    );

    let missing = home.run(&["whoami", "--profile", "home"], "").await;
    assert_eq!(missing.status.code(), Some(3));
    assert_eq!(
        stderr(&missing).lines().next().unwrap(),
        format!("sealpost: error: no profile `home` in `{}`", home.config().display())
    );
}

#[tokio::test]
async fn fetch_takes_its_identity_from_the_profile() {
    let home = Home::new();
    let config = home.config();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        "default_profile = \"work\"\n[profiles.work]\nurl = \"http://127.0.0.1:9\"\nidentity = \"~/alice.txt\"\n",
    )
    .unwrap();
    let fetch = home.run(&["fetch", "TOKEN", "-o", "out", "--token", "t"], "").await;
    assert_eq!(fetch.status.code(), Some(1));
    let wanted = home.dir.path().join("home/alice.txt");
    assert!(stderr(&fetch).contains(&wanted.display().to_string()), "{}", stderr(&fetch));
}

#[tokio::test]
async fn an_unknown_key_in_the_config_file_is_a_config_error() {
    let home = Home::new();
    let config = home.config();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[profiles.work]\nurl = \"http://127.0.0.1:9\"\ntokenfile = \"x\"\n").unwrap();
    let out = home.run(&["inbox"], "").await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out).lines().next().unwrap(),
        format!(
            "sealpost: error: bad config file `{}` (line 3): unknown field `tokenfile`, expected one of `url`, `token_file`, `identity`, `signing_key`, `log_key`, `log_policy`",
            config.display()
        )
    );
}

#[tokio::test]
async fn a_world_readable_token_file_is_refused() {
    let home = Home::new();
    let config = home.config();
    let dir = config.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let token = dir.join("work.token");
    std::fs::write(&token, "secret\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        &config,
        "default_profile = \"work\"\n[profiles.work]\nurl = \"http://127.0.0.1:9\"\ntoken_file = \"~/.config/sealpost/work.token\"\n",
    )
    .unwrap();
    let out = home.run(&["whoami"], "").await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        format!(
            "sealpost: error: the token file `{0}` is readable by other users\nsealpost: hint: chmod 600 {0}, and revoke the token if others may have read it\n",
            token.display()
        )
    );
}

#[tokio::test]
async fn completions_and_the_man_page_are_generated() {
    let home = Home::new();
    let bash = home.run(&["completions", "bash"], "").await;
    assert_eq!(bash.status.code(), Some(0), "{}", stderr(&bash));
    assert!(stdout(&bash).contains("sealpost"));
    assert!(stdout(&bash).contains("login"));

    let man = home.run(&["man"], "").await;
    assert_eq!(man.status.code(), Some(0), "{}", stderr(&man));
    let page = stdout(&man);
    assert!(page.lines().any(|l| l.starts_with(".TH sealpost 1")), "{page}");

    let dir = home.dir.path().join("man");
    let pages = home.run(&["man", "-o", &dir.display().to_string()], "").await;
    assert_eq!(pages.status.code(), Some(0), "{}", stderr(&pages));
    for name in ["sealpost.1", "sealpost-send.1", "sealpost-fetch.1", "sealpost-admin-user-add.1"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.contains(".TH "), "{name}");
    }
}

#[tokio::test]
async fn send_signs_the_manifest_with_the_profiles_signing_key() {
    let server = TestServer::start().await;
    let (bob, _, _) = common::parties(&server).await;
    let home = Home::new();
    let login = home.run(&["login", "--url", &server.url], &format!("{bob}\n")).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let key = home.dir.path().join("home/bob.sign");
    let made = home.run(&["keygen", "--signing", "-o", &key.display().to_string()], "").await;
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let public = stdout(&made).trim().to_owned();
    let added = home.run(&["keys", "add", &public], "").await;
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let fingerprint = sealpost::directory::fingerprint(&public);
    let report = home.dir.path().join("report.csv");
    std::fs::write(&report, b"id,name\n").unwrap();
    let report = report.display().to_string();
    let manifest = async |transfer: &str| server.get(&bob, &format!("/api/v1/transfers/{transfer}/manifest")).await;

    // The profile without a signing key: nothing is signed.
    let unsigned = home.run(&["send", &report, "--to", "hmpps/alice"], "").await;
    assert_eq!(unsigned.status.code(), Some(0), "{}", stderr(&unsigned));
    assert!(!stderr(&unsigned).contains("signed the manifest"), "{}", stderr(&unsigned));
    let (status, body) = manifest(stdout(&unsigned).lines().next().unwrap()).await;
    assert_eq!(status, 404, "{body}");

    // With `signing_key` in the profile, the same send signs with that key.
    let mut config = std::fs::read_to_string(home.config()).unwrap();
    config.push_str("signing_key = \"~/bob.sign\"\n");
    std::fs::write(home.config(), config).unwrap();
    let signed = home.run(&["send", &report, "--to", "hmpps/alice"], "").await;
    assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
    assert!(
        stderr(&signed).contains(&format!("sealpost: signed the manifest with {fingerprint}")),
        "{}",
        stderr(&signed)
    );
    let transfer = stdout(&signed).lines().next().unwrap().to_owned();
    let (status, body) = manifest(&transfer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sender"], "acme/bob");
    assert_eq!(body["key"]["fingerprint"], fingerprint.as_str());
    assert!(body["manifest"].as_str().unwrap().starts_with("sealpost.manifest/v2\nsender acme/bob\n"));
}
