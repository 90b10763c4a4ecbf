//! The sequencer: one task that integrates pending audit events into the log, about every
//! `interval` or as soon as it is nudged, and publishes the log size to anyone waiting for a
//! receipt. If integration fails it says so (`healthy() == false`), and the gateway refuses new
//! transfers until it recovers: no transfer goes unlogged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::Log;
use crate::store::Store;

/// A handle to the sequencer: nudge it, wait for an index, ask whether it is healthy.
#[derive(Debug, Clone)]
pub struct Sequencer {
    log: Arc<Log>,
    nudge: Arc<Notify>,
    size: watch::Receiver<u64>,
    size_tx: Arc<watch::Sender<u64>>,
    healthy: Arc<AtomicBool>,
}

impl Sequencer {
    /// A sequencer for `log` (not yet running; see [`Sequencer::run`]).
    pub fn new(log: Arc<Log>) -> Self {
        let (size_tx, size) = watch::channel(log.size());
        Self {
            log,
            nudge: Arc::new(Notify::new()),
            size,
            size_tx: Arc::new(size_tx),
            healthy: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// Asks for an integration round now.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// False after a failed integration, until one succeeds.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Waits until entry `index` is integrated, at most `timeout`; true if it is.
    pub async fn wait_for(&self, index: u64, timeout: Duration) -> bool {
        self.nudge();
        let mut size = self.size.clone();
        tokio::time::timeout(timeout, size.wait_for(|s| *s > index)).await.is_ok_and(|r| r.is_ok())
    }

    /// Runs one integration round until nothing is pending (or it fails).
    pub async fn round(&self, store: &Store) {
        loop {
            let before = self.log.size();
            match self.log.integrate(store).await {
                Ok(size) => {
                    self.healthy.store(true, Ordering::Relaxed);
                    self.size_tx.send_replace(size);
                    if size == before {
                        return;
                    }
                }
                Err(e) => {
                    if self.healthy.swap(false, Ordering::Relaxed) {
                        tracing::error!(error = %e, "log integration failed; transfers are refused until it recovers");
                    }
                    return;
                }
            }
        }
    }

    /// Integrates every `interval` (or when nudged) until `shutdown`, then once more.
    pub async fn run(self, store: Store, interval: Duration, shutdown: CancellationToken) {
        loop {
            self.round(&store).await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.nudge.notified() => {
                    // Let a few concurrent writers land in the same batch.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                () = tokio::time::sleep(interval) => {}
            }
        }
        self.round(&store).await;
    }
}
