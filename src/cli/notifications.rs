//! `sealpost notifications` (the caller's own choices) and `sealpost admin webhook …`.

use clap::Subcommand;

use super::client::Client;
use super::{ClientArgs, Failure};
use crate::wire::notifications::{
    NewWebhook, NotificationChoice, NotificationSettings, WebhookCreated, WebhookList, WebhookRemoved,
};

/// `sealpost notifications …`
#[derive(Debug, Subcommand)]
pub(super) enum NotificationsCommand {
    /// List every kind of notification and whether you get it (the default).
    List {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Stop getting an optional kind, such as `transfer.collected`.
    Off {
        /// The kinds (see `sealpost notifications`).
        #[arg(required = true)]
        kinds: Vec<String>,
    },
    /// Get a kind you turned off again.
    On {
        /// The kinds.
        #[arg(required = true)]
        kinds: Vec<String>,
    },
}

/// `sealpost admin webhook …`
#[derive(Debug, Subcommand)]
pub(super) enum WebhookCommand {
    /// Register an endpoint that hears about an organisation's transfers and keys; prints its
    /// signing secret, once.
    Add {
        /// The organisation.
        org: String,
        /// Where deliveries are posted (`https://…`).
        #[arg(value_name = "URL")]
        endpoint: String,
    },
    /// List endpoints.
    List {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint (its undelivered messages are dropped).
    Remove {
        /// The endpoint's id.
        id: String,
    },
}

fn print(settings: &NotificationSettings) {
    match &settings.email {
        Some(email) => println!("email goes to {email}"),
        None => println!("you have no email address, so you get no email (an administrator can add one)"),
    }
    for n in &settings.notifications {
        let state = match (n.on, n.optional) {
            (true, true) => "on",
            (false, _) => "off",
            (true, false) => "on (always)",
        };
        println!("{:<24} {:<12} {}", n.kind, state, n.description);
    }
}

/// Runs `sealpost notifications`.
pub(super) async fn notifications(args: &ClientArgs, command: Option<NotificationsCommand>) -> Result<(), Failure> {
    let client = Client::new(args)?;
    let now: NotificationSettings = client.get("/api/v1/notifications").await?;
    let currently_off = || now.notifications.iter().filter(|n| !n.on).map(|n| n.kind.clone()).collect::<Vec<String>>();
    let off = match command.unwrap_or(NotificationsCommand::List { json: false }) {
        NotificationsCommand::List { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&now).unwrap_or_default());
            } else {
                print(&now);
            }
            return Ok(());
        }
        NotificationsCommand::Off { kinds } => {
            let mut off = currently_off();
            off.extend(kinds);
            off
        }
        NotificationsCommand::On { kinds } => {
            for kind in &kinds {
                if !now.notifications.iter().any(|n| &n.kind == kind) {
                    return Err(Failure::new(format!("there is no notification kind `{kind}`"))
                        .hint("`sealpost notifications` lists them"));
                }
            }
            currently_off().into_iter().filter(|k| !kinds.contains(k)).collect()
        }
    };
    let after: NotificationSettings = client.put("/api/v1/notifications", NotificationChoice { off }).await?;
    print(&after);
    Ok(())
}

/// Runs `sealpost admin webhook …`.
pub(super) async fn webhook(client: &Client, command: WebhookCommand) -> Result<(), Failure> {
    match command {
        WebhookCommand::Add { org, endpoint } => {
            let made: WebhookCreated = client.post("/api/v1/webhooks", NewWebhook { org, url: endpoint }).await?;
            println!("{}", made.secret);
            eprintln!(
                "webhook {} registered for {} at {}; the line above is its signing secret, shown this once: give it \
                 to the receiver to verify deliveries (Standard Webhooks)",
                made.webhook.id, made.webhook.org, made.webhook.url
            );
        }
        WebhookCommand::List { json } => {
            let list: WebhookList = client.get("/api/v1/webhooks").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            } else {
                for w in &list.webhooks {
                    println!("{}  {:<24} {}", w.id, w.org, w.url);
                }
            }
        }
        WebhookCommand::Remove { id } => {
            let gone: WebhookRemoved = client.delete(&format!("/api/v1/webhooks/{id}")).await?;
            eprintln!("webhook {} of {} removed", gone.removed.id, gone.removed.org);
        }
    }
    Ok(())
}
