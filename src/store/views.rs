//! What senders and recipients see of transfers: the inbox and a transfer's view, in the wire's
//! types.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, from_ms, ms};
use crate::ids::{TransferId, UserId};
use crate::model::UserRef;
use crate::transparency::verify::parse_entry;
use crate::wire::transfers::{DeliveryOutcome, InboxItem, InboxState, LinkState, LinkView, SignedFor, TransferView};
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

impl Store {
    /// The links waiting for `user`: issued or in progress, not expired, ciphertext present.
    pub async fn inbox(&self, user: &UserId, now: DateTime<Utc>) -> Result<Vec<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, o.name AS org, u.name, t.size, t.digest, t.classification, t.created_at, \
                    l.expires_at, CASE WHEN t.status = 'held' THEN 'awaiting_approval' ELSE l.state END AS state \
             FROM links l JOIN transfers t ON t.id = l.transfer_id \
             JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id \
             WHERE l.recipient_id = $1 AND l.state IN ('issued', 'leased') AND l.expires_at > $2 \
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
                    (SELECT dorg.name || '/' || du.name FROM users du JOIN orgs dorg ON dorg.id = du.org_id \
                     WHERE du.id = t.decided_by) AS decided_by \
             FROM transfers t JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id WHERE t.id = $1",
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
                    (SELECT a.entry FROM audit_events a WHERE a.transfer_id = l.transfer_id \
                     AND a.actor_id = l.recipient_id AND a.event = 'delivery.acknowledged' \
                     ORDER BY a.idx LIMIT 1) AS acknowledged FROM links l \
             JOIN users u ON u.id = l.recipient_id JOIN orgs o ON o.id = u.org_id \
             WHERE l.transfer_id = $1 ORDER BY o.name, u.name",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| {
            let recipient = UserRef::new(r.get("org"), r.get("name"))?;
            let report = r.get::<Option<String>, _>("acknowledged");
            let (acknowledged, signed_for) = match report.as_deref().map(|e| parse_entry(e.as_bytes())) {
                None => (None, None),
                Some(Err(_)) => {
                    return Err(StoreError::Unreadable {
                        column: "audit_events.entry",
                        value: report.unwrap_or_default(),
                    });
                }
                Some(Ok(entry)) if entry.code() == Some("decrypted") => {
                    (Some(DeliveryOutcome::Decrypted), signed_for(&entry, &recipient))
                }
                Some(Ok(_)) => (Some(DeliveryOutcome::Failed), None),
            };
            Ok(LinkView {
                recipient,
                state: link_state(&r.get::<String, _>("state"))?,
                expires_at: from_ms(r.get("expires_at")),
                used_at: r.get::<Option<i64>, _>("used_at").map(from_ms),
                acknowledged,
                signed_for,
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
}

/// Who signed for a delivery, from its `delivery.acknowledged` entry (`None` when unsigned).
fn signed_for(entry: &crate::transparency::verify::Entry, recipient: &UserRef) -> Option<SignedFor> {
    let key = entry.fact("signing_key")?;
    let at = DateTime::parse_from_rfc3339(entry.fact("signed_at")?).ok()?.with_timezone(&Utc);
    Some(SignedFor { by: recipient.clone(), at, key: crate::directory::fingerprint(key) })
}
