//! `sealpost admin check`: compares the database, the blob store and the transparency log of a
//! deployment and lists every inconsistency, one finding each. It only reads (it may run beside
//! the gateways), and it opens the state exactly as `serve` does: the same configuration, SQLite
//! in the data directory or PostgreSQL, a blob directory or an S3 store.
//!
//! What must hold, and what is by design not a finding:
//!
//! - Every transfer whose link can still be redeemed (issued or leased) has its blob. A transfer
//!   no link can redeem any more (delivered, expired, recalled, rejected) has its blob deleted by
//!   the sweeper, which deletes the blob first and then clears `object_key`: a missing blob
//!   there is a purge in progress, not a loss.
//! - Every blob belongs to a transfer that still has it (`object_key` set). A blob younger than
//!   [`ORPHAN_GRACE`] is spared: its upload may be between the blob's commit and the database
//!   transaction (a crash there leaves an orphan that start-up sweeps). Files in the staging
//!   directory are uploads streaming in; one older than [`STAGING_GRACE`] is a leftover.
//! - Every transfer has exactly one `upload.accepted` event (its log entry); the audit trail's
//!   indexes run from 0 without a gap.
//! - The log verifies as `sealpost log verify` checks it: the checkpoint's signature, every
//!   stored hash tile against the tree rebuilt from the entries, the root, the entries' syntax
//!   and the transfers' lifecycle. Events not yet in the checkpoint are the sequencer's backlog
//!   (reported as a count, not a finding: the next sequencer round integrates them).
//! - Leases are sane: a leased link's gateway was seen within [`SILENCE`] (a gateway gone
//!   longer has its leases given back by the others), a leased link has a lease id and no use
//!   time, a used link has its use time, an issued link holds no lease, and no redeemable link
//!   points at a purged blob.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::blobs::{BlobError, BlobStore};
use crate::config::{Config, DatabaseUrl};
use crate::gateway::{StartError, load_signing_key};
use crate::store::{Store, StoreError};
use crate::transparency::tlog::quorum::Policy;
use crate::transparency::tlog::tiles;
use crate::transparency::verify::verify_log;
use crate::transparency::writer::{Log, LogError};

/// Blobs without a transfer younger than this are spared (their transaction may be on its way).
pub const ORPHAN_GRACE: TimeDelta = TimeDelta::minutes(10);
/// Staged files older than this are leftovers, not uploads streaming in.
pub const STAGING_GRACE: TimeDelta = TimeDelta::hours(1);
/// A gateway silent for longer than this is gone (as the gateways themselves judge it).
pub const SILENCE: TimeDelta = TimeDelta::seconds(30);

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind: `missing_blob`, `orphan_blob`, `stale_staging`, `missing_log_entry`,
    /// `duplicate_log_entry`, `audit_gap`, `log`, `stale_lease`, `link_state`.
    pub kind: &'static str,
    /// What it is about: a transfer id, a blob key, a file, a link id, or `log`.
    pub subject: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// What the check looked at and what it found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Transfers in the database.
    pub transfers: u64,
    /// Blobs in the store.
    pub blobs: u64,
    /// Audit events (the log's entries).
    pub events: u64,
    /// Entries the log's checkpoint covers.
    pub log_size: u64,
    /// Events the sequencer has not integrated yet.
    pub log_backlog: u64,
    /// Every inconsistency, in the order checked.
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn consistent(&self) -> bool {
        self.findings.is_empty()
    }

    fn find(&mut self, kind: &'static str, subject: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Finding { kind, subject: subject.into(), message: message.into() });
    }
}

/// What stops a check before it can tell (not an inconsistency: the state could not be read).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// There is no database where the configuration says.
    #[error("there is no database at `{0}`")]
    NoDatabase(std::path::PathBuf),
    /// The signing key (needed to open the log's rotated keys).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store.
    #[error(transparent)]
    Blobs(#[from] BlobError),
}

/// Checks the deployment `config` describes, at `now`.
pub async fn check(config: &Config, now: DateTime<Utc>) -> Result<Report, CheckError> {
    let database = config.database();
    if let DatabaseUrl::Sqlite(path) = &database
        && !path.is_file()
    {
        return Err(CheckError::NoDatabase(path.clone()));
    }
    let store = Store::connect(&database.url()).await?;
    let blobs = BlobStore::open_at(&config.data_dir, &config.blobs()).await?;
    let mut report = Report::default();
    check_blobs(&store, &blobs, now, &mut report).await?;
    check_trail(&store, &mut report).await?;
    check_log(&store, config, &mut report).await?;
    check_links(&store, now, &mut report).await?;
    store.close().await;
    Ok(report)
}

async fn check_blobs(
    store: &Store,
    blobs: &BlobStore,
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(), CheckError> {
    let transfers = store.checked_transfers().await?;
    let stored: HashMap<String, DateTime<Utc>> = blobs.inventory().await?.into_iter().collect();
    report.transfers = transfers.len() as u64;
    report.blobs = stored.len() as u64;
    let mut kept = HashSet::new();
    for t in &transfers {
        if let Some(key) = &t.object_key {
            kept.insert(key.clone());
            if t.live_links > 0 && !stored.contains_key(key) {
                report.find(
                    "missing_blob",
                    &t.id,
                    format!(
                        "transfer {} has {} link(s) that can still be redeemed, but its blob `{key}` is not in the blob store",
                        t.id, t.live_links
                    ),
                );
            }
        }
        if t.accepted_events == 0 {
            report.find(
                "missing_log_entry",
                &t.id,
                format!("transfer {} has no `upload.accepted` event in the log", t.id),
            );
        } else if t.accepted_events > 1 {
            report.find(
                "duplicate_log_entry",
                &t.id,
                format!("transfer {} has {} `upload.accepted` events in the log, not one", t.id, t.accepted_events),
            );
        }
    }
    for (key, written) in &stored {
        if !kept.contains(key) && now - *written >= ORPHAN_GRACE {
            report.find(
                "orphan_blob",
                key,
                format!("blob `{key}` belongs to no transfer that keeps a blob (written {})", written.to_rfc3339()),
            );
        }
    }
    for (path, written) in blobs.staged_files().await? {
        if now - written >= STAGING_GRACE {
            report.find(
                "stale_staging",
                path.display().to_string(),
                format!(
                    "staged file `{}` was last written {}: no upload streams into it (start-up removes it)",
                    path.display(),
                    written.to_rfc3339()
                ),
            );
        }
    }
    Ok(())
}

async fn check_trail(store: &Store, report: &mut Report) -> Result<(), CheckError> {
    let span = store.audit_span().await?;
    report.events = span.count;
    if span.count > 0 && (span.min != Some(0) || span.max != i64::try_from(span.count).ok().map(|c| c - 1)) {
        report.find(
            "audit_gap",
            "log",
            format!(
                "the audit trail holds {} events with indexes {} to {}: they must run from 0 without a gap",
                span.count,
                span.min.unwrap_or_default(),
                span.max.unwrap_or_default()
            ),
        );
    }
    Ok(())
}

async fn check_log(store: &Store, config: &Config, report: &mut Report) -> Result<(), CheckError> {
    if store.log_head().await?.is_none() {
        if report.events > 0 {
            report.find("log", "log", "the database holds audit events but no transparency log");
        }
        return Ok(());
    }
    let key = load_signing_key(&config.signing_key_file())?;
    let log = match Log::open(store.clone(), &config.data_dir.join("log"), "unused", &key.to_bytes()).await {
        Ok(log) => log,
        Err(LogError::Store(e)) => return Err(e.into()),
        Err(e) => {
            report.find("log", "checkpoint", format!("the log does not open: {e}"));
            return Ok(());
        }
    };
    let size = log.size();
    report.log_size = size;
    report.log_backlog = report.events.saturating_sub(size);
    if size > report.events {
        report.find(
            "log",
            "checkpoint",
            format!("the checkpoint covers {size} entries, but the audit trail holds only {}", report.events),
        );
        return Ok(());
    }
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    files.insert("checkpoint".to_owned(), log.checkpoint().into_bytes());
    for tile in tiles::tiles_for_size(size) {
        match log.hash_tile(tile).await {
            Ok(bytes) => {
                files.insert(tile.path(), bytes);
            }
            Err(LogError::Store(e)) => return Err(e.into()),
            Err(e) => report.find("log", tile.path(), format!("hash tile `{}` cannot be read: {e}", tile.path())),
        }
        if tile.level() == 0 {
            match log.entry_bundle(tile).await {
                Ok(bytes) => {
                    files.insert(tile.entries_path(), bytes);
                }
                Err(LogError::Store(e)) => return Err(e.into()),
                Err(e) => report.find(
                    "log",
                    tile.entries_path(),
                    format!("entries `{}` cannot be read: {e}", tile.entries_path()),
                ),
            }
        }
    }
    let policy = Policy::log_only(log.verifier());
    if let Err(e) = verify_log(|path| Ok::<_, std::io::Error>(files.get(path).cloned()), &policy, None) {
        let mut message = format!("the log does not verify: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        report.find("log", "log", message);
    }
    Ok(())
}

async fn check_links(store: &Store, now: DateTime<Utc>, report: &mut Report) -> Result<(), CheckError> {
    let cutoff = now - SILENCE;
    for l in store.checked_links().await? {
        let about = format!("link {} of transfer {}", l.id, l.transfer);
        match l.state.as_str() {
            "leased" => {
                let seen = l.gateway_seen_at.and_then(DateTime::<Utc>::from_timestamp_millis);
                match (&l.lease_gateway, seen) {
                    (Some(gw), Some(seen)) if seen < cutoff => report.find(
                        "stale_lease",
                        &l.id,
                        format!(
                            "{about} is leased by gateway `{gw}`, silent since {} (longer than {} s): its download cannot be running",
                            seen.to_rfc3339(),
                            SILENCE.num_seconds()
                        ),
                    ),
                    (Some(gw), None) => report.find(
                        "stale_lease",
                        &l.id,
                        format!("{about} is leased by gateway `{gw}`, which never announced itself"),
                    ),
                    (None, _) => report.find("stale_lease", &l.id, format!("{about} is leased by no named gateway")),
                    _ => {}
                }
                if l.lease_id.is_none() {
                    report.find("link_state", &l.id, format!("{about} is leased but holds no lease id"));
                }
                if l.used_at.is_some() {
                    report.find(
                        "link_state",
                        &l.id,
                        format!("{about} is both used (it has a use time) and in progress"),
                    );
                }
            }
            "used" if l.used_at.is_none() => {
                report.find("link_state", &l.id, format!("{about} is used but has no use time"));
            }
            "issued" if l.lease_id.is_some() => {
                report.find("link_state", &l.id, format!("{about} is issued but still holds a lease"));
            }
            _ => {}
        }
        if l.purged && matches!(l.state.as_str(), "issued" | "leased") {
            report.find(
                "link_state",
                &l.id,
                format!("{about} can still be redeemed, but its transfer's blob was purged"),
            );
        }
    }
    Ok(())
}
