//! The transparency log over HTTP: `/log/checkpoint`, `/log/key` and `/log/tile/…` served as
//! the files the sequencer wrote (C2SP tlog-tiles), and each transfer's receipts.
//!
//! The `/log/` files are public when the gateway is configured so (`log_public`), and otherwise
//! need any valid token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use super::openapi::Binary;
use crate::audit::{Event, EventKind};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::model::{Role, UserRef};
use crate::transparency::tlog::tiles::{self, TilePath};
use crate::wire::ErrorBody;
use crate::wire::log::{KeyRetired, KeyRotation, Receipt, ReceiptList, RetireKey, SignerProof};

/// The log routes.
///
/// A tile's path has slashes in it, which an OpenAPI path parameter cannot hold, so its route is
/// registered here by hand and its documentation ([`tile`]) joins the contract in `openapi.rs`.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(checkpoint))
        .routes(routes!(key))
        .routes(routes!(keys))
        .routes(routes!(rotate))
        .routes(routes!(retire))
        .route("/log/tile/{*path}", get(tile))
        .routes(routes!(receipts))
}

/// Lets the request through when `/log/` is public, or the caller has a valid token.
async fn gate(gw: &Arc<Gateway>, req: Request) -> Result<(), ApiError> {
    if gw.config.log_public {
        return Ok(());
    }
    let (mut parts, _) = req.into_parts();
    <Caller as axum::extract::FromRequestParts<Arc<Gateway>>>::from_request_parts(&mut parts, gw).await.map(|_| ())
}

fn text(body: String, cache: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

/// The log's latest checkpoint: a C2SP signed note of its size and root hash.
///
/// Public when the log is public; otherwise any valid token.
#[utoipa::path(get, path = "/log/checkpoint", operation_id = "log_checkpoint", tag = "log",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The signed checkpoint.", body = String, content_type = "text/plain",
            example = "sealpost.example/log\n42\nrPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n\n— sealpost.example/log Gqy5bUo+ed7Hn5d1yTeDGWMHzCbWDBJYkjhMsw+eb6bQExM7MoYSeaS2Z2CrrdyoRZB4MrZq8D5l8ZxtiR9VL8WzEwI=\n"),
        (status = 401, description = "`unauthenticated`: the log is not public and no valid token was sent.", body = ErrorBody),
    ))]
async fn checkpoint(State(gw): State<Arc<Gateway>>, req: Request) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    Ok(text(gw.log.log().checkpoint(), "no-cache"))
}

/// The verifier key that signs checkpoints now (C2SP signed-note key string).
///
/// Public when the log is public; otherwise any valid token.
#[utoipa::path(get, path = "/log/key", operation_id = "log_key", tag = "log",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The current verifier key, one line.", body = String, content_type = "text/plain",
            example = "sealpost.example/log+1a2b3c4d+AUdD9oi4zwzpEoPGGIG8hrDfq4xUqTJ0LZeTbn9TRXNn\n"),
        (status = 401, description = "`unauthenticated`: the log is not public and no valid token was sent.", body = ErrorBody),
    ))]
async fn key(State(gw): State<Arc<Gateway>>, req: Request) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    Ok(text(format!("{}\n", gw.log.log().verifier().to_vkey()), "no-cache"))
}

/// Every verifier key that signs checkpoints now, oldest first: two during a rotation.
///
/// Public when the log is public; otherwise any valid token.
#[utoipa::path(get, path = "/log/keys", operation_id = "log_keys", tag = "log",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One verifier key per line.", body = String, content_type = "text/plain",
            example = "sealpost.example/log+1a2b3c4d+AUdD9oi4zwzpEoPGGIG8hrDfq4xUqTJ0LZeTbn9TRXNn\n"),
        (status = 401, description = "`unauthenticated`: the log is not public and no valid token was sent.", body = ErrorBody),
    ))]
async fn keys(State(gw): State<Arc<Gateway>>, req: Request) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    let keys: String = gw.log.log().verifiers().iter().map(|v| format!("{}\n", v.to_vkey())).collect();
    Ok(text(keys, "no-cache"))
}

/// Start a log key rotation.
///
/// Administrators only. A new key signs alongside the old one from the next checkpoint on; the
/// change is itself a log entry (`log.key_added`).
#[utoipa::path(post, path = "/api/v1/log/keys/rotate", operation_id = "rotate_log_key", tag = "log",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new key signs from now on, beside the old one.", body = KeyRotation),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
    ))]
async fn rotate(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<KeyRotation>, ApiError> {
    caller.administer(&gw, "rotate the log key")?;
    let new = gw.log.log().rotate_key().await?;
    let event = Event::new(EventKind::LogKeyAdded).actor(&caller.0.id).field("key", new.to_vkey());
    gw.store.record(&event, gw.clock.now()).await?;
    gw.log.nudge();
    let active: Vec<String> = gw.log.log().verifiers().iter().map(|v| v.to_vkey()).collect();
    Ok(Json(KeyRotation { current: new.to_vkey(), active }))
}

/// End a log key rotation: one key stops signing.
///
/// Administrators only. The change is a log entry (`log.key_retired`).
#[utoipa::path(post, path = "/api/v1/log/keys/retire", operation_id = "retire_log_key", tag = "log",
    security(("bearer" = [])),
    request_body = RetireKey,
    responses(
        (status = 200, description = "Retired.", body = KeyRetired),
        (status = 400, description = "`bad_request`: the body is not a `RetireKey`, no active key has that id, or it is the last one.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
    ))]
async fn retire(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<RetireKey>,
) -> Result<Json<KeyRetired>, ApiError> {
    caller.administer(&gw, "retire a log key")?;
    let current = gw.log.log().retire_key(&req.key_id).await?;
    let event = Event::new(EventKind::LogKeyRetired).actor(&caller.0.id).field("key_id", &req.key_id);
    gw.store.record(&event, gw.clock.now()).await?;
    gw.log.nudge();
    Ok(Json(KeyRetired { current: current.to_vkey() }))
}

/// A tile of the log (C2SP tlog-tiles): hashes (`0/x001/234`, with `.p/W` for a partial one) or
/// entries (`entries/x001/234`).
///
/// Public when the log is public; otherwise any valid token.
#[utoipa::path(get, path = "/log/tile/{path}", operation_id = "log_tile", tag = "log",
    security((), ("bearer" = [])),
    params(("path" = String, Path, description = "The tile's path below `/log/tile/`, slashes included, such as `0/000` or `entries/000.p/5`.")),
    responses(
        (status = 200, description = "The tile's bytes; full tiles never change.", body = inline(Binary), content_type = "application/octet-stream"),
        (status = 401, description = "`unauthenticated`: the log is not public and no valid token was sent.", body = ErrorBody),
        (status = 404, description = "`not_found`: not a tile path, or not a tile of the current tree.", body = ErrorBody),
    ))]
pub(super) async fn tile(
    State(gw): State<Arc<Gateway>>,
    Path(path): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    let full = format!("tile/{path}");
    // Only canonical tile paths, within the current tree.
    let missing = || ApiError::not_found(format!("there is no `/log/{full}` in this log"));
    let size = gw.log.log().size();
    let path = tiles::parse_path(&full).map_err(|_| missing())?;
    let (TilePath::Hashes(tile) | TilePath::Entries(tile)) = path;
    let exists = tiles::tile_at(size, tile.level(), tile.index()).is_some_and(|t| t.width() >= tile.width());
    if !exists {
        return Err(missing());
    }
    let bytes = match path {
        TilePath::Hashes(tile) => gw.log.log().hash_tile(tile).await?,
        TilePath::Entries(tile) => gw.log.log().entry_bundle(tile).await?,
    };
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    // Full tiles never change; partial ones are replaced by wider ones under another name.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    Ok(r)
}

/// For a signed delivery entry: who signed, their name salt and their key's receipt.
async fn signer_proof(
    gw: &Gateway,
    recipients: &[crate::policy::UserFacts],
    entry: &str,
) -> Result<Option<SignerProof>, ApiError> {
    let Ok(parsed) = crate::transparency::verify::parse_entry(entry.as_bytes()) else { return Ok(None) };
    let (Some(key), Some(actor)) = (parsed.fact("signing_key"), parsed.actor()) else { return Ok(None) };
    if parsed.event() != "delivery.acknowledged" {
        return Ok(None);
    }
    let Some(signer) = recipients.iter().find(|r| r.id == actor) else { return Ok(None) };
    let by: UserRef = signer.name.parse()?;
    let Some((index, key_entry)) = gw.store.key_registration(&by, &crate::directory::fingerprint(key)).await? else {
        return Ok(None);
    };
    let Ok(key_receipt) = gw.log.log().receipt(index, key_entry.as_bytes()).await else { return Ok(None) };
    let name_salt = gw.store.name_salt(&by).await?;
    Ok(Some(SignerProof { by, name_salt, key_receipt }))
}

/// A log receipt for each of a transfer's recorded events.
///
/// The transfer's sender and recipients, compliance officers and administrators.
#[utoipa::path(get, path = "/api/v1/transfers/{id}/receipts", operation_id = "transfer_receipts", tag = "log",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    responses(
        (status = 200, description = "The receipts, against the current checkpoint.", body = ReceiptList),
        (status = 404, description = "`not_found`: there is no such transfer the caller may see.", body = ErrorBody),
    ))]
async fn receipts(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReceiptList>, ApiError> {
    let unknown = || ApiError::not_found(format!("there is no transfer `{id}`"));
    let transfer = TransferId::parse(&id).ok_or_else(unknown)?;
    let record = gw.store.transfer_record(&transfer).await?;
    let me = caller.0.id.as_str();
    let involved = record.facts.sender.id == me || record.facts.recipients.iter().any(|r| r.id == me);
    if !involved && !matches!(caller.0.role, Role::Admin | Role::Compliance) {
        return Err(unknown());
    }
    let log = gw.log.log();
    let mut out = Vec::new();
    for (event, index, entry) in gw.store.receipt_events(&transfer).await? {
        if let Ok(receipt) = log.receipt(index, entry.as_bytes()).await {
            let signed_for = signer_proof(&gw, &record.facts.recipients, &entry).await?;
            out.push(Receipt { event, index, receipt, signed_for });
        }
    }
    Ok(Json(ReceiptList { receipts: out, log_size: log.size() }))
}
