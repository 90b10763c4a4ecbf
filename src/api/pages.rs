//! The health check. (The page a link opens, `GET /d`, is the browser's collect page: `web`.)

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::gateway::Gateway;

/// The health route.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/healthz", get(healthz))
}

/// 200 when the gateway can reach its database, 503 otherwise.
async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.store.ping().await {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], "{\"status\":\"ok\"}\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            crate::api::error::ApiError::unavailable().into_response()
        }
    }
}
