//! Moving a deployment's data somewhere else, below the command line: `sealpost admin migrate`
//! (a SQLite deployment's rows, blobs and log into PostgreSQL and an S3 store), `admin backup`
//! (a consistent copy of a running SQLite deployment into a directory) and `admin restore` (that
//! copy back into an empty data directory).
//!
//! The log needs nothing of its own: it lives in the database (the checkpoint, tiles and sealed
//! log keys; entries are the audit rows), so a copy of the rows is a copy of the log. What it
//! does need is the gateway's signing key, which signs its checkpoints and seals the rotated log
//! keys and the completed uploads' answers: every step here checks that the key at hand opens the
//! log before it writes anything, and refuses with [`RelocationError::OtherSigningKey`] otherwise.
//!
//! | module | concern |
//! |---|---|
//! | this one | the error, and what the three share: the key check, copying a blob with its digest |
//! | `migrate` | SQLite and files into PostgreSQL and S3 (the gateway stopped) |
//! | `backup` | an online backup into a directory, with its inventory |
//! | `restore` | a backup checked against its inventory, then written into an empty data directory |
//! | `inventory` | the backup's list of files with sizes and SHA-256 digests |

mod backup;
mod inventory;
mod migrate;
mod restore;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures_util::TryStreamExt as _;
use futures_util::stream::BoxStream;
use sha2::Digest as _;

pub use backup::{BackedUp, backup};
pub use inventory::{Damage, INVENTORY};
pub use migrate::{Migrated, migrate};
pub use restore::{Restored, restore};

use crate::blobs::{BlobError, BlobStore, StagedBlob};
use crate::config::Config;
use crate::gateway::{DataDirLock, Hold, StartError, lock_data_dir};
use crate::store::{Store, StoreError, StoredBlob};
use crate::transparency::writer::{Log, LogError};
use crate::wire::Digest;

/// The audit code of links and blobs a restore finds lost (purged while the backup ran).
pub const NOT_IN_BACKUP: &str = "not_in_backup";

/// What can stop a migration, a backup or a restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelocationError {
    /// A gateway holds the data directory.
    #[error("a gateway is running on `{0}`")]
    GatewayRunning(PathBuf),
    /// The deployment's database is not SQLite.
    #[error("the database `{0}` is not SQLite")]
    NotSqlite(String),
    /// A restore's blob store is not a directory.
    #[error("the blob store `{0}` is not a directory on this machine")]
    NotLocal(String),
    /// There is no database where the deployment's should be.
    #[error("there is no database at `{0}`")]
    NoDatabase(PathBuf),
    /// Source and target are one database.
    #[error("the target database is the source database")]
    SameDatabase,
    /// The database has no log (it was last run by a version that kept the log in files).
    #[error("the database holds no transparency log yet")]
    NoLog,
    /// The signing key does not open the log.
    #[error("the signing key `{0}` does not open this deployment's log")]
    OtherSigningKey(PathBuf),
    /// A restore's signing key is not the one the backup was made with.
    #[error("the signing key `{0}` is not the one this backup was made with")]
    KeyMismatch(PathBuf),
    /// A restore has no signing key: the backup holds none, and none is where the gateway looks.
    #[error("the backup holds no signing key, and there is none at `{0}`")]
    NoKey(PathBuf),
    /// Blobs the database refers to are missing from the source's blob store.
    #[error("{} blob(s) the database refers to are missing from the blob store, such as `{}`", .0.len(), .0.first().map_or("", String::as_str))]
    MissingBlobs(Vec<String>),
    /// A blob does not hold what its transfer recorded.
    #[error("blob `{key}` holds {found}, not the {expected} its transfer recorded")]
    BlobMismatch {
        /// The blob.
        key: String,
        /// Size and digest recorded.
        expected: String,
        /// Size and digest found.
        found: String,
    },
    /// After a copy, a table holds another number of rows than its source.
    #[error("table `{table}` has {source_rows} row(s) in the source and {target_rows} in the copy")]
    RowsDiffer {
        /// The table.
        table: String,
        /// Rows in the source.
        source_rows: u64,
        /// Rows in the copy.
        target_rows: u64,
    },
    /// After a copy, the log's checkpoint is not its source's.
    #[error("the copied log's checkpoint (size {target_size}) is not its source's (size {source_size})")]
    LogDiffers {
        /// The source's log size.
        source_size: u64,
        /// The copy's.
        target_size: u64,
    },
    /// A destination that must be empty is not.
    #[error("`{0}` is not empty")]
    NotEmpty(PathBuf),
    /// A file a restore would write exists already.
    #[error("`{0}` exists already")]
    Exists(PathBuf),
    /// The backup directory has no inventory.
    #[error("`{0}` is not a whole sealpost backup: it has no `{INVENTORY}`")]
    NotABackup(PathBuf),
    /// The backup does not match its inventory.
    #[error("the backup is damaged: {0}")]
    Damaged(#[from] Damage),
    /// A file could not be read or written.
    #[error("`{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The signing key or the data directory's lock.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blob store.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The log (other than the wrong key).
    #[error(transparent)]
    Log(LogError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RelocationError + '_ {
    move |source| RelocationError::Io { path: path.to_owned(), source }
}

/// Checks that `key` opens the log in `store`: its checkpoint verifies with the log keys the
/// signing key gives (the base key, and the rotated ones it unseals). The log must exist.
async fn check_key(store: &Store, config: &Config, key: &SigningKey) -> Result<(), RelocationError> {
    if store.log_head().await?.is_none() {
        return Err(RelocationError::NoLog);
    }
    // With a log in the database, `open` reads it and makes nothing (the origin is unused).
    match Log::open(store.clone(), &config.data_dir.join("log"), "unused", &key.to_bytes()).await {
        Ok(_) => Ok(()),
        Err(LogError::OtherSigningKey) => Err(RelocationError::OtherSigningKey(config.signing_key_file())),
        Err(e) => Err(RelocationError::Log(e)),
    }
}

/// Takes the data directory `dir` for this process alone: refused while a gateway runs on it.
fn alone_on(dir: &Path) -> Result<DataDirLock, RelocationError> {
    match lock_data_dir(dir, Hold::Exclusive) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(RelocationError::GatewayRunning(dir.to_owned())),
        Err(StartError::Io { path, source }) => Err(RelocationError::Io { path, source }),
        Err(e) => Err(e.into()),
    }
}

/// Whether two ends of a copy are one database.
fn same_database(a: &crate::config::DatabaseUrl, b: &crate::config::DatabaseUrl) -> bool {
    use crate::config::DatabaseUrl::Sqlite;
    match (a, b) {
        (Sqlite(a), Sqlite(b)) => a == b || a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a)),
        _ => a.url() == b.url(),
    }
}

/// A running SHA-256 and byte count of what goes through it.
#[derive(Debug, Default)]
struct Tally {
    hasher: sha2::Sha256,
    size: u64,
}

impl Tally {
    fn add(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// The byte count and the digest.
    fn finish(self) -> (u64, Digest) {
        (self.size, Digest::from_bytes(self.hasher.finalize().into()))
    }
}

/// `size` and `digest` as an error shows them.
fn described(size: u64, digest: &str) -> String {
    format!("{size} bytes with digest {digest}")
}

/// Streams a blob's bytes into a staged upload of `into`, counting and hashing them, then checks
/// them against what the database recorded and commits the blob under its key. Nothing is
/// committed when they differ.
async fn copy_blob(
    mut bytes: BoxStream<'static, Result<Bytes, BlobError>>,
    into: &BlobStore,
    blob: &StoredBlob,
) -> Result<(), RelocationError> {
    let mut staged: StagedBlob = into.stage(&blob.transfer).await?;
    let mut tally = Tally::default();
    while let Some(piece) = bytes.try_next().await? {
        tally.add(&piece);
        staged.write_bytes(piece).await?;
    }
    let (size, digest) = tally.finish();
    if size != blob.size || digest.to_string() != blob.digest {
        return Err(RelocationError::BlobMismatch {
            key: blob.key.clone(),
            expected: described(blob.size, &blob.digest),
            found: described(size, &digest.to_string()),
        });
    }
    into.commit(staged, &blob.key).await?;
    Ok(())
}

/// Whether a blob store's failure means the object is not there.
fn is_missing(e: &BlobError) -> bool {
    match e {
        BlobError::NotFound { .. } => true,
        BlobError::Io(io) => io.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// The next piece of `bytes` within the `left` bytes still wanted (cut to fit), counted off;
/// `None` once `left` is 0 or the stream ends (the caller sees which by `left`).
async fn next_within(
    bytes: &mut BoxStream<'static, Result<Bytes, BlobError>>,
    left: &mut u64,
) -> Result<Option<Bytes>, BlobError> {
    if *left == 0 {
        return Ok(None);
    }
    let Some(mut piece) = bytes.try_next().await? else { return Ok(None) };
    piece.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
    *left -= piece.len() as u64;
    Ok(Some(piece))
}

/// A directory that a backup or a restore fills: missing or empty before. Unless the work is
/// [kept](Fresh::keep), dropping it removes what was written: the directory if it was made,
/// its contents otherwise, and the files outside it that were [added](Fresh::also).
#[derive(Debug)]
struct Fresh {
    dir: PathBuf,
    made: bool,
    also: Vec<PathBuf>,
    kept: bool,
}

impl Fresh {
    /// Claims `dir`: made (mode 0700) when missing; refused when it holds anything.
    async fn claim(dir: &Path) -> Result<Self, RelocationError> {
        match tokio::fs::read_dir(dir).await {
            Ok(mut entries) => {
                if entries.next_entry().await.map_err(io_err(dir))?.is_some() {
                    return Err(RelocationError::NotEmpty(dir.to_owned()));
                }
                Ok(Self { dir: dir.to_owned(), made: false, also: Vec::new(), kept: false })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                private_dir(dir)?;
                Ok(Self { dir: dir.to_owned(), made: true, also: Vec::new(), kept: false })
            }
            Err(e) => Err(io_err(dir)(e)),
        }
    }

    /// Also removes `path` (a file outside the directory) if the work is not kept.
    fn also(&mut self, path: &Path) {
        if !path.starts_with(&self.dir) {
            self.also.push(path.to_owned());
        }
    }

    /// The work is done: keep it.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for path in &self.also {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_dir_all(path);
        }
        if self.made {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            }
        }
    }
}

/// Makes a directory (and its parents) readable by its owner only.
fn private_dir(dir: &Path) -> Result<(), RelocationError> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))
}
