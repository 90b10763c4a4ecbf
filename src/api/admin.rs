//! Administration: organisations, users, API tokens; and `whoami` for everyone.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiQuery};
use crate::config::parse_duration;
use crate::gateway::Gateway;
use crate::ids::{BearerSecret, TokenId};
use crate::model::{OrgKind, Role, UserRef, check_name};
use crate::wire::accounts::{
    IssuedToken, NewOrg, NewToken, NewUser, OrgInfo, OrgList, Revoked, TokenList, TokenQuery, UserList, Whoami,
};

/// The administration routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/orgs", get(list_orgs).post(add_org))
        .route("/api/v1/users", get(list_users).post(add_user))
        .route("/api/v1/users/{org}/{name}/tokens", delete(revoke_user_tokens))
        .route("/api/v1/tokens", get(list_tokens).post(issue_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

async fn whoami(caller: Caller) -> Json<Whoami> {
    let p = caller.0;
    Json(Whoami { user: p.user, role: p.role, org_kind: p.org_kind })
}

async fn add_org(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewOrg>,
) -> Result<(StatusCode, Json<OrgInfo>), ApiError> {
    caller.require(&[Role::Admin], "manage organisations")?;
    check_name(&req.name)?;
    let kind: OrgKind = req.kind.parse()?;
    if !kind.creatable() {
        return Err(ApiError::bad_request("use `contractor`, `agency` or `compliance` as the kind"));
    }
    let org = gw.store.create_org(&caller.0.id, &req.name, kind, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

async fn list_orgs(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<OrgList>, ApiError> {
    caller.require(&[Role::Admin], "list organisations")?;
    Ok(Json(OrgList { orgs: gw.store.list_orgs().await? }))
}

fn token_expiry(gw: &Gateway, lifetime: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let lifetime = match lifetime {
        Some("never") => None,
        Some(v) => Some(parse_duration("token_lifetime", v).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => gw.config.token_lifetime,
    };
    lifetime
        .map(|d| chrono::Duration::from_std(d).map(|d| gw.clock.now() + d))
        .transpose()
        .map_err(|_| ApiError::bad_request("that token lifetime is out of range"))
}

fn parse_user(s: &str) -> Result<UserRef, ApiError> {
    Ok(s.parse()?)
}

async fn add_user(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.require(&[Role::Admin], "manage users")?;
    let user = parse_user(&req.user)?;
    let role: Role = req.role.parse()?;
    let expires_at = token_expiry(&gw, req.token_lifetime.as_deref())?;
    let token = BearerSecret::generate("sp_");
    let token_id = gw.store.create_user(&caller.0.id, &user, role, &token.hash(), expires_at, gw.clock.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            user,
            role: Some(role),
            token: token.expose().to_owned(),
            token_id: token_id.to_string(),
            expires_at,
        }),
    ))
}

async fn list_users(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<UserList>, ApiError> {
    caller.require(&[Role::Admin], "list users")?;
    Ok(Json(UserList { users: gw.store.list_users().await? }))
}

async fn issue_token(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.require(&[Role::Admin], "issue tokens")?;
    let user = parse_user(&req.user)?;
    let expires_at = token_expiry(&gw, req.lifetime.as_deref())?;
    let token = BearerSecret::generate("sp_");
    let token_id = gw.store.issue_token(&caller.0.id, &user, &token.hash(), expires_at, gw.clock.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            user,
            role: None,
            token: token.expose().to_owned(),
            token_id: token_id.to_string(),
            expires_at,
        }),
    ))
}

async fn list_tokens(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Json<TokenList>, ApiError> {
    caller.require(&[Role::Admin], "list tokens")?;
    let user = q.user.as_deref().map(parse_user).transpose()?;
    Ok(Json(TokenList { tokens: gw.store.list_tokens(user.as_ref()).await? }))
}

async fn revoke_token(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    caller.require(&[Role::Admin], "revoke tokens")?;
    let id = TokenId::parse(&id).ok_or_else(|| ApiError::not_found(format!("there is no token `{id}`")))?;
    gw.store.revoke_token(&caller.0.id, &id, gw.clock.now()).await?;
    Ok(Json(Revoked { revoked: 1 }))
}

async fn revoke_user_tokens(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((org, name)): Path<(String, String)>,
) -> Result<Json<Revoked>, ApiError> {
    caller.require(&[Role::Admin], "revoke tokens")?;
    let user = UserRef::new(&org, &name)?;
    let n = gw.store.revoke_user_tokens(&caller.0.id, &user, gw.clock.now()).await?;
    Ok(Json(Revoked { revoked: n }))
}
