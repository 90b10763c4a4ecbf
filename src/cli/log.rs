//! `sealpost receipt verify` and `sealpost log verify|export`: check receipts and the whole
//! transparency log without trusting the gateway (exit 0 valid, 4 not, 1 network or disk).
//!
//! The checking itself is [`crate::transparency::verify`]; this module reads keys and policies, fetches the
//! log over HTTP(S) or from an export directory, and keeps the last verified checkpoint.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use sha2::{Digest as _, Sha256};

use super::{EXIT_CONFIG, EXIT_VERIFY, Failure};
use crate::transparency::tlog::note::Verifier;
use crate::transparency::tlog::quorum::Policy;
use crate::transparency::verify::{self, CHECKPOINT_PATH, KEY_PATH, LogError, LogReport, ReceiptSummary, SavedState};

/// The largest file the log can serve: a full entry bundle of maximal entries.
const MAX_FETCH_BYTES: usize = 256 * (2 + 65_535);

/// `sealpost receipt …`
#[derive(Debug, Subcommand)]
pub(super) enum ReceiptCommand {
    /// Verify a receipt (a c2sp.org/tlog-proof@v1, or a signed delivery receipt from `receipt
    /// get`) offline: exit 0 valid, 4 not.
    Verify(ReceiptVerifyArgs),
    /// Save one of a transfer's receipts to a file (a signed delivery's with the proof of who
    /// signed), to verify offline or hand to an auditor.
    Get(ReceiptGetArgs),
}

/// Options for `sealpost receipt get`.
#[derive(Debug, Args)]
pub(super) struct ReceiptGetArgs {
    #[command(flatten)]
    client: super::ClientArgs,
    /// The transfer id.
    id: String,
    /// Which event's receipt: `upload.accepted`, `delivery.acknowledged`, … (default:
    /// `delivery.acknowledged`).
    #[arg(long, default_value = "delivery.acknowledged")]
    event: String,
    /// Whose delivery, when several recipients reported (`ORG/NAME`).
    #[arg(long, value_name = "ORG/NAME")]
    by: Option<String>,
    /// Write the receipt here (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Whom to trust: the gateway's verifier key, or a tlog-policy with witnesses and a quorum.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(super) struct TrustArgs {
    /// The log's verifier key (`name+hexid+base64`, as served at /log/key), or a file holding it.
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    /// A C2SP tlog-policy file: log keys, witness keys and the witness quorum.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

/// As [`TrustArgs`], optional (default: the key the log serves).
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub(super) struct OptionalTrustArgs {
    /// The log's verifier key, or a file holding it (default: the one the log serves).
    #[arg(long, value_name = "VKEY")]
    key: Option<String>,
    /// A C2SP tlog-policy file.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

/// Options for `sealpost receipt verify`.
#[derive(Debug, Args)]
pub(super) struct ReceiptVerifyArgs {
    /// The receipt file (`-` for standard input).
    file: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Also check that the SHA-256 of this file (the ciphertext) is the entry's digest.
    #[arg(long, value_name = "PATH")]
    expect_file: Option<PathBuf>,
}

/// `sealpost log …`
#[derive(Debug, Subcommand)]
pub(super) enum LogCommand {
    /// Verify the whole log and its consistency with the last run: exit 0 valid, 4 not.
    Verify(LogVerifyArgs),
    /// Download the log (checkpoint, key, tiles, entry bundles) into a directory, verified.
    Export(LogExportArgs),
}

/// Where the log is served.
#[derive(Debug, Args)]
pub(super) struct RemoteArgs {
    /// The gateway's URL (`/log/` is added unless the URL ends in `/log`).
    #[arg(long, env = "SEALPOST_URL")]
    pub(super) url: Option<String>,
    /// A bearer token, for gateways that restrict /log/ (or set SEALPOST_TOKEN).
    #[arg(long, env = "SEALPOST_TOKEN", hide_env_values = true)]
    pub(super) token: Option<String>,
}

/// Options for `sealpost log verify`.
#[derive(Debug, Args)]
pub(super) struct LogVerifyArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Verify an export directory (from `sealpost log export`) instead of fetching.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Where the last verified checkpoint is kept (`DIR/checkpoint`), to detect rewrites.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
}

/// Options for `sealpost log export`.
#[derive(Debug, Args)]
pub(super) struct LogExportArgs {
    /// The export directory; a checkpoint already there must be extended, not rewritten.
    dir: PathBuf,
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(flatten)]
    trust: OptionalTrustArgs,
}

/// Why a log file could not be fetched.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("cannot reach `{url}`: {reason}")]
    Http { url: String, reason: String },
    #[error("`{url}` answered {status}")]
    Status { url: String, status: reqwest::StatusCode },
    #[error("`{url}` is larger than {MAX_FETCH_BYTES} bytes")]
    TooLarge { url: String },
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where log files come from: the gateway over HTTP(S), or an export directory.
#[derive(Debug)]
enum Source {
    Http { client: reqwest::Client, base: String, token: Option<String>, runtime: tokio::runtime::Handle },
    Dir(PathBuf),
}

impl Source {
    fn remote(args: &RemoteArgs) -> Result<Self, Failure> {
        let url = args.url.as_deref().map(str::trim).filter(|u| !u.is_empty()).ok_or_else(|| {
            Failure::new("no log URL given")
                .hint("pass --url (the gateway's URL, or its /log/ URL) or set SEALPOST_URL")
                .exit(EXIT_CONFIG)
        })?;
        let trimmed = url.trim_end_matches('/');
        let base = if trimmed.ends_with("/log") { format!("{trimmed}/") } else { format!("{trimmed}/log/") };
        let client = reqwest::Client::builder()
            .user_agent(concat!("sealpost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::new(format!("cannot build the HTTP client: {e}")))?;
        let token = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
        Ok(Source::Http { client, base, token, runtime: tokio::runtime::Handle::current() })
    }

    fn describe(&self) -> String {
        match self {
            Source::Http { base, .. } => base.clone(),
            Source::Dir(dir) => dir.display().to_string(),
        }
    }

    /// Fetches one log path; `None` when the log has no such file. Blocking: call it off the
    /// async workers (`spawn_blocking`).
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, FetchError> {
        match self {
            Source::Dir(dir) => match std::fs::read(dir.join(path)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(FetchError::Io { path: dir.join(path).display().to_string(), source }),
            },
            Source::Http { client, base, token, runtime } => {
                let url = format!("{base}{path}");
                runtime.block_on(http_get(client, url, token.as_deref()))
            }
        }
    }
}

async fn http_get(client: &reqwest::Client, url: String, token: Option<&str>) -> Result<Option<Vec<u8>>, FetchError> {
    let mut request = client.get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let unreachable = |url: &str, e: reqwest::Error| FetchError::Http { url: url.to_owned(), reason: root_cause(&e) };
    let mut response = request.send().await.map_err(|e| unreachable(&url, e))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(FetchError::Status { url, status });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&url, e))? {
        if body.len() + chunk.len() > MAX_FETCH_BYTES {
            return Err(FetchError::TooLarge { url });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The innermost error's text, which is the useful one for connection failures.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// An error and its causes on one line: `outer: inner: innermost`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut current = e.source();
    while let Some(next) = current {
        out.push_str(": ");
        out.push_str(&next.to_string());
        current = next.source();
    }
    out
}

/// The trust policy from `--key` (a key string or a file holding one) or `--policy`.
fn load_policy(key: Option<&str>, policy: Option<&Path>, exit: u8) -> Result<Option<Policy>, Failure> {
    if let Some(path) = policy {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("cannot read the policy `{}`: {e}", path.display())).exit(exit))?;
        return Policy::parse(&text).map(Some).map_err(|e| {
            Failure::new(format!("the policy `{}` is invalid: {}", path.display(), chain(&e)))
                .hint("see https://c2sp.org/tlog-policy for the format")
                .exit(exit)
        });
    }
    let Some(key) = key else { return Ok(None) };
    let vkey = if Path::new(key).is_file() {
        std::fs::read_to_string(key)
            .map_err(|e| Failure::new(format!("cannot read the key file `{key}`: {e}")).exit(exit))?
    } else {
        key.to_owned()
    };
    policy_from_vkey(&vkey, exit).map(Some)
}

/// A policy trusting one verifier key string (never read as a path: it may come from the server).
fn policy_from_vkey(vkey: &str, exit: u8) -> Result<Policy, Failure> {
    let verifier = Verifier::from_vkey(vkey.trim()).map_err(|e| {
        Failure::new(format!("`{}` is not a verifier key: {e}", vkey.trim()))
            .hint("pass the string the gateway serves at /log/key (name+hexid+base64), or a file holding it")
            .exit(exit)
    })?;
    Ok(Policy::log_only(verifier))
}

fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(format!("sha256:{}", hex::encode(hasher.finalize())));
        }
        hasher.update(&buf[..n]);
    }
}

/// Runs `sealpost receipt …`.
pub(super) async fn run_receipt(command: ReceiptCommand) -> Result<(), Failure> {
    match command {
        ReceiptCommand::Verify(args) => verify_receipt_file(args),
        ReceiptCommand::Get(args) => get_receipt(args).await,
    }
}

/// `sealpost receipt get`: one receipt of a transfer, exactly one (several matching is an
/// ambiguity to resolve with `--by`, never a guess).
async fn get_receipt(args: ReceiptGetArgs) -> Result<(), Failure> {
    use crate::wire::log::{ReceiptList, SignedDeliveryReceipt};
    let client = super::client::Client::new(&args.client)?;
    let list: ReceiptList = client.get(&format!("/api/v1/transfers/{}/receipts", args.id)).await?;
    let by: Option<crate::model::UserRef> = match &args.by {
        Some(b) => Some(b.parse().map_err(|e| Failure::new(format!("`{b}` is not ORG/NAME: {e}")))?),
        None => None,
    };
    let matching: Vec<_> = list
        .receipts
        .iter()
        .filter(|r| r.event == args.event)
        .filter(|r| by.is_none() || r.signed_for.as_ref().map(|s| &s.by) == by.as_ref())
        .collect();
    let receipt = match matching.as_slice() {
        [one] => *one,
        [] => {
            return Err(Failure::new(format!(
                "transfer `{}` has no `{}` receipt{}",
                args.id,
                args.event,
                by.as_ref().map(|b| format!(" signed by {b}")).unwrap_or_default()
            ))
            .hint("`sealpost status ID` shows where it stands; the log may integrate a new event in a second"));
        }
        several => {
            let signers: Vec<String> =
                several.iter().filter_map(|r| r.signed_for.as_ref().map(|s| s.by.to_string())).collect();
            return Err(Failure::new(format!(
                "transfer `{}` has {} `{}` receipts",
                args.id,
                several.len(),
                args.event
            ))
            .hint(format!(
                "choose one with --by ORG/NAME (signed by: {})",
                if signers.is_empty() { "none".into() } else { signers.join(", ") }
            )));
        }
    };
    let text = match &receipt.signed_for {
        Some(proof) => {
            let bundle = SignedDeliveryReceipt {
                format: SignedDeliveryReceipt::FORMAT.to_owned(),
                signer: proof.by.clone(),
                name_salt: proof.name_salt.clone(),
                delivery: receipt.receipt.clone(),
                key: proof.key_receipt.clone(),
            };
            let mut json = serde_json::to_string_pretty(&bundle)
                .map_err(|e| Failure::new(format!("cannot write the receipt: {e}")))?;
            json.push('\n');
            json
        }
        None => receipt.receipt.clone(),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| Failure::new(format!("cannot write `{}`: {e}", path.display())))?;
            eprintln!(
                "sealpost: saved the `{}` receipt (entry {}) to `{}`{}",
                receipt.event,
                receipt.index,
                path.display(),
                receipt.signed_for.as_ref().map(|s| format!(", signed for by {}", s.by)).unwrap_or_default()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `sealpost receipt verify`: every failure exits 4, so that only a verified receipt exits 0.
fn verify_receipt_file(args: ReceiptVerifyArgs) -> Result<(), Failure> {
    let policy = load_policy(args.trust.key.as_deref(), args.trust.policy.as_deref(), EXIT_VERIFY)?
        .ok_or_else(|| Failure::new("no key or policy given").hint("pass --key or --policy").exit(EXIT_VERIFY))?;
    let name = args.file.display().to_string();
    let mut raw = Vec::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().lock().read_to_end(&mut raw)
    } else {
        std::fs::File::open(&args.file).and_then(|mut f| f.read_to_end(&mut raw))
    };
    read.map_err(|e| Failure::new(format!("cannot read the receipt `{name}`: {e}")).exit(EXIT_VERIFY))?;
    let text = String::from_utf8(raw)
        .map_err(|_| Failure::new(format!("the receipt `{name}` is not utf-8 text")).exit(EXIT_VERIFY))?;
    let expected = match &args.expect_file {
        Some(path) => Some(
            sha256_file(path)
                .map_err(|e| Failure::new(format!("cannot read `{}`: {e}", path.display())).exit(EXIT_VERIFY))?,
        ),
        None => None,
    };
    if text.trim_start().starts_with('{') {
        return verify_signed_delivery(&name, &text, &policy, expected.as_deref(), args.expect_file.as_deref());
    }
    // Saving a receipt from JSON (`jq -r`) adds a newline after the note's own: take it off.
    let text = format!("{}\n", text.trim_end_matches('\n'));
    let summary = verify::verify_receipt(&text, &policy, expected.as_deref()).map_err(|e| {
        Failure::new(format!("receipt `{name}` rejected: {}", chain(&e)))
            .hint("check that --key or --policy is the gateway's, and that the receipt was saved unchanged")
            .exit(EXIT_VERIFY)
    })?;
    print_receipt(&summary, args.expect_file.as_deref());
    Ok(())
}

/// Verifies a signed delivery receipt (`sealpost.signed-delivery/v1`) and says who signed.
fn verify_signed_delivery(
    name: &str,
    text: &str,
    policy: &Policy,
    expected: Option<&str>,
    expect_file: Option<&Path>,
) -> Result<(), Failure> {
    let bundle: crate::wire::log::SignedDeliveryReceipt = serde_json::from_str(text).map_err(|e| {
        Failure::new(format!("`{name}` is not a signed delivery receipt: {e}"))
            .hint("save it with `sealpost receipt get ID -o FILE`, unchanged")
            .exit(EXIT_VERIFY)
    })?;
    let verified = crate::client::receipts::verify_signed_delivery(&bundle, policy, expected).map_err(|e| {
        Failure::new(format!("receipt `{name}` rejected: {}", chain(&e)))
            .hint("check that --key or --policy is the gateway's, and that the receipt was saved unchanged")
            .exit(EXIT_VERIFY)
    })?;
    print_receipt(&verified.delivery, expect_file);
    println!(
        "signed for by {} at {} with key {} (registered to them at entry {})",
        bundle.signer,
        verified.statement.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        verified.signing_key,
        verified.key.index
    );
    println!(
        "statement  checked against the log at size {}; the signature verifies",
        verified.statement.checkpoint_size
    );
    Ok(())
}

fn print_receipt(s: &ReceiptSummary, expect_file: Option<&Path>) {
    let e = &s.entry;
    println!("receipt verified: entry {} of {} in log {}", s.index, s.tree_size, s.origin);
    println!("event      {}", e.event());
    println!("time       {}", e.time_text());
    println!("transfer   {}", e.transfer().unwrap_or("-"));
    println!("digest     {}", e.digest().unwrap_or("-"));
    println!("index      {}", s.index);
    println!("tree size  {}", s.tree_size);
    println!("witnesses  {}", if s.witnesses.is_empty() { "none".to_owned() } else { s.witnesses.join(", ") });
    if let Some(path) = expect_file {
        println!("the digest of `{}` matches", path.display());
    }
}

/// Turns a verification failure into the CLI's failure: exit 1 when the log could not be
/// fetched, 4 when it does not verify.
fn log_failure(e: &LogError<FetchError>) -> Failure {
    let failure = Failure::new(format!("log rejected: {}", chain(e)));
    match e {
        LogError::Fetch { .. } => {
            return Failure::new(chain(e)).hint("check --url, the network, and --token if /log/ is restricted");
        }
        LogError::Checkpoint(_) => {
            failure.hint("check --key or --policy: use the key published by the gateway's operator")
        }
        LogError::OriginChanged { .. } | LogError::Truncated { .. } | LogError::Rewritten { .. } => failure.hint(
            "this log does not extend the one verified last time; keep the saved checkpoint as evidence and report it",
        ),
        LogError::Entry { .. } | LogError::Lifecycle(_) => {
            failure.hint("the trail records something the gateway must never do; report it to compliance")
        }
        _ => failure.hint("the log's files differ from what its signed checkpoint commits to; keep a copy as evidence"),
    }
    .exit(EXIT_VERIFY)
}

fn print_report(report: &LogReport, source: &str) {
    println!("log verified: {} at {}", report.origin, source);
    println!("entries    {}", report.size);
    println!("root       {}", report.root);
    println!(
        "witnesses  {}",
        if report.witnesses.is_empty() { "none".to_owned() } else { report.witnesses.join(", ") }
    );
    match report.previous_size {
        Some(n) => println!("extends    the saved checkpoint of {n} entries"),
        None => println!("extends    nothing saved (first run)"),
    }
    println!("checked    {} tiles, {} entry bundles, lifecycle invariants", report.tiles, report.bundles);
    for (event, count) in &report.counts {
        println!("  {event:<22} {count}");
    }
}

/// Writes `bytes` to `dir/name` through a temporary file, fsync and rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write as _;
    let path = dir.join(name);
    let parent = path.parent().unwrap_or(dir);
    let io = |e: std::io::Error| Failure::new(format!("cannot write `{}`: {e}", path.display()));
    std::fs::create_dir_all(parent).map_err(io)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io)
}

fn read_saved(dir: &Path) -> Result<Option<SavedState>, Failure> {
    let path = dir.join(CHECKPOINT_PATH);
    match std::fs::read_to_string(&path) {
        Ok(text) => SavedState::parse(&text).map(Some).map_err(|e| {
            Failure::new(format!("`{}` is not a saved checkpoint: {}", path.display(), chain(&e)))
                .hint("it is written only by `sealpost log verify`; restore it from a backup")
                .exit(EXIT_CONFIG)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::new(format!("cannot read `{}`: {e}", path.display()))),
    }
}

/// The trust policy a monitor was given (`--key` or `--policy`), if any; exit 1 when unusable.
pub(super) fn load_trust(key: Option<&str>, policy: Option<&Path>) -> Result<Option<Policy>, Failure> {
    load_policy(key, policy, EXIT_CONFIG)
}

/// The log key pinned in `state` (file `key`), or, on the first run, the one the log serves,
/// pinned there now (trust on first use); answers the policy and the key string when it was
/// pinned by this call.
pub(super) async fn pin_key(remote: &RemoteArgs, state: &Path) -> Result<(Policy, Option<String>), Failure> {
    let path = state.join(KEY_PATH);
    match std::fs::read_to_string(&path) {
        Ok(vkey) => return Ok((policy_from_vkey(&vkey, EXIT_CONFIG)?, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Failure::new(format!("cannot read `{}`: {e}", path.display()))),
    }
    let source = Source::remote(remote)?;
    let served = tokio::task::spawn_blocking(move || source.fetch(KEY_PATH))
        .await
        .map_err(|e| Failure::new(format!("fetching the log key stopped: {e}")))?
        .map_err(|e| Failure::new(chain(&e)).hint("check --url, the network, and --token"))?
        .ok_or_else(|| Failure::new("the log serves no key").hint("pass --key or --policy"))?;
    let vkey = String::from_utf8_lossy(&served).trim().to_owned();
    let policy = policy_from_vkey(&vkey, EXIT_VERIFY)?;
    write_atomic(state, KEY_PATH, format!("{vkey}\n").as_bytes())?;
    Ok((policy, Some(vkey)))
}

/// Verifies the whole log at `remote` under `policy` as an extension of the checkpoint saved in
/// `state`, collects what `pick` takes from each entry, then saves the new checkpoint. Answers
/// the report, the size of the saved checkpoint it extended (0 on a first run) and the picks.
pub(super) async fn follow_log<T: Send + 'static>(
    remote: &RemoteArgs,
    state: &Path,
    policy: Policy,
    mut pick: impl FnMut(u64, &verify::Entry) -> Option<T> + Send + 'static,
) -> Result<(LogReport, u64, Vec<T>), Failure> {
    let source = Source::remote(remote)?;
    let saved = read_saved(state)?;
    let from = saved.as_ref().map_or(0, |s| s.checkpoint().size());
    let (report, picked) = tokio::task::spawn_blocking(move || {
        let mut picked = Vec::new();
        let report = verify::verify_log_visiting(
            |p| source.fetch(p),
            &policy,
            saved.as_ref(),
            |index, entry| {
                if let Some(t) = pick(index, entry) {
                    picked.push(t);
                }
            },
        );
        (report, picked)
    })
    .await
    .map_err(|e| Failure::new(format!("verification stopped: {e}")))?;
    let report = report.map_err(|e| log_failure(&e))?;
    write_atomic(state, CHECKPOINT_PATH, report.state.text().as_bytes())?;
    Ok((report, from, picked))
}

/// Runs `sealpost log …`.
pub(super) async fn run_log(command: LogCommand) -> Result<(), Failure> {
    match command {
        LogCommand::Verify(args) => verify(args).await,
        LogCommand::Export(args) => export(args).await,
    }
}

async fn verify(args: LogVerifyArgs) -> Result<(), Failure> {
    let policy = load_policy(args.trust.key.as_deref(), args.trust.policy.as_deref(), EXIT_CONFIG)?
        .ok_or_else(|| Failure::new("no key or policy given").hint("pass --key or --policy").exit(EXIT_CONFIG))?;
    let source = match &args.dir {
        Some(dir) => Source::Dir(dir.clone()),
        None => Source::remote(&args.remote)?,
    };
    let saved = read_saved(&args.state)?;
    let described = source.describe();
    let report = tokio::task::spawn_blocking(move || verify::verify_log(|p| source.fetch(p), &policy, saved.as_ref()))
        .await
        .map_err(|e| Failure::new(format!("verification stopped: {e}")))?
        .map_err(|e| log_failure(&e))?;
    print_report(&report, &described);
    write_atomic(&args.state, CHECKPOINT_PATH, report.state.text().as_bytes())?;
    println!("saved      {}", args.state.join(CHECKPOINT_PATH).display());
    Ok(())
}

async fn export(args: LogExportArgs) -> Result<(), Failure> {
    let source = Source::remote(&args.remote)?;
    let pinned = load_policy(args.trust.key.as_deref(), args.trust.policy.as_deref(), EXIT_CONFIG)?;
    let saved = read_saved(&args.dir)?;
    let described = source.describe();
    let (key, fetched, result) = tokio::task::spawn_blocking(move || {
        let key = source.fetch(KEY_PATH);
        let policy = match (pinned, &key) {
            (Some(p), _) => Ok(p),
            (None, Ok(Some(served))) => policy_from_vkey(&String::from_utf8_lossy(served), EXIT_VERIFY),
            (None, _) => Err(Failure::new("the log serves no key").hint("pass --key or --policy")),
        };
        let mut fetched: Vec<(String, Vec<u8>)> = Vec::new();
        let result = policy.map(|policy| {
            let recording = |path: &str| {
                let got = source.fetch(path)?;
                if let Some(bytes) = &got {
                    fetched.push((path.to_owned(), bytes.clone()));
                }
                Ok(got)
            };
            verify::verify_log(recording, &policy, saved.as_ref())
        });
        (key, fetched, result)
    })
    .await
    .map_err(|e| Failure::new(format!("export stopped: {e}")))?;
    let key = key.map_err(|e| Failure::new(chain(&e)).hint("check --url, the network, and --token"))?;
    let report = result?.map_err(|e| log_failure(&e))?;
    for (path, bytes) in fetched.iter().filter(|(p, _)| p != CHECKPOINT_PATH) {
        write_atomic(&args.dir, path, bytes)?;
    }
    if let Some(key) = &key {
        write_atomic(&args.dir, KEY_PATH, key)?;
    }
    write_atomic(&args.dir, CHECKPOINT_PATH, report.state.text().as_bytes())?;
    print_report(&report, &described);
    println!("exported   {} files to {}", fetched.len() + usize::from(key.is_some()), args.dir.display());
    if args.trust.key.is_none() && args.trust.policy.is_none() {
        eprintln!("sealpost: note: verified with the key the log itself serves; pass --key to pin the published key");
    }
    Ok(())
}
