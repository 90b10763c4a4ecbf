//! The witness over HTTP: `POST /add-checkpoint` (c2sp.org/tlog-witness). Answers are plain
//! text: cosignature lines on success, the known size on a stale old size, a one-line reason
//! otherwise; 5xx bodies are opaque and the cause goes to the log.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;

use super::{AddError, SIZE_CONTENT_TYPE, Witness};

/// The largest request body: 63 proof lines and a checkpoint with 100 signatures fit easily.
pub const MAX_BODY: usize = 64 * 1024;

const TEXT: &str = "text/plain; charset=utf-8";

/// The witness's routes: `POST /add-checkpoint`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(witness)
}

/// Serves the witness on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    witness: Arc<Witness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness)).with_graceful_shutdown(shutdown).await
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // A task of its own, so a client hanging up cannot cut the check-persist-update sequence.
    let task = tokio::spawn(async move { witness.add_checkpoint(&body, now).await });
    match task.await {
        Err(e) => {
            tracing::error!(error = %e, "add-checkpoint task failed");
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, TEXT)], "internal error\n").into_response()
        }
        Ok(Ok(lines)) => {
            let body: String = lines.iter().map(|s| s.line()).collect();
            (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], body).into_response()
        }
        Ok(Err(e)) => refusal(&e),
    }
}

/// The answer the spec requires for each refusal.
fn refusal(e: &AddError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match e {
        AddError::StaleOldSize { known, .. } => {
            (status, [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)], format!("{known}\n")).into_response()
        }
        _ if status.is_server_error() => {
            tracing::error!(error = %e, "add-checkpoint failed");
            (status, [(header::CONTENT_TYPE, TEXT)], "internal error\n").into_response()
        }
        _ => (status, [(header::CONTENT_TYPE, TEXT)], format!("{e}\n")).into_response(),
    }
}
