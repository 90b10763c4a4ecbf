//! Running the gateway: serve HTTP on a bound listener, with the sweeper, the notification
//! sender and the log's sequencer beside it, until a shutdown future resolves. Opening the
//! gateway's state is `gateway`.
//!
//! `run` takes an already-bound listener and a shutdown future (as in mini-redis), so tests bind
//! `127.0.0.1:0` and stop the server when they like.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::Gateway;

mod answers;
mod body;
mod connections;
mod forwarded;
mod guard;

pub use forwarded::ClientAddress;

/// Serves the gateway on `listener` until `shutdown` resolves, then stops accepting, lets
/// running requests finish within the configured bound (cutting, and recording, what is still
/// running then), stops the sweeper and closes the database.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    // One round before serving: a gateway alone on its database is the sequencer from its
    // first request, and one joining others serves their current checkpoint.
    gateway.log.round().await;
    let sweeper = tokio::spawn(crate::sweeper::run(
        gateway.store.clone(),
        gateway.blobs.clone(),
        gateway.clock,
        gateway.config.sweep_interval,
        stop.clone(),
    ));
    let notifier = tokio::spawn(crate::notify::run(gateway.clone(), stop.clone()));
    let policy_changed = Arc::new(tokio::sync::Notify::new());
    let wakeups = tokio::spawn(wake_ups(gateway.clone(), policy_changed.clone(), stop.clone()));
    let heartbeat = tokio::spawn(heartbeat(gateway.clone(), policy_changed, stop.clone()));
    let sequencer = tokio::spawn(gateway.log.clone().run(gateway.config.log_interval, stop.clone()));
    // What holds the gateway besides the requests: once the requests are over and the work
    // they left behind (giving back a cut download's lease or an upload's claim, in tasks of
    // their own) is done, the count is back to this.
    let baseline = Arc::strong_count(&gateway);
    let app = crate::api::router(gateway.clone());
    let stop_serving = stop.clone();
    let stopping = gateway.clone();
    let cut = connections::serve(listener, app, &gateway.config.connections, async move {
        tokio::select! {
            () = shutdown => {}
            () = stop_serving.cancelled() => {}
        }
        stopping.begin_stopping();
    })
    .await;
    settle(&gateway, baseline).await;
    if cut > 0 {
        // Downloads whose end could not be recorded on their own path: given back now, each
        // recorded as `download.failed` (`server_shutdown`).
        match gateway.store.give_back_at_shutdown(gateway.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(leases = n, "shutting down: gave back the leases of cut downloads"),
            Err(e) => tracing::warn!(error = %e, "shutting down: could not give back leases; the next start does"),
        }
    }
    stop.cancel();
    let _ = sweeper.await;
    let _ = notifier.await;
    let _ = heartbeat.await;
    let _ = wakeups.await;
    let _ = sequencer.await;
    gateway.store.close().await;
    Ok(())
}

/// How long the shutdown waits at most for the work cut requests left behind.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits (for [`SETTLE`] at most) until nothing but the background tasks holds the gateway.
async fn settle(gateway: &Arc<Gateway>, baseline: usize) {
    let until = tokio::time::Instant::now() + SETTLE;
    while Arc::strong_count(gateway) > baseline && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How often a gateway says it is alive to the others sharing its database.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a gateway may stay silent before the others give back its download leases.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// How often a gateway looks for other gateways' policy reloads when nothing wakes it for them
/// (on PostgreSQL they do, at once; this is the safety net for a wake-up lost in a reconnect).
const POLICY_POLL: std::time::Duration = std::time::Duration::from_secs(30);

/// Says this gateway is alive every [`HEARTBEAT`], gives back the leases of gateways silent
/// for longer than [`SILENCE`], and follows policy reloads made on other gateways (when woken
/// through `policy_changed`, and every [`HEARTBEAT`] on SQLite, [`POLICY_POLL`] on
/// PostgreSQL), until `stop`.
async fn heartbeat(gateway: Arc<Gateway>, policy_changed: Arc<tokio::sync::Notify>, stop: CancellationToken) {
    let mut policy_seen = gateway.store.latest_policy_change().await.ok().flatten().map(|(idx, _)| idx);
    let policy_poll = match gateway.store.dialect() {
        crate::store::Dialect::Sqlite => HEARTBEAT,
        crate::store::Dialect::Postgres => POLICY_POLL,
    };
    let mut next_beat = tokio::time::Instant::now();
    let mut next_policy_poll = next_beat;
    loop {
        let now = tokio::time::Instant::now();
        if now >= next_beat {
            match gateway.store.heartbeat(SILENCE, gateway.clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(leases = n, "gave back the download leases of a gateway that stopped"),
                Err(e) => tracing::warn!(error = %e, "could not record this gateway's heartbeat"),
            }
            match crate::gateway::retire_admin_token(&gateway.store, &gateway.config.data_dir, gateway.clock.now())
                .await
            {
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not check whether the bootstrap token still works"),
            }
            next_beat = now + HEARTBEAT;
        }
        if now >= next_policy_poll {
            follow_policy(&gateway, &mut policy_seen).await;
            next_policy_poll = now + policy_poll;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(next_beat.min(next_policy_poll)) => {}
            () = policy_changed.notified() => follow_policy(&gateway, &mut policy_seen).await,
        }
    }
}

/// Listens for other gateways' wake-ups (PostgreSQL only) until `stop`: new events nudge this
/// gateway's log round when it is the sequencer, a new checkpoint when it is not, and a policy
/// reload wakes [`heartbeat`] to follow it.
async fn wake_ups(gateway: Arc<Gateway>, policy_changed: Arc<tokio::sync::Notify>, stop: CancellationToken) {
    use crate::store::Wakeup;
    let mut wakeups = loop {
        match gateway.store.wakeups().await {
            Ok(Some(w)) => break w,
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "cannot listen for other gateways' wake-ups yet; polling meanwhile"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
    };
    loop {
        let wakeup = tokio::select! {
            () = stop.cancelled() => return,
            w = wakeups.next() => w,
        };
        match wakeup {
            Ok(Wakeup::Events) if gateway.log.log().is_sequencer() => gateway.log.nudge(),
            Ok(Wakeup::Checkpoint) if !gateway.log.log().is_sequencer() => gateway.log.nudge(),
            Ok(Wakeup::Policy) => policy_changed.notify_one(),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "lost the wake-up connection; polling until it is back");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(HEARTBEAT) => {}
                }
            }
        }
    }
}

/// Reloads this gateway's policies when another gateway sharing the database has reloaded its
/// own since `seen` (a `policy.changed` event this gateway has not acted on). Each gateway reads
/// its own policy directory, which a deployment gives the same files (one ConfigMap, one volume):
/// when the result differs from the other gateway's, that is said loudly, not hidden.
async fn follow_policy(gateway: &Gateway, seen: &mut Option<u64>) {
    let Ok(Some((idx, digest))) = gateway.store.latest_policy_change().await else { return };
    if seen.is_some_and(|s| s >= idx) {
        return;
    }
    *seen = Some(idx);
    if gateway.gate.digest() == digest {
        return;
    }
    match gateway.gate.reload() {
        Ok(ours) if ours == digest => tracing::info!(%digest, "policies reloaded after another gateway's reload"),
        Ok(ours) => tracing::error!(
            theirs = %digest, ours = %ours,
            "another gateway reloaded policies this gateway's policy files do not match; give every gateway the same files"
        ),
        Err(e) => {
            tracing::error!(error = %e, "another gateway reloaded policies, and this gateway's files are invalid; the old ones stay")
        }
    }
}
