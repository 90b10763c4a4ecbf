//! The transparency log on the wire (its JSON side: the checkpoint, keys and tiles are plain
//! text and bytes in the C2SP formats): a transfer's receipts, and log key rotation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A proof that one of a transfer's events is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "event": "upload.accepted",
    "index": 41,
    "receipt": "c2sp.org/tlog-proof@v1\nextra dXBsb2FkLmFjY2VwdGVkIHRyYW5zZmVyPTRmOWMyYTdl\nindex 41\n3hSyRztiPgABhPRqQtl2mTWqu0E0R5Y3UbxHW6YyU1E=\n\nsealpost.example/log\n42\nrPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n\n— sealpost.example/log Gqy5bUo+ed7Hn5d1yTeDGWMHzCbWDBJYkjhMsw+eb6bQExM7MoYSeaS2Z2CrrdyoRZB4MrZq8D5l8ZxtiR9VL8WzEwI=\n"
}))]
pub struct Receipt {
    /// The event, such as `upload.accepted`, `transfer.approved`, `link.redeemed`,
    /// `delivery.acknowledged`, `transfer.recalled` or `blob.purged`.
    #[schema(example = "upload.accepted")]
    pub event: String,
    /// The entry's index in the log.
    pub index: u64,
    /// A C2SP tlog-proof of the entry against the current checkpoint.
    pub receipt: String,
    /// For a signed delivery (`delivery.acknowledged` with the recipient's signature): who
    /// signed, the salt of their name commitment, and the receipt of their signing key's
    /// registration; everything an auditor needs, with the log's key, to check offline that
    /// this person signed for this ciphertext (`sealpost receipt get` saves it as one file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_for: Option<SignerProof>,
}

/// Who signed a delivery, and the proof that the signing key is theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignerProof {
    /// The recipient who signed.
    pub by: crate::model::UserRef,
    /// Their name salt: `hex(HMAC-SHA256(name_salt, "ORG/NAME"))` is the `recipient` of the
    /// delivery entry and the `owner` of the key entry.
    pub name_salt: String,
    /// A C2SP tlog-proof of the `key.added` entry that registered the signing key.
    pub key_receipt: String,
}

/// The file `sealpost receipt get` writes for a signed delivery, and `sealpost receipt verify`
/// checks offline: the delivery's receipt, the signing key's receipt, and the name they bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedDeliveryReceipt {
    /// Always `sealpost.signed-delivery/v1`.
    pub format: String,
    /// Who signed for the delivery, `ORG/NAME`.
    pub signer: crate::model::UserRef,
    /// The signer's name salt (64 hex digits).
    pub name_salt: String,
    /// A C2SP tlog-proof of the `delivery.acknowledged` entry that carries the signed statement.
    pub delivery: String,
    /// A C2SP tlog-proof of the `key.added` entry of the signing key.
    pub key: String,
}

impl SignedDeliveryReceipt {
    /// The `format` value.
    pub const FORMAT: &'static str = "sealpost.signed-delivery/v1";
}

/// `GET /api/v1/transfers/{id}/receipts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "receipts": [
        {
            "event": "upload.accepted",
            "index": 41,
            "receipt": "c2sp.org/tlog-proof@v1\nextra dXBsb2FkLmFjY2VwdGVkIHRyYW5zZmVyPTRmOWMyYTdl\nindex 41\n3hSyRztiPgABhPRqQtl2mTWqu0E0R5Y3UbxHW6YyU1E=\n\nsealpost.example/log\n42\nrPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n\n— sealpost.example/log Gqy5bUo+ed7Hn5d1yTeDGWMHzCbWDBJYkjhMsw+eb6bQExM7MoYSeaS2Z2CrrdyoRZB4MrZq8D5l8ZxtiR9VL8WzEwI=\n"
        }
    ],
    "log_size": 42
}))]
pub struct ReceiptList {
    /// A receipt for each of the transfer's events the log has integrated, in log order.
    pub receipts: Vec<Receipt>,
    /// The size of the tree the receipts were made against.
    pub log_size: u64,
}

/// The answer to starting a log key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "current": "sealpost.example/log+5e6f7a8b+AfbC2gZkM0R3n8xq7Wz4Vd1TyLpQe9uHs6Ka5Nj2Bc0D",
    "active": [
        "sealpost.example/log+1a2b3c4d+AUdD9oi4zwzpEoPGGIG8hrDfq4xUqTJ0LZeTbn9TRXNn",
        "sealpost.example/log+5e6f7a8b+AfbC2gZkM0R3n8xq7Wz4Vd1TyLpQe9uHs6Ka5Nj2Bc0D"
    ]
}))]
pub struct KeyRotation {
    /// The new key's verifier key string.
    #[schema(example = "sealpost.example/log+1a2b3c4d+AUdD9oi4zwzpEoPGGIG8hrDfq4xUqTJ0LZeTbn9TRXNn")]
    pub current: String,
    /// Every key that signs checkpoints now, oldest first (the old one and the new one).
    pub active: Vec<String>,
}

/// `POST /api/v1/log/keys/retire`: which key stops signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key_id": "1a2b3c4d"}))]
pub struct RetireKey {
    /// The key's id: the 8 hex digits after the name in its verifier key string.
    #[schema(pattern = "^[0-9a-f]{8}$")]
    pub key_id: String,
}

/// The answer to retiring a log key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "current": "sealpost.example/log+5e6f7a8b+AfbC2gZkM0R3n8xq7Wz4Vd1TyLpQe9uHs6Ka5Nj2Bc0D"
}))]
pub struct KeyRetired {
    /// The verifier key string of the key that signs from now on.
    pub current: String,
}
