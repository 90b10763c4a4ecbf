//! Single sign-on on the wire: the providers a gateway offers, and the device authorization
//! grant (RFC 8628) through which `sealpost login --sso` gets a short-lived token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{Role, UserRef};

/// An identity provider people can sign in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "sso", "name": "HMPPS Entra ID"}))]
pub struct ProviderInfo {
    /// Its id (for `sealpost login --sso --provider ID`).
    pub id: String,
    /// Its name, as the sign-in page's button says it.
    pub name: String,
}

/// `GET /api/v1/sso`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"providers": [{"id": "sso", "name": "HMPPS Entra ID"}]}))]
pub struct ProviderList {
    /// Every configured provider (none when single sign-on is off).
    pub providers: Vec<ProviderInfo>,
}

/// `POST /api/v1/sso/device`: start signing a CLI in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "sso"}))]
pub struct DeviceRequest {
    /// The provider's id; may be left out when the gateway has only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9-]{1,32}$")]
    pub provider: Option<String>,
}

/// The provider's device authorization, passed on: show the person `user_code` and
/// `verification_uri`, then poll `POST /api/v1/sso/device/token` every `interval` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "provider": "sso",
    "device_code": "Xq2mGv0pQ8hWcB1yZ4kN7tR3sL6uE9aJ",
    "user_code": "WDJB-MJHT",
    "verification_uri": "https://login.example.gov.uk/device",
    "verification_uri_complete": "https://login.example.gov.uk/device?user_code=WDJB-MJHT",
    "expires_in": 600,
    "interval": 5
}))]
pub struct DeviceStarted {
    /// The provider's id.
    pub provider: String,
    /// The code to poll with (keep it to this CLI).
    pub device_code: String,
    /// The code the person types at the provider.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// A URL with the code already in it, when the provider gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

/// `POST /api/v1/sso/device/token`: one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "sso", "device_code": "Xq2mGv0pQ8hWcB1yZ4kN7tR3sL6uE9aJ"}))]
pub struct DevicePoll {
    /// The provider's id, from the device authorization.
    #[schema(pattern = "^[a-z0-9-]{1,32}$")]
    pub provider: String,
    /// The device code, from the device authorization.
    #[schema(min_length = 1, max_length = 2048)]
    pub device_code: String,
}

/// A token for the person who signed in, tied to that sign-in: it lives `expires_at` at most
/// and carries how they authenticated (policies see it as for a browser session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "token": "sp_7gH2kLmN9pQrStUvWxYz0aBcDeFgHiJkLmNoPqRsTuV",
    "token_id": "4f7c1d2e9a8b3c6d5e0f1a2b3c4d5e6f",
    "user": "hmpps/alice",
    "role": "recipient",
    "expires_at": "2025-03-01T21:30:00Z",
    "mfa": true
}))]
pub struct SsoToken {
    /// The API token (shown once).
    pub token: String,
    /// Its id, for `sealpost admin token revoke`.
    pub token_id: String,
    /// Whose it is.
    pub user: UserRef,
    /// Their role.
    pub role: Role,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether the sign-in counted as multi-factor.
    pub mfa: bool,
}
