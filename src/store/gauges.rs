//! Numbers the metrics listener shows about the database: its pool, and how far the log's
//! sequencer is behind the audit trail.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_ms};

/// The sequencer's lag behind the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLag {
    /// Audit events written.
    pub events: u64,
    /// Entries integrated into the log (its checkpoint's size).
    pub integrated: u64,
    /// When the last checkpoint was written, if the log exists yet.
    pub checkpoint_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Connections in the pool, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// The audit events written and the entries the log has integrated.
    pub async fn log_lag(&self) -> Result<LogLag, StoreError> {
        let events: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(idx), -1) + 1 FROM audit_events").fetch_one(&self.pool).await?;
        let head: Option<(i64, i64)> =
            sqlx::query_as("SELECT size, written_at FROM log_state WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(LogLag {
            events: u64::try_from(events).unwrap_or_default(),
            integrated: head.map_or(0, |(size, _)| u64::try_from(size).unwrap_or_default()),
            checkpoint_at: head.map(|(_, at)| from_ms(at)),
        })
    }
}
