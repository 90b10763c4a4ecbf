//! `GET /api/v1/directory`: who can be addressed (organisations and their recipients), for the
//! send page's list of names. Any signed-in user may read it, as anyone may look keys up.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::auth::Caller;
use super::error::ApiError;
use crate::gateway::Gateway;
use crate::wire::directory::Directory;

/// The directory route.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/api/v1/directory", get(directory))
}

async fn directory(State(gw): State<Arc<Gateway>>, _caller: Caller) -> Result<Json<Directory>, ApiError> {
    Ok(Json(gw.store.directory().await?))
}
