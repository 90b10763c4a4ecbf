//! The end of a transfer's life: recall, link expiry, and the purge of ciphertext nobody can
//! collect any more.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, append, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{TransferId, UserId};
use crate::policy::{Action, Permit};

/// The outcome of a recall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recall {
    /// How many unused links were revoked.
    pub revoked: u64,
    /// The blob to delete, if it still exists.
    pub object_key: Option<String>,
}

/// A transfer whose ciphertext is no longer needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The transfer.
    pub transfer: TransferId,
    /// Its blob.
    pub object_key: String,
    /// `delivered`, `expired`, `recalled` or `rejected`.
    pub reason: &'static str,
}

impl Store {
    /// Recalls a transfer: revokes every unused link and marks it recalled, with audit events.
    /// `any_sender` lets an admin recall another user's transfer. Recalling twice is harmless.
    pub async fn recall(
        &self,
        permit: &Permit,
        actor: &UserId,
        any_sender: bool,
        now: DateTime<Utc>,
    ) -> Result<Recall, StoreError> {
        debug_assert_eq!(permit.action(), Action::Recall);
        let id = &TransferId::from_db(permit.transfer().to_owned());
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT sender_id, object_key, recalled_at FROM transfers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Err(StoreError::UnknownTransfer(id.to_string())) };
        if !any_sender && row.get::<String, _>("sender_id") != actor.as_str() {
            return Err(StoreError::UnknownTransfer(id.to_string()));
        }
        let object_key: Option<String> = row.get("object_key");
        let revoked: Vec<(String, String)> = sqlx::query_as(
            "UPDATE links SET state = 'revoked', lease_id = NULL \
             WHERE transfer_id = $1 AND state IN ('issued', 'leased') RETURNING id, recipient_id",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        if row.get::<Option<i64>, _>("recalled_at").is_none() {
            sqlx::query("UPDATE transfers SET recalled_at = $1 WHERE id = $2")
                .bind(ms(now))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            let event =
                Event::new(EventKind::TransferRecalled).actor(actor).transfer(id).field("links_revoked", revoked.len());
            append(&mut tx, &event, now).await?;
        }
        for (link, recipient) in &revoked {
            let event = Event::new(EventKind::LinkRevoked)
                .actor(actor)
                .transfer(id)
                .subject(recipient.as_str())
                .field("link", link);
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(Recall { revoked: revoked.len() as u64, object_key })
    }

    /// Marks every issued link past its expiry as expired, with one audit event each.
    pub async fn expire_links(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let expired: Vec<(String, String, String)> = sqlx::query_as(
            "UPDATE links SET state = 'expired' WHERE state = 'issued' AND expires_at <= $1 \
             RETURNING id, transfer_id, recipient_id",
        )
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await?;
        for (link, transfer, recipient) in &expired {
            let event = Event::new(EventKind::LinkExpired)
                .transfer(&TransferId::from_db(transfer.clone()))
                .subject(recipient.as_str())
                .field("link", link);
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(expired.len() as u64)
    }

    /// Transfers whose ciphertext can go: no link can still be redeemed.
    pub async fn purgeable(&self) -> Result<Vec<Purge>, StoreError> {
        self.purgeable_where(None).await
    }

    async fn purgeable_where(&self, only: Option<&TransferId>) -> Result<Vec<Purge>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.object_key, t.recalled_at, t.status, \
                    (SELECT COUNT(*) FROM links l WHERE l.transfer_id = t.id AND l.state = 'used') AS used \
             FROM transfers t WHERE t.object_key IS NOT NULL AND ($1 IS NULL OR t.id = $1) AND NOT EXISTS \
                (SELECT 1 FROM links l WHERE l.transfer_id = t.id AND l.state IN ('issued', 'leased'))",
        )
        .bind(only.map(|t| t.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let reason = if r.get::<String, _>("status") == "rejected" {
                    "rejected"
                } else if r.get::<Option<i64>, _>("recalled_at").is_some() {
                    "recalled"
                } else if r.get::<i64, _>("used") > 0 {
                    "delivered"
                } else {
                    "expired"
                };
                Purge { transfer: TransferId::from_db(r.get("id")), object_key: r.get("object_key"), reason }
            })
            .collect())
    }

    /// The transfer's blob if no link can reach it any more (for purging right after the last
    /// delivery rather than at the next sweep).
    pub async fn spent(&self, transfer: &TransferId) -> Result<Option<Purge>, StoreError> {
        Ok(self.purgeable_where(Some(transfer)).await?.pop())
    }

    /// Records that a transfer's blob has been deleted.
    pub async fn mark_purged(&self, purge: &Purge, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE transfers SET object_key = NULL, purged_at = $1 WHERE id = $2 AND object_key IS NOT NULL",
        )
        .bind(ms(now))
        .bind(purge.transfer.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            append(&mut tx, &Event::new(EventKind::ObjectPurged).transfer(&purge.transfer).code(purge.reason), now)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every blob key the store still refers to (for the start-up orphan sweep).
    pub async fn object_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT object_key FROM transfers WHERE object_key IS NOT NULL")
            .fetch_all(&self.pool)
            .await?)
    }
}
