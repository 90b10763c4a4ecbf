//! What a backup and a restore of a SQLite deployment need from the database: a snapshot of the
//! live file taken while gateways write to it, a check that it is sound and of this version's
//! schema, the blobs it refers to, and recording a blob that a backup could not take.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::ConnectOptions as _;
use sqlx::sqlite::SqliteConnectOptions;

use super::{Dialect, Store, StoreError, append, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{TransferId, UserId};

/// A committed blob the database refers to, and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The transfer it belongs to.
    pub transfer: TransferId,
    /// Its key in the blob store.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, `sha256:…`.
    pub digest: String,
}

/// Writes a copy of the SQLite database at `live` into the new file `into`, as it stood at one
/// moment, while gateways go on writing to it: `VACUUM INTO` reads the whole database in one read
/// transaction (which, in WAL mode, holds up no writer). Then checks that the copy is sound
/// (`PRAGMA quick_check`) and of this version's schema, so that a restore by this version opens
/// it unchanged.
pub async fn snapshot_sqlite(live: &Path, into: &Path) -> Result<(), StoreError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(live)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await?;
    sqlx::query("VACUUM INTO $1").bind(into.to_string_lossy().into_owned()).execute(&mut conn).await?;
    drop(conn);
    let mut copy = SqliteConnectOptions::new().filename(into).create_if_missing(false).connect().await?;
    let report: Vec<String> = sqlx::query_scalar("PRAGMA quick_check").fetch_all(&mut copy).await?;
    if report != ["ok"] {
        return Err(StoreError::Damaged(report.join("; ")));
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(&mut copy).await?;
    let expected = sqlx::migrate!("./migrations/sqlite").iter().map(|m| m.version).max().unwrap_or_default();
    if found != Some(expected) {
        return Err(StoreError::OtherSchema { found: found.unwrap_or_default(), expected });
    }
    Ok(())
}

impl Store {
    /// Every blob the database refers to: transfers whose ciphertext is not purged yet.
    pub async fn stored_blobs(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT id, object_key, size, digest FROM transfers WHERE object_key IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, key, size, digest)| StoredBlob {
                transfer: TransferId::from_db(id),
                key,
                size: u64::try_from(size).unwrap_or_default(),
                digest,
            })
            .collect())
    }

    /// Records that a transfer's blob is lost (a backup could not take it): its unused links
    /// are revoked and its ciphertext marked purged, with one audit event each carrying `code`,
    /// so the log says what happened and a recipient hears `link_revoked`, not a failure.
    /// Returns how many links were revoked.
    pub async fn lose_blob(&self, transfer: &TransferId, code: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let revoked: Vec<(String, String)> = sqlx::query_as(
            "UPDATE links SET state = 'revoked', lease_id = NULL, lease_gateway = NULL \
             WHERE transfer_id = $1 AND state IN ('issued', 'leased') RETURNING id, recipient_id",
        )
        .bind(transfer.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for (link, recipient) in &revoked {
            let event = Event::new(EventKind::LinkRevoked)
                .transfer(transfer)
                .subject(recipient.as_str())
                .code(code)
                .field("link", link);
            append(&mut tx, &event, now).await?;
        }
        let purged = sqlx::query(
            "UPDATE transfers SET object_key = NULL, purged_at = $1 WHERE id = $2 AND object_key IS NOT NULL",
        )
        .bind(ms(now))
        .bind(transfer.as_str())
        .execute(&mut *tx)
        .await?;
        if purged.rows_affected() > 0 {
            append(&mut tx, &Event::new(EventKind::ObjectPurged).transfer(transfer).code(code), now).await?;
        }
        tx.commit().await?;
        Ok(revoked.len() as u64)
    }

    /// Deletes an unfinished upload whose bytes are lost, recording `upload.expired` with `code`.
    pub async fn lose_upload(
        &self,
        upload: &TransferId,
        sender: &UserId,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let event = Event::new(EventKind::UploadExpired).transfer(upload).subject(sender.as_str()).code(code);
        self.delete_upload(upload, Some(&event), now).await
    }

    /// Checks a SQLite database with `PRAGMA quick_check` (PostgreSQL checks itself).
    pub async fn check_integrity(&self) -> Result<(), StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Ok(());
        }
        let report: Vec<String> = sqlx::query_scalar("PRAGMA quick_check").fetch_all(&self.pool).await?;
        if report != ["ok"] {
            return Err(StoreError::Damaged(report.join("; ")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BearerSecret;

    #[tokio::test]
    async fn a_snapshot_of_a_live_database_opens_as_it_stood() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("live.db");
        let store = Store::open(&live).await.expect("open");
        store
            .bootstrap(&BearerSecret::generate("sp_").hash(), Utc::now() + chrono::TimeDelta::days(1), Utc::now())
            .await
            .expect("bootstrap")
            .expect("first");
        let copy = dir.path().join("copy.db");
        snapshot_sqlite(&live, &copy).await.expect("snapshot while the store is open");
        let restored = Store::open(&copy).await.expect("the copy opens");
        assert_eq!(restored.row_counts().await.expect("counts"), store.row_counts().await.expect("counts"));
        restored.check_integrity().await.expect("sound");

        let refused = snapshot_sqlite(&live, &copy).await.expect_err("VACUUM INTO never overwrites");
        assert!(matches!(refused, StoreError::Db(_)), "{refused:?}");
    }
}
