//! Health on the wire: `GET /healthz` (liveness) and `GET /readyz` (readiness).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the gateway is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Its process serves requests.
    Ok,
}

/// `GET /healthz`: the gateway's process is alive (liveness; readiness is [`Readiness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// Always `ok`.
    pub status: HealthStatus,
}

/// `GET /readyz`: whether this gateway can serve now, check by check. 200 when every check is
/// `ok`, 503 (with `Retry-After`) when any is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"ready": false, "checks": {"database": "ok", "blobs": "the blob store does not answer", "log": "ok"}, "sequencer": true}))]
pub struct Readiness {
    /// True when every check is `ok`.
    pub ready: bool,
    /// Each dependency's state.
    pub checks: ReadinessChecks,
    /// True while this gateway is the log's sequencer: of the gateways sharing a database, one
    /// at a time writes the log (the others serve it and take over when it stops).
    pub sequencer: bool,
}

/// What each check found: `ok`, or what is wrong (the cause goes to the gateway's own log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadinessChecks {
    /// The database answers a query.
    pub database: String,
    /// The blob store answers (a `HEAD` of its marker object, or its directories are there).
    pub blobs: String,
    /// The transparency log's last round succeeded (read, and on the sequencer, written).
    pub log: String,
}

impl ReadinessChecks {
    /// What a check that passed says.
    pub const OK: &'static str = "ok";

    /// Whether every check passed.
    pub fn all_ok(&self) -> bool {
        [&self.database, &self.blobs, &self.log].iter().all(|c| c.as_str() == Self::OK)
    }
}
