//! Delivery reports on the wire: a recipient whose link was used up says, once, whether the
//! bundle decrypted.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::transfers::DeliveryOutcome;

/// `POST /api/v1/transfers/{id}/delivery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "failed", "reason": "digest_mismatch"}))]
pub struct ReportDelivery {
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
#[schema(example = json!({
    "transfer": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "status": "decrypted",
    "log_index": 44
}))]
pub struct DeliveryRecorded {
    /// The transfer.
    pub transfer: String,
    /// What was reported.
    pub status: DeliveryOutcome,
    /// The index of the `delivery.acknowledged` entry in the transparency log.
    pub log_index: u64,
}
