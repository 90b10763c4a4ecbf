//! The audit trail for compliance officers and administrators.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiQuery};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::model::UserRef;
use crate::policy::{Action, PolicyRequest, Resource, principal_facts};
use crate::store::{AuditFilter, StoreError};

/// The audit routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/api/v1/audit", get(audit))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only this transfer's events.
    transfer: Option<String>,
    /// Only events where this `ORG/NAME` acted or was acted on.
    party: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    since: Option<DateTime<Utc>>,
    /// RFC 3339 upper bound (exclusive).
    until: Option<DateTime<Utc>>,
    /// Sequence number to continue after (from `next`).
    after: Option<i64>,
    /// Page size, at most 1000 (default 100).
    limit: Option<u32>,
}

async fn audit(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = PolicyRequest {
        action: Action::ReadAudit,
        principal: principal_facts(&caller.0),
        resource: Resource::AuditTrail,
        orgs: gw.store.org_facts(&[caller.0.user.org.as_str()]).await?,
        context: serde_json::Map::new(),
    };
    gw.gate.authorize(&request, &format!("`{}` to read the audit trail", caller.0.user), gw.clock.now())?;
    let transfer = q
        .transfer
        .as_deref()
        .map(|t| TransferId::parse(t).ok_or_else(|| ApiError::bad_request(format!("`{t}` is not a transfer id"))))
        .transpose()?;
    let party = match q.party.as_deref() {
        None => None,
        Some(p) => {
            let user: UserRef = p.parse()?;
            match gw.store.user_id(&user).await {
                Ok(id) => Some(id),
                Err(StoreError::UnknownUser(u)) => return Err(ApiError::not_found(format!("there is no user `{u}`"))),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = AuditFilter {
        transfer,
        party,
        since: q.since,
        until: q.until,
        after: q.after,
        limit,
        ..AuditFilter::default()
    };
    let events = gw.store.audit(&filter).await?;
    let next = (events.len() == limit as usize).then(|| events.last().map(|e| e.seq)).flatten();
    Ok(Json(json!({ "events": events, "next": next })))
}
