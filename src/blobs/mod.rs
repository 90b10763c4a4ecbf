//! Ciphertext blobs: staged in a temporary file while an upload streams in, committed into the
//! object store only after every check passed, read back as a stream, deleted when no longer
//! needed.
//!
//! The embedded default is `object_store`'s local filesystem under `DATA/blobs`. Uploads stage
//! in `DATA/tmp` (same filesystem), and commit is fsync + rename + fsync of the directory, so a
//! committed blob survives a crash and a half-written one is never under its final name. With
//! `s3://BUCKET` the committed blobs live in an S3-compatible store (`remote`): uploads still
//! stage on this machine, and commit uploads the staged file (multipart, streamed from disk),
//! visible under its key only once complete; reads are ranged `GET`s. A store that cannot be
//! reached is [`BlobError::Unavailable`], which the API answers 503 with `Retry-After`.
//! Resumable uploads grow in `DATA/uploads` instead, which start-up leaves alone (or, with a
//! remote store, as piece objects beside the blobs, so that another gateway can continue them):
//! a partial upload outlives a restart and is deleted by its terminator, a refusal, or the
//! sweeper.
//! Every path and key comes from a server-made id; nothing from a request reaches the store.
//!
//! | module | concern |
//! |---|---|
//! | this one | the store: open, commit, read, delete, sweeps, readiness |
//! | `staging` | a staged upload and the writer thread that puts it on disk |
//! | `remote` | the S3 backend: opening a bucket, committing by multipart upload |
//! | `partial` | resumable uploads' bytes: a partial file, or pieces in a remote store |
//! | `read_ahead` | reading a blob back in pieces within a memory budget |

mod partial;
mod read_ahead;
mod remote;
mod staging;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt as _};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt as _, PutPayload};

pub use partial::PartialBlob;
use read_ahead::{Source, read_ahead};
pub use staging::StagedBlob;

use crate::config::BlobBackend;
use crate::ids::TransferId;

/// What can go wrong with blobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The disk is full.
    #[error("the disk holding the blobs is full")]
    Full,
    /// A directory or file of the blob store cannot be written or read now (a read-only
    /// filesystem, permissions taken away): nothing was kept, and once it is usable again
    /// uploads and downloads work again.
    #[error("the blob storage cannot be written or read: {0}")]
    Unwritable(io::Error),
    /// Any other filesystem failure.
    #[error("blob storage failed: {0}")]
    Io(io::Error),
    /// No blob has that key.
    #[error("no blob `{path}` in the store")]
    NotFound {
        /// The key (or for the local store, the file) asked for.
        path: String,
    },
    /// The blob store cannot be reached or failed on its side (network, timeout, 5xx after
    /// retries): nothing was changed, and trying again later may work.
    #[error("the blob store is unavailable: {0}")]
    Unavailable(object_store::Error),
    /// An S3 endpoint given as plain `http://` to another machine.
    #[error("the blob store's endpoint `{endpoint}` is plain http to another machine")]
    PlainHttp {
        /// `AWS_ENDPOINT_URL`.
        endpoint: String,
    },
    /// The object store failed otherwise.
    #[error("object store failed: {0}")]
    Store(object_store::Error),
}

impl From<io::Error> for BlobError {
    fn from(e: io::Error) -> Self {
        match storage_fault(&e) {
            Some(Fault::Full) => Self::Full,
            Some(Fault::Unwritable) => Self::Unwritable(e),
            None => Self::Io(e),
        }
    }
}

/// The storage faults an answer names: no space (507) or a place that cannot be written (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Full,
    Unwritable,
}

/// Which storage fault an I/O error is, if any: by its kind, its OS error number, or the error
/// it wraps (the staging writer thread and `object_store` wrap the errors they meet).
fn storage_fault(e: &(dyn std::error::Error + 'static)) -> Option<Fault> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            match (io.kind(), io.raw_os_error()) {
                // ENOSPC, EDQUOT, EFBIG (a file size limit)
                (io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge, _)
                | (_, Some(28 | 122 | 27)) => return Some(Fault::Full),
                // EROFS, EACCES, EPERM
                (io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied, _) | (_, Some(30 | 13 | 1)) => {
                    return Some(Fault::Unwritable);
                }
                _ => {}
            }
        }
        if let Some(BlobError::Full) = c.downcast_ref::<BlobError>() {
            return Some(Fault::Full);
        }
        if let Some(BlobError::Unwritable(_)) = c.downcast_ref::<BlobError>() {
            return Some(Fault::Unwritable);
        }
        // An `io::Error` made from another error gives that error by `get_ref` (its `source`
        // skips it).
        let inner = c.downcast_ref::<io::Error>().and_then(io::Error::get_ref);
        cause = match inner {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    None
}

impl From<object_store::Error> for BlobError {
    /// Not found stays distinguishable; a remote store's failures to answer (after its own
    /// retries) are [`BlobError::Unavailable`]; the rest is a plain failure.
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => Self::NotFound { path },
            e if storage_fault(&e) == Some(Fault::Full) => Self::Full,
            e if storage_fault(&e) == Some(Fault::Unwritable) => {
                Self::Unwritable(io::Error::new(io::ErrorKind::ReadOnlyFilesystem, e.to_string()))
            }
            e if is_unavailable(&e) => Self::Unavailable(e),
            e => Self::Store(e),
        }
    }
}

/// Whether a store error means the store did not answer usefully: a transport error (connect,
/// timeout, broken response) anywhere in its causes, or a remote store's generic failure (a
/// 5xx or throttling left after the client's retries). Refusals with a meaning of their own
/// (not found, precondition, permission) are other variants of `object_store::Error`.
fn is_unavailable(e: &object_store::Error) -> bool {
    let remote = matches!(e, object_store::Error::Generic { store, .. } if *store != LOCAL_STORE);
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<object_store::client::HttpError>().is_some() {
            return true;
        }
        cause = c.source();
    }
    remote
}

/// The name `object_store` gives its local filesystem store in errors.
const LOCAL_STORE: &str = "LocalFileSystem";

/// The object the blob store writes at open and reads for readiness (remote stores only).
const MARKER: &str = "sealpost-blob-store";
/// A remote blob without a transfer is removed only when older than this: another gateway may
/// have committed it a moment ago and not yet written its row.
const REMOTE_ORPHAN_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Where committed blobs live.
#[derive(Debug, Clone)]
enum Backend {
    /// A directory: commit is a rename from staging, reads are from the file.
    Local {
        /// The directory.
        root: PathBuf,
        /// The same store, typed, to map keys to files.
        fs: Arc<LocalFileSystem>,
    },
    /// An S3-compatible store, shared with other gateways.
    Remote,
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    /// Downloads (and other whole-file reads) streaming now (they share
    /// [`read_ahead::DOWNLOAD_BUDGET`]).
    downloads: Arc<AtomicUsize>,
    tmp: PathBuf,
    uploads: PathBuf,
}

impl BlobStore {
    /// Opens the blob store in the default place, `data_dir/blobs`.
    pub async fn open(data_dir: &Path) -> Result<Self, BlobError> {
        Self::open_at(data_dir, &BlobBackend::Local(data_dir.join("blobs"))).await
    }

    /// Opens the blob store at `backend`, staging in `data_dir`. A remote store is written to
    /// once (a small marker object), so that wrong credentials or a missing bucket stop the
    /// start rather than the first upload.
    pub async fn open_at(data_dir: &Path, backend: &BlobBackend) -> Result<Self, BlobError> {
        let tmp = data_dir.join("tmp");
        let uploads = data_dir.join("uploads");
        tokio::fs::create_dir_all(&tmp).await?;
        tokio::fs::create_dir_all(&uploads).await?;
        let (store, backend): (Arc<dyn ObjectStore>, _) = match backend {
            BlobBackend::Local(root) => {
                tokio::fs::create_dir_all(root).await?;
                let fs = Arc::new(LocalFileSystem::new_with_prefix(root)?);
                (fs.clone(), Backend::Local { root: root.clone(), fs })
            }
            BlobBackend::S3 { bucket } => {
                let store = Arc::new(remote::open(bucket)?);
                store.put(&ObjectPath::from(MARKER), PutPayload::from_static(b"sealpost blob store\n")).await?;
                (store, Backend::Remote)
            }
        };
        Ok(Self { store, backend, downloads: Arc::new(AtomicUsize::new(0)), tmp, uploads })
    }

    /// A blob store whose committed blobs live in memory, as a remote store's do elsewhere (for
    /// tests of the remote paths without a server).
    #[cfg(test)]
    pub(crate) async fn in_memory(data_dir: &Path) -> Result<Self, BlobError> {
        let tmp = data_dir.join("tmp");
        let uploads = data_dir.join("uploads");
        tokio::fs::create_dir_all(&tmp).await?;
        tokio::fs::create_dir_all(&uploads).await?;
        let store = Arc::new(object_store::memory::InMemory::new());
        Ok(Self { store, backend: Backend::Remote, downloads: Arc::new(AtomicUsize::new(0)), tmp, uploads })
    }

    /// The object key for a transfer's ciphertext.
    pub fn key_for(transfer: &TransferId) -> String {
        format!("{transfer}.age")
    }

    /// Makes a staged upload durable under `key`. Locally: flush, fsync, rename, fsync the
    /// directory. Remotely: flush, upload (the blob appears under `key` only when complete),
    /// then delete the staged file.
    pub async fn commit(&self, mut staged: StagedBlob, key: &str) -> Result<(), BlobError> {
        if staged.sink.is_none() {
            return Ok(());
        }
        match &self.backend {
            Backend::Local { root, fs } => {
                let dest = fs.path_to_filesystem(&ObjectPath::from(key))?;
                let result = async {
                    staged.finish().await?;
                    staged.sink = None;
                    tokio::fs::rename(&staged.path, &dest).await?;
                    tokio::fs::File::open(root).await?.sync_all().await
                }
                .await;
                if let Err(e) = result {
                    let _ = tokio::fs::remove_file(&staged.path).await;
                    return Err(e.into());
                }
                Ok(())
            }
            // Dropping `staged` afterwards deletes the staged file, uploaded or not.
            Backend::Remote => {
                staged.finish().await?;
                remote::upload(&self.store, &staged.path, &ObjectPath::from(key)).await?;
                if let Some(upload) = staged.pieces_of.take()
                    && let Err(e) = self.delete_partial(&upload).await
                {
                    tracing::warn!(error = %e, %upload, "could not delete a committed upload's pieces");
                }
                Ok(())
            }
        }
    }

    /// Streams a blob.
    pub async fn get(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        self.get_from(key, 0).await
    }

    /// Streams a blob from byte `offset` on (to resume a broken download).
    ///
    /// A local file is read in pieces of up to `read_ahead::READ_CHUNK`, one read ahead on the
    /// blocking pool while the previous piece goes out (object_store's own file stream reads
    /// 8 KiB per blocking task, several times slower than the network); a remote object is read
    /// by ranged requests the same way.
    pub async fn get_from(
        &self,
        key: &str,
        offset: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let path = ObjectPath::from(key);
        if let Backend::Remote = self.backend {
            let size = self.store.head(&path).await?.size;
            if offset > size {
                return Err(BlobError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("offset {offset} is past the end of `{key}` ({size} bytes)"),
                )));
            }
            return Ok(read_ahead(Source::Object(self.store.clone(), path), offset, size, &self.downloads));
        }
        let range = (offset > 0).then_some(object_store::GetRange::Offset(offset));
        let options = object_store::GetOptions { range, ..Default::default() };
        let result = self.store.get_opts(&path, options).await?;
        let range = result.range.clone();
        Ok(match result.payload {
            GetResultPayload::File(file, _) => {
                read_ahead(Source::File(Arc::new(file)), range.start, range.end, &self.downloads)
            }
            GetResultPayload::Stream(stream) => stream.map(|r| r.map_err(BlobError::from)).boxed(),
        })
    }

    /// The size of a committed blob, as the store reports it (to check a copy).
    pub async fn size(&self, key: &str) -> Result<u64, BlobError> {
        Ok(self.store.head(&ObjectPath::from(key)).await?.size)
    }

    /// Deletes a blob; deleting one that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the store answers: for a directory, that it and the staging directory are
    /// there; for a remote store, a `HEAD` of the marker object (an answer of any kind but a
    /// failure to answer counts: the store is up).
    pub async fn check(&self) -> Result<(), BlobError> {
        for dir in [&self.tmp, &self.uploads] {
            tokio::fs::metadata(dir).await?;
        }
        match &self.backend {
            Backend::Local { root, .. } => {
                tokio::fs::metadata(root).await?;
                Ok(())
            }
            Backend::Remote => match self.store.head(&ObjectPath::from(MARKER)).await.map_err(BlobError::from) {
                Ok(_) | Err(BlobError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            },
        }
    }

    /// Every transfer's blob in the store (`ID.age` keys), with when it was written.
    pub async fn inventory(&self) -> Result<Vec<(String, DateTime<Utc>)>, BlobError> {
        let mut listing = self.store.list(None);
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let key = meta.location.to_string();
            if is_blob_key(&key) {
                found.push((key, meta.last_modified));
            }
        }
        found.sort();
        Ok(found)
    }

    /// The files in the staging directory (uploads streaming in now, or left by a crash), with
    /// when each was last written.
    pub async fn staged_files(&self) -> Result<Vec<(PathBuf, DateTime<Utc>)>, BlobError> {
        let mut found = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.tmp).await?;
        while let Some(entry) = dir.next_entry().await? {
            let meta = entry.metadata().await?;
            if meta.is_file() {
                found.push((entry.path(), meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now())));
            }
        }
        found.sort();
        Ok(found)
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
    /// transaction); returns how many. Only transfers' blobs (`ID.age`) are considered. A
    /// remote store is shared with other gateways, so there a blob must also be older than
    /// [`REMOTE_ORPHAN_AGE`] at `now`: younger, its transaction may still be on its way.
    pub async fn sweep_orphans(&self, known: &HashSet<String>, now: DateTime<Utc>) -> Result<usize, BlobError> {
        let mut removed = 0;
        let mut listing = self.store.list(None);
        let mut orphans = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let key = meta.location.to_string();
            let young = matches!(self.backend, Backend::Remote) && now - meta.last_modified < REMOTE_ORPHAN_AGE;
            if is_blob_key(&key) && !known.contains(&key) && !young {
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

/// Whether `key` is a transfer's blob as [`BlobStore::key_for`] makes them.
fn is_blob_key(key: &str) -> bool {
    key.strip_suffix(".age").is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt as _;

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
        assert_eq!(blobs.sweep_orphans(&known, Utc::now()).await.expect("sweep"), 1);
        assert!(blobs.get(&BlobStore::key_for(&b)).await.is_err());
        blobs.delete(&BlobStore::key_for(&b)).await.expect("deleting twice is fine");
    }

    #[tokio::test]
    async fn a_remote_store_commits_by_upload_reads_by_ranges_and_spares_young_orphans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::in_memory(dir.path()).await.expect("open");
        let id = TransferId::generate();
        let data: Vec<u8> = (0..(20 << 20) + 123).map(|i| (i % 251) as u8).collect();
        let mut staged = blobs.stage(&id).await.expect("stage");
        staged.write(&data).await.expect("write");
        let key = BlobStore::key_for(&id);
        blobs.commit(staged, &key).await.expect("commit: a multipart upload of three parts");
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("read").count(), 0, "the staged file is gone");
        for offset in [0, 1, (1 << 20) - 1, 9 << 20, data.len()] {
            let pieces: Vec<Bytes> =
                blobs.get_from(&key, offset as u64).await.expect("get").try_collect().await.expect("read");
            assert!(pieces.first().is_none_or(|p| p.len() <= 1 << 20), "the first piece is small: {offset}");
            assert!(pieces.iter().all(|p| p.len() <= 8 << 20), "{offset}");
            assert!(pieces.concat() == data[offset..], "{offset}");
        }
        assert!(matches!(blobs.get_from(&key, data.len() as u64 + 1).await, Err(BlobError::Io(_))), "past the end");
        let missing = BlobStore::key_for(&TransferId::generate());
        assert!(matches!(blobs.get(&missing).await, Err(BlobError::NotFound { .. })));
        blobs.check().await.expect("ready");

        let none = HashSet::new();
        assert_eq!(
            blobs.sweep_orphans(&none, Utc::now()).await.expect("sweep"),
            0,
            "another gateway may be committing it"
        );
        let later = Utc::now() + REMOTE_ORPHAN_AGE + chrono::TimeDelta::minutes(1);
        assert_eq!(blobs.sweep_orphans(&none, later).await.expect("sweep"), 1);
        assert!(matches!(blobs.get(&key).await, Err(BlobError::NotFound { .. })));
    }

    #[test]
    fn full_and_unwritable_disks_are_told_apart_from_other_failures_however_wrapped() {
        for errno in [28, 122, 27] {
            assert!(matches!(BlobError::from(io::Error::from_raw_os_error(errno)), BlobError::Full), "{errno}");
        }
        for errno in [30, 13, 1] {
            assert!(
                matches!(BlobError::from(io::Error::from_raw_os_error(errno)), BlobError::Unwritable(_)),
                "{errno}"
            );
        }
        assert!(matches!(BlobError::from(io::Error::from_raw_os_error(5)), BlobError::Io(_)), "EIO is neither");
        // The staging writer thread's error, and object_store's local filesystem error.
        let wrapped = io::Error::other(io::Error::from_raw_os_error(28));
        assert!(matches!(BlobError::from(wrapped), BlobError::Full));
        let local =
            object_store::Error::Generic { store: LOCAL_STORE, source: Box::new(io::Error::from_raw_os_error(30)) };
        assert!(matches!(BlobError::from(local), BlobError::Unwritable(_)));
    }

    #[test]
    fn a_remote_store_that_does_not_answer_is_unavailable_and_a_missing_blob_is_not_found() {
        let unreachable = object_store::Error::Generic { store: "S3", source: "connection refused".into() };
        assert!(matches!(BlobError::from(unreachable), BlobError::Unavailable(_)));
        let local = object_store::Error::Generic { store: LOCAL_STORE, source: "bad file".into() };
        assert!(matches!(BlobError::from(local), BlobError::Store(_)));
        let missing = object_store::Error::NotFound { path: "x.age".to_owned(), source: "gone".into() };
        assert!(matches!(BlobError::from(missing), BlobError::NotFound { path } if path == "x.age"));
    }
}
