//! Routes between organisations, and the organisation facts policies read.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, append, from_ms, is_unique_violation, ms};
use crate::audit::{Event, EventKind};
use crate::ids::UserId;
use crate::policy::OrgFacts;
use crate::wire::routes::RouteInfo;

/// Looks an organisation's id up by name.
async fn org_id(tx: &mut sqlx::Transaction<'static, sqlx::Any>, name: &str) -> Result<String, StoreError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1").bind(name).fetch_optional(&mut **tx).await?;
    id.ok_or_else(|| StoreError::UnknownOrg(name.to_owned()))
}

impl Store {
    /// Adds a route; adding an existing route is an error.
    pub async fn add_route(
        &self,
        actor: &UserId,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<RouteInfo, StoreError> {
        let mut tx = self.write().await?;
        let (from_id, to_id) = (org_id(&mut tx, from).await?, org_id(&mut tx, to).await?);
        let inserted = sqlx::query("INSERT INTO routes (from_org, to_org, created_at) VALUES ($1, $2, $3)")
            .bind(&from_id)
            .bind(&to_id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::RouteExists(from.to_owned(), to.to_owned())),
            other => other?,
        };
        let event = Event::new(EventKind::RouteAdded).actor(actor).subject(from_id).field("to", to_id);
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(RouteInfo { from: from.to_owned(), to: to.to_owned(), created_at: now })
    }

    /// Removes a route.
    pub async fn remove_route(
        &self,
        actor: &UserId,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let (from_id, to_id) = (org_id(&mut tx, from).await?, org_id(&mut tx, to).await?);
        let removed = sqlx::query("DELETE FROM routes WHERE from_org = $1 AND to_org = $2")
            .bind(&from_id)
            .bind(&to_id)
            .execute(&mut *tx)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::UnknownRoute(from.to_owned(), to.to_owned()));
        }
        let event = Event::new(EventKind::RouteRemoved).actor(actor).subject(from_id).field("to", to_id);
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every route, by sending then receiving organisation.
    pub async fn list_routes(&self) -> Result<Vec<RouteInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.name AS from_name, t.name AS to_name, r.created_at FROM routes r \
             JOIN orgs f ON f.id = r.from_org JOIN orgs t ON t.id = r.to_org ORDER BY f.name, t.name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RouteInfo {
                from: r.get("from_name"),
                to: r.get("to_name"),
                created_at: from_ms(r.get("created_at")),
            })
            .collect())
    }

    /// Kind and routes of the named organisations (unknown names are skipped).
    pub async fn org_facts(&self, names: &[&str]) -> Result<Vec<OrgFacts>, StoreError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM orgs WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
            let Some(kind) = kind else { continue };
            let routes: Vec<String> = sqlx::query_scalar(
                "SELECT t.name FROM routes r JOIN orgs f ON f.id = r.from_org JOIN orgs t ON t.id = r.to_org \
                 WHERE f.name = $1 ORDER BY t.name",
            )
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
            out.push(OrgFacts { name: (*name).to_owned(), kind, routes });
        }
        Ok(out)
    }
}
