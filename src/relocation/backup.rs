//! `sealpost admin backup`: a consistent copy of a SQLite deployment while its gateway runs.
//!
//! The database first: a snapshot of one moment (`VACUUM INTO`, see [`snapshot_sqlite`]), which
//! holds the log too. Then the blobs that snapshot refers to: a committed blob never changes, so
//! copying it later gives the bytes of the moment, each checked against the size and digest its
//! transfer recorded. A blob the gateway purged in between (all its links used or expired after
//! the snapshot) cannot be copied any more: the inventory lists it as lost, and a restore records
//! it so (its links revoked, with `not_in_backup` in the log). Unfinished resumable uploads keep
//! their acknowledged bytes the same way (they only grow past them), so the first `received` of
//! them are copied, or listed as lost when the upload completed or expired meanwhile. Last the
//! data directory's own files: `gateway.id`, and unless left out, the two secrets (`gateway.key`,
//! `admin.token`), mode 0600 in a 0700 directory; then the inventory, which makes it whole.

use std::path::Path;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use tokio::io::AsyncWriteExt as _;

use super::inventory::{Inventory, LogAt, Part, sync_dir, write_file};
use super::{Fresh, RelocationError, Tally, check_key, described, io_err, is_missing, next_within, private_dir};
use crate::blobs::{BlobError, BlobStore};
use crate::config::{Config, DatabaseUrl};
use crate::gateway::load_signing_key;
use crate::store::{Store, StoredBlob, snapshot_sqlite};

/// What a backup holds.
#[derive(Debug)]
pub struct BackedUp {
    /// Entries in the snapshot's log checkpoint.
    pub log_size: u64,
    /// Blobs copied.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Unfinished uploads whose bytes were copied.
    pub uploads: u64,
    /// Blobs purged before they could be copied (their keys).
    pub lost_blobs: Vec<String>,
    /// Unfinished uploads whose bytes had gone (their ids).
    pub lost_uploads: Vec<String>,
    /// Whether the signing key and the admin token are in it.
    pub secrets: bool,
}

/// Backs up the SQLite deployment that `config` describes into `to` (missing or empty), with
/// the secrets unless `without_secrets`; see the module's text.
pub async fn backup(
    config: &Config,
    to: &Path,
    without_secrets: bool,
    now: DateTime<Utc>,
) -> Result<BackedUp, RelocationError> {
    let database = config.database();
    let DatabaseUrl::Sqlite(live) = &database else {
        return Err(RelocationError::NotSqlite(database.redacted()));
    };
    if !live.is_file() {
        return Err(RelocationError::NoDatabase(live.clone()));
    }
    let key_path = config.signing_key_file();
    let key = load_signing_key(&key_path)?;
    let fresh = Fresh::claim(to).await?;

    let snapshot_file = to.join(Part::Database.path());
    snapshot_sqlite(live, &snapshot_file).await?;
    std::fs::set_permissions(&snapshot_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io_err(&snapshot_file))?;
    let snapshot = Store::open(&snapshot_file).await?;
    check_key(&snapshot, config, &key).await?;
    let head = snapshot.log_head().await?.ok_or(RelocationError::NoLog)?;
    let stored = snapshot.stored_blobs().await?;
    let unfinished = snapshot.unfinished_uploads().await?;
    snapshot.close().await;
    let mut inventory = Inventory::new(now, hex::encode(key.verifying_key().to_bytes()), LogAt::from(&head));
    inventory.add(to, &Part::Database).await?;

    let blobs = BlobStore::open_at(&config.data_dir, &config.blobs()).await?;
    let mut done = BackedUp {
        log_size: head.size,
        blobs: 0,
        blob_bytes: 0,
        uploads: 0,
        lost_blobs: Vec::new(),
        lost_uploads: Vec::new(),
        secrets: !without_secrets,
    };
    private_dir(&to.join("blobs"))?;
    for blob in &stored {
        let part = Part::Blob(blob.transfer.clone());
        let path = to.join(part.path());
        match copy_to_file(blobs.get(&blob.key).await, &path, blob.size, Some(blob)).await? {
            true => {
                inventory.add(to, &part).await?;
                done.blobs += 1;
                done.blob_bytes += blob.size;
            }
            false => done.lost_blobs.push(blob.key.clone()),
        }
    }
    private_dir(&to.join("uploads"))?;
    for upload in unfinished.iter().filter(|u| u.received > 0) {
        let part = Part::Upload(upload.id.clone());
        let bytes = blobs.read_partial_pieces(&upload.id).await;
        match copy_to_file(bytes, &to.join(part.path()), upload.received, None).await? {
            true => {
                inventory.add(to, &part).await?;
                done.uploads += 1;
            }
            false => done.lost_uploads.push(upload.id.to_string()),
        }
    }
    for dir in ["blobs", "uploads"] {
        sync_dir(&to.join(dir)).await?;
    }

    let mut files = vec![(config.data_dir.join("gateway.id"), Part::GatewayId)];
    if !without_secrets {
        files.push((key_path, Part::SigningKey));
        files.push((config.data_dir.join("admin.token"), Part::AdminToken));
    }
    for (from, part) in files {
        match tokio::fs::read(&from).await {
            Ok(bytes) => {
                write_file(&to.join(part.path()), &bytes).await?;
                inventory.add(to, &part).await?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && part != Part::SigningKey => {}
            Err(e) => return Err(io_err(&from)(e)),
        }
    }
    inventory.lost_blobs.clone_from(&done.lost_blobs);
    inventory.lost_uploads.clone_from(&done.lost_uploads);
    inventory.write(to).await?;
    fresh.keep();
    Ok(done)
}

/// Writes the first `len` bytes of `bytes` into the new file `path` (0600), durably; with
/// `blob`, checks them against its recorded size and digest. False, leaving no file, when the
/// source is gone or holds fewer bytes (purged, completed or expired meanwhile).
async fn copy_to_file(
    bytes: Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError>,
    path: &Path,
    len: u64,
    blob: Option<&StoredBlob>,
) -> Result<bool, RelocationError> {
    let mut bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) if is_missing(&e) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(io_err(path))?;
    let mut tally = Tally::default();
    let mut left = len;
    let copied = async {
        loop {
            match next_within(&mut bytes, &mut left).await {
                Ok(Some(piece)) => {
                    tally.add(&piece);
                    file.write_all(&piece).await.map_err(io_err(path))?;
                }
                Ok(None) => break,
                Err(e) if is_missing(&e) => return Ok(false),
                Err(e) => return Err(RelocationError::from(e)),
            }
        }
        file.sync_all().await.map_err(io_err(path))?;
        // A blob cut short is damaged (the check below says how); an upload's bytes are gone.
        Ok(left == 0 || blob.is_some())
    }
    .await;
    if !matches!(copied, Ok(true)) {
        let _ = tokio::fs::remove_file(path).await;
        return copied;
    }
    if let Some(blob) = blob {
        let (size, digest) = tally.finish();
        if size != blob.size || digest.to_string() != blob.digest {
            let _ = tokio::fs::remove_file(path).await;
            return Err(RelocationError::BlobMismatch {
                key: blob.key.clone(),
                expected: described(blob.size, &blob.digest),
                found: described(size, &digest.to_string()),
            });
        }
    }
    Ok(true)
}
