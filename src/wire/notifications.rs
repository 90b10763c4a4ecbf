//! Notifications on the wire: a user's own choices (`/api/v1/notifications`) and organisations'
//! webhook endpoints (`/api/v1/webhooks`, administrators).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One kind of notification and whether the caller gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "kind": "transfer.collected",
    "description": "A recipient collected a bundle you sent.",
    "optional": true,
    "on": false
}))]
pub struct NotificationSetting {
    /// The kind (`transfer.waiting`, `transfer.collected`, `key.added`, …).
    pub kind: String,
    /// When it is sent.
    pub description: String,
    /// Whether the caller may turn it off.
    pub optional: bool,
    /// Whether the caller gets it.
    pub on: bool,
}

/// `GET /api/v1/notifications`: every kind, and whether the caller gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "email": "alice@hmpps.example",
    "notifications": [
        {
            "kind": "transfer.waiting",
            "description": "A bundle is waiting for you to collect.",
            "optional": false,
            "on": true
        },
        {
            "kind": "transfer.collected",
            "description": "A recipient collected a bundle you sent.",
            "optional": true,
            "on": false
        }
    ]
}))]
pub struct NotificationSettings {
    /// The address email goes to (`None`: the caller has none, and gets no email).
    pub email: Option<String>,
    /// Every kind.
    pub notifications: Vec<NotificationSetting>,
}

/// `PUT /api/v1/notifications`: the optional kinds the caller turns off (every other kind is on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"off": ["transfer.collected", "transfer.expiring"]}))]
pub struct NotificationChoice {
    /// Optional kinds to turn off; a kind that is not optional is refused.
    pub off: Vec<String>,
}

/// `POST /api/v1/webhooks`: register an endpoint for an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"org": "hmpps", "url": "https://cases.hmpps.example/sealpost-events"}))]
pub struct NewWebhook {
    /// The organisation whose transfers and keys it hears about.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub org: String,
    /// Where deliveries are posted: `https://…` (`http://` only to a loopback address).
    pub url: String,
}

/// A registered webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "5f0c6b1e2d3a4c5b6a7980f1e2d3c4b5",
    "org": "hmpps",
    "url": "https://cases.hmpps.example/sealpost-events",
    "created_at": "2025-03-01T09:30:00Z"
}))]
pub struct WebhookInfo {
    /// Its id.
    pub id: String,
    /// The organisation.
    pub org: String,
    /// Where deliveries are posted.
    pub url: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// The answer to registering an endpoint: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "webhook": {
        "id": "5f0c6b1e2d3a4c5b6a7980f1e2d3c4b5",
        "org": "hmpps",
        "url": "https://cases.hmpps.example/sealpost-events",
        "created_at": "2025-03-01T09:30:00Z"
    },
    "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD3BQ0wXZMqRE="
}))]
pub struct WebhookCreated {
    /// The endpoint.
    pub webhook: WebhookInfo,
    /// The signing secret (Standard Webhooks `whsec_…`), shown this once.
    pub secret: String,
}

/// `GET /api/v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "webhooks": [
        {
            "id": "5f0c6b1e2d3a4c5b6a7980f1e2d3c4b5",
            "org": "hmpps",
            "url": "https://cases.hmpps.example/sealpost-events",
            "created_at": "2025-03-01T09:30:00Z"
        }
    ]
}))]
pub struct WebhookList {
    /// Every live endpoint.
    pub webhooks: Vec<WebhookInfo>,
}

/// The answer to removing an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "removed": {
        "id": "5f0c6b1e2d3a4c5b6a7980f1e2d3c4b5",
        "org": "hmpps",
        "url": "https://cases.hmpps.example/sealpost-events",
        "created_at": "2025-03-01T09:30:00Z"
    }
}))]
pub struct WebhookRemoved {
    /// The endpoint removed.
    pub removed: WebhookInfo,
}
