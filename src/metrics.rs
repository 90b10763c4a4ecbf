//! Prometheus metrics, served at `/metrics` on a separate listener (`--metrics-listen ADDR`,
//! `SEALPOST_METRICS_LISTEN`; off by default), so that the public port exposes nothing
//! operational.
//!
//! Requests are counted by their route *template* (`/api/v1/transfers/{id}`, never the path a
//! client sent, which may hold a token) and status; refusals by their error code; rate-limit hits
//! by class. The log's lag and the database pool are read when `/metrics` is scraped. The
//! recorder is the process's global one, installed when the listener starts: before that (and in
//! a gateway without the listener) recording costs next to nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use http_body::{Frame, SizeHint};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::limits::Class;
use crate::wire::ErrorCode;

/// Requests answered, by `route`, `method` and `status`.
pub const REQUESTS: &str = "sealpost_http_requests_total";
/// Request body bytes received, by `route`.
pub const BYTES_IN: &str = "sealpost_http_request_bytes_total";
/// Response body bytes sent, by `route`.
pub const BYTES_OUT: &str = "sealpost_http_response_bytes_total";
/// API answers refused with an error, by its `code`.
pub const REFUSALS: &str = "sealpost_refusals_total";
/// Requests refused by a rate limit, by `class` (`sign_in`, `redeem`, `upload`, `device_poll`).
pub const RATE_LIMITED: &str = "sealpost_rate_limited_total";
/// Audit events not yet integrated into the log.
pub const LOG_PENDING: &str = "sealpost_log_pending_entries";
/// Entries in the log (its checkpoint's size).
pub const LOG_SIZE: &str = "sealpost_log_entries";
/// Seconds since the last checkpoint was written.
pub const LOG_CHECKPOINT_AGE: &str = "sealpost_log_checkpoint_age_seconds";
/// Database connections open.
pub const DB_POOL_SIZE: &str = "sealpost_db_pool_connections";
/// Database connections open and idle.
pub const DB_POOL_IDLE: &str = "sealpost_db_pool_idle_connections";

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder (once per process) and returns its handle.
fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows only the gauges");
        }
        handle
    })
}

/// Counts a request refused by the rate limit of `class`.
pub fn rate_limited(class: Class) {
    metrics::counter!(RATE_LIMITED, "class" => class.as_str()).increment(1);
}

/// The route template a request matched, carried to the response for [`track`].
#[derive(Debug, Clone)]
struct Route(Arc<str>);

/// Route layer: remembers the matched route template in the response, where [`track`] reads it.
pub async fn remember_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| Route(Arc::from(p.as_str())));
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Outer layer: counts each request by route template, method and status, its body bytes in and
/// out, and the error code of refused API requests.
pub async fn track(req: Request, next: Next) -> Response {
    if HANDLE.get().is_none() {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_owned();
    // The bytes in are counted under the route known only after routing: count them into a
    // shared number and add it when the answer is known (bodies read after it add to `late`).
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let req = req.map(|body| Body::new(Counted { inner: body, count: Sink::Shared(seen.clone()) }));
    let response = next.run(req).await;
    let route = response.extensions().get::<Route>().map_or_else(|| Arc::from(UNMATCHED), |r| r.0.clone());
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "route" => route.to_string(), "method" => method, "status" => status).increment(1);
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        metrics::counter!(REFUSALS, "code" => code.as_str()).increment(1);
    }
    let bytes_in = metrics::counter!(BYTES_IN, "route" => route.to_string());
    bytes_in.increment(seen.swap(0, std::sync::atomic::Ordering::AcqRel));
    let out = metrics::counter!(BYTES_OUT, "route" => route.to_string());
    response.map(|body| Body::new(Counted { inner: body, count: Sink::Counter(out) }))
}

/// Where a counted body's bytes go.
enum Sink {
    Shared(Arc<std::sync::atomic::AtomicU64>),
    Counter(metrics::Counter),
}

/// A body that counts the bytes that pass, keeping the inner body's size hint.
struct Counted {
    inner: Body,
    count: Sink,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            match &self.count {
                Sink::Shared(seen) => {
                    seen.fetch_add(n, std::sync::atomic::Ordering::AcqRel);
                }
                Sink::Counter(c) => c.increment(n),
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Reads the gauges (log lag, pool) and renders every metric in the Prometheus text format.
async fn render(State(gw): State<Arc<Gateway>>) -> Response {
    let handle = handle();
    let (size, idle) = gw.store.pool_state();
    metrics::gauge!(DB_POOL_SIZE).set(f64::from(size));
    metrics::gauge!(DB_POOL_IDLE).set(idle as f64);
    match gw.store.log_lag().await {
        Ok(lag) => {
            metrics::gauge!(LOG_PENDING).set(lag.events.saturating_sub(lag.integrated) as f64);
            metrics::gauge!(LOG_SIZE).set(lag.integrated as f64);
            if let Some(at) = lag.checkpoint_at {
                let age = (gw.clock.now() - at).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::gauge!(LOG_CHECKPOINT_AGE).set(age);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the log's lag"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// The metrics listener's application: `GET /metrics`, and 404 for anything else.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .fallback(async || (StatusCode::NOT_FOUND, "not found: the metrics are at /metrics\n"))
        .with_state(gateway)
}

/// Serves the metrics on `listener` until `shutdown` resolves. Installs the recorder first, so
/// requests to the gateway are counted from then on.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = handle();
    axum::serve(listener, router(gateway)).with_graceful_shutdown(shutdown).await
}
