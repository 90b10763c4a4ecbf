//! Staging an upload: its bytes gathered into pieces and written to a temporary file in
//! `DATA/tmp` by a writer thread of its own, with background `sync_data` so that the fsync at
//! [`BlobStore::commit`] finds little left to do. A staged blob that is dropped uncommitted
//! deletes its file.

use std::io;
use std::path::PathBuf;

use bytes::Bytes;

use super::{BlobError, BlobStore};
use crate::ids::TransferId;

/// Bytes per write of a staged upload: smaller body pieces are gathered to this size.
const STAGE_PIECE: usize = 256 << 10;
/// Pieces queued for a staged upload's writer thread: what it may hold beyond the one being
/// written when the disk is slower than the network.
const STAGE_QUEUE: usize = 4;
/// Bytes written between two background `sync_data` calls of a staged upload.
/// (Small in unit tests, so that they reach it.)
const SYNC_EVERY: u64 = if cfg!(test) { 1 << 20 } else { 32 << 20 };

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
    pub(super) path: PathBuf,
    /// Until committed or dropped.
    pub(super) sink: Option<Sink>,
    /// The resumable upload whose pieces (in a remote store) this was assembled from: deleted
    /// once it is committed.
    pub(super) pieces_of: Option<TransferId>,
}

/// Where a staged upload's bytes go.
#[derive(Debug)]
pub(super) struct Sink {
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
    pub(super) fn new(file: std::fs::File, path: PathBuf) -> Self {
        Self { path, sink: Some(Sink { file: Some(file), buf: Vec::new(), writer: None }), pieces_of: None }
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
    pub(super) async fn finish(&mut self) -> io::Result<()> {
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
        BlobError::Io(e) | BlobError::Unwritable(e) => e,
        other => io::Error::other(other),
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

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if self.sink.is_some() {
            // Refused or broken-off upload: nothing of it may remain.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl BlobStore {
    /// Starts staging an upload.
    pub async fn stage(&self, transfer: &TransferId) -> Result<StagedBlob, BlobError> {
        let path = self.tmp.join(format!("{transfer}.part"));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(StagedBlob::new(file.into_std().await, path))
    }
}

#[cfg(test)]
mod tests {
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
}
