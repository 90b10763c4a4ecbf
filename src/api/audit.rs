//! The audit trail for compliance officers and administrators.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use super::auth::Caller;
use super::error::{ApiError, ApiQuery};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::model::UserRef;
use crate::policy::{Action, PolicyRequest, Resource, principal_facts};
use crate::store::{AuditFilter, StoreError};
use crate::wire::audit::{AuditPage, AuditQuery};

/// The audit routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/api/v1/audit", get(audit))
}

async fn audit(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
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
    let filter = AuditFilter { transfer, party, since: q.since, until: q.until, after: q.after, limit };
    let events = gw.store.audit(&filter).await?;
    let next = (events.len() == limit as usize).then(|| events.last().map(|e| e.seq)).flatten();
    Ok(Json(AuditPage { events, next }))
}
