//! The queue of transfers held for a compliance officer's approval.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, from_ms, ms};
use crate::model::{Classification, UserRef};

/// A transfer waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTransfer {
    /// Its id.
    pub id: String,
    /// Who sent it.
    pub sender: UserRef,
    /// Its recipients.
    pub recipients: Vec<UserRef>,
    /// Ciphertext bytes.
    pub size: u64,
    /// Its classification.
    pub classification: Classification,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When its links expire.
    pub expires_at: DateTime<Utc>,
    /// The policies that held it (from its `upload.accepted` entry).
    pub policies: Vec<String>,
}

impl Store {
    /// Held transfers whose links have not all expired, oldest first.
    pub async fn held_transfers(&self, now: DateTime<Utc>) -> Result<Vec<HeldTransfer>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, o.name AS org, u.name, t.size, t.classification, t.created_at, t.expires_at, \
                    (SELECT group_concat(ro.name || '/' || ru.name, ' ') FROM links l \
                     JOIN users ru ON ru.id = l.recipient_id JOIN orgs ro ON ro.id = ru.org_id \
                     WHERE l.transfer_id = t.id) AS recipients, \
                    (SELECT a.entry FROM audit_events a WHERE a.transfer_id = t.id \
                     AND a.event = 'upload.accepted' ORDER BY a.idx LIMIT 1) AS accepted \
             FROM transfers t JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id \
             WHERE t.status = 'held' AND t.recalled_at IS NULL AND t.expires_at > $1 \
             ORDER BY t.created_at, t.id",
        )
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let recipients = super::recipient_list(&r)?;
                let accepted: Option<String> = r.get("accepted");
                let policies = accepted
                    .as_deref()
                    .and_then(|e| e.lines().find_map(|l| l.strip_prefix("release_policies ")))
                    .map(|p| p.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default();
                Ok(HeldTransfer {
                    id: r.get("id"),
                    sender: UserRef::new(r.get("org"), r.get("name"))?,
                    recipients,
                    size: u64::try_from(r.get::<i64, _>("size")).unwrap_or_default(),
                    classification: r.get::<String, _>("classification").parse()?,
                    created_at: from_ms(r.get("created_at")),
                    expires_at: from_ms(r.get("expires_at")),
                    policies,
                })
            })
            .collect()
    }
}
