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

use std::collections::HashSet;
use std::io;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt as _};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetResultPayload, ObjectStore as _, ObjectStoreExt as _};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};

use crate::ids::TransferId;

/// Size of a resumable upload's write buffer: large writes keep the disk streaming.
const WRITE_BUFFER: usize = 1 << 20;

/// Bytes per write of a staged upload: smaller body pieces are gathered to this size.
const STAGE_PIECE: usize = 256 << 10;
/// Pieces queued for a staged upload's writer thread: what it may hold beyond the one being
/// written when the disk is slower than the network.
const STAGE_QUEUE: usize = 4;
/// Bytes written between two background `sync_data` calls of a staged upload.
/// (Small in unit tests, so that they reach it.)
const SYNC_EVERY: u64 = if cfg!(test) { 1 << 20 } else { 32 << 20 };

/// Bytes per read of a download: large enough that the per-read cost (a blocking-pool task,
/// a wake-up, a socket write) is small next to the copy, small enough that a download holds
/// little memory (one piece being read, one being sent).
const READ_CHUNK: usize = 1 << 20;
/// Smallest piece of a download, however many run at once.
const MIN_READ_CHUNK: usize = 128 << 10;
/// Memory that all running downloads' pieces may hold together, as long as each piece is
/// at least [`MIN_READ_CHUNK`]: up to 32 downloads read full pieces.
const DOWNLOAD_BUDGET: usize = 64 << 20;

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
    /// Downloads (and other whole-file reads) streaming now (they share [`DOWNLOAD_BUDGET`]).
    downloads: Arc<AtomicUsize>,
    root: PathBuf,
    tmp: PathBuf,
    uploads: PathBuf,
}

/// An upload being staged. Dropping it without [`BlobStore::commit`] deletes the file.
///
/// Small uploads stay in memory until commit, which writes and fsyncs them on the blocking
/// pool. Past [`STAGE_PIECE`] the bytes go, in pieces, to a writer thread of their own
/// through a short queue (so receiving, inspecting and hashing do not wait for the disk,
/// and memory stays at a few pieces), and every [`SYNC_EVERY`] written bytes a helper
/// thread starts `sync_data` on them: the disk writes while the body is still arriving,
/// and the fsync at commit, which still comes before the rename, finds little left to do.
#[derive(Debug)]
pub struct StagedBlob {
    path: PathBuf,
    /// Until committed or dropped.
    sink: Option<Sink>,
}

/// Where a staged upload's bytes go.
#[derive(Debug)]
struct Sink {
    /// The file, until the writer thread takes it.
    file: Option<std::fs::File>,
    /// Bytes not yet handed on.
    buf: Vec<u8>,
    /// The writer thread, once started.
    writer: Option<Writer>,
}

/// The writer thread's end of a staged upload.
#[derive(Debug)]
struct Writer {
    queue: tokio::sync::mpsc::Sender<WriteOp>,
    done: tokio::sync::oneshot::Receiver<io::Result<()>>,
}

/// What the writer thread is asked to do.
#[derive(Debug)]
enum WriteOp {
    /// Append these bytes.
    Write(Bytes),
    /// Make everything durable (fsync) and report.
    Commit,
}

impl StagedBlob {
    fn new(file: std::fs::File, path: PathBuf) -> Self {
        Self { path, sink: Some(Sink { file: Some(file), buf: Vec::new(), writer: None }) }
    }

    /// Appends bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.append(bytes, None).await
    }

    /// Appends bytes without copying them when they are large enough to be written alone.
    pub async fn write_bytes(&mut self, bytes: Bytes) -> Result<(), BlobError> {
        self.append(&bytes, Some(&bytes)).await
    }

    async fn append(&mut self, bytes: &[u8], owned: Option<&Bytes>) -> Result<(), BlobError> {
        let Some(sink) = self.sink.as_mut() else {
            return Err(BlobError::Io(io::Error::other("staged blob already closed")));
        };
        if sink.buf.len() + bytes.len() <= STAGE_PIECE {
            sink.buf.extend_from_slice(bytes);
            return Ok(());
        }
        if !sink.buf.is_empty() {
            let piece = Bytes::from(std::mem::take(&mut sink.buf));
            sink.send(WriteOp::Write(piece)).await?;
        }
        if bytes.len() >= STAGE_PIECE / 4 {
            let piece = owned.cloned().unwrap_or_else(|| Bytes::copy_from_slice(bytes));
            sink.send(WriteOp::Write(piece)).await
        } else {
            sink.buf.reserve(STAGE_PIECE);
            sink.buf.extend_from_slice(bytes);
            Ok(())
        }
    }

    /// Writes what is left and fsyncs; afterwards the file is complete and durable.
    async fn finish(&mut self) -> io::Result<()> {
        let Some(sink) = self.sink.as_mut() else { return Ok(()) };
        if sink.writer.is_none() {
            let file = sink.file.take();
            let buf = std::mem::take(&mut sink.buf);
            return tokio::task::spawn_blocking(move || {
                let mut file = file.ok_or_else(|| io::Error::other("staged blob already closed"))?;
                io::Write::write_all(&mut file, &buf)?;
                file.sync_all()
            })
            .await
            .map_err(io::Error::other)?;
        }
        if !sink.buf.is_empty() {
            let piece = Bytes::from(std::mem::take(&mut sink.buf));
            sink.send(WriteOp::Write(piece)).await.map_err(into_io)?;
        }
        sink.send(WriteOp::Commit).await.map_err(into_io)?;
        match sink.writer.take() {
            Some(writer) => writer.done.await.unwrap_or_else(|_| Err(io::Error::other("the writer thread stopped"))),
            None => Err(io::Error::other("the writer thread stopped")),
        }
    }
}

impl Sink {
    /// Hands an operation to the writer thread, starting it if need be.
    async fn send(&mut self, op: WriteOp) -> Result<(), BlobError> {
        if self.writer.is_none() {
            let file = self.file.take().ok_or_else(|| BlobError::Io(io::Error::other("staged blob already closed")))?;
            let (queue, ops) = tokio::sync::mpsc::channel(STAGE_QUEUE);
            let (report, done) = tokio::sync::oneshot::channel();
            std::thread::Builder::new().name("sealpost-stage".to_owned()).spawn(move || {
                let _ = report.send(write_loop(file, ops));
            })?;
            self.writer = Some(Writer { queue, done });
        }
        let Some(writer) = self.writer.as_mut() else { return Ok(()) };
        if writer.queue.send(op).await.is_ok() {
            return Ok(());
        }
        // The thread stopped on an error: that error is the answer.
        let writer = self.writer.take();
        Err(match writer {
            Some(w) => w.done.await.map_or_else(io::Error::other, |r| {
                r.err().unwrap_or_else(|| io::Error::other("the writer thread stopped"))
            }),
            None => io::Error::other("the writer thread stopped"),
        }
        .into())
    }
}

fn into_io(e: BlobError) -> io::Error {
    match e {
        BlobError::Full => io::Error::from(io::ErrorKind::StorageFull),
        BlobError::Io(e) => e,
        BlobError::Store(e) => io::Error::other(e),
    }
}

/// The writer thread: appends pieces, has a helper sync them every [`SYNC_EVERY`] bytes, and
/// on commit waits for the helper and fsyncs. Without a commit (the upload was refused or
/// broke off and its file is already unlinked) it just stops.
fn write_loop(mut file: std::fs::File, mut ops: tokio::sync::mpsc::Receiver<WriteOp>) -> io::Result<()> {
    let mut syncer: Option<Syncer> = None;
    let mut unsynced = 0u64;
    while let Some(op) = ops.blocking_recv() {
        match op {
            WriteOp::Write(bytes) => {
                io::Write::write_all(&mut file, &bytes)?;
                unsynced += bytes.len() as u64;
                if unsynced >= SYNC_EVERY {
                    unsynced = 0;
                    if syncer.is_none() {
                        syncer = Syncer::start(&file);
                    }
                    if let Some(s) = &syncer {
                        s.kick();
                    }
                }
            }
            WriteOp::Commit => {
                if let Some(s) = syncer.take() {
                    // Its error would not be reported again by the fsync below.
                    s.stop()?;
                }
                return file.sync_all();
            }
        }
    }
    Err(io::Error::other("staged blob dropped before commit"))
}

/// A helper thread that runs `sync_data` on a staged file whenever kicked, so that write-back
/// overlaps receiving.
#[derive(Debug)]
struct Syncer {
    kick: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<io::Result<()>>,
}

impl Syncer {
    /// Starts the helper; `None` if it cannot (the fsync at commit then does all the work).
    fn start(file: &std::fs::File) -> Option<Self> {
        let file = file.try_clone().ok()?;
        let (kick, kicks) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sealpost-sync".to_owned())
            .spawn(move || {
                while kicks.recv().is_ok() {
                    file.sync_data()?;
                }
                Ok(())
            })
            .ok()?;
        Some(Self { kick, thread })
    }

    /// Asks for a sync of everything written so far; one already pending covers it.
    fn kick(&self) {
        let _ = self.kick.try_send(());
    }

    /// Waits for the helper to finish; its error, if a sync failed.
    fn stop(self) -> io::Result<()> {
        drop(self.kick);
        self.thread.join().unwrap_or_else(|_| Err(io::Error::other("the sync thread panicked")))
    }
}

/// A resumable upload's partial file, open for appending.
#[derive(Debug)]
pub struct PartialBlob {
    writer: BufWriter<tokio::fs::File>,
    len: u64,
}

impl PartialBlob {
    /// Appends bytes (buffered: [`PartialBlob::sync`] makes them durable).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.writer.write_all(bytes).await?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Flushes and fsyncs; returns the file's length, every byte of which is now durable.
    pub async fn sync(&mut self) -> Result<u64, BlobError> {
        self.writer.flush().await?;
        self.writer.get_mut().sync_data().await?;
        Ok(self.len)
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if self.sink.is_some() {
            // Refused or broken-off upload: nothing of it may remain.
            let _ = std::fs::remove_file(&self.path);
        }
    }
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

    /// Starts staging an upload.
    pub async fn stage(&self, transfer: &TransferId) -> Result<StagedBlob, BlobError> {
        let path = self.tmp.join(format!("{transfer}.part"));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(StagedBlob::new(file.into_std().await, path))
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

    fn partial_path(&self, upload: &TransferId) -> PathBuf {
        self.uploads.join(format!("{upload}.part"))
    }

    /// Opens a resumable upload's partial file for appending at `offset` (creating it when
    /// `offset` is 0), cutting off any bytes past `offset`: written once, never acknowledged.
    pub async fn append_partial(&self, upload: &TransferId, offset: u64) -> Result<PartialBlob, BlobError> {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(offset == 0)
            .truncate(false)
            .open(self.partial_path(upload))
            .await?;
        file.set_len(offset).await?;
        file.seek(io::SeekFrom::Start(offset)).await?;
        Ok(PartialBlob { writer: BufWriter::with_capacity(WRITE_BUFFER, file), len: offset })
    }

    /// Opens a resumable upload's partial file for reading.
    pub async fn read_partial(&self, upload: &TransferId) -> Result<tokio::fs::File, BlobError> {
        Ok(tokio::fs::File::open(self.partial_path(upload)).await?)
    }

    /// Streams a resumable upload's partial file, in the large pieces downloads use.
    pub async fn read_partial_pieces(
        &self,
        upload: &TransferId,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let file = tokio::fs::File::open(self.partial_path(upload)).await?;
        let len = file.metadata().await?.len();
        Ok(read_ahead(Arc::new(file.into_std().await), 0, len, &self.downloads))
    }

    /// Takes a complete resumable upload as a staged blob, ready for [`BlobStore::commit`];
    /// dropping it uncommitted deletes the file, as for any staged upload.
    pub async fn stage_partial(&self, upload: &TransferId) -> Result<StagedBlob, BlobError> {
        let path = self.partial_path(upload);
        let file = tokio::fs::OpenOptions::new().append(true).open(&path).await?;
        Ok(StagedBlob::new(file.into_std().await, path))
    }

    /// Deletes a resumable upload's partial file; one that is already gone is not an error.
    pub async fn delete_partial(&self, upload: &TransferId) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.partial_path(upload)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Streams a blob.
    pub async fn get(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        self.get_from(key, 0).await
    }

    /// Streams a blob from byte `offset` on (to resume a broken download).
    ///
    /// A local file is read in pieces of up to [`READ_CHUNK`], one read ahead on the blocking pool
    /// while the previous piece goes out (object_store's own file stream reads 8 KiB per
    /// blocking task, several times slower than the network); any other store's stream is
    /// passed through.
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

/// Reads `file` from `start` to `end` in pieces of up to [`READ_CHUNK`], each read on the
/// blocking pool while the one before it is being sent: one piece read ahead, never more,
/// so memory stays flat whatever the file's size and however slow the reader. No blocking
/// thread is held between pieces, so many slow downloads do not starve the pool. The pieces
/// shrink (down to [`MIN_READ_CHUNK`]) when many downloads run at once, so that together
/// they hold about [`DOWNLOAD_BUDGET`].
fn read_ahead(
    file: Arc<std::fs::File>,
    start: u64,
    end: u64,
    downloads: &Arc<AtomicUsize>,
) -> BoxStream<'static, Result<Bytes, BlobError>> {
    let running = Running::start(downloads);
    let read = move |file: Arc<std::fs::File>, at: u64, piece: usize| {
        tokio::task::spawn_blocking(move || {
            let len = usize::try_from(end - at).map_or(piece, |left| left.min(piece));
            // Read into spare capacity: no zeroing of a buffer the read overwrites anyway. The
            // shared cursor is safe: a stream's pieces are read one after the other.
            let mut buf = Vec::with_capacity(len);
            let mut reader = &*file;
            reader.seek(io::SeekFrom::Start(at))?;
            io::Read::take(reader, len as u64).read_to_end(&mut buf)?;
            if buf.len() < len {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the blob is shorter than its listing"));
            }
            Ok(Bytes::from(buf))
        })
    };
    let first = (start < end).then(|| read(file.clone(), start, running.piece()));
    futures_util::stream::unfold((first, start, running), move |(pending, at, running)| {
        let file = file.clone();
        async move {
            let piece = match pending?.await {
                Ok(Ok(piece)) => piece,
                Ok(Err(e)) => return Some((Err(BlobError::from(e)), (None, end, running))),
                Err(e) => return Some((Err(BlobError::Io(io::Error::other(e))), (None, end, running))),
            };
            let at = at + piece.len() as u64;
            let next = (at < end).then(|| read(file, at, running.piece()));
            Some((Ok(piece), (next, at, running)))
        }
    })
    .boxed()
}

/// One running download, counted while its stream lives.
#[derive(Debug)]
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(downloads: &Arc<AtomicUsize>) -> Self {
        downloads.fetch_add(1, Ordering::Relaxed);
        Self(downloads.clone())
    }

    /// The piece size for the next read: the budget shared by the running downloads, each
    /// holding about two pieces (one being sent, one read ahead).
    fn piece(&self) -> usize {
        let running = self.0.load(Ordering::Relaxed).max(1);
        (DOWNLOAD_BUDGET / (2 * running)).clamp(MIN_READ_CHUNK, READ_CHUNK)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

    #[tokio::test]
    async fn a_dropped_staged_blob_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::open(dir.path()).await.expect("open");
        let id = TransferId::generate();
        let mut staged = blobs.stage(&id).await.expect("stage");
        staged.write(b"partial").await.expect("write");
        drop(staged);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("read").count(), 0);
        assert_eq!(std::fs::read_dir(dir.path().join("blobs")).expect("read").count(), 0);
    }

    #[tokio::test]
    async fn a_partial_upload_resumes_at_its_acknowledged_offset_and_drops_the_unacknowledged_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::open(dir.path()).await.expect("open");
        let id = TransferId::generate();
        let mut partial = blobs.append_partial(&id, 0).await.expect("create");
        partial.write(b"acknowledged").await.expect("write");
        assert_eq!(partial.sync().await.expect("sync"), 12);
        partial.write(b" but never recorded").await.expect("write");
        partial.sync().await.expect("sync");
        drop(partial);
        blobs.sweep_staging().await.expect("start-up leaves partial uploads alone");
        let mut partial = blobs.append_partial(&id, 12).await.expect("reopen");
        partial.write(b", resumed").await.expect("write");
        assert_eq!(partial.sync().await.expect("sync"), 21);
        drop(partial);
        let mut staged = String::new();
        blobs.read_partial(&id).await.expect("read").read_to_string(&mut staged).await.expect("utf-8");
        assert_eq!(staged, "acknowledged, resumed");
        blobs.commit(blobs.stage_partial(&id).await.expect("stage"), &BlobStore::key_for(&id)).await.expect("commit");
        assert_eq!(std::fs::read_dir(dir.path().join("uploads")).expect("read").count(), 0);
        blobs.delete_partial(&id).await.expect("deleting a missing partial upload is fine");
    }

    #[tokio::test]
    async fn a_blob_reads_back_whole_and_from_any_offset_across_read_pieces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::open(dir.path()).await.expect("open");
        let id = TransferId::generate();
        let data: Vec<u8> = (0..2 * READ_CHUNK + 12_345).map(|i| (i % 251) as u8).collect();
        let mut staged = blobs.stage(&id).await.expect("stage");
        staged.write(&data).await.expect("write");
        let key = BlobStore::key_for(&id);
        blobs.commit(staged, &key).await.expect("commit");
        for offset in [0, 1, READ_CHUNK - 1, READ_CHUNK, 2 * READ_CHUNK + 12_344] {
            let mut got = Vec::new();
            let mut stream = blobs.get_from(&key, offset as u64).await.expect("get");
            while let Some(piece) = stream.next().await {
                let piece = piece.expect("piece");
                assert!(!piece.is_empty() && piece.len() <= READ_CHUNK);
                got.extend_from_slice(&piece);
            }
            assert_eq!(got, &data[offset..], "{offset}");
        }
        assert!(blobs.get_from(&key, data.len() as u64 + 1).await.is_err(), "past the end");

        // Many downloads at once share the budget in smaller pieces; dropped, they count no more.
        let mut many: Vec<_> = futures_util::future::join_all((0..64).map(|_| blobs.get(&key))).await;
        assert_eq!(blobs.downloads.load(Ordering::Relaxed), 64);
        let mut first = many.pop().expect("one").expect("get");
        // The first piece was asked for when this download was alone; the next one is not.
        first.next().await.expect("a piece").expect("read");
        let piece = first.next().await.expect("a piece").expect("read");
        assert_eq!(piece.len(), DOWNLOAD_BUDGET / 128);
        drop((first, many));
        assert_eq!(blobs.downloads.load(Ordering::Relaxed), 0);
    }

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
