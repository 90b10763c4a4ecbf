//! Delivery reports on the wire: a recipient whose link was used up says, once, whether the
//! bundle decrypted.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::transfers::DeliveryOutcome;

/// `POST /api/v1/transfers/{id}/delivery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "status": "decrypted",
    "statement": "sealpost.delivery/v1\ntransfer 4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b\ndigest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nrecipient hmpps/alice\ntime 2025-03-01T10:02:30Z\ncheckpoint 42 rPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n",
    "signature": "Gqy5bUo+ed7Hn5d1yTeDGWMHzCbWDBJYkjhMsw+eb6bQExM7MoYSeaS2Z2CrrdyoRZB4MrZq8D5l8ZxtiR9VL8WzEw==",
    "key": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
}))]
pub struct ReportDelivery {
    /// Whether the bundle decrypted and its digest matched.
    pub status: DeliveryOutcome,
    /// For `failed` only: why, as a code of lowercase letters, digits and `_` (at most 64),
    /// never free text (it goes into the transparency log). `unspecified` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9_]{1,64}$")]
    pub reason: Option<String>,
    /// For `decrypted` only, to sign for the delivery: the delivery statement
    /// (`sealpost.delivery/v1`: transfer, digest, recipient, time, checkpoint), exactly as signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The Ed25519 signature of `statement`, standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The fingerprint (`sha256:…`) of the caller's `sealpost-signing` key that made `signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub key: Option<String>,
}

/// The answer to a delivery report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "transfer": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "status": "decrypted",
    "log_index": 44,
    "signed": true
}))]
pub struct DeliveryRecorded {
    /// The transfer.
    pub transfer: String,
    /// What was reported.
    pub status: DeliveryOutcome,
    /// The index of the `delivery.acknowledged` entry in the transparency log.
    pub log_index: u64,
    /// Whether the report was signed for (it carries the recipient's signed statement).
    pub signed: bool,
}
