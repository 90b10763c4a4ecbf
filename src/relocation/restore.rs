//! `sealpost admin restore`: a backup written back into an empty data directory, as the SQLite
//! deployment it was at the backup's moment.
//!
//! Nothing is written before the backup is found whole: every file against the inventory, and the
//! signing key (the backup's, or the one already where the gateway will look for it) against the
//! public key the backup was made with. Then the database, opened and checked (SQLite's quick
//! check, the log the inventory describes, the key opening it), and the blobs and unfinished
//! uploads it refers to, each blob checked against its transfer's size and digest. A blob the
//! backup lists as lost has its links revoked, and an upload listed as lost is deleted, each
//! recorded in the log with `not_in_backup`. If anything fails, what was written is removed.

use std::path::Path;

use chrono::{DateTime, Utc};
use futures_util::{StreamExt as _, TryStreamExt as _};

use super::inventory::{Damage, Inventory, Part};
use super::{Fresh, NOT_IN_BACKUP, RelocationError, alone_on, check_key, copy_blob, io_err, next_within};
use crate::blobs::{BlobError, BlobStore};
use crate::config::{BlobBackend, Config, DatabaseUrl};
use crate::gateway::load_signing_key;
use crate::store::Store;

/// What a restore wrote.
#[derive(Debug)]
pub struct Restored {
    /// Entries in the restored log's checkpoint.
    pub log_size: u64,
    /// Blobs restored.
    pub blobs: u64,
    /// Unfinished uploads restored.
    pub uploads: u64,
    /// Blobs the backup had lost, now recorded as purged.
    pub lost_blobs: u64,
    /// Links revoked with them.
    pub revoked_links: u64,
    /// Unfinished uploads the backup had lost, now deleted.
    pub lost_uploads: u64,
    /// Whether the signing key came from the backup (and was written where the gateway reads it).
    pub key_from_backup: bool,
}

/// Restores the backup in `from` into the SQLite deployment `config` describes, which must not
/// exist yet; see the module's text.
pub async fn restore(from: &Path, config: &Config, now: DateTime<Utc>) -> Result<Restored, RelocationError> {
    let database = config.database();
    let DatabaseUrl::Sqlite(db_path) = &database else {
        return Err(RelocationError::NotSqlite(database.redacted()));
    };
    let blob_backend = config.blobs();
    let BlobBackend::Local(blob_dir) = &blob_backend else {
        return Err(RelocationError::NotLocal(blob_backend.to_string()));
    };
    let inventory = Inventory::read_and_check(from).await?;

    let key_path = config.signing_key_file();
    let key_from_backup = !key_path.exists();
    let (key, key_file) = match (key_from_backup, inventory.holds(&Part::SigningKey)) {
        (false, _) => (load_signing_key(&key_path)?, key_path.clone()),
        (true, true) => {
            let file = from.join(Part::SigningKey.path());
            (load_signing_key(&file)?, file)
        }
        (true, false) => return Err(RelocationError::NoKey(key_path)),
    };
    if hex::encode(key.verifying_key().to_bytes()) != inventory.signing_key_public {
        return Err(RelocationError::KeyMismatch(key_file));
    }

    let mut fresh = Fresh::claim(&config.data_dir).await?;
    if db_path.exists() {
        return Err(RelocationError::Exists(db_path.clone()));
    }
    let _alone = alone_on(&config.data_dir)?;
    let outside = !blob_dir.starts_with(&config.data_dir);
    let _blob_dir = if outside { Some(Fresh::claim(blob_dir).await?) } else { None };
    fresh.also(db_path);
    copy_file(&from.join(Part::Database.path()), db_path).await?;
    let mut files = vec![(Part::GatewayId, config.data_dir.join("gateway.id"))];
    files.push((Part::AdminToken, config.data_dir.join("admin.token")));
    if key_from_backup {
        files.push((Part::SigningKey, key_path.clone()));
    }
    for (part, to) in files.into_iter().filter(|(part, _)| inventory.holds(part)) {
        fresh.also(&to);
        copy_file(&from.join(part.path()), &to).await?;
    }

    let store = Store::open(db_path).await?;
    store.check_integrity().await?;
    let head = store.log_head().await?.ok_or(RelocationError::NoLog)?;
    if head.size != inventory.log.size || head.checkpoint != inventory.log.checkpoint {
        return Err(Damage::OtherLog { expected: inventory.log.size, found: head.size }.into());
    }
    check_key(&store, config, &key).await?;

    let blobs = BlobStore::open_at(&config.data_dir, &blob_backend).await?;
    let mut held = inventory.parts();
    let mut done = Restored {
        log_size: head.size,
        blobs: 0,
        uploads: 0,
        lost_blobs: 0,
        revoked_links: 0,
        lost_uploads: 0,
        key_from_backup,
    };
    for blob in store.stored_blobs().await? {
        let part = Part::Blob(blob.transfer.clone());
        if held.remove(&part) {
            copy_blob(read(&from.join(part.path())).await?, &blobs, &blob).await?;
            done.blobs += 1;
        } else if inventory.lost_blobs.contains(&blob.key) {
            done.revoked_links += store.lose_blob(&blob.transfer, NOT_IN_BACKUP, now).await?;
            done.lost_blobs += 1;
        } else {
            return Err(Damage::Incomplete(part.path()).into());
        }
    }
    for upload in store.unfinished_uploads().await?.into_iter().filter(|u| u.received > 0) {
        let part = Part::Upload(upload.id.clone());
        if held.remove(&part) {
            let mut bytes = read(&from.join(part.path())).await?;
            let mut partial = blobs.append_partial(&upload.id, 0).await?;
            let mut left = upload.received;
            while let Some(piece) = next_within(&mut bytes, &mut left).await? {
                partial.write(&piece).await?;
            }
            if left > 0 || partial.sync().await? != upload.received {
                return Err(Damage::Incomplete(part.path()).into());
            }
            done.uploads += 1;
        } else if inventory.lost_uploads.contains(&upload.id.to_string()) {
            store.lose_upload(&upload.id, &upload.sender, NOT_IN_BACKUP, now).await?;
            done.lost_uploads += 1;
        } else {
            return Err(Damage::Incomplete(part.path()).into());
        }
    }
    if let Some(part) = held.into_iter().find(|p| matches!(p, Part::Blob(_) | Part::Upload(_))) {
        return Err(Damage::Unreferenced(part.path()).into());
    }
    store.close().await;
    fresh.keep();
    if let Some(dir) = _blob_dir {
        dir.keep();
    }
    Ok(done)
}

/// A backup file's bytes, as a blob store streams them.
async fn read(
    path: &Path,
) -> Result<futures_util::stream::BoxStream<'static, Result<bytes::Bytes, BlobError>>, RelocationError> {
    let file = tokio::fs::File::open(path).await.map_err(io_err(path))?;
    Ok(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map_err(BlobError::from).boxed())
}

/// Copies a file of the backup to `to` (new, mode 0600), durably.
async fn copy_file(from: &Path, to: &Path) -> Result<(), RelocationError> {
    if let Some(parent) = to.parent() {
        super::private_dir(parent)?;
    }
    let mut source = tokio::fs::File::open(from).await.map_err(io_err(from))?;
    let mut file =
        tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).await.map_err(io_err(to))?;
    tokio::io::copy(&mut source, &mut file).await.map_err(io_err(to))?;
    file.sync_all().await.map_err(io_err(to))
}
