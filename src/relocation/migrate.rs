//! `sealpost admin migrate`: a SQLite deployment (rows, blobs, log) moved into another database,
//! PostgreSQL, and another blob store, usually S3. A move, not a sync: the gateway must be
//! stopped (its data directory's lock says whether it is), and the target must be empty.
//!
//! Blobs go first, each checked against the size and digest its transfer recorded and, once
//! committed, its size in the target read back; unfinished resumable uploads' acknowledged bytes
//! follow. Only then are the rows copied, in one transaction, so an interrupted migration leaves
//! an empty target database and can be run again (blobs already copied are written again). After
//! the copy, every table's row count is compared and the log is opened in the target with the
//! signing key: the copied checkpoint must verify, and it is the one the source published.

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::{RelocationError, alone_on, check_key, copy_blob, is_missing, next_within, same_database};
use crate::blobs::BlobStore;
use crate::config::{BlobBackend, Config, DatabaseUrl};
use crate::gateway::load_signing_key;
use crate::store::{CopiedTable, Store, StoreError, StoredBlob, UploadRow};

/// Blobs copied at once.
const BLOBS_AT_ONCE: usize = 4;

/// What a migration copied.
#[derive(Debug)]
pub struct Migrated {
    /// Rows per table, in the order they were copied.
    pub tables: Vec<CopiedTable>,
    /// Blobs copied (0 when the blob store stays where it is).
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Unfinished resumable uploads whose bytes were copied.
    pub uploads: u64,
    /// Entries in the log's checkpoint, as published before and after.
    pub log_size: u64,
    /// The blob store is the source's own: nothing was copied there.
    pub blobs_stayed: bool,
}

/// Moves the stopped SQLite deployment that `config` describes into `to_database` and
/// `to_blobs`; see the module's text.
pub async fn migrate(
    config: &Config,
    to_database: &DatabaseUrl,
    to_blobs: &BlobBackend,
) -> Result<Migrated, RelocationError> {
    let source_database = config.database();
    let DatabaseUrl::Sqlite(source_path) = &source_database else {
        return Err(RelocationError::NotSqlite(source_database.redacted()));
    };
    if same_database(&source_database, to_database) {
        return Err(RelocationError::SameDatabase);
    }
    if !source_path.is_file() || !config.data_dir.is_dir() {
        return Err(RelocationError::NoDatabase(source_path.clone()));
    }
    let _alone = alone_on(&config.data_dir)?;
    let key = load_signing_key(&config.signing_key_file())?;
    let source = Store::open(source_path).await?;
    check_key(&source, config, &key).await?;
    let head = source.log_head().await?.ok_or(RelocationError::NoLog)?;

    let target = Store::connect(&to_database.url()).await?;
    if let Some((table, rows)) = target.row_counts().await?.into_iter().find(|(_, rows)| *rows > 0) {
        return Err(StoreError::NotEmpty { table, rows }.into());
    }

    let from_backend = config.blobs();
    let blobs_stayed = from_backend == *to_blobs;
    let from = BlobStore::open_at(&config.data_dir, &from_backend).await?;
    let into = BlobStore::open_at(&config.data_dir, to_blobs).await?;
    let stored = source.stored_blobs().await?;
    let mut missing = Vec::new();
    for blob in &stored {
        match from.size(&blob.key).await {
            Ok(_) => {}
            Err(e) if is_missing(&e) => missing.push(blob.key.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    if !missing.is_empty() {
        return Err(RelocationError::MissingBlobs(missing));
    }
    let (blobs, blob_bytes) = if blobs_stayed { (0, 0) } else { copy_blobs(&from, &into, &stored).await? };
    // Unfinished uploads' bytes live in `DATA/uploads` with a local store and as pieces in a
    // remote one: they move only when that place changes.
    let partials_stay =
        blobs_stayed || matches!((&from_backend, to_blobs), (BlobBackend::Local(_), BlobBackend::Local(_)));
    let mut uploads = 0;
    if !partials_stay {
        for upload in source.unfinished_uploads().await?.into_iter().filter(|u| u.received > 0) {
            copy_partial(&from, &into, &upload).await?;
            uploads += 1;
        }
    }

    let tables = source.copy_into(&target).await?;
    let (before, after) = (source.row_counts().await?, target.row_counts().await?);
    for (table, source_rows) in before {
        let target_rows = after.get(&table).copied().unwrap_or_default();
        if target_rows != source_rows {
            return Err(RelocationError::RowsDiffer { table, source_rows, target_rows });
        }
    }
    check_key(&target, config, &key).await?;
    let moved = target.log_head().await?.ok_or(RelocationError::NoLog)?;
    if (moved.size, &moved.checkpoint) != (head.size, &head.checkpoint) {
        return Err(RelocationError::LogDiffers { source_size: head.size, target_size: moved.size });
    }
    source.close().await;
    target.close().await;
    Ok(Migrated { tables, blobs, blob_bytes, uploads, log_size: head.size, blobs_stayed })
}

/// Copies every blob, a few at once, each checked before and after; returns how many and
/// their bytes.
async fn copy_blobs(from: &BlobStore, into: &BlobStore, stored: &[StoredBlob]) -> Result<(u64, u64), RelocationError> {
    let copies = futures_util::stream::iter(stored)
        .map(|blob| async move {
            copy_blob(from.get(&blob.key).await?, into, blob).await?;
            let size = into.size(&blob.key).await?;
            if size != blob.size {
                return Err(RelocationError::BlobMismatch {
                    key: blob.key.clone(),
                    expected: format!("{} bytes", blob.size),
                    found: format!("{size} bytes in the target"),
                });
            }
            Ok::<_, RelocationError>(size)
        })
        .buffer_unordered(BLOBS_AT_ONCE);
    copies.try_fold((0, 0), |(n, bytes), size| async move { Ok((n + 1, bytes + size)) }).await
}

/// Copies the acknowledged bytes of an unfinished resumable upload.
async fn copy_partial(from: &BlobStore, into: &BlobStore, upload: &UploadRow) -> Result<(), RelocationError> {
    let mut bytes = from.read_partial_pieces(&upload.id).await?;
    let mut partial = into.append_partial(&upload.id, 0).await?;
    let mut left = upload.received;
    while let Some(piece) = next_within(&mut bytes, &mut left).await? {
        partial.write(&piece).await?;
    }
    if left > 0 {
        return Err(RelocationError::MissingBlobs(vec![format!("uploads/{}", upload.id)]));
    }
    partial.sync().await?;
    Ok(())
}
