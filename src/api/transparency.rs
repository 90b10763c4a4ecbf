//! The transparency log over HTTP: `/log/checkpoint`, `/log/key` and `/log/tile/…` served as
//! the files the sequencer wrote (C2SP tlog-tiles), and each transfer's receipts.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::audit::{Event, EventKind};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::model::Role;
use crate::transparency::tlog::tiles::{self, TilePath};
use crate::transparency::writer::LogError;
use crate::wire::log::{KeyRetired, KeyRotation, Receipt, ReceiptList, RetireKey};

/// The log routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/log/checkpoint", get(checkpoint))
        .route("/log/key", get(key))
        .route("/log/keys", get(keys))
        .route("/api/v1/log/keys/rotate", post(rotate))
        .route("/api/v1/log/keys/retire", post(retire))
        .route("/log/tile/{*path}", get(tile))
        .route("/api/v1/transfers/{id}/receipts", get(receipts))
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

async fn checkpoint(State(gw): State<Arc<Gateway>>, req: Request) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    Ok(text(gw.log.log().checkpoint(), "no-cache"))
}

async fn key(State(gw): State<Arc<Gateway>>, req: Request) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    Ok(text(format!("{}\n", gw.log.log().verifier().to_vkey()), "no-cache"))
}

/// Every active verifier key, oldest first: two during a key rotation.
async fn keys(State(gw): State<Arc<Gateway>>, req: Request) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    let keys: String = gw.log.log().verifiers().iter().map(|v| format!("{}\n", v.to_vkey())).collect();
    Ok(text(keys, "no-cache"))
}

/// Starts a log key rotation (admin): a new key signs alongside the old one from the next
/// checkpoint on, and the change is itself a log entry.
async fn rotate(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<KeyRotation>, ApiError> {
    caller.require(&[Role::Admin], "rotate the log key")?;
    let new = gw.log.log().rotate_key().map_err(|e| ApiError::internal(&e))?;
    let event = Event::new(EventKind::LogKeyAdded).actor(&caller.0.id).field("key", new.to_vkey());
    gw.store.record(&event, gw.clock.now()).await?;
    gw.log.nudge();
    let active: Vec<String> = gw.log.log().verifiers().iter().map(|v| v.to_vkey()).collect();
    Ok(Json(KeyRotation { current: new.to_vkey(), active }))
}

/// Ends a log key rotation (admin): the key `key_id` (8 hex digits) stops signing.
async fn retire(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<RetireKey>,
) -> Result<Json<KeyRetired>, ApiError> {
    caller.require(&[Role::Admin], "retire a log key")?;
    let current = gw.log.log().retire_key(&req.key_id).map_err(|e| match e {
        LogError::UnknownKey(_) | LogError::LastKey(_) => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(&other),
    })?;
    let event = Event::new(EventKind::LogKeyRetired).actor(&caller.0.id).field("key_id", &req.key_id);
    gw.store.record(&event, gw.clock.now()).await?;
    gw.log.nudge();
    Ok(Json(KeyRetired { current: current.to_vkey() }))
}

async fn tile(State(gw): State<Arc<Gateway>>, Path(path): Path<String>, req: Request) -> Result<Response, ApiError> {
    gate(&gw, req).await?;
    let full = format!("tile/{path}");
    // Only canonical tile paths, within the current tree: nothing else on disk is reachable.
    let missing = || ApiError::not_found(format!("there is no `/log/{full}` in this log"));
    let size = gw.log.log().size();
    let tile = match tiles::parse_path(&full).map_err(|_| missing())? {
        TilePath::Hashes(t) | TilePath::Entries(t) => t,
    };
    let exists = tiles::tile_at(size, tile.level(), tile.index()).is_some_and(|t| t.width() >= tile.width());
    if !exists {
        return Err(missing());
    }
    let bytes = tokio::fs::read(gw.log.log().dir().join(&full)).await.map_err(|_| missing())?;
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    // Full tiles never change; partial ones are replaced by wider ones under another name.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    Ok(r)
}

/// `GET /api/v1/transfers/{id}/receipts`: a tlog-proof for each of the transfer's integrated
/// upload, approval, delivery, recall and purge events, against the current checkpoint.
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
        if let Ok(receipt) = log.receipt(index, entry.as_bytes()) {
            out.push(Receipt { event, index, receipt });
        }
    }
    Ok(Json(ReceiptList { receipts: out, log_size: log.size() }))
}
