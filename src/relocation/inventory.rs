//! A backup's inventory, `inventory.json`: every file the backup holds with its size and SHA-256,
//! what it could not take, and the log and signing key it was made with. It is written last, so
//! a backup without one is not whole; a restore checks the backup against it before it writes
//! anything.
//!
//! It guards against a backup damaged or cut short (a failing disk, a copy that stopped). It is
//! not signed, so it does not stand against someone who can rewrite the backup: after a restore,
//! `sealpost log verify` from a state saved earlier does that for the log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;

use super::{RelocationError, Tally, io_err};
use crate::ids::TransferId;
use crate::store::LogHead;

/// The inventory's file name in a backup directory.
pub const INVENTORY: &str = "inventory.json";
/// The format this version writes and reads.
const FORMAT: &str = "sealpost-backup/v1";

/// How a backup differs from its inventory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// The inventory is not valid.
    #[error("`{INVENTORY}` is unreadable: {0}")]
    Unreadable(String),
    /// The inventory is of a format this version does not read.
    #[error("`{INVENTORY}` is of format `{0}`, which this sealpost does not read")]
    Format(String),
    /// A file the inventory lists is not there.
    #[error("`{0}` is listed in `{INVENTORY}` but missing")]
    Missing(String),
    /// A file has another length than the inventory says.
    #[error("`{path}` is {found} bytes long, and `{INVENTORY}` says {expected}")]
    Size {
        /// The file.
        path: String,
        /// The length listed.
        expected: u64,
        /// The length found.
        found: u64,
    },
    /// A file's SHA-256 differs from the inventory's.
    #[error("`{0}` does not match its digest in `{INVENTORY}`")]
    Digest(String),
    /// A file that the inventory does not list.
    #[error("`{0}` is not listed in `{INVENTORY}`")]
    Unlisted(String),
    /// The inventory lists a name no backup holds.
    #[error("`{INVENTORY}` lists `{0}`, which is not a file a backup holds")]
    Stray(String),
    /// The database refers to a blob or an upload the backup neither holds nor lists as lost.
    #[error("the database refers to `{0}`, which the backup neither holds nor lists as lost")]
    Incomplete(String),
    /// The backup holds a blob or an upload the database does not refer to.
    #[error("the backup holds `{0}`, which its database does not refer to")]
    Unreferenced(String),
    /// The database's log is not the one the inventory describes.
    #[error("the database's log has {found} entries, and `{INVENTORY}` says {expected}")]
    OtherLog {
        /// The size listed.
        expected: u64,
        /// The size found.
        found: u64,
    },
}

/// What a file of a backup is, by its path in the backup directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Part {
    /// `sealpost.db`: the database snapshot.
    Database,
    /// `gateway.id`: the gateway's name among those sharing a database.
    GatewayId,
    /// `gateway.key`: the signing key (left out by `--without-secrets`).
    SigningKey,
    /// `admin.token`: the first administrator's token (left out by `--without-secrets`).
    AdminToken,
    /// `blobs/ID.age`: a transfer's ciphertext.
    Blob(TransferId),
    /// `uploads/ID.part`: the acknowledged bytes of an unfinished resumable upload.
    Upload(TransferId),
}

impl Part {
    /// Its path in the backup directory.
    pub(super) fn path(&self) -> String {
        match self {
            Self::Database => "sealpost.db".to_owned(),
            Self::GatewayId => "gateway.id".to_owned(),
            Self::SigningKey => "gateway.key".to_owned(),
            Self::AdminToken => "admin.token".to_owned(),
            Self::Blob(id) => format!("blobs/{id}.age"),
            Self::Upload(id) => format!("uploads/{id}.part"),
        }
    }

    /// The part at `path`, if a backup holds such a file.
    fn parse(path: &str) -> Option<Self> {
        let id = |rest: Option<&str>| rest.and_then(TransferId::parse);
        match path {
            "sealpost.db" => Some(Self::Database),
            "gateway.id" => Some(Self::GatewayId),
            "gateway.key" => Some(Self::SigningKey),
            "admin.token" => Some(Self::AdminToken),
            _ => id(path.strip_prefix("blobs/").and_then(|p| p.strip_suffix(".age")))
                .map(Self::Blob)
                .or_else(|| id(path.strip_prefix("uploads/").and_then(|p| p.strip_suffix(".part"))).map(Self::Upload)),
        }
    }
}

/// The log as the backup's database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogAt {
    /// Its origin.
    pub(super) origin: String,
    /// Entries integrated.
    pub(super) size: u64,
    /// The signed checkpoint.
    pub(super) checkpoint: String,
}

impl From<&LogHead> for LogAt {
    fn from(head: &LogHead) -> Self {
        Self { origin: head.origin.clone(), size: head.size, checkpoint: head.checkpoint.clone() }
    }
}

/// One file of the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileEntry {
    /// Its path in the backup directory.
    pub(super) path: String,
    /// Its length.
    pub(super) size: u64,
    /// Its SHA-256, `sha256:…`.
    pub(super) sha256: String,
}

/// The inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Inventory {
    /// `sealpost-backup/v1`.
    pub(super) format: String,
    /// The version of sealpost that made it.
    pub(super) sealpost: String,
    /// When the backup began.
    pub(super) created_at: DateTime<Utc>,
    /// The gateway's Ed25519 public key, hex: which signing key opens the backup's log.
    pub(super) signing_key_public: String,
    /// The log in the database snapshot.
    pub(super) log: LogAt,
    /// Every file but the inventory.
    pub(super) files: Vec<FileEntry>,
    /// Blobs the database refers to that were purged before the backup could copy them.
    pub(super) lost_blobs: Vec<String>,
    /// Unfinished uploads whose bytes were gone (completed or expired) before the backup could
    /// copy them.
    pub(super) lost_uploads: Vec<String>,
}

impl Inventory {
    /// A new, empty inventory.
    pub(super) fn new(created_at: DateTime<Utc>, signing_key_public: String, log: LogAt) -> Self {
        Self {
            format: FORMAT.to_owned(),
            sealpost: env!("CARGO_PKG_VERSION").to_owned(),
            created_at,
            signing_key_public,
            log,
            files: Vec::new(),
            lost_blobs: Vec::new(),
            lost_uploads: Vec::new(),
        }
    }

    /// Adds the file of `part`, already written in `dir`.
    pub(super) async fn add(&mut self, dir: &Path, part: &Part) -> Result<(), RelocationError> {
        let path = part.path();
        let (size, digest) = hash_file(&dir.join(&path)).await?;
        self.files.push(FileEntry { path, size, sha256: digest });
        Ok(())
    }

    /// Whether the backup holds `part`.
    pub(super) fn holds(&self, part: &Part) -> bool {
        let path = part.path();
        self.files.iter().any(|f| f.path == path)
    }

    /// Every blob and upload the backup holds.
    pub(super) fn parts(&self) -> BTreeSet<Part> {
        self.files.iter().filter_map(|f| Part::parse(&f.path)).collect()
    }

    /// Writes the inventory into `dir`, durably, under its final name last.
    pub(super) async fn write(&self, dir: &Path) -> Result<(), RelocationError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| io_err(dir)(std::io::Error::other(e)))?;
        let (tmp, path) = (dir.join(format!("{INVENTORY}.tmp")), dir.join(INVENTORY));
        write_file(&tmp, &json).await?;
        tokio::fs::rename(&tmp, &path).await.map_err(io_err(&path))?;
        sync_dir(dir).await
    }

    /// Reads the inventory of the backup in `dir` and checks every file against it: each one
    /// listed is there with its length and digest, and nothing else is.
    pub(super) async fn read_and_check(dir: &Path) -> Result<Self, RelocationError> {
        let path = dir.join(INVENTORY);
        let text = match tokio::fs::read(&path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RelocationError::NotABackup(dir.to_owned()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let inventory: Self = serde_json::from_slice(&text).map_err(|e| Damage::Unreadable(e.to_string()))?;
        if inventory.format != FORMAT {
            return Err(Damage::Format(inventory.format).into());
        }
        let mut listed = BTreeSet::new();
        for file in &inventory.files {
            if Part::parse(&file.path).is_none() {
                return Err(Damage::Stray(file.path.clone()).into());
            }
            listed.insert(file.path.clone());
        }
        for found in files_under(dir).await? {
            if found != INVENTORY && !listed.contains(&found) {
                return Err(Damage::Unlisted(found).into());
            }
        }
        for file in &inventory.files {
            let (size, digest) = match hash_file(&dir.join(&file.path)).await {
                Err(RelocationError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Damage::Missing(file.path.clone()).into());
                }
                other => other?,
            };
            if size != file.size {
                return Err(Damage::Size { path: file.path.clone(), expected: file.size, found: size }.into());
            }
            if digest != file.sha256 {
                return Err(Damage::Digest(file.path.clone()).into());
            }
        }
        Ok(inventory)
    }
}

/// The length and `sha256:…` digest of a file.
async fn hash_file(path: &Path) -> Result<(u64, String), RelocationError> {
    let mut file = tokio::fs::File::open(path).await.map_err(io_err(path))?;
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        tally.add(&buf[..n]);
    }
    let (size, digest) = tally.finish();
    Ok((size, digest.to_string()))
}

/// The paths of every file under `dir`, relative to it, with `/` between names.
async fn files_under(dir: &Path) -> Result<Vec<String>, RelocationError> {
    let mut found = Vec::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(dir.to_owned(), String::new())];
    while let Some((at, prefix)) = pending.pop() {
        let mut entries = tokio::fs::read_dir(&at).await.map_err(io_err(&at))?;
        while let Some(entry) = entries.next_entry().await.map_err(io_err(&at))? {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().await.map_err(io_err(&entry.path()))?.is_dir() {
                pending.push((entry.path(), format!("{name}/")));
            } else {
                found.push(name);
            }
        }
    }
    Ok(found)
}

/// Writes a new file (mode 0600) durably.
pub(super) async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), RelocationError> {
    use tokio::io::AsyncWriteExt as _;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(io_err(path))?;
    file.write_all(bytes).await.map_err(io_err(path))?;
    file.sync_all().await.map_err(io_err(path))
}

/// Makes the names in `dir` durable.
pub(super) async fn sync_dir(dir: &Path) -> Result<(), RelocationError> {
    tokio::fs::File::open(dir).await.map_err(io_err(dir))?.sync_all().await.map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_a_backup_holds_have_parts() {
        let id = TransferId::generate();
        for part in [Part::Database, Part::SigningKey, Part::Blob(id.clone()), Part::Upload(id.clone())] {
            assert_eq!(Part::parse(&part.path()), Some(part));
        }
        for stray in ["../etc/passwd", "blobs/../../x.age", "blobs/x.age", "sealpost.db-wal", "uploads/", "log/key"] {
            assert_eq!(Part::parse(stray), None, "{stray}");
        }
    }

    #[tokio::test]
    async fn a_backup_that_differs_from_its_inventory_is_damaged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogAt { origin: "o".into(), size: 1, checkpoint: "c".into() };
        let mut inventory = Inventory::new(Utc::now(), "00".into(), log);
        write_file(&dir.path().join("sealpost.db"), b"rows").await.expect("write");
        inventory.add(dir.path(), &Part::Database).await.expect("add");
        inventory.write(dir.path()).await.expect("write");
        assert_eq!(Inventory::read_and_check(dir.path()).await.expect("whole"), inventory);

        let damage = |r: Result<Inventory, RelocationError>| match r {
            Err(RelocationError::Damaged(d)) => d,
            other => panic!("expected damage, got {other:?}"),
        };
        std::fs::write(dir.path().join("sealpost.db"), b"rowz").expect("tamper");
        assert_eq!(damage(Inventory::read_and_check(dir.path()).await), Damage::Digest("sealpost.db".into()));
        std::fs::write(dir.path().join("sealpost.db"), b"row").expect("truncate");
        assert_eq!(
            damage(Inventory::read_and_check(dir.path()).await),
            Damage::Size { path: "sealpost.db".into(), expected: 4, found: 3 }
        );
        std::fs::write(dir.path().join("sealpost.db"), b"rows").expect("mend");
        std::fs::write(dir.path().join("gateway.key"), b"planted").expect("plant");
        assert_eq!(damage(Inventory::read_and_check(dir.path()).await), Damage::Unlisted("gateway.key".into()));
        std::fs::remove_file(dir.path().join("gateway.key")).expect("remove");
        std::fs::remove_file(dir.path().join("sealpost.db")).expect("remove");
        assert_eq!(damage(Inventory::read_and_check(dir.path()).await), Damage::Missing("sealpost.db".into()));
        std::fs::remove_file(dir.path().join(INVENTORY)).expect("remove");
        assert!(matches!(Inventory::read_and_check(dir.path()).await, Err(RelocationError::NotABackup(_))));
    }
}
