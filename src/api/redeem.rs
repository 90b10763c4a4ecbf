//! Collecting a bundle: `POST /api/v1/redeem` streams the ciphertext of a one-time link to its
//! own recipient ([`lifecycle::redeem`] leases, streams and ends the lease); `GET /api/v1/inbox`
//! lists what waits. A `Range` header (one `bytes=A-` or `bytes=A-B`) asks for part of it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::gateway::Gateway;
use crate::lifecycle::{self, ByteRange, LinkRef};
use crate::wire::ErrorCode;
use crate::wire::transfers::{Inbox, RedeemRequest};

/// The retrieval routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/api/v1/redeem", post(redeem)).route("/api/v1/inbox", get(inbox))
}

/// Parses the `Range` header (RFC 9110 section 14.1.2): none, or a single `bytes=A-` or
/// `bytes=A-B`. Several ranges, suffix ranges (`bytes=-N`) and other units are refused.
fn range_asked(headers: &HeaderMap) -> Result<Option<ByteRange>, ApiError> {
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
    Ok(Some(ByteRange { start, last }))
}

async fn redeem(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RedeemRequest>,
) -> Result<Response, ApiError> {
    let link = match (&req.token, &req.transfer) {
        (Some(token), None) => LinkRef::Token(token),
        (None, Some(transfer)) => LinkRef::Transfer(transfer),
        _ => {
            return Err(ApiError::bad_request(
                "send exactly one of `token` (from the link) and `transfer` (from your inbox)",
            ));
        }
    };
    let asked = range_asked(&headers)?;
    let download = match lifecycle::redeem(gw, &caller, link, asked).await? {
        Ok(download) => download,
        Err(refusal) => return Ok(unsatisfiable(refusal.size, refusal.message)),
    };
    let (start, last, size, len) = (download.start, download.last, download.size, download.len());
    let transfer = download.transfer.clone();
    let digest = download.digest.clone();
    let status = if asked.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut response = (status, Body::from_stream(download.body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if asked.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{last}/{size}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{transfer}.age\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&digest) {
        h.insert("x-sealpost-digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(transfer.as_str()) {
        h.insert("x-sealpost-transfer", v);
    }
    Ok(response)
}

/// A 416 `range_not_satisfiable` answer with `Content-Range: bytes */SIZE` (RFC 9110 section
/// 15.5.17), so the client learns the size.
fn unsatisfiable(size: u64, message: String) -> Response {
    let mut e = ApiError::new(ErrorCode::RangeNotSatisfiable, message).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        e.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    e
}

async fn inbox(State(gw): State<Arc<Gateway>>, Caller(caller): Caller) -> Result<Json<Inbox>, ApiError> {
    Ok(Json(lifecycle::inbox(&gw, &caller).await?))
}
