//! The transparency log's shared state (migration 0008): the published checkpoint and the
//! sequencer's lease (one row), the hash tiles, and the log keys beyond the base one (sealed).
//! Kept in the database so every gateway sharing it serves the same log and one sequencer at a
//! time writes it: taking the lease adds one to the fencing number, and a checkpoint commits only
//! under the writer's fencing number, in the same transaction as the tiles it covers.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, from_ms, ms};

/// The log as published, and who writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// The log's origin (its name in checkpoints), fixed when it was made.
    pub origin: String,
    /// The number of integrated entries.
    pub size: u64,
    /// The signed checkpoint for `size`.
    pub checkpoint: String,
    /// When the checkpoint was written.
    pub written_at: DateTime<Utc>,
    /// The fencing number: one more each time the sequencer lease changes hands.
    pub fence: u64,
    /// The gateway holding the sequencer lease, if any.
    pub holder: Option<String>,
    /// When the lease runs out unless renewed.
    pub lease_until: DateTime<Utc>,
    /// Changes whenever the active log keys do.
    pub keys_version: u64,
}

/// What asking for the sequencer lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLease {
    /// This gateway holds it, under this fencing number.
    Held(u64),
    /// Another gateway holds it and it has not run out.
    Elsewhere(String),
}

/// A log key as stored: its id (8 hex digits), its secret key sealed (none for the base key,
/// which comes from the gateway's signing key), and its place among the active keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKeyRow {
    /// The key id, 8 hex digits.
    pub id: String,
    /// The sealed secret key; `None` for the base key.
    pub sealed: Option<Vec<u8>>,
}

/// A hash tile's bytes, by tile level and index.
pub type TileBytes = (u8, u64, Vec<u8>);

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

type HeadRow = (String, i64, String, i64, i64, Option<String>, i64, i64);

impl Store {
    /// The log's published state, or `None` before any gateway made the log.
    pub async fn log_head(&self) -> Result<Option<LogHead>, StoreError> {
        let row: Option<HeadRow> = sqlx::query_as(
            "SELECT origin, size, checkpoint, written_at, fence, holder, lease_until, keys_version \
             FROM log_state WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(origin, size, checkpoint, written_at, fence, holder, lease_until, keys_version)| LogHead {
            origin,
            size: unsigned(size),
            checkpoint,
            written_at: from_ms(written_at),
            fence: unsigned(fence),
            holder,
            lease_until: from_ms(lease_until),
            keys_version: unsigned(keys_version),
        }))
    }

    /// Makes the log: its origin, first checkpoint, tiles and keys (several when a log kept in
    /// files is moved in). False, changing nothing, when another gateway made it first.
    pub async fn create_log(
        &self,
        origin: &str,
        size: u64,
        checkpoint: &str,
        tiles: &[TileBytes],
        keys: &[LogKeyRow],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let made = sqlx::query(
            "INSERT INTO log_state (id, origin, size, checkpoint, written_at) VALUES (1, $1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(origin)
        .bind(signed(size))
        .bind(checkpoint)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if made == 0 {
            return Ok(false);
        }
        upsert_tiles(&mut tx, tiles).await?;
        insert_keys(&mut tx, keys).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The widest stored hash tile at tile `level`, `index`.
    pub async fn log_tile(&self, level: u8, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM log_tiles WHERE level = $1 AND idx = $2")
            .bind(i64::from(level))
            .bind(signed(index))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(b,)| b))
    }

    /// Takes or renews the sequencer lease for this gateway until `until`: renewed when this
    /// gateway holds it, taken (with the next fencing number) when nobody does or it ran out
    /// before `now`.
    pub async fn take_log_lease(&self, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<LogLease, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<(i64, Option<String>, i64)> =
            sqlx::query_as("SELECT fence, holder, lease_until FROM log_state WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        let Some((fence, holder, lease_until)) = row else {
            return Err(StoreError::Unreadable { column: "log_state", value: "no row".to_owned() });
        };
        let mine = holder.as_deref() == Some(self.gateway.as_ref());
        let fence = match holder {
            _ if mine => fence,
            Some(other) if lease_until > ms(now) => return Ok(LogLease::Elsewhere(other)),
            _ => fence + 1,
        };
        sqlx::query("UPDATE log_state SET holder = $1, fence = $2, lease_until = $3 WHERE id = 1")
            .bind(self.gateway.as_ref())
            .bind(fence)
            .bind(ms(until))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(LogLease::Held(unsigned(fence)))
    }

    /// Gives the sequencer lease back (at shutdown), so another gateway takes it at once.
    pub async fn release_log_lease(&self, fence: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE log_state SET holder = NULL, lease_until = 0 WHERE id = 1 AND fence = $1 AND holder = $2")
            .bind(signed(fence))
            .bind(self.gateway.as_ref())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Publishes the checkpoint for `new_size` entries with the tiles it adds, if this gateway
    /// still holds the lease under `fence` and the log still has `old_size` entries; false,
    /// writing nothing, when it does not (another gateway took over).
    pub async fn publish_log(
        &self,
        fence: u64,
        old_size: u64,
        new_size: u64,
        checkpoint: &str,
        tiles: &[TileBytes],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let fenced = sqlx::query(
            "UPDATE log_state SET size = $1, checkpoint = $2, written_at = $3 \
             WHERE id = 1 AND fence = $4 AND holder = $5 AND size = $6",
        )
        .bind(signed(new_size))
        .bind(checkpoint)
        .bind(ms(now))
        .bind(signed(fence))
        .bind(self.gateway.as_ref())
        .bind(signed(old_size))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fenced == 0 {
            return Ok(false);
        }
        upsert_tiles(&mut tx, tiles).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The active log keys, oldest first (none stored: the base key alone is active).
    pub async fn log_keys(&self) -> Result<Vec<LogKeyRow>, StoreError> {
        let rows: Vec<(String, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT id, sealed FROM log_keys WHERE position IS NOT NULL ORDER BY position")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, sealed)| LogKeyRow { id, sealed }).collect())
    }

    /// Makes `active` (oldest first) the active log keys, adding those not stored yet; the
    /// others are retired (kept, so old checkpoints' keys stay known).
    pub async fn set_log_keys(&self, active: &[LogKeyRow]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE log_keys SET position = NULL").execute(&mut *tx).await?;
        insert_keys(&mut tx, active).await?;
        sqlx::query("UPDATE log_state SET keys_version = keys_version + 1 WHERE id = 1").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn upsert_tiles(tx: &mut sqlx::Transaction<'static, sqlx::Any>, tiles: &[TileBytes]) -> Result<(), StoreError> {
    for (level, index, bytes) in tiles {
        // Only ever wider: a partial tile is replaced by a wider one, never by a narrower one.
        sqlx::query(
            "INSERT INTO log_tiles (level, idx, bytes) VALUES ($1, $2, $3) \
             ON CONFLICT (level, idx) DO UPDATE SET bytes = excluded.bytes \
             WHERE length(excluded.bytes) > length(log_tiles.bytes)",
        )
        .bind(i64::from(*level))
        .bind(signed(*index))
        .bind(bytes.as_slice())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn insert_keys(tx: &mut sqlx::Transaction<'static, sqlx::Any>, keys: &[LogKeyRow]) -> Result<(), StoreError> {
    for (position, key) in (0_i64..).zip(keys) {
        sqlx::query(
            "INSERT INTO log_keys (id, sealed, position) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET position = excluded.position",
        )
        .bind(&key.id)
        .bind(key.sealed.as_deref())
        .bind(position)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
