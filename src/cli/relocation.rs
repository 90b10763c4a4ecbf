//! `sealpost admin migrate`, `backup` and `restore`: commands that work on a deployment's data
//! directly, on the gateway's machine, so they take `serve`'s storage options (the same flags,
//! environment variables and config file) instead of a URL and a token.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::serve::{StorageArgs, config_failure, resolve_storage};
use super::{EXIT_CONFIG, EXIT_VERIFY, Failure};
use crate::blobs::BlobError;
use crate::config::{BlobBackend, DatabaseUrl};
use crate::gateway::StartError;
use crate::relocation::{self, RelocationError};
use crate::store::StoreError;

/// `sealpost admin …` commands that work on the data, not through a gateway.
#[derive(Debug, Subcommand)]
pub(super) enum DataCommand {
    /// Move this stopped SQLite deployment (rows, blobs, log) into PostgreSQL and an S3 store.
    Migrate(MigrateArgs),
    /// Back up this SQLite deployment (database, log, blobs, keys) into a directory while it runs.
    Backup(BackupArgs),
    /// Restore a backup into a new data directory.
    Restore(RestoreArgs),
    /// Check that the database, the blob store and the log agree (exit 0 consistent, 4 not).
    Check(CheckArgs),
    /// On the server, when no administrator can sign in: issue an administrator a token that
    /// expires, and print it alone (recorded as `admin.recovered`).
    Recover(super::recover::RecoverArgs),
}

/// `sealpost admin check`.
#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Print the report as JSON (`{"consistent":…,"findings":[{"kind","subject","message"}],…}`).
    #[arg(long)]
    json: bool,
}

/// `sealpost admin migrate`.
#[derive(Debug, Args)]
pub(super) struct MigrateArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The database to move into: `postgres://USER@HOST/DATABASE`, empty (sealpost makes its
    /// tables).
    #[arg(long, env = "SEALPOST_TO_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    to_database_url: String,
    /// The blob store to move into: `s3://BUCKET` (reached with the AWS_* variables) or a
    /// directory (default: the blobs stay where they are).
    #[arg(long, env = "SEALPOST_TO_BLOB_STORE", value_name = "STORE")]
    to_blob_store: Option<String>,
}

/// `sealpost admin backup`.
#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The directory to write the backup into (made if missing; must be empty).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Leave the signing key and the admin token out: a restore then needs the key, given with
    /// --signing-key.
    #[arg(long)]
    without_secrets: bool,
}

/// `sealpost admin restore`.
#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// The backup directory (made by `sealpost admin backup`).
    backup: PathBuf,
    #[command(flatten)]
    storage: StorageArgs,
}

/// Runs one of the commands.
pub(super) async fn run(command: DataCommand) -> Result<(), Failure> {
    match command {
        DataCommand::Migrate(args) => migrate(args).await,
        DataCommand::Backup(args) => backup(args).await,
        DataCommand::Restore(args) => restore(args).await,
        DataCommand::Check(args) => check(args).await,
        DataCommand::Recover(args) => super::recover::recover(args).await,
    }
}

/// Compares the database, the blob store and the log: one line per finding, exit 4 if any.
async fn check(args: CheckArgs) -> Result<(), Failure> {
    use crate::check::CheckError;
    let config = resolve_storage(&args.storage)?;
    let report = crate::check::check(&config, chrono::Utc::now()).await.map_err(|e| {
        let (hint, exit) = match &e {
            CheckError::NoDatabase(_) => {
                ("give the deployment's --data-dir (and --database-url if its database is elsewhere)", EXIT_CONFIG)
            }
            CheckError::Start(_) => {
                ("give the deployment's own signing key with --signing-key (or SEALPOST_SIGNING_KEY_FILE)", EXIT_CONFIG)
            }
            CheckError::Store(_) => ("check that the database is reachable with these settings, then check again", 1),
            CheckError::Blobs(_) => ("check that the blob store is reachable with these settings, then check again", 1),
        };
        Failure::new(format!("cannot check {}: {e}", config.database().redacted())).hint(hint).exit(exit)
    })?;
    if args.json {
        let mut value = serde_json::to_value(&report).map_err(|e| Failure::new(e.to_string()))?;
        value["consistent"] = serde_json::Value::Bool(report.consistent());
        println!("{value}");
    } else {
        for f in &report.findings {
            println!("{}: {}: {}", f.kind, f.subject, f.message);
        }
        eprintln!(
            "sealpost: checked {} transfer(s), {} blob(s), {} log entries ({} waiting for the sequencer): {}",
            report.transfers,
            report.blobs,
            report.log_size,
            report.log_backlog,
            if report.consistent() { "consistent".to_owned() } else { format!("{} finding(s)", report.findings.len()) }
        );
    }
    if report.consistent() {
        Ok(())
    } else {
        Err(Failure::new(format!("{} inconsistenc(ies) found", report.findings.len()))
            .hint(
                "each line above names what is wrong; a missing blob's transfer can be recalled (`sealpost recall ID`)",
            )
            .exit(EXIT_VERIFY))
    }
}

async fn migrate(args: MigrateArgs) -> Result<(), Failure> {
    let config = resolve_storage(&args.storage)?;
    let to_database = DatabaseUrl::parse(&args.to_database_url).map_err(|e| config_failure(&e))?;
    let to_blobs = match &args.to_blob_store {
        Some(store) => BlobBackend::parse(store).map_err(|e| config_failure(&e))?,
        None => config.blobs(),
    };
    let done = relocation::migrate(&config, &to_database, &to_blobs).await.map_err(|e| failure(e, Step::Migrate))?;
    let rows: u64 = done.tables.iter().map(|t| t.rows).sum();
    println!("migrated {} into {to_database}", config.database());
    println!("  rows    {rows} in {} tables", done.tables.len());
    if done.blobs_stayed {
        println!("  blobs   stay in {to_blobs}");
    } else {
        println!("  blobs   {} ({}) copied into {to_blobs}, each checked", done.blobs, bytes(done.blob_bytes));
    }
    if done.uploads > 0 {
        println!("  uploads {} unfinished, their bytes copied", done.uploads);
    }
    println!("  log     {} entries, the same checkpoint, opened with the signing key", done.log_size);
    eprintln!(
        "sealpost: next: start the gateways with `sealpost serve --database-url URL --blob-store {to_blobs} \
         --signing-key {}` (every gateway needs this key); keep the old files until the new deployment serves, \
         and never start a gateway on them again",
        config.signing_key_file().display()
    );
    Ok(())
}

async fn backup(args: BackupArgs) -> Result<(), Failure> {
    let config = resolve_storage(&args.storage)?;
    let done = relocation::backup(&config, &args.to, args.without_secrets, chrono::Utc::now())
        .await
        .map_err(|e| failure(e, Step::Backup))?;
    println!("backed up {} into {}", config.data_dir.display(), args.to.display());
    println!("  log     {} entries in the database snapshot", done.log_size);
    println!("  blobs   {} ({})", done.blobs, bytes(done.blob_bytes));
    if done.uploads > 0 {
        println!("  uploads {} unfinished, their acknowledged bytes", done.uploads);
    }
    if !done.lost_blobs.is_empty() {
        println!(
            "  lost    {} blob(s) purged while the backup ran (a restore records them as such)",
            done.lost_blobs.len()
        );
    }
    if !done.lost_uploads.is_empty() {
        println!(
            "  lost    {} unfinished upload(s) completed or expired while the backup ran",
            done.lost_uploads.len()
        );
    }
    if done.secrets {
        println!("  secrets gateway.key and admin.token (0600): keep this backup as safe as the data directory");
    } else {
        println!("  secrets left out: a restore needs the signing key, given with --signing-key");
    }
    Ok(())
}

async fn restore(args: RestoreArgs) -> Result<(), Failure> {
    let config = resolve_storage(&args.storage)?;
    let done =
        relocation::restore(&args.backup, &config, chrono::Utc::now()).await.map_err(|e| failure(e, Step::Restore))?;
    println!("restored {} into {}", args.backup.display(), config.data_dir.display());
    println!("  log     {} entries, opened with the signing key", done.log_size);
    println!("  blobs   {}", done.blobs);
    if done.uploads > 0 {
        println!("  uploads {} unfinished", done.uploads);
    }
    if done.lost_blobs > 0 {
        println!(
            "  lost    {} blob(s) purged while the backup ran: {} link(s) revoked, recorded as `not_in_backup`",
            done.lost_blobs, done.revoked_links
        );
    }
    if done.lost_uploads > 0 {
        println!("  lost    {} unfinished upload(s) deleted, recorded as `not_in_backup`", done.lost_uploads);
    }
    let key = if done.key_from_backup { " (the signing key came from the backup)" } else { "" };
    eprintln!(
        "sealpost: next: start the gateway with `sealpost serve --data-dir {}`{key}; links used after the backup \
         work again until they are used, expire or are recalled",
        config.data_dir.display()
    );
    Ok(())
}

/// Which command failed, for its hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Migrate,
    Backup,
    Restore,
}

/// The failure to report for `e`, with its hint and exit code.
fn failure(e: RelocationError, step: Step) -> Failure {
    let message = e.to_string();
    let (hint, exit): (String, u8) = match &e {
        RelocationError::GatewayRunning(_) if step == Step::Restore => {
            ("stop the gateway using that directory, or restore into another one".into(), 1)
        }
        RelocationError::GatewayRunning(_) => (
            "stop the gateway first: a migration is a move, not a sync (`sealpost admin backup` copies a running \
             gateway)"
                .into(),
            1,
        ),
        RelocationError::NotSqlite(_) => (
            match step {
                Step::Migrate => "this deployment is not on SQLite: there is nothing to migrate",
                Step::Backup => {
                    "`admin backup` is for the default SQLite deployment: back up PostgreSQL with its own tools \
                     (pg_dump, continuous archiving) and the S3 store with its versioning or replication"
                }
                Step::Restore => "a restore makes a SQLite deployment: restore, then `sealpost admin migrate` it",
            }
            .into(),
            EXIT_CONFIG,
        ),
        RelocationError::NotLocal(_) => {
            ("a restore writes blobs into a directory: restore, then `sealpost admin migrate` it".into(), EXIT_CONFIG)
        }
        RelocationError::NoDatabase(_) => {
            ("give the deployment's --data-dir (and --database-url if its database is elsewhere)".into(), EXIT_CONFIG)
        }
        RelocationError::SameDatabase => ("give a new, empty database with --to-database-url".into(), EXIT_CONFIG),
        RelocationError::Store(StoreError::NotEmpty { .. }) => (
            "migrate into a new, empty database: this one holds a deployment already (perhaps from an earlier \
             migration, whose gateways can start on it)"
                .into(),
            EXIT_CONFIG,
        ),
        RelocationError::NotEmpty(_) => ("give a new or empty directory".into(), EXIT_CONFIG),
        RelocationError::Exists(_) => {
            ("a restore never overwrites a database: give a --database-url where there is none".into(), EXIT_CONFIG)
        }
        RelocationError::NoLog => (
            "start a gateway of this version on the data directory once (it moves the log into the database), \
             stop it, and try again"
                .into(),
            1,
        ),
        RelocationError::OtherSigningKey(_) | RelocationError::Start(StartError::BadKey(_) | StartError::Io { .. }) => {
            (
                "give the deployment's own signing key with --signing-key (or SEALPOST_SIGNING_KEY_FILE)".into(),
                EXIT_CONFIG,
            )
        }
        RelocationError::KeyMismatch(_) => (
            "give the signing key of the deployment the backup was made from with --signing-key, or leave it out \
             to use the backup's own"
                .into(),
            EXIT_CONFIG,
        ),
        RelocationError::NoKey(_) => (
            "the backup was made --without-secrets: give the deployment's signing key with --signing-key".into(),
            EXIT_CONFIG,
        ),
        RelocationError::MissingBlobs(_) => (
            "those transfers' ciphertext is lost: recall them on the gateway (`sealpost recall ID`), stop it, \
             and migrate again"
                .into(),
            EXIT_VERIFY,
        ),
        RelocationError::BlobMismatch { .. } if step == Step::Restore => {
            ("this backup is damaged or incomplete: restore another one".into(), EXIT_VERIFY)
        }
        RelocationError::BlobMismatch { .. } => (
            "the blob store holds a damaged blob: check its disk, and recall that transfer if it cannot be mended"
                .into(),
            EXIT_VERIFY,
        ),
        RelocationError::Damaged(_) | RelocationError::NotABackup(_) => {
            ("this backup is damaged or incomplete: restore another one".into(), EXIT_VERIFY)
        }
        RelocationError::RowsDiffer { .. } | RelocationError::LogDiffers { .. } => (
            "the target holds a partial copy: drop and create the target database, then migrate again".into(),
            EXIT_VERIFY,
        ),
        RelocationError::Blobs(BlobError::PlainHttp { .. }) => (
            "use an https:// endpoint, or set AWS_ALLOW_HTTP=true if the network to the store is private".into(),
            EXIT_CONFIG,
        ),
        RelocationError::Blobs(_) => (
            "check that the blob stores exist and that AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and \
             AWS_ENDPOINT_URL reach an S3 one with a key that may read and write"
                .into(),
            1,
        ),
        _ => (step.after_failure().into(), 1),
    };
    Failure::new(message).hint(hint).exit(exit)
}

impl Step {
    /// What a failure of this step leaves behind.
    fn after_failure(self) -> &'static str {
        match self {
            Self::Migrate => "the target database was left empty: mend the cause and migrate again",
            Self::Backup => "what the backup wrote was removed: mend the cause and back up again",
            Self::Restore => "what the restore wrote was removed: mend the cause and restore again",
        }
    }
}

/// A byte count as people read it.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 10 * 1024 && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}
