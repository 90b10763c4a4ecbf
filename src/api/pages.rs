//! The landing page for links and the health check.
//!
//! `GET /d` (and HEAD) consumes nothing: mail scanners fetch links, some even run their
//! scripts. The token stays in the URL fragment, which browsers never send, and the page
//! carries no script at all; it tells the recipient how to collect the bundle.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::gateway::Gateway;
use crate::wire::ErrorBody;
use crate::wire::health::{Health, HealthStatus};

/// The page routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(landing)).routes(routes!(healthz))
}

const CSP: &str = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page a link opens: how to collect the bundle. Opening it uses nothing up.
///
/// No token needed: the link's token stays in the URL fragment, which browsers never send.
#[utoipa::path(get, path = "/d", operation_id = "link_page", tag = "collect",
    responses((status = 200, description = "The page.", body = String, content_type = "text/html",
        example = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">…<h1>A bundle is waiting for you</h1>…</html>\n")))]
async fn landing(State(gw): State<Arc<Gateway>>) -> Response {
    let page = format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sealpost: a bundle is waiting for you</title></head>
<body>
<h1>A bundle is waiting for you</h1>
<p>This link collects an encrypted bundle that was sent to you through sealpost. Opening this
page has not used the link up: it can be collected once, by you, with your own sealpost
account.</p>
<h2>Collect it</h2>
<p>Copy the <strong>whole</strong> link from your message, including the part after <code>#</code>,
and run, with the age identity that belongs to the key you registered:</p>
<pre>sealpost fetch 'THE-WHOLE-LINK' -i my-identity.txt -o bundle.tar</pre>
<p>Or with curl and age, putting the part after <code>#</code> in place of TOKEN:</p>
<pre>curl -fsS -X POST {url}/api/v1/redeem \
  -H "Authorization: Bearer $SEALPOST_TOKEN" -H 'Content-Type: application/json' \
  -d '{{"token":"TOKEN"}}' -o bundle.age
age -d -i my-identity.txt -o bundle bundle.age</pre>
<p>If the download breaks off, run it again: the link is used up only when the last byte has
arrived. Never forward the link: it only works for you.</p>
</body></html>
"##,
        url = gw.public_url
    );
    let mut response = Html(page).into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

/// Health: whether the gateway can reach its database.
///
/// No token needed.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses(
        (status = 200, description = "Ready.", body = Health),
        (status = 503, description = "`unavailable`: the database cannot be reached.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
    ))]
async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.store.ping().await {
        Ok(()) => Json(Health { status: HealthStatus::Ok }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            crate::api::error::ApiError::unavailable().into_response()
        }
    }
}
