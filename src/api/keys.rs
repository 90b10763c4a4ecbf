//! The key directory over HTTP: register your own recipient keys, look up anyone's.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::directory::{KeyError, RecipientKey};
use crate::gateway::Gateway;
use crate::model::{KeyInfo, UserRef};
use crate::wire::ErrorCode;
use crate::wire::keys::{KeyRemoved, NewKey, OwnKeys, PublishedKey, UserKeys};

/// The key directory routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/keys", post(add_key).get(my_keys))
        .route("/api/v1/keys/{org}/{name}", get(user_keys))
        .route("/api/v1/keys/{org}/{name}/{fingerprint}", delete(remove_key))
}

async fn add_key(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<KeyInfo>), ApiError> {
    let key = RecipientKey::parse(&req.recipient, gw.config.allow_ssh_recipients).map_err(|e| {
        let code = match e {
            KeyError::PrivateKey => ErrorCode::PrivateKeyRefused,
            _ => ErrorCode::InvalidKey,
        };
        ApiError::new(code, e.to_string())
    })?;
    let info = gw.store.add_key(&caller.0.id, &caller.0.user, &key, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

fn user_ref(org: &str, name: &str) -> Result<UserRef, ApiError> {
    Ok(UserRef::new(org, name)?)
}

async fn my_keys(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<OwnKeys>, ApiError> {
    let keys = gw.store.list_keys(&caller.0.user).await?;
    Ok(Json(OwnKeys { user: caller.0.user, keys }))
}

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
            Some((index, entry)) => gw.log.log().receipt(index, entry.as_bytes()).ok(),
            None => None,
        };
        out.push(PublishedKey::new(key, receipt));
    }
    Ok(Json(UserKeys { user, keys: out }))
}

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
