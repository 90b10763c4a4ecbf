//! The background sweeper: expires links past their time and deletes ciphertext nobody can
//! still collect (delivered, expired or recalled), with an audit event for each; deletes
//! resumable uploads left unfinished past their resume window, and completed uploads' answers
//! (their links) an hour after completion.
//!
//! It is an owned task with a shutdown signal; tests drive it with paused tokio time.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::audit::{Event, EventKind};
use crate::blobs::BlobStore;
use crate::clock::Clock;
use crate::store::{Purge, Store};

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Links that passed their expiry.
    pub expired: u64,
    /// Blobs deleted.
    pub purged: u64,
}

/// Runs one sweep: expire links, then purge spent blobs (blob first, then the record, so a crash
/// in between only means the next sweep deletes an already-missing blob).
pub async fn sweep_once(store: &Store, blobs: &BlobStore, clock: &Clock) -> SweepReport {
    let mut report = SweepReport::default();
    match store.expire_links(clock.now()).await {
        Ok(n) => report.expired = n,
        Err(e) => tracing::warn!(error = %e, "sweeper could not expire links; will retry"),
    }
    let purgeable = match store.purgeable().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "sweeper could not list spent transfers; will retry");
            return report;
        }
    };
    sweep_uploads(store, blobs, clock).await;
    for purge in purgeable {
        if self::purge(store, blobs, clock, &purge).await {
            report.purged += 1;
        }
    }
    report
}

/// Deletes resumable uploads past their resume window: an unfinished one with its partial file
/// and an `upload.expired` event (file first, so a crash in between only leaves a record the
/// next sweep deletes), a completed one's record silently; and completed uploads' answers past
/// their hour. Returns how many uploads were unfinished.
pub async fn sweep_uploads(store: &Store, blobs: &BlobStore, clock: &Clock) -> u64 {
    if let Err(e) = store.delete_expired_upload_answers(clock.now()).await {
        tracing::warn!(error = %e, "sweeper could not delete expired upload answers; will retry");
    }
    let expired = match store.expired_uploads(clock.now()).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "sweeper could not list expired uploads; will retry");
            return 0;
        }
    };
    let mut deleted = 0;
    for row in expired {
        if !row.completed
            && let Err(e) = blobs.delete_partial(&row.id).await
        {
            tracing::warn!(error = %e, upload = %row.id, "sweeper could not delete a partial upload; will retry");
            continue;
        }
        let event = (!row.completed).then(|| {
            Event::new(EventKind::UploadExpired)
                .transfer(&row.id)
                .subject(row.sender.as_str())
                .field("size", row.received)
        });
        match store.delete_upload(&row.id, event.as_ref(), clock.now()).await {
            Ok(()) => deleted += u64::from(!row.completed),
            Err(e) => tracing::warn!(error = %e, upload = %row.id, "sweeper could not delete an upload record"),
        }
    }
    if deleted > 0 {
        tracing::info!(uploads = deleted, "sweep deleted unfinished uploads");
    }
    deleted
}

/// Deletes one spent blob and records it: blob first, then the record, so a failure in between
/// only leaves a record pointing at a blob the next sweep deletes again (deleting is idempotent).
/// Returns whether both happened; failures are logged and retried by the sweeper.
pub async fn purge(store: &Store, blobs: &BlobStore, clock: &Clock, purge: &Purge) -> bool {
    if let Err(e) = blobs.delete(&purge.object_key).await {
        tracing::warn!(error = %e, transfer = %purge.transfer, "could not delete a spent blob yet; the sweeper will retry");
        return false;
    }
    if let Err(e) = store.mark_purged(purge, clock.now()).await {
        tracing::warn!(error = %e, transfer = %purge.transfer, "could not record a purge yet; the sweeper will retry");
        return false;
    }
    true
}

/// The duty a gateway holds while it sweeps (see `store::duties`).
const DUTY: &str = "sweeper";

/// Sweeps every `interval` until `shutdown` fires, when this gateway holds the sweeper duty:
/// of the gateways sharing a database one sweeps, and another takes over when it stops.
pub async fn run(store: Store, blobs: BlobStore, clock: Clock, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        let now = clock.now();
        let held_for = chrono::TimeDelta::from_std(interval.saturating_mul(3)).unwrap_or(chrono::TimeDelta::MAX);
        match store.take_duty(DUTY, now, now + held_for).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "sweeper could not take its duty; will retry");
                continue;
            }
        }
        let report = sweep_once(&store, &blobs, &clock).await;
        if report != SweepReport::default() {
            tracing::info!(expired = report.expired, purged = report.purged, "sweep");
        }
    }
}
