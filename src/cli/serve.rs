//! `sealpost serve`: resolve the configuration (flags > environment > file > defaults), set up
//! logging, bind, open the data directory and serve until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use clap::Args;
use tracing_subscriber::EnvFilter;

use super::{EXIT_CONFIG, Failure};
use crate::blobs::BlobError;
use crate::config::{
    BlobBackend, Config, DatabaseUrl, FileConfig, LogFormat, SmtpUrl, parse_duration, parse_log_format, parse_size,
};
use crate::gateway::StartError;

/// Where a deployment's data is: the options `serve` shares with `admin migrate`, `backup` and
/// `restore`, which work on the data directly.
#[derive(Debug, Args)]
pub(super) struct StorageArgs {
    /// Configuration file (default: `./sealpost.toml` if it exists).
    #[arg(long, env = "SEALPOST_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: database, blobs, keys, admin token.
    #[arg(long, env = "SEALPOST_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database: `sqlite://PATH` (default: `sealpost.db` in the data directory) or
    /// `postgres://USER@HOST/DATABASE`.
    #[arg(long, env = "SEALPOST_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Blob store: a directory (default: `blobs` in the data directory) or `s3://BUCKET`, reached
    /// with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL.
    #[arg(long, env = "SEALPOST_BLOB_STORE")]
    blob_store: Option<String>,
    /// The gateway's Ed25519 signing key, PKCS#8 PEM (default: `gateway.key` in the data
    /// directory; `serve` makes it when missing); gateways that serve one log share it.
    #[arg(long, env = "SEALPOST_SIGNING_KEY_FILE")]
    signing_key: Option<PathBuf>,
}

/// Options for `sealpost serve`.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on.
    #[arg(long, env = "SEALPOST_LISTEN")]
    listen: Option<String>,
    /// Base URL used in links (default: http:// and the bound address).
    #[arg(long, env = "SEALPOST_PUBLIC_URL")]
    public_url: Option<String>,
    /// Largest upload, e.g. `10GiB`.
    #[arg(long, env = "SEALPOST_MAX_UPLOAD_SIZE")]
    max_upload_size: Option<String>,
    /// Directory of Cedar policies (a `*.cedarschema` and `*.cedar` files) replacing the built-in set.
    #[arg(long, env = "SEALPOST_POLICIES")]
    policies: Option<PathBuf>,
    /// Log format: `human` or `json`.
    #[arg(long, env = "SEALPOST_LOG_FORMAT")]
    log_format: Option<String>,
    /// Single sign-on: the identity provider's issuer URL (one provider, id `sso`; more in the
    /// config file's `[[oidc]]` tables).
    #[arg(long, env = "SEALPOST_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The client id registered at that provider.
    #[arg(long, env = "SEALPOST_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    /// The client secret (prefer the environment to the command line).
    #[arg(long, env = "SEALPOST_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<String>,
    /// What the sign-in button calls the provider: `Sign in with NAME` (default `single sign-on`).
    #[arg(long, env = "SEALPOST_OIDC_NAME")]
    oidc_name: Option<String>,
    /// Mail server for notifications: `smtp://[USER:PASSWORD@]HOST[:PORT]` (STARTTLS when
    /// offered; add `?tls=required` to insist) or `smtps://…` (TLS from the start).
    #[arg(long, env = "SEALPOST_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The address notifications come from, such as `sealpost <sealpost@example.gov.uk>`.
    #[arg(long, env = "SEALPOST_MAIL_FROM")]
    mail_from: Option<String>,
    /// PEM file of the CA certificate a private mail server's certificate is checked against.
    #[arg(long, env = "SEALPOST_SMTP_CA_FILE")]
    smtp_ca_file: Option<PathBuf>,
    /// A request's headers must arrive within this long (also how long an idle keep-alive
    /// connection stays open), e.g. `10s`.
    #[arg(long, env = "SEALPOST_HEADER_TIMEOUT")]
    header_timeout: Option<String>,
    /// A request body that brings no byte for this long fails with 408, e.g. `30s`.
    #[arg(long, env = "SEALPOST_BODY_IDLE_TIMEOUT")]
    body_idle_timeout: Option<String>,
    /// A graceful stop ends within about this long; what is still running then is cut and
    /// audited, e.g. `30s`.
    #[arg(long, env = "SEALPOST_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: Option<String>,
    /// Concurrent connections at most (default 1024, less under a low open-file limit).
    #[arg(long, env = "SEALPOST_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Concurrent connections from one client address at most (default 256).
    #[arg(long, env = "SEALPOST_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// Reverse proxies whose `X-Forwarded-For` names the client, comma-separated addresses or
    /// networks such as `10.0.0.0/8` (default: none, the header is ignored).
    #[arg(long, env = "SEALPOST_TRUSTED_PROXIES", value_name = "ADDRESSES")]
    trusted_proxies: Option<String>,
    /// Serve Prometheus metrics at `/metrics` on this address, a listener of its own (default:
    /// off). Keep it private: it is never the public port.
    #[arg(long, env = "SEALPOST_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Rate limits on sign-in, redemption, uploads and the device poll: `on` (default) or `off`;
    /// the quotas are in the config file's `[rate_limits]` table.
    #[arg(long, env = "SEALPOST_RATE_LIMITS", value_parser = ["on", "off"])]
    rate_limits: Option<String>,
}

pub(super) fn config_failure(e: &crate::config::ConfigError) -> Failure {
    Failure::new(e.to_string()).hint("see deploy/sealpost.toml for every option").exit(EXIT_CONFIG)
}

/// Resolves the configuration from the file, then the storage options over it.
pub(super) fn resolve_storage(args: &StorageArgs) -> Result<Config, Failure> {
    let default_file = PathBuf::from("sealpost.toml");
    let file = match &args.config {
        Some(path) => FileConfig::read(path).map_err(|e| config_failure(&e))?,
        None if default_file.is_file() => FileConfig::read(&default_file).map_err(|e| config_failure(&e))?,
        None => FileConfig::default(),
    };
    let mut config = Config::from_file(file).map_err(|e| config_failure(&e))?;
    if let Some(v) = &args.data_dir {
        config.data_dir.clone_from(v);
    }
    if let Some(v) = &args.database_url {
        config.database_url = Some(DatabaseUrl::parse(v).map_err(|e| config_failure(&e))?);
    }
    if let Some(v) = &args.blob_store {
        config.blob_store = Some(BlobBackend::parse(v).map_err(|e| config_failure(&e))?);
    }
    if let Some(v) = &args.signing_key {
        config.signing_key = Some(v.clone());
    }
    Ok(config)
}

/// Resolves the configuration from the file, then environment and flags over it.
fn resolve(args: &ServeArgs) -> Result<Config, Failure> {
    let mut config = resolve_storage(&args.storage)?;
    if let Some(v) = &args.listen {
        config.listen.clone_from(v);
    }
    if let Some(v) = &args.public_url {
        config.public_url = Some(v.clone());
    }
    if let Some(v) = &args.max_upload_size {
        config.max_upload_size = parse_size("max_upload_size", v).map_err(|e| config_failure(&e))?;
    }
    if let Some(v) = &args.policies {
        config.policies = Some(v.clone());
    }
    if let Some(v) = &args.log_format {
        config.log_format = parse_log_format(v).map_err(|e| config_failure(&e))?;
    }
    if let Some(issuer) = &args.oidc_issuer {
        let file = crate::sso::config::ProviderFile {
            issuer: issuer.clone(),
            client_id: args.oidc_client_id.clone().unwrap_or_default(),
            client_secret: args.oidc_client_secret.clone(),
            name: args.oidc_name.clone(),
            ..Default::default()
        };
        config.oidc.push(crate::sso::Provider::from_file(file).map_err(|e| config_failure(&e))?);
    } else if args.oidc_client_id.is_some() || args.oidc_client_secret.is_some() {
        return Err(Failure::new(
            "SEALPOST_OIDC_CLIENT_ID or SEALPOST_OIDC_CLIENT_SECRET is set without SEALPOST_OIDC_ISSUER",
        )
        .hint("set SEALPOST_OIDC_ISSUER to the provider's issuer URL too, or unset both")
        .exit(EXIT_CONFIG));
    }
    if let Some(v) = &args.smtp_url {
        config.smtp_url = Some(SmtpUrl::parse(v).map_err(|e| config_failure(&e))?);
    }
    if let Some(v) = &args.mail_from {
        config.mail_from = Some(v.clone());
    }
    if let Some(v) = &args.smtp_ca_file {
        config.smtp_ca_file = Some(v.clone());
    }
    for (key, value, field) in [
        ("header_timeout", &args.header_timeout, &mut config.connections.header_timeout),
        ("body_idle_timeout", &args.body_idle_timeout, &mut config.connections.body_idle_timeout),
        ("shutdown_timeout", &args.shutdown_timeout, &mut config.connections.shutdown_timeout),
    ] {
        if let Some(v) = value {
            *field = parse_duration(key, v).map_err(|e| config_failure(&e))?;
        }
    }
    if let Some(v) = args.max_connections {
        config.connections.max = Some(v);
    }
    if let Some(v) = args.max_connections_per_address {
        config.connections.max_per_address = v;
    }
    if let Some(v) = &args.trusted_proxies {
        let items: Vec<&str> = v.split(',').map(str::trim).filter(|i| !i.is_empty()).collect();
        config.connections.trusted_proxies =
            crate::config::parse_proxies("SEALPOST_TRUSTED_PROXIES", &items).map_err(|e| config_failure(&e))?;
    }
    if let Some(v) = &args.metrics_listen {
        config.metrics_listen = Some(v.clone());
    }
    if let Some(v) = &args.rate_limits {
        config.rate_limits.enabled = v == "on";
    }
    config.metrics_addr().map_err(|e| config_failure(&e))?;
    config.validate().map_err(|e| config_failure(&e))?;
    config.check_complete().map_err(|e| config_failure(&e))?;
    Ok(config)
}

/// Logs to stderr, human or JSON, filtered by `RUST_LOG` (default `info`).
pub(super) fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub(super) async fn run(args: ServeArgs) -> Result<(), Failure> {
    let config = resolve(&args)?;
    init_tracing(config.log_format);
    let addr = config.listen_addr().map_err(|e| config_failure(&e))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::new(format!("cannot listen on {addr}: {e}")).hint("pick another address with --listen")
    })?;
    let bound = listener.local_addr().map_err(|e| Failure::new(format!("cannot read the bound address: {e}")))?;
    let data_dir = config.data_dir.clone();
    let blobs = config.blobs();
    let (gateway, startup) =
        crate::gateway::Gateway::open(config, format!("http://{bound}")).await.map_err(|e| match e {
            StartError::Policy(p) => Failure::new(format!("invalid policy: {p}"))
                .hint("fix the policy file, check it with `sealpost policy check DIR`, then start again")
                .exit(EXIT_CONFIG),
            StartError::Blobs(BlobError::PlainHttp { .. }) => Failure::new(e.to_string())
                .hint("use an https:// endpoint, or set AWS_ALLOW_HTTP=true if the network to the store is private")
                .exit(EXIT_CONFIG),
            StartError::Blobs(_) if matches!(blobs, BlobBackend::S3 { .. }) => {
                Failure::new(e.to_string()).hint(format!(
                    "check that `{blobs}` exists and that AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION \
                     (`garage` for Garage) and AWS_ENDPOINT_URL reach it with a key that may read and write"
                ))
            }
            StartError::Busy(_) => Failure::new(e.to_string())
                .hint("wait for `sealpost admin migrate` or `sealpost admin restore` to finish, then start again"),
            other => Failure::new(other.to_string()).hint(format!("check the data directory `{}`", data_dir.display())),
        })?;
    tracing::info!(policies = %gateway.gate.source(), digest = %gateway.gate.digest(), "policies loaded");
    spawn_reload_on_hangup(gateway.clone());
    if let Some((path, expires)) = &startup.admin_token {
        tracing::info!(path = %path.display(), %expires, "first start: wrote the bootstrap admin token (mode 0600)");
        eprintln!(
            "sealpost: the bootstrap admin token is in {} (readable by you only) and works until {}: exchange it for \
             your own administrator with `sealpost admin claim ORG/NAME`",
            path.display(),
            expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    if startup.admin_token_removed {
        eprintln!("sealpost: removed the bootstrap token from the data directory: it no longer works");
    }
    if startup.staged_removed + startup.orphans_removed > 0 || startup.leases_reset > 0 {
        tracing::info!(
            staged = startup.staged_removed,
            orphans = startup.orphans_removed,
            leases = startup.leases_reset,
            "recovered from an earlier stop"
        );
    }
    if startup.keys_bound > 0 {
        tracing::info!(
            keys = startup.keys_bound,
            "bound keys registered by an earlier version to their owners in the log"
        );
    }
    tracing::info!(
        %bound,
        public_url = %gateway.public_url,
        data_dir = %data_dir.display(),
        database = %gateway.config.database(),
        blobs = %gateway.config.blobs(),
        "sealpost is listening"
    );
    spawn_metrics(&gateway).await?;
    crate::server::run(listener, gateway, shutdown_signal())
        .await
        .map_err(|e| Failure::new(format!("the server stopped: {e}")))?;
    tracing::info!("sealpost stopped");
    Ok(())
}

/// Starts the metrics listener when `metrics_listen` is set (it stops with the process).
async fn spawn_metrics(gateway: &std::sync::Arc<crate::gateway::Gateway>) -> Result<(), Failure> {
    let Some(addr) = gateway.config.metrics_addr().map_err(|e| config_failure(&e))? else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::new(format!("cannot listen for metrics on {addr}: {e}"))
            .hint("pick another address with --metrics-listen")
    })?;
    tracing::info!(%addr, "metrics at /metrics");
    let gateway = gateway.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::metrics::serve(listener, gateway, std::future::pending()).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// Reloads the policies on every SIGHUP; an invalid set is logged and the old one stays.
fn spawn_reload_on_hangup(gateway: std::sync::Arc<crate::gateway::Gateway>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; use `sealpost admin policy reload`");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match crate::lifecycle::reload_policies(&gateway, None).await {
                Ok(digest) => tracing::info!(%digest, "SIGHUP: policies reloaded"),
                Err(e) => tracing::error!(error = ?e, "SIGHUP: policies not reloaded; the old ones stay"),
            }
        }
    });
}

/// Resolves on Ctrl-C or SIGTERM (the gateway and the witness both stop on it).
pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
