//! Resumable uploads in progress: who sends, how long the upload will be, how much of it is
//! durably on disk, and the addressing (and signed manifest) to check again when it completes; once completed, its
//! answer for an hour, sealed (the store keeps the bytes it is given and never sees a token).

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
    /// The sender's signed manifest, when the upload came with one (checked again at every
    /// request, and kept with the transfer it becomes).
    pub manifest: Option<UploadManifest>,
}

/// The signed manifest a resumable upload came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadManifest {
    /// The `sealpost.manifest/v2` text.
    pub manifest: String,
    /// Standard base64 of the Ed25519 signature.
    pub signature: String,
    /// The signing key's fingerprint.
    pub key: String,
}

type Row =
    (String, String, i64, i64, super::Flag, String, i64, Option<i64>, Option<String>, Option<String>, Option<String>);

/// A query reading every column of [`Row`], in order, then `$rest`.
macro_rules! select_uploads {
    ($rest:literal) => {
        concat!(
            "SELECT id, sender_id, length, received, header_checked, request, expires_at, completed_at, \
             manifest, manifest_signature, manifest_key FROM uploads ",
            $rest
        )
    };
}

fn from_row(
    (id, sender, length, received, header_checked, request, expires_at, completed_at, manifest, signature, key): Row,
) -> UploadRow {
    let manifest = match (manifest, signature, key) {
        (Some(manifest), Some(signature), Some(key)) => Some(UploadManifest { manifest, signature, key }),
        _ => None,
    };
    UploadRow {
        id: TransferId::from_db(id),
        sender: UserId::from_db(sender),
        length: count(length),
        received: count(received),
        header_checked: header_checked.0,
        request,
        expires_at: from_ms(expires_at),
        completed: completed_at.is_some(),
        manifest,
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
        let manifest = upload.manifest.as_ref();
        sqlx::query(
            "INSERT INTO uploads (id, sender_id, length, received, header_checked, request, created_at, expires_at, \
             manifest, manifest_signature, manifest_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(upload.id.as_str())
        .bind(upload.sender.as_str())
        .bind(int(upload.length))
        .bind(int(upload.received))
        .bind(upload.header_checked)
        .bind(&upload.request)
        .bind(ms(now))
        .bind(ms(upload.expires_at))
        .bind(manifest.map(|m| m.manifest.as_str()))
        .bind(manifest.map(|m| m.signature.as_str()))
        .bind(manifest.map(|m| m.key.as_str()))
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

    /// Marks an upload as having become its transfer and, in the same transaction, keeps its
    /// sealed answer (`sealed`, until `until`) for its sender to read again.
    pub async fn complete_upload(
        &self,
        id: &TransferId,
        answer: Option<(&[u8], DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE uploads SET completed_at = $1 WHERE id = $2")
            .bind(ms(now))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if let Some((sealed, until)) = answer {
            sqlx::query("INSERT INTO upload_answers (upload_id, sealed, expires_at) VALUES ($1, $2, $3)")
                .bind(id.as_str())
                .bind(sealed)
                .bind(ms(until))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The sealed answer of upload `id`, if `sender` sent it and it has not expired.
    pub async fn upload_answer(
        &self,
        id: &TransferId,
        sender: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed = sqlx::query_scalar(
            "SELECT a.sealed FROM upload_answers a JOIN uploads u ON u.id = a.upload_id \
             WHERE a.upload_id = $1 AND u.sender_id = $2 AND a.expires_at > $3",
        )
        .bind(id.as_str())
        .bind(sender.as_str())
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(sealed)
    }

    /// Deletes the answers past their time, for the sweeper (any number of gateways may at
    /// once); returns how many went.
    pub async fn delete_expired_upload_answers(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted =
            sqlx::query("DELETE FROM upload_answers WHERE expires_at <= $1").bind(ms(now)).execute(&self.pool).await?;
        Ok(deleted.rows_affected())
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

    /// Every upload not completed yet (for a backup or a migration, which copy their bytes).
    pub async fn unfinished_uploads(&self) -> Result<Vec<UploadRow>, StoreError> {
        let rows: Vec<Row> =
            sqlx::query_as(select_uploads!("WHERE completed_at IS NULL ORDER BY id")).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(from_row).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventKind;
    use crate::ids::BearerSecret;
    use crate::model::{Role, UserRef};

    /// A store with two users (the administrator and `sealpost/carol`): their ids.
    async fn store_with_two_users(now: DateTime<Utc>) -> (tempfile::TempDir, Store, UserId, UserId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).await.expect("open");
        let (admin, carol) = (BearerSecret::generate("sp_"), BearerSecret::generate("sp_"));
        store.bootstrap(&admin.hash(), now + chrono::TimeDelta::days(1), now).await.expect("bootstrap").expect("first");
        let admin = store.authenticate(&admin.hash(), now).await.expect("authenticate").expect("admin").id;
        let name = UserRef::new("sealpost", "carol").expect("name");
        store.create_user(&admin, &name, Role::Sender, None, &carol.hash(), None, now).await.expect("carol");
        let carol = store.authenticate(&carol.hash(), now).await.expect("authenticate").expect("carol").id;
        (dir, store, admin, carol)
    }

    /// A completed upload by `sender` whose sealed answer is `sealed` until `until`.
    async fn completed(store: &Store, sender: &UserId, sealed: &[u8], until: DateTime<Utc>) -> TransferId {
        let now = until - chrono::Duration::hours(1);
        let row = UploadRow {
            id: TransferId::generate(),
            sender: sender.clone(),
            length: 10,
            received: 10,
            header_checked: true,
            request: "to=hmpps/alice".into(),
            manifest: None,
            expires_at: now + chrono::Duration::days(1),
            completed: false,
        };
        let event = Event::new(EventKind::UploadStarted).actor(sender).transfer(&row.id);
        store.create_upload(&row, &event, now).await.expect("create");
        store.complete_upload(&row.id, Some((sealed, until)), now).await.expect("complete");
        row.id
    }

    async fn answers_stored(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM upload_answers").fetch_one(&store.pool).await.expect("count")
    }

    #[tokio::test]
    async fn an_answer_is_read_by_its_sender_only_until_it_expires_then_swept() {
        let t0 = Utc::now();
        let (_dir, store, bob, carol) = store_with_two_users(t0).await;
        let until = t0 + chrono::Duration::hours(1);
        let id = completed(&store, &bob, b"sealed bytes", until).await;
        assert_eq!(store.upload(&id).await.expect("read").map(|r| r.completed), Some(true));

        let just_before = until - chrono::Duration::milliseconds(1);
        assert_eq!(store.upload_answer(&id, &bob, just_before).await.expect("read"), Some(b"sealed bytes".to_vec()));
        assert_eq!(store.upload_answer(&id, &carol, t0).await.expect("read"), None, "another user");
        assert_eq!(store.upload_answer(&TransferId::generate(), &bob, t0).await.expect("read"), None);
        assert_eq!(store.upload_answer(&id, &bob, until).await.expect("read"), None, "expired, not yet swept");

        assert_eq!(store.delete_expired_upload_answers(just_before).await.expect("sweep"), 0);
        assert_eq!(store.delete_expired_upload_answers(until).await.expect("sweep"), 1);
        assert_eq!(answers_stored(&store).await, 0);
        assert_eq!(store.upload(&id).await.expect("read").map(|r| r.completed), Some(true), "the upload stays");
    }

    #[tokio::test]
    async fn an_answer_goes_with_its_upload_and_an_upload_may_complete_without_one() {
        let t0 = Utc::now();
        let (_dir, store, bob, _) = store_with_two_users(t0).await;
        let id = completed(&store, &bob, b"sealed bytes", t0 + chrono::Duration::hours(1)).await;
        assert_eq!(answers_stored(&store).await, 1);
        store.delete_upload(&id, None, t0).await.expect("delete");
        assert_eq!(answers_stored(&store).await, 0);

        let row = UploadRow {
            id: TransferId::generate(),
            sender: bob.clone(),
            length: 1,
            received: 1,
            header_checked: true,
            request: "to=hmpps/alice".into(),
            manifest: None,
            expires_at: t0 + chrono::Duration::days(1),
            completed: false,
        };
        store.create_upload(&row, &Event::new(EventKind::UploadStarted).actor(&bob), t0).await.expect("create");
        store.complete_upload(&row.id, None, t0).await.expect("complete");
        assert_eq!(store.upload(&row.id).await.expect("read").map(|r| r.completed), Some(true));
        assert_eq!(store.upload_answer(&row.id, &bob, t0).await.expect("read"), None);
    }
}
