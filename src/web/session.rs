//! Browser sessions at the HTTP edge: the cookies, the CSRF tokens, and the extractors pages use.
//!
//! Signing in with an API token starts a server-side session (`store::sessions`). The cookie
//! `__Host-sealpost-session` carries 256 random bits (the store keeps their SHA-256); it is
//! `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/`, host-only. Each session's CSRF token is
//! derived from the cookie's secret (SHA-256 under a label), so it needs no storage, changes with
//! every session, and reveals nothing of the cookie: pages carry it in
//! `<meta name="csrf-token">` and in a hidden `csrf` field of every form; page scripts send it in
//! `X-CSRF-Token`. The sign-in form itself is protected the same way by a short-lived pre-session
//! cookie, `__Host-sealpost-sign-in`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::error::PageError;
use crate::gateway::Gateway;
use crate::ids::BearerSecret;
use crate::store::{Session, SessionLookup, StoreError};

/// The session cookie's name (the `__Host-` prefix makes browsers insist on `Secure`, `Path=/`
/// and no `Domain`).
pub(crate) const SESSION_COOKIE: &str = "__Host-sealpost-session";
/// The pre-session cookie that protects the sign-in form.
pub(crate) const SIGN_IN_COOKIE: &str = "__Host-sealpost-sign-in";
/// The cookie that ties a single sign-on attempt to the browser that started it. `SameSite=Lax`,
/// unlike the others: the provider's redirect back is a cross-site navigation, which a strict
/// cookie would not come with.
pub(crate) const SSO_COOKIE: &str = "__Host-sealpost-sso";
/// How long a sign-in form stays usable.
const SIGN_IN_FORM_SECONDS: u32 = 3600;

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().split_once('=').filter(|(n, _)| *n == name).map(|(_, v)| v))
}

/// The CSRF token bound to a cookie's secret, for one purpose.
fn derive_csrf(secret: &str, purpose: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"sealpost/csrf/v1\n")
        .chain_update(purpose.as_bytes())
        .chain_update(b"\n")
        .chain_update(secret.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}

/// Compares a presented CSRF token with the expected one in constant time.
pub(crate) fn csrf_matches(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// A `Set-Cookie` value for one of our `__Host-` cookies. Always `Secure`: the `__Host-` prefix
/// requires it, and browsers accept secure cookies from `http://localhost` and `127.0.0.1` too.
fn set_cookie(name: &str, value: &str, max_age: u64) -> HeaderValue {
    let text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict; Secure");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("sealpost=; Max-Age=0"))
}

/// A `Set-Cookie` value for the single sign-on cookie ([`SSO_COOKIE`]): like the others but
/// `SameSite=Lax`.
pub(crate) fn set_sso_cookie(value: &str, max_age: u64) -> HeaderValue {
    let text = format!("{SSO_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax; Secure");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("sealpost=; Max-Age=0"))
}

/// The `Set-Cookie` value that removes cookie `name`.
pub(crate) fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", 0)
}

/// A signed-in browser: its session, and the CSRF token its pages carry.
#[derive(Debug, Clone)]
pub(crate) struct BrowserSession {
    /// The live session.
    pub(crate) session: Session,
    /// The session's CSRF token.
    pub(crate) csrf: String,
}

impl BrowserSession {
    /// True when `presented` is this session's CSRF token.
    pub(crate) fn csrf_ok(&self, presented: &str) -> bool {
        csrf_matches(&self.csrf, presented)
    }
}

/// The live session the request's cookie names, if any (touching it, or ending it if it has
/// run out).
pub(crate) async fn current(gw: &Gateway, headers: &HeaderMap) -> Result<Option<BrowserSession>, StoreError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let hash = BearerSecret::from_client(secret).hash();
    match gw.store.session(&hash, gw.config.session_idle_timeout, gw.clock.now()).await? {
        SessionLookup::Live(session) => Ok(Some(BrowserSession { session, csrf: derive_csrf(secret, "session") })),
        SessionLookup::Ended | SessionLookup::Unknown => Ok(None),
    }
}

/// A new session secret, its cookie, and its CSRF token.
pub(crate) fn new_session_secret(gw: &Gateway) -> (BearerSecret, HeaderValue) {
    let secret = BearerSecret::generate("");
    let cookie = set_cookie(SESSION_COOKIE, secret.expose(), gw.config.session_lifetime.as_secs());
    (secret, cookie)
}

/// The sign-in form's protection: the pre-session cookie to set (when the browser has none
/// yet) and the token for the form's hidden field.
pub(crate) fn sign_in_form(headers: &HeaderMap) -> (Option<HeaderValue>, String) {
    match cookie(headers, SIGN_IN_COOKIE).filter(|v| v.len() >= 43) {
        Some(existing) => (None, derive_csrf(existing, "sign-in")),
        None => {
            let secret = BearerSecret::generate("");
            let token = derive_csrf(secret.expose(), "sign-in");
            (Some(set_cookie(SIGN_IN_COOKIE, secret.expose(), SIGN_IN_FORM_SECONDS.into())), token)
        }
    }
}

/// True when a posted sign-in form carries the token bound to the browser's pre-session cookie.
pub(crate) fn sign_in_form_ok(headers: &HeaderMap, presented: &str) -> bool {
    cookie(headers, SIGN_IN_COOKIE).is_some_and(|secret| csrf_matches(&derive_csrf(secret, "sign-in"), presented))
}

/// Extracting a signed-in browser: without a live session, the browser is sent to `/sign-in`
/// (303), whatever the method.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn(pub(crate) BrowserSession);

impl FromRequestParts<Arc<Gateway>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        match current(gw, &parts.headers).await {
            Ok(Some(session)) => Ok(Self(session)),
            Ok(None) => Err(Redirect::to("/sign-in").into_response()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

impl OptionalFromRequestParts<Arc<Gateway>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Option<Self>, Self::Rejection> {
        match current(gw, &parts.headers).await {
            Ok(session) => Ok(session.map(Self)),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; __Host-sealpost-session-x=no"));
        headers.append(header::COOKIE, HeaderValue::from_static("__Host-sealpost-session=yes; b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("yes"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn csrf_tokens_differ_by_secret_and_purpose_and_hide_the_secret() {
        let a = derive_csrf("secret-a", "session");
        assert_eq!(a, derive_csrf("secret-a", "session"));
        assert_ne!(a, derive_csrf("secret-b", "session"));
        assert_ne!(a, derive_csrf("secret-a", "sign-in"));
        assert!(!a.contains("secret"));
        assert!(csrf_matches(&a, &a.clone()));
        assert!(!csrf_matches(&a, &a[1..]));
    }
}
