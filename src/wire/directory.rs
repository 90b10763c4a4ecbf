//! Who can be addressed: `GET /api/v1/directory`, organisations with their recipients.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::OrgKind;

/// An organisation and the users in it who receive transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DirectoryOrg {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: OrgKind,
    /// Its users with the recipient role, by name (address them as `ORG/NAME`).
    pub users: Vec<String>,
}

/// `GET /api/v1/directory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"orgs": [{"name": "hmpps", "kind": "agency", "users": ["alice", "bob"]}]}))]
pub struct Directory {
    /// Organisations with at least one recipient, by name.
    pub orgs: Vec<DirectoryOrg>,
}
