//! The health check. (The page a link opens, `GET /d`, is the browser's collect page: `web`.)

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::gateway::Gateway;
use crate::wire::ErrorBody;
use crate::wire::health::{Health, HealthStatus};

/// The health route.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(healthz))
}

/// Health: whether the gateway can reach its database.
///
/// No token needed.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses(
        (status = 200, description = "Ready.", body = Health),
        (status = 503, description = "`unavailable`: the database cannot be reached.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
    ))]
async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.store.ping().await {
        Ok(()) => Json(Health { status: HealthStatus::Ok }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            crate::api::error::ApiError::unavailable().into_response()
        }
    }
}
