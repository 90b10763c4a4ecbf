//! `sealpost keys monitor [--state DIR]`: the owner's side of key transparency.
//!
//! Verifies the whole log (checkpoint under the pinned key or a witness policy, every tile,
//! consistency with the checkpoint kept from the last run) and prints one line for every key
//! registered or removed under the caller's name since then: the `key.added` and `key.removed`
//! entries whose `owner` commitment is the caller's name under their salt. A key slipped in by
//! an operator or a stolen admin token shows up here, even if the gateway hides it from the
//! directory afterwards, because the log cannot be rewritten without the next run noticing.
//!
//! State (`DIR`, default `~/.local/state/sealpost/keys-monitor/GATEWAY-ORG-NAME`, or under
//! `$SEALPOST_STATE_DIR/keys-monitor/`, one per gateway and user): `checkpoint`, the last verified
//! checkpoint, and `key`, the log key pinned on the first run when none was given.

use std::path::PathBuf;

use clap::Args;
use sha2::{Digest as _, Sha256};

use super::client::Client;
use super::log::{RemoteArgs, follow_log, load_trust, pin_key};
use super::{ClientArgs, EXIT_CONFIG, Failure};
use crate::transparency::verify::Entry;
use crate::wire::accounts::Whoami;
use crate::wire::keys::OwnKeys;

/// Options for `sealpost keys monitor`.
#[derive(Debug, Args)]
pub(super) struct MonitorArgs {
    /// Where the last run's checkpoint (and the pinned log key) are kept; default: a directory
    /// per gateway and user under the state directory.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// The log's verifier key, or a file holding it (default: `SEALPOST_LOG_KEY`, the profile's
    /// `log_key`, else the key pinned in the state directory on the first run).
    #[arg(long, env = "SEALPOST_LOG_KEY", value_name = "VKEY")]
    key: Option<String>,
    /// A C2SP tlog-policy file (log keys, witnesses and their quorum; default:
    /// `SEALPOST_LOG_POLICY`, the profile's `log_policy`): key changes then count only on
    /// checkpoints the witnesses cosigned. Wins over --key.
    #[arg(long, env = "SEALPOST_LOG_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
}

/// One key change under the caller's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    index: u64,
    added: bool,
    key: String,
    stanza_type: String,
    time: String,
    by: &'static str,
}

/// The key change `entry` records under `commitment`, if it is one.
fn change(index: u64, entry: &Entry, commitment: &str, me: &str) -> Option<Change> {
    let added = match entry.event() {
        "key.added" => true,
        "key.removed" => false,
        _ => return None,
    };
    if entry.fact("owner") != Some(commitment) {
        return None;
    }
    let by = match entry.actor() {
        None => "by the gateway",
        Some(actor) if actor == me => "by you",
        Some(_) => "by another account",
    };
    Some(Change {
        index,
        added,
        key: entry.fact("key").unwrap_or("?").to_owned(),
        stanza_type: entry.fact("type").unwrap_or("?").to_owned(),
        time: entry.time_text().to_owned(),
        by,
    })
}

/// The default state directory for this gateway and user.
fn default_state(url: &str, user: &crate::model::UserRef) -> Result<PathBuf, Failure> {
    let base = crate::client::resume::state_for("keys-monitor").map_err(|e| Failure::new(e.to_string()))?;
    let gateway = hex::encode(&Sha256::digest(url.trim_end_matches('/').as_bytes())[..8]);
    Ok(base.join(format!("{gateway}-{}-{}", user.org, user.name)))
}

/// Runs `sealpost keys monitor`.
pub(super) async fn run(client: &ClientArgs, args: MonitorArgs) -> Result<(), Failure> {
    let api = Client::new(client)?;
    let me: Whoami = api.get("/api/v1/whoami").await?;
    let mine: OwnKeys = api.get("/api/v1/keys").await?;
    let commitment = crate::names::commitment(&mine.name_salt, &mine.user).map_err(|e| {
        Failure::new(format!("the gateway gave a name salt that is not one: {e}"))
            .hint("tell the gateway's operator")
            .exit(super::EXIT_VERIFY)
    })?;
    let state = match &args.state {
        Some(dir) => dir.clone(),
        None => default_state(&client.url, &mine.user)?,
    };
    std::fs::create_dir_all(&state)
        .map_err(|e| Failure::new(format!("cannot create `{}`: {e}", state.display())).exit(EXIT_CONFIG))?;
    let remote = RemoteArgs { url: Some(client.url.clone()), token: client.token.clone() };
    let (policy, pinned_now) = match load_trust(args.key.as_deref(), args.policy.as_deref())? {
        Some(policy) => (policy, None),
        None => pin_key(&remote, &state).await?,
    };
    let me_id = me.id.clone();
    let (report, from, changes) =
        follow_log(&remote, &state, policy, move |index, entry| change(index, entry, &commitment, &me_id)).await?;
    let news: Vec<&Change> = changes.iter().filter(|c| c.index >= from).collect();
    for c in &news {
        println!(
            "{:<8} {} ({}) at {}, entry {}, {}",
            if c.added { "added" } else { "removed" },
            c.key,
            c.stanza_type,
            c.time,
            c.index,
            c.by
        );
    }
    if let Some(vkey) = pinned_now {
        eprintln!("sealpost: pinned the log key {vkey} in `{}` (first run)", state.display());
    }
    let since = if from == 0 { "ever".to_owned() } else { format!("since entry {from}") };
    eprintln!(
        "sealpost: {} key change(s) under {} {since}; the log's {} entries verified; state in `{}`",
        news.len(),
        mine.user,
        report.size,
        state.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use chrono::TimeZone as _;

    use super::*;
    use crate::audit::{Event, EventKind};
    use crate::ids::UserId;
    use crate::transparency::verify::parse_entry;

    #[test]
    fn only_key_entries_that_name_me_are_changes() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).single().unwrap();
        let me = UserId::from_db("a".repeat(32));
        let admin = UserId::from_db("b".repeat(32));
        let entry = |kind, actor: &UserId, owner: &str| {
            let text = Event::new(kind)
                .actor(actor)
                .subject("k")
                .field("type", "X25519")
                .field("fingerprint", "sha256:00")
                .field("owner", owner)
                .field("key", "age1xyz")
                .entry(at);
            parse_entry(text.as_bytes()).unwrap()
        };
        let mine = change(3, &entry(EventKind::KeyAdded, &admin, "c0ffee"), "c0ffee", me.as_str()).unwrap();
        assert_eq!((mine.added, mine.key.as_str(), mine.by, mine.index), (true, "age1xyz", "by another account", 3));
        let gone = change(4, &entry(EventKind::KeyRemoved, &me, "c0ffee"), "c0ffee", me.as_str()).unwrap();
        assert_eq!((gone.added, gone.by), (false, "by you"));
        assert_eq!(change(5, &entry(EventKind::KeyAdded, &me, "beef"), "c0ffee", me.as_str()), None);
        assert_eq!(change(6, &entry(EventKind::TokenIssued, &me, "c0ffee"), "c0ffee", me.as_str()), None);
    }
}
