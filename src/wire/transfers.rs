//! Transfers on the wire: the upload answer with its links, the sender's view, the inbox,
//! recall and approval answers, and redemption.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Digest;
use crate::model::{Classification, UserRef};

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Its links work: the recipients can collect it.
    Available,
    /// Held until a compliance officer (not the sender) approves it; its links do not work yet.
    AwaitingApproval,
    /// A compliance officer rejected it: its links are revoked and its ciphertext deleted.
    Rejected,
    /// Its sender (or an administrator) recalled it: unused links are revoked.
    Recalled,
}

impl TransferStatus {
    /// The status as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Rejected => "rejected",
            Self::Recalled => "recalled",
        }
    }
}

impl std::fmt::Display for TransferStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient's one-time link in the upload answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "recipient": "hmpps/alice",
    "url": "https://sealpost.example/d#q2w3e4r5t6y7u8i9o0p1a2s3d4f5g6h7j8k9l0z1x2c",
    "expires_at": "2025-03-04T09:30:00Z"
}))]
pub struct LinkAnswer {
    /// The recipient.
    pub recipient: UserRef,
    /// `BASE/d#TOKEN`: the token is in the fragment, which browsers never send to a server.
    #[schema(example = "https://sealpost.example/d#q2w3e4r5t6y7u8i9o0p1a2s3d4f5g6h7j8k9l0z1x2c")]
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// The answer to an accepted upload (`201` available, `202` held for approval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "status": "available",
    "policies": [
        "release-by-default",
        "senders-upload"
    ],
    "receipt": "c2sp.org/tlog-proof@v1\nextra dXBsb2FkLmFjY2VwdGVkIHRyYW5zZmVyPTRmOWMyYTdl\nindex 41\n3hSyRztiPgABhPRqQtl2mTWqu0E0R5Y3UbxHW6YyU1E=\n\nsealpost.example/log\n42\nrPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n\n— sealpost.example/log Gqy5bUo+ed7Hn5d1yTeDGWMHzCbWDBJYkjhMsw+eb6bQExM7MoYSeaS2Z2CrrdyoRZB4MrZq8D5l8ZxtiR9VL8WzEwI=\n",
    "size": 1048576,
    "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "classification": "OFFICIAL",
    "expires_at": "2025-03-04T09:30:00Z",
    "links": [
        {
            "recipient": "hmpps/alice",
            "url": "https://sealpost.example/d#q2w3e4r5t6y7u8i9o0p1a2s3d4f5g6h7j8k9l0z1x2c",
            "expires_at": "2025-03-04T09:30:00Z"
        }
    ]
}))]
pub struct UploadAnswer {
    /// The transfer's id.
    #[schema(example = "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b")]
    pub id: String,
    /// `available`, or `awaiting_approval` when a policy holds it for a compliance officer.
    pub status: TransferStatus,
    /// The policies that released (or held) it.
    pub policies: Vec<String>,
    /// Proof of upload: a C2SP tlog-proof of the `upload.accepted` log entry. Absent when the
    /// log did not integrate the entry in time; `GET /api/v1/transfers/{id}/receipts` has it later.
    pub receipt: Option<String>,
    /// Ciphertext bytes received.
    pub size: u64,
    /// SHA-256 of the ciphertext as received.
    pub digest: Digest,
    /// The transfer's classification.
    pub classification: Classification,
    /// When the links expire.
    pub expires_at: DateTime<Utc>,
    /// One link per recipient.
    pub links: Vec<LinkAnswer>,
}

/// A link's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Waiting to be collected.
    Issued,
    /// A download is running.
    Leased,
    /// Collected: the last byte went out.
    Used,
    /// Recalled or rejected.
    Revoked,
    /// Not collected in time.
    Expired,
}

impl LinkState {
    /// The state as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Leased => "leased",
            Self::Used => "used",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// A recipient's delivery report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The bundle decrypted and its digest matched.
    Decrypted,
    /// It did not.
    Failed,
}

impl DeliveryOutcome {
    /// The outcome as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decrypted => "decrypted",
            Self::Failed => "failed",
        }
    }
}

/// One link as the sender sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "recipient": "hmpps/alice",
    "state": "used",
    "expires_at": "2025-03-04T09:30:00Z",
    "used_at": "2025-03-01T10:02:11Z",
    "acknowledged": "decrypted",
    "signed_for": {"by": "hmpps/alice", "at": "2025-03-01T10:02:30Z", "key": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"}
}))]
pub struct LinkView {
    /// The recipient.
    pub recipient: UserRef,
    /// Its state.
    pub state: LinkState,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was used up, if it was.
    pub used_at: Option<DateTime<Utc>>,
    /// The recipient's delivery report, if they sent one.
    pub acknowledged: Option<DeliveryOutcome>,
    /// Who signed for the delivery, when and with which key; null when the report was not
    /// signed (or there is none).
    #[serde(default)]
    pub signed_for: Option<SignedFor>,
}

/// A signed delivery as the sender sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"by": "hmpps/alice", "at": "2025-03-01T10:02:30Z", "key": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"}))]
pub struct SignedFor {
    /// The recipient who signed.
    pub by: UserRef,
    /// The time in the signed statement.
    pub at: DateTime<Utc>,
    /// The fingerprint of the signing key.
    pub key: String,
}

/// A transfer as its sender (or an administrator) sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "sender": "acme/bob",
    "size": 1048576,
    "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "classification": "OFFICIAL",
    "created_at": "2025-03-01T09:30:00Z",
    "expires_at": "2025-03-04T09:30:00Z",
    "status": "available",
    "decided_by": null,
    "recalled_at": null,
    "purged_at": null,
    "links": [
        {
            "recipient": "hmpps/alice",
            "state": "used",
            "expires_at": "2025-03-04T09:30:00Z",
            "used_at": "2025-03-01T10:02:11Z",
            "acknowledged": "decrypted",
            "signed_for": null
        }
    ]
}))]
pub struct TransferView {
    /// Its id.
    pub id: String,
    /// Who sent it.
    pub sender: UserRef,
    /// Ciphertext bytes.
    pub size: u64,
    /// SHA-256 of the ciphertext.
    pub digest: Digest,
    /// Its classification.
    pub classification: Classification,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When its links expire.
    pub expires_at: DateTime<Utc>,
    /// Where it stands.
    pub status: TransferStatus,
    /// Who approved or rejected it, if anyone did.
    pub decided_by: Option<UserRef>,
    /// When it was recalled, if it was.
    pub recalled_at: Option<DateTime<Utc>>,
    /// When its ciphertext was deleted, if it was.
    pub purged_at: Option<DateTime<Utc>>,
    /// Its links, one per recipient.
    pub links: Vec<LinkView>,
}

/// Where a waiting bundle stands for its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Ready to collect.
    Issued,
    /// A download is running.
    Leased,
    /// Held for a compliance officer's approval: not collectable yet.
    AwaitingApproval,
}

/// A bundle waiting for the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "transfer": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "from": "acme/bob",
    "size": 1048576,
    "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "classification": "OFFICIAL",
    "created_at": "2025-03-01T09:30:00Z",
    "expires_at": "2025-03-04T09:30:00Z",
    "state": "issued"
}))]
pub struct InboxItem {
    /// The transfer.
    pub transfer: String,
    /// Who sent it.
    pub from: UserRef,
    /// Ciphertext bytes.
    pub size: u64,
    /// SHA-256 of the ciphertext.
    pub digest: Digest,
    /// Its classification.
    pub classification: Classification,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When the link expires.
    pub expires_at: DateTime<Utc>,
    /// Where it stands.
    pub state: InboxState,
}

/// `GET /api/v1/inbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "transfers": [
        {
            "transfer": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
            "from": "acme/bob",
            "size": 1048576,
            "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "classification": "OFFICIAL",
            "created_at": "2025-03-01T09:30:00Z",
            "expires_at": "2025-03-04T09:30:00Z",
            "state": "issued"
        }
    ]
}))]
pub struct Inbox {
    /// What waits, oldest first.
    pub transfers: Vec<InboxItem>,
}

/// The answer to a recall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "status": "recalled",
    "links_revoked": 1,
    "purged": true
}))]
pub struct RecallAnswer {
    /// The transfer.
    pub id: String,
    /// Always `recalled`.
    pub status: TransferStatus,
    /// How many unused links were revoked now.
    pub links_revoked: u64,
    /// Whether the ciphertext is deleted already (otherwise the sweeper deletes it soon).
    pub purged: bool,
}

/// The answer to an approval or rejection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "status": "available",
    "decided_by": "dpo/olga",
    "policies": [
        "compliance-approves",
        "release-by-default"
    ],
    "links_revoked": 0,
    "purged": false
}))]
pub struct DecisionAnswer {
    /// The transfer.
    pub id: String,
    /// `available`, `rejected`, or still `awaiting_approval` when policy wants more.
    pub status: TransferStatus,
    /// Who decided.
    pub decided_by: UserRef,
    /// The policies that decided the release.
    pub policies: Vec<String>,
    /// Links revoked (on rejection).
    pub links_revoked: u64,
    /// Whether the ciphertext is deleted already (on rejection).
    pub purged: bool,
}

/// `POST /api/v1/redeem`: exactly one of `token` and `transfer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "q2w3e4r5t6y7u8i9o0p1a2s3d4f5g6h7j8k9l0z1x2c"}))]
pub struct RedeemRequest {
    /// The link token (the part after `#`), or the whole link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "q2w3e4r5t6y7u8i9o0p1a2s3d4f5g6h7j8k9l0z1x2c")]
    pub token: Option<String>,
    /// Instead of a token: the transfer whose link addressed to the caller is to be collected
    /// (a signed-in recipient collecting from the inbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
}

/// Where an unfinished resumable upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Bytes are still expected.
    Uploading,
}

/// `GET /api/v1/uploads/{id}` of an unfinished upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "status": "uploading",
    "offset": 67108864,
    "length": 268435456
}))]
pub struct UploadProgress {
    /// The upload's id (the transfer it becomes takes it).
    pub id: String,
    /// Always `uploading`.
    pub status: UploadState,
    /// Bytes the gateway holds durably.
    pub offset: u64,
    /// Bytes declared in `Upload-Length`.
    pub length: u64,
}

/// `GET /api/v1/uploads/{id}`: the progress of an unfinished upload, the upload answer (with
/// links) for a while after completion, or the transfer's view after that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = json!({
    "id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "status": "uploading",
    "offset": 67108864,
    "length": 268435456
}))]
pub enum UploadLookup {
    /// Completed, answered with the links.
    Completed(UploadAnswer),
    /// Completed, answered with the transfer's view (the links are no longer shown).
    Transfer(TransferView),
    /// Still uploading.
    Progress(UploadProgress),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelled(v: impl Serialize) -> String {
        serde_json::to_value(v).expect("serialise").as_str().expect("a string").to_owned()
    }

    #[test]
    fn states_and_outcomes_print_as_they_serialise() {
        use LinkState::*;
        for s in [Issued, Leased, Used, Revoked, Expired] {
            assert_eq!(s.as_str(), spelled(s));
        }
        for s in [DeliveryOutcome::Decrypted, DeliveryOutcome::Failed] {
            assert_eq!(s.as_str(), spelled(s));
        }
        use TransferStatus::*;
        for s in [Available, AwaitingApproval, Rejected, Recalled] {
            assert_eq!(s.as_str(), spelled(s));
        }
    }
}
