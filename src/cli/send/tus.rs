//! The resumable upload's client side (tus 1.0): create, `PATCH` in chunks streamed from the
//! sealed file, `HEAD` after a broken request and continue from the gateway's offset (a few
//! tries with backoff), `GET` the answer at the end. The upload's URL is saved in the send's
//! [`Slot`] as soon as it exists, so a later run continues where a killed one stopped.

use std::io::Seek as _;
use std::time::Duration;

use crate::wire::transfers::UploadLookup;
use futures_util::TryStreamExt as _;
use indicatif::ProgressBar;

use super::super::Failure;
use super::super::client::api_failure;
use super::Http;
use crate::client::resume::{Slot, State};

/// Bytes per `PATCH` unless `SEALPOST_TUS_CHUNK` says otherwise. Each `PATCH` ends with an
/// fsync and a database write on the gateway, so small ones cost throughput; large ones cost no
/// resumability, because the gateway keeps (and syncs) whatever part of a broken `PATCH` arrived.
const CHUNK: u64 = 64 << 20;
/// The environment variable that sets the bytes per `PATCH` (tests use small chunks).
const CHUNK_ENV: &str = "SEALPOST_TUS_CHUNK";
/// Failed requests in a row before the upload gives up (the state stays for a later run).
const RETRIES: u32 = 6;
const TUS_RESUMABLE: &str = "Tus-Resumable";
const TUS_VERSION: &str = "1.0.0";

/// The bytes per `PATCH`.
fn chunk_size() -> u64 {
    std::env::var(CHUNK_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()).filter(|&n| n > 0).unwrap_or(CHUNK)
}

/// The pause before retry `attempt` (1, 2, …): 250 ms doubling, at most 4 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.saturating_sub(1).min(4)))
}

/// How a tus request ended, when it did not succeed.
#[derive(Debug)]
enum TusError {
    /// Worth another try after a pause: a broken connection, a busy or failing gateway.
    Retry(Failure),
    /// The gateway refused the upload: its state is useless now.
    Refused(Failure),
    /// Retrying will not help, but the state stays (such as a rejected token).
    Fatal(Failure),
}

/// Sorts a gateway's error answer into [`TusError`].
fn tus_error(status: reqwest::StatusCode, text: &str) -> TusError {
    let failure = api_failure(status, text);
    match status.as_u16() {
        400 | 404 | 408 | 409 | 423 | 429 | 500.. => TusError::Retry(failure),
        401 => TusError::Fatal(failure),
        _ => TusError::Refused(failure),
    }
}

/// Where an upload stands on the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offset {
    /// It holds this many bytes.
    At(u64),
    /// It became a transfer.
    Complete,
    /// The gateway does not know it (expired, or refused earlier).
    Gone,
}

/// The resumable upload (tus 1.0): create, `PATCH` in chunks streamed from the sealed file,
/// `HEAD` after a broken request, `GET` the answer at the end. The upload's URL is saved in
/// `slot` as soon as it exists, so a later run continues from the gateway's offset.
#[derive(Debug)]
pub(super) struct Tus<'a> {
    http: &'a Http,
    slot: &'a Slot,
    bar: &'a ProgressBar,
    chunk: u64,
}

impl<'a> Tus<'a> {
    pub(super) fn new(http: &'a Http, slot: &'a Slot, bar: &'a ProgressBar) -> Self {
        Self { http, slot, bar, chunk: chunk_size() }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .http
            .request(method, self.http.url(path))
            .bearer_auth(&self.http.token)
            .header(TUS_RESUMABLE, TUS_VERSION)
    }

    /// Creates the upload; returns its path.
    async fn create(&self, size: u64, metadata: &str) -> Result<String, TusError> {
        let response = self
            .request(reqwest::Method::POST, "/api/v1/uploads")
            .header("Upload-Length", size)
            .header("Upload-Metadata", metadata)
            .send()
            .await
            .map_err(|e| TusError::Retry(self.http.unreachable(&e)))?;
        let status = response.status();
        let location =
            response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.map_err(|e| TusError::Retry(self.http.unreachable(&e)))?;
        if !status.is_success() {
            return Err(match tus_error(status, &text) {
                // A refused creation is final: the same request gets the same answer.
                TusError::Retry(f) if status.as_u16() == 400 || status.as_u16() == 404 => TusError::Refused(f),
                other => other,
            });
        }
        let location = location
            .ok_or_else(|| TusError::Fatal(Failure::new("the gateway created an upload but did not say where")))?;
        // The gateway answers with a path; accept an absolute URL on the same gateway too.
        Ok(location.strip_prefix(&self.http.url("")).map_or_else(|| location.clone(), str::to_owned))
    }

    /// How much of the upload at `path` the gateway holds.
    async fn head(&self, path: &str) -> Result<Offset, TusError> {
        let response = self
            .request(reqwest::Method::HEAD, path)
            .send()
            .await
            .map_err(|e| TusError::Retry(self.http.unreachable(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(Offset::Gone);
        }
        if !status.is_success() {
            return Err(tus_error(status, ""));
        }
        if response.headers().contains_key("sealpost-transfer") {
            return Ok(Offset::Complete);
        }
        let offset = response.headers().get("upload-offset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        offset.map(Offset::At).ok_or_else(|| TusError::Retry(Failure::new("the gateway's `HEAD` answer has no offset")))
    }

    /// Sends up to one chunk from `offset`; returns where the upload stands after it.
    async fn patch(&self, path: &str, offset: u64, size: u64) -> Result<Offset, TusError> {
        let len = self.chunk.min(size - offset);
        let cipher = self.slot.ciphertext();
        let mut file = std::fs::File::open(&cipher)
            .map_err(|e| TusError::Fatal(Failure::new(format!("cannot read `{}`: {e}", cipher.display()))))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| TusError::Fatal(Failure::new(format!("cannot read `{}`: {e}", cipher.display()))))?;
        let bar = self.bar.clone();
        let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), len);
        // 1 MiB reads: each is a hop to the blocking pool, so small ones cost more than the copy.
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, 1 << 20)
            .inspect_ok(move |chunk| bar.inc(chunk.len() as u64));
        let response = self
            .request(reqwest::Method::PATCH, path)
            .header(reqwest::header::CONTENT_TYPE, "application/offset+octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .header("Upload-Offset", offset)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| TusError::Retry(self.http.unreachable(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| TusError::Retry(self.http.unreachable(&e)))?;
        if !status.is_success() {
            if status == reqwest::StatusCode::CONFLICT && text.contains("\"upload_complete\"") {
                return Ok(Offset::Complete);
            }
            return Err(tus_error(status, &text));
        }
        if headers.contains_key("sealpost-transfer") {
            return Ok(Offset::Complete);
        }
        let at = headers.get("upload-offset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        at.map(Offset::At).ok_or_else(|| TusError::Retry(Failure::new("the gateway's `PATCH` answer has no offset")))
    }

    /// The completed upload's answer (the transfer, its links and receipt).
    async fn answer(&self, path: &str) -> Result<UploadLookup, TusError> {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .map_err(|e| TusError::Retry(self.http.unreachable(&e)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| TusError::Retry(self.http.unreachable(&e)))?;
        if !status.is_success() {
            return Err(tus_error(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            TusError::Fatal(Failure::new(format!("the gateway sent an answer this client does not understand: {e}")))
        })
    }

    /// Uploads the sealed ciphertext described by `state`, resuming its saved upload if the
    /// gateway still holds it; deletes the saved state once the gateway completed or refused it.
    pub(super) async fn upload(&self, state: &mut State, metadata: &str) -> Result<UploadLookup, Failure> {
        let result = self.run(state, metadata).await;
        match &result {
            Ok(_) | Err(TusError::Refused(_)) => {
                if let Err(e) = self.slot.remove() {
                    eprintln!("sealpost: warning: {e}");
                }
            }
            Err(_) => {}
        }
        result.map_err(|e| match e {
            TusError::Refused(f) | TusError::Fatal(f) => f,
            TusError::Retry(f) => {
                let lead = f.hint.clone().map_or_else(String::new, |h| format!("{h}; "));
                f.hint(format!("{lead}the upload can resume: run the same command again (or add --resume)"))
            }
        })
    }

    async fn run(&self, state: &mut State, metadata: &str) -> Result<UploadLookup, TusError> {
        let mut failures = 0u32;
        let mut created = false;
        loop {
            let path = match state.upload.clone() {
                Some(path) => path,
                None => {
                    if created {
                        return Err(TusError::Fatal(Failure::new("the gateway lost the upload it just created")));
                    }
                    let path = match self.create(state.size, metadata).await {
                        Ok(path) => path,
                        Err(e) => {
                            tokio::time::sleep(retry(e, &mut failures)?).await;
                            continue;
                        }
                    };
                    created = true;
                    state.upload = Some(path.clone());
                    self.slot.save(state).map_err(|e| TusError::Fatal(Failure::new(e.to_string())))?;
                    path
                }
            };
            let mut offset = match self.head(&path).await {
                Ok(Offset::At(offset)) => offset,
                Ok(Offset::Complete) => return self.finish(&path, &mut failures).await,
                Ok(Offset::Gone) => {
                    state.upload = None;
                    continue;
                }
                Err(e) => {
                    tokio::time::sleep(retry(e, &mut failures)?).await;
                    continue;
                }
            };
            self.bar.set_position(offset);
            let ended = loop {
                if offset >= state.size {
                    // Every byte is there, the last request is still committing it: ask again.
                    break Err(TusError::Retry(Failure::new("the gateway is still completing the upload")));
                }
                match self.patch(&path, offset, state.size).await {
                    Ok(Offset::At(at)) => {
                        offset = at;
                        self.bar.set_position(at);
                        failures = 0;
                    }
                    Ok(Offset::Complete) => break Ok(()),
                    Ok(Offset::Gone) => break Err(TusError::Retry(Failure::new("the upload is gone"))),
                    Err(e) => break Err(e),
                }
            };
            match ended {
                Ok(()) => return self.finish(&path, &mut failures).await,
                Err(e) => tokio::time::sleep(retry(e, &mut failures)?).await,
            }
        }
    }

    /// Fetches the answer of the completed upload at `path`, retrying a broken request.
    async fn finish(&self, path: &str, failures: &mut u32) -> Result<UploadLookup, TusError> {
        self.bar.set_position(self.bar.length().unwrap_or_default());
        loop {
            match self.answer(path).await {
                Ok(answer) => return Ok(answer),
                Err(TusError::Retry(_)) if *failures < RETRIES => {
                    *failures += 1;
                    tokio::time::sleep(backoff(*failures)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The pause before the next try after `e`, or `e` when it is not worth another try.
fn retry(e: TusError, failures: &mut u32) -> Result<Duration, TusError> {
    match e {
        TusError::Retry(_) if *failures < RETRIES => {
            *failures += 1;
            Ok(backoff(*failures))
        }
        other => Err(other),
    }
}
