//! What the writers' turn is spent on, over PostgreSQL: every write transaction of every gateway
//! takes one transaction-scoped advisory lock (`src/store/mod.rs`, `Dialect::begin_write`), so
//! writes run one at a time across the deployment. While a measurement runs, a connection of
//! our own looks every [`PERIOD`] at `pg_locks` and `pg_stat_activity`: is the lock held, and
//! by a session doing what (running SQL, flushing the WAL at `COMMIT`, or idle in its
//! transaction, waiting for its gateway's next statement), and how many sessions queue for it.
//! The sampling costs PostgreSQL one small query per period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Connection as _;
use tokio::runtime::Runtime;

/// How often the lock is looked at.
const PERIOD: Duration = Duration::from_millis(20);

/// The writers' lock: `WRITE_LOCK` in `src/store/mod.rs` (`sealpost` in ASCII), which
/// `pg_locks` shows as its high and low 32 bits (`classid`, `objid`; `objsubid` 1 for a
/// one-number key).
const LOCK_HIGH: i64 = 0x7365_616c;
const LOCK_LOW: i64 = 0x706f_7374;

/// What the samples saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct LockCounts {
    pub(crate) samples: u64,
    /// The lock was held…
    pub(crate) held: u64,
    /// …by a session in `COMMIT` (flushing the WAL: the durability of the transaction);
    pub(crate) commit: u64,
    /// …by a session running another statement;
    pub(crate) running: u64,
    /// …by a session idle in its transaction: its gateway has not sent the next statement yet
    /// (a round trip, and the gateway's turn on a CPU).
    pub(crate) waiting_for_gateway: u64,
    /// Sessions queued for the lock, added up over the samples.
    pub(crate) queued: u64,
}

impl LockCounts {
    fn add(&mut self, other: &Self) {
        self.samples += other.samples;
        self.held += other.held;
        self.commit += other.commit;
        self.running += other.running;
        self.waiting_for_gateway += other.waiting_for_gateway;
        self.queued += other.queued;
    }

    /// `part` as a percentage of the samples (`held`) or of the held samples (the rest).
    pub(crate) fn percent(part: u64, of: u64) -> f64 {
        if of == 0 { f64::NAN } else { part as f64 * 100.0 / of as f64 }
    }
}

/// A running sampler; [`Sampler::finish`] stops it and adds what it saw.
#[derive(Debug)]
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<LockCounts>>,
}

impl Sampler {
    /// Connects to the database at `url` and starts sampling on `rt`.
    pub(crate) fn start(rt: &Runtime, url: &str) -> anyhow::Result<Self> {
        let mut conn = rt.block_on(sqlx::postgres::PgConnection::connect(url))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = rt.spawn(async move {
            let mut counts = LockCounts::default();
            let mut tick = tokio::time::interval(PERIOD);
            while !stopped.load(Ordering::Relaxed) {
                tick.tick().await;
                let (queued, holder): (i64, Option<String>) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 \
                             AND objid = $2 AND objsubid = 1 AND NOT granted), \
                            (SELECT a.state || '|' || left(a.query, 12) FROM pg_locks l \
                             JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' \
                             AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1 AND l.granted LIMIT 1)",
                )
                .bind(LOCK_HIGH)
                .bind(LOCK_LOW)
                .fetch_one(&mut conn)
                .await?;
                counts.samples += 1;
                counts.queued += u64::try_from(queued).unwrap_or(0);
                let Some(holder) = holder else { continue };
                counts.held += 1;
                match holder.split_once('|') {
                    Some(("active", query)) if query.trim_start().to_ascii_uppercase().starts_with("COMMIT") => {
                        counts.commit += 1;
                    }
                    Some(("active", _)) => counts.running += 1,
                    _ => counts.waiting_for_gateway += 1,
                }
            }
            let _ = conn.close().await;
            Ok(counts)
        });
        Ok(Self { stop, task })
    }

    /// Stops sampling and adds the counts to `total`.
    pub(crate) fn finish(self, rt: &Runtime, total: &mut LockCounts) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        total.add(&rt.block_on(self.task)??);
        Ok(())
    }
}
