//! Collecting a bundle: `POST /api/v1/redeem` streams the ciphertext of a one-time link to its
//! own recipient; `GET /api/v1/inbox` lists what waits.
//!
//! The link is leased by one conditional UPDATE, used up only when the stream has yielded its
//! last byte, and released (usable again) if the stream is dropped before that. A `Range`
//! (RFC 9110 section 14) asks for part of the ciphertext: `bytes=N-` resumes a broken download,
//! `bytes=A-B` reads a slice (a client checks the age header this way before it takes the rest);
//! a range that stops short of the last byte gives the link back as soon as it has been sent
//! (`download.partial`). Such a range must end within the first [`CLOSED_RANGE_WINDOW`] bytes,
//! where the header is: otherwise a recipient could read all but the last byte again and again
//! and never use the link up.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::audit::{Event, EventKind};
use crate::blobs::BlobError;
use crate::ids::BearerSecret;
use crate::policy::{Action, PolicyRequest, Resource, principal_facts};
use crate::server::Gateway;
use crate::store::{Lease, LeaseEnd, RedeemRefusal};

/// How far into a bundle a closed range that stops short of the last byte may reach: the age
/// header is read within it (`sealpost fetch` keeps at most 1 MiB of header, its `MAX_HEADER`).
/// A closed range ending beyond it is answered 416 and the link stays as it was.
const CLOSED_RANGE_WINDOW: u64 = 1 << 20;

/// The retrieval routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/api/v1/redeem", post(redeem)).route("/api/v1/inbox", get(inbox))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    token: String,
}

fn refusal_answer(r: RedeemRefusal) -> ApiError {
    let (status, message) = match r {
        RedeemRefusal::NotFound => (
            StatusCode::NOT_FOUND,
            "no link with that token is addressed to you: check that you copied the whole link and are signed in as its recipient",
        ),
        RedeemRefusal::Used => (StatusCode::GONE, "this link has already been used: ask the sender for a new transfer"),
        RedeemRefusal::Expired => (StatusCode::GONE, "this link has expired: ask the sender to send the bundle again"),
        RedeemRefusal::Revoked => {
            (StatusCode::GONE, "the sender recalled this transfer: contact them if you still need it")
        }
        RedeemRefusal::AwaitingApproval => (
            StatusCode::CONFLICT,
            "this transfer waits for a compliance officer's approval: try again once it is approved",
        ),
        RedeemRefusal::InUse => (
            StatusCode::CONFLICT,
            "a download of this link is running: wait for it to finish or break off, then try again",
        ),
    };
    ApiError::new(status, r.code(), message)
}

/// A `Range` header's one byte range: `bytes=A-` (to the end) or `bytes=A-B` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked {
    start: u64,
    last: Option<u64>,
}

/// Parses the `Range` header (RFC 9110 section 14.1.2): none, or a single `bytes=A-` or
/// `bytes=A-B`. Several ranges, suffix ranges (`bytes=-N`) and other units are refused.
fn range_asked(headers: &HeaderMap) -> Result<Option<Asked>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else { return Ok(None) };
    let bad = || {
        ApiError::bad_request(
            "the Range header must be `bytes=A-` or `bytes=A-B` with A <= B: ask for the bytes you do not have yet",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let spec = text.strip_prefix("bytes=").ok_or_else(bad)?.trim();
    if spec.contains(',') {
        return Err(ApiError::bad_request(
            "several byte ranges in one request are not supported: ask for one range at a time",
        ));
    }
    let number = |digits: &str| -> Result<u64, ApiError> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse().map_err(|_| bad())
    };
    let (first, last) = spec.split_once('-').ok_or_else(bad)?;
    let start = number(first)?;
    let last = if last.is_empty() { None } else { Some(number(last)?) };
    if last.is_some_and(|last| last < start) {
        return Err(bad());
    }
    Ok(Some(Asked { start, last }))
}

/// The bytes a redemption serves, `start..=last` of `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Served {
    start: u64,
    last: u64,
    size: u64,
}

impl Served {
    /// Only a range that reaches the last byte uses the link up.
    fn completes(self) -> bool {
        self.last + 1 == self.size
    }

    fn len(self) -> u64 {
        self.last + 1 - self.start
    }
}

async fn redeem(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RedeemRequest>,
) -> Result<Response, ApiError> {
    if !gw.log.healthy() {
        return Err(ApiError::log_unavailable());
    }
    let asked = range_asked(&headers)?;
    let start = asked.map_or(0, |a| a.start);
    // Accept the bare token or a whole pasted link.
    let token = req.token.rsplit_once('#').map_or(req.token.as_str(), |(_, t)| t);
    let secret = BearerSecret::from_client(token);
    authorize_download(&gw, &caller, &secret).await?;
    let lease = match gw.store.lease(&caller.0.id, &secret.hash(), gw.clock.now()).await? {
        Ok(lease) => lease,
        Err(refusal) => return Err(refusal_answer(refusal)),
    };
    let guard = LeaseGuard { gw: gw.clone(), lease: Some(lease.clone()) };
    if start >= lease.size {
        let size = lease.size;
        let _ = guard.end(LeaseEnd::BrokenOff("range_not_satisfiable")).await;
        return Ok(unsatisfiable(size, format!("the bundle has {size} bytes: resume from an offset below that")));
    }
    // RFC 9110 section 14.1.2: a last position beyond the end means the end.
    let last = asked.and_then(|a| a.last).map_or(lease.size - 1, |last| last.min(lease.size - 1));
    let served = Served { start, last, size: lease.size };
    if !served.completes() && last >= CLOSED_RANGE_WINDOW {
        let size = lease.size;
        let _ = guard.end(LeaseEnd::BrokenOff("range_not_satisfiable")).await;
        return Ok(unsatisfiable(
            size,
            format!(
                "a closed range (`bytes=A-B`) that stops short of the last byte serves only the first MiB of the \
                 bundle, to read its age header (B below {CLOSED_RANGE_WINDOW}): the bundle has {size} bytes, so \
                 resume with `bytes=N-`, which uses the link up when the last byte goes"
            ),
        ));
    }
    let blob = match gw.blobs.get_from(&lease.object_key, start).await {
        Ok(blob) => blob,
        Err(e) => {
            let _ = guard.end(LeaseEnd::BrokenOff("storage_error")).await;
            return Err(e.into());
        }
    };
    let body = Body::from_stream(download_stream(blob, guard, served));
    let status = if asked.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(served.len()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if asked.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{last}/{}", lease.size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    let disposition = format!("attachment; filename=\"{}.age\"", lease.transfer);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&lease.digest) {
        h.insert("x-sealpost-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(lease.transfer.as_str()) {
        h.insert("x-sealpost-transfer", v);
    }
    Ok(response)
}

/// A 416 `range_not_satisfiable` answer with `Content-Range: bytes */SIZE` (RFC 9110 section
/// 15.5.17), so the client learns the size.
fn unsatisfiable(size: u64, message: String) -> Response {
    let mut e = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", message).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        e.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    e
}

/// Asks the `download` policy, for a link addressed to the caller (anything else is answered by
/// the lease below, as 404). A denial is recorded and leaves the link untouched.
async fn authorize_download(gw: &Gateway, caller: &Caller, secret: &BearerSecret) -> Result<(), ApiError> {
    let Some((recipient, transfer)) = gw.store.link_target(&secret.hash()).await? else { return Ok(()) };
    if recipient != caller.0.id {
        return Ok(());
    }
    let record = gw.store.transfer_record(&transfer).await?;
    let request = PolicyRequest {
        action: Action::Download,
        principal: principal_facts(&caller.0),
        resource: Resource::Transfer(record.facts),
        orgs: record.orgs,
        context: serde_json::Map::new(),
    };
    let what = format!("`{}` to download this transfer", caller.0.user);
    if let Err(denial) = gw.gate.authorize(&request, &what, gw.clock.now()) {
        let error = ApiError::from(denial);
        let event = Event::new(EventKind::DownloadRefused)
            .actor(&caller.0.id)
            .transfer(&transfer)
            .code(error.code())
            .field("policies", error.detail("policies").unwrap_or_default());
        gw.store.record(&event, gw.clock.now()).await?;
        return Err(error);
    }
    Ok(())
}

/// Ends a lease exactly once: explicitly, or (broken off) when dropped.
struct LeaseGuard {
    gw: Arc<Gateway>,
    lease: Option<Lease>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard").field("lease", &self.lease).finish_non_exhaustive()
    }
}

impl LeaseGuard {
    /// Ends the lease now; false if the record could not be written.
    async fn end(mut self, end: LeaseEnd) -> bool {
        let Some(lease) = self.lease.take() else { return true };
        let recorded = finish(&self.gw, &lease, end).await;
        if recorded && end == LeaseEnd::Completed {
            // The last recipient has it: delete the ciphertext now, not at the next sweep.
            let gw = self.gw.clone();
            tokio::spawn(async move { purge_if_spent(&gw, &lease).await });
        }
        recorded
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let gw = self.gw.clone();
            // The client went away mid-stream: give the link back so it can try again.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { finish(&gw, &lease, LeaseEnd::BrokenOff("client_disconnected")).await });
            }
        }
    }
}

/// Deletes a transfer's ciphertext once no link can reach it; failures are left to the sweeper.
async fn purge_if_spent(gw: &Gateway, lease: &Lease) {
    let purge = match gw.store.spent(&lease.transfer).await {
        Ok(Some(purge)) => purge,
        Ok(None) => return,
        Err(e) => {
            return tracing::warn!(error = %e, transfer = %lease.transfer, "purge check failed; the sweeper will retry");
        }
    };
    crate::sweeper::purge(&gw.store, &gw.blobs, &gw.clock, &purge).await;
}

/// Records the end of a lease, retrying a busy database a few times; false if it never could.
async fn finish(gw: &Gateway, lease: &Lease, end: LeaseEnd) -> bool {
    for attempt in 0..5u32 {
        match gw.store.end_lease(lease, end, gw.clock.now()).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, attempt, transfer = %lease.transfer, "could not end a download lease");
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    tracing::error!(transfer = %lease.transfer, "download lease left open; it is released at the next start");
    false
}

/// The ciphertext stream of `served`. The lease ends when the chunk holding the last byte
/// served is handed to the HTTP layer: HTTP/1.1 with a known length never polls a body past its
/// last byte, so the record is written just before that chunk goes, and if it cannot be written
/// the chunk does not go. A range that reaches the end of the bundle uses the link up; a range
/// that stops short gives it back ([`LeaseEnd::Released`], audited as `download.partial`), so a
/// client that asked only for the age header can come back for the rest once it has checked it.
/// Dropped earlier, the guard gives the link back.
fn download_stream(
    blob: BoxStream<'static, Result<Bytes, BlobError>>,
    guard: LeaseGuard,
    served: Served,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let Served { start, last, size } = served;
    futures_util::stream::unfold(Some((blob, Some(guard), start)), move |state| async move {
        let (mut blob, mut guard, sent) = state?;
        if sent > last {
            // Everything asked for went out: the rest of the blob is not read.
            return None;
        }
        let broken = async |guard: Option<LeaseGuard>, why: &str| {
            tracing::error!(sent, size, why, "download broke off on the server side");
            if let Some(guard) = guard {
                let _ = guard.end(LeaseEnd::BrokenOff("storage_error")).await;
            }
            Some((Err(std::io::Error::other("storage error")), None))
        };
        match blob.next().await {
            Some(Ok(mut chunk)) => {
                if sent + chunk.len() as u64 > size {
                    return broken(guard, "blob longer than its record").await;
                }
                let wanted = last + 1 - sent;
                if chunk.len() as u64 > wanted {
                    chunk.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
                }
                let sent = sent + chunk.len() as u64;
                if sent == last + 1
                    && let Some(g) = guard.take()
                {
                    let end = if served.completes() {
                        LeaseEnd::Completed
                    } else {
                        LeaseEnd::Released { first: start, last }
                    };
                    if !g.end(end).await {
                        return Some((Err(std::io::Error::other("could not record the end of the download")), None));
                    }
                }
                Some((Ok(chunk), Some((blob, guard, sent))))
            }
            Some(Err(_)) => broken(guard, "blob read failed").await,
            None if guard.is_none() => None,
            None => broken(guard, "blob shorter than its record").await,
        }
    })
}

async fn inbox(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let items = gw.store.inbox(&caller.0.id, gw.clock.now()).await?;
    Ok(Json(json!({ "transfers": items })))
}
