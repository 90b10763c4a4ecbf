//! Delivery reports on the wire: a recipient whose link was used up says, once, whether the
//! bundle decrypted.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::transfers::DeliveryOutcome;

/// `POST /api/v1/transfers/{id}/delivery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "failed", "reason": "digest_mismatch"}))]
pub struct DeliveryReport {
    /// Whether the bundle decrypted and its digest matched.
    pub status: DeliveryOutcome,
    /// For `failed` only: why, as a code of lowercase letters, digits and `_` (at most 64),
    /// never free text (it goes into the transparency log). `unspecified` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9_]{1,64}$")]
    pub reason: Option<String>,
}

/// The answer to a delivery report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryRecorded {
    /// The transfer.
    pub transfer: String,
    /// What was reported.
    pub status: DeliveryOutcome,
    /// The index of the `delivery.acknowledged` entry in the transparency log.
    pub log_index: u64,
}
