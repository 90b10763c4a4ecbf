//! Audit events and their canonical text entry.
//!
//! Every change the gateway makes, and every refusal, is one [`Event`], written to the
//! append-only audit table in the same transaction as the change it records. Each event carries
//! a canonical entry: strict, versioned `key value` lines in a fixed order, the shape the
//! transparency log will take as its leaves. Parties appear as server-made ids (never names), and
//! an entry never holds a link token, an API token or a file name.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::ids::{TransferId, UserId};

/// The first line of every entry; bumped when the format changes.
pub const ENTRY_VERSION: &str = "sealpost.audit/v1";

/// Largest entry the log will accept (the tlog-tiles entry limit).
pub const MAX_ENTRY_BYTES: usize = 65_535;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A bundle passed every check and was stored.
    UploadAccepted,
    /// A bundle was refused (the code says why).
    UploadRefused,
    /// The sender broke off before the body ended, or the shutdown cut it (code
    /// `server_shutdown`); nothing was kept. For a resumable upload (`resumable true`, and its
    /// transfer id) every byte that arrived is kept and it resumes from `size`; a terminated
    /// one has code `terminated`.
    UploadAborted,
    /// A one-time link was made for one recipient.
    LinkIssued,
    /// An unused link was revoked by a recall.
    LinkRevoked,
    /// An unused link passed its expiry.
    LinkExpired,
    /// A recipient redeemed a link and the ciphertext started to flow.
    DownloadStarted,
    /// The last byte went out; the link is used up.
    DownloadCompleted,
    /// A download broke off; the link is usable again.
    DownloadFailed,
    /// A ranged read that stopped short of the last byte (a client reading the age header
    /// first); the link stays usable. The entry carries the `range` served and the bundle `size`.
    DownloadPartial,
    /// A recipient reported whether the bundle decrypted (code `decrypted` or `failed`); a
    /// signed report carries the recipient's signed delivery statement ([`crate::delivery`]).
    DeliveryAcknowledged,
    /// A redemption was refused (the code says why); the link is untouched.
    DownloadRefused,
    /// A delivery report was refused (the code says why: a signature that does not verify, a
    /// statement for another transfer, digest or name, a late statement, a removed key).
    DeliveryRefused,
    /// The sender or an admin recalled a transfer.
    TransferRecalled,
    /// A transfer's ciphertext was deleted (delivered, expired or recalled).
    ObjectPurged,
    /// A recipient key was registered.
    KeyAdded,
    /// A recipient key was removed.
    KeyRemoved,
    /// An organisation was created.
    OrgCreated,
    /// A user was created.
    UserCreated,
    /// An API token was issued.
    TokenIssued,
    /// An API token was revoked.
    TokenRevoked,
    /// A route between organisations was added.
    RouteAdded,
    /// A route between organisations was removed.
    RouteRemoved,
    /// A held transfer was approved for release.
    TransferApproved,
    /// A held transfer was rejected (links revoked, ciphertext deleted).
    TransferRejected,
    /// The policy set changed (reload); the entry carries its digest.
    PolicyChanged,
    /// A resumable upload was created; its bytes may follow in several requests.
    UploadStarted,
    /// A resumable upload passed its resume window unfinished and was deleted.
    UploadExpired,
    /// A new log key was added (a rotation started); the entry carries its verifier key.
    LogKeyAdded,
    /// A log key was retired (a rotation ended).
    LogKeyRetired,
    /// The sender signed a transfer's manifest; the entry carries the key and the manifest's digest.
    ManifestSigned,
    /// A browser session started; the entry carries the session's id and how its user
    /// authenticated (`method token`, and the token's id).
    SessionStarted,
    /// A browser session ended (the code says why: `signed_out`, `idle`, `expired`,
    /// `token_revoked`, `token_ended`, `replaced`).
    SessionEnded,
    /// A sign-in was refused (the code says why); no session was made.
    SessionRefused,
    /// Single sign-on changed a user's role to the one the provider's claim rules now give
    /// (fields `from`, `role`, `provider`).
    UserRoleChanged,
    /// A notification was sent: by email to a user (subject: the user's id), or to an
    /// organisation's webhook (subject: the organisation's id); the entry carries its `kind` and
    /// `channel` (`email` or `webhook`), never its content.
    NotificationSent,
    /// A notification was given up after failing for too long (the code says why); subject and
    /// facts as for [`EventKind::NotificationSent`].
    NotificationFailed,
    /// An administrator registered a webhook endpoint for an organisation (subject: the org's
    /// id; the entry carries the endpoint's id, never its secret).
    WebhookAdded,
    /// An administrator removed a webhook endpoint.
    WebhookRemoved,
    /// A user turned optional notifications off or on; the entry lists the kinds now off.
    NotificationsChanged,
    /// An operator issued an administrator a recovery token on the server (`sealpost admin
    /// recover`, no API involved); subject: the token's id; the entry carries the `user`, the
    /// `operator` (the server account that ran it) and their `reason`.
    AdminRecovered,
}

impl EventKind {
    /// Every kind, in the order above (the audit search offers them as a list).
    pub const ALL: [Self; 41] = [
        Self::UploadAccepted,
        Self::UploadRefused,
        Self::UploadAborted,
        Self::LinkIssued,
        Self::LinkRevoked,
        Self::LinkExpired,
        Self::DownloadStarted,
        Self::DownloadCompleted,
        Self::DownloadFailed,
        Self::DownloadPartial,
        Self::DeliveryAcknowledged,
        Self::DownloadRefused,
        Self::DeliveryRefused,
        Self::TransferRecalled,
        Self::ObjectPurged,
        Self::KeyAdded,
        Self::KeyRemoved,
        Self::OrgCreated,
        Self::UserCreated,
        Self::TokenIssued,
        Self::TokenRevoked,
        Self::RouteAdded,
        Self::RouteRemoved,
        Self::TransferApproved,
        Self::TransferRejected,
        Self::PolicyChanged,
        Self::UploadStarted,
        Self::UploadExpired,
        Self::LogKeyAdded,
        Self::LogKeyRetired,
        Self::ManifestSigned,
        Self::SessionStarted,
        Self::SessionEnded,
        Self::SessionRefused,
        Self::UserRoleChanged,
        Self::NotificationSent,
        Self::NotificationFailed,
        Self::WebhookAdded,
        Self::WebhookRemoved,
        Self::NotificationsChanged,
        Self::AdminRecovered,
    ];

    /// The event's stable name, as in the entry and the audit API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadAccepted => "upload.accepted",
            Self::UploadRefused => "upload.refused",
            Self::UploadAborted => "upload.aborted",
            Self::LinkIssued => "link.issued",
            Self::LinkRevoked => "link.revoked",
            Self::LinkExpired => "link.expired",
            Self::DownloadStarted => "download.started",
            Self::DownloadCompleted => "download.completed",
            Self::DownloadFailed => "download.failed",
            Self::DownloadPartial => "download.partial",
            Self::DeliveryAcknowledged => "delivery.acknowledged",
            Self::DownloadRefused => "download.refused",
            Self::DeliveryRefused => "delivery.refused",
            Self::TransferRecalled => "transfer.recalled",
            Self::ObjectPurged => "object.purged",
            Self::KeyAdded => "key.added",
            Self::KeyRemoved => "key.removed",
            Self::OrgCreated => "org.created",
            Self::UserCreated => "user.created",
            Self::TokenIssued => "token.issued",
            Self::TokenRevoked => "token.revoked",
            Self::RouteAdded => "route.added",
            Self::RouteRemoved => "route.removed",
            Self::TransferApproved => "transfer.approved",
            Self::TransferRejected => "transfer.rejected",
            Self::PolicyChanged => "policy.changed",
            Self::UploadStarted => "upload.started",
            Self::UploadExpired => "upload.expired",
            Self::LogKeyAdded => "log.key_added",
            Self::LogKeyRetired => "log.key_retired",
            Self::ManifestSigned => "manifest.signed",
            Self::SessionStarted => "session.started",
            Self::SessionEnded => "session.ended",
            Self::SessionRefused => "session.refused",
            Self::UserRoleChanged => "user.role_changed",
            Self::NotificationSent => "notification.sent",
            Self::NotificationFailed => "notification.failed",
            Self::WebhookAdded => "webhook.added",
            Self::WebhookRemoved => "webhook.removed",
            Self::NotificationsChanged => "notifications.changed",
            Self::AdminRecovered => "admin.recovered",
        }
    }
}

/// One audit event, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Who did it (`None` for the gateway itself, e.g. the expiry sweeper).
    pub actor: Option<UserId>,
    /// The transfer it concerns.
    pub transfer: Option<TransferId>,
    /// The other party or object: a recipient's user id, a key id, a token id, an org id.
    pub subject: Option<String>,
    /// A machine code: why something was refused or ended.
    pub code: Option<String>,
    /// Further facts, in the order they appear in the entry.
    pub fields: Vec<(&'static str, String)>,
}

impl Event {
    /// A new event with no parties or facts yet.
    pub fn new(kind: EventKind) -> Self {
        Self { kind, actor: None, transfer: None, subject: None, code: None, fields: Vec::new() }
    }

    /// Sets the actor.
    pub fn actor(mut self, actor: &UserId) -> Self {
        self.actor = Some(actor.clone());
        self
    }

    /// Sets the transfer.
    pub fn transfer(mut self, transfer: &TransferId) -> Self {
        self.transfer = Some(transfer.clone());
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the code.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Appends a fact.
    pub fn field(mut self, key: &'static str, value: impl ToString) -> Self {
        self.fields.push((key, value.to_string()));
        self
    }

    /// The canonical entry: `sealpost.audit/v1`, then `event`, `time`, `actor`, `transfer`,
    /// `subject`, `code` (each only when present) and the facts, one `key value` line each.
    /// Values are single-line; any control character is replaced so an entry cannot be forged
    /// by a value that contains a newline.
    pub fn entry(&self, at: DateTime<Utc>) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(ENTRY_VERSION);
        out.push('\n');
        let time = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let fixed = [
            ("event", Some(self.kind.as_str())),
            ("time", Some(time.as_str())),
            ("actor", self.actor.as_ref().map(UserId::as_str)),
            ("transfer", self.transfer.as_ref().map(TransferId::as_str)),
            ("subject", self.subject.as_deref()),
            ("code", self.code.as_deref()),
        ];
        let rest = self.fields.iter().map(|(k, v)| (*k, Some(v.as_str())));
        for (key, value) in fixed.into_iter().chain(rest) {
            if let Some(value) = value {
                let clean: String = value.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
                let _ = writeln!(out, "{key} {clean}");
            }
        }
        out.truncate(MAX_ENTRY_BYTES);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn entries_have_a_fixed_order_and_no_injected_lines() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().expect("valid time");
        let transfer = TransferId::from_db("00".repeat(16));
        let e = Event::new(EventKind::UploadRefused)
            .transfer(&transfer)
            .code("not_age_encrypted")
            .field("size", 12)
            .field("note", "a\nevent upload.accepted");
        assert_eq!(
            e.entry(at),
            format!(
                "sealpost.audit/v1\nevent upload.refused\ntime 2026-11-21T12:00:00.000Z\n\
                 transfer {}\ncode not_age_encrypted\nsize 12\nnote a?event upload.accepted\n",
                "00".repeat(16)
            )
        );
    }
}
