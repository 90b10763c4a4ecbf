//! Server configuration: flags > environment > `sealpost.toml` > defaults.
//!
//! Every option is documented in `deploy/sealpost.toml` and the README. Durations are written
//! the way people say them (`72h`, `14d`, `30s`), sizes with binary or decimal units (`10GiB`).
//! The backends are named by URL: the database by [`DatabaseUrl`] (`sqlite://PATH` or
//! `postgres://…`), the blob store by [`BlobBackend`] (a directory or `s3://BUCKET`); both default
//! to files in the data directory.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// What can be wrong with the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("`{path}` is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// One option has a bad value.
    #[error("option `{key}` is invalid: {message}")]
    Invalid {
        /// The option.
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// The optional `sealpost.toml` (every field optional; unknown keys are an error).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See [`Config::listen`].
    pub listen: Option<String>,
    /// See [`Config::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`Config::database_url`].
    pub database_url: Option<String>,
    /// See [`Config::blob_store`].
    pub blob_store: Option<String>,
    /// See [`Config::signing_key`].
    pub signing_key: Option<PathBuf>,
    /// See [`Config::public_url`].
    pub public_url: Option<String>,
    /// See [`Config::max_upload_size`].
    pub max_upload_size: Option<String>,
    /// See [`Config::default_expiry`].
    pub default_expiry: Option<String>,
    /// See [`Config::max_expiry`].
    pub max_expiry: Option<String>,
    /// See [`Config::token_lifetime`].
    pub token_lifetime: Option<String>,
    /// See [`Config::sweep_interval`].
    pub sweep_interval: Option<String>,
    /// See [`Config::log_format`].
    pub log_format: Option<String>,
    /// See [`Config::upload_resume_window`].
    pub upload_resume_window: Option<String>,
    /// See [`Config::allow_ssh_recipients`].
    pub allow_ssh_recipients: Option<bool>,
    /// See [`Config::allow_unknown_stanzas`].
    pub allow_unknown_stanzas: Option<bool>,
    /// See [`Config::policies`].
    pub policies: Option<PathBuf>,
    /// See [`Config::log_origin`].
    pub log_origin: Option<String>,
    /// See [`Config::log_interval`].
    pub log_interval: Option<String>,
    /// See [`Config::log_public`].
    pub log_public: Option<bool>,
    /// See [`Config::session_idle_timeout`].
    pub session_idle_timeout: Option<String>,
    /// See [`Config::session_lifetime`].
    pub session_lifetime: Option<String>,
    /// See [`Config::witnesses`].
    #[serde(default)]
    pub witnesses: Vec<crate::transparency::writer::WitnessConfig>,
    /// See [`Config::oidc`]: one `[[oidc]]` table per identity provider.
    #[serde(default)]
    pub oidc: Vec<crate::sso::config::ProviderFile>,
    /// See [`Config::sso_token_lifetime`].
    pub sso_token_lifetime: Option<String>,
    /// See [`Config::smtp_url`].
    pub smtp_url: Option<String>,
    /// See [`Config::mail_from`].
    pub mail_from: Option<String>,
    /// See [`Config::smtp_ca_file`].
    pub smtp_ca_file: Option<PathBuf>,
    /// See [`Config::notification_interval`].
    pub notification_interval: Option<String>,
    /// See [`Config::notification_retry_base`].
    pub notification_retry_base: Option<String>,
    /// See [`Config::notification_retry_max`].
    pub notification_retry_max: Option<String>,
    /// See [`Config::notification_give_up`].
    pub notification_give_up: Option<String>,
    /// See [`Config::expiry_reminder`].
    pub expiry_reminder: Option<String>,
    /// See [`Config::connections`]: the `[connections]` table.
    #[serde(default)]
    pub connections: ConnectionsFile,
    /// See [`Config::rate_limits`]: the `[rate_limits]` table.
    pub rate_limits: Option<crate::limits::RateLimits>,
    /// See [`Config::refusal_window`].
    pub refusal_window: Option<String>,
    /// See [`Config::bootstrap_token_lifetime`].
    pub bootstrap_token_lifetime: Option<String>,
    /// See [`Config::metrics_listen`].
    pub metrics_listen: Option<String>,
}

/// The `[connections]` table of `sealpost.toml`: timeouts and caps for client connections
/// (see [`ConnectionLimits`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsFile {
    /// See [`ConnectionLimits::header_timeout`].
    pub header_timeout: Option<String>,
    /// See [`ConnectionLimits::body_idle_timeout`].
    pub body_idle_timeout: Option<String>,
    /// See [`ConnectionLimits::shutdown_timeout`].
    pub shutdown_timeout: Option<String>,
    /// See [`ConnectionLimits::max`].
    pub max: Option<usize>,
    /// See [`ConnectionLimits::max_per_address`].
    pub max_per_address: Option<usize>,
    /// See [`ConnectionLimits::trusted_proxies`].
    pub trusted_proxies: Option<Vec<String>>,
}

/// How long clients may take and how many connections they may hold: what keeps slow and idle
/// clients from taking the service down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this long of the connection opening or of the
    /// previous answer; this also closes idle keep-alive connections (default 10s).
    pub header_timeout: Duration,
    /// A request body that brings no byte for this long fails with 408 `request_timeout`, and
    /// its handler lets go of what it holds (a resumable upload's file and lock) (default 30s).
    pub body_idle_timeout: Duration,
    /// A graceful shutdown ends within about this long: requests that finish sooner finish, the
    /// rest are cut and audited (default 30s).
    pub shutdown_timeout: Duration,
    /// Concurrent connections at most; beyond it a new connection is answered 503
    /// `service_unavailable` with `Retry-After` and closed (default: 1024, or less when the
    /// process's open-file limit leaves no room for three descriptors per connection and 64
    /// spare).
    pub max: Option<usize>,
    /// Concurrent connections from one client address at most (default 256). A trusted proxy
    /// is not held to it: its connections carry many clients.
    pub max_per_address: usize,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client: for a
    /// request from one of them, the client is the rightmost address in the header that is not
    /// itself a trusted proxy, and rate limits count that address (default none: the header is
    /// ignored, so a client cannot choose its address by sending one).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ConnectionLimits {
    /// True when `address` is one of the trusted proxies.
    pub fn is_trusted_proxy(&self, address: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&address))
    }
}

/// Parses trusted proxies: addresses (`10.0.0.5`, `::1`) or networks (`10.0.0.0/8`).
pub fn parse_proxies<S: AsRef<str>>(key: &'static str, items: &[S]) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    items
        .iter()
        .map(|item| {
            let item = item.as_ref().trim();
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| ConfigError::Invalid {
                    key,
                    message: format!("`{item}` is not an IP address or a network such as `10.0.0.0/8`"),
                })
        })
        .collect()
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(30),
            max: None,
            max_per_address: 256,
            trusted_proxies: Vec::new(),
        }
    }
}

impl ConnectionLimits {
    /// The cap on concurrent connections: the configured one, or the default that leaves room
    /// under the open-file limit (`open_files`, when known).
    pub fn max_connections(&self, open_files: Option<u64>) -> usize {
        if let Some(max) = self.max {
            return max;
        }
        let room = open_files.map_or(usize::MAX, |n| usize::try_from(n.saturating_sub(64) / 3).unwrap_or(usize::MAX));
        DEFAULT_MAX_CONNECTIONS.min(room).max(1)
    }

    /// Applies the `[connections]` table over these values.
    fn apply(&mut self, file: ConnectionsFile) -> Result<(), ConfigError> {
        for (key, value, field) in [
            ("connections.header_timeout", file.header_timeout, &mut self.header_timeout),
            ("connections.body_idle_timeout", file.body_idle_timeout, &mut self.body_idle_timeout),
            ("connections.shutdown_timeout", file.shutdown_timeout, &mut self.shutdown_timeout),
        ] {
            if let Some(v) = value {
                *field = parse_duration(key, &v)?;
            }
        }
        if file.max.is_some() {
            self.max = file.max;
        }
        if let Some(v) = file.max_per_address {
            self.max_per_address = v;
        }
        if let Some(v) = file.trusted_proxies {
            self.trusted_proxies = parse_proxies("connections.trusted_proxies", &v)?;
        }
        Ok(())
    }

    /// Checks the values.
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("connections.header_timeout", self.header_timeout),
            ("connections.body_idle_timeout", self.body_idle_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(ConfigError::Invalid { key, message: "use at least `100ms`".to_owned() });
            }
        }
        if self.max == Some(0) {
            return Err(ConfigError::Invalid { key: "connections.max", message: "use at least 1".to_owned() });
        }
        if self.max_per_address == 0 {
            return Err(ConfigError::Invalid {
                key: "connections.max_per_address",
                message: "use at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

/// [`ConnectionLimits::max`] when the open-file limit leaves room for it.
const DEFAULT_MAX_CONNECTIONS: usize = 1024;

impl FileConfig {
    /// Reads a config file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.message().to_owned() })
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:8080`).
    pub listen: String,
    /// Directory for the database, blobs and keys (default `./sealpost-data`).
    pub data_dir: PathBuf,
    /// The database (default: `sqlite://DATA_DIR/sealpost.db`; see [`Config::database`]).
    pub database_url: Option<DatabaseUrl>,
    /// Where committed blobs live (default: the directory `DATA_DIR/blobs`; see
    /// [`Config::blobs`]).
    pub blob_store: Option<BlobBackend>,
    /// The gateway's Ed25519 signing key, PKCS#8 PEM, created on first start when missing
    /// (default `DATA_DIR/gateway.key`; see [`Config::signing_key_file`]).
    pub signing_key: Option<PathBuf>,
    /// Base URL in links (default `http://` + the bound address).
    pub public_url: Option<String>,
    /// Largest upload in bytes (default 10 GiB).
    pub max_upload_size: u64,
    /// Link lifetime when the sender asks for none (default 72h).
    pub default_expiry: Duration,
    /// Hard ceiling on link lifetimes, above any policy (default 90 days; the shipped policy
    /// allows 14).
    pub max_expiry: Duration,
    /// Lifetime of new API tokens (default 90 days; `never` for none).
    pub token_lifetime: Option<Duration>,
    /// How often expired links are swept and spent blobs deleted (default 60s).
    pub sweep_interval: Duration,
    /// Log format (default human).
    pub log_format: LogFormat,
    /// How long an unfinished resumable upload can be resumed before the sweeper deletes it
    /// (default 24h).
    pub upload_resume_window: Duration,
    /// Whether SSH public keys may be registered as recipients (default false).
    pub allow_ssh_recipients: bool,
    /// Whether unknown age stanza types may pass the envelope gate (default false).
    pub allow_unknown_stanzas: bool,
    /// Directory of Cedar policies replacing the built-in set (default: built in).
    pub policies: Option<PathBuf>,
    /// The transparency log's origin line and key name, fixed at first start (default: the
    /// public URL's host and port, then `/log`).
    pub log_origin: Option<String>,
    /// How often the sequencer integrates pending events (default 500ms).
    pub log_interval: Duration,
    /// Whether `/log/` is readable without a token (default true).
    pub log_public: bool,
    /// Witnesses asked to cosign each new checkpoint (default none).
    pub witnesses: Vec<crate::transparency::writer::WitnessConfig>,
    /// A browser session ends after this long without a request (default 30 minutes).
    pub session_idle_timeout: Duration,
    /// A browser session ends this long after sign-in, however busy (default 12 hours): also the
    /// longest a person stays signed in through single sign-on without asking the provider again.
    pub session_lifetime: Duration,
    /// Identity providers for single sign-on (default none).
    pub oidc: Vec<crate::sso::Provider>,
    /// Lifetime of the tokens `sealpost login --sso` gets (default 12 hours).
    pub sso_token_lifetime: Duration,
    /// The mail server notifications go through (default none: no email is queued).
    pub smtp_url: Option<SmtpUrl>,
    /// The address notifications come from (required with `smtp_url`).
    pub mail_from: Option<String>,
    /// A PEM file of the CA certificate(s) a private mail server's TLS certificate is checked
    /// against, besides the usual public roots (default none).
    pub smtp_ca_file: Option<PathBuf>,
    /// How often each gateway looks for notifications to send (default 5s).
    pub notification_interval: Duration,
    /// The delay before a failed notification's first retry; each later one doubles it
    /// (default 1m).
    pub notification_retry_base: Duration,
    /// The longest delay between retries (default 1h).
    pub notification_retry_max: Duration,
    /// A notification still failing this long after it was queued is given up, with a
    /// `notification.failed` event (default 3d).
    pub notification_give_up: Duration,
    /// How long before an uncollected bundle expires its recipient is reminded (default 24h).
    pub expiry_reminder: Duration,
    /// Timeouts and caps for client connections.
    pub connections: ConnectionLimits,
    /// Rate limits per client address and per token on sign-in, redemption, uploads and the
    /// device sign-in poll (default on; see [`crate::limits::RateLimits`]).
    pub rate_limits: crate::limits::RateLimits,
    /// Identical refusals within this window are one log entry and one summary with their count
    /// (default 1m; `0s` writes every refusal as its own entry).
    pub refusal_window: Duration,
    /// How long the bootstrap token that the first start writes to `DATA/admin.token` works
    /// (default 24h): within it, exchange it for a named administrator with `sealpost admin
    /// claim`; after it, the file is removed and only `sealpost admin recover` (on the server)
    /// makes a new administrator token.
    pub bootstrap_token_lifetime: Duration,
    /// Where Prometheus metrics are served at `/metrics` (default none: off); never the public
    /// listener.
    pub metrics_listen: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./sealpost-data"),
            database_url: None,
            blob_store: None,
            signing_key: None,
            public_url: None,
            max_upload_size: 10 << 30,
            default_expiry: Duration::from_secs(72 * 3600),
            max_expiry: Duration::from_secs(90 * 86400),
            token_lifetime: Some(Duration::from_secs(90 * 86400)),
            sweep_interval: Duration::from_secs(60),
            log_format: LogFormat::Human,
            upload_resume_window: Duration::from_secs(24 * 3600),
            allow_ssh_recipients: false,
            allow_unknown_stanzas: false,
            policies: None,
            log_origin: None,
            log_interval: Duration::from_millis(500),
            log_public: true,
            witnesses: Vec::new(),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            oidc: Vec::new(),
            sso_token_lifetime: crate::sso::config::DEFAULT_SSO_TOKEN_LIFETIME,
            smtp_url: None,
            mail_from: None,
            smtp_ca_file: None,
            notification_interval: Duration::from_secs(5),
            notification_retry_base: Duration::from_secs(60),
            notification_retry_max: Duration::from_secs(3600),
            notification_give_up: Duration::from_secs(3 * 86400),
            expiry_reminder: Duration::from_secs(24 * 3600),
            connections: ConnectionLimits::default(),
            rate_limits: crate::limits::RateLimits::default(),
            refusal_window: crate::store::DEFAULT_REFUSAL_WINDOW,
            bootstrap_token_lifetime: Duration::from_secs(24 * 3600),
            metrics_listen: None,
        }
    }
}

impl Config {
    /// Applies a config file's values over the defaults.
    pub fn from_file(file: FileConfig) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        if let Some(v) = file.listen {
            c.listen = v;
        }
        if let Some(v) = file.data_dir {
            c.data_dir = v;
        }
        c.database_url = file.database_url.as_deref().map(DatabaseUrl::parse).transpose()?;
        c.blob_store = file.blob_store.as_deref().map(BlobBackend::parse).transpose()?;
        c.signing_key = file.signing_key;
        c.public_url = file.public_url;
        if let Some(v) = file.max_upload_size {
            c.max_upload_size = parse_size("max_upload_size", &v)?;
        }
        if let Some(v) = file.default_expiry {
            c.default_expiry = parse_duration("default_expiry", &v)?;
        }
        if let Some(v) = file.max_expiry {
            c.max_expiry = parse_duration("max_expiry", &v)?;
        }
        if let Some(v) = file.token_lifetime {
            c.token_lifetime = if v == "never" { None } else { Some(parse_duration("token_lifetime", &v)?) };
        }
        if let Some(v) = file.sweep_interval {
            c.sweep_interval = parse_duration("sweep_interval", &v)?;
        }
        if let Some(v) = file.upload_resume_window {
            c.upload_resume_window = parse_duration("upload_resume_window", &v)?;
        }
        if let Some(v) = file.log_format {
            c.log_format = parse_log_format(&v)?;
        }
        if let Some(v) = file.allow_ssh_recipients {
            c.allow_ssh_recipients = v;
        }
        if let Some(v) = file.allow_unknown_stanzas {
            c.allow_unknown_stanzas = v;
        }
        c.policies = file.policies;
        c.log_origin = file.log_origin;
        if let Some(v) = file.log_interval {
            c.log_interval = parse_duration("log_interval", &v)?;
        }
        if let Some(v) = file.log_public {
            c.log_public = v;
        }
        c.witnesses = file.witnesses;
        if let Some(v) = file.session_idle_timeout {
            c.session_idle_timeout = parse_duration("session_idle_timeout", &v)?;
        }
        if let Some(v) = file.session_lifetime {
            c.session_lifetime = parse_duration("session_lifetime", &v)?;
        }
        c.oidc = file.oidc.into_iter().map(crate::sso::Provider::from_file).collect::<Result<_, _>>()?;
        if let Some(v) = file.sso_token_lifetime {
            c.sso_token_lifetime = parse_duration("sso_token_lifetime", &v)?;
        }
        c.smtp_url = file.smtp_url.as_deref().map(SmtpUrl::parse).transpose()?;
        c.mail_from = file.mail_from;
        c.smtp_ca_file = file.smtp_ca_file;
        for (key, value, field) in [
            ("notification_interval", file.notification_interval, &mut c.notification_interval),
            ("notification_retry_base", file.notification_retry_base, &mut c.notification_retry_base),
            ("notification_retry_max", file.notification_retry_max, &mut c.notification_retry_max),
            ("notification_give_up", file.notification_give_up, &mut c.notification_give_up),
            ("expiry_reminder", file.expiry_reminder, &mut c.expiry_reminder),
            ("bootstrap_token_lifetime", file.bootstrap_token_lifetime, &mut c.bootstrap_token_lifetime),
        ] {
            if let Some(v) = value {
                *field = parse_duration(key, &v)?;
            }
        }
        c.connections.apply(file.connections)?;
        if let Some(v) = file.rate_limits {
            c.rate_limits = v;
        }
        if let Some(v) = file.refusal_window {
            c.refusal_window = parse_duration("refusal_window", &v)?;
        }
        c.metrics_listen = file.metrics_listen;
        c.validate()?;
        Ok(c)
    }

    /// Checks values that only make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.connections.validate()?;
        if self.bootstrap_token_lifetime < Duration::from_secs(60)
            || self.bootstrap_token_lifetime > Duration::from_secs(30 * 24 * 3600)
        {
            return Err(ConfigError::Invalid {
                key: "bootstrap_token_lifetime",
                message: "use from `1m` (time to claim it) to `30d` (a credential that names nobody must not last)"
                    .to_owned(),
            });
        }
        if self.default_expiry > self.max_expiry {
            return Err(ConfigError::Invalid {
                key: "default_expiry",
                message: "it is longer than `max_expiry`".to_owned(),
            });
        }
        if self.session_idle_timeout < Duration::from_secs(1) || self.session_idle_timeout > self.session_lifetime {
            return Err(ConfigError::Invalid {
                key: "session_idle_timeout",
                message: "use at least `1s`, and no more than `session_lifetime`".to_owned(),
            });
        }
        crate::sso::config::check_providers(&self.oidc)?;
        if self.sso_token_lifetime < Duration::from_secs(60) {
            return Err(ConfigError::Invalid { key: "sso_token_lifetime", message: "use at least `1m`".to_owned() });
        }
        if self.sweep_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid { key: "sweep_interval", message: "use at least `1s`".to_owned() });
        }
        if self.smtp_url.is_some() && self.mail_from.as_deref().is_none_or(|f| f.trim().is_empty()) {
            return Err(ConfigError::Invalid {
                key: "mail_from",
                message: "`smtp_url` is set, so give the address mail comes from, such as \
                          `sealpost <sealpost@example.gov.uk>`"
                    .to_owned(),
            });
        }
        if let Some(from) = &self.mail_from
            && from.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(ConfigError::Invalid {
                key: "mail_from",
                message: format!("`{from}` is not an address such as `sealpost <sealpost@example.gov.uk>`"),
            });
        }
        if self.notification_interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                key: "notification_interval",
                message: "use at least `100ms`".to_owned(),
            });
        }
        if self.notification_retry_base < Duration::from_millis(100)
            || self.notification_retry_base > self.notification_retry_max
        {
            return Err(ConfigError::Invalid {
                key: "notification_retry_base",
                message: "use at least `100ms`, and no more than `notification_retry_max`".to_owned(),
            });
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: format!("`{url}` must start with `https://` or `http://`"),
            });
        }
        Ok(())
    }

    /// Checks what only the whole configuration (file, environment and flags) can say: single
    /// sign-on needs the public URL, the base of its redirect URI.
    pub fn check_complete(&self) -> Result<(), ConfigError> {
        if !self.oidc.is_empty() && self.public_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: "single sign-on needs the gateway's public URL (the redirect URI is `PUBLIC_URL/sign-in/callback`): set `public_url` or SEALPOST_PUBLIC_URL".to_owned(),
            });
        }
        Ok(())
    }

    /// The database: the configured one, or SQLite in the data directory.
    pub fn database(&self) -> DatabaseUrl {
        self.database_url.clone().unwrap_or_else(|| DatabaseUrl::Sqlite(self.data_dir.join("sealpost.db")))
    }

    /// The blob store: the configured one, or the directory `blobs` in the data directory.
    pub fn blobs(&self) -> BlobBackend {
        self.blob_store.clone().unwrap_or_else(|| BlobBackend::Local(self.data_dir.join("blobs")))
    }

    /// The signing key's file: the configured one, or `gateway.key` in the data directory.
    pub fn signing_key_file(&self) -> PathBuf {
        self.signing_key.clone().unwrap_or_else(|| self.data_dir.join("gateway.key"))
    }

    /// The listen address as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            message: format!("`{}` is not an address such as `127.0.0.1:8080`", self.listen),
        })
    }

    /// The metrics listener's address, when metrics are on; it must not be the public one.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(text) = &self.metrics_listen else {
            return Ok(None);
        };
        let addr: SocketAddr = text.parse().map_err(|_| ConfigError::Invalid {
            key: "metrics_listen",
            message: format!("`{text}` is not an address such as `127.0.0.1:9090`"),
        })?;
        if self.listen_addr().is_ok_and(|public| public.port() == addr.port() && public.port() != 0) {
            return Err(ConfigError::Invalid {
                key: "metrics_listen",
                message: "it is the public listener's port: metrics need a port of their own".to_owned(),
            });
        }
        Ok(Some(addr))
    }
}

/// Where the database is. A PostgreSQL URL may carry a password, so this type prints (`Debug`,
/// `Display`) only [`DatabaseUrl::redacted`]; [`DatabaseUrl::url`] is for the driver alone.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: a SQLite file (created on first start).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, as written.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `postgres://…` or `postgresql://…`.
    pub fn parse(v: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { key: "database_url", message };
        let v = v.trim();
        if let Some(path) = v.strip_prefix("sqlite://") {
            if path.is_empty() || path.starts_with(':') {
                return Err(invalid(format!(
                    "`{v}` names no file: write `sqlite://PATH`, such as `sqlite:///var/lib/sealpost/sealpost.db`"
                )));
            }
            if path.contains('?') {
                return Err(invalid(format!(
                    "`{v}` has options: sealpost sets SQLite's options itself, write `sqlite://PATH` alone"
                )));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        for scheme in ["postgres://", "postgresql://"] {
            if let Some(rest) = v.strip_prefix(scheme) {
                if rest.is_empty() || rest == "/" {
                    return Err(invalid(format!("`{scheme}` names no server: write `{scheme}USER@HOST/DATABASE`")));
                }
                return Ok(Self::Postgres(v.to_owned()));
            }
        }
        Err(invalid(format!("`{}` is not `sqlite://PATH` or `postgres://USER@HOST/DATABASE`", redact_password(v))))
    }

    /// The URL as the database driver takes it (it may carry a password: never log it).
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => url.clone(),
        }
    }

    /// The URL with any password replaced by `***`, for logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(_) => self.url(),
            Self::Postgres(url) => redact_password(url),
        }
    }
}

/// A URL with the password of its user part and any `password=` parameter replaced by `***`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let path = match path.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => path.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// How a mail server connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (default port 465).
    Wrapper,
    /// `smtp://…?tls=required`: STARTTLS, and a server that does not offer it is refused.
    Required,
    /// `smtp://` (or `?tls=opportunistic`): STARTTLS when the server offers it, plain text when
    /// it does not (for a relay on the same host or network; prefer the two above elsewhere).
    Opportunistic,
}

/// The parts of an [`SmtpUrl`].
#[derive(Clone)]
pub struct SmtpParts {
    /// The server's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// User and password, when the URL has them (percent-decoded).
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpParts")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

/// The mail server: `smtp://[USER:PASSWORD@]HOST[:PORT][?tls=required|opportunistic]` or
/// `smtps://[USER:PASSWORD@]HOST[:PORT]`. It may carry a password, so it prints (`Debug`,
/// `Display`) only [`SmtpUrl::redacted`].
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// Parses and checks a mail server URL.
    pub fn parse(v: &str) -> Result<Self, ConfigError> {
        let url = Self(v.trim().to_owned());
        url.try_parts()?;
        Ok(url)
    }

    fn try_parts(&self) -> Result<SmtpParts, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { key: "smtp_url", message };
        let shown = self.redacted();
        let parsed = reqwest::Url::parse(&self.0).map_err(|e| {
            invalid(format!("`{shown}` is not a URL ({e}): write `smtp://HOST:PORT` or `smtps://HOST:PORT`"))
        })?;
        let tls = parsed.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
        let security = match (parsed.scheme(), tls.as_deref()) {
            ("smtps", None) => SmtpSecurity::Wrapper,
            ("smtp", Some("required")) => SmtpSecurity::Required,
            ("smtp", None | Some("opportunistic")) => SmtpSecurity::Opportunistic,
            ("smtp" | "smtps", Some(other)) => {
                return Err(invalid(format!(
                    "`{shown}` asks for `tls={other}`: `smtp://` takes `?tls=required` or `?tls=opportunistic`, and \
                     `smtps://` no `tls` at all"
                )));
            }
            (scheme, _) => {
                return Err(invalid(format!(
                    "`{shown}` has the scheme `{scheme}`: write `smtp://HOST:PORT` (STARTTLS) or `smtps://HOST:PORT` (TLS)"
                )));
            }
        };
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
            invalid(format!("`{shown}` names no server: write `smtp://HOST:PORT` or `smtps://HOST:PORT`"))
        })?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = parsed.port().unwrap_or(if security == SmtpSecurity::Wrapper { 465 } else { 587 });
        let decode = |s: &str| percent_decode(s);
        let credentials = (!parsed.username().is_empty())
            .then(|| (decode(parsed.username()), decode(parsed.password().unwrap_or_default())));
        Ok(SmtpParts { host, port, security, credentials })
    }

    /// The URL's parts (it was checked when parsed).
    pub fn parts(&self) -> SmtpParts {
        self.try_parts().unwrap_or_else(|_| SmtpParts {
            host: String::new(),
            port: 0,
            security: SmtpSecurity::Required,
            credentials: None,
        })
    }

    /// The URL with any password replaced by `***`, for logs and messages.
    pub fn redacted(&self) -> String {
        redact_password(&self.0)
    }
}

/// `%XX` escapes decoded (a password in a URL may hold them).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Where committed blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobBackend {
    /// A directory on this machine (the default, `DATA_DIR/blobs`).
    Local(PathBuf),
    /// `s3://BUCKET`: a bucket of an S3-compatible store (AWS S3, Garage, …), reached with the
    /// standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ENDPOINT_URL`.
    S3 {
        /// The bucket's name.
        bucket: String,
    },
}

impl BlobBackend {
    /// Parses a directory or `s3://BUCKET`.
    pub fn parse(v: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { key: "blob_store", message };
        if v.trim().is_empty() {
            return Err(invalid("it is empty: give a directory or `s3://BUCKET`".to_owned()));
        }
        if let Some(rest) = v.strip_prefix("s3://") {
            let bucket = rest.strip_suffix('/').unwrap_or(rest);
            if bucket.contains('/') {
                return Err(invalid(format!(
                    "`{v}` names a folder inside the bucket, which sealpost does not support: give the bucket alone, `s3://BUCKET`"
                )));
            }
            if !valid_bucket_name(bucket) {
                return Err(invalid(format!(
                    "`{bucket}` is not a bucket name: 3 to 63 lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit"
                )));
            }
            return Ok(Self::S3 { bucket: bucket.to_owned() });
        }
        if let Some((scheme, _)) = v.split_once("://") {
            return Err(invalid(format!(
                "`{scheme}://` is not a blob store sealpost knows: give a directory or `s3://BUCKET`"
            )));
        }
        Ok(Self::Local(PathBuf::from(v)))
    }
}

impl fmt::Display for BlobBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "{}", dir.display()),
            Self::S3 { bucket } => write!(f, "s3://{bucket}"),
        }
    }
}

/// S3's bucket naming rules (the general-purpose ones, which Garage follows too).
fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !name.contains("..")
}

/// Parses `json` or `human`.
pub fn parse_log_format(v: &str) -> Result<LogFormat, ConfigError> {
    match v {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        _ => Err(ConfigError::Invalid { key: "log_format", message: format!("`{v}` is not `human` or `json`") }),
    }
}

/// Parses a duration such as `72h`, `14d`, `30s`.
pub fn parse_duration(key: &'static str, v: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(v.trim())
        .map_err(|_| ConfigError::Invalid { key, message: format!("`{v}` is not a duration such as `72h` or `14d`") })
}

/// Parses a size such as `10GiB`, `500MB`, `1048576`.
pub fn parse_size(key: &'static str, v: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError::Invalid { key, message: format!("`{v}` is not a size such as `10GiB` or `500MB`") };
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "TiB" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_server_urls_parse_and_never_print_their_password() {
        let url = SmtpUrl::parse("smtps://mailer:p%40ss@smtp.example.gov.uk").expect("parses");
        assert_eq!(url.to_string(), "smtps://mailer:***@smtp.example.gov.uk");
        assert_eq!(format!("{url:?}"), "smtps://mailer:***@smtp.example.gov.uk");
        let parts = url.parts();
        assert_eq!(
            (parts.host.as_str(), parts.port, parts.security),
            ("smtp.example.gov.uk", 465, SmtpSecurity::Wrapper)
        );
        assert_eq!(parts.credentials, Some(("mailer".to_owned(), "p@ss".to_owned())));
        assert!(!format!("{parts:?}").contains("p@ss"));
        let plain = SmtpUrl::parse("smtp://relay.internal").unwrap().parts();
        assert_eq!((plain.port, plain.security, plain.credentials), (587, SmtpSecurity::Opportunistic, None));
        let required = SmtpUrl::parse("smtp://relay.internal:2525?tls=required").unwrap().parts();
        assert_eq!((required.port, required.security), (2525, SmtpSecurity::Required));
        let refused = |v: &str| match SmtpUrl::parse(v) {
            Err(ConfigError::Invalid { key, message }) => (key, message),
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(
            refused("http://user:hunter2@smtp.example"),
            ("smtp_url", "`http://user:***@smtp.example` has the scheme `http`: write `smtp://HOST:PORT` (STARTTLS) or `smtps://HOST:PORT` (TLS)".to_owned())
        );
        assert!(refused("smtp://relay?tls=maybe").1.contains("`tls=maybe`"));
        let file: FileConfig = toml::from_str("smtp_url = \"smtp://relay.internal\"").unwrap();
        assert_eq!(
            Config::from_file(file).map_err(|e| e.to_string()).unwrap_err(),
            "option `mail_from` is invalid: `smtp_url` is set, so give the address mail comes from, such as `sealpost <sealpost@example.gov.uk>`"
        );
        let file: FileConfig =
            toml::from_str("smtp_url = \"smtp://relay.internal\"\nmail_from = \"sealpost <sealpost@example.gov.uk>\"")
                .unwrap();
        assert!(Config::from_file(file).is_ok());
    }

    #[test]
    fn sizes_and_durations_parse_as_people_write_them() {
        assert_eq!(parse_size("k", "10GiB").expect("ok"), 10 << 30);
        assert_eq!(parse_size("k", "500 MB").expect("ok"), 500_000_000);
        assert_eq!(parse_size("k", "42").expect("ok"), 42);
        assert!(matches!(parse_size("k", "ten"), Err(ConfigError::Invalid { key: "k", .. })));
        assert_eq!(parse_duration("k", "72h").expect("ok"), Duration::from_secs(72 * 3600));
        assert_eq!(parse_duration("k", "14d").expect("ok"), Duration::from_secs(14 * 86400));
    }

    #[test]
    fn the_bootstrap_token_lives_from_a_minute_to_thirty_days() {
        let with = |v: &str| Config::from_file(toml::from_str(&format!("bootstrap_token_lifetime = \"{v}\"")).unwrap());
        assert_eq!(Config::default().bootstrap_token_lifetime, Duration::from_secs(86400));
        assert_eq!(with("2h").expect("valid").bootstrap_token_lifetime, Duration::from_secs(7200));
        for refused in ["30s", "31d", "never"] {
            assert!(
                matches!(with(refused), Err(ConfigError::Invalid { key: "bootstrap_token_lifetime", .. })),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_shipped_example_file_is_valid_and_says_the_defaults() {
        let file: FileConfig = toml::from_str(include_str!("../deploy/sealpost.toml")).expect("parses");
        let c = Config::from_file(file).expect("valid");
        let d = Config::default();
        assert_eq!(c.bootstrap_token_lifetime, d.bootstrap_token_lifetime);
        assert_eq!(c.refusal_window, d.refusal_window);
        assert_eq!(c.connections.max_per_address, d.connections.max_per_address);
        assert!(c.connections.trusted_proxies.is_empty());
    }

    #[test]
    fn the_trusted_proxies_are_addresses_or_networks() {
        let file: FileConfig =
            toml::from_str("[connections]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.10\", \"2001:db8::/32\"]")
                .expect("parses");
        let c = Config::from_file(file).expect("valid");
        assert!(c.connections.is_trusted_proxy("10.1.2.3".parse().unwrap()));
        assert!(c.connections.is_trusted_proxy("192.0.2.10".parse().unwrap()));
        assert!(!c.connections.is_trusted_proxy("192.0.2.11".parse().unwrap()));
        assert!(c.connections.is_trusted_proxy("2001:db8::1".parse().unwrap()));
        let file: FileConfig = toml::from_str("[connections]\ntrusted_proxies = [\"proxy.internal\"]").expect("parses");
        assert!(matches!(
            Config::from_file(file),
            Err(ConfigError::Invalid { key: "connections.trusted_proxies", .. })
        ));
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
        let file: FileConfig = toml::from_str("max_expiry = \"7d\"\ndefault_expiry = \"1d\"").expect("parses");
        let c = Config::from_file(file).expect("valid");
        assert_eq!(c.max_expiry, Duration::from_secs(7 * 86400));
        assert_eq!(c.policies, None);
    }

    #[test]
    fn the_connections_table_sets_timeouts_and_caps_and_refuses_nonsense() {
        let defaults = Config::from_file(FileConfig::default()).expect("defaults");
        assert_eq!(defaults.connections, ConnectionLimits::default());
        let file: FileConfig = toml::from_str(
            "[connections]\nheader_timeout = \"5s\"\nbody_idle_timeout = \"1m\"\nshutdown_timeout = \"10s\"\n\
             max = 50\nmax_per_address = 5",
        )
        .expect("parses");
        let c = Config::from_file(file).expect("valid").connections;
        assert_eq!(
            (c.header_timeout, c.body_idle_timeout, c.shutdown_timeout, c.max, c.max_per_address),
            (Duration::from_secs(5), Duration::from_secs(60), Duration::from_secs(10), Some(50), 5)
        );
        for (text, key) in [
            ("[connections]\nheader_timeout = \"0s\"", "connections.header_timeout"),
            ("[connections]\nmax = 0", "connections.max"),
            ("[connections]\nmax_per_address = 0", "connections.max_per_address"),
        ] {
            let file: FileConfig = toml::from_str(text).expect("parses");
            assert_eq!(refused(Config::from_file(file)).0, key, "{text}");
        }
        assert!(toml::from_str::<FileConfig>("[connections]\nmaximum = 3").is_err(), "unknown keys are refused");
    }

    #[test]
    fn default_expiry_cannot_exceed_the_maximum() {
        let file: FileConfig = toml::from_str("max_expiry = \"1d\"").expect("parses");
        assert!(matches!(Config::from_file(file), Err(ConfigError::Invalid { key: "default_expiry", .. })));
    }

    /// The option and message of a refusal (`ConfigError` holds an `io::Error`, so it has no
    /// `PartialEq` of its own).
    #[track_caller]
    fn refused<T: fmt::Debug>(result: Result<T, ConfigError>) -> (&'static str, String) {
        match result {
            Err(ConfigError::Invalid { key, message }) => (key, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn backends_default_to_files_in_the_data_directory() {
        let c = Config { data_dir: PathBuf::from("/srv/sealpost"), ..Config::default() };
        assert_eq!(c.database(), DatabaseUrl::Sqlite(PathBuf::from("/srv/sealpost/sealpost.db")));
        assert_eq!(c.database().url(), "sqlite:///srv/sealpost/sealpost.db");
        assert_eq!(c.blobs(), BlobBackend::Local(PathBuf::from("/srv/sealpost/blobs")));
        assert_eq!(c.signing_key_file(), PathBuf::from("/srv/sealpost/gateway.key"));
    }

    #[test]
    fn the_file_names_the_backends_and_the_signing_key() {
        let file: FileConfig = toml::from_str(
            "database_url = \"postgres://sealpost:hunter2@db.internal:5432/sealpost\"\n\
             blob_store = \"s3://sealpost-blobs\"\n\
             signing_key = \"/run/secrets/gateway.key\"",
        )
        .expect("parses");
        let c = Config::from_file(file).expect("valid");
        assert_eq!(c.database().url(), "postgres://sealpost:hunter2@db.internal:5432/sealpost");
        assert_eq!(c.blobs(), BlobBackend::S3 { bucket: "sealpost-blobs".to_owned() });
        assert_eq!(c.signing_key_file(), PathBuf::from("/run/secrets/gateway.key"));
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("postgres://sealpost:***@db.internal:5432/sealpost"), "{printed}");
    }

    #[test]
    fn database_urls_parse_sqlite_and_postgres() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/sealpost/s.db").expect("ok"),
            DatabaseUrl::Sqlite("/var/lib/sealpost/s.db".into())
        );
        assert_eq!(DatabaseUrl::parse("sqlite://data/s.db").expect("ok"), DatabaseUrl::Sqlite("data/s.db".into()));
        for url in ["postgres://db/sealpost", "postgresql://u@db:5433/sealpost?sslmode=require"] {
            assert_eq!(DatabaseUrl::parse(url).expect("ok"), DatabaseUrl::Postgres(url.to_owned()));
        }
        let url = DatabaseUrl::parse("postgres://u:secret@db/s?password=other&sslmode=require").expect("ok");
        assert_eq!(url.redacted(), "postgres://u:***@db/s?password=***&sslmode=require");
        assert_eq!(url.to_string(), url.redacted());
    }

    #[test]
    fn database_urls_of_other_kinds_are_refused() {
        assert_eq!(
            refused(DatabaseUrl::parse("mysql://root:pw@db/sealpost")),
            (
                "database_url",
                "`mysql://root:***@db/sealpost` is not `sqlite://PATH` or `postgres://USER@HOST/DATABASE`".to_owned()
            )
        );
        assert_eq!(
            refused(DatabaseUrl::parse("/var/lib/sealpost.db")),
            (
                "database_url",
                "`/var/lib/sealpost.db` is not `sqlite://PATH` or `postgres://USER@HOST/DATABASE`".to_owned()
            )
        );
        assert_eq!(
            refused(DatabaseUrl::parse("sqlite://")),
            (
                "database_url",
                "`sqlite://` names no file: write `sqlite://PATH`, such as `sqlite:///var/lib/sealpost/sealpost.db`"
                    .to_owned()
            )
        );
        assert_eq!(refused(DatabaseUrl::parse("sqlite://:memory:")), ("database_url", "`sqlite://:memory:` names no file: write `sqlite://PATH`, such as `sqlite:///var/lib/sealpost/sealpost.db`".to_owned()));
        assert_eq!(refused(DatabaseUrl::parse("sqlite://s.db?mode=ro")), ("database_url", "`sqlite://s.db?mode=ro` has options: sealpost sets SQLite's options itself, write `sqlite://PATH` alone".to_owned()));
        assert_eq!(
            refused(DatabaseUrl::parse("postgresql://")),
            ("database_url", "`postgresql://` names no server: write `postgresql://USER@HOST/DATABASE`".to_owned())
        );
        let file: FileConfig = toml::from_str("database_url = \"redis://cache\"").expect("parses");
        assert!(matches!(Config::from_file(file), Err(ConfigError::Invalid { key: "database_url", .. })));
    }

    #[test]
    fn blob_stores_parse_directories_and_buckets() {
        assert_eq!(BlobBackend::parse("/srv/blobs").expect("ok"), BlobBackend::Local("/srv/blobs".into()));
        assert_eq!(BlobBackend::parse("blobs").expect("ok"), BlobBackend::Local("blobs".into()));
        assert_eq!(BlobBackend::parse("s3://sealpost").expect("ok"), BlobBackend::S3 { bucket: "sealpost".to_owned() });
        assert_eq!(BlobBackend::parse("s3://a.b-c1/").expect("ok"), BlobBackend::S3 { bucket: "a.b-c1".to_owned() });
        assert_eq!(BlobBackend::parse("s3://sealpost").expect("ok").to_string(), "s3://sealpost");
    }

    #[test]
    fn blob_stores_of_other_kinds_and_bad_buckets_are_refused() {
        assert_eq!(
            refused(BlobBackend::parse("")),
            ("blob_store", "it is empty: give a directory or `s3://BUCKET`".to_owned())
        );
        assert_eq!(
            refused(BlobBackend::parse("gs://bucket")),
            ("blob_store", "`gs://` is not a blob store sealpost knows: give a directory or `s3://BUCKET`".to_owned())
        );
        assert_eq!(refused(BlobBackend::parse("s3://bucket/prefix")), ("blob_store", "`s3://bucket/prefix` names a folder inside the bucket, which sealpost does not support: give the bucket alone, `s3://BUCKET`".to_owned()));
        for bad in ["s3://", "s3://ab", "s3://Upper", "s3://-dash", "s3://dot.", "s3://a..b", "s3://under_score"] {
            let bucket = bad.trim_start_matches("s3://");
            assert_eq!(
                refused(BlobBackend::parse(bad)),
                (
                    "blob_store",
                    format!(
                        "`{bucket}` is not a bucket name: 3 to 63 lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit"
                    )
                )
            );
        }
        let file: FileConfig = toml::from_str("blob_store = \"s3://x\"").expect("parses");
        assert!(matches!(Config::from_file(file), Err(ConfigError::Invalid { key: "blob_store", .. })));
    }
}
