//! Resumable uploads: the HTTP side of tus 1.0 (core protocol, `creation` and `termination`
//! extensions). The headers are read and written here; the upload itself is
//! [`crate::lifecycle`]'s resumable upload, which feeds the same intake pipeline and commits
//! exactly as a one-shot upload.
//!
//! `POST /api/v1/uploads` checks the request as a one-shot upload would before any byte is
//! accepted; `PATCH` appends; the `PATCH` that reaches `Upload-Length` commits the transfer and
//! answers `Sealpost-Transfer: ID` and `Sealpost-Status: available|awaiting_approval`, after
//! which `GET` shows the one-shot answer with the links. An upload is visible to its sender only.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tower_http::set_header::SetResponseHeaderLayer;

use super::auth::Caller;
use super::error::ApiError;
use crate::gateway::Gateway;
use crate::lifecycle::{self, Appended, LifecycleError};
use crate::wire::ErrorCode;
use crate::wire::transfers::UploadLookup;

/// The only protocol version spoken.
const TUS_VERSION: &str = "1.0.0";
/// The extensions supported.
const TUS_EXTENSIONS: &str = "creation,termination";
/// The one content type `PATCH` takes.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const TUS_VERSION_HEADER: HeaderName = HeaderName::from_static("tus-version");
const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
const SEALPOST_TRANSFER: HeaderName = HeaderName::from_static("sealpost-transfer");

/// The upload routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/uploads", post(create).options(options))
        .route("/api/v1/uploads/{id}", get(show).head(head).patch(patch).delete(terminate).options(options))
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
        ErrorCode::TusVersionUnsupported,
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

/// tus creation: checks the addressing as a one-shot upload does, then records the upload.
async fn create(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if headers.contains_key(&UPLOAD_DEFER_LENGTH) {
        return Err(ApiError::bad_request("deferred lengths are not supported: send `Upload-Length`"));
    }
    let length = number(&headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| ApiError::bad_request("send `Upload-Length`: the size of the whole file in bytes"))?;
    let request = metadata_query(&headers)?;
    let upload = lifecycle::create_upload(&gw, &caller, request, length).await?;
    let location = format!("/api/v1/uploads/{}", upload.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// tus `HEAD`: how much of the upload the gateway holds.
async fn head(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = lifecycle::upload_status(&gw, &caller, &id).await?;
    let mut response = (
        StatusCode::OK,
        [
            (UPLOAD_OFFSET, row.received.to_string()),
            (UPLOAD_LENGTH, row.length.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response();
    if row.completed
        && let Ok(v) = HeaderValue::from_str(row.id.as_str())
    {
        response.headers_mut().insert(SEALPOST_TRANSFER, v);
    }
    Ok(response)
}

/// The answer of a completed upload (with the links, for an hour after completion; the
/// transfer's view after that), or its progress.
async fn show(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<UploadLookup>, ApiError> {
    Ok(Json(lifecycle::lookup_upload(&gw, &caller, &id).await?))
}

/// tus termination: deletes an unfinished upload.
async fn terminate(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    lifecycle::terminate_upload(&gw, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// tus `PATCH`: appends the body at `Upload-Offset`.
async fn patch(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if headers.get(header::CONTENT_TYPE).is_none_or(|v| v.as_bytes() != OFFSET_OCTET_STREAM.as_bytes()) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("send the bytes with `Content-Type: {OFFSET_OCTET_STREAM}`"),
        ));
    }
    let offset = number(&headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| ApiError::bad_request("send `Upload-Offset`: where these bytes start (`HEAD` tells)"))?;
    let declared = number(&headers, &header::CONTENT_LENGTH)?;
    match lifecycle::patch_upload(gw, caller, &id, offset, declared, body.into_data_stream()).await {
        Ok(Appended::Partial { offset }) => {
            Ok((StatusCode::NO_CONTENT, [(UPLOAD_OFFSET, offset.to_string())]).into_response())
        }
        Ok(Appended::Completed { offset, transfer, status }) => {
            let headers = [
                (UPLOAD_OFFSET, offset.to_string()),
                (SEALPOST_TRANSFER, transfer.to_string()),
                (HeaderName::from_static("sealpost-status"), status.as_str().to_owned()),
            ];
            Ok((StatusCode::NO_CONTENT, headers).into_response())
        }
        Err(e @ LifecycleError::OffsetMismatch { held, .. }) => {
            Ok(([(UPLOAD_OFFSET, held.to_string())], ApiError::from(e)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
