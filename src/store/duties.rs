//! Duties (migration 0010): background work that one gateway at a time does, such as the
//! sweeper. The gateway doing it holds the duty for a while and renews it each time; when it
//! stops renewing, the duty runs out and another gateway takes it. So expiry and purge run on
//! whichever gateway holds the duty, and never on two at once.

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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    #[tokio::test]
    async fn one_gateway_at_a_time_holds_a_duty_until_it_runs_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = super::Store::open(&dir.path().join("db")).await.expect("store").for_gateway("a");
        let b = super::Store::open(&dir.path().join("db")).await.expect("store").for_gateway("b");
        let now = chrono::Utc::now();
        let until = now + TimeDelta::seconds(30);
        assert!(a.take_duty("sweeper", now, until).await.expect("a"));
        assert!(!b.take_duty("sweeper", now, until).await.expect("b"), "A holds it");
        assert!(a.take_duty("sweeper", now + TimeDelta::seconds(10), until).await.expect("a renews"));
        assert!(b.take_duty("other", now, until).await.expect("another duty is free"));
        let later = now + TimeDelta::seconds(31);
        assert!(b.take_duty("sweeper", later, later + TimeDelta::seconds(30)).await.expect("b"), "A's ran out");
        assert!(!a.take_duty("sweeper", later, later).await.expect("a"), "B holds it now");
    }
}
