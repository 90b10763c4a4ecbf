//! Wake-ups between gateways on PostgreSQL (migration 0010): triggers notify at commit when
//! events are added (`sealpost_events`), policies reloaded (`sealpost_policy`) or a checkpoint
//! published (`sealpost_checkpoint`), and each gateway listens, so the sequencer integrates at
//! once and the others follow at once, instead of at their next poll. SQLite has no such thing;
//! there, and for a notification lost while the listener reconnects, the polls remain.

use sqlx::postgres::PgListener;

use super::{Dialect, Store, StoreError};

/// What another gateway (or this one) did that is worth waking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// Audit events were added: there is log work.
    Events,
    /// Policies were reloaded.
    Policy,
    /// A new checkpoint was published.
    Checkpoint,
}

/// A connection listening for [`Wakeup`]s.
#[derive(Debug)]
pub struct Wakeups(PgListener);

const CHANNELS: [(&str, Wakeup); 3] = [
    ("sealpost_events", Wakeup::Events),
    ("sealpost_policy", Wakeup::Policy),
    ("sealpost_checkpoint", Wakeup::Checkpoint),
];

impl Store {
    /// Starts listening for wake-ups; `None` on SQLite.
    pub async fn wakeups(&self) -> Result<Option<Wakeups>, StoreError> {
        if self.dialect != Dialect::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen_all(CHANNELS.iter().map(|(c, _)| *c)).await?;
        Ok(Some(Wakeups(listener)))
    }
}

impl Wakeups {
    /// The next wake-up. After a lost connection it reconnects (and listens again) by itself;
    /// an error means it could not, and the caller should wait a little before asking again.
    pub async fn next(&mut self) -> Result<Wakeup, StoreError> {
        loop {
            let notification = self.0.recv().await?;
            if let Some((_, wakeup)) = CHANNELS.iter().find(|(c, _)| *c == notification.channel()) {
                return Ok(*wakeup);
            }
        }
    }
}
