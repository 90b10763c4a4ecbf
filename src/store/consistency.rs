//! What `sealpost admin check` reads of the database (all its SQL is here, like the rest): each
//! transfer's blob key and whether a link can still be redeemed, each link in an odd state, the
//! audit trail's indexes.

use sqlx::Row as _;

use super::{Store, StoreError};

/// A transfer as the checker sees it.
#[derive(Debug, Clone)]
pub struct CheckedTransfer {
    /// Its id.
    pub id: String,
    /// Its blob's key, while the blob must exist or is being purged (`None` once purged).
    pub object_key: Option<String>,
    /// How many of its links can still be redeemed (issued or leased): its blob must exist.
    pub live_links: u64,
    /// How many `upload.accepted` events name it (its log entry): exactly one.
    pub accepted_events: u64,
}

/// A link whose state the checker looks at closer: leased, used, or live on a purged transfer.
#[derive(Debug, Clone)]
pub struct CheckedLink {
    /// The link.
    pub id: String,
    /// Its transfer.
    pub transfer: String,
    /// `issued`, `leased`, `used`, `revoked` or `expired`.
    pub state: String,
    /// The lease it is under, if any.
    pub lease_id: Option<String>,
    /// The gateway holding that lease.
    pub lease_gateway: Option<String>,
    /// When that gateway was last seen alive (ms), if it is known.
    pub gateway_seen_at: Option<i64>,
    /// When it was used (ms).
    pub used_at: Option<i64>,
    /// Whether its transfer's blob was purged.
    pub purged: bool,
}

/// The audit trail's indexes: how many events, the lowest and the highest index.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditSpan {
    /// Events.
    pub count: u64,
    /// Lowest index (0 when the trail is whole from its start).
    pub min: Option<i64>,
    /// Highest index (`count - 1` when there are no gaps).
    pub max: Option<i64>,
}

impl Store {
    /// Every transfer with its blob key, live links and `upload.accepted` count.
    pub async fn checked_transfers(&self) -> Result<Vec<CheckedTransfer>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.object_key, \
                 (SELECT COUNT(*) FROM links l WHERE l.transfer_id = t.id AND l.state IN ('issued', 'leased')) AS live, \
                 (SELECT COUNT(*) FROM audit_events a WHERE a.transfer_id = t.id AND a.event = 'upload.accepted') AS accepted \
             FROM transfers t ORDER BY t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CheckedTransfer {
                id: r.get("id"),
                object_key: r.get("object_key"),
                live_links: u64::try_from(r.get::<i64, _>("live")).unwrap_or_default(),
                accepted_events: u64::try_from(r.get::<i64, _>("accepted")).unwrap_or_default(),
            })
            .collect())
    }

    /// Links that are leased, used, issued with a lease, or live on a purged transfer.
    pub async fn checked_links(&self) -> Result<Vec<CheckedLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.id, l.transfer_id, l.state, l.lease_id, l.lease_gateway, l.used_at, g.seen_at, \
                    CASE WHEN t.object_key IS NULL THEN 1 ELSE 0 END AS purged \
             FROM links l JOIN transfers t ON t.id = l.transfer_id LEFT JOIN gateways g ON g.id = l.lease_gateway \
             WHERE l.state IN ('leased', 'used') OR (l.state = 'issued' AND l.lease_id IS NOT NULL) \
                OR (l.state IN ('issued', 'leased') AND t.object_key IS NULL) ORDER BY l.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| CheckedLink {
                id: r.get("id"),
                transfer: r.get("transfer_id"),
                state: r.get("state"),
                lease_id: r.get("lease_id"),
                lease_gateway: r.get("lease_gateway"),
                gateway_seen_at: r.get("seen_at"),
                used_at: r.get("used_at"),
                purged: r.get::<i64, _>("purged") != 0,
            })
            .collect())
    }

    /// How many audit events there are, and their lowest and highest index.
    pub async fn audit_span(&self) -> Result<AuditSpan, StoreError> {
        let (count, min, max): (i64, Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(idx), MAX(idx) FROM audit_events").fetch_one(&self.pool).await?;
        Ok(AuditSpan { count: u64::try_from(count).unwrap_or_default(), min, max })
    }
}
