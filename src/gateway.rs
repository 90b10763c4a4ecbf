//! The gateway's state: open the data directory (database, blobs, signing key, log, policies),
//! recover from any crash, and hold what every door into the transfer lifecycle shares.

use std::collections::HashSet;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rand::RngCore as _;

use crate::blobs::{BlobError, BlobStore};
use crate::clock::Clock;
use crate::config::{Config, DatabaseUrl};
use crate::envelope;
use crate::ids::BearerSecret;
use crate::lifecycle::{UploadRules, Uploads};
use crate::policy::{PolicyError, PolicyGate, PolicySource};
use crate::store::{Store, StoreError};
use crate::transparency::writer::sequencer::Sequencer;
use crate::transparency::writer::{Log, LogError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory or a file in it could not be prepared.
    #[error("cannot prepare `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The signing key file is damaged.
    #[error("`{0}` is not a valid PKCS#8 Ed25519 key")]
    BadKey(PathBuf),
    /// The database failed to open or migrate.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store failed to open.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The transparency log on disk is damaged or unreadable.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The policy set is invalid.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// Another process holds the data directory for itself (a migration or a restore).
    #[error("`{0}` is held by a migration or a restore")]
    Busy(PathBuf),
    /// The HTTP client for the identity providers could not be made.
    #[error("cannot prepare the identity providers' HTTP client: {0}")]
    Sso(#[from] reqwest::Error),
    /// The mail server settings cannot be used.
    #[error(transparent)]
    Mail(#[from] crate::notify::MailError),
}

/// Everything a request handler needs, shared.
#[derive(Debug)]
pub struct Gateway {
    /// Resolved configuration.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// The ciphertext blobs.
    pub blobs: BlobStore,
    /// The policy gate.
    pub gate: PolicyGate,
    /// Upload limits.
    pub rules: UploadRules,
    /// The clock.
    pub clock: Clock,
    /// The gateway's Ed25519 signing key (for the signed log and receipts).
    pub signing_key: SigningKey,
    /// Base URL for links, without a trailing slash.
    pub public_url: String,
    /// The transparency log's sequencer (and through it, the log).
    pub log: Sequencer,
    /// Resumable uploads in progress in this process.
    pub uploads: Uploads,
    /// Moves on each time this gateway takes links away (a recall, a rejection, a key removed),
    /// so that its running downloads look at their links at once rather than at their next
    /// periodic look.
    pub link_changes: tokio::sync::watch::Sender<u64>,
    /// The identity providers for single sign-on.
    pub sso: crate::sso::Sso,
    /// The mail server notifications go through, when one is configured.
    pub mailer: Option<crate::notify::Mailer>,
    /// Rate limits per client address and per token (`limits`).
    pub limits: crate::limits::Limits,
    /// Set once the shutdown began: requests cut from then on are recorded as cut by it
    /// (`server_shutdown`), not as a client that went away.
    stopping: std::sync::atomic::AtomicBool,
    /// The data directory, held shared for as long as the gateway runs.
    _running: DataDirLock,
}

/// What start-up did that an operator should hear about.
#[derive(Debug, Default)]
pub struct Startup {
    /// Set on first start: where the bootstrap token was written, and when it expires.
    pub admin_token: Option<(PathBuf, DateTime<Utc>)>,
    /// Set when `DATA/admin.token` held a token that no longer works (exchanged, revoked or
    /// expired) and was removed.
    pub admin_token_removed: bool,
    /// Staged uploads removed (left by a crash).
    pub staged_removed: usize,
    /// Blobs without a transfer removed.
    pub orphans_removed: usize,
    /// Downloads that were running when the last process stopped.
    pub leases_reset: u64,
    /// Keys registered by an earlier version, now bound to their owners' names in the log.
    pub keys_bound: u64,
}

impl Gateway {
    /// Opens the data directory and recovers from any earlier crash. `public_url` is the base
    /// for links when the configuration gives none (the caller knows the bound address).
    pub async fn open(config: Config, bound_url: String) -> Result<(Arc<Self>, Startup), StartError> {
        let dir = config.data_dir.clone();
        // Policies first: an invalid set stops the start before anything is touched.
        let source = config.policies.clone().map_or(PolicySource::Embedded, PolicySource::Dir);
        let gate = PolicyGate::load(source, config.max_expiry)?;
        let mailer = crate::notify::Mailer::from_config(&config)?;
        create_private_dir(&dir)?;
        let running = lock_data_dir(&dir, Hold::Shared)?.ok_or_else(|| StartError::Busy(dir.clone()))?;
        let store = match config.database() {
            DatabaseUrl::Sqlite(path) => Store::open(&path).await?,
            postgres => Store::connect(&postgres.url()).await?,
        };
        let blobs = BlobStore::open_at(&dir, &config.blobs()).await?;
        let signing_key = load_or_create_key(&config.signing_key_file())?;
        let clock = Clock::system();
        let mut startup = Startup::default();
        if store.is_empty().await? {
            let token = BearerSecret::generate("sp_");
            let path = dir.join("admin.token");
            write_private(&path, format!("{}\n", token.expose()).as_bytes())?;
            let now = clock.now();
            // At most 30 days (the configuration's check), so the sum is in range.
            let expires = chrono::TimeDelta::from_std(config.bootstrap_token_lifetime)
                .ok()
                .and_then(|lifetime| now.checked_add_signed(lifetime))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if store.bootstrap(&token.hash(), expires, now).await?.is_some() {
                startup.admin_token = Some((path, expires));
            } else {
                // Another gateway sharing the database made the administrator first; its token
                // is in that gateway's data directory, and this one is not a token at all.
                std::fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        startup.admin_token_removed = retire_admin_token(&store, &dir, clock.now()).await?;
        let store = store.for_gateway(&gateway_id(&dir)?).with_refusal_window(config.refusal_window, clock);
        startup.leases_reset = store.reset_leases(clock.now()).await?;
        startup.staged_removed = blobs.sweep_staging().await?;
        let known: HashSet<String> = store.object_keys().await?.into_iter().collect();
        startup.orphans_removed = blobs.sweep_orphans(&known, clock.now()).await?;
        let public_url = config.public_url.clone().unwrap_or(bound_url).trim_end_matches('/').to_owned();
        let default_origin = config.log_origin.clone().unwrap_or_else(|| {
            let host = public_url.split_once("://").map_or(public_url.as_str(), |(_, rest)| rest);
            format!("{}/log", host.trim_end_matches('/'))
        });
        let log = Log::open(store.clone(), &dir.join("log"), &default_origin, &signing_key.to_bytes())
            .await?
            .with_witnesses(&config.witnesses)?;
        startup.keys_bound = store.bind_key_owners(clock.now()).await?;
        let sso = crate::sso::Sso::new(config.oidc.clone(), &public_url)?;
        store.announce_mail(mailer.is_some(), clock.now()).await?;
        let limits = crate::limits::Limits::new(&config.rate_limits);
        let gateway = Self {
            sso,
            gate,
            rules: UploadRules {
                max_size: config.max_upload_size,
                envelope: envelope::Limits::default(),
                allow_unknown_stanzas: config.allow_unknown_stanzas,
            },
            config,
            store,
            blobs,
            clock,
            signing_key,
            public_url,
            log: Sequencer::new(Arc::new(log)),
            uploads: Uploads::default(),
            link_changes: tokio::sync::watch::Sender::new(0),
            limits,
            mailer,
            stopping: std::sync::atomic::AtomicBool::new(false),
            _running: running,
        };
        Ok((Arc::new(gateway), startup))
    }

    /// Marks the shutdown as begun (see [`Gateway::is_stopping`]).
    pub fn begin_stopping(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// True once the shutdown began.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Why a request that ended early ended, for its audit entry: `server_shutdown` once the
    /// shutdown began, else `client_disconnected`.
    pub fn broken_off_code(&self) -> &'static str {
        if self.is_stopping() { "server_shutdown" } else { "client_disconnected" }
    }
}

/// The data directory's lock file, `DATA/gateway.lock`, held: every running gateway holds it
/// shared, and `sealpost admin migrate` and `restore` exclusively, so neither runs under a
/// gateway and no gateway starts during them. The system lets go of it when the process ends,
/// however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

/// How a [`DataDirLock`] is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// With other gateways (on other machines a data directory is not shared, but tests and
    /// restarts may overlap).
    Shared,
    /// Alone.
    Exclusive,
}

/// Locks the data directory `dir` (which must exist) without waiting: `None` when another
/// process holds it in a way that excludes `hold`.
pub fn lock_data_dir(dir: &Path, hold: Hold) -> Result<Option<DataDirLock>, StartError> {
    let path = dir.join("gateway.lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    let locked = match hold {
        Hold::Shared => file.try_lock_shared(),
        Hold::Exclusive => file.try_lock(),
    };
    match locked {
        Ok(()) => Ok(Some(DataDirLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(StartError::Io { path, source: e }),
    }
}

/// Loads the gateway's signing key from `path` (PKCS#8 PEM), which must exist.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, StartError> {
    let pem = std::fs::read_to_string(path).map_err(io_err(path))?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|_| StartError::BadKey(path.to_owned()))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io { path: path.to_owned(), source }
}

/// Removes `DIR/admin.token` when the token in it no longer works (exchanged for a named
/// administrator, revoked, or past its lifetime), so no dead credential lies about on disk, in
/// backups or in copies of the directory. True if it was removed. A file whose token still
/// works is kept; one that is unreadable is left to the operator.
pub async fn retire_admin_token(store: &Store, dir: &Path, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let path = dir.join("admin.token");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(false);
    };
    let token = BearerSecret::from_client(text.trim());
    if store.authenticate(&token.hash(), now).await?.is_some() {
        return Ok(false);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "removed the bootstrap token, which no longer works");
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the bootstrap token, which no longer works");
            Ok(false)
        }
    }
}

/// Creates a directory readable by its owner only (if it does not exist).
fn create_private_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))
}

/// Writes a file with mode 0600 atomically and durably (temporary file, fsync, rename, fsync dir).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StartError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    // The rename itself must survive a power loss, or the bootstrap could outlive its token.
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// This gateway's name among those sharing a database: made at first start, kept in
/// `DATA/gateway.id`, so a restarted gateway knows its own download leases.
fn gateway_id(dir: &Path) -> Result<String, StartError> {
    let path = dir.join("gateway.id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        Ok(_) => Err(StartError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the gateway id file is empty"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 8];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let id = hex::encode(bytes);
            write_private(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(StartError::Io { path, source: e }),
    }
}

/// Loads the gateway's signing key, creating it (0600) on first start.
fn load_or_create_key(path: &Path) -> Result<SigningKey, StartError> {
    match std::fs::metadata(path) {
        Ok(_) => load_signing_key(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let key = SigningKey::from_bytes(&seed);
            zeroize::Zeroize::zeroize(&mut seed);
            let pem = key
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|_| StartError::BadKey(path.to_owned()))?;
            write_private(path, pem.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(StartError::Io { path: path.to_owned(), source: e }),
    }
}
