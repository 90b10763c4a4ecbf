//! Liveness and readiness. (The page a link opens, `GET /d`, is the browser's collect page: `web`.)
//!
//! `/healthz` says the process serves HTTP, and nothing more, so that a probe restarting dead
//! gateways does not restart them all when the database blinks. `/readyz` says whether this
//! gateway can do its work now: its database, its blob store and its transparency log, each
//! checked within [`CHECK_TIMEOUT`], so a load balancer sends requests elsewhere meanwhile.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::gateway::Gateway;
use crate::wire::health::{Health, HealthStatus, Readiness, ReadinessChecks};

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// The `Retry-After` of a 503 from `/readyz`, in seconds.
const NOT_READY_RETRY_AFTER: u32 = 5;

/// The health routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// Liveness: the gateway's process serves HTTP.
///
/// No token needed. It checks nothing else: `/readyz` says whether the gateway can serve.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "health",
    responses((status = 200, description = "The process is alive.", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: HealthStatus::Ok })
}

/// Readiness: the database, the blob store and the transparency log are usable.
///
/// No token needed. Each check that fails is named with what is wrong; its cause goes to the
/// gateway's own log.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "health",
    responses(
        (status = 200, description = "Ready: every check is `ok`.", body = Readiness,
            example = json!({"ready": true, "checks": {"database": "ok", "blobs": "ok", "log": "ok"}, "sequencer": true})),
        (status = 503, description = "Not ready: the checks that failed say what is wrong.", body = Readiness,
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again."))),
    ))]
async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    let (database, blobs) = tokio::join!(
        check("database", "the database does not answer", gw.store.ping()),
        check("blobs", "the blob store does not answer", gw.blobs.check()),
    );
    let log = if gw.log.healthy() {
        ReadinessChecks::OK.to_owned()
    } else {
        tracing::warn!(check = "log", "not ready: the last log round failed");
        "the transparency log cannot be written".to_owned()
    };
    let checks = ReadinessChecks { database, blobs, log };
    let ready = checks.all_ok();
    let sequencer = gw.log.log().is_sequencer();
    let mut response = Json(Readiness { ready, checks, sequencer }).into_response();
    if !ready {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(NOT_READY_RETRY_AFTER));
    }
    response
}

/// Runs one check within [`CHECK_TIMEOUT`]: `ok`, or `failed` (the cause is logged).
async fn check<E: std::fmt::Display>(
    name: &'static str,
    failed: &'static str,
    probe: impl Future<Output = Result<(), E>>,
) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => return ReadinessChecks::OK.to_owned(),
        Ok(Err(e)) => tracing::warn!(check = name, error = %e, "not ready"),
        Err(_) => tracing::warn!(check = name, timeout = ?CHECK_TIMEOUT, "not ready: no answer in time"),
    }
    failed.to_owned()
}
