//! The S3 backend (AWS S3, Garage, any S3-compatible store): a bucket opened from the standard
//! `AWS_*` variables, and commit as an upload streamed from the staged file.
//!
//! A committed blob is visible under its key only once its upload completed: a single `PUT` for
//! a blob of one part, otherwise a multipart upload whose parts are read from disk as they go,
//! a few in flight at once, and which is aborted if any part fails. The staged file stays the
//! only copy until then, and is deleted after (by dropping the staged blob).

use std::net::IpAddr;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig, WriteMultipart,
};

use super::BlobError;

/// The smallest part of a multipart upload (S3 allows 5 MiB and up, the last part excepted).
/// A blob no larger goes up in a single `PUT`.
const PART_SIZE: u64 = 8 << 20;
/// At most this many parts of one upload are on their way at once (each held in memory).
const PARTS_IN_FLIGHT: usize = 2;
/// S3 takes at most 10,000 parts; parts grow past [`PART_SIZE`] to stay below that (with room).
const MAX_PARTS: u64 = 9_000;

/// Opens `bucket` with the standard variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_REGION` (Garage's default region is `garage`), `AWS_ENDPOINT_URL` (for a store other
/// than AWS), and the rest that `object_store` reads. Requests address the bucket in the path
/// (`ENDPOINT/BUCKET/KEY`), as Garage and MinIO expect, unless
/// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`. A plain `http://` endpoint is allowed on this machine
/// (a loopback address or `localhost`); elsewhere only with `AWS_ALLOW_HTTP=true`.
pub(super) fn open(bucket: &str) -> Result<AmazonS3, BlobError> {
    let builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    let allowed = builder
        .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let builder = match endpoint.as_deref().and_then(|e| e.strip_prefix("http://")) {
        Some(rest) if is_loopback(rest) => builder.with_allow_http(true),
        Some(_) if !allowed => {
            return Err(BlobError::PlainHttp { endpoint: endpoint.unwrap_or_default() });
        }
        _ => builder,
    };
    // A store that is down must turn into a quick 503, not a request hanging for minutes: a few
    // retries within seconds (object_store's default is ten within three minutes).
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(15),
    };
    builder.with_retry(retry).build().map_err(BlobError::Store)
}

/// Whether the authority of an `http://` URL (`HOST[:PORT][/…]`) is this machine.
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _port)| host),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Uploads the file at `path` (complete and closed) under `key`.
pub(super) async fn upload(store: &Arc<dyn ObjectStore>, path: &Path, key: &ObjectPath) -> Result<(), BlobError> {
    let file = Arc::new(tokio::fs::File::open(path).await?.into_std().await);
    let len = file.metadata()?.len();
    if len <= PART_SIZE {
        let bytes = read_piece(file, 0, len).await?;
        store.put(key, PutPayload::from(bytes)).await?;
        return Ok(());
    }
    let part = part_size(len);
    let chunk = usize::try_from(part).map_err(std::io::Error::other)?;
    let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(key).await?, chunk);
    let sent = async {
        let mut at = 0;
        while at < len {
            upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            let piece = read_piece(file.clone(), at, part.min(len - at)).await?;
            at += piece.len() as u64;
            upload.put(piece);
        }
        Ok::<_, BlobError>(())
    }
    .await;
    match sent {
        Ok(()) => {
            upload.finish().await?;
            Ok(())
        }
        Err(e) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(error = %abort, %key, "could not abort a failed multipart upload");
            }
            Err(e)
        }
    }
}

/// The part size for a blob of `len` bytes: [`PART_SIZE`], or larger (a whole number of MiB)
/// when that would take more than [`MAX_PARTS`] parts.
fn part_size(len: u64) -> u64 {
    let least = len.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    least.max(PART_SIZE)
}

/// Reads `len` bytes of `file` at `at`, on the blocking pool.
async fn read_piece(file: Arc<std::fs::File>, at: u64, len: u64) -> Result<Bytes, BlobError> {
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
        file.read_exact_at(&mut buf, at)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_allowed_to_this_machine_only() {
        for local in ["127.0.0.1:3900", "localhost:3900/", "[::1]:3900", "127.0.0.2", "LOCALHOST"] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["garage:3900", "10.0.0.1:3900", "[fd00::1]:3900", "localhost.example.org", "s3.example.org/x"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn parts_grow_only_when_a_blob_would_need_too_many() {
        assert_eq!(part_size(100 << 20), PART_SIZE);
        assert_eq!(part_size(MAX_PARTS * PART_SIZE), PART_SIZE);
        let huge = 200u64 << 30;
        let part = part_size(huge);
        assert!(part > PART_SIZE && part.is_multiple_of(1 << 20) && huge.div_ceil(part) <= MAX_PARTS, "{part}");
    }
}
