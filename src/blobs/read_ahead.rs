//! Reading a blob back as a stream: pieces read on the blocking pool one ahead of the one being
//! sent, sized so that all running downloads together stay within a memory budget.

use std::io;
use std::io::{Read as _, Seek as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt as _};

use super::BlobError;

/// Bytes per read of a download: large enough that the per-read cost (a blocking-pool task,
/// a wake-up, a socket write) is small next to the copy, small enough that a download holds
/// little memory (one piece being read, one being sent).
const READ_CHUNK: usize = 1 << 20;
/// Smallest piece of a download, however many run at once.
const MIN_READ_CHUNK: usize = 128 << 10;
/// Memory that all running downloads' pieces may hold together, as long as each piece is
/// at least [`MIN_READ_CHUNK`]: up to 32 downloads read full pieces.
const DOWNLOAD_BUDGET: usize = 64 << 20;

/// Reads `file` from `start` to `end` in pieces of up to [`READ_CHUNK`], each read on the
/// blocking pool while the one before it is being sent: one piece read ahead, never more,
/// so memory stays flat whatever the file's size and however slow the reader. No blocking
/// thread is held between pieces, so many slow downloads do not starve the pool. The pieces
/// shrink (down to [`MIN_READ_CHUNK`]) when many downloads run at once, so that together
/// they hold about [`DOWNLOAD_BUDGET`].
pub(super) fn read_ahead(
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
    use super::*;
    use crate::blobs::BlobStore;
    use crate::ids::TransferId;

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
}
