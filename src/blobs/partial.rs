//! Resumable uploads' bytes, held so that an upload outlives a restart and, with a remote store,
//! can go on through another gateway.
//!
//! Locally, a partial file grows in `DATA/uploads`, which start-up leaves alone. Each append
//! starts at the last acknowledged offset and cuts off anything written past it; a complete
//! upload is taken as a staged blob and committed like any other.
//!
//! In a remote store, the bytes are pieces: what arrives between two syncs is spooled in
//! `DATA/tmp` (swept at start-up: never acknowledged, so never needed again) and, at the sync,
//! uploaded as the object `uploads/ID/OFFSET` (the offset of its first byte, 20 digits, so the
//! keys sort in order). An append at offset N deletes the pieces at N and beyond (uploaded but
//! never acknowledged) and checks that the rest cover 0..N exactly. A complete upload is
//! assembled from its pieces into a staged file, committed, and its pieces deleted.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt as _, TryStreamExt as _};
use object_store::path::Path as ObjectPath;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};

use super::read_ahead::{Source, read_ahead};
use super::{Backend, BlobError, BlobStore, StagedBlob, remote};
use crate::ids::TransferId;

/// Size of a resumable upload's write buffer: large writes keep the disk streaming.
const WRITE_BUFFER: usize = 1 << 20;

/// A resumable upload, open for appending.
#[derive(Debug)]
pub struct PartialBlob {
    writer: BufWriter<tokio::fs::File>,
    len: u64,
    /// For a remote store: where the spooled bytes go at each sync.
    pieces: Option<Pieces>,
}

/// A remote upload's spool: the bytes since the last sync, not yet a piece.
#[derive(Debug)]
struct Pieces {
    blobs: BlobStore,
    upload: TransferId,
    /// The offset of the spool's first byte.
    start: u64,
    spool: PathBuf,
}

impl PartialBlob {
    /// Appends bytes (buffered: [`PartialBlob::sync`] makes them durable).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.writer.write_all(bytes).await?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Makes every byte written durable: flushes and fsyncs the partial file, or uploads the
    /// spool as a piece (then empties it). Returns the length now held durably.
    pub async fn sync(&mut self) -> Result<u64, BlobError> {
        self.writer.flush().await?;
        let Some(pieces) = &mut self.pieces else {
            self.writer.get_mut().sync_data().await?;
            return Ok(self.len);
        };
        if self.len > pieces.start {
            let key = BlobStore::piece_key(&pieces.upload, pieces.start);
            remote::upload(&pieces.blobs.store, &pieces.spool, &key).await?;
            pieces.start = self.len;
            let file = self.writer.get_mut();
            file.set_len(0).await?;
            file.seek(io::SeekFrom::Start(0)).await?;
        }
        Ok(self.len)
    }
}

impl Drop for Pieces {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spool);
    }
}

impl BlobStore {
    fn partial_path(&self, upload: &TransferId) -> PathBuf {
        self.uploads.join(format!("{upload}.part"))
    }

    /// The prefix of a remote upload's pieces.
    fn pieces_prefix(upload: &TransferId) -> ObjectPath {
        ObjectPath::from(format!("uploads/{upload}"))
    }

    /// The key of the piece starting at `offset`.
    fn piece_key(upload: &TransferId, offset: u64) -> ObjectPath {
        ObjectPath::from(format!("uploads/{upload}/{offset:020}"))
    }

    /// A remote upload's pieces in order, as (key, first byte's offset, length).
    async fn pieces(&self, upload: &TransferId) -> Result<Vec<(ObjectPath, u64, u64)>, BlobError> {
        let prefix = Self::pieces_prefix(upload);
        let mut pieces = Vec::new();
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let offset = meta.location.filename().and_then(|name| name.parse::<u64>().ok());
            let Some(offset) = offset else {
                return Err(BlobError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("`{}` is not a piece of a resumable upload", meta.location),
                )));
            };
            pieces.push((meta.location, offset, meta.size));
        }
        pieces.sort_by_key(|(_, offset, _)| *offset);
        Ok(pieces)
    }

    /// Opens a resumable upload for appending at `offset` (creating it when `offset` is 0),
    /// cutting off any bytes past `offset`: written once, never acknowledged.
    pub async fn append_partial(&self, upload: &TransferId, offset: u64) -> Result<PartialBlob, BlobError> {
        if let Backend::Local { .. } = self.backend {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(offset == 0)
                .truncate(false)
                .open(self.partial_path(upload))
                .await?;
            file.set_len(offset).await?;
            file.seek(io::SeekFrom::Start(offset)).await?;
            return Ok(PartialBlob { writer: BufWriter::with_capacity(WRITE_BUFFER, file), len: offset, pieces: None });
        }
        let mut held = 0;
        for (key, start, len) in self.pieces(upload).await? {
            if start >= offset {
                self.delete(key.as_ref()).await?;
            } else if start == held && start + len <= offset {
                held += len;
            } else {
                held = u64::MAX;
                break;
            }
        }
        if held != offset {
            return Err(BlobError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the pieces of upload `{upload}` do not hold exactly its first {offset} bytes"),
            )));
        }
        let spool = self.tmp.join(format!("{upload}.spool"));
        let file = tokio::fs::File::create(&spool).await?;
        let pieces = Pieces { blobs: self.clone(), upload: upload.clone(), start: offset, spool };
        Ok(PartialBlob { writer: BufWriter::with_capacity(WRITE_BUFFER, file), len: offset, pieces: Some(pieces) })
    }

    /// Streams the bytes a resumable upload holds, in the large pieces downloads use.
    pub async fn read_partial_pieces(
        &self,
        upload: &TransferId,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        if let Backend::Local { .. } = self.backend {
            let file = tokio::fs::File::open(self.partial_path(upload)).await?;
            let len = file.metadata().await?.len();
            return Ok(read_ahead(Source::File(Arc::new(file.into_std().await)), 0, len, &self.downloads));
        }
        let (store, downloads) = (self.store.clone(), self.downloads.clone());
        let pieces = self
            .pieces(upload)
            .await?
            .into_iter()
            .map(move |(key, _, len)| read_ahead(Source::Object(store.clone(), key), 0, len, &downloads));
        Ok(futures_util::stream::iter(pieces).flatten().boxed())
    }

    /// Takes a complete resumable upload as a staged blob, ready for [`BlobStore::commit`];
    /// dropping it uncommitted deletes the file, as for any staged upload. (A remote upload's
    /// pieces are copied into a staged file first, and deleted once it is committed.)
    pub async fn stage_partial(&self, upload: &TransferId) -> Result<StagedBlob, BlobError> {
        if let Backend::Local { .. } = self.backend {
            let path = self.partial_path(upload);
            let file = tokio::fs::OpenOptions::new().append(true).open(&path).await?;
            return Ok(StagedBlob::new(file.into_std().await, path));
        }
        let path = self.tmp.join(format!("{upload}.part"));
        let file = tokio::fs::File::create(&path).await?;
        let mut staged = StagedBlob::new(file.into_std().await, path);
        let mut pieces = self.read_partial_pieces(upload).await?;
        while let Some(piece) = pieces.try_next().await? {
            staged.write_bytes(piece).await?;
        }
        staged.pieces_of = Some(upload.clone());
        Ok(staged)
    }

    /// Deletes a resumable upload's bytes; an upload already gone is not an error.
    pub async fn delete_partial(&self, upload: &TransferId) -> Result<(), BlobError> {
        if let Backend::Local { .. } = self.backend {
            return match tokio::fs::remove_file(self.partial_path(upload)).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        for (key, ..) in self.pieces(upload).await? {
            self.delete(key.as_ref()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn held(blobs: &BlobStore, id: &TransferId) -> String {
        let pieces: Vec<Bytes> =
            blobs.read_partial_pieces(id).await.expect("read").try_collect().await.expect("pieces");
        String::from_utf8(pieces.concat()).expect("utf-8")
    }

    /// The same story on either backend: acknowledged bytes stay, unacknowledged ones go, and
    /// the complete upload commits like any other.
    async fn resumes_at_its_acknowledged_offset(blobs: BlobStore, dir: &std::path::Path) {
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
        assert_eq!(held(&blobs, &id).await, "acknowledged, resumed");
        let key = BlobStore::key_for(&id);
        blobs.commit(blobs.stage_partial(&id).await.expect("stage"), &key).await.expect("commit");
        let blob: Vec<Bytes> = blobs.get(&key).await.expect("get").try_collect().await.expect("read");
        assert_eq!(blob.concat(), b"acknowledged, resumed");
        assert_eq!(std::fs::read_dir(dir.join("uploads")).expect("read").count(), 0);
        assert_eq!(std::fs::read_dir(dir.join("tmp")).expect("read").count(), 0);
        assert!(blobs.pieces(&id).await.expect("list").is_empty() || matches!(blobs.backend, Backend::Local { .. }));
        blobs.delete_partial(&id).await.expect("deleting a missing partial upload is fine");
    }

    #[tokio::test]
    async fn a_partial_file_resumes_at_its_acknowledged_offset_and_drops_the_unacknowledged_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        resumes_at_its_acknowledged_offset(BlobStore::open(dir.path()).await.expect("open"), dir.path()).await;
    }

    #[tokio::test]
    async fn remote_pieces_resume_at_their_acknowledged_offset_and_drop_the_unacknowledged_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        resumes_at_its_acknowledged_offset(BlobStore::in_memory(dir.path()).await.expect("open"), dir.path()).await;
    }

    #[tokio::test]
    async fn remote_pieces_that_do_not_add_up_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::in_memory(dir.path()).await.expect("open");
        let id = TransferId::generate();
        let mut partial = blobs.append_partial(&id, 0).await.expect("create");
        partial.write(b"0123456789").await.expect("write");
        partial.sync().await.expect("sync");
        drop(partial);
        let refused = blobs.append_partial(&id, 20).await.expect_err("ten bytes are held, not twenty");
        assert_eq!(
            refused.to_string(),
            format!("blob storage failed: the pieces of upload `{id}` do not hold exactly its first 20 bytes")
        );
        blobs.delete_partial(&id).await.expect("delete");
        assert!(blobs.pieces(&id).await.expect("list").is_empty());
    }
}
