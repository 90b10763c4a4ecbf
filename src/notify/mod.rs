//! Notifications by email and webhooks.
//!
//! The store writes outbox rows in the same transaction as the audit event that causes them
//! (`store::notifications`); this module sends them. Every gateway runs [`run`]: it claims due
//! rows (a lease, taken in a write transaction, so gateways sharing PostgreSQL never send one row
//! twice), sends each by SMTP ([`Mailer`], `lettre`) or as a signed webhook delivery
//! ([`webhook`], the Standard Webhooks scheme), and records each one sent as a
//! `notification.sent` event. A failure is logged and retried with exponential back-off until
//! `notification_give_up` has passed since the row was written; then a `notification.failed`
//! event records that it was given up. A transfer never waits for any of this.

mod kinds;
pub mod secret;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use tokio_util::sync::CancellationToken;

pub use kinds::{Kind, Mail, render};

use crate::config::Config;
use crate::gateway::Gateway;
use crate::store::{OutboxRow, Target};

/// Why the mail transport could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use `{path}` as the mail server's CA certificate: {message}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The sender address is not an address.
    #[error("`mail_from` `{0}` is not an email address such as `sealpost <sealpost@example.gov.uk>`")]
    From(String),
    /// The TLS settings could not be built.
    #[error("cannot set up TLS for the mail server: {0}")]
    Tls(String),
}

/// The mail server connection (pooled) and the sender address.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("server", &self.server).field("from", &self.from.to_string()).finish()
    }
}

impl Mailer {
    /// The mailer `config` asks for, or `None` without `smtp_url`.
    ///
    /// `smtp://HOST[:PORT]` (default port 587) uses STARTTLS when the server offers it;
    /// `smtp://…?tls=required` refuses a server that does not; `smtps://HOST[:PORT]` (default
    /// 465) speaks TLS from the first byte. A user and password in the URL authenticate.
    pub fn from_config(config: &Config) -> Result<Option<Self>, MailError> {
        let Some(url) = &config.smtp_url else { return Ok(None) };
        let from_text = config.mail_from.clone().unwrap_or_default();
        let from: Mailbox = from_text.parse().map_err(|_| MailError::From(from_text.clone()))?;
        let parts = url.parts();
        let mut tls = TlsParameters::builder(parts.host.clone());
        if let Some(path) = &config.smtp_ca_file {
            let pem =
                std::fs::read(path).map_err(|e| MailError::CaFile { path: path.clone(), message: e.to_string() })?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| MailError::CaFile { path: path.clone(), message: e.to_string() })?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| MailError::Tls(e.to_string()))?;
        let tls = match parts.security {
            crate::config::SmtpSecurity::Wrapper => Tls::Wrapper(tls),
            crate::config::SmtpSecurity::Required => Tls::Required(tls),
            crate::config::SmtpSecurity::Opportunistic => Tls::Opportunistic(tls),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(parts.host.clone())
            .port(parts.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let Some((user, password)) = parts.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Some(Self { transport: builder.build(), from, server: url.redacted() }))
    }

    /// Sends `mail` to `address`.
    async fn send(&self, address: &str, mail: &Mail) -> Result<(), String> {
        let to: Mailbox = address.parse().map_err(|e| format!("the address `{address}` is not valid: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| format!("the message could not be built: {e}"))?;
        self.transport.send(message).await.map(drop).map_err(|e| format!("{} refused or failed: {e}", self.server))
    }
}

/// How the worker paces itself (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// How often it looks for due rows.
    pub interval: Duration,
    /// The first retry's delay; each later one doubles it.
    pub retry_base: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
    /// How long after a row was written it is given up.
    pub give_up: Duration,
    /// How long before a link's expiry its recipient is reminded.
    pub reminder: Duration,
}

impl Pace {
    /// The pace `config` sets.
    pub fn of(config: &Config) -> Self {
        Self {
            interval: config.notification_interval,
            retry_base: config.notification_retry_base,
            retry_max: config.notification_retry_max,
            give_up: config.notification_give_up,
            reminder: config.expiry_reminder,
        }
    }

    /// When a row that failed `attempts` times before this failure is tried again, or `None`
    /// when it is to be given up.
    pub fn retry_at(&self, attempts: u32, created_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let give_up = chrono::TimeDelta::from_std(self.give_up).unwrap_or(chrono::TimeDelta::MAX);
        if now - created_at >= give_up {
            return None;
        }
        let delay = self.retry_base.saturating_mul(2u32.saturating_pow(attempts.min(30))).min(self.retry_max);
        Some(now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX))
    }
}

/// Rows claimed at once.
const BATCH: u32 = 20;

/// How long a claim lasts: longer than any one send can take (SMTP and webhook timeouts are 30 s
/// and 10 s), so only a gateway that died mid-send lets another one take its rows over.
const CLAIM: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The HTTP client webhook deliveries go out through: no redirects followed (a 3xx is not a
/// delivery), 10 s per delivery.
fn webhook_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("sealpost/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Sends due notifications every `notification_interval` until `stop`. A gateway without a mail
/// server sends webhook deliveries only, and leaves email rows to one that has.
pub async fn run(gateway: Arc<Gateway>, stop: CancellationToken) {
    let pace = Pace::of(&gateway.config);
    let http = webhook_client();
    let ahead = chrono::TimeDelta::from_std(pace.reminder).unwrap_or(chrono::TimeDelta::MAX);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pace.interval) => {}
        }
        let now = gateway.clock.now();
        if gateway.mailer.is_some()
            && let Err(e) = gateway.store.queue_expiry_reminders(ahead, now).await
        {
            tracing::warn!(error = %e, "could not queue expiry reminders; will retry");
        }
        loop {
            let now = gateway.clock.now();
            let rows = match gateway.store.claim_notifications(BATCH, gateway.mailer.is_some(), now + CLAIM, now).await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim notifications; will retry");
                    break;
                }
            };
            let full = rows.len() == BATCH as usize;
            for row in rows {
                if stop.is_cancelled() {
                    return;
                }
                deliver(&gateway, &http, &pace, &row).await;
            }
            if !full {
                break;
            }
        }
    }
}

/// Sends one claimed row and records the outcome.
async fn deliver(gateway: &Gateway, http: &reqwest::Client, pace: &Pace, row: &OutboxRow) {
    let outcome = match (&row.target, row.kind) {
        (_, None) => {
            Err(Failure::Permanent("unknown_kind", format!("this gateway does not know the kind `{}`", row.kind_name)))
        }
        (Target::Email { address: None, .. }, _) => {
            Err(Failure::Permanent("no_address", "the user no longer has an email address".to_owned()))
        }
        (Target::Email { address: Some(address), .. }, Some(kind)) => match &gateway.mailer {
            Some(mailer) => {
                let mail = render(kind, &row.data, &gateway.public_url);
                mailer.send(address, &mail).await.map_err(Failure::Retry)
            }
            None => Err(Failure::Retry("this gateway has no mail server".to_owned())),
        },
        (Target::Webhook { webhook, url, sealed_secret, .. }, Some(kind)) => {
            match secret::open(&gateway.signing_key, webhook, sealed_secret) {
                Ok(key) => {
                    webhook::deliver(http, url, &key, row, kind, gateway.clock.now()).await.map_err(Failure::Retry)
                }
                Err(e) => Err(Failure::Permanent("secret_unreadable", e.to_string())),
            }
        }
    };
    let now = gateway.clock.now();
    let recorded = match outcome {
        Ok(()) => gateway.store.notification_sent(row, now).await,
        Err(Failure::Retry(error)) => {
            let retry_at = pace.retry_at(row.attempts, row.created_at, now);
            match retry_at {
                Some(at) => tracing::warn!(
                    notification = %row.id, kind = %row.kind_name, channel = row.target.channel(), attempts = row.attempts + 1,
                    retry_at = %at, error = %error, "a notification could not be sent; it will be retried"
                ),
                None => tracing::error!(
                    notification = %row.id, kind = %row.kind_name, channel = row.target.channel(), attempts = row.attempts + 1,
                    error = %error, "a notification could not be sent for too long; it is given up"
                ),
            }
            gateway.store.notification_failed(row, &error, retry_at, "gave_up", now).await
        }
        Err(Failure::Permanent(code, error)) => {
            tracing::error!(notification = %row.id, kind = %row.kind_name, code, error = %error, "a notification cannot be sent; it is given up");
            gateway.store.notification_failed(row, &error, None, code, now).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, notification = %row.id, "could not record a notification's outcome; its claim runs out and it is tried again");
    }
}

/// Why a row was not sent.
enum Failure {
    /// Worth trying again (a server down, refusing, or answering other than 2xx).
    Retry(String),
    /// Never going to work (the code says why).
    Permanent(&'static str, String),
}
