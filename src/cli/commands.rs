//! Client commands: administration, the key directory, inbox, status, recall, audit.

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::client::Client;
use super::{ClientArgs, Failure};
use crate::model::{KeyInfo, UserRef};
use crate::wire::accounts::{
    Claim, IssuedToken, NewOrg, NewToken, NewUser, OrgInfo, OrgList, Revoked, TokenList, UserList, Whoami,
};
use crate::wire::audit::AuditPage;
use crate::wire::keys::{KeyRemoved, NewKey, OwnKeys, UserKeys};
use crate::wire::log::{KeyRetired, KeyRotation, RetireKey};
use crate::wire::routes::{NewRoute, PolicyInfo, RouteInfo, RouteList, RouteRemoved};
use crate::wire::transfers::{DecisionAnswer, DeliveryOutcome, Inbox, RecallAnswer, TransferView};

/// `sealpost admin …`
#[derive(Debug, Subcommand)]
pub(super) enum AdminCommand {
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Routes: which organisation may send to which.
    #[command(subcommand)]
    Route(RouteCommand),
    /// The server's policy set.
    #[command(subcommand)]
    Policy(AdminPolicyCommand),
    /// The transparency log's signing keys.
    #[command(subcommand)]
    Log(AdminLogCommand),
    /// Users' keys in the key directory.
    #[command(subcommand)]
    Key(AdminKeyCommand),
    /// Organisations' webhook endpoints (notifications to their systems).
    #[command(subcommand)]
    Webhook(super::notifications::WebhookCommand),
    /// Exchange the first start's bootstrap token (given as the token) for your own named
    /// administrator, and print its token (alone, on stdout). The bootstrap token stops working
    /// and is removed from the data directory.
    Claim {
        /// `ORG/NAME` of the new administrator, such as `sealpost/jane`.
        user: String,
        /// Your email address: single sign-on matches the provider's verified `email` claim to
        /// it, and notifications go to it.
        #[arg(long)]
        email: Option<String>,
    },
}

/// `sealpost admin key …`
#[derive(Debug, Subcommand)]
pub(super) enum AdminKeyCommand {
    /// Register a key for a user (logged like any key: the owner's `keys monitor` reports it).
    Add {
        /// The owner, `ORG/NAME`.
        user: String,
        /// The public key: an age recipient (`age1…`, `age1pq1…`) or a `sealpost-signing1…` key.
        recipient: String,
    },
}

/// `sealpost admin log …`
#[derive(Debug, Subcommand)]
pub(super) enum AdminLogCommand {
    /// Start a key rotation: a new key signs every checkpoint alongside the old one.
    RotateKey,
    /// End a key rotation: the key with this id (8 hex digits, from the key string) stops signing.
    RetireKey {
        /// The key id.
        key_id: String,
    },
}

/// `sealpost admin route …`
#[derive(Debug, Subcommand)]
pub(super) enum RouteCommand {
    /// Let FROM_ORG send to TO_ORG.
    Add {
        /// The sending organisation.
        from: String,
        /// The receiving organisation.
        to: String,
    },
    /// List routes.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop FROM_ORG sending to TO_ORG.
    Remove {
        /// The sending organisation.
        from: String,
        /// The receiving organisation.
        to: String,
    },
}

/// `sealpost admin policy …`
#[derive(Debug, Subcommand)]
pub(super) enum AdminPolicyCommand {
    /// Re-read the server's policies (validated first; an invalid set is refused).
    Reload,
    /// Show where the server's policies come from and their digest.
    Show,
}

/// `sealpost transfers …`
#[derive(Debug, Subcommand)]
pub(super) enum TransfersCommand {
    /// Approve the release of a held transfer.
    Approve {
        /// The transfer id.
        id: String,
    },
    /// Reject a held transfer: its links are revoked and its ciphertext deleted.
    Reject {
        /// The transfer id.
        id: String,
    },
}

/// `sealpost admin org …`
#[derive(Debug, Subcommand)]
pub(super) enum OrgCommand {
    /// Create an organisation.
    Add {
        /// Its name (lowercase letters, digits, `.`, `_`, `-`).
        name: String,
        /// `contractor`, `agency` or `compliance`.
        #[arg(long)]
        kind: String,
    },
    /// List organisations.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sealpost admin user …`
#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Create a user and print its first API token (alone, on stdout).
    Add {
        /// `ORG/NAME`.
        user: String,
        /// `sender`, `recipient`, `compliance` or `admin`.
        #[arg(long)]
        role: String,
        /// Token lifetime such as `30d`, or `never` (default: the server's setting).
        #[arg(long)]
        token_lifetime: Option<String>,
        /// The person's email address: single sign-on matches the provider's verified `email`
        /// claim to it, and notifications go to it.
        #[arg(long)]
        email: Option<String>,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sealpost admin token …`
#[derive(Debug, Subcommand)]
pub(super) enum TokenCommand {
    /// Issue another token for a user and print it (alone, on stdout).
    Issue {
        /// `ORG/NAME`.
        user: String,
        /// Lifetime such as `30d`, or `never`.
        #[arg(long)]
        lifetime: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one token by id, or every token of a user.
    Revoke {
        /// The token id (from `token list`).
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Revoke all of this `ORG/NAME`'s tokens.
        #[arg(long)]
        user: Option<String>,
    },
}

/// `sealpost keys …`
#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
    /// Register one of your own age recipients (`age1…`, as printed by `age-keygen`).
    Add {
        /// The public recipient string.
        recipient: String,
    },
    /// List a user's keys (default: your own).
    List {
        /// `ORG/NAME`.
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow the log and print every key registered or removed under your name since the
    /// last run (one line each, with the key string), so a key you did not add is noticed.
    Monitor(super::monitor::MonitorArgs),
    /// Remove a key by fingerprint (your own, or any user's as admin).
    Remove {
        /// The key's fingerprint (`sha256:…`, from `keys list`).
        fingerprint: String,
        /// Whose key (default: yours).
        #[arg(long)]
        user: Option<String>,
    },
}

/// `sealpost audit …`
#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this transfer's events.
    #[arg(long)]
    transfer: Option<String>,
    /// Only events where this `ORG/NAME` acted or was acted on.
    #[arg(long)]
    party: Option<String>,
    /// Only events at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only events before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn print_json(v: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A time as the API spells it (RFC 3339, UTC, `Z`).
fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An optional time, or `-`.
fn time_or_dash(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

/// An optional user, or `-`.
fn user_or_dash(u: Option<&UserRef>) -> String {
    u.map_or_else(|| "-".to_owned(), UserRef::to_string)
}

/// The body of a POST that takes none: `{}`.
#[derive(Debug, Serialize)]
struct NoBody {}

/// Runs `sealpost admin …`.
pub(super) async fn admin(args: &ClientArgs, command: AdminCommand) -> Result<(), Failure> {
    let client = Client::new(args)?;
    match command {
        AdminCommand::Org(OrgCommand::Add { name, kind }) => {
            let org: OrgInfo = client.post("/api/v1/orgs", NewOrg { name, kind }).await?;
            eprintln!("created organisation {} ({})", org.name, org.kind);
        }
        AdminCommand::Org(OrgCommand::List { json }) => {
            let list: OrgList = client.get("/api/v1/orgs").await?;
            if json {
                print_json(&list);
            } else {
                for o in &list.orgs {
                    println!("{:<32} {}", o.name, o.kind);
                }
            }
        }
        AdminCommand::User(UserCommand::Add { user, role, token_lifetime, email }) => {
            let issued: IssuedToken =
                client.post("/api/v1/users", NewUser { user, role, token_lifetime, email }).await?;
            println!("{}", issued.token);
        }
        AdminCommand::Claim { user, email } => {
            let issued: IssuedToken = client.post("/api/v1/bootstrap/claim", Claim { user, email }).await?;
            println!("{}", issued.token);
            eprintln!(
                "sealpost: {} is an administrator; the bootstrap token no longer works and the gateway removed \
                 admin.token: use the token printed above",
                issued.user
            );
        }
        AdminCommand::Key(AdminKeyCommand::Add { user, recipient }) => {
            if recipient.trim().to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
                return Err(Failure::new("that is a private key: it must never be sent anywhere")
                    .hint("register the public recipient instead: `age-keygen -y IDENTITY_FILE` prints it"));
            }
            let user = user.trim_matches('/');
            let key: KeyInfo = client.post(&format!("/api/v1/keys/{user}"), NewKey { recipient }).await?;
            println!("{}", key.fingerprint);
            eprintln!("registered {} key {} for {user}", key.stanza_type, key.recipient);
        }
        AdminCommand::User(UserCommand::List { json }) => {
            let list: UserList = client.get("/api/v1/users").await?;
            if json {
                print_json(&list);
            } else {
                for u in &list.users {
                    let line =
                        format!("{:<48} {:<10} {}", u.user.to_string(), u.role, u.email.as_deref().unwrap_or(""));
                    println!("{}", line.trim_end());
                }
            }
        }
        AdminCommand::Token(TokenCommand::Issue { user, lifetime }) => {
            let issued: IssuedToken = client.post("/api/v1/tokens", NewToken { user, lifetime }).await?;
            println!("{}", issued.token);
        }
        AdminCommand::Token(TokenCommand::List { user, json }) => {
            let path = match &user {
                Some(u) => {
                    format!("/api/v1/tokens?user={}", form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>())
                }
                None => "/api/v1/tokens".to_owned(),
            };
            let list: TokenList = client.get(&path).await?;
            if json {
                print_json(&list);
            } else {
                for t in &list.tokens {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "live" };
                    let expires = time_or_dash(t.expires_at.as_ref());
                    let by = t.created_by.as_ref().map_or_else(String::new, |u| format!(" by {u}"));
                    println!("{}  {:<40} {:<8} {:<7} expires {expires}{by}", t.id, t.user.to_string(), state, t.kind);
                }
            }
        }
        AdminCommand::Webhook(command) => super::notifications::webhook(&client, command).await?,
        AdminCommand::Route(RouteCommand::Add { from, to }) => {
            let route: RouteInfo = client.post("/api/v1/routes", NewRoute { from, to }).await?;
            eprintln!("{} may now send to {}", route.from, route.to);
        }
        AdminCommand::Route(RouteCommand::List { json }) => {
            let list: RouteList = client.get("/api/v1/routes").await?;
            if json {
                print_json(&list);
            } else {
                for r in &list.routes {
                    println!("{:<32} -> {}", r.from, r.to);
                }
            }
        }
        AdminCommand::Route(RouteCommand::Remove { from, to }) => {
            let gone: RouteRemoved = client.delete(&format!("/api/v1/routes/{from}/{to}")).await?;
            eprintln!("{} may no longer send to {}", gone.removed.from, gone.removed.to);
        }
        AdminCommand::Log(AdminLogCommand::RotateKey) => {
            let rotation: KeyRotation = client.post("/api/v1/log/keys/rotate", NoBody {}).await?;
            println!("{}", rotation.current);
            eprintln!(
                "checkpoints are now signed by every active key; retire the old one with `sealpost admin log retire-key ID`"
            );
        }
        AdminCommand::Log(AdminLogCommand::RetireKey { key_id }) => {
            let retired: KeyRetired = client.post("/api/v1/log/keys/retire", RetireKey { key_id }).await?;
            println!("{}", retired.current);
        }
        AdminCommand::Policy(AdminPolicyCommand::Reload) => {
            let policy: PolicyInfo = client.post("/api/v1/policy/reload", NoBody {}).await?;
            println!("{}", policy.digest);
            eprintln!("policies reloaded from {}", policy.source);
        }
        AdminCommand::Policy(AdminPolicyCommand::Show) => {
            let policy: PolicyInfo = client.get("/api/v1/policy").await?;
            println!("{}  {}", policy.digest, policy.source);
        }
        AdminCommand::Token(TokenCommand::Revoke { id, user }) => {
            let revoked: Revoked = match (id, user) {
                (Some(id), _) => client.delete(&format!("/api/v1/tokens/{id}")).await?,
                (None, Some(user)) => {
                    let (org, name) = user.split_once('/').ok_or_else(|| {
                        Failure::new(format!("`{user}` is not a user")).hint("write it as `ORG/NAME`")
                    })?;
                    client.delete(&format!("/api/v1/users/{org}/{name}/tokens")).await?
                }
                (None, None) => return Err(Failure::new("name a token id or --user")),
            };
            eprintln!("revoked {} token(s)", revoked.revoked);
        }
    }
    Ok(())
}

/// Prints keys as `keys list` does.
fn print_keys<'a>(keys: impl Iterator<Item = (&'a str, &'a str, &'a DateTime<Utc>)>) {
    for (recipient, fingerprint, added_at) in keys {
        println!("{recipient}  {fingerprint}  {}", time(added_at));
    }
}

/// Runs `sealpost keys …`.
pub(super) async fn keys(args: &ClientArgs, command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Add { recipient } => {
            // Never let a private key leave this machine, even by mistake.
            if recipient.trim().to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
                return Err(Failure::new("that is a private key: it must never be sent anywhere")
                    .hint("register the public recipient instead: `age-keygen -y IDENTITY_FILE` prints it"));
            }
            let client = Client::new(args)?;
            let key: KeyInfo = client.post("/api/v1/keys", NewKey { recipient }).await?;
            println!("{}", key.fingerprint);
            eprintln!("registered {} key {}", key.stanza_type, key.recipient);
        }
        KeysCommand::List { user: Some(user), json } => {
            let client = Client::new(args)?;
            let list: UserKeys = client.get(&format!("/api/v1/keys/{}", user.trim_matches('/'))).await?;
            if json {
                print_json(&list);
            } else {
                print_keys(list.keys.iter().map(|k| (k.recipient.as_str(), k.fingerprint.as_str(), &k.added_at)));
            }
        }
        KeysCommand::List { user: None, json } => {
            let client = Client::new(args)?;
            let list: OwnKeys = client.get("/api/v1/keys").await?;
            if json {
                print_json(&list);
            } else {
                print_keys(list.keys.iter().map(|k| (k.recipient.as_str(), k.fingerprint.as_str(), &k.added_at)));
            }
        }
        KeysCommand::Monitor(monitor) => super::monitor::run(args, monitor).await?,
        KeysCommand::Remove { fingerprint, user } => {
            let client = Client::new(args)?;
            let user = match user {
                Some(u) => u,
                None => client.get::<Whoami>("/api/v1/whoami").await?.user.to_string(),
            };
            let gone: KeyRemoved =
                client.delete(&format!("/api/v1/keys/{}/{fingerprint}", user.trim_matches('/'))).await?;
            eprintln!("removed key {} of {user}", gone.removed);
        }
    }
    Ok(())
}

/// Runs `sealpost transfers …`.
pub(super) async fn transfers(args: &ClientArgs, command: TransfersCommand) -> Result<(), Failure> {
    let client = Client::new(args)?;
    let (id, verb) = match &command {
        TransfersCommand::Approve { id } => (id, "approve"),
        TransfersCommand::Reject { id } => (id, "reject"),
    };
    let decision: DecisionAnswer = client.post(&format!("/api/v1/transfers/{id}/{verb}"), NoBody {}).await?;
    eprintln!("transfer {}: {}", decision.id, decision.status);
    Ok(())
}

/// Runs `sealpost inbox`.
pub(super) async fn inbox(args: &ClientArgs, json: bool) -> Result<(), Failure> {
    let inbox: Inbox = Client::new(args)?.get("/api/v1/inbox").await?;
    if json {
        print_json(&inbox);
        return Ok(());
    }
    if inbox.transfers.is_empty() {
        eprintln!("nothing is waiting for you");
    }
    for t in &inbox.transfers {
        println!(
            "{}  from {:<32} {:>12} bytes  {:<18} expires {}",
            t.transfer,
            t.from.to_string(),
            t.size,
            t.classification.as_str(),
            time(&t.expires_at)
        );
    }
    Ok(())
}

/// Runs `sealpost status ID`.
pub(super) async fn status(args: &ClientArgs, id: &str, json: bool) -> Result<(), Failure> {
    let view: TransferView = Client::new(args)?.get(&format!("/api/v1/transfers/{id}")).await?;
    if json {
        print_json(&view);
        return Ok(());
    }
    println!("transfer {}  {} bytes  {}  {}", view.id, view.size, view.digest, view.classification);
    if let Some(at) = &view.recalled_at {
        println!("recalled at {}", time(at));
    }
    for l in &view.links {
        let acknowledged = match (&l.signed_for, l.acknowledged) {
            (Some(signed), _) => Some(format!("  signed for by {} at {}", signed.by, time(&signed.at))),
            (None, Some(DeliveryOutcome::Decrypted)) => Some("  delivery decrypted (not signed for)".to_owned()),
            (None, a) => a.map(|a| format!("  delivery {}", a.as_str())),
        };
        println!(
            "  {:<40} {:<8} expires {}{}",
            l.recipient.to_string(),
            l.state.as_str(),
            time(&l.expires_at),
            acknowledged.unwrap_or_default()
        );
    }
    Ok(())
}

/// Runs `sealpost recall ID`.
pub(super) async fn recall(args: &ClientArgs, id: &str) -> Result<(), Failure> {
    let recalled: RecallAnswer = Client::new(args)?.delete(&format!("/api/v1/transfers/{id}")).await?;
    eprintln!(
        "recalled {}: {} link(s) revoked, ciphertext {}",
        recalled.id,
        recalled.links_revoked,
        if recalled.purged { "deleted" } else { "queued for deletion" }
    );
    Ok(())
}

/// Runs `sealpost audit`.
pub(super) async fn audit(args: AuditArgs) -> Result<(), Failure> {
    let client = Client::new(&args.client)?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("transfer", &args.transfer), ("party", &args.party), ("since", &args.since), ("until", &args.until)]
    {
        if let Some(v) = v {
            query.append_pair(k, v);
        }
    }
    query.append_pair("limit", &args.limit.to_string());
    let page: AuditPage = client.get(&format!("/api/v1/audit?{}", query.finish())).await?;
    if args.json {
        print_json(&page);
        return Ok(());
    }
    for e in &page.events {
        println!(
            "{:>6}  {}  {:<20} {:<36} {:<32} {}",
            e.seq,
            time(&e.at),
            e.event,
            user_or_dash(e.actor.as_ref()),
            e.transfer.as_deref().unwrap_or("-"),
            e.code.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Runs `sealpost whoami`.
pub(super) async fn whoami(args: &ClientArgs) -> Result<(), Failure> {
    let me: Whoami = Client::new(args)?.get("/api/v1/whoami").await?;
    println!("{} ({}, {} organisation)", me.user, me.role, me.org_kind);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_the_api_spells_them() {
        let t = DateTime::parse_from_rfc3339("2025-03-01T09:30:00.120Z").expect("time").with_timezone(&Utc);
        let spelled = serde_json::to_value(t).expect("serialise");
        assert_eq!(Some(time(&t).as_str()), spelled.as_str());
        let whole = DateTime::parse_from_rfc3339("2025-03-01T09:30:00Z").expect("time").with_timezone(&Utc);
        assert_eq!(time(&whole), "2025-03-01T09:30:00Z");
    }
}
