//! Routes between organisations (who may send to whom) and policy reload: administration.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::gateway::Gateway;
use crate::model::{Role, check_name};
use crate::wire::routes::{NewRoute, PolicyInfo, RouteEnds, RouteInfo, RouteList, RouteRemoved};

/// The route and policy administration routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/routes", get(list).post(add))
        .route("/api/v1/routes/{from}/{to}", delete(remove))
        .route("/api/v1/policy", get(show_policy))
        .route("/api/v1/policy/reload", post(reload))
}

async fn add(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewRoute>,
) -> Result<(StatusCode, Json<RouteInfo>), ApiError> {
    caller.require(&[Role::Admin], "manage routes")?;
    check_name(&req.from)?;
    check_name(&req.to)?;
    let route = gw.store.add_route(&caller.0.id, &req.from, &req.to, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(route)))
}

async fn list(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<RouteList>, ApiError> {
    caller.require(&[Role::Admin], "list routes")?;
    Ok(Json(RouteList { routes: gw.store.list_routes().await? }))
}

async fn remove(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((from, to)): Path<(String, String)>,
) -> Result<Json<RouteRemoved>, ApiError> {
    caller.require(&[Role::Admin], "manage routes")?;
    gw.store.remove_route(&caller.0.id, &from, &to, gw.clock.now()).await?;
    Ok(Json(RouteRemoved { removed: RouteEnds { from, to } }))
}

async fn show_policy(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<PolicyInfo>, ApiError> {
    caller.require(&[Role::Admin, Role::Compliance], "see the policy set")?;
    Ok(Json(PolicyInfo { source: gw.gate.source().to_string(), digest: gw.gate.digest() }))
}

async fn reload(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<PolicyInfo>, ApiError> {
    caller.require(&[Role::Admin], "reload policies")?;
    let digest = crate::lifecycle::reload_policies(&gw, Some(&caller.0.id)).await?;
    Ok(Json(PolicyInfo { source: gw.gate.source().to_string(), digest }))
}
