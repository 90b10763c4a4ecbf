//! `GET /api/v1/directory`: who can be addressed (organisations and their recipients), for the
//! send page's list of names. Any signed-in user may read it, as anyone may look keys up.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::ApiError;
use crate::gateway::Gateway;
use crate::wire::directory::Directory;

/// The directory route.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(directory))
}

/// Who can be addressed: organisations and their users.
///
/// Any signed-in user, as anyone may look keys up.
#[utoipa::path(get, path = "/api/v1/directory", operation_id = "directory", tag = "keys",
    security(("bearer" = [])),
    responses((status = 200, description = "The directory.", body = Directory)))]
async fn directory(State(gw): State<Arc<Gateway>>, _caller: Caller) -> Result<Json<Directory>, ApiError> {
    Ok(Json(gw.store.directory().await?))
}
