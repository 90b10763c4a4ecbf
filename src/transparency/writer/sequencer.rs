//! The log's task on each gateway: about every `interval`, or as soon as it is nudged, it runs a
//! round of [`Log::step`] (follow the database, hold or seek the sequencer lease, and as the
//! sequencer integrate pending audit events) and publishes the log size to anyone waiting for a
//! receipt. If a round fails it says so (`healthy() == false`), and the gateway refuses new
//! transfers until it recovers: no transfer goes unlogged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::Log;

/// How often a gateway waiting for an entry looks whether the sequencer has integrated it.
const FOLLOW: Duration = Duration::from_millis(100);

/// The pauses before each retry of a log step that failed for a passing reason.
const RETRIES: [Duration; 3] = [Duration::ZERO, Duration::from_millis(50), Duration::from_millis(250)];

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

    /// Waits until entry `index` is integrated, at most `timeout`; true if it is. When another
    /// gateway is the sequencer, this one looks at the database every [`FOLLOW`] meanwhile.
    pub async fn wait_for(&self, index: u64, timeout: Duration) -> bool {
        let mut size = self.size.clone();
        let waiting = async {
            loop {
                self.nudge();
                if let Ok(r) = tokio::time::timeout(FOLLOW, size.wait_for(|s| *s > index)).await {
                    return r.is_ok();
                }
            }
        };
        tokio::time::timeout(timeout, waiting).await.unwrap_or(false)
    }

    /// Runs one integration round until nothing is pending (or it fails). A step that fails for
    /// a passing reason (a database connection the server dropped, a busy database) is tried
    /// again at once and after [`RETRIES`]' pauses before the log is declared unhealthy: the pool
    /// hands out a fresh connection, and a transfer should not be refused for a connection that
    /// a database restart or failover took away a moment ago.
    pub async fn round(&self) {
        let mut retries = RETRIES.iter();
        loop {
            let before = self.log.size();
            match self.log.step().await {
                Ok(size) => {
                    self.healthy.store(true, Ordering::Relaxed);
                    self.size_tx.send_replace(size);
                    if size == before {
                        return;
                    }
                }
                Err(e) => {
                    if e.is_passing()
                        && let Some(pause) = retries.next()
                    {
                        tracing::debug!(error = %e, "a log step failed for a passing reason; trying again");
                        tokio::time::sleep(*pause).await;
                        continue;
                    }
                    if self.healthy.swap(false, Ordering::Relaxed) {
                        tracing::error!(error = %e, "the log could not be written or read; transfers are refused until it recovers");
                    }
                    return;
                }
            }
        }
    }

    /// Runs a round every `interval` (or when nudged) until `shutdown`, then once more, and
    /// gives the sequencer lease back.
    pub async fn run(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            self.round().await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.nudge.notified() => {
                    // Let a few concurrent writers land in the same batch.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                () = tokio::time::sleep(interval) => {}
            }
        }
        self.round().await;
        self.log.resign().await;
    }
}
