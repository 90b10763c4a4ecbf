//! Group commit: writes that arrive together share one durable transaction (one WAL fsync)
//! instead of queueing for one each. Accepted uploads and download leases, the writes that come
//! in crowds, go through it.
//!
//! One task owns the batching. A caller hands over its work and waits; the task takes every
//! piece of work queued while the previous commit was running, runs each inside its own
//! savepoint (one that fails is rolled back alone), commits once, and only then answers each
//! caller. So nobody hears "done" before their rows are on disk, exactly as with a transaction
//! of their own; work that arrives alone is committed at once, without waiting for company.

use futures_util::future::BoxFuture;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// The most pieces of work in one transaction (bounds the time the write lock is held).
const MAX_BATCH: usize = 128;

/// The transaction a piece of work runs in.
pub(super) type Tx = Transaction<'static, Any>;

/// Tells a caller how the commit went (`None`: committed), handing over its result.
type Done = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A caller's work, type-erased: `Err(())` when it failed (and has told its caller why).
type Work = Box<dyn for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<Done, ()>> + Send>;

/// The handle callers submit to.
#[derive(Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<Work>,
}

impl GroupCommit {
    /// Starts the committing task on the current runtime.
    pub(super) fn start(pool: AnyPool, dialect: super::Dialect) -> Self {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Work>();
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                commit(&pool, dialect, batch).await;
            }
        });
        Self { queue }
    }

    /// Runs `work` in a transaction shared with whatever else is queued, and returns its result
    /// once that transaction is durable. An error from `work` rolls back its own writes only.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job: Work = Box::new(move |tx| {
            Box::pin(async move {
                match work(tx).await {
                    Ok(value) => {
                        let done: Done = Box::new(move |failed| {
                            let _ = reply.send(failed.map_or(Ok(value), |e| Err(shared(e))));
                        });
                        Ok(done)
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        Err(())
                    }
                }
            })
        });
        // Work dropped unrun (the database could not even start a transaction) reads as busy:
        // nothing was written, and trying again is the right answer.
        self.queue.send(job).map_err(|_| StoreError::Busy)?;
        answer.await.map_err(|_| StoreError::Busy)?
    }
}

/// The same failure for every member of a batch (the error itself is not `Clone`).
fn shared(e: &StoreError) -> StoreError {
    match e {
        StoreError::Busy => StoreError::Busy,
        StoreError::Full => StoreError::Full,
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        other => StoreError::Db(sqlx::Error::Protocol(other.to_string())),
    }
}

async fn commit(pool: &AnyPool, dialect: super::Dialect, batch: Vec<Work>) {
    let Ok(mut tx) = dialect.begin_write(pool).await else {
        tracing::warn!(work = batch.len(), "could not start a write transaction");
        return;
    };
    let mut done = Vec::with_capacity(batch.len());
    for work in batch {
        let result: Result<(), sqlx::Error> = async {
            sqlx::query("SAVEPOINT work").execute(&mut *tx).await?;
            if let Ok(d) = work(&mut tx).await {
                sqlx::query("RELEASE work").execute(&mut *tx).await?;
                done.push(d);
            } else {
                sqlx::query("ROLLBACK TO work").execute(&mut *tx).await?;
                sqlx::query("RELEASE work").execute(&mut *tx).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            // The transaction itself broke: nothing of the batch commits. Work not yet run is
            // dropped, which its callers hear as busy.
            let e = StoreError::from(e);
            for d in done {
                d(Some(&e));
            }
            return;
        }
    }
    match tx.commit().await {
        Ok(()) => done.into_iter().for_each(|d| d(None)),
        Err(e) => {
            let e = StoreError::from(e);
            done.into_iter().for_each(|d| d(Some(&e)));
        }
    }
}
