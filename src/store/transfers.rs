//! Transfers: commit of an accepted upload with its links, the inbox, recall, expiry and purge.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::group::Tx;
use super::{Store, StoreError, append, from_ms, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{LinkId, SecretHash, TransferId, UserId};
use crate::intake::Inspected;
use crate::model::UserRef;
use crate::wire::transfers::{DeliveryOutcome, InboxItem, InboxState, LinkState, LinkView, TransferView};
use crate::wire::{Digest, TransferStatus};

/// A stored digest, read back.
pub(super) fn digest(text: &str) -> Result<Digest, StoreError> {
    text.parse().map_err(|_| StoreError::Unreadable { column: "digest", value: text.to_owned() })
}

/// A stored link state, read back.
fn link_state(text: &str) -> Result<LinkState, StoreError> {
    Ok(match text {
        "issued" => LinkState::Issued,
        "leased" => LinkState::Leased,
        "used" => LinkState::Used,
        "revoked" => LinkState::Revoked,
        "expired" => LinkState::Expired,
        other => return Err(StoreError::Unreadable { column: "link state", value: other.to_owned() }),
    })
}

/// A stored inbox state, read back.
fn inbox_state(text: &str) -> Result<InboxState, StoreError> {
    Ok(match text {
        "issued" => InboxState::Issued,
        "leased" => InboxState::Leased,
        "awaiting_approval" => InboxState::AwaitingApproval,
        other => return Err(StoreError::Unreadable { column: "inbox state", value: other.to_owned() }),
    })
}
use crate::policy::{Action, Approval, OrgFacts, Permit, Release, TransferFacts, UserFacts};

/// Where an accepted upload is to be stored.
#[derive(Debug)]
pub struct NewTransfer {
    /// Its id (also names its blob).
    pub id: TransferId,
    /// The blob's key in the object store.
    pub object_key: String,
}

/// One recipient's link, ready to commit.
#[derive(Debug)]
pub struct NewLink {
    /// Its id.
    pub id: LinkId,
    /// The recipient's id (must be one of the approval's recipients).
    pub recipient: UserId,
    /// SHA-256 of the link token.
    pub token_hash: SecretHash,
}

/// An accepted upload's rows and audit events, owned, for the group committer.
#[derive(Debug)]
struct Insert {
    id: String,
    sender: String,
    size: i64,
    digest: String,
    armored: bool,
    classification: String,
    expires_at: DateTime<Utc>,
    object_key: String,
    status: &'static str,
    accepted: Event,
    links: Vec<InsertLink>,
    now: DateTime<Utc>,
}

#[derive(Debug)]
struct InsertLink {
    id: String,
    recipient: String,
    token_hash: Vec<u8>,
    issued: Event,
}

/// Writes one accepted upload (transfer, `upload.accepted`, links, `link.issued`) into `tx`;
/// returns the index of its `upload.accepted` event.
async fn write_insert(tx: &mut Tx, insert: Insert) -> Result<u64, StoreError> {
    sqlx::query(
        "INSERT INTO transfers (id, sender_id, size, digest, armored, classification, created_at, expires_at, object_key, status) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&insert.id)
    .bind(&insert.sender)
    .bind(insert.size)
    .bind(&insert.digest)
    .bind(insert.armored)
    .bind(&insert.classification)
    .bind(ms(insert.now))
    .bind(ms(insert.expires_at))
    .bind(&insert.object_key)
    .bind(insert.status)
    .execute(&mut **tx)
    .await?;
    let accepted_idx = append(tx, &insert.accepted, insert.now).await?;
    for link in &insert.links {
        sqlx::query(
            "INSERT INTO links (id, transfer_id, recipient_id, token_hash, state, expires_at) \
             VALUES (?, ?, ?, ?, 'issued', ?)",
        )
        .bind(&link.id)
        .bind(&insert.id)
        .bind(&link.recipient)
        .bind(&link.token_hash[..])
        .bind(ms(insert.expires_at))
        .execute(&mut **tx)
        .await?;
        append(tx, &link.issued, insert.now).await?;
    }
    Ok(accepted_idx)
}

/// The outcome of a recall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recall {
    /// How many unused links were revoked.
    pub revoked: u64,
    /// The blob to delete, if it still exists.
    pub object_key: Option<String>,
}

/// A transfer whose ciphertext is no longer needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    /// The transfer.
    pub transfer: TransferId,
    /// Its blob.
    pub object_key: String,
    /// `delivered`, `expired`, `recalled` or `rejected`.
    pub reason: &'static str,
}

/// A stored transfer as policies and the approval flow need it.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    /// The policy facts (sender, recipients, classification, size, approved).
    pub facts: TransferFacts,
    /// Facts about every organisation involved.
    pub orgs: Vec<OrgFacts>,
    /// `held`, `released` or `rejected`.
    pub status: String,
    /// Whether the upload was armoured.
    pub armored: bool,
}

/// The outcome of an approval decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Whether the transfer is now released to its recipients.
    pub released: bool,
    /// Links revoked (on rejection).
    pub revoked: u64,
    /// The blob to delete (on rejection).
    pub object_key: Option<String>,
}

fn user_facts(row: &sqlx::sqlite::SqliteRow) -> UserFacts {
    let org: String = row.get("org");
    let name: String = row.get("name");
    UserFacts { id: row.get("id"), name: format!("{org}/{name}"), role: row.get("role"), org }
}

impl Store {
    /// A transfer with everything policies need to decide on it.
    pub async fn transfer_record(&self, id: &TransferId) -> Result<TransferRecord, StoreError> {
        let row = sqlx::query(
            "SELECT t.size, t.classification, t.status, t.armored, t.decided_by, \
                    u.id, u.name, u.role, o.name AS org \
             FROM transfers t JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id WHERE t.id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::UnknownTransfer(id.to_string()))?;
        let recipients: Vec<UserFacts> = sqlx::query(
            "SELECT u.id, u.name, u.role, o.name AS org FROM links l JOIN users u ON u.id = l.recipient_id \
             JOIN orgs o ON o.id = u.org_id WHERE l.transfer_id = ? ORDER BY o.name, u.name",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(user_facts)
        .collect();
        let status: String = row.get("status");
        let sender = user_facts(&row);
        let mut org_names: Vec<&str> = recipients.iter().map(|r| r.org.as_str()).collect();
        org_names.push(&sender.org);
        org_names.sort_unstable();
        org_names.dedup();
        let orgs = self.org_facts(&org_names).await?;
        Ok(TransferRecord {
            facts: TransferFacts {
                id: id.to_string(),
                sender,
                recipients,
                classification: row.get("classification"),
                size: u64::try_from(row.get::<i64, _>("size")).unwrap_or_default(),
                approved: row.get::<Option<String>, _>("decided_by").is_some() && status != "rejected",
            },
            orgs,
            status,
            armored: row.get("armored"),
        })
    }

    /// The recipient and transfer of the link with this token, if any.
    pub async fn link_target(&self, token: &SecretHash) -> Result<Option<(UserId, TransferId)>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT recipient_id, transfer_id FROM links WHERE token_hash = ?")
                .bind(&token.0[..])
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(u, t)| (UserId::from_db(u), TransferId::from_db(t))))
    }

    /// Records an approver's decision on a held transfer. Approval releases it when `release`
    /// is true (the policies re-decided with the approval); rejection revokes its links.
    /// Deciding a transfer that is not held is refused with `NotHeld`.
    pub async fn decide_transfer(
        &self,
        permit: &Permit,
        approver: &UserId,
        approve: bool,
        release: &Release,
        now: DateTime<Utc>,
    ) -> Result<Decided, StoreError> {
        debug_assert_eq!(permit.action(), Action::Approve);
        let id = &TransferId::from_db(permit.transfer().to_owned());
        let mut tx = self.write().await?;
        let new_status = match (approve, release.held()) {
            (true, false) => "released",
            (true, true) => "held",
            (false, _) => "rejected",
        };
        let updated: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE transfers SET status = ?, decided_by = ?, decided_at = ? \
             WHERE id = ? AND status = 'held' AND decided_by IS NULL RETURNING object_key",
        )
        .bind(new_status)
        .bind(approver.as_str())
        .bind(ms(now))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(object_key) = updated else {
            return Err(StoreError::NotHeld(id.to_string()));
        };
        let kind = if approve { EventKind::TransferApproved } else { EventKind::TransferRejected };
        let event = Event::new(kind)
            .actor(approver)
            .transfer(id)
            .field("status", new_status)
            .field("release_policies", release.policies().join(","));
        append(&mut tx, &event, now).await?;
        let mut revoked = 0;
        if !approve {
            let links: Vec<(String, String)> = sqlx::query_as(
                "UPDATE links SET state = 'revoked', lease_id = NULL \
                 WHERE transfer_id = ? AND state IN ('issued', 'leased') RETURNING id, recipient_id",
            )
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
            for (link, recipient) in &links {
                let event = Event::new(EventKind::LinkRevoked)
                    .actor(approver)
                    .transfer(id)
                    .subject(recipient.as_str())
                    .field("link", link);
                append(&mut tx, &event, now).await?;
            }
            revoked = links.len() as u64;
        }
        tx.commit().await?;
        Ok(Decided { released: new_status == "released", revoked, object_key: if approve { None } else { object_key } })
    }

    /// Commits an accepted upload: the transfer, one link per approved recipient, and their
    /// audit events, in one transaction. Nothing is visible unless all of it is. Returns the
    /// log index of the `upload.accepted` event.
    pub async fn insert_transfer(
        &self,
        approval: &Approval,
        release: &Release,
        inspected: &Inspected,
        transfer: &NewTransfer,
        links: &[NewLink],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let header = &inspected.envelope().header;
        debug_assert_eq!(
            links.iter().map(|l| &l.recipient).collect::<Vec<_>>(),
            approval.recipients().iter().collect::<Vec<_>>()
        );
        let status = if release.held() { "held" } else { "released" };
        let accepted = Event::new(EventKind::UploadAccepted)
            .actor(approval.sender())
            .transfer(&transfer.id)
            .field("size", inspected.size())
            .field("digest", inspected.digest())
            .field("classification", approval.classification())
            .field("expires", approval.expires_at().timestamp())
            .field("policies", approval.policies().join(","))
            .field("status", status)
            .field("release_policies", release.policies().join(","));
        let mut accepted = accepted;
        accepted.fields.extend([
            ("armored", header.armored.to_string()),
            ("stanzas", header.recipient_stanzas().count().to_string()),
            ("payload", inspected.envelope().payload_len.to_string()),
        ]);
        let links = links
            .iter()
            .map(|link| InsertLink {
                id: link.id.to_string(),
                recipient: link.recipient.to_string(),
                token_hash: link.token_hash.0.to_vec(),
                issued: Event::new(EventKind::LinkIssued)
                    .actor(approval.sender())
                    .transfer(&transfer.id)
                    .subject(link.recipient.as_str())
                    .field("link", &link.id),
            })
            .collect();
        let insert = Insert {
            id: transfer.id.to_string(),
            sender: approval.sender().to_string(),
            size: i64::try_from(inspected.size()).unwrap_or(i64::MAX),
            digest: inspected.digest().to_string(),
            armored: header.armored,
            classification: approval.classification().as_str().to_owned(),
            expires_at: approval.expires_at(),
            object_key: transfer.object_key.clone(),
            status,
            accepted,
            links,
            now,
        };
        self.group.run(move |tx| Box::pin(write_insert(tx, insert))).await
    }

    /// The links waiting for `user`: issued or in progress, not expired, ciphertext present.
    pub async fn inbox(&self, user: &UserId, now: DateTime<Utc>) -> Result<Vec<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, o.name AS org, u.name, t.size, t.digest, t.classification, t.created_at, \
                    l.expires_at, CASE WHEN t.status = 'held' THEN 'awaiting_approval' ELSE l.state END AS state \
             FROM links l JOIN transfers t ON t.id = l.transfer_id \
             JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id \
             WHERE l.recipient_id = ? AND l.state IN ('issued', 'leased') AND l.expires_at > ? \
                   AND t.object_key IS NOT NULL \
             ORDER BY t.created_at DESC, t.id",
        )
        .bind(user.as_str())
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(InboxItem {
                    transfer: r.get("id"),
                    from: UserRef::new(r.get("org"), r.get("name"))?,
                    size: u64::try_from(r.get::<i64, _>("size")).unwrap_or_default(),
                    digest: digest(&r.get::<String, _>("digest"))?,
                    classification: r.get::<String, _>("classification").parse()?,
                    created_at: from_ms(r.get("created_at")),
                    expires_at: from_ms(r.get("expires_at")),
                    state: inbox_state(&r.get::<String, _>("state"))?,
                })
            })
            .collect()
    }

    /// A transfer with its links, if `viewer` sent it (or `any_sender` is set, for admins).
    pub async fn transfer(
        &self,
        id: &TransferId,
        viewer: &UserId,
        any_sender: bool,
    ) -> Result<TransferView, StoreError> {
        let unknown = || StoreError::UnknownTransfer(id.to_string());
        let row = sqlx::query(
            "SELECT t.id, t.sender_id, o.name AS org, u.name, t.size, t.digest, t.classification, t.created_at, \
                    t.expires_at, t.recalled_at, t.purged_at, t.status, \
                    (SELECT do.name || '/' || du.name FROM users du JOIN orgs do ON do.id = du.org_id \
                     WHERE du.id = t.decided_by) AS decided_by \
             FROM transfers t JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id WHERE t.id = ?",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(unknown)?;
        if !any_sender && row.get::<String, _>("sender_id") != viewer.as_str() {
            return Err(unknown());
        }
        let links = sqlx::query(
            "SELECT o.name AS org, u.name, l.state, l.expires_at, l.used_at, \
                    (SELECT a.code FROM audit_events a WHERE a.transfer_id = l.transfer_id \
                     AND a.actor_id = l.recipient_id AND a.event = 'delivery.acknowledged' \
                     ORDER BY a.idx LIMIT 1) AS acknowledged FROM links l \
             JOIN users u ON u.id = l.recipient_id JOIN orgs o ON o.id = u.org_id \
             WHERE l.transfer_id = ? ORDER BY o.name, u.name",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| {
            Ok(LinkView {
                recipient: UserRef::new(r.get("org"), r.get("name"))?,
                state: link_state(&r.get::<String, _>("state"))?,
                expires_at: from_ms(r.get("expires_at")),
                used_at: r.get::<Option<i64>, _>("used_at").map(from_ms),
                acknowledged: match r.get::<Option<String>, _>("acknowledged").as_deref() {
                    None => None,
                    Some("decrypted") => Some(DeliveryOutcome::Decrypted),
                    Some(_) => Some(DeliveryOutcome::Failed),
                },
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let recalled_at = row.get::<Option<i64>, _>("recalled_at").map(from_ms);
        Ok(TransferView {
            id: row.get("id"),
            sender: UserRef::new(row.get("org"), row.get("name"))?,
            size: u64::try_from(row.get::<i64, _>("size")).unwrap_or_default(),
            digest: digest(&row.get::<String, _>("digest"))?,
            classification: row.get::<String, _>("classification").parse()?,
            created_at: from_ms(row.get("created_at")),
            expires_at: from_ms(row.get("expires_at")),
            status: match (row.get::<String, _>("status").as_str(), recalled_at) {
                ("held", None) => TransferStatus::AwaitingApproval,
                ("rejected", _) => TransferStatus::Rejected,
                (_, Some(_)) => TransferStatus::Recalled,
                _ => TransferStatus::Available,
            },
            decided_by: row.get::<Option<String>, _>("decided_by").and_then(|u| u.parse().ok()),
            recalled_at,
            purged_at: row.get::<Option<i64>, _>("purged_at").map(from_ms),
            links,
        })
    }

    /// Recalls a transfer: revokes every unused link and marks it recalled, with audit events.
    /// `any_sender` lets an admin recall another user's transfer. Recalling twice is harmless.
    pub async fn recall(
        &self,
        permit: &Permit,
        actor: &UserId,
        any_sender: bool,
        now: DateTime<Utc>,
    ) -> Result<Recall, StoreError> {
        debug_assert_eq!(permit.action(), Action::Recall);
        let id = &TransferId::from_db(permit.transfer().to_owned());
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT sender_id, object_key, recalled_at FROM transfers WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Err(StoreError::UnknownTransfer(id.to_string())) };
        if !any_sender && row.get::<String, _>("sender_id") != actor.as_str() {
            return Err(StoreError::UnknownTransfer(id.to_string()));
        }
        let object_key: Option<String> = row.get("object_key");
        let revoked: Vec<(String, String)> = sqlx::query_as(
            "UPDATE links SET state = 'revoked', lease_id = NULL \
             WHERE transfer_id = ? AND state IN ('issued', 'leased') RETURNING id, recipient_id",
        )
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        if row.get::<Option<i64>, _>("recalled_at").is_none() {
            sqlx::query("UPDATE transfers SET recalled_at = ? WHERE id = ?")
                .bind(ms(now))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            let event =
                Event::new(EventKind::TransferRecalled).actor(actor).transfer(id).field("links_revoked", revoked.len());
            append(&mut tx, &event, now).await?;
        }
        for (link, recipient) in &revoked {
            let event = Event::new(EventKind::LinkRevoked)
                .actor(actor)
                .transfer(id)
                .subject(recipient.as_str())
                .field("link", link);
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(Recall { revoked: revoked.len() as u64, object_key })
    }

    /// Marks every issued link past its expiry as expired, with one audit event each.
    pub async fn expire_links(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let expired: Vec<(String, String, String)> = sqlx::query_as(
            "UPDATE links SET state = 'expired' WHERE state = 'issued' AND expires_at <= ? \
             RETURNING id, transfer_id, recipient_id",
        )
        .bind(ms(now))
        .fetch_all(&mut *tx)
        .await?;
        for (link, transfer, recipient) in &expired {
            let event = Event::new(EventKind::LinkExpired)
                .transfer(&TransferId::from_db(transfer.clone()))
                .subject(recipient.as_str())
                .field("link", link);
            append(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(expired.len() as u64)
    }

    /// Transfers whose ciphertext can go: no link can still be redeemed.
    pub async fn purgeable(&self) -> Result<Vec<Purge>, StoreError> {
        self.purgeable_where(None).await
    }

    async fn purgeable_where(&self, only: Option<&TransferId>) -> Result<Vec<Purge>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.object_key, t.recalled_at, t.status, \
                    (SELECT COUNT(*) FROM links l WHERE l.transfer_id = t.id AND l.state = 'used') AS used \
             FROM transfers t WHERE t.object_key IS NOT NULL AND (?1 IS NULL OR t.id = ?1) AND NOT EXISTS \
                (SELECT 1 FROM links l WHERE l.transfer_id = t.id AND l.state IN ('issued', 'leased'))",
        )
        .bind(only.map(|t| t.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let reason = if r.get::<String, _>("status") == "rejected" {
                    "rejected"
                } else if r.get::<Option<i64>, _>("recalled_at").is_some() {
                    "recalled"
                } else if r.get::<i64, _>("used") > 0 {
                    "delivered"
                } else {
                    "expired"
                };
                Purge { transfer: TransferId::from_db(r.get("id")), object_key: r.get("object_key"), reason }
            })
            .collect())
    }

    /// The transfer's blob if no link can reach it any more (for purging right after the last
    /// delivery rather than at the next sweep).
    pub async fn spent(&self, transfer: &TransferId) -> Result<Option<Purge>, StoreError> {
        Ok(self.purgeable_where(Some(transfer)).await?.pop())
    }

    /// Records that a transfer's blob has been deleted.
    pub async fn mark_purged(&self, purge: &Purge, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE transfers SET object_key = NULL, purged_at = ? WHERE id = ? AND object_key IS NOT NULL",
        )
        .bind(ms(now))
        .bind(purge.transfer.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            append(&mut tx, &Event::new(EventKind::ObjectPurged).transfer(&purge.transfer).code(purge.reason), now)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every blob key the store still refers to (for the start-up orphan sweep).
    pub async fn object_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT object_key FROM transfers WHERE object_key IS NOT NULL")
            .fetch_all(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BearerSecret;

    fn insert(id: &str, sender: &UserId, now: DateTime<Utc>) -> Insert {
        Insert {
            id: id.to_owned(),
            sender: sender.to_string(),
            size: 1,
            digest: "sha256:00".to_owned(),
            armored: false,
            classification: "OFFICIAL".to_owned(),
            expires_at: now,
            object_key: format!("{id}.age"),
            status: "released",
            accepted: Event::new(EventKind::UploadAccepted).field("transfer", id),
            links: Vec::new(),
            now,
        }
    }

    #[tokio::test]
    async fn uploads_committed_together_share_a_transaction_but_fail_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).await.expect("open");
        let now = Utc::now();
        let token = BearerSecret::generate("");
        store.bootstrap(&token.hash(), now).await.expect("bootstrap");
        let sender = store.authenticate(&token.hash(), now).await.expect("auth").expect("admin").id;
        // Submitted in one poll, so the committer finds them all queued: one batch, in which the
        // duplicate id fails on its own and the others commit.
        let ids = ["a", "b", "a", "c"];
        let results = futures_util::future::join_all(ids.iter().map(|id| {
            let job = insert(id, &sender, now);
            store.group.run(move |tx| Box::pin(write_insert(tx, job)))
        }))
        .await;
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok(), "{results:?}");
        assert!(results[2].is_err(), "a duplicate transfer id must be refused: {results:?}");
        let mut idx: Vec<u64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        idx.sort_unstable();
        let first = idx[0];
        assert_eq!(idx, vec![first, first + 1, first + 2], "the audit index stays gapless");
        let stored: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM transfers").fetch_one(&store.pool).await.expect("count");
        assert_eq!(stored, 3);
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE event = 'upload.accepted'")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(events, 3, "the refused upload's event was rolled back with its row");
    }
}
