//! Duties (migration 0010): background work that one gateway at a time does, such as the
//! sweeper. The gateway doing it holds the duty for a while and renews it each time; when it
//! stops renewing, the duty runs out and another gateway takes it. So expiry and purge run on
//! whichever gateway holds the duty, and never on two at once. Tested in `tests/it/log_store.rs`
//! (on both databases).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, ms};

impl Store {
    /// Takes or renews duty `name` for this gateway until `until`; true if this gateway holds it
    /// now. Taken when nobody holds it, this gateway does, or the holder's ran out before `now`.
    pub async fn take_duty(&self, name: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "INSERT INTO duties (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE duties.holder = excluded.holder OR duties.until < $4",
        )
        .bind(name)
        .bind(self.gateway.as_ref())
        .bind(ms(until))
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }
}
