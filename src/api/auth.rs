//! Authentication: the `Caller` extractor, from a bearer token or a browser session.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};

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

    /// 403 unless the caller is an administrator whom policy lets administer (`what` names the
    /// task): Cedar's `administer`, which asks people signed in through an identity provider for
    /// a multi-factor sign-in.
    pub(super) fn administer(&self, gw: &Gateway, what: &str) -> Result<(), ApiError> {
        self.require(&[Role::Admin], what)?;
        gw.gate.administer(&self.0, what, gw.clock.now())?;
        Ok(())
    }

    /// True for administrators.
    pub(super) fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }
}

impl FromRequestParts<Arc<Gateway>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        // Browser pages call the API with their session cookie instead (spec-web.md).
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return from_session(parts, gw).await;
        }
        let secret = bearer(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        match gw.store.authenticate(&secret.hash(), gw.clock.now()).await? {
            Some(principal) => Ok(Self(principal)),
            None => Err(ApiError::unauthenticated()),
        }
    }
}

/// The bearer token of a request's `Authorization` header, if it has one.
pub(super) fn bearer(headers: &axum::http::HeaderMap) -> Option<BearerSecret> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    Some(BearerSecret::from_client(token))
}

/// The header in which page scripts send their session's CSRF token.
const CSRF_HEADER: &str = "x-csrf-token";

/// A caller without an `Authorization` header: a page script, with the browser's session
/// cookie. Every method but `GET`, `HEAD` and `OPTIONS` must also carry the session's CSRF token
/// in `X-CSRF-Token` (the page's `<meta name="csrf-token">`), or it is refused with 403.
async fn from_session(parts: &Parts, gw: &Arc<Gateway>) -> Result<Caller, ApiError> {
    let session = crate::web::session::current(gw, &parts.headers).await?.ok_or_else(ApiError::unauthenticated)?;
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !session.csrf_ok(presented) {
            return Err(ApiError::forbidden(
                "a request from a page must carry the page's CSRF token in `X-CSRF-Token`: reload the page and try again",
            ));
        }
    }
    Ok(Caller(session.session.principal))
}
