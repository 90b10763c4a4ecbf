//! The audit trail on the wire: a filtered page of events, oldest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::model::UserRef;

/// `GET /api/v1/audit?…`: which events to return.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this transfer's events (its 32-hex-digit id).
    #[param(example = "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b", pattern = "^[0-9a-f]{32}$")]
    pub transfer: Option<String>,
    /// Only events where this `ORG/NAME` acted or was acted on.
    #[param(example = "hmpps/alice", pattern = "^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$")]
    pub party: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339 upper bound (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// Sequence number to continue after (the previous page's `next`).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100; larger values are capped).
    pub limit: Option<u32>,
}

/// One recorded event, with its parties resolved to names where they are users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "seq": 7,
    "at": "2025-03-01T09:30:00Z",
    "event": "upload.accepted",
    "actor": "acme/bob",
    "transfer": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "subject": null,
    "code": null,
    "entry": "upload.accepted transfer=4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b"
}))]
pub struct AuditRow {
    /// Position in the trail (strictly increasing).
    pub seq: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The event name, such as `upload.accepted` or `link.redeemed`.
    #[schema(example = "upload.accepted")]
    pub event: String,
    /// Who did it, if a user did.
    pub actor: Option<UserRef>,
    /// The transfer it concerns.
    pub transfer: Option<String>,
    /// The other party, when it is a user.
    pub subject: Option<UserRef>,
    /// Why it was refused or ended (an error code or outcome).
    pub code: Option<String>,
    /// The canonical entry text, as the transparency log holds it.
    pub entry: String,
}

/// `GET /api/v1/audit`: one page of events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "events": [
        {
            "seq": 7,
            "at": "2025-03-01T09:30:00Z",
            "event": "upload.accepted",
            "actor": "acme/bob",
            "transfer": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
            "subject": null,
            "code": null,
            "entry": "upload.accepted transfer=4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b"
        }
    ],
    "next": null
}))]
pub struct AuditPage {
    /// The events, oldest first.
    pub events: Vec<AuditRow>,
    /// When the page is full: the `after` that fetches the next one; null on the last page.
    pub next: Option<i64>,
}
