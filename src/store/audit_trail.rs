//! Reading the audit trail back, filtered.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, from_ms, ms};
use crate::ids::{TransferId, UserId};
use crate::model::UserRef;
use crate::wire::audit::AuditRow;

/// Which events to return.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events about this transfer.
    pub transfer: Option<TransferId>,
    /// Only events where this user is the actor or the subject.
    pub party: Option<UserId>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events with a sequence number above this (for paging).
    pub after: Option<i64>,
    /// Only events with a sequence number below this (for paging newest first).
    pub before: Option<i64>,
    /// Only events where a user of this organisation is the actor or the subject, or the
    /// organisation itself is the subject.
    pub org: Option<String>,
    /// Only events of this kind (`upload.accepted`, …).
    pub event: Option<String>,
    /// Newest first (the audit pages) instead of oldest first (the API).
    pub newest_first: bool,
    /// At most this many (capped at 1000).
    pub limit: u32,
}

impl Store {
    /// Events matching `filter`, oldest first (or newest first when the filter says so).
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT a.seq, a.at, a.event, a.transfer_id, a.code, a.entry, \
                    ao.name AS actor_org, au.name AS actor_name, so.name AS subject_org, su.name AS subject_name \
             FROM audit_events a \
             LEFT JOIN users au ON au.id = a.actor_id LEFT JOIN orgs ao ON ao.id = au.org_id \
             LEFT JOIN users su ON su.id = a.subject_id LEFT JOIN orgs so ON so.id = su.org_id \
             WHERE ($1 IS NULL OR a.transfer_id = $1) \
               AND ($2 IS NULL OR a.actor_id = $2 OR a.subject_id = $2) \
               AND ($3 IS NULL OR a.at >= $3) AND ($4 IS NULL OR a.at < $4) AND ($5 IS NULL OR a.seq > $5) \
               AND ($7 IS NULL OR a.seq < $7) AND ($8 IS NULL OR a.event = $8) \
               AND ($9 IS NULL OR ao.name = $9 OR so.name = $9 \
                    OR a.subject_id = (SELECT id FROM orgs WHERE name = $9)) \
             ORDER BY a.seq {order} LIMIT $6"
        );
        // `order` is one of two constants: nothing from the request reaches the SQL text.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.transfer.as_ref().map(|t| t.as_str().to_owned()))
            .bind(filter.party.as_ref().map(|p| p.as_str().to_owned()))
            .bind(filter.since.map(ms))
            .bind(filter.until.map(ms))
            .bind(filter.after)
            .bind(i64::from(filter.limit.clamp(1, 1000)))
            .bind(filter.before)
            .bind(filter.event.clone())
            .bind(filter.org.clone())
            .fetch_all(&self.pool)
            .await?;
        let name = |org: Option<String>, user: Option<String>| match (org, user) {
            (Some(o), Some(u)) => UserRef::new(&o, &u).ok(),
            _ => None,
        };
        Ok(rows
            .into_iter()
            .map(|r| AuditRow {
                seq: r.get("seq"),
                at: from_ms(r.get("at")),
                event: r.get("event"),
                actor: name(r.get("actor_org"), r.get("actor_name")),
                transfer: r.get("transfer_id"),
                subject: name(r.get("subject_org"), r.get("subject_name")),
                code: r.get("code"),
                entry: r.get("entry"),
            })
            .collect())
    }

    /// A user's id by name, for audit filters.
    pub async fn user_id(&self, user: &UserRef) -> Result<UserId, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = super::accounts::user_id(&mut tx, user).await?;
        tx.commit().await?;
        Ok(id)
    }
}
