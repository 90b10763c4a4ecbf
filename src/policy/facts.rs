//! What policies see: users, organisations, transfers and request context, turned into Cedar
//! entities and context JSON. The server fills these from the store; policy tests fill them from
//! a TOML "world"; both go through the same conversion.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The actions policies decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Upload a bundle to one recipient.
    Upload,
    /// Release an accepted transfer to its recipients (or hold it for approval).
    Release,
    /// Download a transfer through a link.
    Download,
    /// Recall a transfer.
    Recall,
    /// Approve or reject a held transfer.
    Approve,
    /// Read the audit trail.
    ReadAudit,
    /// Administer the gateway: organisations, users, tokens, routes, policies, log keys.
    Administer,
}

impl Action {
    /// The Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Release => "release",
            Self::Download => "download",
            Self::Recall => "recall",
            Self::Approve => "approve",
            Self::ReadAudit => "read_audit",
            Self::Administer => "administer",
        }
    }
}

/// A user as policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacts {
    /// Entity id (the server's user id; in policy tests, the name).
    pub id: String,
    /// `ORG/NAME`.
    pub name: String,
    /// `sender`, `recipient`, `compliance` or `admin`.
    pub role: String,
    /// The organisation's name.
    pub org: String,
    /// How the user authenticated, when they are the one asking: the request's
    /// `context.authentication`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthFacts>,
}

/// How the caller authenticated, as policies see it (`context.authentication`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFacts {
    /// `token` (an API token, or a page session started with one) or `oidc` (single sign-on).
    pub method: String,
    /// Whether the identity provider's `amr`/`acr` counted as multi-factor.
    pub mfa: bool,
    /// The provider's `amr` values.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The provider's `acr`, or empty.
    #[serde(default)]
    pub acr: String,
}

/// An organisation as policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgFacts {
    /// Its name (also its entity id).
    pub name: String,
    /// `contractor`, `agency`, `compliance` or `operator`.
    pub kind: String,
    /// Organisations it may send to.
    #[serde(default)]
    pub routes: Vec<String>,
}

/// A transfer as policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFacts {
    /// Entity id (the transfer id).
    pub id: String,
    /// Its sender.
    pub sender: UserFacts,
    /// Its recipients.
    pub recipients: Vec<UserFacts>,
    /// Its classification marking.
    pub classification: String,
    /// Ciphertext bytes.
    pub size: u64,
    /// Whether a second person approved its release.
    pub approved: bool,
}

/// What a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A user (uploads address users).
    User(UserFacts),
    /// A transfer.
    Transfer(TransferFacts),
    /// The audit trail.
    AuditTrail,
    /// The gateway itself (administration).
    Gateway,
}

/// One request for a decision, with every fact the policies may read.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRequest {
    /// What is asked.
    pub action: Action,
    /// Who asks.
    pub principal: UserFacts,
    /// On what.
    pub resource: Resource,
    /// Every organisation the users belong to.
    pub orgs: Vec<OrgFacts>,
    /// The action's context (see the schema); `now` is added when missing.
    pub context: Map<String, Value>,
}

fn uid(kind: &str, id: &str) -> Value {
    json!({ "type": format!("Sealpost::{kind}"), "id": id })
}

fn user_entity(u: &UserFacts) -> Value {
    json!({
        "uid": uid("User", &u.id),
        "attrs": { "name": u.name, "role": u.role, "org": { "__entity": uid("Organisation", &u.org) } },
        "parents": [uid("Organisation", &u.org)],
    })
}

/// The Cedar text form of an entity uid, e.g. `Sealpost::User::"abc"`.
fn uid_text(kind: &str, id: &str) -> String {
    format!("Sealpost::{kind}::{}", Value::String(id.to_owned()))
}

impl PolicyRequest {
    /// The principal's, resource's uids, the context and the entities, as Cedar JSON.
    pub fn to_cedar(&self, now: i64) -> (String, String, Value, Value) {
        let mut users: Vec<&UserFacts> = vec![&self.principal];
        let mut entities = Vec::new();
        let resource = match &self.resource {
            Resource::User(u) => {
                users.push(u);
                uid_text("User", &u.id)
            }
            Resource::Transfer(t) => {
                users.push(&t.sender);
                users.extend(&t.recipients);
                let recipients: Vec<Value> =
                    t.recipients.iter().map(|r| json!({ "__entity": uid("User", &r.id) })).collect();
                entities.push(json!({
                    "uid": uid("Transfer", &t.id),
                    "attrs": {
                        "sender": { "__entity": uid("User", &t.sender.id) },
                        "recipients": recipients,
                        "classification": t.classification,
                        "size": i64::try_from(t.size).unwrap_or(i64::MAX),
                        "approved": t.approved,
                    },
                    "parents": [],
                }));
                uid_text("Transfer", &t.id)
            }
            Resource::AuditTrail => {
                entities.push(json!({ "uid": uid("AuditTrail", "trail"), "attrs": {}, "parents": [] }));
                uid_text("AuditTrail", "trail")
            }
            Resource::Gateway => {
                entities.push(json!({ "uid": uid("Gateway", "gateway"), "attrs": {}, "parents": [] }));
                uid_text("Gateway", "gateway")
            }
        };
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.dedup_by(|a, b| a.id == b.id);
        entities.extend(users.iter().map(|u| user_entity(u)));
        let mut orgs: Vec<&OrgFacts> = self.orgs.iter().collect();
        orgs.sort_by(|a, b| a.name.cmp(&b.name));
        orgs.dedup_by(|a, b| a.name == b.name);
        for org in orgs {
            let routes: Vec<Value> = org.routes.iter().map(|r| json!({ "__entity": uid("Organisation", r) })).collect();
            entities.push(json!({
                "uid": uid("Organisation", &org.name),
                "attrs": { "name": org.name, "kind": org.kind, "routes": routes },
                "parents": [],
            }));
        }
        let mut context = self.context.clone();
        context.entry("now").or_insert_with(|| json!(now));
        if let Some(auth) = &self.principal.authentication {
            context.entry("authentication").or_insert_with(|| json!(auth));
        }
        (uid_text("User", &self.principal.id), resource, Value::Object(context), Value::Array(entities))
    }
}
