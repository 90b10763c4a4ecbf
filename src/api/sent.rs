//! `GET /api/v1/transfers`: what the caller sent, newest first, with where each stands.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::ApiError;
use crate::gateway::Gateway;
use crate::wire::sent::Sent;

/// The sent-transfers route.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(sent))
}

/// What the caller sent, newest first, with where each transfer stands.
///
/// Any signed-in user (a bearer token, or a page's session with its CSRF header).
#[utoipa::path(get, path = "/api/v1/transfers", operation_id = "sent_transfers", tag = "transfers",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's transfers.", body = Sent)))]
async fn sent(State(gw): State<Arc<Gateway>>, Caller(caller): Caller) -> Result<Json<Sent>, ApiError> {
    Ok(Json(Sent { transfers: gw.store.sent_transfers(&caller.id, gw.clock.now()).await? }))
}
