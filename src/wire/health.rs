//! Health on the wire: `GET /healthz`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the gateway is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// It reaches its database and serves requests.
    Ok,
}

/// `GET /healthz` when the gateway is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// Always `ok` (a gateway that is not answers 503 `unavailable`).
    pub status: HealthStatus,
}
