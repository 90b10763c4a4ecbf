//! Administration: organisations, users, API tokens; and `whoami` for everyone.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiQuery};
use crate::config::parse_duration;
use crate::gateway::Gateway;
use crate::ids::{BearerSecret, TokenId};
use crate::model::{OrgKind, Role, UserRef, check_name};
use crate::wire::ErrorBody;
use crate::wire::accounts::{
    Claim, IssuedToken, NewOrg, NewToken, NewUser, OrgInfo, OrgList, Revoked, TokenList, TokenQuery, UserList, Whoami,
};

/// The administration routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(list_orgs, add_org))
        .routes(routes!(list_users, add_user))
        .routes(routes!(revoke_user_tokens))
        .routes(routes!(list_tokens, issue_token))
        .routes(routes!(revoke_token))
        .routes(routes!(claim))
}

/// Who the token belongs to, and how long this gateway's links live by default.
///
/// Any valid token.
#[utoipa::path(get, path = "/api/v1/whoami", operation_id = "whoami", tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The token's owner.", body = Whoami)))]
async fn whoami(State(gw): State<Arc<Gateway>>, caller: Caller) -> Json<Whoami> {
    let p = caller.0;
    Json(Whoami {
        id: p.id.to_string(),
        user: p.user,
        role: p.role,
        org_kind: p.org_kind,
        default_expiry_seconds: gw.config.default_expiry.as_secs(),
    })
}

/// Create an organisation.
///
/// Administrators only.
#[utoipa::path(post, path = "/api/v1/orgs", operation_id = "add_org", tag = "accounts",
    security(("bearer" = [])),
    request_body = NewOrg,
    responses(
        (status = 201, description = "Created.", body = OrgInfo),
        (status = 400, description = "`bad_request`: the body is not a `NewOrg`, the name is not valid, or the kind is not `contractor`, `agency` or `compliance`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 409, description = "`already_exists`: an organisation has that name.", body = ErrorBody),
    ))]
async fn add_org(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewOrg>,
) -> Result<(StatusCode, Json<OrgInfo>), ApiError> {
    caller.administer(&gw, "manage organisations")?;
    check_name(&req.name)?;
    let kind: OrgKind = req.kind.parse()?;
    if !kind.creatable() {
        return Err(ApiError::bad_request("use `contractor`, `agency` or `compliance` as the kind"));
    }
    let org = gw.store.create_org(&caller.0.id, &req.name, kind, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// List organisations.
///
/// Administrators only.
#[utoipa::path(get, path = "/api/v1/orgs", operation_id = "list_orgs", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every organisation, by name.", body = OrgList),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
    ))]
async fn list_orgs(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<OrgList>, ApiError> {
    caller.administer(&gw, "list organisations")?;
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

/// Create a user and its first API token.
///
/// Administrators only. The answer is the only time the token's secret is shown.
#[utoipa::path(post, path = "/api/v1/users", operation_id = "add_user", tag = "accounts",
    security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "Created, with its first token.", body = IssuedToken),
        (status = 400, description = "`bad_request`: the body is not a `NewUser`, or its user, role, email address or token lifetime is not valid.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such organisation.", body = ErrorBody),
        (status = 409, description = "`already_exists`: the organisation has a user of that name, or another user has that email address.", body = ErrorBody),
    ))]
async fn add_user(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.administer(&gw, "manage users")?;
    let user = parse_user(&req.user)?;
    let role: Role = req.role.parse()?;
    let email = req.email.as_deref().map(crate::model::normalise_email).transpose()?;
    let expires_at = token_expiry(&gw, req.token_lifetime.as_deref())?;
    let token = BearerSecret::generate("sp_");
    let token_id = gw
        .store
        .create_user(&caller.0.id, &user, role, email.as_deref(), &token.hash(), expires_at, gw.clock.now())
        .await?;
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

/// Exchange the bootstrap token for a named administrator.
///
/// Only with the first start's bootstrap token (`DATA/admin.token`), sent as a bearer token,
/// once: makes the administrator `user` and its first token (no expiry), and revokes the
/// bootstrap token, which the gateway then removes from its data directory. The answer is the
/// only time the new token's secret is shown.
#[utoipa::path(post, path = "/api/v1/bootstrap/claim", operation_id = "claim_bootstrap", tag = "accounts",
    security(("bearer" = [])),
    request_body = Claim,
    responses(
        (status = 201, description = "The administrator, with its first token; the bootstrap token no longer works.", body = IssuedToken),
        (status = 400, description = "`bad_request`: the body is not a `Claim`, or its user or email address is not valid.", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no bearer token, or one that does not work.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token is not the bootstrap token (or a page session sent it).", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such organisation.", body = ErrorBody),
        (status = 409, description = "`already_exists`: the organisation has a user of that name, or another user has that email address; the bootstrap token still works.", body = ErrorBody),
    ))]
async fn claim(
    State(gw): State<Arc<Gateway>>,
    headers: axum::http::HeaderMap,
    caller: Caller,
    ApiJson(req): ApiJson<Claim>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let bootstrap = super::auth::bearer(&headers).ok_or_else(|| {
        ApiError::forbidden(
            "the bootstrap token is exchanged with the token itself: send it as `Authorization: Bearer TOKEN` (sealpost admin claim)",
        )
    })?;
    let user = parse_user(&req.user)?;
    let email = req.email.as_deref().map(crate::model::normalise_email).transpose()?;
    let token = BearerSecret::generate("sp_");
    let now = gw.clock.now();
    let presented = crate::store::Presented::Token(&bootstrap.hash());
    let token_id = gw.store.claim(presented, &user, email.as_deref(), &token.hash(), now).await?;
    // This gateway's copy goes now; the others' at their next heartbeat.
    let _ = crate::gateway::retire_admin_token(&gw.store, &gw.config.data_dir, now).await;
    tracing::info!(by = %caller.0.user, %user, "the bootstrap token was exchanged for an administrator");
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            user,
            role: Some(Role::Admin),
            token: token.expose().to_owned(),
            token_id: token_id.to_string(),
            expires_at: None,
        }),
    ))
}

/// List users.
///
/// Administrators only.
#[utoipa::path(get, path = "/api/v1/users", operation_id = "list_users", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every user.", body = UserList),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
    ))]
async fn list_users(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<UserList>, ApiError> {
    caller.administer(&gw, "list users")?;
    Ok(Json(UserList { users: gw.store.list_users().await? }))
}

/// Issue another API token for a user.
///
/// Administrators only. The answer is the only time the token's secret is shown.
#[utoipa::path(post, path = "/api/v1/tokens", operation_id = "issue_token", tag = "accounts",
    security(("bearer" = [])),
    request_body = NewToken,
    responses(
        (status = 201, description = "Issued.", body = IssuedToken),
        (status = 400, description = "`bad_request`: the body is not a `NewToken`, or its user or lifetime is not valid.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such user.", body = ErrorBody),
    ))]
async fn issue_token(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    caller.administer(&gw, "issue tokens")?;
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

/// List API tokens (never their secrets).
///
/// Administrators only.
#[utoipa::path(get, path = "/api/v1/tokens", operation_id = "list_tokens", tag = "accounts",
    security(("bearer" = [])),
    params(TokenQuery),
    responses(
        (status = 200, description = "The tokens, newest first.", body = TokenList),
        (status = 400, description = "`bad_request`: the query string is not valid, or `user` is not `ORG/NAME`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
    ))]
async fn list_tokens(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Json<TokenList>, ApiError> {
    caller.administer(&gw, "list tokens")?;
    let user = q.user.as_deref().map(parse_user).transpose()?;
    Ok(Json(TokenList { tokens: gw.store.list_tokens(user.as_ref()).await? }))
}

/// Revoke one API token.
///
/// Administrators only. Revoking a revoked token changes nothing.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", operation_id = "revoke_token", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The token's id (from the token list).")),
    responses(
        (status = 200, description = "Revoked.", body = Revoked),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such token.", body = ErrorBody),
        (status = 409, description = "`last_administrator`: no administrator could sign in any more; nothing was revoked.", body = ErrorBody),
    ))]
async fn revoke_token(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    caller.administer(&gw, "revoke tokens")?;
    let id = TokenId::parse(&id).ok_or_else(|| ApiError::not_found(format!("there is no token `{id}`")))?;
    gw.store.revoke_token(&caller.0.id, &id, gw.clock.now()).await?;
    Ok(Json(Revoked { revoked: 1 }))
}

/// Revoke every live API token of a user.
///
/// Administrators only.
#[utoipa::path(delete, path = "/api/v1/users/{org}/{name}/tokens", operation_id = "revoke_user_tokens", tag = "accounts",
    security(("bearer" = [])),
    params(
        ("org" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The user's organisation."),
        ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The user's name in it."),
    ),
    responses(
        (status = 200, description = "Revoked.", body = Revoked),
        (status = 400, description = "`bad_request`: the organisation or the name is not valid.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such user.", body = ErrorBody),
        (status = 409, description = "`last_administrator`: no administrator could sign in any more; nothing was revoked.", body = ErrorBody),
    ))]
async fn revoke_user_tokens(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((org, name)): Path<(String, String)>,
) -> Result<Json<Revoked>, ApiError> {
    caller.administer(&gw, "revoke tokens")?;
    let user = UserRef::new(&org, &name)?;
    let n = gw.store.revoke_user_tokens(&caller.0.id, &user, gw.clock.now()).await?;
    Ok(Json(Revoked { revoked: n }))
}
