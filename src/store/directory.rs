//! Who can be addressed: organisations and their recipients, for the send page and its API.

use sqlx::Row as _;

use super::{Store, StoreError};
use crate::wire::directory::{Directory, DirectoryOrg};

impl Store {
    /// Who can be addressed: every organisation with users of the recipient role, and those
    /// users, by name.
    pub async fn directory(&self) -> Result<Directory, StoreError> {
        let rows = sqlx::query(
            "SELECT o.name AS org, o.kind, u.name FROM users u JOIN orgs o ON o.id = u.org_id \
             WHERE u.role = 'recipient' ORDER BY o.name, u.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut orgs: Vec<DirectoryOrg> = Vec::new();
        for r in rows {
            let org: String = r.get("org");
            match orgs.last_mut() {
                Some(last) if last.name == org => last.users.push(r.get("name")),
                _ => orgs.push(DirectoryOrg {
                    name: org,
                    kind: r.get::<String, _>("kind").parse()?,
                    users: vec![r.get("name")],
                }),
            }
        }
        Ok(Directory { orgs })
    }
}
