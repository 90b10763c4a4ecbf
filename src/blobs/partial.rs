//! Resumable uploads' partial files: they grow in `DATA/uploads`, which start-up leaves alone,
//! so a partial upload outlives a restart. Each append starts at the last acknowledged offset
//! and cuts off anything written past it; a complete upload is taken as a staged blob and
//! committed like any other.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};

use super::read_ahead::{Source, read_ahead};
use super::{BlobError, BlobStore, StagedBlob};
use crate::ids::TransferId;

/// Size of a resumable upload's write buffer: large writes keep the disk streaming.
const WRITE_BUFFER: usize = 1 << 20;

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

impl BlobStore {
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
        Ok(read_ahead(Source::File(Arc::new(file.into_std().await)), 0, len, &self.downloads))
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
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;

    use super::*;

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
}
