//! Uploads, the sender's view of a transfer, recall, and a compliance officer's decision.
//!
//! `POST /api/v1/transfers?to=ORG/NAME[&to=…][&expires=72h][&classification=…]` takes the age
//! file as a streamed body (any length, chunked allowed), so `curl -T` and `age … | curl -T -`
//! work as they are. Each handler extracts, calls one step of the transfer lifecycle
//! ([`crate::lifecycle`]), and maps the answer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::auth::Caller;
use super::error::ApiError;
use crate::gateway::Gateway;
use crate::lifecycle;
use crate::wire::TransferStatus;
use crate::wire::transfers::{DecisionAnswer, RecallAnswer, TransferView, UploadAnswer};

/// The transfer routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/transfers", post(upload))
        .route("/api/v1/transfers/{id}", get(show).delete(recall))
        .route("/api/v1/transfers/{id}/approve", post(approve))
        .route("/api/v1/transfers/{id}/reject", post(reject))
}

/// `201 Created` for a transfer whose links work, `202 Accepted` for one held for approval.
pub(super) fn upload_status(status: TransferStatus) -> StatusCode {
    if status == TransferStatus::AwaitingApproval { StatusCode::ACCEPTED } else { StatusCode::CREATED }
}

async fn upload(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadAnswer>), ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let checked = lifecycle::check_request(&gw, &caller, raw.as_deref().unwrap_or_default(), declared).await?;
    let answer = lifecycle::upload(&gw, &caller, checked, &mut body.into_data_stream()).await?;
    Ok((upload_status(answer.status), Json(answer)))
}

async fn show(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<TransferView>, ApiError> {
    Ok(Json(lifecycle::transfer_view(&gw, &caller, &id).await?))
}

async fn recall(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<RecallAnswer>, ApiError> {
    Ok(Json(lifecycle::recall(&gw, &caller, &id).await?))
}

async fn approve(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<DecisionAnswer>, ApiError> {
    Ok(Json(lifecycle::decide(&gw, &caller, &id, true, None).await?))
}

async fn reject(
    State(gw): State<Arc<Gateway>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<DecisionAnswer>, ApiError> {
    Ok(Json(lifecycle::decide(&gw, &caller, &id, false, None).await?))
}
