//! `GET /api/v1/transfers`: what the caller sent, newest first, with where each stands.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::auth::Caller;
use super::error::ApiError;
use crate::gateway::Gateway;
use crate::wire::sent::Sent;

/// The sent-transfers route.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/api/v1/transfers", get(sent))
}

async fn sent(State(gw): State<Arc<Gateway>>, Caller(caller): Caller) -> Result<Json<Sent>, ApiError> {
    Ok(Json(Sent { transfers: gw.store.sent_transfers(&caller.id, gw.clock.now()).await? }))
}
