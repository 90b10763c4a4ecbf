//! Client commands: administration, the key directory, inbox, status, recall, audit.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::Client;
use super::{ClientArgs, Failure};

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

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

fn rows<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Runs `sealpost admin …`.
pub(super) async fn admin(args: &ClientArgs, command: AdminCommand) -> Result<(), Failure> {
    let client = Client::new(args)?;
    match command {
        AdminCommand::Org(OrgCommand::Add { name, kind }) => {
            let org = client.post("/api/v1/orgs", json!({ "name": name, "kind": kind })).await?;
            eprintln!("created organisation {} ({})", s(&org, "name"), s(&org, "kind"));
        }
        AdminCommand::Org(OrgCommand::List { json }) => {
            let v = client.get("/api/v1/orgs").await?;
            if json {
                print_json(&v);
            } else {
                for o in rows(&v, "orgs") {
                    println!("{:<32} {}", s(o, "name"), s(o, "kind"));
                }
            }
        }
        AdminCommand::User(UserCommand::Add { user, role, token_lifetime }) => {
            let body = json!({ "user": user, "role": role, "token_lifetime": token_lifetime });
            let v = client.post("/api/v1/users", body).await?;
            println!("{}", s(&v, "token"));
        }
        AdminCommand::User(UserCommand::List { json }) => {
            let v = client.get("/api/v1/users").await?;
            if json {
                print_json(&v);
            } else {
                for u in rows(&v, "users") {
                    println!("{:<48} {}", s(u, "user"), s(u, "role"));
                }
            }
        }
        AdminCommand::Token(TokenCommand::Issue { user, lifetime }) => {
            let v = client.post("/api/v1/tokens", json!({ "user": user, "lifetime": lifetime })).await?;
            println!("{}", s(&v, "token"));
        }
        AdminCommand::Token(TokenCommand::List { user, json }) => {
            let path = match &user {
                Some(u) => {
                    format!("/api/v1/tokens?user={}", form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>())
                }
                None => "/api/v1/tokens".to_owned(),
            };
            let v = client.get(&path).await?;
            if json {
                print_json(&v);
            } else {
                for t in rows(&v, "tokens") {
                    let state = if t.get("revoked_at").is_some_and(|r| !r.is_null()) { "revoked" } else { "live" };
                    println!("{}  {:<40} {:<8} expires {}", s(t, "id"), s(t, "user"), state, s(t, "expires_at"));
                }
            }
        }
        AdminCommand::Route(RouteCommand::Add { from, to }) => {
            client.post::<Value>("/api/v1/routes", json!({ "from": from, "to": to })).await?;
            eprintln!("{from} may now send to {to}");
        }
        AdminCommand::Route(RouteCommand::List { json }) => {
            let v = client.get("/api/v1/routes").await?;
            if json {
                print_json(&v);
            } else {
                for r in rows(&v, "routes") {
                    println!("{:<32} -> {}", s(r, "from"), s(r, "to"));
                }
            }
        }
        AdminCommand::Route(RouteCommand::Remove { from, to }) => {
            client.delete::<Value>(&format!("/api/v1/routes/{from}/{to}")).await?;
            eprintln!("{from} may no longer send to {to}");
        }
        AdminCommand::Log(AdminLogCommand::RotateKey) => {
            let v = client.post("/api/v1/log/keys/rotate", json!({})).await?;
            println!("{}", s(&v, "current"));
            eprintln!(
                "checkpoints are now signed by every active key; retire the old one with `sealpost admin log retire-key ID`"
            );
        }
        AdminCommand::Log(AdminLogCommand::RetireKey { key_id }) => {
            let v = client.post("/api/v1/log/keys/retire", json!({ "key_id": key_id })).await?;
            println!("{}", s(&v, "current"));
        }
        AdminCommand::Policy(AdminPolicyCommand::Reload) => {
            let v = client.post("/api/v1/policy/reload", json!({})).await?;
            println!("{}", s(&v, "digest"));
            eprintln!("policies reloaded from {}", s(&v, "source"));
        }
        AdminCommand::Policy(AdminPolicyCommand::Show) => {
            let v = client.get("/api/v1/policy").await?;
            println!("{}  {}", s(&v, "digest"), s(&v, "source"));
        }
        AdminCommand::Token(TokenCommand::Revoke { id, user }) => {
            let v = match (id, user) {
                (Some(id), _) => client.delete::<Value>(&format!("/api/v1/tokens/{id}")).await?,
                (None, Some(user)) => {
                    let (org, name) = user.split_once('/').ok_or_else(|| {
                        Failure::new(format!("`{user}` is not a user")).hint("write it as `ORG/NAME`")
                    })?;
                    client.delete(&format!("/api/v1/users/{org}/{name}/tokens")).await?
                }
                (None, None) => return Err(Failure::new("name a token id or --user")),
            };
            eprintln!("revoked {} token(s)", v.get("revoked").and_then(Value::as_u64).unwrap_or(0));
        }
    }
    Ok(())
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
            let v = client.post("/api/v1/keys", json!({ "recipient": recipient })).await?;
            println!("{}", s(&v, "fingerprint"));
            eprintln!("registered {} key {}", s(&v, "stanza_type"), s(&v, "recipient"));
        }
        KeysCommand::List { user, json } => {
            let client = Client::new(args)?;
            let path = match &user {
                Some(u) => format!("/api/v1/keys/{}", u.trim_matches('/')),
                None => "/api/v1/keys".to_owned(),
            };
            let v = client.get(&path).await?;
            if json {
                print_json(&v);
            } else {
                for k in rows(&v, "keys") {
                    println!("{}  {}  {}", s(k, "recipient"), s(k, "fingerprint"), s(k, "added_at"));
                }
            }
        }
        KeysCommand::Remove { fingerprint, user } => {
            let client = Client::new(args)?;
            let user = match user {
                Some(u) => u,
                None => s(&client.get("/api/v1/whoami").await?, "user").to_owned(),
            };
            client.delete::<Value>(&format!("/api/v1/keys/{}/{fingerprint}", user.trim_matches('/'))).await?;
            eprintln!("removed key {fingerprint} of {user}");
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
    let v = client.post(&format!("/api/v1/transfers/{id}/{verb}"), json!({})).await?;
    eprintln!("transfer {}: {}", s(&v, "id"), s(&v, "status"));
    Ok(())
}

/// Runs `sealpost inbox`.
pub(super) async fn inbox(args: &ClientArgs, json: bool) -> Result<(), Failure> {
    let v = Client::new(args)?.get("/api/v1/inbox").await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let items = rows(&v, "transfers");
    if items.is_empty() {
        eprintln!("nothing is waiting for you");
    }
    for t in items {
        let size = t.get("size").and_then(Value::as_u64).unwrap_or(0);
        println!(
            "{}  from {:<32} {:>12} bytes  {:<18} expires {}",
            s(t, "transfer"),
            s(t, "from"),
            size,
            s(t, "classification"),
            s(t, "expires_at")
        );
    }
    Ok(())
}

/// Runs `sealpost status ID`.
pub(super) async fn status(args: &ClientArgs, id: &str, json: bool) -> Result<(), Failure> {
    let v = Client::new(args)?.get(&format!("/api/v1/transfers/{id}")).await?;
    if json {
        print_json(&v);
        return Ok(());
    }
    println!("transfer {}  {} bytes  {}  {}", s(&v, "id"), v["size"], s(&v, "digest"), s(&v, "classification"));
    if v.get("recalled_at").is_some_and(|r| !r.is_null()) {
        println!("recalled at {}", s(&v, "recalled_at"));
    }
    for l in rows(&v, "links") {
        let acknowledged = l.get("acknowledged").and_then(Value::as_str).map(|a| format!("  delivery {a}"));
        println!(
            "  {:<40} {:<8} expires {}{}",
            s(l, "recipient"),
            s(l, "state"),
            s(l, "expires_at"),
            acknowledged.unwrap_or_default()
        );
    }
    Ok(())
}

/// Runs `sealpost recall ID`.
pub(super) async fn recall(args: &ClientArgs, id: &str) -> Result<(), Failure> {
    let v = Client::new(args)?.delete(&format!("/api/v1/transfers/{id}")).await?;
    eprintln!(
        "recalled {}: {} link(s) revoked, ciphertext {}",
        s(&v, "id"),
        v.get("links_revoked").and_then(Value::as_u64).unwrap_or(0),
        if v.get("purged").and_then(Value::as_bool) == Some(true) { "deleted" } else { "queued for deletion" }
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
    let v = client.get(&format!("/api/v1/audit?{}", query.finish())).await?;
    if args.json {
        print_json(&v);
        return Ok(());
    }
    for e in rows(&v, "events") {
        println!(
            "{:>6}  {}  {:<20} {:<36} {:<32} {}",
            e["seq"],
            s(e, "at"),
            s(e, "event"),
            s(e, "actor"),
            s(e, "transfer"),
            s(e, "code")
        );
    }
    Ok(())
}

/// Runs `sealpost whoami`.
pub(super) async fn whoami(args: &ClientArgs) -> Result<(), Failure> {
    let v = Client::new(args)?.get("/api/v1/whoami").await?;
    println!("{} ({}, {} organisation)", s(&v, "user"), s(&v, "role"), s(&v, "org_kind"));
    Ok(())
}
