//! Notifications: the outbox the audit trail fills, users' opt-outs, and organisations' webhook
//! endpoints.
//!
//! [`enqueue`] runs inside [`super::append`], so every audit event that tells someone something
//! writes its outbox rows in the event's own transaction: the message and the change commit or
//! vanish together, and a transfer never waits for a mail server (the rows are sent later by
//! `crate::notify`'s worker). Events that tell nobody anything cost one `match`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::Row as _;

use super::group::Tx;
use super::{Store, StoreError, append, from_ms, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{NotificationId, UserId, WebhookId};
use crate::notify::Kind;

/// How long after a mail-capable gateway was last seen its capability still counts (a gateway
/// says it is alive every few seconds).
const MAIL_SEEN_WITHIN_MS: i64 = 10 * 60 * 1000;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One outbox row, claimed by this gateway for sending.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Its id (a webhook delivery's `webhook-id`).
    pub id: NotificationId,
    /// What it says.
    pub kind: Option<Kind>,
    /// The kind's name as stored.
    pub kind_name: String,
    /// The facts, as JSON.
    pub data: Value,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The transfer it concerns.
    pub transfer: Option<String>,
    /// Where it goes.
    pub target: Target,
}

/// Where an outbox row goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// An email to a user, at the address the user has now (`None`: it was removed).
    Email {
        /// The user.
        user: UserId,
        /// The address.
        address: Option<String>,
    },
    /// A delivery to an organisation's webhook endpoint.
    Webhook {
        /// The endpoint.
        webhook: WebhookId,
        /// The organisation's id.
        org: String,
        /// Where it is posted.
        url: String,
        /// Its sealed signing secret.
        sealed_secret: Vec<u8>,
    },
}

impl Target {
    /// `email` or `webhook`.
    pub fn channel(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// A registered webhook endpoint (its secret stays in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Its id.
    pub id: WebhookId,
    /// The organisation's name.
    pub org: String,
    /// Where deliveries are posted.
    pub url: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A user's `ORG/NAME` and org id, inside a transaction.
async fn party(tx: &mut Tx, user: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT o.name || '/' || u.name, u.org_id FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.id = $1",
    )
    .bind(user)
    .fetch_optional(&mut **tx)
    .await?)
}

/// What a notification about a transfer says, and who sent it.
struct TransferFacts {
    data: Value,
    sender: String,
    sender_org: String,
    status: String,
}

async fn transfer_facts(tx: &mut Tx, transfer: &str) -> Result<Option<TransferFacts>, StoreError> {
    let row = sqlx::query(
        "SELECT t.classification, t.expires_at, t.status, t.sender_id, o.name || '/' || u.name AS sender, u.org_id \
         FROM transfers t JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id WHERE t.id = $1",
    )
    .bind(transfer)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|row| TransferFacts {
        data: json!({
            "transfer": transfer,
            "sender": row.get::<String, _>("sender"),
            "classification": row.get::<String, _>("classification"),
            "expires_at": rfc3339(from_ms(row.get::<i64, _>("expires_at"))),
        }),
        sender: row.get("sender_id"),
        sender_org: row.get("org_id"),
        status: row.get("status"),
    }))
}

/// `data` with the recipient's `ORG/NAME` added.
fn with(mut data: Value, key: &str, value: impl Into<Value>) -> Value {
    if let Some(map) = data.as_object_mut() {
        map.insert(key.to_owned(), value.into());
    }
    data
}

/// The messages one event causes.
#[derive(Default)]
struct Plan {
    /// Emails: (user id, kind, facts).
    emails: Vec<(String, Kind, Value)>,
    /// Webhook deliveries: (org ids, kind, facts).
    hooks: Vec<(Vec<String>, Kind, Value)>,
}

/// Writes the outbox rows `event` causes, inside its transaction (called by `append`).
pub(super) async fn enqueue(tx: &mut Tx, event: &Event, now: DateTime<Utc>) -> Result<(), StoreError> {
    let transfer = event.transfer.as_ref().map(|t| t.as_str().to_owned());
    let field = |key: &str| event.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
    let mut plan = Plan::default();
    match event.kind {
        // A link made for a transfer released at once: that recipient's bundle waits.
        EventKind::LinkIssued => {
            let (Some(t), Some(recipient)) = (&transfer, &event.subject) else { return Ok(()) };
            let Some(facts) = transfer_facts(tx, t).await? else { return Ok(()) };
            if facts.status != "released" {
                return Ok(());
            }
            waiting(tx, &mut plan, &facts, recipient).await?;
        }
        // An approval that released the transfer: every recipient whose link is unused.
        EventKind::TransferApproved if field("status") == Some("released") => {
            let Some(t) = &transfer else { return Ok(()) };
            let Some(facts) = transfer_facts(tx, t).await? else { return Ok(()) };
            let recipients: Vec<String> = sqlx::query_scalar(
                "SELECT recipient_id FROM links WHERE transfer_id = $1 AND state = 'issued' ORDER BY id",
            )
            .bind(t)
            .fetch_all(&mut **tx)
            .await?;
            for recipient in recipients {
                waiting(tx, &mut plan, &facts, &recipient).await?;
            }
        }
        // Held for approval: every compliance officer but the sender.
        EventKind::UploadAccepted if field("status") == Some("held") => {
            let Some(t) = &transfer else { return Ok(()) };
            let Some(facts) = transfer_facts(tx, t).await? else { return Ok(()) };
            let officers: Vec<String> =
                sqlx::query_scalar("SELECT id FROM users WHERE role = 'compliance' AND id <> $1 ORDER BY id")
                    .bind(&facts.sender)
                    .fetch_all(&mut **tx)
                    .await?;
            for officer in officers {
                plan.emails.push((officer, Kind::Held, facts.data.clone()));
            }
            plan.hooks.push((vec![facts.sender_org.clone()], Kind::Held, facts.data));
        }
        EventKind::DownloadCompleted => {
            let (Some(t), Some(recipient)) = (&transfer, &event.actor) else { return Ok(()) };
            to_sender(tx, &mut plan, t, recipient.as_str(), Kind::Collected, |d| d).await?;
        }
        EventKind::DeliveryAcknowledged => {
            let (Some(t), Some(recipient)) = (&transfer, &event.actor) else { return Ok(()) };
            let outcome = event.code.clone().unwrap_or_default();
            let signed = field("signature").is_some();
            to_sender(tx, &mut plan, t, recipient.as_str(), Kind::Acknowledged, |d| {
                with(with(d, "outcome", outcome), "signed", signed)
            })
            .await?;
        }
        EventKind::LinkExpired => {
            let (Some(t), Some(recipient)) = (&transfer, &event.subject) else { return Ok(()) };
            to_sender(tx, &mut plan, t, recipient, Kind::Expired, |d| d).await?;
        }
        EventKind::TransferRejected | EventKind::TransferRecalled => {
            let Some(t) = &transfer else { return Ok(()) };
            let Some(facts) = transfer_facts(tx, t).await? else { return Ok(()) };
            let kind = if event.kind == EventKind::TransferRejected { Kind::Rejected } else { Kind::Recalled };
            let mut orgs: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT u.org_id FROM links l JOIN users u ON u.id = l.recipient_id WHERE l.transfer_id = $1",
            )
            .bind(t)
            .fetch_all(&mut **tx)
            .await?;
            orgs.push(facts.sender_org.clone());
            plan.emails.push((facts.sender.clone(), kind, facts.data.clone()));
            plan.hooks.push((orgs, kind, facts.data));
        }
        // A key bound to its owner's name at start-up (registered by an earlier version) is
        // not news to anyone.
        EventKind::KeyAdded | EventKind::KeyRemoved if event.code.as_deref() != Some("bound") => {
            let Some(key) = &event.subject else { return Ok(()) };
            let owner: Option<String> = sqlx::query_scalar("SELECT user_id FROM recipient_keys WHERE id = $1")
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(owner) = owner else { return Ok(()) };
            let Some((owner_name, owner_org)) = party(tx, &owner).await? else { return Ok(()) };
            let by = match &event.actor {
                Some(actor) if actor.as_str() != owner => party(tx, actor.as_str()).await?.map(|p| p.0),
                Some(_) => Some(owner_name.clone()),
                None => None,
            };
            let kind = if event.kind == EventKind::KeyAdded { Kind::KeyAdded } else { Kind::KeyRemoved };
            let data = json!({
                "owner": owner_name,
                "fingerprint": field("fingerprint").unwrap_or_default(),
                "type": field("type").unwrap_or_default(),
                "by": by.unwrap_or_else(|| "sealpost".to_owned()),
                "at": rfc3339(now),
            });
            plan.emails.push((owner, kind, data.clone()));
            plan.hooks.push((vec![owner_org], kind, data));
        }
        _ => return Ok(()),
    }
    for (user, kind, data) in plan.emails {
        queue_email(tx, &user, kind, transfer.as_deref(), &data, now).await?;
    }
    for (mut orgs, kind, data) in plan.hooks {
        orgs.sort();
        orgs.dedup();
        queue_webhooks(tx, &orgs, kind, transfer.as_deref(), &data, now).await?;
    }
    Ok(())
}

/// Plans "a bundle waits" for `recipient`: their email, and both organisations' webhooks.
async fn waiting(tx: &mut Tx, plan: &mut Plan, facts: &TransferFacts, recipient: &str) -> Result<(), StoreError> {
    let Some((name, org)) = party(tx, recipient).await? else { return Ok(()) };
    let data = with(facts.data.clone(), "recipient", name);
    plan.emails.push((recipient.to_owned(), Kind::Waiting, data.clone()));
    plan.hooks.push((vec![facts.sender_org.clone(), org], Kind::Waiting, data));
    Ok(())
}

/// Plans a message to a transfer's sender about one recipient: their email, and both
/// organisations' webhooks.
async fn to_sender(
    tx: &mut Tx,
    plan: &mut Plan,
    transfer: &str,
    recipient: &str,
    kind: Kind,
    more: impl FnOnce(Value) -> Value,
) -> Result<(), StoreError> {
    let Some(facts) = transfer_facts(tx, transfer).await? else { return Ok(()) };
    let Some((name, org)) = party(tx, recipient).await? else { return Ok(()) };
    let data = more(with(facts.data, "recipient", name));
    plan.emails.push((facts.sender, kind, data.clone()));
    plan.hooks.push((vec![facts.sender_org, org], kind, data));
    Ok(())
}

/// Queues an email of `kind` to `user`, unless they have no address, turned the kind off, or no
/// gateway sharing the database has a mail server.
async fn queue_email(
    tx: &mut Tx,
    user: &str,
    kind: Kind,
    transfer: Option<&str>,
    data: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (id, channel, kind, user_id, transfer_id, data, created_at, next_at) \
         SELECT $1, 'email', $2, u.id, $3, $4, $5, $5 FROM users u WHERE u.id = $6 AND u.email IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM notification_opt_outs p WHERE p.user_id = u.id AND p.kind = $2) \
         AND EXISTS (SELECT 1 FROM gateways g WHERE g.mail AND g.seen_at >= $7)",
    )
    .bind(NotificationId::generate().as_str())
    .bind(kind.as_str())
    .bind(transfer)
    .bind(data.to_string())
    .bind(ms(now))
    .bind(user)
    .bind(ms(now) - MAIL_SEEN_WITHIN_MS)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues one delivery of `kind` to each live webhook endpoint of `orgs`.
async fn queue_webhooks(
    tx: &mut Tx,
    orgs: &[String],
    kind: Kind,
    transfer: Option<&str>,
    data: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for org in orgs {
        let hooks: Vec<String> =
            sqlx::query_scalar("SELECT id FROM webhooks WHERE org_id = $1 AND removed_at IS NULL ORDER BY id")
                .bind(org)
                .fetch_all(&mut **tx)
                .await?;
        for hook in hooks {
            sqlx::query(
                "INSERT INTO outbox (id, channel, kind, webhook_id, org_id, transfer_id, data, created_at, next_at) \
                 VALUES ($1, 'webhook', $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(NotificationId::generate().as_str())
            .bind(kind.as_str())
            .bind(&hook)
            .bind(org)
            .bind(transfer)
            .bind(data.to_string())
            .bind(ms(now))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

impl Store {
    /// Records whether this gateway has a mail server, so email is queued only while one of the
    /// gateways sharing the database can send it.
    pub async fn announce_mail(&self, mail: bool, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateways (id, started_at, seen_at, mail) VALUES ($1, $2, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, mail = excluded.mail",
        )
        .bind(self.gateway.as_ref())
        .bind(ms(now))
        .bind(mail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` due outbox rows for this gateway until `until`, in a write
    /// transaction (so gateways sharing a database take turns and never claim one row twice);
    /// email rows only when `email` (this gateway has a mail server).
    pub async fn claim_notifications(
        &self,
        limit: u32,
        email: bool,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_at) FROM outbox WHERE next_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
             AND (channel = 'webhook' OR $2)",
        )
        .bind(ms(now))
        .bind(email)
        .fetch_one(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "SELECT b.id, b.channel, b.kind, b.user_id, b.webhook_id, b.org_id, b.transfer_id, b.data, b.created_at, \
                    b.attempts, u.email, w.url, w.secret \
             FROM outbox b LEFT JOIN users u ON u.id = b.user_id LEFT JOIN webhooks w ON w.id = b.webhook_id \
             WHERE b.next_at <= $1 AND (b.claimed_until IS NULL OR b.claimed_until < $1) \
             AND (b.channel = 'webhook' OR $3) ORDER BY b.next_at, b.id LIMIT $2",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .bind(email)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.get("id");
            sqlx::query("UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE id = $3")
                .bind(self.gateway.as_ref())
                .bind(ms(until))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            let kind_name: String = row.get("kind");
            let target = if row.get::<String, _>("channel") == "webhook" {
                Target::Webhook {
                    webhook: WebhookId::from_db(row.get::<Option<String>, _>("webhook_id").unwrap_or_default()),
                    org: row.get::<Option<String>, _>("org_id").unwrap_or_default(),
                    url: row.get::<Option<String>, _>("url").unwrap_or_default(),
                    sealed_secret: row.get::<Option<Vec<u8>>, _>("secret").unwrap_or_default(),
                }
            } else {
                Target::Email {
                    user: UserId::from_db(row.get::<Option<String>, _>("user_id").unwrap_or_default()),
                    address: row.get("email"),
                }
            };
            claimed.push(OutboxRow {
                id: NotificationId::from_db(id),
                kind: Kind::parse(&kind_name),
                kind_name,
                data: serde_json::from_str(&row.get::<String, _>("data")).unwrap_or(Value::Null),
                created_at: from_ms(row.get("created_at")),
                attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(u32::MAX),
                transfer: row.get("transfer_id"),
                target,
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// The event a finished row is recorded by.
    fn notification_event(row: &OutboxRow, kind: EventKind) -> Event {
        let subject = match &row.target {
            Target::Email { user, .. } => user.as_str().to_owned(),
            Target::Webhook { org, .. } => org.clone(),
        };
        let mut event = Event::new(kind)
            .subject(subject)
            .field("kind", &row.kind_name)
            .field("channel", row.target.channel())
            .field("notification", &row.id);
        if let Target::Webhook { webhook, .. } = &row.target {
            event = event.field("webhook", webhook);
        }
        if let Some(t) = &row.transfer {
            event = event.transfer(&crate::ids::TransferId::from_db(t.clone()));
        }
        event
    }

    /// Records a row as sent: deletes it with its `notification.sent` event, if this gateway
    /// still holds its claim.
    pub async fn notification_sent(&self, row: &OutboxRow, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let gone = sqlx::query("DELETE FROM outbox WHERE id = $1 AND claimed_by = $2")
            .bind(row.id.as_str())
            .bind(self.gateway.as_ref())
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() > 0 {
            append(&mut tx, &Self::notification_event(row, EventKind::NotificationSent), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed attempt: the row is tried again at `retry_at`, or, when that is `None`,
    /// given up with a `notification.failed` event whose code is `code`.
    pub async fn notification_failed(
        &self,
        row: &OutboxRow,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        match retry_at {
            Some(at) => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, next_at = $1, claimed_by = NULL, claimed_until = NULL, \
                     last_error = $2 WHERE id = $3 AND claimed_by = $4",
                )
                .bind(ms(at))
                .bind(error.chars().take(500).collect::<String>())
                .bind(row.id.as_str())
                .bind(self.gateway.as_ref())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                let gone = sqlx::query("DELETE FROM outbox WHERE id = $1 AND claimed_by = $2")
                    .bind(row.id.as_str())
                    .bind(self.gateway.as_ref())
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() > 0 {
                    let event = Self::notification_event(row, EventKind::NotificationFailed)
                        .code(code)
                        .field("attempts", row.attempts.saturating_add(1));
                    append(&mut tx, &event, now).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queues the "expires soon" email for every released, uncollected link that expires within
    /// `ahead` and has had none yet (each link gets one). Returns how many links were reminded.
    pub async fn queue_expiry_reminders(
        &self,
        ahead: chrono::TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let horizon = ms(now + ahead);
        let due: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM links l JOIN transfers t ON t.id = l.transfer_id WHERE l.state = 'issued' \
             AND l.reminded_at IS NULL AND l.expires_at <= $1 AND l.expires_at > $2 AND t.status = 'released'",
        )
        .bind(horizon)
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?;
        if due == 0 {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let links: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT l.id, l.transfer_id, l.recipient_id FROM links l JOIN transfers t ON t.id = l.transfer_id \
             WHERE l.state = 'issued' AND l.reminded_at IS NULL AND l.expires_at <= $1 AND l.expires_at > $2 \
             AND t.status = 'released' ORDER BY l.id",
        )
        .bind(horizon)
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await?;
        for (link, transfer, recipient) in &links {
            sqlx::query("UPDATE links SET reminded_at = $1 WHERE id = $2")
                .bind(ms(now))
                .bind(link)
                .execute(&mut *tx)
                .await?;
            let Some(facts) = transfer_facts(&mut tx, transfer).await? else { continue };
            let Some((name, _)) = party(&mut tx, recipient).await? else { continue };
            let data = with(facts.data, "recipient", name);
            queue_email(&mut tx, recipient, Kind::Expiring, Some(transfer), &data, now).await?;
        }
        tx.commit().await?;
        Ok(links.len() as u64)
    }

    /// The optional kinds `user` has turned off.
    pub async fn notification_opt_outs(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT kind FROM notification_opt_outs WHERE user_id = $1 ORDER BY kind")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?)
    }

    /// Replaces the kinds `user` has turned off with `off` (optional kinds only: the caller
    /// checks), with a `notifications.changed` event listing them.
    pub async fn set_notification_opt_outs(
        &self,
        user: &UserId,
        off: &[Kind],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM notification_opt_outs WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        let mut names: Vec<&str> = off.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for kind in &names {
            sqlx::query("INSERT INTO notification_opt_outs (user_id, kind) VALUES ($1, $2)")
                .bind(user.as_str())
                .bind(*kind)
                .execute(&mut *tx)
                .await?;
        }
        let event = Event::new(EventKind::NotificationsChanged)
            .actor(user)
            .subject(user.as_str())
            .field("off", names.join(","));
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Registers a webhook endpoint for organisation `org` with its sealed secret.
    pub async fn add_webhook(
        &self,
        actor: &UserId,
        id: &WebhookId,
        org: &str,
        url: &str,
        sealed_secret: &[u8],
        now: DateTime<Utc>,
    ) -> Result<WebhookRow, StoreError> {
        let mut tx = self.write().await?;
        let org_id: Option<String> =
            sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1").bind(org).fetch_optional(&mut *tx).await?;
        let org_id = org_id.ok_or_else(|| StoreError::UnknownOrg(org.to_owned()))?;
        sqlx::query(
            "INSERT INTO webhooks (id, org_id, url, secret, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(&org_id)
        .bind(url)
        .bind(sealed_secret)
        .bind(actor.as_str())
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        let event =
            Event::new(EventKind::WebhookAdded).actor(actor).subject(&org_id).field("webhook", id).field("url", url);
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(WebhookRow { id: id.clone(), org: org.to_owned(), url: url.to_owned(), created_at: from_ms(ms(now)) })
    }

    /// Every live webhook endpoint, by organisation.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookRow>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT w.id, o.name, w.url, w.created_at FROM webhooks w JOIN orgs o ON o.id = w.org_id \
             WHERE w.removed_at IS NULL ORDER BY o.name, w.created_at, w.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, org, url, at)| WebhookRow { id: WebhookId::from_db(id), org, url, created_at: from_ms(at) })
            .collect())
    }

    /// Removes a webhook endpoint; its undelivered messages are dropped with it. `None` when
    /// there is no live endpoint with that id.
    pub async fn remove_webhook(
        &self,
        actor: &UserId,
        id: &WebhookId,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookRow>, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT o.id, o.name, w.url, w.created_at FROM webhooks w JOIN orgs o ON o.id = w.org_id \
             WHERE w.id = $1 AND w.removed_at IS NULL",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((org_id, org, url, at)) = row else { return Ok(None) };
        sqlx::query("UPDATE webhooks SET removed_at = $1 WHERE id = $2")
            .bind(ms(now))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let dropped =
            sqlx::query("DELETE FROM outbox WHERE webhook_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        let event = Event::new(EventKind::WebhookRemoved)
            .actor(actor)
            .subject(&org_id)
            .field("webhook", id)
            .field("undelivered", dropped.rows_affected());
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(Some(WebhookRow { id: id.clone(), org, url, created_at: from_ms(at) }))
    }

    /// How many messages wait in the outbox (for tests and the operator).
    pub async fn outbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&self.pool).await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}
