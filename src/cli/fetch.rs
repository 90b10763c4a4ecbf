//! `sealpost fetch LINK|TOKEN -i IDENTITY (-o OUT | --dir DIR)`: collect a bundle, check it, and
//! only then decrypt it into place.
//!
//! Order of checks: the identity is one of your registered keys (before the link is touched);
//! the age header is read first with closed `Range`s that stop short of the last byte, which
//! the gateway answers without using the link up, and the identity must open it (else the
//! fetch stops and the link stays usable, whatever the bundle's size); only then does the rest
//! come, with `Range: bytes=N-`, into a part file beside the output ([`part`]) that a re-run
//! continues after a killed client; the digest must equal the gateway's `X-Sealpost-Digest` and
//! the one in the log's `upload.accepted` receipt (verified against the log key), or nothing is
//! written (`digest_mismatch`); then decryption writes temporary files renamed into place at
//! the end.

use std::io::Seek as _;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Timelike as _;

use crate::wire::accounts::Whoami;
use crate::wire::deliveries::ReportDelivery;
use crate::wire::keys::{OwnKeys, UserKeys};
use crate::wire::manifests::{ManifestKey, SignedManifest};
use crate::wire::transfers::{DeliveryOutcome, RedeemRequest};
use clap::Args;

use super::client::{Client, api_failure};
use super::send::{Http, LogKeyArg, progress, upload_receipt};
use super::{ClientArgs, EXIT_VERIFY, Failure};
use crate::client::bundle::Target;
use crate::client::keys::{self, Identities};
use crate::client::receipts::{self, UploadReceiptError};
use crate::client::seal::{self, HeaderCheck, Opened, SealError};
use crate::delivery::Statement;
use crate::transparency::tlog::quorum::Policy;
use crate::transparency::verify::ReceiptError;

mod part;
use part::{Found, Part};

/// The most ciphertext kept in memory while waiting for the end of the age header.
const MAX_HEADER: usize = 1 << 20;

/// Options for `sealpost fetch`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").args(["output", "dir"]))]
pub(super) struct FetchArgs {
    #[command(flatten)]
    pub(super) client: ClientArgs,
    /// The link (`…/d#TOKEN`) or its token.
    #[arg(value_name = "LINK|TOKEN")]
    link: String,
    /// Your age identity file (from `sealpost keygen` or `age-keygen`).
    #[arg(short, long, env = "SEALPOST_IDENTITY", value_name = "IDENTITY")]
    identity: PathBuf,
    /// Write the bundle's single file (or a plain age file's plaintext) to OUT. The ciphertext
    /// collects in OUT.sealpost-part until complete; after a killed fetch, run the same command
    /// again to continue from it.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Extract the bundle's files into DIR (created if missing; default: the current directory).
    /// The ciphertext collects in DIR/TRANSFER.sealpost-part until complete.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
    /// Do not check the identity against your registered keys before redeeming.
    #[arg(long)]
    skip_key_check: bool,
    /// No progress bar and no notes on standard error (errors still print).
    #[arg(short, long)]
    quiet: bool,
    /// Your Ed25519 signing key (from `sealpost keygen --signing`, registered with `sealpost keys
    /// add`): sign for the delivery once the bundle decrypted and checked out. Without one the
    /// delivery is recorded as unsigned.
    #[arg(long, env = "SEALPOST_SIGNING_KEY", value_name = "FILE")]
    signing_key: Option<PathBuf>,
    #[command(flatten)]
    log: LogKeyArg,
}

/// What a delivery is signed with, and against: loaded and checked before the link is used.
struct Signer {
    key: ed25519_dalek::SigningKey,
    /// The key's directory fingerprint.
    fingerprint: String,
    /// Who signs: the caller.
    user: crate::model::UserRef,
}

/// What the checks before decryption established, for the delivery statement.
struct Checked {
    digest: String,
    tree_size: u64,
    root: String,
}

fn digest_mismatch(what: &str, expected: &str, actual: &str) -> Failure {
    Failure::new(format!(
        "digest_mismatch: the downloaded bundle `{actual}` is not the one {what} (`{expected}`); nothing was written"
    ))
    .hint("the bundle may have been swapped on the gateway: do not use it, and tell the sender and the gateway's operators")
    .exit(EXIT_VERIFY)
}

/// Loads the signing key and refuses, before the link is touched, one that is not among the
/// caller's registered keys (the gateway would refuse the signed delivery).
async fn load_signer(api: &Client, path: &std::path::Path) -> Result<Signer, Failure> {
    let key = keys::read_signing_key(path).map_err(|e| {
        Failure::new(e.to_string())
            .hint("pass the key from `sealpost keygen --signing -o FILE` with --signing-key, or leave it out to report unsigned")
    })?;
    let public = keys::signing_public(&key.verifying_key());
    let fingerprint = crate::directory::fingerprint(&public);
    let mine = api.get::<OwnKeys>("/api/v1/keys").await?;
    if !mine.keys.iter().any(|k| k.fingerprint == fingerprint) {
        return Err(Failure::new(format!(
            "the signing key in `{}` is not one of your registered keys",
            path.display()
        ))
        .hint(format!("the link was not used: register it with `sealpost keys add {public}` and fetch again")));
    }
    Ok(Signer { key, fingerprint, user: mine.user })
}

/// Refuses, before the link is touched, an identity that is none of the caller's registered keys.
async fn check_registered(api: &Client, ids: &Identities, path: &std::path::Path) -> Result<(), Failure> {
    if ids.recipients.is_empty() {
        return Ok(());
    }
    let mine = api.get::<OwnKeys>("/api/v1/keys").await?;
    let registered: Vec<&str> = mine.keys.iter().map(|k| k.recipient.as_str()).collect();
    if ids.recipients.iter().any(|r| registered.contains(&r.as_str())) {
        return Ok(());
    }
    Err(Failure::new(format!("the identity in `{}` is not one of your registered keys", path.display())).hint(
        "the link was not used: fetch it with the identity whose recipient you registered (`sealpost keys list`), or pass --skip-key-check",
    ))
}

/// A downloaded ciphertext, in a file no longer linked anywhere.
struct Downloaded {
    file: std::fs::File,
    /// Where the ciphertext starts in `file`.
    start: u64,
    digest: String,
    transfer: String,
    announced: String,
}

/// How many times a broken download is resumed (with `Range`) within one run.
const RESUMES: u32 = 5;

/// The bytes asked for first: fewer than any age file holds (its version line, MAC line, nonce
/// and one chunk tag alone are 102 bytes), so this range never reaches a bundle's last byte and
/// never uses the link up; its answer names the transfer, the digest and the size.
const PROBE: u64 = 64;

/// The first slice of the age header asked for after the probe; doubled while the header is
/// longer, up to [`MAX_HEADER`].
const HEADER_SLICE: u64 = 64 * 1024;

/// Redeems the link for the bytes `first..=last` (`last` `None`: to the end) with a `Range`,
/// answered 206 with a `Content-Range` that starts at `first`; returns the answer, the size and
/// the last byte served (before the link is used up the gateway serves no further than the end
/// of the age header, which may be short of `last`).
async fn redeem_range(
    http: &Http,
    token: &str,
    first: u64,
    last: Option<u64>,
) -> Result<(reqwest::Response, u64, u64), Failure> {
    let range = last.map_or_else(|| format!("bytes={first}-"), |last| format!("bytes={first}-{last}"));
    let mut attempts = 0;
    let response = loop {
        let request = http
            .http
            .post(http.url("/api/v1/redeem"))
            .bearer_auth(&http.token)
            .header(reqwest::header::RANGE, &range)
            .json(&RedeemRequest { token: Some(token.to_owned()), transfer: None });
        let response = request.send().await.map_err(|e| http.unreachable(&e))?;
        // Right after a break (or a killed run), the gateway may not have given the link back yet.
        if response.status() == reqwest::StatusCode::CONFLICT && attempts < 20 {
            attempts += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        break response;
    };
    let status = response.status();
    if status != reqwest::StatusCode::PARTIAL_CONTENT {
        let text = response.text().await.unwrap_or_default();
        return Err(api_failure(status, &text));
    }
    // `bytes A-B/SIZE`
    let content_range = response.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
    let parsed = content_range.and_then(|v| {
        let (span, size) = v.strip_prefix("bytes ")?.split_once('/')?;
        let (start, end) = span.split_once('-')?;
        Some((start.parse::<u64>().ok()?, end.parse::<u64>().ok()?, size.parse::<u64>().ok()?))
    });
    match parsed {
        Some((start, end, size)) if start == first && end >= start && last.is_none_or(|last| end <= last) => {
            Ok((response, size, end))
        }
        _ => Err(Failure::new(format!(
            "the gateway answered `{range}` with `Content-Range: {}`",
            content_range.unwrap_or("(none)")
        ))
        .hint("the gateway or a proxy in front of it does not serve byte ranges as asked: tell its operators")),
    }
}

/// Reads an answer's body into `part` until it ends or breaks off, advancing `bar`.
async fn receive(
    mut response: reqwest::Response,
    part: &mut Part,
    bar: &indicatif::ProgressBar,
) -> Result<(), Failure> {
    while let Ok(Some(chunk)) = response.chunk().await {
        part.append(&chunk)?;
        bar.inc(chunk.len() as u64);
    }
    Ok(())
}

/// Where the partial ciphertext of `transfer` waits between runs: beside the output.
fn part_path(args: &FetchArgs, transfer: &str) -> PathBuf {
    match &args.output {
        Some(out) => {
            let mut name = out.clone().into_os_string();
            name.push(".sealpost-part");
            PathBuf::from(name)
        }
        None => args.dir.clone().unwrap_or_default().join(format!("{transfer}.sealpost-part")),
    }
}

/// What the probe's answer says the download is of.
fn download_of(response: &reqwest::Response, size: u64) -> Result<part::Of, Failure> {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let transfer = header("x-sealpost-transfer");
    if crate::ids::TransferId::parse(&transfer).is_none() {
        return Err(Failure::new(format!("the gateway named the transfer `{transfer}`, which is not a transfer id"))
            .hint("check --url: it should be the sealpost gateway"));
    }
    Ok(part::Of { transfer, digest: header("x-sealpost-digest"), size })
}

/// Collects the ciphertext into a part file beside the output: the age header first, in closed
/// ranges that stop short of the last byte (so the link stays usable), until `ids` open it; then
/// the rest with `bytes=N-`, resuming a broken answer within the run and, from the part file, a
/// run that was killed.
async fn download(http: &Http, token: &str, ids: &Identities, args: &FetchArgs) -> Result<Downloaded, Failure> {
    let (probe, size, _) = redeem_range(http, token, 0, Some(PROBE - 1)).await?;
    let of = download_of(&probe, size)?;
    let first = probe.bytes().await.map_err(|e| {
        Failure::new(format!("the download broke off: {e}"))
            .hint("the link is still usable: run the same command again")
    })?;
    let mut part = Part::open(part_path(args, &of.transfer), &of)?;
    if part.found() == Found::Resumed {
        if part.prefix(first.len())? == first.as_ref() {
            if !args.quiet {
                eprintln!(
                    "sealpost: resuming the download of {} from byte {} of {size} (`{}`)",
                    of.digest,
                    part.have(),
                    part.path().display()
                );
            }
        } else {
            part.discard(&of)?;
        }
    }
    if part.have() == 0 {
        part.append(&first)?;
    }
    let bar = progress(size, args.quiet, "receiving");
    bar.set_position(part.have());
    let refused = |refusal: Failure, part: Part, complete: bool| {
        bar.finish_and_clear();
        // Bytes kept from an earlier run stay for the right identity; this run's go.
        let kept = part.found() == Found::Resumed && !complete;
        if !kept {
            part.remove();
        }
        refusal.hint(if complete {
            "the bundle was small enough to arrive whole, so the link is used up: ask the sender to send it again"
        } else {
            "the link is still usable: fetch it again with the right identity (-i)"
        })
    };
    // The age header: checked before the link can be used up.
    loop {
        let verdict = seal::check_header(&part.prefix(MAX_HEADER)?, ids);
        let code = if matches!(verdict, HeaderCheck::Broken(_)) { "header_invalid" } else { "no_matching_identity" };
        let refusal = match verdict {
            HeaderCheck::Opens => break,
            // Too long for a header, or only the last byte is missing: leave it to the
            // decryption after the checks.
            HeaderCheck::NeedMore if part.have() >= MAX_HEADER as u64 || part.have() + 1 >= size => break,
            HeaderCheck::NeedMore => {
                let want = if part.have() < HEADER_SLICE { HEADER_SLICE } else { part.have() * 2 };
                let last = (want.min(MAX_HEADER as u64) - 1).min(size - 2);
                let (answer, _, served) = redeem_range(http, token, part.have(), Some(last)).await?;
                receive(answer, &mut part, &bar).await?;
                if part.have() <= served {
                    bar.finish_and_clear();
                    return Err(Failure::new("the download broke off while reading the bundle's header")
                        .hint("the link is still usable: run the same command again"));
                }
                continue;
            }
            HeaderCheck::NoMatch => {
                Failure::new(format!("none of the identities in `{}` can decrypt this bundle", args.identity.display()))
            }
            HeaderCheck::Broken(why) => {
                Failure::new(format!("the bundle's header does not authenticate: {why}")).exit(EXIT_VERIFY)
            }
        };
        let complete = part.have() >= size;
        if complete {
            report_delivery(http, &of.transfer, Report::Failed(code), args.quiet).await;
        }
        return Err(refused(refusal, part, complete));
    }
    // The rest, resuming a broken answer from the bytes kept.
    let mut resumes = 0;
    while part.have() < size {
        let (answer, ..) =
            redeem_range(http, token, part.have(), None).await.inspect_err(|_| bar.finish_and_clear())?;
        receive(answer, &mut part, &bar).await?;
        if part.have() >= size {
            break;
        }
        if resumes >= RESUMES {
            bar.finish_and_clear();
            return Err(Failure::new(format!("the download broke off after {} of {size} bytes", part.have())).hint(
                format!(
                    "the link is still usable: run the same command again to continue from the bytes kept in `{}`",
                    part.path().display()
                ),
            ));
        }
        resumes += 1;
        tokio::time::sleep(std::time::Duration::from_millis(200 << resumes)).await;
    }
    bar.finish_and_clear();
    if part.have() != size {
        let have = part.have();
        part.remove();
        return Err(Failure::new(format!("the gateway sent {have} bytes of a bundle of {size}"))
            .hint("tell the gateway's operators"));
    }
    let done = part.complete()?;
    Ok(Downloaded {
        file: done.file,
        start: done.start,
        digest: done.digest,
        transfer: of.transfer,
        announced: of.digest,
    })
}

/// Runs `sealpost fetch`.
pub(super) async fn run(mut args: FetchArgs) -> Result<(), Failure> {
    if args.output.is_none() && args.dir.is_none() {
        args.dir = Some(PathBuf::from("."));
    }
    let ids = keys::load_identities(&args.identity).map_err(|e| {
        Failure::new(e.to_string()).hint("pass your age identity with -i (make one with `sealpost keygen -o FILE`)")
    })?;
    let exists_hint = "pass --force to replace it, or choose another output";
    if let Some(out) = &args.output
        && !args.force
        && out.symlink_metadata().is_ok()
    {
        return Err(Failure::new(format!("`{}` exists already", out.display())).hint(exists_hint));
    }
    if let Some(dir) = &args.dir
        && !dir.is_dir()
    {
        if dir.symlink_metadata().is_ok() {
            return Err(
                Failure::new(format!("`{}` is not a directory", dir.display())).hint("choose a directory with --dir")
            );
        }
        std::fs::create_dir_all(dir).map_err(|e| Failure::new(format!("cannot create `{}`: {e}", dir.display())))?;
    }
    let token = args.link.rsplit_once('#').map_or(args.link.as_str(), |(_, t)| t).trim().to_owned();
    if token.is_empty() {
        return Err(Failure::new(format!("`{}` holds no link token", args.link))
            .hint("paste the whole link, including the part after `#`"));
    }
    let http = Http::new(&args.client)?;
    let api = Client::new(&args.client)?;
    if !args.skip_key_check {
        check_registered(&api, &ids, &args.identity).await?;
    }
    let signer = match &args.signing_key {
        Some(path) => Some(load_signer(&api, path).await?),
        None => None,
    };
    let trust = http.trust(&args.log).await?;
    let got = download(&http, &token, &ids, &args).await?;
    let transfer = got.transfer.clone();
    let outcome = check_and_open(&args, &api, &trust, got, ids).await;
    // The link is used up: tell the sender's delivery record how it ended, signed for when it
    // decrypted and a signing key was given.
    let report = match &outcome {
        Ok(checked) => Report::Decrypted(signer.as_ref().map(|s| (s, checked))),
        Err((_, code)) => Report::Failed(code),
    };
    report_delivery(&http, &transfer, report, args.quiet).await;
    outcome.map(|_| ()).map_err(|(failure, _)| failure)
}

/// How a fetch ended, for the delivery report.
enum Report<'a> {
    Decrypted(Option<(&'a Signer, &'a Checked)>),
    Failed(&'static str),
}

/// The delivery statement for `transfer`, signed: the report's body.
fn signed_report(transfer: &str, signer: &Signer, checked: &Checked) -> ReportDelivery {
    let now = chrono::Utc::now();
    let statement = Statement {
        transfer: transfer.to_owned(),
        digest: checked.digest.clone(),
        recipient: signer.user.clone(),
        time: now.with_nanosecond(0).unwrap_or(now),
        checkpoint_size: checked.tree_size,
        checkpoint_root: checked.root.clone(),
    }
    .text();
    ReportDelivery {
        status: DeliveryOutcome::Decrypted,
        reason: None,
        signature: Some(crate::delivery::sign(&statement, &signer.key)),
        statement: Some(statement),
        key: Some(signer.fingerprint.clone()),
    }
}

/// Tells the gateway that the bundle of `transfer` decrypted (signed for, when a signing key
/// was given) or why not, as a reason code (never a path or a file name: the report goes into
/// the log). Best effort: a report that does not arrive is a warning, never a failure of the
/// fetch.
async fn report_delivery(http: &Http, transfer: &str, report: Report<'_>, quiet: bool) {
    if transfer.is_empty() {
        return;
    }
    let unsigned = |status, reason: Option<&str>| ReportDelivery {
        status,
        reason: reason.map(str::to_owned),
        statement: None,
        signature: None,
        key: None,
    };
    let (body, signer) = match report {
        Report::Decrypted(Some((signer, checked))) => (signed_report(transfer, signer, checked), Some(signer)),
        Report::Decrypted(None) => (unsigned(DeliveryOutcome::Decrypted, None), None),
        Report::Failed(reason) => (unsigned(DeliveryOutcome::Failed, Some(reason)), None),
    };
    let decrypted = body.status == DeliveryOutcome::Decrypted;
    let sent = http
        .http
        .post(http.url(&format!("/api/v1/transfers/{transfer}/delivery")))
        .bearer_auth(&http.token)
        .json(&body)
        .send()
        .await;
    let problem = match sent {
        Ok(r) if r.status().is_success() => {
            if quiet || !decrypted {
                return;
            }
            match signer {
                Some(s) => eprintln!("sealpost: signed for the delivery as {} (key {})", s.user, s.fingerprint),
                None => eprintln!(
                    "sealpost: note: the delivery is recorded as unsigned; pass --signing-key (or set `signing_key` in your profile) to sign for deliveries"
                ),
            }
            return;
        }
        Ok(r) => {
            let status = r.status();
            api_failure(status, &r.text().await.unwrap_or_default()).message
        }
        Err(e) => http.unreachable(&e).message,
    };
    if !quiet {
        eprintln!("sealpost: warning: the delivery report did not reach the gateway: {problem}");
    }
}

/// The checks after the download, then decryption into place; a failure comes with the reason
/// code of the delivery report.
async fn check_and_open(
    args: &FetchArgs,
    api: &Client,
    trust: &Policy,
    got: Downloaded,
    ids: Identities,
) -> Result<Checked, (Failure, &'static str)> {
    let exists_hint = "pass --force to replace it, or choose another output";
    if got.digest != got.announced {
        return Err((digest_mismatch("the gateway recorded", &got.announced, &got.digest), "digest_mismatch"));
    }
    let receipt = upload_receipt(api, &got.transfer).await.map_err(|f| (f, "receipt_unavailable"))?;
    let receipt = receipt.ok_or_else(|| {
        let failure = Failure::new("the log holds no upload receipt for this transfer; nothing was written")
            .hint("try `sealpost receipt verify` later, or ask the gateway's operators")
            .exit(EXIT_VERIFY);
        (failure, "receipt_missing")
    })?;
    let checked = match receipts::verify_upload(&receipt, trust, &got.transfer, &got.digest) {
        Ok(summary) => {
            if !args.quiet {
                eprintln!(
                    "sealpost: verified: the log records the upload of {} as entry {} of {} ({})",
                    got.digest, summary.index, summary.tree_size, summary.origin
                );
            }
            Checked {
                digest: got.digest.clone(),
                tree_size: summary.tree_size,
                root: STANDARD.encode(summary.root.as_bytes()),
            }
        }
        Err(UploadReceiptError::Receipt(ReceiptError::DigestMismatch { expected, actual })) => {
            return Err((digest_mismatch("the log records as uploaded", &expected, &actual), "digest_mismatch"));
        }
        Err(e) => {
            let failure = Failure::new(format!("the upload receipt does not verify: {e}; nothing was written"))
                .hint("check the log with `sealpost log verify`, and tell the gateway's operators")
                .exit(EXIT_VERIFY);
            return Err((failure, "receipt_invalid"));
        }
    };

    check_manifest(api, trust, &got, args.quiet)
        .await
        .map_err(|f| (f.exit(EXIT_VERIFY), "sender_signature_invalid"))?;

    let (output, dir, force, start) = (args.output.clone(), args.dir.clone(), args.force, got.start);
    let mut kept = got
        .file
        .try_clone()
        .map_err(|e| (Failure::new(format!("cannot read the temporary file: {e}")), "write_failed"))?;
    let opened = tokio::task::spawn_blocking(move || match (&output, &dir) {
        (Some(out), _) => seal::open(got.file, &ids, &Target::File(out), force),
        (None, Some(dir)) => seal::open(got.file, &ids, &Target::Dir(dir), force),
        // `run` defaults to the current directory when neither is given.
        (None, None) => Err(SealError::PlainFile),
    })
    .await
    .map_err(|e| (Failure::new(format!("decryption stopped: {e}")), "decrypt_failed"))?;
    let opened = match opened {
        Ok(opened) => opened,
        Err(e) => {
            // The link is used up: keep the checked ciphertext rather than lose the transfer.
            let code = open_code(&e);
            let failure = open_failure(e, exists_hint);
            let dest = args
                .output
                .as_deref()
                .map_or_else(|| args.dir.clone().unwrap_or_default(), crate::client::bundle::parent_dir);
            let saved = dest.join(format!("{}.age", got.transfer));
            let failure = match keep_ciphertext(&mut kept, start, &saved) {
                Ok(()) => {
                    let lead = failure_hint(&failure);
                    failure.hint(format!(
                        "{lead}; the checked ciphertext was kept in `{}` (decrypt it with `age -d -i IDENTITY`)",
                        saved.display()
                    ))
                }
                Err(_) => failure,
            };
            return Err((failure, code));
        }
    };
    match opened {
        Opened::Plain(size) => {
            if let Some(out) = &args.output {
                println!("{}", out.display());
                if !args.quiet {
                    eprintln!("sealpost: decrypted {size} bytes (a plain age file) to `{}`", out.display());
                }
            }
        }
        Opened::Bundle(items) => {
            for item in items {
                let path = args.output.clone().unwrap_or_else(|| args.dir.clone().unwrap_or_default().join(&item.name));
                println!("{}", path.display());
                if !args.quiet {
                    eprintln!("sealpost: {} {} bytes {}", item.name, item.size, item.digest);
                }
            }
        }
    }
    Ok(checked)
}

/// Checks the sender's signed manifest, when there is one: the signing key must be the sender's,
/// in the log under `trust`, the signature must verify, and the manifest must agree with the
/// transfer: for a `sealpost.manifest/v2` (signed with the upload) the digest, the caller among
/// its recipients, the classification, key and manifest the log's `upload.accepted` entry
/// records; for a legacy `sealpost.manifest/v1` the transfer, the digest and the caller. An
/// unsigned bundle is not refused, but said so clearly (unless the log says it was signed).
async fn check_manifest(api: &Client, trust: &Policy, got: &Downloaded, quiet: bool) -> Result<(), Failure> {
    let refuse = |code: &str, why: String| {
        Failure::new(format!("{code}: {why}; nothing was written"))
            .hint("do not trust this bundle: tell the sender and the gateway's operators")
    };
    let invalid = |why: String| refuse("sender_signature_invalid", why);
    let mismatch = |why: String| refuse("manifest_mismatch", why);
    let logged = logged_upload(api, trust, got).await?;
    let path = format!("/api/v1/transfers/{}/manifest", got.transfer);
    let Some(signed) = api.get_optional::<SignedManifest>(&path).await? else {
        if logged.signed == Some(true) {
            return Err(mismatch(
                "the log records that the sender signed this upload, but the gateway serves no manifest".to_owned(),
            ));
        }
        if !quiet {
            eprintln!(
                "sealpost: warning: the sender did not sign this bundle: nothing but the gateway's word says who sent it"
            );
        }
        return Ok(());
    };
    let SignedManifest { manifest, signature, key: ManifestKey { fingerprint, .. }, sender } = signed;
    let keys = api.get::<UserKeys>(&format!("/api/v1/keys/{}/{}", sender.org, sender.name)).await?;
    let key = keys
        .keys
        .iter()
        .find(|k| k.fingerprint == fingerprint)
        .ok_or_else(|| invalid(format!("`{sender}` has no signing key {fingerprint} in the directory")))?;
    let public = key.recipient.clone();
    if key.stanza_type != crate::directory::SIGNING_TYPE || crate::directory::fingerprint(&public) != fingerprint {
        return Err(invalid(format!("the directory's key {fingerprint} of `{sender}` is not that signing key")));
    }
    let receipt = key
        .receipt
        .as_deref()
        .ok_or_else(|| invalid(format!("`{sender}`'s key {fingerprint} is not in the transparency log")))?;
    receipts::verify_key(receipt, trust, &fingerprint, &keys.user, &keys.name_salt)
        .map_err(|e| invalid(format!("`{sender}`'s key {fingerprint} is not the one the log recorded: {e}")))?;
    let verifying = crate::directory::signing_public_key(&public)
        .ok_or_else(|| invalid(format!("`{public}` is not a signing key")))?;
    let signature = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &signature)
        .ok()
        .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
        .ok_or_else(|| invalid("the signature is not an Ed25519 signature".to_owned()))?;
    verifying
        .verify_strict(manifest.as_bytes(), &signature)
        .map_err(|_| invalid(format!("the manifest's signature does not verify under {fingerprint}")))?;
    let me = api.get::<Whoami>("/api/v1/whoami").await?.user;
    let version = match crate::manifest::parse_any(&manifest) {
        Err(e) => return Err(mismatch(format!("the signed text is not a manifest: {e}"))),
        Ok(crate::manifest::AnyManifest::V2(m)) => {
            let digest = m.digest.to_string();
            if digest != got.digest {
                return Err(mismatch(format!("the signed manifest is for {digest}, not this bundle ({})", got.digest)));
            }
            if m.sender != sender {
                return Err(mismatch(format!("the signed manifest names `{}` as sender, not `{sender}`", m.sender)));
            }
            if !m.recipients.contains(&me) {
                return Err(mismatch(format!("the signed manifest does not name you (`{me}`) as a recipient")));
            }
            if let Some(logged) = &logged.classification
                && logged != m.classification.as_str()
            {
                return Err(mismatch(format!(
                    "the signed manifest says `{}`, but the transfer is `{logged}`",
                    m.classification
                )));
            }
            let text_digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest)));
            let recorded =
                [(&logged.signing_key, &fingerprint, "signing key"), (&logged.manifest, &text_digest, "manifest")];
            for (logged, served, what) in recorded {
                if let Some(logged) = logged
                    && logged != served
                {
                    return Err(mismatch(format!(
                        "the log records {what} {logged} for this upload, but the gateway serves {served}"
                    )));
                }
            }
            if logged.signed == Some(false) {
                return Err(mismatch(
                    "the log records this upload as unsigned, but the gateway serves a manifest".into(),
                ));
            }
            "before release"
        }
        Ok(crate::manifest::AnyManifest::V1(m)) => {
            if m.transfer != got.transfer || m.digest != got.digest || !m.recipients.contains(&me.to_string()) {
                return Err(mismatch(format!(
                    "the signed manifest does not name this transfer, digest {} and `{me}`",
                    got.digest
                )));
            }
            "after the upload (a legacy manifest)"
        }
    };
    if !quiet {
        eprintln!(
            "sealpost: verified: `{sender}` signed the manifest of {} with {fingerprint} (in the log), {version}",
            got.digest
        );
    }
    Ok(())
}

/// What the log's `upload.accepted` entry of a transfer says about its signature and marking
/// (each `None` when an older entry does not say).
#[derive(Debug, Default)]
struct LoggedUpload {
    signed: Option<bool>,
    signing_key: Option<String>,
    manifest: Option<String>,
    classification: Option<String>,
}

/// Reads the transfer's `upload.accepted` entry from its receipt, verified under `trust`.
async fn logged_upload(api: &Client, trust: &Policy, got: &Downloaded) -> Result<LoggedUpload, Failure> {
    let unverified = |why: String| {
        Failure::new(format!("the upload receipt does not verify: {why}; nothing was written"))
            .hint("check the log with `sealpost log verify`, and tell the gateway's operators")
    };
    let receipt = upload_receipt(api, &got.transfer)
        .await?
        .ok_or_else(|| unverified("the log holds no upload receipt for this transfer".to_owned()))?;
    let summary =
        receipts::verify_upload(&receipt, trust, &got.transfer, &got.digest).map_err(|e| unverified(e.to_string()))?;
    let fact = |key: &str| summary.entry.fact(key).map(str::to_owned);
    Ok(LoggedUpload {
        signed: fact("signed").map(|v| v == "yes"),
        signing_key: fact("signing_key"),
        manifest: fact("manifest"),
        classification: fact("classification"),
    })
}

/// The delivery report's reason code for a failed decryption.
fn open_code(e: &SealError) -> &'static str {
    use crate::client::bundle::BundleError;
    match e {
        SealError::Exists { .. } | SealError::Bundle(BundleError::Exists { .. }) => "output_exists",
        SealError::PlainFile => "plain_file",
        SealError::Bundle(BundleError::SeveralFiles) => "several_files",
        SealError::NoMatchingIdentity => "no_matching_identity",
        SealError::Decrypt(_) => "decrypt_failed",
        SealError::Bundle(BundleError::Write(_)) | SealError::Io(_) => "write_failed",
        _ => "bundle_invalid",
    }
}

fn open_failure(e: SealError, exists_hint: &str) -> Failure {
    let failure = Failure::new(format!("{e}; nothing was written"));
    match e {
        SealError::Exists { .. } | SealError::Bundle(crate::client::bundle::BundleError::Exists { .. }) => {
            failure.hint(exists_hint)
        }
        SealError::PlainFile => failure.hint("write it to a file with -o OUT instead of --dir"),
        SealError::Bundle(crate::client::bundle::BundleError::SeveralFiles) => {
            failure.hint("extract them with --dir DIR")
        }
        SealError::Decrypt(_) | SealError::Bundle(_) => failure.exit(EXIT_VERIFY),
        _ => failure,
    }
}

/// Copies the downloaded ciphertext, from byte `start` of `file`, to a new file `path`.
fn keep_ciphertext(file: &mut std::fs::File, start: u64, path: &std::path::Path) -> std::io::Result<()> {
    file.seek(std::io::SeekFrom::Start(start))?;
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    std::io::copy(file, &mut out)?;
    out.sync_all()
}

/// The hint of a failure, or a neutral lead-in when it has none.
fn failure_hint(failure: &Failure) -> String {
    failure.hint.clone().unwrap_or_else(|| "nothing was decrypted".to_owned())
}
