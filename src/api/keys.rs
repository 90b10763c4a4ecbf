//! The key directory over HTTP: register your own recipient keys, look up anyone's.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::directory::{KeyError, RecipientKey};
use crate::gateway::Gateway;
use crate::model::{KeyInfo, UserRef};
use crate::wire::keys::{KeyRemoved, NewKey, OwnKeys, PublishedKey, UserKeys};
use crate::wire::{ErrorBody, ErrorCode};

/// The key directory routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(add_key, my_keys))
        .routes(routes!(user_keys, add_user_key))
        .routes(routes!(remove_key))
}

/// Register one of the caller's own public keys.
///
/// Any valid token: the key is registered for the token's owner, and the registration is a log
/// entry (`key.added`).
#[utoipa::path(post, path = "/api/v1/keys", operation_id = "add_key", tag = "keys",
    security(("bearer" = [])),
    request_body = NewKey,
    responses(
        (status = 201, description = "Registered.", body = KeyInfo),
        (status = 400, description = "`bad_request`: the body is not a `NewKey`.", body = ErrorBody),
        (status = 409, description = "`already_exists`: the caller has that key already.", body = ErrorBody),
        (status = 422, description = "`invalid_key`: not a public key the directory accepts; `private_key_refused`: a private key, which is never stored.", body = ErrorBody),
    ))]
async fn add_key(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<KeyInfo>), ApiError> {
    let key = parse_key(&gw, &req)?;
    let info = gw.store.add_key(&caller.0.id, &caller.0.user, &key, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

fn parse_key(gw: &Gateway, req: &NewKey) -> Result<RecipientKey, ApiError> {
    RecipientKey::parse(&req.recipient, gw.config.allow_ssh_recipients).map_err(|e| {
        let code = match e {
            KeyError::PrivateKey => ErrorCode::PrivateKeyRefused,
            _ => ErrorCode::InvalidKey,
        };
        ApiError::new(code, e.to_string())
    })
}

/// Register a key for another user (administrators).
///
/// Logged like any key (`key.added`, naming the owner by commitment and the administrator as
/// actor), so the owner's `sealpost keys monitor` reports it.
#[utoipa::path(post, path = "/api/v1/keys/{org}/{name}", operation_id = "add_user_key", tag = "keys",
    security(("bearer" = [])),
    params(
        ("org" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The owner's organisation."),
        ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The owner's name in it."),
    ),
    request_body = NewKey,
    responses(
        (status = 201, description = "Registered.", body = KeyInfo),
        (status = 400, description = "`bad_request`: the organisation or the name is not valid, or the body is not a `NewKey`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such user.", body = ErrorBody),
        (status = 409, description = "`already_exists`: the user has that key already.", body = ErrorBody),
        (status = 422, description = "`invalid_key`: not a public key the directory accepts; `private_key_refused`: a private key, which is never stored.", body = ErrorBody),
    ))]
async fn add_user_key(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((org, name)): Path<(String, String)>,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<KeyInfo>), ApiError> {
    let user = user_ref(&org, &name)?;
    if !caller.is_admin() {
        return Err(ApiError::forbidden("only an administrator can register a key for another user"));
    }
    let key = parse_key(&gw, &req)?;
    let info = gw.store.add_key(&caller.0.id, &user, &key, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

fn user_ref(org: &str, name: &str) -> Result<UserRef, ApiError> {
    Ok(UserRef::new(org, name)?)
}

/// List the caller's own live keys.
///
/// Any valid token.
#[utoipa::path(get, path = "/api/v1/keys", operation_id = "my_keys", tag = "keys",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's keys, oldest first.", body = OwnKeys)))]
async fn my_keys(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<OwnKeys>, ApiError> {
    let keys = gw.store.list_keys(&caller.0.user).await?;
    let name_salt = gw.store.name_salt(&caller.0.user).await?;
    Ok(Json(OwnKeys { user: caller.0.user, name_salt, keys }))
}

/// Look up a user's live keys, each with the receipt of its registration.
///
/// Any valid token: senders encrypt to these keys.
#[utoipa::path(get, path = "/api/v1/keys/{org}/{name}", operation_id = "user_keys", tag = "keys",
    security(("bearer" = [])),
    params(
        ("org" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The user's organisation."),
        ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The user's name in it."),
    ),
    responses(
        (status = 200, description = "The user's keys, oldest first.", body = UserKeys),
        (status = 400, description = "`bad_request`: the organisation or the name is not valid.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such user.", body = ErrorBody),
    ))]
async fn user_keys(
    State(gw): State<Arc<Gateway>>,
    _caller: Caller,
    Path((org, name)): Path<(String, String)>,
) -> Result<Json<UserKeys>, ApiError> {
    let user = user_ref(&org, &name)?;
    let keys = gw.store.list_keys(&user).await?;
    // Key transparency: each key comes with a receipt for the log entry that registered it, so
    // a sender can check that the key it encrypts to is the one everybody else sees.
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let receipt = match gw.store.key_entry(&user, &key.fingerprint).await? {
            Some((index, entry)) => gw.log.log().receipt(index, entry.as_bytes()).await.ok(),
            None => None,
        };
        out.push(PublishedKey::new(key, receipt));
    }
    let name_salt = gw.store.name_salt(&user).await?;
    Ok(Json(UserKeys { user, name_salt, keys: out }))
}

/// Remove a key by its fingerprint.
///
/// The key's owner, or an administrator. The removal is a log entry (`key.removed`).
#[utoipa::path(delete, path = "/api/v1/keys/{org}/{name}/{fingerprint}", operation_id = "remove_key", tag = "keys",
    security(("bearer" = [])),
    params(
        ("org" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The owner's organisation."),
        ("name" = String, Path, pattern = "^[a-z0-9][a-z0-9._-]{0,63}$", description = "The owner's name in it."),
        ("fingerprint" = String, Path, pattern = "^sha256:[0-9a-f]{64}$", description = "The key's fingerprint (`sha256:…`)."),
    ),
    responses(
        (status = 200, description = "Removed.", body = KeyRemoved),
        (status = 400, description = "`bad_request`: the organisation or the name is not valid.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is neither the key's owner nor an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such user, or it has no live key with that fingerprint.", body = ErrorBody),
    ))]
async fn remove_key(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path((org, name, fingerprint)): Path<(String, String, String)>,
) -> Result<Json<KeyRemoved>, ApiError> {
    let user = user_ref(&org, &name)?;
    if user != caller.0.user && !caller.is_admin() {
        return Err(ApiError::forbidden("only a key's owner or an admin can remove it"));
    }
    gw.store.remove_key(&caller.0.id, &user, &fingerprint, gw.clock.now()).await?;
    Ok(Json(KeyRemoved { removed: fingerprint }))
}
