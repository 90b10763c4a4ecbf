//! Policy tests as data: a TOML file describes a small world (organisations, users, transfers)
//! and cases (a request and the expected decision). `sealpost policy test` and `cargo test` run
//! them; `sealpost policy explain` evaluates a file's cases and prints each decision.
//!
//! ```toml
//! [orgs]
//! acme = { kind = "contractor", routes = ["hmpps"] }
//! hmpps = { kind = "agency" }
//! [users]
//! "acme/bob" = "sender"
//! "hmpps/alice" = "recipient"
//! [transfers.t1]
//! sender = "acme/bob"
//! recipients = ["hmpps/alice"]
//! classification = "OFFICIAL-SENSITIVE"
//! [[case]]
//! name = "a sender with a route uploads"
//! action = "upload"
//! principal = "acme/bob"
//! resource = "hmpps/alice"        # a user, `transfer:NAME`, `audit`, or `gateway`
//! context = { classification = "OFFICIAL", expires_in_seconds = 3600, recipient_count = 1 }
//! expect = "allow"                # or "deny"
//! policies = ["senders-upload"]   # optional: exactly the deciding ids
//! covers = "senders-upload"       # optional: the policy this case exercises
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::engine::{Decision, Policies};
use super::facts::{Action, OrgFacts, PolicyRequest, Resource, TransferFacts, UserFacts};

/// What can be wrong with a test file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TestFileError {
    /// Unreadable or not valid TOML for this format.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// A case names something the world does not have.
    #[error("{file}: case `{case}`: {message}")]
    Case {
        /// The file.
        file: String,
        /// The case.
        case: String,
        /// Why.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgSpec {
    kind: String,
    #[serde(default)]
    routes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferSpec {
    sender: String,
    recipients: Vec<String>,
    #[serde(default = "official")]
    classification: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    approved: bool,
}

fn official() -> String {
    "OFFICIAL".to_owned()
}

/// The expected outcome of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
}

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// A sentence saying what it shows.
    pub name: String,
    action: Action,
    principal: String,
    resource: String,
    #[serde(default)]
    context: Map<String, Value>,
    /// The expected decision (optional for `explain`).
    pub expect: Option<Expect>,
    /// Exactly the deciding policy ids, if given.
    pub policies: Option<Vec<String>>,
    /// The policy this case exercises.
    pub covers: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    orgs: BTreeMap<String, OrgSpec>,
    #[serde(default)]
    users: BTreeMap<String, String>,
    #[serde(default)]
    transfers: BTreeMap<String, TransferSpec>,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The file it came from.
    pub file: String,
    /// The case.
    pub case: Case,
    /// What the policies decided.
    pub decision: Decision,
}

impl CaseResult {
    /// Whether the decision matches the case's expectations (true when it has none).
    pub fn passed(&self) -> bool {
        let outcome = if self.decision.allowed { Expect::Allow } else { Expect::Deny };
        self.case.expect.is_none_or(|e| e == outcome)
            && self.case.policies.as_ref().is_none_or(|p| {
                let mut want = p.clone();
                want.sort();
                want == self.decision.policies
            })
    }
}

fn user(file: &str, case: &str, users: &BTreeMap<String, String>, name: &str) -> Result<UserFacts, TestFileError> {
    let role = users.get(name).ok_or_else(|| TestFileError::Case {
        file: file.to_owned(),
        case: case.to_owned(),
        message: format!("no user `{name}` in [users]"),
    })?;
    let org = name.split_once('/').map_or(name, |(o, _)| o).to_owned();
    Ok(UserFacts { id: name.to_owned(), name: name.to_owned(), role: role.clone(), org, authentication: None })
}

/// Runs every case of one test file against `policies`.
pub fn run_file(policies: &Policies, path: &Path) -> Result<Vec<CaseResult>, TestFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| TestFileError::Invalid { file: file.clone(), message: e.to_string() })?;
    let spec: TestFile = toml::from_str(&text)
        .map_err(|e| TestFileError::Invalid { file: file.clone(), message: e.message().to_owned() })?;
    let orgs: Vec<OrgFacts> = spec
        .orgs
        .iter()
        .map(|(name, o)| OrgFacts { name: name.clone(), kind: o.kind.clone(), routes: o.routes.clone() })
        .collect();
    let mut results = Vec::new();
    for case in &spec.cases {
        let principal = user(&file, &case.name, &spec.users, &case.principal)?;
        let resource = if case.resource == "audit" {
            Resource::AuditTrail
        } else if case.resource == "gateway" {
            Resource::Gateway
        } else if let Some(name) = case.resource.strip_prefix("transfer:") {
            let t = spec.transfers.get(name).ok_or_else(|| TestFileError::Case {
                file: file.clone(),
                case: case.name.clone(),
                message: format!("no transfer `{name}` in [transfers]"),
            })?;
            let recipients =
                t.recipients.iter().map(|r| user(&file, &case.name, &spec.users, r)).collect::<Result<Vec<_>, _>>()?;
            Resource::Transfer(TransferFacts {
                id: name.to_owned(),
                sender: user(&file, &case.name, &spec.users, &t.sender)?,
                recipients,
                classification: t.classification.clone(),
                size: t.size,
                approved: t.approved,
            })
        } else {
            Resource::User(user(&file, &case.name, &spec.users, &case.resource)?)
        };
        let request = PolicyRequest {
            action: case.action,
            principal,
            resource,
            orgs: orgs.clone(),
            context: case.context.clone(),
        };
        let (p, r, context, entities) = request.to_cedar(0);
        let decision = policies
            .evaluate(&p, case.action.as_str(), &r, context, entities)
            .map_err(|message| TestFileError::Case { file: file.clone(), case: case.name.clone(), message })?;
        results.push(CaseResult { file: file.clone(), case: case.clone(), decision });
    }
    Ok(results)
}

/// Runs every `*.toml` file in `dir`, sorted by name.
pub fn run_dir(policies: &Policies, dir: &Path) -> Result<Vec<CaseResult>, TestFileError> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| TestFileError::Invalid { file: dir.display().to_string(), message: e.to_string() })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut results = Vec::new();
    for path in paths {
        results.extend(run_file(policies, &path)?);
    }
    Ok(results)
}

/// Policy ids that lack a passing case covering them with an `allow` or with a `deny`
/// outcome, as `(id, missing outcome)`.
pub fn uncovered(policies: &Policies, results: &[CaseResult]) -> Vec<(String, &'static str)> {
    let mut seen: BTreeSet<(String, bool)> = BTreeSet::new();
    for r in results.iter().filter(|r| r.passed()) {
        if let Some(id) = &r.case.covers {
            seen.insert((id.clone(), r.decision.allowed));
        }
    }
    let mut missing = Vec::new();
    for id in policies.ids() {
        if !seen.contains(&(id.clone(), true)) {
            missing.push((id.clone(), "allow"));
        }
        if !seen.contains(&(id.clone(), false)) {
            missing.push((id, "deny"));
        }
    }
    missing
}
