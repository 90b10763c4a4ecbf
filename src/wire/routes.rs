//! Routes between organisations (who may send to whom) and the policy set, on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/routes`: let one organisation send to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "acme", "to": "hmpps"}))]
pub struct NewRoute {
    /// The sending organisation.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub from: String,
    /// The receiving organisation.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub to: String,
}

/// A route: `from` may send to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"from": "acme", "to": "hmpps", "created_at": "2025-03-01T09:30:00Z"}))]
pub struct RouteInfo {
    /// The sending organisation.
    pub from: String,
    /// The receiving organisation.
    pub to: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "routes": [
        {
            "from": "acme",
            "to": "hmpps",
            "created_at": "2025-03-01T09:30:00Z"
        }
    ]
}))]
pub struct RouteList {
    /// Every route.
    pub routes: Vec<RouteInfo>,
}

/// The two ends of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"from": "acme", "to": "hmpps"}))]
pub struct RouteEnds {
    /// The sending organisation.
    pub from: String,
    /// The receiving organisation.
    pub to: String,
}

/// The answer to removing a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"removed": {"from": "acme", "to": "hmpps"}}))]
pub struct RouteRemoved {
    /// The route removed.
    pub removed: RouteEnds,
}

/// The policy set in force: `GET /api/v1/policy`, and the answer to a reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "source": "/etc/sealpost/policies",
    "digest": "sha256:1c3f0a6e9b2d4c8e7f5a3b1d0c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e"
}))]
pub struct PolicyInfo {
    /// Where the policies come from: a directory, or the built-in set.
    pub source: String,
    /// SHA-256 of the policy set's text.
    pub digest: String,
}
