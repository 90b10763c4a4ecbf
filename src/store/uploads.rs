//! Resumable uploads in progress: who sends, how long the upload will be, how much of it is
//! durably on disk, and the addressing to check again when it completes.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, append, from_ms, ms};
use crate::audit::Event;
use crate::ids::{TransferId, UserId};

/// A resumable upload, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    /// Its id (also the id of the transfer it becomes).
    pub id: TransferId,
    /// The sender who created it.
    pub sender: UserId,
    /// The declared `Upload-Length`.
    pub length: u64,
    /// Bytes durably received (`Upload-Offset`).
    pub received: u64,
    /// Whether the age header has been read and checked.
    pub header_checked: bool,
    /// The addressing, as a query string (`to=…&expires=…&classification=…`).
    pub request: String,
    /// When it is deleted if not completed.
    pub expires_at: DateTime<Utc>,
    /// Whether it became a transfer.
    pub completed: bool,
}

type Row = (String, String, i64, i64, super::Flag, String, i64, Option<i64>);

/// A query reading every column of [`Row`], in order, then `$rest`.
macro_rules! select_uploads {
    ($rest:literal) => {
        concat!(
            "SELECT id, sender_id, length, received, header_checked, request, expires_at, completed_at FROM uploads ",
            $rest
        )
    };
}

fn from_row((id, sender, length, received, header_checked, request, expires_at, completed_at): Row) -> UploadRow {
    UploadRow {
        id: TransferId::from_db(id),
        sender: UserId::from_db(sender),
        length: count(length),
        received: count(received),
        header_checked: header_checked.0,
        request,
        expires_at: from_ms(expires_at),
        completed: completed_at.is_some(),
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Records a new upload and its audit event, in one transaction.
    pub async fn create_upload(&self, upload: &UploadRow, event: &Event, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO uploads (id, sender_id, length, received, header_checked, request, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(upload.id.as_str())
        .bind(upload.sender.as_str())
        .bind(int(upload.length))
        .bind(int(upload.received))
        .bind(upload.header_checked)
        .bind(&upload.request)
        .bind(ms(now))
        .bind(ms(upload.expires_at))
        .execute(&mut *tx)
        .await?;
        append(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The upload with this id, if any.
    pub async fn upload(&self, id: &TransferId) -> Result<Option<UploadRow>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(select_uploads!("WHERE id = $1")).bind(id.as_str()).fetch_optional(&self.pool).await?;
        Ok(row.map(from_row))
    }

    /// Records how many bytes are durably on disk and whether the header passed its checks.
    pub async fn set_upload_received(
        &self,
        id: &TransferId,
        received: u64,
        header_checked: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET received = $1, header_checked = $2 WHERE id = $3 AND completed_at IS NULL")
            .bind(int(received))
            .bind(header_checked)
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims the upload for the request holding `claim` (a value made for it) until `until`,
    /// or renews that request's claim; false when another request, on any gateway, holds an
    /// unexpired claim.
    pub async fn claim_upload(
        &self,
        id: &TransferId,
        claim: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claimed = sqlx::query(
            "UPDATE uploads SET claimed_by = $1, claimed_until = $2 \
             WHERE id = $3 AND (claimed_by IS NULL OR claimed_by = $1 OR claimed_until <= $4)",
        )
        .bind(claim)
        .bind(ms(until))
        .bind(id.as_str())
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() > 0)
    }

    /// Gives back the claim `claim` holds on the upload (nothing if another holds it now).
    pub async fn release_upload(&self, id: &TransferId, claim: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2")
            .bind(id.as_str())
            .bind(claim)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks an upload as having become its transfer.
    pub async fn complete_upload(&self, id: &TransferId, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE uploads SET completed_at = $1 WHERE id = $2")
            .bind(ms(now))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes an upload's record, with its audit event when one is given, in one transaction.
    pub async fn delete_upload(
        &self,
        id: &TransferId,
        event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        // Only the call that removed the row records it: two gateways' sweepers may both find
        // the same expired upload, and it expired once.
        if let Some(event) = event.filter(|_| deleted.rows_affected() > 0) {
            append(&mut tx, event, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Uploads past their resume window (completed or not), for the sweeper.
    pub async fn expired_uploads(&self, now: DateTime<Utc>) -> Result<Vec<UploadRow>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(select_uploads!("WHERE expires_at <= $1 ORDER BY expires_at"))
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(from_row).collect())
    }
}
