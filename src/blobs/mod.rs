//! Ciphertext blobs: staged in a temporary file while an upload streams in, committed into the
//! object store only after every check passed, read back as a stream, deleted when no longer
//! needed.
//!
//! The embedded default is `object_store`'s local filesystem under `DATA/blobs`. Uploads stage
//! in `DATA/tmp` (same filesystem), and commit is fsync + rename + fsync of the directory, so a
//! committed blob survives a crash and a half-written one is never under its final name. An S3
//! store would commit by a multipart upload from the staged file instead; nothing else changes.
//! Resumable uploads grow in `DATA/uploads` instead, which start-up leaves alone: a partial
//! upload outlives a restart and is deleted by its terminator, a refusal, or the sweeper.
//! Every path comes from a server-made id; nothing from a request reaches the filesystem.
//!
//! | module | concern |
//! |---|---|
//! | this one | the store: open, commit, read, delete, sweeps |
//! | `staging` | a staged upload and the writer thread that puts it on disk |
//! | `partial` | resumable uploads' partial files |
//! | `read_ahead` | reading a blob back in pieces within a memory budget |

mod partial;
mod read_ahead;
mod staging;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt as _};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetResultPayload, ObjectStore as _, ObjectStoreExt as _};

pub use partial::PartialBlob;
use read_ahead::read_ahead;
pub use staging::StagedBlob;

use crate::ids::TransferId;

/// What can go wrong with blobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The disk is full.
    #[error("the disk holding the blobs is full")]
    Full,
    /// Any other filesystem failure.
    #[error("blob storage failed: {0}")]
    Io(io::Error),
    /// The object store failed.
    #[error("object store failed: {0}")]
    Store(#[from] object_store::Error),
}

impl From<io::Error> for BlobError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull { Self::Full } else { Self::Io(e) }
    }
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<LocalFileSystem>,
    /// Downloads (and other whole-file reads) streaming now (they share
    /// [`read_ahead::DOWNLOAD_BUDGET`]).
    downloads: Arc<AtomicUsize>,
    root: PathBuf,
    tmp: PathBuf,
    uploads: PathBuf,
}

impl BlobStore {
    /// Opens the blob store under `data_dir`, creating its directories.
    pub async fn open(data_dir: &Path) -> Result<Self, BlobError> {
        let root = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        tokio::fs::create_dir_all(&root).await?;
        tokio::fs::create_dir_all(&tmp).await?;
        let uploads = data_dir.join("uploads");
        tokio::fs::create_dir_all(&uploads).await?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self { store: Arc::new(store), downloads: Arc::new(AtomicUsize::new(0)), root, tmp, uploads })
    }

    /// The object key for a transfer's ciphertext.
    pub fn key_for(transfer: &TransferId) -> String {
        format!("{transfer}.age")
    }

    /// Makes a staged upload durable under `key`: flush, fsync, rename, fsync the directory.
    pub async fn commit(&self, mut staged: StagedBlob, key: &str) -> Result<(), BlobError> {
        let dest = self.store.path_to_filesystem(&ObjectPath::from(key))?;
        if staged.sink.is_some() {
            let result = async {
                staged.finish().await?;
                staged.sink = None;
                tokio::fs::rename(&staged.path, &dest).await?;
                tokio::fs::File::open(&self.root).await?.sync_all().await
            }
            .await;
            if let Err(e) = result {
                let _ = tokio::fs::remove_file(&staged.path).await;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Streams a blob.
    pub async fn get(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        self.get_from(key, 0).await
    }

    /// Streams a blob from byte `offset` on (to resume a broken download).
    ///
    /// A local file is read in pieces of up to `read_ahead::READ_CHUNK`, one read ahead on the
    /// blocking pool while the previous piece goes out (object_store's own file stream reads
    /// 8 KiB per blocking task, several times slower than the network); any other store's stream
    /// is passed through.
    pub async fn get_from(
        &self,
        key: &str,
        offset: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let range = (offset > 0).then_some(object_store::GetRange::Offset(offset));
        let options = object_store::GetOptions { range, ..Default::default() };
        let result = self.store.get_opts(&ObjectPath::from(key), options).await?;
        let range = result.range.clone();
        Ok(match result.payload {
            GetResultPayload::File(file, _) => read_ahead(Arc::new(file), range.start, range.end, &self.downloads),
            GetResultPayload::Stream(stream) => stream.map(|r| r.map_err(BlobError::from)).boxed(),
        })
    }

    /// Deletes a blob; deleting one that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes every staged file left by a previous process; returns how many.
    pub async fn sweep_staging(&self) -> Result<usize, BlobError> {
        let mut removed = 0;
        let mut dir = tokio::fs::read_dir(&self.tmp).await?;
        while let Some(entry) = dir.next_entry().await? {
            if entry.file_type().await?.is_file() {
                tokio::fs::remove_file(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes blobs no transfer refers to (a crash between commit and the database
    /// transaction); returns how many.
    pub async fn sweep_orphans(&self, known: &HashSet<String>) -> Result<usize, BlobError> {
        let mut removed = 0;
        let mut listing = self.store.list(None);
        let mut orphans = Vec::new();
        while let Some(meta) = listing.next().await {
            let key = meta?.location.to_string();
            if !known.contains(&key) {
                orphans.push(key);
            }
        }
        for key in orphans {
            self.delete(&key).await?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn committed_blobs_read_back_and_orphans_are_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::open(dir.path()).await.expect("open");
        let (a, b) = (TransferId::generate(), TransferId::generate());
        for id in [&a, &b] {
            let mut staged = blobs.stage(id).await.expect("stage");
            staged.write(id.as_str().as_bytes()).await.expect("write");
            blobs.commit(staged, &BlobStore::key_for(id)).await.expect("commit");
        }
        let mut got = Vec::new();
        let mut stream = blobs.get(&BlobStore::key_for(&a)).await.expect("get");
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(got, a.as_str().as_bytes());
        let known = HashSet::from([BlobStore::key_for(&a)]);
        assert_eq!(blobs.sweep_orphans(&known).await.expect("sweep"), 1);
        assert!(blobs.get(&BlobStore::key_for(&b)).await.is_err());
        blobs.delete(&BlobStore::key_for(&b)).await.expect("deleting twice is fine");
    }
}
