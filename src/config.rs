//! Server configuration: flags > environment > `sealpost.toml` > defaults.
//!
//! Every option is documented in `deploy/sealpost.toml` and the README. Durations are written
//! the way people say them (`72h`, `14d`, `30s`), sizes with binary or decimal units (`10GiB`).

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
}

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
    /// A browser session ends this long after sign-in, however busy (default 12 hours).
    pub session_lifetime: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./sealpost-data"),
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
        c.validate()?;
        Ok(c)
    }

    /// Checks values that only make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if self.sweep_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid { key: "sweep_interval", message: "use at least `1s`".to_owned() });
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

    /// The listen address as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            message: format!("`{}` is not an address such as `127.0.0.1:8080`", self.listen),
        })
    }
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
    fn sizes_and_durations_parse_as_people_write_them() {
        assert_eq!(parse_size("k", "10GiB").expect("ok"), 10 << 30);
        assert_eq!(parse_size("k", "500 MB").expect("ok"), 500_000_000);
        assert_eq!(parse_size("k", "42").expect("ok"), 42);
        assert!(matches!(parse_size("k", "ten"), Err(ConfigError::Invalid { key: "k", .. })));
        assert_eq!(parse_duration("k", "72h").expect("ok"), Duration::from_secs(72 * 3600));
        assert_eq!(parse_duration("k", "14d").expect("ok"), Duration::from_secs(14 * 86400));
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
    fn default_expiry_cannot_exceed_the_maximum() {
        let file: FileConfig = toml::from_str("max_expiry = \"1d\"").expect("parses");
        assert!(matches!(Config::from_file(file), Err(ConfigError::Invalid { key: "default_expiry", .. })));
    }
}
