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

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::Binary;
use crate::gateway::Gateway;
use crate::lifecycle::{self, Appended, LifecycleError, ManifestParts};
use crate::wire::transfers::UploadLookup;
use crate::wire::{ErrorBody, ErrorCode};

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
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(create, discover))
        .routes(routes!(show, head, patch, terminate, discover_upload))
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

/// tus discovery: the protocol version, extensions and largest upload.
///
/// No token needed.
#[utoipa::path(options, path = "/api/v1/uploads", operation_id = "upload_options", tag = "uploads",
    responses((status = 204, description = "What the gateway speaks.", headers(
        ("Tus-Version" = String, description = "`1.0.0`."),
        ("Tus-Extension" = String, description = "`creation,termination`."),
        ("Tus-Max-Size" = u64, description = "The largest upload accepted, in bytes."),
        ("Tus-Resumable" = String, description = "`1.0.0`."),
    ))))]
async fn discover(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    discovery(&gw)
}

/// tus discovery, asked of one upload: the same answer as for `/api/v1/uploads`.
///
/// No token needed.
#[utoipa::path(options, path = "/api/v1/uploads/{id}", operation_id = "upload_options_of_one", tag = "uploads",
    params(("id" = String, Path, description = "Any upload's id: discovery does not look it up.")),
    responses((status = 204, description = "What the gateway speaks.", headers(
        ("Tus-Version" = String, description = "`1.0.0`."),
        ("Tus-Extension" = String, description = "`creation,termination`."),
        ("Tus-Max-Size" = u64, description = "The largest upload accepted, in bytes."),
        ("Tus-Resumable" = String, description = "`1.0.0`."),
    ))))]
async fn discover_upload(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    discovery(&gw)
}

/// The answer to discovery: version, extensions, largest upload.
fn discovery(gw: &Gateway) -> impl IntoResponse + use<> {
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
pub(crate) fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    // `1*DIGIT` only: `u64::from_str` would also take a leading `+`.
    let digits = |v: &&str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let parsed = value.to_str().ok().filter(digits).and_then(|v| v.parse::<u64>().ok());
    parsed.map(Some).ok_or_else(|| ApiError::bad_request(format!("`{name}` must be a number of bytes")))
}

/// Turns `Upload-Metadata` (`key base64,key base64`) into the one-shot upload's query string
/// and the sender's signed manifest. `to` holds one or more space-separated `ORG/NAME`.
/// `manifest` (the `sealpost.manifest/v2` text) and `manifest_signature` (the 64 signature
/// bytes) are kept base64 as they came, for the lifecycle to decode and check; `manifest_key` is
/// the key's `sha256:…` fingerprint. Other keys (tus clients send `filename`) are ignored and
/// never stored: the gateway keeps no file names.
pub(crate) fn metadata_query(headers: &HeaderMap) -> Result<(String, ManifestParts), ApiError> {
    let raw = headers.get(&UPLOAD_METADATA).map(|v| v.to_str()).transpose();
    let raw = raw.map_err(|_| ApiError::bad_request("`Upload-Metadata` must be ASCII"))?.unwrap_or_default();
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut manifest = ManifestParts::default();
    let mut seen = HashSet::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        if !seen.insert(key) {
            return Err(ApiError::bad_request(format!("`Upload-Metadata` names `{key}` twice: name each key once")));
        }
        match key {
            "manifest" => {
                manifest.manifest = Some(encoded.trim().to_owned());
                continue;
            }
            "manifest_signature" => {
                manifest.signature = Some(encoded.trim().to_owned());
                continue;
            }
            _ => {}
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
            "manifest_key" => manifest.key = Some(value),
            _ => {}
        }
    }
    if !seen.contains("to") {
        return Err(ApiError::bad_request(
            "name the recipients in `Upload-Metadata`: `to` and the base64 of `ORG/NAME` (several separated by spaces)",
        ));
    }
    Ok((query.finish(), manifest))
}

/// tus creation: start a resumable upload, checked as a one-shot upload is before any byte.
///
/// As `POST /api/v1/transfers`: whoever the policies permit `upload` to every recipient. The
/// recipients, options and the sender's signed manifest travel in `Upload-Metadata`; the
/// manifest is checked now and at every `PATCH` (the key may be removed meanwhile), its digest
/// when the last byte arrives.
#[utoipa::path(post, path = "/api/v1/uploads", operation_id = "create_upload", tag = "uploads",
    security(("bearer" = [])),
    params(
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", description = "The tus protocol version: `1.0.0`, the only one spoken.", example = "1.0.0"),
        ("Upload-Length" = u64, Header, description = "The size of the whole age file in bytes."),
        ("Upload-Metadata" = String, Header, description = "Comma-separated `KEY BASE64` pairs: `to` (required: one or more `ORG/NAME` separated by spaces), `expires`, `classification`; the sender's signature: `manifest` (the `sealpost.manifest/v2` text), `manifest_signature` (the 64 Ed25519 signature bytes) and `manifest_key` (the signing key's `sha256:…` fingerprint), all three or none. Other keys (`filename`) are ignored and never stored.", example = "to aG1wcHMvYWxpY2U="),
    ),
    responses(
        (status = 201, description = "Created: send the bytes with `PATCH` to `Location`.", headers(
            ("Location" = String, description = "The upload's URL: `/api/v1/uploads/{id}`."),
            ("Tus-Resumable" = String, description = "`1.0.0`."),
        )),
        (status = 400, description = "`bad_request`: `Upload-Length` is missing or not a number, `Upload-Defer-Length` was sent, or `Upload-Metadata` is not valid, names no recipient, or holds only some of the three `manifest` keys.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no policy permits this upload; `policy_denied`: a policy forbids it (such as an unsigned OFFICIAL-SENSITIVE upload).", body = ErrorBody),
        (status = 412, description = "`tus_version_unsupported`: the request does not send `Tus-Resumable: 1.0.0`.", body = ErrorBody,
            headers(("Tus-Version" = String, description = "The versions spoken: `1.0.0`."))),
        (status = 413, description = "`payload_too_large`: the declared length is larger than the gateway accepts.", body = ErrorBody),
        (status = 422, description = "`not_age_encrypted`: a length of 0 cannot be an age file; `unknown_recipient`: an addressed user does not exist; `recipient_has_no_key`: one has no key; `manifest_mismatch`: the manifest is not canonical, or names another sender, other recipients, another classification or expiry; `unknown_signing_key`: the key is none of the sender's live signing keys; `sender_signature_invalid`: the signature does not verify.", body = ErrorBody),
        (status = 503, description = "`log_unavailable`: the transparency log cannot be written; `unavailable`: the gateway is busy. Both with `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
    ))]
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
    let (request, manifest) = metadata_query(&headers)?;
    let upload = lifecycle::create_upload(&gw, &caller, request, &manifest, length).await?;
    let location = format!("/api/v1/uploads/{}", upload.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// tus offset: how many bytes of the upload the gateway holds.
///
/// The upload's sender. A `HEAD` answer has no body, errors included.
#[utoipa::path(head, path = "/api/v1/uploads/{id}", operation_id = "upload_offset", tag = "uploads",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The upload's id."),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", description = "The tus protocol version: `1.0.0`, the only one spoken.", example = "1.0.0"),
    ),
    responses(
        (status = 200, description = "Where it stands.", headers(
            ("Upload-Offset" = u64, description = "Bytes held durably: resume from here. A request writing the upload that brought no byte for 2 seconds is taken over first (it stops and its bytes count), so that a sender back on a new connection resumes at once."),
            ("Upload-Length" = u64, description = "Bytes declared."),
            ("Sealpost-Transfer" = String, description = "Once complete: the transfer's id."),
            ("Tus-Resumable" = String, description = "`1.0.0`."),
        )),
        (status = 404, description = "`not_found`: the caller has no such upload (it may have expired)."),
        (status = 412, description = "`tus_version_unsupported`: the request does not send `Tus-Resumable: 1.0.0`."),
    ))]
async fn head(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = lifecycle::upload_offset(&gw, &caller, &id).await?;
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

/// An upload's progress, or once complete its answer with the links.
///
/// The upload's sender. The links are shown for an hour after completion; the transfer's view
/// after that.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", operation_id = "show_upload", tag = "uploads",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The upload's id."),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", description = "The tus protocol version: `1.0.0`, the only one spoken.", example = "1.0.0"),
    ),
    responses(
        (status = 200, description = "Where it stands.", body = UploadLookup),
        (status = 404, description = "`not_found`: the caller has no such upload (it may have expired).", body = ErrorBody),
        (status = 412, description = "`tus_version_unsupported`: the request does not send `Tus-Resumable: 1.0.0`.", body = ErrorBody,
            headers(("Tus-Version" = String, description = "The versions spoken: `1.0.0`."))),
    ))]
async fn show(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<UploadLookup>, ApiError> {
    Ok(Json(lifecycle::lookup_upload(&gw, &caller, &id).await?))
}

/// tus termination: delete an unfinished upload and the bytes it holds.
///
/// The upload's sender.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", operation_id = "terminate_upload", tag = "uploads",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The upload's id."),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", description = "The tus protocol version: `1.0.0`, the only one spoken.", example = "1.0.0"),
    ),
    responses(
        (status = 204, description = "Deleted.", headers(("Tus-Resumable" = String, description = "`1.0.0`."))),
        (status = 404, description = "`not_found`: the caller has no such upload (it may have expired).", body = ErrorBody),
        (status = 409, description = "`upload_complete`: the upload became a transfer already (recall it instead).", body = ErrorBody),
        (status = 412, description = "`tus_version_unsupported`: the request does not send `Tus-Resumable: 1.0.0`.", body = ErrorBody,
            headers(("Tus-Version" = String, description = "The versions spoken: `1.0.0`."))),
        (status = 423, description = "`upload_busy`: another request is writing to it.", body = ErrorBody),
    ))]
async fn terminate(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    lifecycle::terminate_upload(&gw, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// tus append: send bytes of the file from `Upload-Offset` on.
///
/// The upload's sender. The request that brings the last byte commits the transfer exactly as
/// a one-shot upload does (the checks are asked again first: keys and policies may have
/// changed), and answers with its id and status.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", operation_id = "append_upload", tag = "uploads",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The upload's id."),
        ("Tus-Resumable" = String, Header, pattern = "^1\\.0\\.0$", description = "The tus protocol version: `1.0.0`, the only one spoken.", example = "1.0.0"),
        ("Upload-Offset" = u64, Header, description = "Where these bytes start: what the gateway holds (`HEAD` tells)."),
    ),
    request_body(content = inline(Binary), content_type = "application/offset+octet-stream", description = "The next bytes of the age file."),
    responses(
        (status = 204, description = "Appended (and, at the last byte, committed).", headers(
            ("Upload-Offset" = u64, description = "Bytes held durably now."),
            ("Sealpost-Transfer" = String, description = "At the last byte: the transfer's id."),
            ("Sealpost-Status" = String, description = "At the last byte: `available`, or `awaiting_approval`."),
            ("Tus-Resumable" = String, description = "`1.0.0`."),
        )),
        (status = 400, description = "`bad_request`: `Upload-Offset` is missing or not a number, the request body broke off (what arrived is kept), or the upload's request is no longer valid.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no policy permits this upload any more; `policy_denied`: a policy forbids it now.", body = ErrorBody),
        (status = 404, description = "`not_found`: the caller has no such upload (it may have expired).", body = ErrorBody),
        (status = 408, description = "`request_timeout`: no byte of the body arrived for the gateway's idle timeout; every byte that arrived is kept (`HEAD` tells the offset).", body = ErrorBody),
        (status = 409, description = "`offset_mismatch`: the upload holds a different number of bytes (the answer's `Upload-Offset` says how many); `upload_complete`: it became a transfer already.", body = ErrorBody,
            headers(("Upload-Offset" = u64, description = "With `offset_mismatch`: the bytes held."))),
        (status = 412, description = "`tus_version_unsupported`: the request does not send `Tus-Resumable: 1.0.0`.", body = ErrorBody,
            headers(("Tus-Version" = String, description = "The versions spoken: `1.0.0`."))),
        (status = 413, description = "`upload_length_exceeded`: more bytes than `Upload-Length` declared; `payload_too_large`: the upload is larger than the gateway accepts now.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `application/offset+octet-stream`.", body = ErrorBody),
        (status = 422, description = "`not_age_encrypted`: not an age file, or a damaged one; `passphrase_not_allowed`: encrypted with a passphrase; `recipient_mismatch`: not encrypted to exactly the recipients' keys; `unknown_recipient`: an addressed user no longer exists; `recipient_has_no_key`: one has no key now; `unknown_signing_key`: the key that signed the manifest was removed; `manifest_mismatch`: at the last byte, the file is not the one the manifest names. The upload is deleted.", body = ErrorBody),
        (status = 423, description = "`upload_busy`: another request is writing to it and brought a byte within the last 2 seconds (one silent for longer is taken over: it stops, keeps its bytes, and this request goes on).", body = ErrorBody),
        (status = 503, description = "`log_unavailable`: the transparency log cannot be written; `unavailable`: the gateway is busy, or stopping and cut the request. Both with `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
    ))]
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
