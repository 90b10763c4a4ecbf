//! Running the gateway: serve HTTP on a bound listener, with the sweeper and the log's sequencer
//! beside it, until a shutdown future resolves. Opening the gateway's state is `gateway`.
//!
//! `run` takes an already-bound listener and a shutdown future (as in mini-redis), so tests bind
//! `127.0.0.1:0` and stop the server when they like.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;

/// Serves the gateway on `listener` until `shutdown` resolves, then stops accepting, lets
/// running requests finish, stops the sweeper and closes the database.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let sweeper = tokio::spawn(crate::sweeper::run(
        gateway.store.clone(),
        gateway.blobs.clone(),
        gateway.clock,
        gateway.config.sweep_interval,
        stop.clone(),
    ));
    let sequencer =
        tokio::spawn(gateway.log.clone().run(gateway.store.clone(), gateway.config.log_interval, stop.clone()));
    let app = crate::api::router(gateway.clone());
    let stop_serving = stop.clone();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                () = stop_serving.cancelled() => {}
            }
        })
        .await;
    stop.cancel();
    let _ = sweeper.await;
    let _ = sequencer.await;
    gateway.store.close().await;
    result
}
