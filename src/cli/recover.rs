//! `sealpost admin recover`: break-glass access for the operator of the server when no
//! administrator can sign in (the bootstrap token expired unclaimed, every administrator's token
//! was lost). It works on the deployment's database directly, so only someone who can read the
//! data directory (or the database) can run it, and it leaves an `admin.recovered` entry that
//! the gateway puts into the transparency log at its next round.

use std::os::unix::fs::MetadataExt as _;

use clap::Args;

use super::serve::{StorageArgs, resolve_storage};
use super::{EXIT_CONFIG, Failure};
use crate::config::{DatabaseUrl, parse_duration};
use crate::ids::BearerSecret;
use crate::model::UserRef;
use crate::store::{RecoveryWitness, Store, StoreError};

/// `sealpost admin recover`.
#[derive(Debug, Args)]
pub(super) struct RecoverArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// The administrator to issue the token for, `ORG/NAME`: an existing administrator, or a new
    /// one made in an existing organisation (such as `sealpost/jane`).
    #[arg(long)]
    user: Option<String>,
    /// Why, in a sentence: it is recorded in the audit log with the server account that ran this.
    #[arg(long)]
    reason: String,
    /// How long the token works, such as `1h` (default: `bootstrap_token_lifetime`, 24h).
    #[arg(long)]
    lifetime: Option<String>,
}

/// Issues the token and prints it alone on stdout.
pub(super) async fn recover(args: RecoverArgs) -> Result<(), Failure> {
    let config = resolve_storage(&args.storage)?;
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(
            Failure::new("the reason is empty").hint("say why in a sentence with --reason: it goes into the audit log")
        );
    }
    let lifetime = match &args.lifetime {
        Some(text) => parse_duration("--lifetime", text).map_err(|e| {
            Failure::new(e.to_string()).hint("give the lifetime as a number and a unit, such as `1h` or `2d`")
        })?,
        None => config.bootstrap_token_lifetime,
    };
    let lifetime = chrono::TimeDelta::from_std(lifetime)
        .ok()
        .filter(|l| *l >= chrono::TimeDelta::minutes(1) && *l <= chrono::TimeDelta::days(30))
        .ok_or_else(|| {
            Failure::new("a recovery token lives from 1 minute to 30 days")
                .hint("give a --lifetime such as `1h`, then issue yourself a lasting token with it")
        })?;
    let database = config.database();
    if let DatabaseUrl::Sqlite(path) = &database
        && !path.is_file()
    {
        return Err(Failure::new(format!("there is no database at {}", path.display()))
            .hint("run this on the gateway's machine with the deployment's --data-dir (or --database-url)")
            .exit(EXIT_CONFIG));
    }
    let store = Store::connect(&database.url()).await.map_err(|e| unreachable(&e, &database))?;
    let result = issue(&store, args.user.as_deref(), reason, lifetime).await;
    store.close().await;
    let (user, token, expires, created) = result?;
    println!("{}", token.expose());
    eprintln!(
        "sealpost: a recovery token for {user}{} works until {}; recorded as admin.recovered, which the gateway \
         logs at its next round. Use it to issue a lasting token or claim your own administrator.",
        if created { " (made now, as an administrator)" } else { "" },
        expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    Ok(())
}

/// Checks the user and issues the token.
async fn issue(
    store: &Store,
    user: Option<&str>,
    reason: &str,
    lifetime: chrono::TimeDelta,
) -> Result<(UserRef, BearerSecret, chrono::DateTime<chrono::Utc>, bool), Failure> {
    let Some(user) = user else {
        let admins = store.administrators().await.map_err(|e| Failure::new(e.to_string()))?;
        let names: Vec<String> = admins.iter().map(ToString::to_string).collect();
        return Err(Failure::new("name the administrator to recover with --user ORG/NAME")
            .hint(format!("the administrators now are: {}", names.join(", "))));
    };
    let user: UserRef = user
        .parse()
        .map_err(|e| Failure::new(format!("--user: {e}")).hint("give the user as ORG/NAME, such as `sealpost/jane`"))?;
    let token = BearerSecret::generate("sp_");
    let now = chrono::Utc::now();
    let expires = now + lifetime;
    let witness = RecoveryWitness { operator: operator(), reason: reason.to_owned() };
    let recovered = store.recover(&user, &token.hash(), expires, &witness, now).await.map_err(|e| match &e {
        StoreError::UnknownOrg(org) => Failure::new(e.to_string())
            .hint(format!("give a user in an existing organisation (the first start made `sealpost`), not in `{org}`")),
        StoreError::NotAdministrator { .. } => {
            Failure::new(e.to_string()).hint("name an administrator, or a new name to make one")
        }
        _ => {
            Failure::new(e.to_string()).hint("check that the database is reachable with these settings, then try again")
        }
    })?;
    Ok((user, token, expires, recovered.created))
}

/// A database that cannot be opened.
fn unreachable(e: &StoreError, database: &DatabaseUrl) -> Failure {
    Failure::new(format!("cannot open {}: {e}", database.redacted()))
        .hint("run this on the gateway's machine with the deployment's storage settings")
}

/// The server account running this: `USER (uid N) on HOST`.
fn operator() -> String {
    let name = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid().to_string()).unwrap_or_else(|_| "?".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{name} (uid {uid}) on {host}")
}
