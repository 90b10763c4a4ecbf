//! The audit trail for compliance officers and administrators.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiQuery};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::model::UserRef;
use crate::policy::{Action, PolicyRequest, Resource, principal_facts};
use crate::store::{AuditFilter, StoreError};
use crate::wire::ErrorBody;
use crate::wire::audit::{AuditPage, AuditQuery};

/// The audit routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(audit))
}

/// Read the audit trail, filtered, a page at a time.
///
/// Whoever the policies permit `read_audit`: by default compliance officers and administrators.
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "audit", tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of events, oldest first.", body = AuditPage),
        (status = 400, description = "`bad_request`: the query string is not valid (a time that is not RFC 3339, a transfer id that is not one, `party` not `ORG/NAME`).", body = ErrorBody),
        (status = 403, description = "`forbidden`: no policy permits the caller to read the audit trail; `policy_denied`: a policy forbids it.", body = ErrorBody),
        (status = 404, description = "`not_found`: `party` names no user.", body = ErrorBody),
    ))]
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
    Ok(Json(AuditPage { events, next }))
}
