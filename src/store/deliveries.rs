//! Delivery reports: a recipient whose link was used up tells whether the bundle decrypted,
//! once. The report lives in the audit trail only (`delivery.acknowledged`, code `decrypted` or
//! `failed`), where the sender's receipts and view of the transfer find it. A signed report
//! ("signed for") carries the recipient's delivery statement and signature, with the name as its
//! commitment; refused reports are `delivery.refused`.

use chrono::{DateTime, Utc};

use super::keys::owner_commitment;
use super::{Store, StoreError, append};
use crate::audit::{Event, EventKind};
use crate::delivery::Statement;
use crate::directory::SIGNING_TYPE;
use crate::ids::{TransferId, UserId};
use crate::model::UserRef;

/// The longest failure reason kept, in characters.
const MAX_REASON: usize = 64;

/// What a recipient reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryReport {
    /// The bundle decrypted and authenticated; signed for, or not.
    Decrypted(Option<SignedFor>),
    /// It did not; why, as a code such as `digest_mismatch`.
    Failed {
        /// The reason code (the store keeps its first 64 characters).
        reason: String,
    },
}

impl DeliveryReport {
    /// The audit event's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decrypted(_) => "decrypted",
            Self::Failed { .. } => "failed",
        }
    }
}

/// A recipient's signature on a delivery statement, checked by the caller against the key
/// named here (the store checks that the key is still one of the recipient's live signing keys,
/// and the statement's transfer, digest and name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFor {
    /// The statement.
    pub statement: Statement,
    /// The signature (standard base64).
    pub signature: String,
    /// The signing key's public string (`sealpost-signing1…`).
    pub key: String,
    /// Its fingerprint.
    pub fingerprint: String,
}

/// How a report was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acknowledgement {
    /// Recorded as the log entry at this index.
    Recorded(u64),
    /// The caller holds no used-up link of this transfer (it may not exist): nothing to report.
    NotRecipient,
    /// The caller reported on this transfer already.
    AlreadyReported,
    /// The statement names another transfer, digest or recipient than this delivery's.
    StatementMismatch(&'static str),
    /// The signing key is not one of the recipient's live signing keys (never, or removed).
    UnknownSigningKey,
}

impl Store {
    /// Records `recipient`'s delivery report on `transfer`, if their link was used up and they
    /// have not reported before; the check and the event share one write transaction.
    pub async fn acknowledge_delivery(
        &self,
        transfer: &TransferId,
        recipient: &UserId,
        report: &DeliveryReport,
        now: DateTime<Utc>,
    ) -> Result<Acknowledgement, StoreError> {
        let mut tx = self.write().await?;
        let used: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM links WHERE transfer_id = $1 AND recipient_id = $2 AND state = 'used'",
        )
        .bind(transfer.as_str())
        .bind(recipient.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if used == 0 {
            return Ok(Acknowledgement::NotRecipient);
        }
        let reported: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE transfer_id = $1 AND actor_id = $2 \
             AND event = 'delivery.acknowledged'",
        )
        .bind(transfer.as_str())
        .bind(recipient.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if reported > 0 {
            return Ok(Acknowledgement::AlreadyReported);
        }
        let mut event =
            Event::new(EventKind::DeliveryAcknowledged).actor(recipient).transfer(transfer).code(report.code());
        match report {
            DeliveryReport::Failed { reason } => {
                event = event.field("reason", reason.chars().take(MAX_REASON).collect::<String>());
            }
            DeliveryReport::Decrypted(None) => {}
            DeliveryReport::Decrypted(Some(signed)) => {
                let (name, digest): (String, String) = sqlx::query_as(
                    "SELECT o.name || '/' || u.name, t.digest FROM users u JOIN orgs o ON o.id = u.org_id, transfers t \
                     WHERE u.id = $1 AND t.id = $2",
                )
                .bind(recipient.as_str())
                .bind(transfer.as_str())
                .fetch_one(&mut *tx)
                .await?;
                let name: UserRef = name.parse()?;
                let s = &signed.statement;
                let mismatch = if s.transfer != transfer.as_str() {
                    Some("the statement names another transfer")
                } else if s.digest != digest {
                    Some("the statement's digest is not this transfer's ciphertext digest")
                } else if s.recipient != name {
                    Some("the statement names another recipient than the caller")
                } else {
                    None
                };
                if let Some(why) = mismatch {
                    return Ok(Acknowledgement::StatementMismatch(why));
                }
                let live: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recipient_keys WHERE user_id = $1 AND fingerprint = $2 \
                     AND stanza_type = $3 AND recipient = $4 AND removed_at IS NULL",
                )
                .bind(recipient.as_str())
                .bind(&signed.fingerprint)
                .bind(SIGNING_TYPE)
                .bind(&signed.key)
                .fetch_one(&mut *tx)
                .await?;
                if live == 0 {
                    return Ok(Acknowledgement::UnknownSigningKey);
                }
                let commitment = owner_commitment(&mut tx, recipient, &name).await?;
                event = event
                    .field("digest", &s.digest)
                    .field("recipient", commitment)
                    .field("signed_at", s.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .field("checkpoint", format!("{} {}", s.checkpoint_size, s.checkpoint_root))
                    .field("signing_key", &signed.key)
                    .field("signature", &signed.signature);
            }
        }
        let idx = append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(Acknowledgement::Recorded(idx))
    }
}

/// Whether a recipient may report on a delivery now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reportable {
    /// Yes; the transfer's `upload.accepted` entry is at this log index.
    Open(u64),
    /// The caller holds no used-up link of this transfer.
    NotRecipient,
    /// The caller reported already.
    AlreadyReported,
}

impl Store {
    /// Whether `recipient` may report on `transfer` now (checked again when the report is
    /// written), and where the upload is in the log.
    pub async fn reportable(&self, transfer: &TransferId, recipient: &UserId) -> Result<Reportable, StoreError> {
        let row: (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM links WHERE transfer_id = $1 AND recipient_id = $2 AND state = 'used'), \
                    (SELECT COUNT(*) FROM audit_events WHERE transfer_id = $1 AND actor_id = $2 \
                     AND event = 'delivery.acknowledged'), \
                    (SELECT MIN(idx) FROM audit_events WHERE transfer_id = $1 AND event = 'upload.accepted')",
        )
        .bind(transfer.as_str())
        .bind(recipient.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(match row {
            (0, _, _) | (_, _, None) => Reportable::NotRecipient,
            (_, reported, _) if reported > 0 => Reportable::AlreadyReported,
            (_, _, Some(index)) => Reportable::Open(u64::try_from(index).unwrap_or_default()),
        })
    }

    /// Records that `recipient`'s delivery report on `transfer` was refused, and why (`code`):
    /// aggregated like every refusal a client can repeat at will (the same report refused again
    /// within the window is counted, not logged again).
    pub async fn refuse_delivery(
        &self,
        transfer: &TransferId,
        recipient: &UserId,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let event = Event::new(EventKind::DeliveryRefused).actor(recipient).transfer(transfer).code(code);
        self.record_refusal(&event, now).await
    }
}
