//! What a sender sent: `GET /api/v1/transfers`, newest first, each with where it stands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TransferStatus;
use crate::model::{Classification, UserRef};

/// Where a sent transfer stands, as its sender sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SentState {
    /// At least one recipient can still collect it.
    Waiting,
    /// Every link that is no longer waiting was collected (at least one was).
    Collected,
    /// No link was collected and none can be any more.
    Expired,
    /// Its sender (or an administrator) recalled it.
    Recalled,
    /// Held until a compliance officer approves it.
    AwaitingApproval,
    /// A compliance officer rejected it.
    Rejected,
}

impl SentState {
    /// The state as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Collected => "collected",
            Self::Expired => "expired",
            Self::Recalled => "recalled",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Rejected => "rejected",
        }
    }

    /// Whether recalling still changes something (a link could still be used).
    pub fn recallable(self) -> bool {
        matches!(self, Self::Waiting | Self::AwaitingApproval)
    }
}

/// One transfer the caller sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SentTransfer {
    /// Its id.
    pub id: String,
    /// Its recipients.
    pub recipients: Vec<UserRef>,
    /// Ciphertext bytes.
    pub size: u64,
    /// Its classification.
    pub classification: Classification,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When its links expire.
    pub expires_at: DateTime<Utc>,
    /// Its status (as in the transfer's view).
    pub status: TransferStatus,
    /// Where it stands for its sender.
    pub state: SentState,
}

/// `GET /api/v1/transfers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"transfers": [{"id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b", "recipients": ["hmpps/alice"],
    "size": 4817, "classification": "OFFICIAL", "created_at": "2026-12-05T10:00:00Z",
    "expires_at": "2026-12-08T10:00:00Z", "status": "available", "state": "waiting"}]}))]
pub struct Sent {
    /// What the caller sent, newest first (at most the latest 500).
    pub transfers: Vec<SentTransfer>,
}
