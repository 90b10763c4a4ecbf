//! Routes between organisations (who may send to whom) and policy reload: administration.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::gateway::Gateway;
use crate::model::{Role, check_name};
use crate::wire::ErrorBody;
use crate::wire::routes::{NewRoute, PolicyInfo, RouteEnds, RouteInfo, RouteList, RouteRemoved};

/// The route and policy administration routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
        .routes(routes!(show_policy))
        .routes(routes!(reload))
}

/// Let one organisation send to another.
///
/// Administrators only.
#[utoipa::path(post, path = "/api/v1/routes", operation_id = "add_route", tag = "routes",
    security(("bearer" = [])),
    request_body = NewRoute,
    responses(
        (status = 201, description = "Added.", body = RouteInfo),
        (status = 400, description = "`bad_request`: the body is not a `NewRoute`, or a name is not valid.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such organisation.", body = ErrorBody),
        (status = 409, description = "`already_exists`: the route exists.", body = ErrorBody),
    ))]
async fn add(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewRoute>,
) -> Result<(StatusCode, Json<RouteInfo>), ApiError> {
    caller.administer(&gw, "manage routes")?;
    check_name(&req.from)?;
    check_name(&req.to)?;
    let route = gw.store.add_route(&caller.0.id, &req.from, &req.to, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(route)))
}

/// List routes.
///
/// Administrators only.
#[utoipa::path(get, path = "/api/v1/routes", operation_id = "list_routes", tag = "routes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every route.", body = RouteList),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
    ))]
async fn list(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<RouteList>, ApiError> {
    caller.administer(&gw, "list routes")?;
    Ok(Json(RouteList { routes: gw.store.list_routes().await? }))
}

/// Stop one organisation sending to another.
///
/// Administrators only.
#[utoipa::path(delete, path = "/api/v1/routes/{from}/{to}", operation_id = "remove_route", tag = "routes",
    security(("bearer" = [])),
    params(
        ("from" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The sending organisation."),
        ("to" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The receiving organisation."),
    ),
    responses(
        (status = 200, description = "Removed.", body = RouteRemoved),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such route.", body = ErrorBody),
    ))]
async fn remove(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((from, to)): Path<(String, String)>,
) -> Result<Json<RouteRemoved>, ApiError> {
    caller.administer(&gw, "manage routes")?;
    gw.store.remove_route(&caller.0.id, &from, &to, gw.clock.now()).await?;
    Ok(Json(RouteRemoved { removed: RouteEnds { from, to } }))
}

/// Where the policies in force come from, and their digest.
///
/// Administrators and compliance officers.
#[utoipa::path(get, path = "/api/v1/policy", operation_id = "show_policy", tag = "routes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy set in force.", body = PolicyInfo),
        (status = 403, description = "`forbidden`: the caller is neither an administrator nor a compliance officer.", body = ErrorBody),
    ))]
async fn show_policy(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<PolicyInfo>, ApiError> {
    caller.require(&[Role::Admin, Role::Compliance], "see the policy set")?;
    Ok(Json(PolicyInfo { source: gw.gate.source().to_string(), digest: gw.gate.digest() }))
}

/// Re-read the policies from their directory.
///
/// Administrators only. The new set is validated first; an invalid set is refused and the old
/// one stays in force. A change is a log entry (`policy.changed`).
#[utoipa::path(post, path = "/api/v1/policy/reload", operation_id = "reload_policy", tag = "routes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The policy set in force now.", body = PolicyInfo),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 422, description = "`invalid_policy`: the set on disk is invalid; the old one stays in force.", body = ErrorBody),
    ))]
async fn reload(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<PolicyInfo>, ApiError> {
    caller.administer(&gw, "reload policies")?;
    let digest = crate::lifecycle::reload_policies(&gw, Some(&caller.0.id)).await?;
    Ok(Json(PolicyInfo { source: gw.gate.source().to_string(), digest }))
}
