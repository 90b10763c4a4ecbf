//! The relational store: accounts, keys, transfers, links and the audit trail, in SQLite (the
//! embedded default) or PostgreSQL (for several gateways at once), chosen by the database URL.
//!
//! All SQL lives in this module (and its children) and is written once for both databases, through
//! sqlx's `Any` driver: `$N` parameters (SQLite reads them too), integer times, and the few
//! functions one lacks defined by its migrations (`migrations/sqlite`, `migrations/postgres`: one
//! schema history, one directory per backend). Every method that changes state writes its audit
//! event in the same transaction, so a change and its record commit or vanish together.
//!
//! Writers take turns ([`Dialect::begin_write`]): SQLite's `BEGIN IMMEDIATE` write lock, and on
//! PostgreSQL a transaction-scoped advisory lock, held by one transaction at a time across every
//! gateway. So the read-then-write checks inside a write transaction (is this link still issued?
//! is this transfer still held?) hold across gateways exactly as they do in one process, and each
//! audit event gets the next log index with no gaps. Reads never wait for it. Accepted uploads and
//! download leases, the writes that come in crowds, are group-committed (`group.rs`): those
//! arriving together share one transaction, each in its own savepoint, so the turn is taken once.

mod accounts;
mod audit_trail;
mod backup;
mod consistency;
mod copy;
mod deliveries;
mod directory;
mod disposal;
mod duties;
mod first_admin;
mod gauges;
mod group;
mod held;
mod identity;
mod keys;
mod links;
mod log_state;
mod manifests;
mod notifications;
mod refusals;
mod routes;
mod sent;
mod sessions;
mod transfers;
mod uploads;
mod views;
mod wakeups;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

use crate::audit::Event;
use crate::model::{ParseError, UserRef};
use crate::wire::ErrorCode;

pub use audit_trail::AuditFilter;
pub use backup::{StoredBlob, snapshot_sqlite};
pub use consistency::{AuditSpan, CheckedLink, CheckedTransfer};
pub use copy::CopiedTable;
pub use deliveries::{Acknowledgement, DeliveryReport, Reportable, SignedFor};
pub use disposal::{Purge, Recall};
pub use first_admin::{Presented, Recovered, RecoveryWitness};
pub use gauges::LogLag;
pub use held::HeldTransfer;
pub use identity::{PendingSignIn, SIGN_IN_WINDOW, SsoGrant, SsoGranted, SsoRefusal};
pub use links::{Cut, Ended, Lease, LeaseEnd, RedeemRefusal};
pub use log_state::{LogHead, LogKeyRow, LogLease, TileBytes};
pub use manifests::{Manifest, ManifestSubject};
pub use notifications::{OutboxRow, Target, WebhookRow};
pub use refusals::DEFAULT_REFUSAL_WINDOW;
pub use sessions::{AuthMethod, Session, SessionEnd, SessionLookup};
pub use transfers::{Decided, NewLink, NewTransfer, TransferRecord};
pub use uploads::{UploadManifest, UploadRow};
pub use wakeups::{Wakeup, Wakeups};

/// What can go wrong in the store, for callers to turn into precise answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database is busy (locked by another writer for longer than the busy timeout).
    #[error("the database is busy")]
    Busy,
    /// The disk under the database is full.
    #[error("the disk holding the database is full")]
    Full,
    /// The database cannot be read or written now (an I/O error, its file gone or read-only,
    /// a connection a fault left unusable): nothing was written, and once the fault is gone
    /// the pool's fresh connections work again.
    #[error("the database cannot be used now: {0}")]
    Unavailable(String),
    /// An organisation name is taken.
    #[error("organisation `{0}` already exists")]
    OrgExists(String),
    /// No organisation has that name.
    #[error("there is no organisation `{0}`")]
    UnknownOrg(String),
    /// A user name is taken in its organisation.
    #[error("user `{0}` already exists")]
    UserExists(UserRef),
    /// Another user has that email address.
    #[error("another user already has the email address `{0}`: each address names one person")]
    EmailInUse(String),
    /// No user has that name.
    #[error("there is no user `{0}`")]
    UnknownUser(UserRef),
    /// No token has that id.
    #[error("there is no token `{0}`")]
    UnknownToken(String),
    /// The change would leave no administrator able to sign in (no live token of one, no
    /// administrator bound to an identity provider).
    #[error(
        "that would leave no administrator able to sign in: make another administrator (or issue one a token) first"
    )]
    LastAdministrator,
    /// The token presented to `sealpost admin claim` is not a live bootstrap token.
    #[error(
        "only the first start's bootstrap token (in DATA/admin.token) is exchanged for an administrator, once: this \
         token is not it, or it was exchanged already, revoked or has expired"
    )]
    NotBootstrap,
    /// A recovery named a user who is not an administrator.
    #[error("`{user}` is a {role}, not an administrator: recovery issues administrator tokens only")]
    NotAdministrator {
        /// The user.
        user: UserRef,
        /// Their role.
        role: String,
    },
    /// The key is already registered for this user.
    #[error("that key is already registered for `{0}`")]
    KeyExists(UserRef),
    /// The user has no key with that fingerprint.
    #[error("`{user}` has no key with fingerprint `{fingerprint}`")]
    UnknownKey {
        /// The key's owner.
        user: UserRef,
        /// The fingerprint asked for.
        fingerprint: String,
    },
    /// The transfer is not waiting for approval (released, rejected, or decided already).
    #[error("transfer `{0}` is not waiting for approval")]
    NotHeld(String),
    /// The route already exists.
    #[error("there is already a route from `{0}` to `{1}`")]
    RouteExists(String, String),
    /// There is no such route.
    #[error("there is no route from `{0}` to `{1}`")]
    UnknownRoute(String, String),
    /// No transfer has that id (or the caller may not see it).
    #[error("there is no transfer `{0}`")]
    UnknownTransfer(String),
    /// A stored value no longer parses (the database was edited by hand).
    #[error("stored value is invalid: {0}")]
    Corrupt(#[from] ParseError),
    /// A stored value of a closed set (a state, a digest) no longer parses.
    #[error("stored {column} `{value}` is invalid")]
    Unreadable {
        /// What it is.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// A copy's target database already holds rows.
    #[error("the target database is not empty: table `{table}` has {rows} row(s)")]
    NotEmpty {
        /// The first table found holding rows.
        table: String,
        /// How many.
        rows: u64,
    },
    /// A copy's target lacks a column the source has (the two schemas differ).
    #[error("the target database's table `{table}` has no column `{column}`")]
    MissingColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A copy's target column has a type a copy does not know.
    #[error("the target database's column `{table}.{column}` has the type `{declared}`, which a copy does not know")]
    UnknownColumnType {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Its declared type.
        declared: String,
    },
    /// A source value that its target column's type cannot take.
    #[error("column `{table}.{column}` holds a {from} value, which its target type {to} cannot take")]
    Unconvertible {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The value's kind.
        from: &'static str,
        /// The target column's type.
        to: &'static str,
    },
    /// The foreign keys of these tables form a cycle, so no copy order puts parents first.
    #[error("the foreign keys of tables {0:?} form a cycle")]
    ForeignKeyCycle(Vec<String>),
    /// A database made by another version of sealpost than this one.
    #[error("the database's schema is at version {found}, and this sealpost's at {expected}")]
    OtherSchema {
        /// The database's latest migration.
        found: i64,
        /// This binary's latest migration.
        expected: i64,
    },
    /// SQLite's integrity check found damage.
    #[error("the database file is damaged: {0}")]
    Damaged(String),
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure.
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

impl StoreError {
    /// The stable error code an answer about this failure carries.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Busy | Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Full => ErrorCode::InsufficientStorage,
            Self::OrgExists(_)
            | Self::UserExists(_)
            | Self::EmailInUse(_)
            | Self::KeyExists(_)
            | Self::RouteExists(..) => ErrorCode::AlreadyExists,
            Self::NotHeld(_) => ErrorCode::NotAwaitingApproval,
            Self::LastAdministrator => ErrorCode::LastAdministrator,
            Self::NotBootstrap => ErrorCode::Forbidden,
            Self::NotAdministrator { .. } => ErrorCode::BadRequest,
            Self::UnknownOrg(_)
            | Self::UnknownUser(_)
            | Self::UnknownToken(_)
            | Self::UnknownKey { .. }
            | Self::UnknownRoute(..)
            | Self::UnknownTransfer(_) => ErrorCode::NotFound,
            Self::Corrupt(_)
            | Self::Unreadable { .. }
            | Self::NotEmpty { .. }
            | Self::MissingColumn { .. }
            | Self::UnknownColumnType { .. }
            | Self::Unconvertible { .. }
            | Self::ForeignKeyCycle(_)
            | Self::OtherSchema { .. }
            | Self::Damaged(_)
            | Self::Migrate(_)
            | Self::Db(_) => ErrorCode::Internal,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Self::Busy,
            // A connection sqlx still counts as inside a transaction that failed: the pool
            // retires it before handing it out again (`pool_options`).
            sqlx::Error::InvalidSavePointStatement | sqlx::Error::BeginFailed => Self::Unavailable(e.to_string()),
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => Self::Full,
            // A database server that is restarting or unreachable: nothing was written, and the
            // pool reconnects by itself once it is back, so "try again shortly" is the answer.
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Self::Busy,
            sqlx::Error::Database(db) => match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                Some(pg) => match pg.code() {
                    "53100" => Self::Full,
                    // Serialization failure, deadlock, lock timeout, too many connections, and
                    // the server shutting down, starting or gone (classes 08, 57P).
                    "40001" | "40P01" | "55P03" | "53300" | "57014" => Self::Busy,
                    code if code.starts_with("08") || code.starts_with("57P") => Self::Busy,
                    _ => Self::Db(e),
                },
                None => {
                    let primary = db.code().and_then(|c| c.parse::<i64>().ok()).map(|c| c & 0xff);
                    match primary {
                        Some(5 | 6) => Self::Busy,
                        Some(13) => Self::Full,
                        // SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN: the file or its
                        // directory cannot be written or opened now (read-only, gone, failing).
                        Some(8 | 10 | 14) => Self::Unavailable(db.message().to_owned()),
                        _ => Self::Db(e),
                    }
                }
            },
            _ => Self::Db(e),
        }
    }
}

/// True when a database error is a unique-constraint violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// A row's `recipients` column (space-separated `ORG/NAME`, as `group_concat` makes it), sorted.
fn recipient_list(row: &sqlx::any::AnyRow) -> Result<Vec<UserRef>, StoreError> {
    use sqlx::Row as _;
    let mut recipients = row
        .get::<Option<String>, _>("recipients")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<Vec<UserRef>, _>>()?;
    recipients.sort();
    Ok(recipients)
}

/// A yes/no read from either database: SQLite keeps booleans as integers, PostgreSQL as
/// `BOOLEAN`, and the `Any` driver will not turn one into the other by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flag(pub(crate) bool);

impl sqlx::Type<Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <bool as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <bool as sqlx::Type<Any>>::compatible(ty) || <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::ValueRef as _;
        if value.type_info().kind() == sqlx::any::AnyTypeInfoKind::Bool {
            <bool as sqlx::Decode<'r, Any>>::decode(value).map(Self)
        } else {
            <i64 as sqlx::Decode<'r, Any>>::decode(value).map(|i| Self(i != 0))
        }
    }
}

/// Milliseconds since the Unix epoch, the store's time unit.
fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`ms`]; out-of-range values clamp to the epoch.
fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

/// Which database a store runs on: the few things the two do differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the embedded default): one file, one writer at a time.
    Sqlite,
    /// PostgreSQL: shared by several gateways.
    Postgres,
}

/// The advisory lock key writers take turns on in PostgreSQL (`sealpost` in ASCII).
const WRITE_LOCK: i64 = 0x7365_616c_706f_7374;

impl Dialect {
    /// The dialect of a database URL, or `None` for one this gateway cannot use.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// Starts a write transaction that has the writers' turn from its first statement.
    async fn begin_write(self, pool: &AnyPool) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self {
            Self::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Self::Postgres => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
                Ok(tx)
            }
        }
    }
}

/// The gateway's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// This gateway's name among those sharing the database (it owns the leases it hands out).
    gateway: std::sync::Arc<str>,
    /// Batches accepted uploads into shared transactions.
    group: std::sync::Arc<group::GroupCommit>,
    /// The database URL, for the connection that listens for wake-ups (PostgreSQL).
    url: Redacted,
    /// Repeated refusals counted in their window, not yet written (`refusals`).
    refusals: std::sync::Arc<refusals::Refusals>,
}

/// A database URL, which may hold a password: kept, never printed.
#[derive(Clone)]
struct Redacted(std::sync::Arc<str>);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redacted")
    }
}

impl std::ops::Deref for Redacted {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// The URL of the SQLite database file at `path` (characters URLs reserve are escaped).
pub fn sqlite_url(path: &Path) -> String {
    let mut url = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' | ' ' => url.push_str(&format!("%{:02X}", u32::from(c))),
            c => url.push(c),
        }
    }
    url
}

/// The file a SQLite URL names, to tell whether a connection still has that file open.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr as _;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (path != Path::new(":memory:")).then(|| path.to_owned())
}

/// Which file is at `path` now (device and inode), if any.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The pool's options: its size, the SQLite settings of each new connection, and the checks
/// that keep a connection a storage fault broke from being handed out again.
///
/// A failed `COMMIT` (the disk full, an I/O error) can leave a connection that sqlx still
/// counts as inside a transaction: SQLite already rolled it back, so the `ROLLBACK` sqlx sends
/// when the transaction is dropped fails too, and every later `BEGIN` on that connection is
/// refused ("begin_with at non-zero transaction depth") for as long as the pool keeps it, long
/// after the disk was freed. Before a pooled connection is handed out, its pending rollback is
/// flushed (`ping`); one still inside a transaction then is closed and replaced. For SQLite a
/// connection is also retired when the file at the database's path is no longer the one it has
/// open (deleted, moved or replaced under the running gateway): its writes would go to a file
/// nobody will read again.
fn pool_options(dialect: Dialect, file: Option<std::path::PathBuf>) -> AnyPoolOptions {
    let opened = std::sync::Arc::new(std::sync::Mutex::new(None::<(u64, u64)>));
    let (file_at_connect, opened_at_connect) = (file.clone(), opened.clone());
    AnyPoolOptions::new()
        .max_connections(match dialect {
            Dialect::Sqlite => 8,
            Dialect::Postgres => 16,
        })
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(true)
        .after_connect(move |conn, _| {
            let (file, opened) = (file_at_connect.clone(), opened_at_connect.clone());
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    // WAL with full fsync: a commit is on disk when it returns; writers
                    // wait for each other up to 5 s instead of failing at once.
                    sqlx::raw_sql(
                        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON;",
                    )
                    .execute(&mut *conn)
                    .await?;
                    if let Some(file) = &file {
                        *opened.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = file_identity(file);
                    }
                }
                Ok(())
            })
        })
        .before_acquire(move |conn, _| {
            let (file, opened) = (file.clone(), opened.clone());
            Box::pin(async move {
                use sqlx::Connection as _;
                if conn.is_in_transaction() {
                    conn.ping().await?;
                    if conn.is_in_transaction() {
                        tracing::warn!("retiring a database connection a failed transaction left unusable");
                        return Ok(false);
                    }
                }
                if let Some(file) = &file {
                    let expected = *opened.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let now = file_identity(file);
                    if now.is_none() || now != expected {
                        tracing::warn!(file = %file.display(), "the database file was moved or replaced: retiring a connection to the old one");
                        return Ok(false);
                    }
                }
                Ok(true)
            })
        })
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` in WAL mode with full fsync,
    /// and applies the embedded migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::connect(&sqlite_url(path)).await
    }

    /// Opens the database at `url` (`sqlite://PATH`, created if missing, or `postgres://…`)
    /// and applies its backend's migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)
            .ok_or_else(|| StoreError::Db(sqlx::Error::Configuration("unsupported database URL".into())))?;
        let (url, pool) = match dialect {
            // Created if missing only here, at start: once migrated, the pool opens the file it
            // finds and nothing else, so a database file that goes away under a running gateway
            // is a failure to answer (503), never a fresh empty database written in its place.
            Dialect::Sqlite if !url.contains('?') => {
                let create = pool_options(dialect, None).max_connections(1).connect(&format!("{url}?mode=rwc")).await?;
                sqlx::migrate!("./migrations/sqlite").run(&create).await?;
                create.close().await;
                let url = format!("{url}?mode=rw");
                let pool = pool_options(dialect, sqlite_file(&url)).connect(&url).await?;
                (url, pool)
            }
            _ => {
                let file = if dialect == Dialect::Sqlite { sqlite_file(url) } else { None };
                let pool = pool_options(dialect, file).connect(url).await?;
                match dialect {
                    Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
                    Dialect::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
                }
                (url.to_owned(), pool)
            }
        };
        let group = std::sync::Arc::new(group::GroupCommit::start(pool.clone(), dialect));
        let refusals =
            std::sync::Arc::new(refusals::Refusals::new(DEFAULT_REFUSAL_WINDOW, crate::clock::Clock::system()));
        Ok(Self { pool, dialect, gateway: std::sync::Arc::from("local"), group, url: Redacted(url.into()), refusals })
    }

    /// Aggregates identical refusals over `window` (zero: every refusal is its own entry),
    /// reading time from `clock`; see [`refusals`].
    #[must_use]
    pub fn with_refusal_window(mut self, window: std::time::Duration, clock: crate::clock::Clock) -> Self {
        self.refusals = std::sync::Arc::new(refusals::Refusals::new(window, clock));
        self
    }

    /// Names the gateway using this store, for the leases it hands out (see
    /// [`Store::heartbeat`]); `local` until named.
    #[must_use]
    pub fn for_gateway(mut self, id: &str) -> Self {
        self.gateway = std::sync::Arc::from(id);
        self
    }

    /// This gateway's name among those sharing the database.
    pub fn gateway_id(&self) -> &str {
        &self.gateway
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Starts a write transaction that has the writers' turn from the start.
    async fn write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(self.dialect.begin_write(&self.pool).await?)
    }

    /// Records one event on its own (refusals and other events that change nothing else);
    /// returns its log index.
    pub async fn record(&self, event: &Event, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let idx = append(&mut tx, event, now).await?;
        tx.commit().await?;
        Ok(idx)
    }

    /// The latest `policy.changed` event as (log index, the new policy digest), if any: how a
    /// gateway learns that another one sharing the database reloaded its policies.
    pub async fn latest_policy_change(&self) -> Result<Option<(u64, String)>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT idx, entry FROM audit_events WHERE event = 'policy.changed' ORDER BY idx DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(idx, entry)| {
            let digest = entry.lines().find_map(|l| l.strip_prefix("digest ")).unwrap_or_default().to_owned();
            (u64::try_from(idx).unwrap_or_default(), digest)
        }))
    }

    /// Log entries from index `from` on, at most `limit`, in index order.
    pub async fn entries_from(&self, from: u64, limit: u32) -> Result<Vec<(u64, String)>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT idx, entry FROM audit_events WHERE idx >= $1 ORDER BY idx LIMIT $2")
                .bind(i64::try_from(from).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(i, e)| (u64::try_from(i).unwrap_or_default(), e)).collect())
    }

    /// A transfer's events that prove something to its parties (upload, approval, delivery,
    /// recall, purge), as `(event, log index, entry)`, oldest first.
    pub async fn receipt_events(
        &self,
        transfer: &crate::ids::TransferId,
    ) -> Result<Vec<(String, u64, String)>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT event, idx, entry FROM audit_events WHERE transfer_id = $1 AND event IN \
             ('upload.accepted', 'transfer.approved', 'transfer.rejected', 'download.completed', \
              'delivery.acknowledged', 'transfer.recalled', 'object.purged') ORDER BY idx",
        )
        .bind(transfer.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(e, i, t)| (e, u64::try_from(i).unwrap_or_default(), t)).collect())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool (checkpointing SQLite's WAL), after writing the summaries of repeated
    /// refusals still counted.
    pub async fn close(&self) {
        if let Err(e) = self.flush_refusals().await {
            tracing::error!(error = %e, "the summaries of repeated refusals were not written");
        }
        self.pool.close().await;
    }
}

/// Appends an audit event inside the caller's transaction, with the notifications it causes
/// (`notifications::enqueue`: outbox rows in the same transaction); returns its log index.
async fn append(tx: &mut Transaction<'static, Any>, event: &Event, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let idx: i64 = sqlx::query_scalar(
        "INSERT INTO audit_events (at, event, actor_id, transfer_id, subject_id, code, entry, idx) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(idx), -1) + 1 FROM audit_events)) RETURNING idx",
    )
    .bind(ms(now))
    .bind(event.kind.as_str())
    .bind(event.actor.as_ref().map(|a| a.as_str().to_owned()))
    .bind(event.transfer.as_ref().map(|t| t.as_str().to_owned()))
    .bind(event.subject.clone())
    .bind(event.code.clone())
    .bind(event.entry(now))
    .fetch_one(&mut **tx)
    .await?;
    notifications::enqueue(tx, event, now).await?;
    Ok(u64::try_from(idx).unwrap_or_default())
}
