//! The HTTP API (axum). Each route module owns its `router()`, which mounts each handler where
//! its `#[utoipa::path]` says; this one merges them and adds the tower layers every answer gets:
//! tracing without secrets, and headers that keep answers out of caches, sniffers and Referer
//! headers. The same merge, read as documentation, is the OpenAPI contract (`openapi`).

mod admin;
mod audit;
mod auth;
mod deliveries;
mod directory;
pub mod error;
mod keys;
mod manifests;
mod notifications;
mod openapi;
mod pages;
pub(crate) mod redeem;
mod routes;
mod sent;
mod sso;
mod transfers;
mod transparency;
pub(crate) mod tus;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::response::IntoResponse as _;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::gateway::Gateway;
use crate::wire::ErrorCode;
use error::ApiError;

pub use openapi::{contract_text, document};

/// Every route, with its documentation.
fn routes() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::with_openapi(openapi::Base::openapi())
        .merge(admin::router())
        .merge(audit::router())
        .merge(deliveries::router())
        .merge(directory::router())
        .merge(keys::router())
        .merge(transparency::router())
        .merge(manifests::router())
        .merge(notifications::router())
        .merge(openapi::router())
        .merge(pages::router())
        .merge(redeem::router())
        .merge(routes::router())
        .merge(sent::router())
        .merge(sso::router())
        .merge(transfers::router())
        .merge(tus::router())
}

/// The whole application, ready to serve.
pub fn router(gateway: Arc<Gateway>) -> Router {
    // Spans carry the method and path only: never the query, headers or body.
    let trace = TraceLayer::new_for_http().make_span_with(
        |req: &Request<_>| tracing::info_span!("request", method = %req.method(), path = %req.uri().path()),
    );
    let (routes, _) = routes().split_for_parts();
    routes
        // The browser pages (sessions, templates, assets), with their Content-Security-Policy.
        .merge(crate::web::router())
        // Rate limits by route template (`crate::limits`), and the template for the metrics.
        .route_layer(axum::middleware::from_fn_with_state(gateway.clone(), crate::limits::middleware))
        .route_layer(axum::middleware::from_fn(crate::metrics::remember_route))
        .fallback(async |req: Request<axum::body::Body>| {
            // A person who mistypes a page's address gets a page, not JSON.
            if crate::web::wants_page(&req) {
                return crate::web::not_found();
            }
            ApiError::not_found("there is no such endpoint: see the API list in the README").into_response()
        })
        .method_not_allowed_fallback(async || {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method: see the API list in the README",
            )
        })
        .layer(axum::middleware::from_fn(refuse_ambiguity))
        .layer(trace)
        // Requests, bytes and refusals counted for `/metrics` (only when its listener runs).
        .layer(axum::middleware::from_fn(crate::metrics::track))
        // Log tiles set their own caching; everything else is never stored.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .with_state(gateway)
}

/// Headers that carry one value: a request with two of any of them has two readings.
const SINGLE_HEADERS: [HeaderName; 9] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::RANGE,
    header::COOKIE,
    HeaderName::from_static("upload-offset"),
    HeaderName::from_static("upload-length"),
    HeaderName::from_static("upload-metadata"),
    HeaderName::from_static("tus-resumable"),
];

/// Query parameters of the API that may repeat: each is a list (`to`, the recipients).
const LIST_PARAMETERS: [&str; 1] = ["to"];

/// Refuses a request that can be read two ways, before any handler: a header that carries one
/// value given twice, or (for the API) a query parameter given twice that is not a list. Never
/// resolved by taking the first or the last.
async fn refuse_ambiguity(req: Request<axum::body::Body>, next: axum::middleware::Next) -> axum::response::Response {
    if let Some(name) = SINGLE_HEADERS.iter().find(|h| req.headers().get_all(*h).iter().nth(1).is_some()) {
        return ApiError::new(
            ErrorCode::AmbiguousRequest,
            format!("the `{name}` header is given more than once: send it once"),
        )
        .into_response();
    }
    if req.uri().path().starts_with("/api/")
        && let Some(query) = req.uri().query()
    {
        let mut seen = std::collections::HashSet::new();
        for (key, _) in form_urlencoded::parse(query.as_bytes()) {
            if !LIST_PARAMETERS.contains(&key.as_ref()) && !seen.insert(key.clone()) {
                return ApiError::new(
                    ErrorCode::AmbiguousRequest,
                    format!("the query parameter `{key}` is given more than once: give it once"),
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}
