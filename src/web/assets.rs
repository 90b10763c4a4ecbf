//! The browser code and styles, embedded from `web/dist/` (built from `web/` with esbuild and
//! committed), so the one binary serves everything: `/assets/app.js`, `/assets/app.css`,
//! `/assets/fonts/…`, `/assets/images/…`, each with its content type and an hour's caching.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use rust_embed::Embed;

/// `web/dist/`, in the binary (debug builds too).
#[derive(Embed)]
#[folder = "web/dist/"]
struct Dist;

/// Assets may be cached for an hour; a new release changes them at most that late.
const CACHE: &str = "public, max-age=3600";

fn serve(path: &str) -> Response {
    let Some(file) = Dist::get(path) else {
        return (StatusCode::NOT_FOUND, "there is no such asset").into_response();
    };
    let mime = file.metadata.mimetype();
    // JavaScript modules must come with a JavaScript type (the pages send `nosniff`).
    let mime = if path.ends_with(".js") || path.ends_with(".mjs") { "text/javascript; charset=utf-8" } else { mime };
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    response
}

/// `GET /assets/{*path}`.
pub(super) async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

/// `GET /favicon.ico`: GOV.UK's icon when the build ships one, else nothing (204).
pub(super) async fn favicon() -> Response {
    if Dist::get("images/favicon.ico").is_some() {
        serve("images/favicon.ico")
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}
