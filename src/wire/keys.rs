//! The key directory on the wire: registering your own keys, listing them, and anyone's keys
//! with the log receipts that prove the directory shows everybody the same ones.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{KeyInfo, UserRef};

/// `POST /api/v1/keys`: one of the caller's own public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}))]
pub struct NewKey {
    /// An age recipient (`age1…`, or a hybrid post-quantum `age1pq1…`), a `sealpost-signing` key,
    /// or an SSH public key where the gateway allows them. Never a private key: those are refused
    /// and never stored.
    pub recipient: String,
}

/// `GET /api/v1/keys`: the caller's own live keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "user": "hmpps/alice",
    "name_salt": "5b0e3c0d6f1f0c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c",
    "keys": [
        {
            "recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "stanza_type": "X25519",
            "fingerprint": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",
            "added_at": "2025-03-01T09:30:00Z"
        }
    ]
}))]
pub struct OwnKeys {
    /// The caller.
    pub user: UserRef,
    /// The caller's name salt (64 hex digits): log entries name the caller by
    /// `hex(HMAC-SHA256(name_salt, "ORG/NAME"))`, which `sealpost keys monitor` looks for.
    pub name_salt: String,
    /// Its live keys, oldest first.
    pub keys: Vec<KeyInfo>,
}

/// A key as the directory publishes it to anyone: the key and the receipt of its registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
    "stanza_type": "X25519",
    "fingerprint": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",
    "added_at": "2025-03-01T09:30:00Z",
    "receipt": "c2sp.org/tlog-proof@v1\nextra dXBsb2FkLmFjY2VwdGVkIHRyYW5zZmVyPTRmOWMyYTdl\nindex 41\n3hSyRztiPgABhPRqQtl2mTWqu0E0R5Y3UbxHW6YyU1E=\n\nsealpost.example/log\n42\nrPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n\n— sealpost.example/log Gqy5bUo+ed7Hn5d1yTeDGWMHzCbWDBJYkjhMsw+eb6bQExM7MoYSeaS2Z2CrrdyoRZB4MrZq8D5l8ZxtiR9VL8WzEwI=\n"
}))]
pub struct PublishedKey {
    /// The public recipient string (`age1…`, `age1pq1…`, or an SSH public key where allowed).
    #[schema(example = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")]
    pub recipient: String,
    /// The stanza type a file encrypted to this key carries (`X25519`, `mlkem768x25519` for a
    /// hybrid post-quantum key, `ssh-ed25519`, …), or `sealpost-signing` for a sender's signing
    /// key.
    #[schema(example = "X25519")]
    pub stanza_type: String,
    /// `sha256:` and the hex SHA-256 of the recipient string.
    pub fingerprint: String,
    /// When it was registered.
    pub added_at: DateTime<Utc>,
    /// A C2SP tlog-proof of the `key.added` log entry that registered it, so a sender can check
    /// that the key it encrypts to is the one the log shows everybody; null until the log has
    /// integrated the entry.
    pub receipt: Option<String>,
}

impl PublishedKey {
    /// A directory key with the receipt of its registration, if there is one yet.
    pub fn new(key: KeyInfo, receipt: Option<String>) -> Self {
        let KeyInfo { recipient, stanza_type, fingerprint, added_at } = key;
        Self { recipient, stanza_type, fingerprint, added_at, receipt }
    }
}

/// `GET /api/v1/keys/{org}/{name}`: a user's live keys, each with its receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "user": "hmpps/alice",
    "name_salt": "5b0e3c0d6f1f0c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c",
    "keys": [
        {
            "recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "stanza_type": "X25519",
            "fingerprint": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",
            "added_at": "2025-03-01T09:30:00Z",
            "receipt": "c2sp.org/tlog-proof@v1\nextra dXBsb2FkLmFjY2VwdGVkIHRyYW5zZmVyPTRmOWMyYTdl\nindex 41\n3hSyRztiPgABhPRqQtl2mTWqu0E0R5Y3UbxHW6YyU1E=\n\nsealpost.example/log\n42\nrPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n\n— sealpost.example/log Gqy5bUo+ed7Hn5d1yTeDGWMHzCbWDBJYkjhMsw+eb6bQExM7MoYSeaS2Z2CrrdyoRZB4MrZq8D5l8ZxtiR9VL8WzEwI=\n"
        }
    ]
}))]
pub struct UserKeys {
    /// Whose keys they are.
    pub user: UserRef,
    /// The user's name salt (64 hex digits): each key's `key.added` entry names its owner by
    /// `owner hex(HMAC-SHA256(name_salt, "ORG/NAME"))`, so a sender checks that the logged key is
    /// this user's.
    pub name_salt: String,
    /// The live keys, oldest first.
    pub keys: Vec<PublishedKey>,
}

/// The answer to removing a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"removed": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"}))]
pub struct KeyRemoved {
    /// The fingerprint of the key removed.
    pub removed: String,
}
