//! Accounts on the wire: who the caller is, organisations, users and API tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::model::{OrgKind, Role, UserRef};

/// `GET /api/v1/whoami`: the token's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"user": "hmpps/alice", "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "role": "recipient", "org_kind": "agency", "default_expiry_seconds": 259200}))]
pub struct Whoami {
    /// The user the token belongs to.
    pub user: UserRef,
    /// The user's server-made id: log entries name their actor by it.
    #[serde(default)]
    pub id: String,
    /// Its role.
    pub role: Role,
    /// The kind of its organisation.
    pub org_kind: OrgKind,
    /// How long an upload's links live when it names no `expires`, in seconds: the `expires`
    /// line of a signed manifest for such an upload (0 from a gateway too old to say).
    #[serde(default)]
    pub default_expiry_seconds: u64,
}

/// `POST /api/v1/orgs`: a new organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "acme", "kind": "contractor"}))]
pub struct NewOrg {
    /// Its name: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// `contractor`, `agency` or `compliance` (`operator` exists once, from the first start).
    #[schema(pattern = "^(contractor|agency|compliance)$")]
    pub kind: String,
}

/// An organisation, as created and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "acme", "kind": "contractor", "created_at": "2025-03-01T09:30:00Z"}))]
pub struct OrgInfo {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: OrgKind,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/orgs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "orgs": [
        {
            "name": "acme",
            "kind": "contractor",
            "created_at": "2025-03-01T09:30:00Z"
        },
        {
            "name": "hmpps",
            "kind": "agency",
            "created_at": "2025-03-01T09:30:00Z"
        }
    ]
}))]
pub struct OrgList {
    /// Every organisation, by name.
    pub orgs: Vec<OrgInfo>,
}

/// `POST /api/v1/users`: a new user and its first token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "acme/bob", "role": "sender", "token_lifetime": "30d"}))]
pub struct NewUser {
    /// `ORG/NAME`; the organisation must exist.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$")]
    pub user: String,
    /// `sender`, `recipient`, `compliance` or `admin`.
    #[schema(value_type = Role)]
    pub role: String,
    /// The first token's lifetime such as `30d`, or `never`; the gateway's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime: Option<String>,
    /// The person's email address: single sign-on matches the provider's verified `email` claim
    /// to it, and notifications go to it. Stored lower-cased; unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `POST /api/v1/bootstrap/claim`: the named administrator that the first start's bootstrap
/// token is exchanged for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "sealpost/jane", "email": "jane@example.gov.uk"}))]
pub struct Claim {
    /// `ORG/NAME` of the new administrator; the organisation must exist (the first start made
    /// `sealpost`).
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$")]
    pub user: String,
    /// The person's email address, so that they can sign in through single sign-on and get
    /// notifications. Stored lower-cased; unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A user, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"user": "acme/bob", "role": "sender", "created_at": "2025-03-01T09:30:00Z"}))]
pub struct UserInfo {
    /// `ORG/NAME`.
    pub user: UserRef,
    /// Its role.
    pub role: Role,
    /// Its email address, if one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "users": [
        {
            "user": "acme/bob",
            "role": "sender",
            "created_at": "2025-03-01T09:30:00Z"
        },
        {
            "user": "hmpps/alice",
            "role": "recipient",
            "created_at": "2025-03-01T09:30:00Z"
        }
    ]
}))]
pub struct UserList {
    /// Every user, by organisation and name.
    pub users: Vec<UserInfo>,
}

/// `POST /api/v1/tokens`: another token for an existing user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "acme/bob", "lifetime": "7d"}))]
pub struct NewToken {
    /// `ORG/NAME`.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$")]
    pub user: String,
    /// Lifetime such as `30d`, or `never`; the gateway's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<String>,
}

/// A freshly issued token: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "user": "acme/bob",
    "role": "sender",
    "token": "sp_mwiKDV2SFbOnBV-HSn3ehSeK55259WQJ2ydjcel8VZQ",
    "token_id": "5d1c9e2a7b3f4e8d9c0b1a2f3e4d5c6b",
    "expires_at": "2025-03-31T09:30:00Z"
}))]
pub struct IssuedToken {
    /// Whose token it is.
    pub user: UserRef,
    /// The user's role (set when the user was created with this token, null otherwise).
    pub role: Option<Role>,
    /// The secret, for `Authorization: Bearer …`; the gateway keeps only its hash.
    pub token: String,
    /// The token's public id, for listing and revocation.
    pub token_id: String,
    /// When it stops working, or null for never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An API token's metadata (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "5d1c9e2a7b3f4e8d9c0b1a2f3e4d5c6b",
    "user": "acme/bob",
    "created_at": "2025-03-01T09:30:00Z",
    "expires_at": "2025-03-31T09:30:00Z",
    "revoked_at": null,
    "kind": "service",
    "created_by": "sealpost/admin"
}))]
pub struct TokenInfo {
    /// The token's public id, for revocation.
    pub id: String,
    /// Whose token it is.
    pub user: UserRef,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// `service` (issued by an administrator, for service accounts and scripts), `sso` (issued
    /// to a person's CLI through single sign-on), `bootstrap` (the first start's token in
    /// `DATA/admin.token`) or `recovery` (issued on the server by `sealpost admin recover`).
    #[serde(default = "service_kind")]
    pub kind: String,
    /// Who issued it: the administrator (`service`), or the person themselves (`sso`); absent for
    /// the first administrator's token and tokens from before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserRef>,
}

fn service_kind() -> String {
    "service".to_owned()
}

/// `GET /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "tokens": [
        {
            "id": "5d1c9e2a7b3f4e8d9c0b1a2f3e4d5c6b",
            "user": "acme/bob",
            "created_at": "2025-03-01T09:30:00Z",
            "expires_at": "2025-03-31T09:30:00Z",
            "revoked_at": null,
            "kind": "service"
        }
    ]
}))]
pub struct TokenList {
    /// The tokens, oldest first.
    pub tokens: Vec<TokenInfo>,
}

/// `GET /api/v1/tokens?user=ORG/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Only this `ORG/NAME`'s tokens.
    #[param(example = "acme/bob", pattern = "^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$")]
    pub user: Option<String>,
}

/// The answer to a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"revoked": 1}))]
pub struct Revoked {
    /// For one token by id, 1 (revoking it again changes nothing); for a user, how many of its
    /// live tokens were revoked.
    pub revoked: u64,
}
