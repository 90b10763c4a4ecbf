//! Resumable uploads: the server side of tus 1.0 (core protocol, `creation` and `termination`
//! extensions), so a dropped connection resumes from the last byte the gateway holds durably.
//!
//! `POST /api/v1/uploads` runs the one-shot upload's request checks before any byte is accepted;
//! `PATCH` appends to a partial file under `DATA/uploads` and checks the age header as soon as it
//! is complete; the `PATCH` that reaches `Upload-Length` inspects the whole file from disk and
//! commits it exactly as a one-shot upload (answering `Sealpost-Transfer: ID` and
//! `Sealpost-Status: available|awaiting_approval`), after which `GET` shows the one-shot answer
//! with the links. An upload is visible to its sender only: to anyone
//! else it does not exist. The transfer an upload becomes takes the upload's id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tower_http::set_header::SetResponseHeaderLayer;

use super::auth::Caller;
use super::error::ApiError;
use super::transfers::{Checked, check_request, commit_upload, drain};
use crate::audit::{Event, EventKind};
use crate::blobs::{BlobError, PartialBlob};
use crate::envelope::{EnvelopeError, Inspector};
use crate::ids::{TransferId, UserId};
use crate::server::Gateway;
use crate::store::UploadRow;
use crate::upload::{self, Hashing, Received, Refusal, UploadError};

/// The only protocol version spoken.
const TUS_VERSION: &str = "1.0.0";
/// The extensions supported.
const TUS_EXTENSIONS: &str = "creation,termination";
/// The one content type `PATCH` takes.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// Bytes appended between two fsyncs (and offset updates) within one `PATCH`. Each costs a
/// flush and a database write; at 4 MiB they halved the upload rate. A crash loses at most
/// this much, which the client sends again from the durable offset.
const SYNC_EVERY: u64 = 64 << 20;
/// How long a completed upload's answer stays available to `GET`. It holds the link tokens,
/// which are never stored, so it lives in memory only.
const ANSWER_KEPT: Duration = Duration::from_secs(3600);

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const TUS_VERSION_HEADER: HeaderName = HeaderName::from_static("tus-version");
const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
const SEALPOST_TRANSFER: HeaderName = HeaderName::from_static("sealpost-transfer");

/// What the upload routes share beyond the gateway: which uploads have a `PATCH` running, what
/// the inspector and SHA-256 have seen of unfinished ones, and the answers of completed uploads.
#[derive(Debug, Default)]
struct Uploads {
    busy: Mutex<HashSet<TransferId>>,
    running: Mutex<HashMap<TransferId, Running>>,
    answers: Mutex<HashMap<TransferId, Answer>>,
}

/// The envelope inspector and SHA-256 over an upload's first `at` bytes, kept from one `PATCH`
/// to the next so that the last one completes without reading the file again. Memory only: after
/// a restart (or when the upload was not followed from its first byte) completion reads the file.
#[derive(Debug)]
struct Running {
    at: u64,
    inspector: Inspector,
    hasher: Sha256,
    since: Instant,
}

/// At most this many unfinished uploads are followed in memory (the rest are read at the end).
const RUNNING_MAX: usize = 1024;
/// An unfinished upload's state is dropped after this long without a request.
const RUNNING_KEPT: Duration = Duration::from_secs(24 * 3600);

/// A completed upload's answer, for its sender.
#[derive(Debug)]
struct Answer {
    sender: UserId,
    until: Instant,
    body: Value,
}

/// Marks an upload busy while it lives.
#[derive(Debug)]
struct Busy {
    uploads: Arc<Uploads>,
    id: TransferId,
}

impl Uploads {
    /// Marks `id` busy, or answers 423 when another request holds it.
    fn lock(self: &Arc<Self>, id: &TransferId) -> Result<Busy, ApiError> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if !busy.insert(id.clone()) {
            return Err(ApiError::new(
                StatusCode::LOCKED,
                "upload_busy",
                "another request is writing to this upload: wait for it to end, then resume from `HEAD`",
            ));
        }
        Ok(Busy { uploads: self.clone(), id: id.clone() })
    }

    /// Takes what was seen of `id`, if it covers exactly its first `at` bytes.
    fn take_running(&self, id: &TransferId, at: u64) -> Option<Running> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.remove(id).filter(|r| r.at == at)
    }

    fn keep_running(&self, id: TransferId, state: Running) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|_, r| r.since.elapsed() < RUNNING_KEPT);
        if running.len() < RUNNING_MAX {
            running.insert(id, state);
        }
    }

    fn keep_answer(&self, id: TransferId, sender: UserId, body: Value) {
        let now = Instant::now();
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.retain(|_, a| a.until > now);
        answers.insert(id, Answer { sender, until: now + ANSWER_KEPT, body });
    }

    fn answer(&self, id: &TransferId, sender: &UserId) -> Option<Value> {
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.get(id).filter(|a| &a.sender == sender && a.until > Instant::now()).map(|a| a.body.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.uploads.busy.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// The upload routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/uploads", post(create).options(options))
        .route("/api/v1/uploads/{id}", get(show).head(head).patch(patch).delete(terminate).options(options))
        .layer(Extension(Arc::new(Uploads::default())))
        .layer(middleware::from_fn(require_version))
        .layer(SetResponseHeaderLayer::overriding(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION)))
}

/// 412 for a request that does not speak tus 1.0.0 (discovery with `OPTIONS` excepted).
async fn require_version(request: Request, next: Next) -> Response {
    let speaks = request.headers().get(&TUS_RESUMABLE).is_some_and(|v| v.as_bytes() == TUS_VERSION.as_bytes());
    if speaks || request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let error = ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "tus_version_unsupported",
        "this endpoint speaks the tus resumable-upload protocol: send `Tus-Resumable: 1.0.0`",
    );
    ([(TUS_VERSION_HEADER, HeaderValue::from_static(TUS_VERSION))], error).into_response()
}

/// Discovery: version, extensions, largest upload.
async fn options(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [
            (TUS_VERSION_HEADER, TUS_VERSION.to_owned()),
            (TUS_EXTENSION, TUS_EXTENSIONS.to_owned()),
            (TUS_MAX_SIZE, gw.rules.max_size.to_string()),
        ],
    )
}

/// A numeric header, or 400 naming it.
fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let parsed = value.to_str().ok().and_then(|v| v.parse::<u64>().ok());
    parsed.map(Some).ok_or_else(|| ApiError::bad_request(format!("`{name}` must be a number of bytes")))
}

/// Turns `Upload-Metadata` (`key base64,key base64`) into the one-shot upload's query string.
/// `to` holds one or more space-separated `ORG/NAME`. Other keys (tus clients send `filename`)
/// are ignored and never stored: the gateway keeps no file names.
fn metadata_query(headers: &HeaderMap) -> Result<String, ApiError> {
    let raw = headers.get(&UPLOAD_METADATA).map(|v| v.to_str()).transpose();
    let raw = raw.map_err(|_| ApiError::bad_request("`Upload-Metadata` must be ASCII"))?.unwrap_or_default();
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut seen = HashSet::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        if !seen.insert(key) {
            return Err(ApiError::bad_request(format!("`Upload-Metadata` names `{key}` twice: name each key once")));
        }
        let value = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| ApiError::bad_request(format!("the `{key}` metadata must be base64 of UTF-8 text")))?;
        match key {
            "to" => {
                for user in value.split_whitespace() {
                    query.append_pair("to", user);
                }
            }
            "expires" | "classification" => {
                query.append_pair(key, &value);
            }
            _ => {}
        }
    }
    if !seen.contains("to") {
        return Err(ApiError::bad_request(
            "name the recipients in `Upload-Metadata`: `to` and the base64 of `ORG/NAME` (several separated by spaces)",
        ));
    }
    Ok(query.finish())
}

fn upload_id(s: &str) -> Result<TransferId, ApiError> {
    TransferId::parse(s).ok_or_else(|| unknown_upload(s))
}

fn unknown_upload(id: &str) -> ApiError {
    ApiError::not_found(format!("there is no upload `{id}`: create one with `POST /api/v1/uploads`"))
}

/// The caller's own upload, unexpired or completed; anyone else's is unknown.
async fn owned_upload(gw: &Gateway, caller: &Caller, id: &str) -> Result<UploadRow, ApiError> {
    let id = upload_id(id)?;
    match gw.store.upload(&id).await? {
        Some(row) if row.sender == caller.0.id && (row.completed || row.expires_at > gw.clock.now()) => Ok(row),
        _ => Err(unknown_upload(id.as_str())),
    }
}

/// The 409 for an upload that became a transfer already.
fn already_complete(row: &UploadRow) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "upload_complete",
        format!("upload `{}` is complete: `GET` it for the transfer and its links", row.id),
    )
}

/// Deletes a refused or broken upload, file and record; failures go to the log (the sweeper
/// deletes what is left when the resume window ends).
async fn discard(gw: &Gateway, id: &TransferId) {
    if let Err(e) = gw.blobs.delete_partial(id).await {
        tracing::warn!(error = %e, upload = %id, "could not delete a partial upload; the sweeper will");
    }
    if let Err(e) = gw.store.delete_upload(id, None, gw.clock.now()).await {
        tracing::warn!(error = %e, upload = %id, "could not delete an upload record; the sweeper will");
    }
}

/// tus creation: checks the addressing as a one-shot upload does, then records the upload.
async fn create(State(gw): State<Arc<Gateway>>, caller: Caller, headers: HeaderMap) -> Result<Response, ApiError> {
    if headers.contains_key(&UPLOAD_DEFER_LENGTH) {
        return Err(ApiError::bad_request("deferred lengths are not supported: send `Upload-Length`"));
    }
    let length = number(&headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| ApiError::bad_request("send `Upload-Length`: the size of the whole file in bytes"))?;
    let request = metadata_query(&headers)?;
    let checked = check_request(&gw, &caller, Some(&request), Some(length)).await?;
    if length == 0 {
        return Err(checked.refuse(&gw, &caller, Refusal::Envelope(EnvelopeError::Empty), 0).await);
    }
    let now = gw.clock.now();
    let row = UploadRow {
        id: TransferId::generate(),
        sender: caller.0.id.clone(),
        length,
        received: 0,
        header_checked: false,
        request,
        expires_at: now + gw.config.upload_resume_window,
        completed: false,
    };
    let event = Event::new(EventKind::UploadStarted).actor(&caller.0.id).transfer(&row.id).field("length", length);
    gw.store.create_upload(&row, &event, now).await?;
    let location = format!("/api/v1/uploads/{}", row.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// tus `HEAD`: how much of the upload the gateway holds.
async fn head(State(gw): State<Arc<Gateway>>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let row = owned_upload(&gw, &caller, &id).await?;
    let mut response = (
        StatusCode::OK,
        [
            (UPLOAD_OFFSET, row.received.to_string()),
            (UPLOAD_LENGTH, row.length.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response();
    if row.completed {
        response.headers_mut().insert(SEALPOST_TRANSFER, HeaderValue::from_str(row.id.as_str()).map_err(internal)?);
    }
    Ok(response)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}

/// The answer of a completed upload (the one-shot upload's answer, with the links, for an hour
/// after completion in this process; the transfer's record after that), or its progress.
async fn show(
    State(gw): State<Arc<Gateway>>,
    Extension(uploads): Extension<Arc<Uploads>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = owned_upload(&gw, &caller, &id).await?;
    if !row.completed {
        return Ok(Json(json!({
            "id": row.id.as_str(),
            "status": "uploading",
            "offset": row.received,
            "length": row.length,
        })));
    }
    if let Some(answer) = uploads.answer(&row.id, &caller.0.id) {
        return Ok(Json(answer));
    }
    Ok(Json(json!(gw.store.transfer(&row.id, &caller.0.id, false).await?)))
}

/// tus termination: deletes an unfinished upload.
async fn terminate(
    State(gw): State<Arc<Gateway>>,
    Extension(uploads): Extension<Arc<Uploads>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = owned_upload(&gw, &caller, &id).await?;
    if row.completed {
        return Err(already_complete(&row));
    }
    let _busy = uploads.lock(&row.id)?;
    gw.blobs.delete_partial(&row.id).await?;
    let event = Event::new(EventKind::UploadAborted)
        .actor(&caller.0.id)
        .transfer(&row.id)
        .code("terminated")
        .field("size", row.received);
    gw.store.delete_upload(&row.id, Some(&event), gw.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// tus `PATCH`: appends the body at `Upload-Offset`. The work runs in its own task, so a client
/// that goes away mid-body still leaves every byte that arrived durable and counted.
async fn patch(
    State(gw): State<Arc<Gateway>>,
    Extension(uploads): Extension<Arc<Uploads>>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if headers.get(header::CONTENT_TYPE).is_none_or(|v| v.as_bytes() != OFFSET_OCTET_STREAM.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the bytes with `Content-Type: {OFFSET_OCTET_STREAM}`"),
        ));
    }
    let offset = number(&headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| ApiError::bad_request("send `Upload-Offset`: where these bytes start (`HEAD` tells)"))?;
    let row = owned_upload(&gw, &caller, &id).await?;
    if row.completed {
        return Err(already_complete(&row));
    }
    let busy = uploads.lock(&row.id)?;
    // Read again under the lock: a request that just ended may have moved the offset.
    let row = gw.store.upload(&row.id).await?.ok_or_else(|| unknown_upload(&id))?;
    if offset != row.received {
        let error = ApiError::new(
            StatusCode::CONFLICT,
            "offset_mismatch",
            format!(
                "the upload holds {} bytes, not {offset}: resume at the `Upload-Offset` `HEAD` gives",
                row.received
            ),
        );
        return Ok(([(UPLOAD_OFFSET, row.received.to_string())], error).into_response());
    }
    let declared = number(&headers, &header::CONTENT_LENGTH)?;
    if declared.is_some_and(|len| offset.saturating_add(len) > row.length) {
        return Err(too_long(&row));
    }
    let task = tokio::spawn(append(gw, uploads, busy, caller, row, body));
    task.await.map_err(internal)?
}

fn too_long(row: &UploadRow) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_length_exceeded",
        format!("the upload was declared as {} bytes: send no more than that", row.length),
    )
}

/// How a `PATCH` body ended.
enum BodyEnd {
    /// Every byte arrived.
    Complete,
    /// The body broke off.
    Broken,
    /// It went past `Upload-Length`.
    TooLong,
}

/// Appends the body, checking the age header once it is complete; syncs and records the offset
/// as it goes and at the end, whatever the end; completes the upload at its last byte.
async fn append(
    gw: Arc<Gateway>,
    uploads: Arc<Uploads>,
    _busy: Busy,
    caller: Caller,
    row: UploadRow,
    body: Body,
) -> Result<Response, ApiError> {
    let mut header = if row.header_checked { None } else { Some(header_check(&gw, &caller, &row).await?) };
    let mut file = gw.blobs.append_partial(&row.id, row.received).await?;
    let mut stream = body.into_data_stream();
    let (mut received, mut synced) = (row.received, row.received);
    // The whole envelope and the digest, followed as the bytes arrive, when this upload has
    // been followed from its first byte (hashing on a thread of its own).
    let mut live = match uploads.take_running(&row.id, row.received) {
        Some(r) => Some((r.inspector, Hashing::resume(r.hasher, r.at))),
        None if row.received == 0 => Some((Inspector::new(gw.rules.envelope.clone()), Hashing::new())),
        None => None,
    };
    let end = loop {
        let chunk = match stream.next().await {
            None => break BodyEnd::Complete,
            Some(Err(_)) => break BodyEnd::Broken,
            Some(Ok(chunk)) => chunk,
        };
        if received + chunk.len() as u64 > row.length {
            break BodyEnd::TooLong;
        }
        if let Some((checked, inspector)) = header.as_mut() {
            let checked_header = match inspector.update(&chunk) {
                Err(e) => Err(Refusal::Envelope(e)),
                Ok(()) => inspector.header().map_or(Ok(false), |h| {
                    upload::check_header(h, &checked.expected_types(), &gw.rules).map(|()| true)
                }),
            };
            match checked_header {
                Ok(false) => {}
                Ok(true) => header = None,
                Err(refusal) => {
                    let answer = checked.refuse(&gw, &caller, refusal, received + chunk.len() as u64).await;
                    drop(file);
                    discard(&gw, &row.id).await;
                    drain(&mut stream).await;
                    return Err(answer);
                }
            }
        }
        file.write(&chunk).await?;
        received += chunk.len() as u64;
        if let Some((inspector, hashing)) = live.as_mut() {
            if inspector.update(&chunk).is_ok() {
                hashing.update(&chunk).await;
            } else {
                // A refusal: completion reads the file and says so the usual way.
                live = None;
            }
        }
        if received - synced >= SYNC_EVERY {
            synced = save(&gw, &row, &mut file, header.is_none()).await?;
        }
    };
    let received = save(&gw, &row, &mut file, header.is_none()).await?;
    drop(file);
    let seen = match live {
        Some((inspector, hashing)) => match hashing.pause().await {
            Ok((hasher, hashed)) if hashed == received => {
                Some(Running { at: received, inspector, hasher, since: Instant::now() })
            }
            _ => None,
        },
        None => None,
    };
    let seen = match seen {
        // Not finished: keep it for the next request.
        Some(seen) if received < row.length => {
            uploads.keep_running(row.id.clone(), seen);
            None
        }
        seen => seen,
    };
    match end {
        BodyEnd::Broken => Err(broken(received)),
        BodyEnd::TooLong => Err(too_long(&row)),
        BodyEnd::Complete if received == row.length => complete(&gw, &uploads, &caller, &row, seen).await,
        BodyEnd::Complete => Ok((StatusCode::NO_CONTENT, [(UPLOAD_OFFSET, received.to_string())]).into_response()),
    }
}

fn broken(received: u64) -> ApiError {
    ApiError::bad_request(format!("the request body broke off; the upload holds {received} bytes: resume from there"))
}

/// Makes what arrived durable and records it; returns the durable offset.
async fn save(gw: &Gateway, row: &UploadRow, file: &mut PartialBlob, header_checked: bool) -> Result<u64, ApiError> {
    let received = file.sync().await?;
    gw.store.set_upload_received(&row.id, received, header_checked).await?;
    Ok(received)
}

/// The creation checks again, as of now (keys and policies may have changed since); a refusal
/// ends the upload.
async fn recheck(gw: &Gateway, caller: &Caller, row: &UploadRow) -> Result<Checked, ApiError> {
    let checked = check_request(gw, caller, Some(&row.request), Some(row.length)).await;
    if let Err(e) = &checked
        && e.is_client_error()
    {
        discard(gw, &row.id).await;
    }
    checked
}

/// Until the header has passed: the request checks again (for the keys the header must match)
/// and an inspector that has read what is on disk already. A refused request ends the upload.
async fn header_check(gw: &Gateway, caller: &Caller, row: &UploadRow) -> Result<(Checked, Inspector), ApiError> {
    let checked = recheck(gw, caller, row).await?;
    let mut inspector = Inspector::new(gw.rules.envelope.clone());
    if row.received > 0 {
        let mut head = Vec::new();
        gw.blobs
            .read_partial(&row.id)
            .await?
            .take(row.received)
            .read_to_end(&mut head)
            .await
            .map_err(BlobError::from)?;
        // These bytes passed the inspector before they were written.
        inspector.update(&head).map_err(internal)?;
    }
    Ok((checked, inspector))
}

/// The last byte arrived: the request checks, the whole envelope from disk, then the one-shot
/// upload's commit. A refusal deletes the upload.
async fn complete(
    gw: &Gateway,
    uploads: &Uploads,
    caller: &Caller,
    row: &UploadRow,
    seen: Option<Running>,
) -> Result<Response, ApiError> {
    let checked = recheck(gw, caller, row).await?;
    let inspected = match seen.filter(|s| s.at == row.length) {
        Some(seen) => judge(gw, &row.id, &checked.expected_types(), seen).await,
        None => inspect(gw, &row.id, &checked.expected_types()).await,
    };
    let received = match inspected {
        Ok(received) => received,
        Err(UploadError::Refused(refusal)) => {
            let answer = checked.refuse(gw, caller, refusal, row.length).await;
            discard(gw, &row.id).await;
            return Err(answer);
        }
        Err(UploadError::Blob(e)) => return Err(e.into()),
        Err(e) => return Err(internal(e)),
    };
    let (status, answer) = match commit_upload(gw, row.id.clone(), checked, received).await {
        Ok(done) => done,
        Err(e) => {
            // The staged bytes are gone with the failed commit; so is the upload.
            discard(gw, &row.id).await;
            return Err(e);
        }
    };
    if let Err(e) = gw.store.complete_upload(&row.id, gw.clock.now()).await {
        tracing::error!(error = %e, upload = %row.id, "the transfer is stored but its upload is not marked complete");
    }
    let held = status == StatusCode::ACCEPTED;
    uploads.keep_answer(row.id.clone(), caller.0.id.clone(), json!(answer));
    let headers = [
        (UPLOAD_OFFSET, row.length.to_string()),
        (SEALPOST_TRANSFER, row.id.to_string()),
        (HeaderName::from_static("sealpost-status"), (if held { "awaiting_approval" } else { "available" }).to_owned()),
    ];
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The envelope and digest followed while the bytes arrived: finishes them, checks the header
/// against the recipients' keys, and stages the file for commit (as [`inspect`] does, without
/// reading the file again).
async fn judge(gw: &Gateway, id: &TransferId, expected_types: &[&str], seen: Running) -> Result<Received, UploadError> {
    let envelope = seen.inspector.finish().map_err(|e| UploadError::Refused(Refusal::Envelope(e)))?;
    upload::check_header(&envelope.header, expected_types, &gw.rules).map_err(UploadError::Refused)?;
    let staged = gw.blobs.stage_partial(id).await?;
    let digest = format!("sha256:{}", hex::encode(seen.hasher.finalize()));
    Ok(Received { staged, size: seen.at, digest, envelope })
}

/// Streams the partial file from disk through the envelope inspector and SHA-256, checks the
/// header against the recipients' keys, and stages the file for commit.
async fn inspect(gw: &Gateway, id: &TransferId, expected_types: &[&str]) -> Result<Received, UploadError> {
    let mut pieces = gw.blobs.read_partial_pieces(id).await?;
    let mut inspector = Inspector::new(gw.rules.envelope.clone());
    // Hashed on a thread of its own while this task inspects.
    let mut hasher = upload::Hashing::new();
    let mut size: u64 = 0;
    while let Some(piece) = pieces.next().await {
        let piece = piece?;
        hasher.update(&piece).await;
        inspector.update(&piece).map_err(|e| UploadError::Refused(Refusal::Envelope(e)))?;
        size += piece.len() as u64;
    }
    let envelope = inspector.finish().map_err(|e| UploadError::Refused(Refusal::Envelope(e)))?;
    upload::check_header(&envelope.header, expected_types, &gw.rules).map_err(UploadError::Refused)?;
    let digest = hasher.finish().await.map_err(|e| UploadError::Blob(BlobError::Io(e)))?;
    let staged = gw.blobs.stage_partial(id).await?;
    Ok(Received { staged, size, digest: format!("sha256:{}", hex::encode(digest)), envelope })
}
