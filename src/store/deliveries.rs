//! Delivery reports: a recipient whose link was used up tells whether the bundle decrypted,
//! once. The report lives in the audit trail only (`delivery.acknowledged`, code `decrypted` or
//! `failed`), where the sender's receipts and view of the transfer find it.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, append};
use crate::audit::{Event, EventKind};
use crate::ids::{TransferId, UserId};

/// The longest failure reason kept, in characters.
const MAX_REASON: usize = 64;

/// What a recipient reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryReport {
    /// The bundle decrypted and authenticated.
    Decrypted,
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
            Self::Decrypted => "decrypted",
            Self::Failed { .. } => "failed",
        }
    }
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
        if let DeliveryReport::Failed { reason } = report {
            event = event.field("reason", reason.chars().take(MAX_REASON).collect::<String>());
        }
        let idx = append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(Acknowledgement::Recorded(idx))
    }
}
