//! The browser pages: server-rendered GOV.UK Design System pages (askama templates under
//! `templates/`, escaped by default), sessions with CSRF protection, and the embedded scripts and
//! styles of `web/dist/`. Pages that need no cryptography (lists, audit, approvals,
//! administration) work without JavaScript; the send and collect pages are skeletons the page
//! script fills, encrypting and decrypting in the browser, so the gateway still never sees
//! plaintext, file names or private keys.
//!
//! Handlers are thin: extract (a session, a form whose CSRF field is checked), call the
//! lifecycle or the store, render. Every page answers with a strict Content-Security-Policy (no
//! inline script or style, nothing from another origin), and, like every answer of the gateway,
//! `Cache-Control: no-store` unless it is an asset.

mod admin;
mod assets;
mod compliance;
mod error;
mod notifications;
mod page;
mod recipient;
mod sender;
pub(crate) mod session;
mod sign_in;
mod sso;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::gateway::Gateway;

/// The pages' Content-Security-Policy (spec-web.md): scripts, styles, fonts, images and requests
/// from this origin only, no inline script or style, no framing, forms posting only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// The page routes, with their headers.
pub fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .merge(sign_in::router())
        .merge(sso::router())
        .merge(recipient::router())
        .merge(sender::router())
        .merge(compliance::router())
        .merge(admin::router())
        .merge(notifications::router())
        .route("/assets/{*path}", get(assets::asset))
        .route("/favicon.ico", get(assets::favicon))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
}

/// True for a browser asking for a page (not the API, not the log): it accepts HTML.
pub fn wants_page(req: &Request) -> bool {
    let path = req.uri().path();
    let html = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    html && !path.starts_with("/api/") && !path.starts_with("/log/")
}

/// The "too many attempts" page (429, with `Retry-After` and the pages' CSP), for a browser
/// over a rate limit (`crate::limits`).
pub fn too_many_requests(seconds: u64) -> Response {
    let mut response = error::PageError::too_many_requests(seconds).into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The "page not found" page, with the pages' CSP.
pub fn not_found() -> Response {
    let mut response = error::PageError::not_found("Check the address, or go back to the start page.").into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}
