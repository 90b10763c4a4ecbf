//! Bearer-token authentication: the `Caller` extractor.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::gateway::Gateway;
use crate::ids::BearerSecret;
use crate::model::Principal;
use crate::model::Role;

/// The authenticated caller. Extracting it answers 401 when the token is missing, unknown,
/// expired or revoked (without saying which).
#[derive(Debug, Clone)]
pub(super) struct Caller(pub(super) Principal);

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub(super) fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(format!("only users with the {} role can {what}", names.join(" or "))))
    }

    /// True for administrators.
    pub(super) fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }
}

impl FromRequestParts<Arc<Gateway>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(ApiError::unauthenticated)?;
        let value = value.to_str().map_err(|_| ApiError::unauthenticated())?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(ApiError::unauthenticated)?;
        let secret = BearerSecret::from_client(token);
        match gw.store.authenticate(&secret.hash(), gw.clock.now()).await? {
            Some(principal) => Ok(Self(principal)),
            None => Err(ApiError::unauthenticated()),
        }
    }
}
