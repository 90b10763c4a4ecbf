//! Group commit for accepted uploads: many small transfers arriving together share one durable
//! transaction (one WAL fsync) instead of queueing for one each.
//!
//! One task owns the batching. An upload hands over its rows and waits; the task takes every
//! upload queued while the previous commit was running, writes each inside its own savepoint
//! (one failing insert is rolled back alone), commits once, and only then answers each caller.
//! So no upload hears "accepted" before its rows are on disk, exactly as with a transaction of
//! its own; a lone upload is committed at once, without waiting for company.

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::transfers::{Insert, write_insert};

/// The most uploads in one transaction (bounds the time the write lock is held).
const MAX_BATCH: usize = 128;

type Job = (Insert, oneshot::Sender<Result<u64, StoreError>>);

/// The handle uploads submit to.
#[derive(Debug)]
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the committing task on the current runtime.
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                commit(&pool, batch).await;
            }
        });
        Self { queue }
    }

    /// Commits one upload's rows (with others queued at the same time); returns the index of
    /// its `upload.accepted` audit event once the transaction is durable.
    pub(super) async fn submit(&self, insert: Insert) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((insert, reply)).map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        answer.await.map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?
    }
}

/// The same failure for every member of a batch (the error itself is not `Clone`).
fn shared(e: &StoreError) -> StoreError {
    match e {
        StoreError::Busy => StoreError::Busy,
        StoreError::Full => StoreError::Full,
        other => StoreError::Db(sqlx::Error::Protocol(other.to_string())),
    }
}

async fn commit(pool: &SqlitePool, batch: Vec<Job>) {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            for (_, reply) in batch {
                let _ = reply.send(Err(shared(&e)));
            }
            return;
        }
    };
    let mut written = Vec::with_capacity(batch.len());
    let mut batch = batch.into_iter();
    while let Some((insert, reply)) = batch.next() {
        let result: Result<Result<u64, StoreError>, sqlx::Error> = async {
            sqlx::query("SAVEPOINT upload").execute(&mut *tx).await?;
            match write_insert(&mut tx, &insert).await {
                Ok(idx) => {
                    sqlx::query("RELEASE upload").execute(&mut *tx).await?;
                    Ok(Ok(idx))
                }
                Err(e) => {
                    sqlx::query("ROLLBACK TO upload").execute(&mut *tx).await?;
                    sqlx::query("RELEASE upload").execute(&mut *tx).await?;
                    Ok(Err(e))
                }
            }
        }
        .await;
        match result {
            Ok(Ok(idx)) => written.push((reply, idx)),
            // This upload's own rows were refused and rolled back; the others go on.
            Ok(Err(e)) => {
                let _ = reply.send(Err(e));
            }
            // The transaction itself broke: nothing of the batch can be trusted to commit.
            Err(e) => {
                let e = StoreError::from(e);
                let _ = reply.send(Err(shared(&e)));
                for reply in written.into_iter().map(|(reply, _)| reply).chain(batch.map(|(_, reply)| reply)) {
                    let _ = reply.send(Err(shared(&e)));
                }
                return;
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, idx) in written {
                let _ = reply.send(Ok(idx));
            }
        }
        Err(e) => {
            let e = StoreError::from(e);
            for (reply, _) in written {
                let _ = reply.send(Err(shared(&e)));
            }
        }
    }
}
