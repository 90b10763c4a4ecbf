//! Routes between organisations (who may send to whom) and policy reload: administration.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiJson};

use crate::gateway::Gateway;
use crate::model::{Role, check_name};

/// The route and policy administration routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/routes", get(list).post(add))
        .route("/api/v1/routes/{from}/{to}", delete(remove))
        .route("/api/v1/policy", get(show_policy))
        .route("/api/v1/policy/reload", post(reload))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoute {
    from: String,
    to: String,
}

async fn add(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewRoute>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(&[Role::Admin], "manage routes")?;
    check_name(&req.from)?;
    check_name(&req.to)?;
    let route = gw.store.add_route(&caller.0.id, &req.from, &req.to, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(json!(route))))
}

async fn list(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "list routes")?;
    Ok(Json(json!({ "routes": gw.store.list_routes().await? })))
}

async fn remove(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((from, to)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "manage routes")?;
    gw.store.remove_route(&caller.0.id, &from, &to, gw.clock.now()).await?;
    Ok(Json(json!({ "removed": { "from": from, "to": to } })))
}

async fn show_policy(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin, Role::Compliance], "see the policy set")?;
    Ok(Json(json!({ "source": gw.gate.source().to_string(), "digest": gw.gate.digest() })))
}

async fn reload(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Admin], "reload policies")?;
    let digest = crate::lifecycle::reload_policies(&gw, Some(&caller.0.id)).await?;
    Ok(Json(json!({ "source": gw.gate.source().to_string(), "digest": digest })))
}
