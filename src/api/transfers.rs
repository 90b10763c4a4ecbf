//! Uploads, the sender's view of a transfer, recall, and a compliance officer's decision.
//!
//! `POST /api/v1/transfers?to=ORG/NAME[&to=…][&expires=72h][&classification=…]` takes the age
//! file as a streamed body (any length, chunked allowed), so `curl -T` and `age … | curl -T -`
//! work as they are; the sender's signed manifest travels in the `Sealpost-Manifest`,
//! `Sealpost-Manifest-Signature` and `Sealpost-Manifest-Key` headers. Each handler extracts,
//! calls one step of the transfer lifecycle ([`crate::lifecycle`]), and maps the answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::Binary;
use crate::gateway::Gateway;
use crate::lifecycle::{self, ManifestParts};
use crate::model::Classification;
use crate::wire::transfers::{DecisionAnswer, RecallAnswer, TransferView, UploadAnswer};
use crate::wire::{ErrorBody, TransferStatus};

/// The transfer routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(show, recall))
        .routes(routes!(approve))
        .routes(routes!(reject))
}

/// The header carrying standard base64 of the `sealpost.manifest/v2` text.
const SEALPOST_MANIFEST: &str = "sealpost-manifest";
/// The header carrying standard base64 of the manifest's Ed25519 signature.
const SEALPOST_MANIFEST_SIGNATURE: &str = "sealpost-manifest-signature";
/// The header naming the signing key by its fingerprint, `sha256:…`.
const SEALPOST_MANIFEST_KEY: &str = "sealpost-manifest-key";

/// The signed manifest's headers, as sent (the lifecycle checks them: all three or none).
fn manifest_headers(headers: &HeaderMap) -> ManifestParts {
    let value = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    ManifestParts {
        manifest: value(SEALPOST_MANIFEST),
        signature: value(SEALPOST_MANIFEST_SIGNATURE),
        key: value(SEALPOST_MANIFEST_KEY),
    }
}

/// `201 Created` for a transfer whose links work, `202 Accepted` for one held for approval.
pub(super) fn upload_status(status: TransferStatus) -> StatusCode {
    if status == TransferStatus::AwaitingApproval { StatusCode::ACCEPTED } else { StatusCode::CREATED }
}

/// Upload an age-encrypted bundle for one or more recipients.
///
/// Whoever the policies permit `upload` to every recipient: by default senders, to recipients
/// of organisations their organisation has a route to, OFFICIAL or (signed) OFFICIAL-SENSITIVE,
/// links living at most 14 days. The body is the age file itself, streamed (chunked allowed).
/// The gateway inspects its header without any key and refuses what is not encrypted to exactly
/// the recipients' directory keys; it never decrypts. The sender signs the upload by sending its
/// `sealpost.manifest/v2` (sender, digest of the whole age file, classification, expiry in
/// seconds, recipients) in the three `Sealpost-Manifest` headers: checked against the request
/// and the sender's signing keys before the body is read, and against the body's digest before
/// any link works. Policies see whether an upload is signed (`context.signed`).
#[utoipa::path(post, path = "/api/v1/transfers", operation_id = "upload", tag = "transfers",
    security(("bearer" = [])),
    params(
        ("to" = Vec<String>, Query, explode, pattern = "^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$", description = "A recipient, `ORG/NAME`; repeat for several, each once.", example = json!(["hmpps/alice"])),
        ("expires" = Option<String>, Query, description = "How long the links live, such as `72h` or `7d` (the gateway's default when absent)."),
        ("classification" = Option<Classification>, Query, description = "The transfer's marking (`OFFICIAL` when absent)."),
        ("Sealpost-Manifest" = Option<String>, Header, description = "Standard base64 of the sender's `sealpost.manifest/v2` text. With the other two `Sealpost-Manifest` headers, or none of them."),
        ("Sealpost-Manifest-Signature" = Option<String>, Header, description = "Standard base64 of the 64-byte Ed25519 signature over the manifest's bytes."),
        ("Sealpost-Manifest-Key" = Option<String>, Header, pattern = "^sha256:[0-9a-f]{64}$", description = "The fingerprint of the sender's registered `sealpost-signing1…` key that made the signature."),
    ),
    request_body(content = inline(Binary), content_type = "application/octet-stream", description = "The age file (binary or armored), encrypted to every directory key of every recipient."),
    responses(
        (status = 201, description = "Accepted: the links work.", body = UploadAnswer),
        (status = 202, description = "Accepted and held for a compliance officer's approval: the links work once it is given.", body = UploadAnswer),
        (status = 400, description = "`bad_request`: the query string is not valid (no recipient, one named twice, an unknown parameter, a bad duration or classification), only some of the `Sealpost-Manifest` headers came, one is not base64, or the body broke off.", body = ErrorBody),
        (status = 403, description = "`forbidden`: no policy permits this upload; `policy_denied`: a policy forbids it (the answer names it), such as an unsigned OFFICIAL-SENSITIVE upload.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: larger than the gateway accepts.", body = ErrorBody),
        (status = 422, description = "`not_age_encrypted`: not an age file, or a damaged one; `passphrase_not_allowed`: encrypted with a passphrase; `recipient_mismatch`: not encrypted to exactly the recipients' keys; `unknown_recipient`: an addressed user does not exist; `recipient_has_no_key`: one has no key; `manifest_mismatch`: the manifest is not canonical, or names another sender, other recipients, another classification or expiry, or (when the body ended; nothing is kept) another file; `unknown_signing_key`: the key is none of the sender's live signing keys; `sender_signature_invalid`: the signature does not verify.", body = ErrorBody),
        (status = 503, description = "`log_unavailable`: the transparency log cannot be written, so no upload is accepted; `unavailable`: the gateway is busy. Both with `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
    ))]
async fn upload(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadAnswer>), ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let manifest = manifest_headers(&headers);
    let checked =
        lifecycle::check_request(&gw, &caller, raw.as_deref().unwrap_or_default(), &manifest, declared).await?;
    let answer = lifecycle::upload(&gw, &caller, checked, &mut body.into_data_stream()).await?;
    Ok((upload_status(answer.status), Json(answer)))
}

/// Where a transfer stands, per recipient.
///
/// The transfer's sender, or an administrator.
#[utoipa::path(get, path = "/api/v1/transfers/{id}", operation_id = "show_transfer", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    responses(
        (status = 200, description = "The transfer and its links.", body = TransferView),
        (status = 404, description = "`not_found`: the caller sent no such transfer.", body = ErrorBody),
    ))]
async fn show(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<TransferView>, ApiError> {
    Ok(Json(lifecycle::transfer_view(&gw, &caller, &id).await?))
}

/// Recall a transfer: its unused links are revoked and its ciphertext deleted.
///
/// Whoever the policies permit `recall`: by default the transfer's sender or an administrator.
/// Recalling twice is harmless.
#[utoipa::path(delete, path = "/api/v1/transfers/{id}", operation_id = "recall", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    responses(
        (status = 200, description = "Recalled.", body = RecallAnswer),
        (status = 403, description = "`forbidden`: no policy permits the caller to recall it; `policy_denied`: a policy forbids it.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such transfer the caller has to do with.", body = ErrorBody),
    ))]
async fn recall(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<RecallAnswer>, ApiError> {
    Ok(Json(lifecycle::recall(&gw, &caller, &id).await?))
}

/// Approve the release of a held transfer.
///
/// Whoever the policies permit `approve`: by default compliance officers, never the transfer's
/// sender (four eyes). The release policies are asked again with the approval in place.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/approve", operation_id = "approve", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    responses(
        (status = 200, description = "Decided.", body = DecisionAnswer),
        (status = 403, description = "`forbidden`: no policy permits the caller to approve it; `policy_denied`: a policy forbids it (such as four eyes).", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such transfer the caller has to do with.", body = ErrorBody),
        (status = 409, description = "`not_awaiting_approval`: the transfer is not held (any more).", body = ErrorBody),
    ))]
async fn approve(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<DecisionAnswer>, ApiError> {
    Ok(Json(lifecycle::decide(&gw, &caller, &id, true, None).await?))
}

/// Reject a held transfer: its links are revoked and its ciphertext deleted.
///
/// Whoever the policies permit `approve`: by default compliance officers, never the transfer's
/// sender (four eyes).
#[utoipa::path(post, path = "/api/v1/transfers/{id}/reject", operation_id = "reject", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    responses(
        (status = 200, description = "Decided.", body = DecisionAnswer),
        (status = 403, description = "`forbidden`: no policy permits the caller to reject it; `policy_denied`: a policy forbids it (such as four eyes).", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such transfer the caller has to do with.", body = ErrorBody),
        (status = 409, description = "`not_awaiting_approval`: the transfer is not held (any more).", body = ErrorBody),
    ))]
async fn reject(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<DecisionAnswer>, ApiError> {
    Ok(Json(lifecycle::decide(&gw, &caller, &id, false, None).await?))
}
