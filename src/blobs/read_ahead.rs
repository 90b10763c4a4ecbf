//! Reading a blob back as a stream: pieces read one ahead of the one being sent, sized so that
//! all running downloads together stay within a memory budget. A local file's pieces are read
//! on the blocking pool; a remote object's are ranged `GET`s, each a short request of its own
//! (so a slow reader never holds a store connection open for long, and a failed piece is
//! retried by itself).

use std::io;
use std::io::{Read as _, Seek as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};

use super::BlobError;

/// Bytes per read of a download: large enough that the per-read cost (a blocking-pool task,
/// a wake-up, a socket write) is small next to the copy, small enough that a download holds
/// little memory (one piece being read, one being sent).
const READ_CHUNK: usize = 1 << 20;
/// Bytes per ranged `GET` of a remote object once a download is under way: each request costs
/// a round trip, so pieces are larger than a file's. The first piece is [`READ_CHUNK`] (a
/// client often asks for the age header alone first).
const REMOTE_READ_CHUNK: usize = 8 << 20;
/// Smallest piece of a download, however many run at once.
const MIN_READ_CHUNK: usize = 128 << 10;
/// Memory that all running downloads' pieces may hold together, as long as each piece is
/// at least [`MIN_READ_CHUNK`]: up to 32 downloads read full pieces.
const DOWNLOAD_BUDGET: usize = 64 << 20;

/// Where a blob's pieces come from.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// A local file (read with a shared cursor: a stream's pieces are read one after the other).
    File(Arc<std::fs::File>),
    /// An object in a store, read by ranges.
    Object(Arc<dyn ObjectStore>, ObjectPath),
}

impl Source {
    /// The largest piece read from this source.
    fn max_piece(&self, first: bool) -> usize {
        match self {
            Self::Object(..) if !first => REMOTE_READ_CHUNK,
            _ => READ_CHUNK,
        }
    }

    /// Starts reading `len` bytes at `at`: on the blocking pool for a file, as a task for an
    /// object, so that it goes on while the piece before it is being sent.
    fn read(&self, at: u64, len: usize) -> tokio::task::JoinHandle<Result<Bytes, BlobError>> {
        match self.clone() {
            Self::File(file) => tokio::task::spawn_blocking(move || {
                // Read into spare capacity: no zeroing of a buffer the read overwrites anyway.
                let mut buf = Vec::with_capacity(len);
                let mut reader = &*file;
                reader.seek(io::SeekFrom::Start(at))?;
                io::Read::take(reader, len as u64).read_to_end(&mut buf)?;
                if buf.len() < len {
                    return Err(
                        io::Error::new(io::ErrorKind::UnexpectedEof, "the blob is shorter than its listing").into()
                    );
                }
                Ok(Bytes::from(buf))
            }),
            Self::Object(store, path) => tokio::spawn(async move {
                let piece = store.get_range(&path, at..at + len as u64).await?;
                if piece.len() < len {
                    return Err(
                        io::Error::new(io::ErrorKind::UnexpectedEof, "the blob is shorter than its listing").into()
                    );
                }
                Ok(piece)
            }),
        }
    }
}

/// Reads `source` from `start` to `end` in pieces of up to [`READ_CHUNK`] (a remote object's
/// up to [`REMOTE_READ_CHUNK`]), each read while the one before it is being sent: one piece
/// read ahead, never more, so memory stays flat whatever the blob's size and however slow the
/// reader. No thread or task is held between pieces, so many slow downloads do not starve the
/// pool. The pieces shrink (down to [`MIN_READ_CHUNK`]) when many downloads run at once, so
/// that together they hold about [`DOWNLOAD_BUDGET`].
pub(super) fn read_ahead(
    source: Source,
    start: u64,
    end: u64,
    downloads: &Arc<AtomicUsize>,
) -> BoxStream<'static, Result<Bytes, BlobError>> {
    let running = Running::start(downloads);
    let piece = move |source: &Source, at: u64, running: &Running, first: bool| {
        let len = usize::try_from(end - at).map_or(usize::MAX, |left| left);
        source.read(at, len.min(running.piece(source.max_piece(first))))
    };
    let first = (start < end).then(|| piece(&source, start, &running, true));
    futures_util::stream::unfold((first, start, running), move |(pending, at, running)| {
        let source = source.clone();
        async move {
            let read = match pending?.await {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => return Some((Err(e), (None, end, running))),
                Err(e) => return Some((Err(BlobError::Io(io::Error::other(e))), (None, end, running))),
            };
            let at = at + read.len() as u64;
            let next = (at < end).then(|| piece(&source, at, &running, false));
            Some((Ok(read), (next, at, running)))
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

    /// The piece size for the next read, at most `max`: the budget shared by the running
    /// downloads, each holding about two pieces (one being sent, one read ahead).
    fn piece(&self, max: usize) -> usize {
        let running = self.0.load(Ordering::Relaxed).max(1);
        (DOWNLOAD_BUDGET / (2 * running)).clamp(MIN_READ_CHUNK, max)
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
