//! `sealpost send FILE… --to ORG/NAME`: look up every recipient's keys, bundle and encrypt to
//! all of them (streaming, through a temporary file), upload, check the upload's receipt
//! against the log's key, and print the transfer id and one link per recipient.
//!
//! The upload goes through tus ([`Tus`]): the sealed ciphertext and the upload's URL are kept
//! in the per-user state directory ([`crate::client::resume`]) until the gateway completes or
//! refuses the upload, so a broken connection retries from the gateway's offset and a killed
//! client resumes when the same command runs again (or with `--resume`), without re-encrypting.
//!
//! With a signing key (`--signing-key FILE` or the profile's `signing_key`), the sender signs the
//! upload before release: the `sealpost.manifest/v2` of the sealed ciphertext (its digest is
//! known once it is on disk), the recipients, the classification and the expiry in seconds
//! travels in the tus creation's metadata, with the classification and expiry it names sent
//! explicitly, so the gateway checks it before any link works.

use std::path::PathBuf;
use std::time::Duration;

use crate::wire::accounts::Whoami;
use crate::wire::keys::UserKeys;
use crate::wire::log::ReceiptList;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::wire::TransferStatus;
use crate::wire::transfers::{UploadAnswer, UploadLookup};

mod tus;

use tus::Tus;

use super::client::{Client, api_failure};
use super::{ClientArgs, EXIT_VERIFY, Failure};
use crate::client::resume::{self, SendInputs, Slot, State};
use crate::client::{bundle, receipts, seal};
use crate::manifest::ManifestV2;
use crate::model::{Classification, UserRef};
use crate::transparency::tlog::note::Verifier;
use crate::transparency::tlog::quorum::Policy;

/// Options for `sealpost send`.
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    #[command(flatten)]
    pub(super) client: ClientArgs,
    /// The files to send, as one bundle (their names travel inside the encryption).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A recipient, `ORG/NAME`; repeat for several.
    #[arg(long = "to", value_name = "ORG/NAME", required = true)]
    to: Vec<String>,
    /// How long the links stay valid, such as `72h` or `7d` (default: the gateway's).
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// The classification, such as `OFFICIAL` or `OFFICIAL-SENSITIVE` (default: OFFICIAL).
    #[arg(long, value_name = "C")]
    classification: Option<String>,
    /// Print the gateway's JSON answer instead of the id and links.
    #[arg(long)]
    json: bool,
    /// No progress bar and no notes on standard error (errors still print).
    #[arg(short, long)]
    quiet: bool,
    /// Continue an interrupted upload of the same files to the same recipients (running the same
    /// command again does too); fails when there is none.
    #[arg(long)]
    resume: bool,
    /// Your Ed25519 signing key (from `sealpost keygen --signing`, registered with `sealpost keys
    /// add`): sign the upload before release (a manifest of you, the ciphertext's digest, the
    /// recipients, the classification and the expiry), which the gateway checks and policy may
    /// require (the shipped policies do for OFFICIAL-SENSITIVE), and recipients check on fetch.
    #[arg(long, env = "SEALPOST_SIGNING_KEY", value_name = "FILE")]
    signing_key: Option<PathBuf>,
    #[command(flatten)]
    log: LogKeyArg,
}

/// The log key that receipts are checked against.
#[derive(Debug, Clone, Args)]
pub(super) struct LogKeyArg {
    /// The log's verifier key (`name+hexid+base64`), or a file holding it; default: the gateway's
    /// `/log/key` (trust on first use: pin it here to notice a changed key).
    #[arg(long, env = "SEALPOST_LOG_KEY", value_name = "VKEY")]
    log_key: Option<String>,
    /// A C2SP tlog-policy file (the log key, witness keys and their quorum): the directory's keys
    /// and the receipts are then checked against checkpoints the witnesses cosigned, as `receipt
    /// verify --policy` does. Wins over --log-key.
    #[arg(long, env = "SEALPOST_LOG_POLICY", value_name = "FILE")]
    log_policy: Option<PathBuf>,
}

/// A raw HTTP connection to the gateway, for the streamed upload and download.
#[derive(Debug)]
pub(super) struct Http {
    pub(super) http: reqwest::Client,
    base: String,
    pub(super) token: String,
}

impl Http {
    /// A connection for `args` (the token is required, as for [`Client`]).
    pub(super) fn new(args: &ClientArgs) -> Result<Self, Failure> {
        Client::new(args)?;
        let token = args.token.as_deref().unwrap_or_default().trim().to_owned();
        let http = reqwest::Client::builder()
            .user_agent(concat!("sealpost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base: args.url.trim_end_matches('/').to_owned(), token })
    }

    /// The absolute URL of `path`.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A failure for a request that did not reach the gateway.
    pub(super) fn unreachable(&self, e: &reqwest::Error) -> Failure {
        Failure::new(format!("cannot reach the gateway at {}: {e}", self.base))
            .hint("is `sealpost serve` running there? check SEALPOST_URL or --url")
    }

    /// What receipts are checked under: the witness policy given (`--log-policy`), else the
    /// log key given (a key string or a file), else the gateway's own (trust on first use).
    pub(super) async fn trust(&self, given: &LogKeyArg) -> Result<Policy, Failure> {
        if let Some(path) = &given.log_policy {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::new(format!("cannot read the log policy `{}`: {e}", path.display())))?;
            return Policy::parse(&text).map_err(|e| {
                Failure::new(format!("the log policy `{}` is invalid: {e}", path.display()))
                    .hint("see https://c2sp.org/tlog-policy for the format")
            });
        }
        let vkey = self.log_key(given).await?;
        let verifier = Verifier::from_vkey(&vkey).map_err(|e| {
            Failure::new(format!("`{vkey}` is not a log verifier key: {e}"))
                .hint("pass the string the gateway serves at /log/key (name+hexid+base64), or a file holding it")
        })?;
        Ok(Policy::log_only(verifier))
    }

    /// The log's verifier key: the one given (a key string or a file), or the gateway's.
    async fn log_key(&self, given: &LogKeyArg) -> Result<String, Failure> {
        if let Some(given) = given.log_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            if given.contains('+') {
                return Ok(given.to_owned());
            }
            return std::fs::read_to_string(given)
                .map(|k| k.trim().to_owned())
                .map_err(|e| Failure::new(format!("cannot read the log key `{given}`: {e}")));
        }
        let response = self.http.get(self.url("/log/key")).bearer_auth(&self.token).send().await;
        let response = response.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            return Err(api_failure(status, &text));
        }
        Ok(text.trim().to_owned())
    }
}

/// A progress bar on standard error: drawn only on a terminal, never with `--quiet`.
pub(super) fn progress(len: u64, quiet: bool, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// The tus `Upload-Metadata`: `to` (space-separated `ORG/NAME`), `expires`, `classification`,
/// each value in base64; for a signed upload the classification and expiry it signed, and
/// `manifest`, `manifest_signature` and `manifest_key`.
fn metadata(args: &SendArgs, signed: Option<&SignedMetadata>) -> String {
    let mut parts = vec![format!("to {}", STANDARD.encode(args.to.join(" ")))];
    match signed {
        Some(signed) => {
            parts.push(format!("expires {}", STANDARD.encode(format!("{}s", signed.terms.expires))));
            parts.push(format!("classification {}", STANDARD.encode(signed.terms.classification.as_str())));
            parts.push(format!("manifest {}", STANDARD.encode(&signed.manifest)));
            parts.push(format!("manifest_signature {}", STANDARD.encode(signed.signature)));
            parts.push(format!("manifest_key {}", STANDARD.encode(&signed.key)));
        }
        None => {
            if let Some(e) = &args.expires {
                parts.push(format!("expires {}", STANDARD.encode(e)));
            }
            if let Some(c) = &args.classification {
                parts.push(format!("classification {}", STANDARD.encode(c)));
            }
        }
    }
    parts.join(",")
}

/// What a signed upload states besides its digest, resolved as the gateway will resolve it.
#[derive(Debug)]
struct Terms {
    sender: UserRef,
    recipients: Vec<UserRef>,
    classification: Classification,
    expires: u64,
}

/// A signed manifest ready for the upload's metadata.
#[derive(Debug)]
struct SignedMetadata {
    terms: Terms,
    manifest: String,
    signature: [u8; 64],
    key: String,
}

/// The sender (from the gateway), recipients, classification (`OFFICIAL` when not given) and
/// expiry in seconds (the gateway's default when not given) of a signed upload.
async fn signing_terms(api: &Client, args: &SendArgs) -> Result<Terms, Failure> {
    let classification: Classification =
        args.classification.as_deref().unwrap_or(Classification::Official.as_str()).parse().map_err(
            |e: crate::model::ParseError| {
                Failure::new(e.to_string()).hint("use OFFICIAL, OFFICIAL-SENSITIVE, SECRET or TOP-SECRET")
            },
        )?;
    let mut recipients = Vec::with_capacity(args.to.len());
    for to in &args.to {
        recipients.push(to.parse::<UserRef>().map_err(|_| {
            Failure::new(format!("`{to}` is not a recipient"))
                .hint("name recipients as ORG/NAME, such as `hmpps/alice`")
        })?);
    }
    let me = api.get::<Whoami>("/api/v1/whoami").await?;
    let expires = match &args.expires {
        Some(given) => crate::config::parse_duration("expires", given)
            .map_err(|_| {
                Failure::new(format!("`{given}` is not a duration")).hint("give --expires as such as `72h` or `7d`")
            })?
            .as_secs(),
        None if me.default_expiry_seconds > 0 => me.default_expiry_seconds,
        None => {
            return Err(Failure::new(
                "the gateway does not say how long its links live by default, so the manifest cannot name it",
            )
            .hint("pass --expires, such as `--expires 72h`"));
        }
    };
    Ok(Terms { sender: me.user, recipients, classification, expires })
}

/// Signs the `sealpost.manifest/v2` of the sealed ciphertext `digest` with `signer`.
fn sign_upload(terms: Terms, digest: &str, signer: &ed25519_dalek::SigningKey) -> Result<SignedMetadata, Failure> {
    use ed25519_dalek::Signer as _;
    let digest = digest.parse().map_err(|e: crate::wire::DigestParseError| {
        Failure::new(format!("the saved upload state is damaged: {e}"))
            .hint("delete it from the state directory (SEALPOST_STATE_DIR) and send again")
    })?;
    let manifest = ManifestV2::new(
        terms.sender.clone(),
        digest,
        terms.classification,
        terms.expires,
        terms.recipients.iter().cloned(),
    )
    .render();
    let signature = signer.sign(manifest.as_bytes()).to_bytes();
    let key = crate::directory::fingerprint(&crate::client::keys::signing_public(&signer.verifying_key()));
    Ok(SignedMetadata { terms, manifest, signature, key })
}
/// Looks up `to`'s keys, prints their fingerprints, refuses a recipient without one, and checks
/// each key against the transparency log (key transparency): the directory must serve a receipt,
/// verifying under the log key `vkey`, for the `key.added` entry of that very key. A key
/// registered a moment ago may not be in the log yet, so a missing receipt is retried briefly.
async fn recipient_keys(api: &Client, to: &str, trust: &Policy, quiet: bool) -> Result<Vec<String>, Failure> {
    let Some((org, name)) = to.split_once('/').filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        return Err(Failure::new(format!("`{to}` is not a recipient"))
            .hint("name recipients as ORG/NAME, such as `hmpps/alice`"));
    };
    let mut answer = api.get::<UserKeys>(&format!("/api/v1/keys/{org}/{name}")).await?;
    for _ in 0..30 {
        if answer.keys.iter().all(|k| k.receipt.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = api.get(&format!("/api/v1/keys/{org}/{name}")).await?;
    }
    let keys = &answer.keys;
    let mut recipients = Vec::with_capacity(keys.len());
    for key in keys {
        // Signing keys sign manifests; nothing is encrypted to them.
        if key.stanza_type == crate::directory::SIGNING_TYPE {
            continue;
        }
        let fingerprint = key.fingerprint.clone();
        let recipient = key.recipient.clone();
        if crate::directory::fingerprint(&recipient) != fingerprint {
            return Err(Failure::new(format!("the directory's key for `{to}` does not match its own fingerprint"))
                .hint("do not send; tell the gateway's operator")
                .exit(EXIT_VERIFY));
        }
        let receipt = key.receipt.as_deref().ok_or_else(|| {
            Failure::new(format!("`{to}`'s key {fingerprint} is not in the transparency log"))
                .hint("the key may have been registered a moment ago: try again; if it persists, tell the operator")
                .exit(EXIT_VERIFY)
        })?;
        receipts::verify_key(receipt, trust, &fingerprint, &answer.user, &answer.name_salt).map_err(|e| {
            Failure::new(format!("`{to}`'s key {fingerprint} is not the one the log recorded: {e}"))
                .hint("do not send: the directory may have been tampered with; tell the gateway's operator")
                .exit(EXIT_VERIFY)
        })?;
        if !quiet {
            eprintln!("sealpost: {to}: {} key {fingerprint} (in the log)", key.stanza_type);
        }
        recipients.push(recipient);
    }
    if recipients.is_empty() {
        return Err(Failure::new(format!("`{to}` has no registered key"))
            .hint("ask them to make one with `sealpost keygen` and register it with `sealpost keys add`"));
    }
    Ok(recipients)
}

/// Runs `sealpost send`.
pub(super) async fn run(args: SendArgs) -> Result<(), Failure> {
    let http = Http::new(&args.client)?;
    let api = Client::new(&args.client)?;
    bundle::names(&args.files).map_err(|e| Failure::new(e.to_string()))?;
    let mut total = 0u64;
    for path in &args.files {
        let meta =
            std::fs::metadata(path).map_err(|e| Failure::new(format!("cannot read `{}`: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(Failure::new(format!("`{}` is not a regular file", path.display()))
                .hint("send files; put a directory in an archive first"));
        }
        total += meta.len();
    }
    let signer = args.signing_key.as_deref().map(load_signing_key).transpose()?;
    let signer_key = signer
        .as_ref()
        .map(|k| crate::directory::fingerprint(&crate::client::keys::signing_public(&k.verifying_key())));
    let inputs = SendInputs {
        files: &args.files,
        to: &args.to,
        expires: args.expires.as_deref(),
        classification: args.classification.as_deref(),
        gateway: &args.client.url,
        signer: signer_key.as_deref(),
    };
    let slot = resume::key(&inputs)
        .and_then(|key| Slot::open(resume::state_dir()?, key))
        .map_err(|e| Failure::new(e.to_string()))?;
    let saved = slot.load();
    if args.resume && saved.is_none() {
        return Err(Failure::new("there is no interrupted upload of these files to these recipients")
            .hint("run the command without --resume to start one (a changed file starts afresh too)"));
    }
    let terms = match &signer {
        Some(_) => Some(signing_terms(&api, &args).await?),
        None => None,
    };
    let trust = http.trust(&args.log).await?;
    let mut keys = Vec::new();
    for to in &args.to {
        keys.extend(recipient_keys(&api, to, &trust, args.quiet).await?);
    }
    let recipients = seal::recipients(&keys).map_err(|e| {
        Failure::new(e.to_string()).hint("the directory holds a key this client cannot use; tell the recipient")
    })?;
    if !args.quiet && seal::post_quantum(&keys) == seal::PostQuantum::Partly {
        eprintln!("{PARTLY_POST_QUANTUM}");
    }

    let state = match saved {
        Some(state) => {
            if !args.quiet {
                eprintln!("sealpost: resuming the upload of {} ({} bytes, sealed earlier)", state.digest, state.size);
            }
            state
        }
        None => seal_into(&slot, &args, recipients, total).await?,
    };
    let mut state = state;
    let signed = match (terms, &signer) {
        (Some(terms), Some(signer)) => {
            let signed = sign_upload(terms, &state.digest, signer)?;
            if !args.quiet {
                eprintln!("sealpost: signed the manifest with {}", signed.key);
            }
            Some(signed)
        }
        _ => None,
    };
    let bar = progress(state.size, args.quiet, "uploading");
    let answer = Tus::new(&http, &slot, &bar).upload(&mut state, &metadata(&args, signed.as_ref())).await;
    bar.finish_and_clear();
    let sent = Sent::from_lookup(answer?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&sent.answer).unwrap_or_default());
    } else {
        println!("{}", sent.answer.id);
        for link in &sent.answer.links {
            println!("{} {}", link.recipient, link.url);
        }
    }
    if !args.quiet {
        if sent.answer.status == TransferStatus::AwaitingApproval {
            eprintln!("{HELD_NOTICE}");
        }
        if sent.answer.links.is_empty() {
            eprintln!("sealpost: the upload completed earlier; its links were shown then and are not kept");
        }
    }
    check_receipt(&api, &sent.answer, &state.digest, &trust, args.quiet).await
}

/// What `send` tells a sender whose recipients hold post-quantum and classical keys.
const PARTLY_POST_QUANTUM: &str = "sealpost: note: only some of the recipients' keys are post-quantum (`mlkem768x25519`): \
    the bundle is encrypted to the classical ones too, so it is only as safe from a future quantum computer as they are";

/// What `send` tells a sender whose transfer a policy holds for a compliance officer.
const HELD_NOTICE: &str =
    "sealpost: the transfer is held until a compliance officer approves it; its links work from then on";

/// A completed upload as the gateway answered it.
#[derive(Debug)]
struct Sent {
    answer: UploadAnswer,
}

impl Sent {
    /// The answer to a completed upload: with its links, or (when it completed long ago or before
    /// a restart) the transfer's view, which has no links.
    fn from_lookup(lookup: UploadLookup) -> Result<Self, Failure> {
        match lookup {
            UploadLookup::Completed(answer) => Ok(Self { answer }),
            UploadLookup::Transfer(view) => Ok(Self {
                answer: UploadAnswer {
                    id: view.id,
                    status: view.status,
                    policies: Vec::new(),
                    receipt: None,
                    size: view.size,
                    digest: view.digest,
                    classification: view.classification,
                    expires_at: view.expires_at,
                    links: Vec::new(),
                },
            }),
            UploadLookup::Progress(p) => Err(Failure::new(format!(
                "the gateway holds {} of {} bytes of upload `{}` but says it is complete",
                p.offset, p.length, p.id
            ))
            .hint("run the same command again with --resume")),
        }
    }
}

/// Reads a signing key file (PKCS#8 PEM, as `sealpost keygen --signing` writes it).
fn load_signing_key(path: &std::path::Path) -> Result<ed25519_dalek::SigningKey, Failure> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("cannot read the signing key `{}`: {e}", path.display())))?,
    );
    ed25519_dalek::SigningKey::from_pkcs8_pem(&text).map_err(|_| {
        Failure::new(format!("`{}` holds no Ed25519 signing key", path.display()))
            .hint("make one with `sealpost keygen --signing -o FILE` and register it with `sealpost keys add`")
    })
}

/// Bundles and encrypts the files into `slot` (streaming, through its partial file), and records
/// the sealed ciphertext there.
async fn seal_into(
    slot: &Slot,
    args: &SendArgs,
    recipients: Vec<Box<dyn age::Recipient + Send>>,
    total: u64,
) -> Result<State, Failure> {
    let file = slot.create_partial().map_err(|e| Failure::new(e.to_string()))?;
    let bar = progress(total, args.quiet, "encrypting");
    let sealed = {
        let bar = bar.clone();
        let paths = args.files.clone();
        tokio::task::spawn_blocking(move || {
            let sealed = seal::seal(&paths, &recipients, &file, |done| bar.set_position(done));
            sealed.and_then(|s| file.sync_all().map(|()| s).map_err(seal::SealError::Io))
        })
        .await
        .map_err(|e| Failure::new(format!("encryption stopped: {e}")))?
        .map_err(|e| Failure::new(e.to_string()))?
    };
    bar.finish_and_clear();
    let state = State { digest: sealed.digest, size: sealed.size, upload: None };
    slot.sealed(&state).map_err(|e| Failure::new(e.to_string()))?;
    Ok(state)
}

/// Checks that the log records the upload of exactly what was sent.
async fn check_receipt(
    api: &Client,
    answer: &UploadAnswer,
    digest: &str,
    trust: &Policy,
    quiet: bool,
) -> Result<(), Failure> {
    let id = answer.id.as_str();
    let unverified = |why: String| {
        Failure::new(format!("the upload's receipt does not verify: {why}"))
            .hint("the transfer was made; check the log with `sealpost log verify` before trusting it")
            .exit(EXIT_VERIFY)
    };
    let answered = answer.digest.to_string();
    if answered != digest {
        return Err(unverified(format!("the gateway recorded digest `{answered}`, but `{digest}` was sent")));
    }
    let mut receipt = answer.receipt.clone();
    // The log integrates entries every fraction of a second; the answer may come before.
    for _ in 0..20 {
        if receipt.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        receipt = upload_receipt(api, id).await?;
    }
    let receipt = receipt.ok_or_else(|| unverified("the log has not included the upload yet".into()))?;
    let summary = receipts::verify_upload(&receipt, trust, id, digest).map_err(|e| unverified(e.to_string()))?;
    if !quiet {
        eprintln!(
            "sealpost: verified: the log records the upload of {digest} as entry {} of {} ({})",
            summary.index, summary.tree_size, summary.origin
        );
    }
    Ok(())
}

/// The `upload.accepted` receipt of transfer `id`, if the log has it.
pub(super) async fn upload_receipt(api: &Client, id: &str) -> Result<Option<String>, Failure> {
    let list = api.get::<ReceiptList>(&format!("/api/v1/transfers/{id}/receipts")).await?;
    Ok(list.receipts.into_iter().find(|r| r.event == receipts::UPLOAD_EVENT).map(|r| r.receipt))
}
