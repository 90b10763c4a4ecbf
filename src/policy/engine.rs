//! Loading, validating and evaluating a Cedar policy set.
//!
//! A set is one `*.cedarschema` file and any number of `*.cedar` files. Every policy must carry
//! an `@id("…")`, unique across the set; the set is validated against the schema in strict mode.
//! Any problem is reported as `file:line: message`, so a policy author can go straight to it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use cedar_policy::{
    Authorizer, Context, Entities, EntityUid, PolicyId, PolicySet, Request, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use sha2::{Digest as _, Sha256};

/// The shipped policy set, compiled into the binary (`policies/` at the repository root).
const EMBEDDED: &[(&str, &str)] = &[
    ("sealpost.cedarschema", include_str!("../../policies/sealpost.cedarschema")),
    ("four-eyes.cedar", include_str!("../../policies/four-eyes.cedar")),
    ("limits.cedar", include_str!("../../policies/limits.cedar")),
    ("mfa.cedar", include_str!("../../policies/mfa.cedar")),
    ("roles.cedar", include_str!("../../policies/roles.cedar")),
    ("routes.cedar", include_str!("../../policies/routes.cedar")),
    ("signing.cedar", include_str!("../../policies/signing.cedar")),
];

/// Why a policy set could not be loaded. Each names the file and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file or directory could not be read.
    #[error("{path}: cannot read: {message}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
    /// The directory has no schema, or more than one.
    #[error("{dir}: expected exactly one `*.cedarschema` file, found {found}")]
    Schema {
        /// The directory.
        dir: String,
        /// How many were found.
        found: usize,
    },
    /// A schema, parse or validation error at a place in a file.
    #[error("{file}:{line}: {message}")]
    At {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// Cedar's message (or ours).
        message: String,
    },
}

/// Where a policy set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The shipped set compiled into the binary.
    Embedded,
    /// A directory given with `--policies`.
    Dir(PathBuf),
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded => f.write_str("the built-in policies"),
            Self::Dir(d) => write!(f, "{}", d.display()),
        }
    }
}

/// A validated policy set with its schema.
#[derive(Debug)]
pub struct Policies {
    set: PolicySet,
    schema: Schema,
    digest: String,
    advice: HashMap<String, String>,
}

/// An evaluated decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// The ids of the policies that decided it (permits when allowed, forbids when denied;
    /// empty for a default deny).
    pub policies: Vec<String>,
    /// Evaluation errors (a policy that errors is skipped, so errors never allow anything).
    pub errors: Vec<String>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len())).map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}

/// Turns a Cedar diagnostic into `file:line: message`.
fn at(file: &str, text: &str, d: &dyn Diagnostic, fallback_line: usize) -> PolicyError {
    let line = d.labels().and_then(|mut l| l.next()).map_or(fallback_line, |l| line_of(text, l.offset()));
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    PolicyError::At { file: file.to_owned(), line, message: message.replace('\n', " ") }
}

impl Policies {
    /// Loads and validates a policy set.
    pub fn load(source: &PolicySource) -> Result<Self, PolicyError> {
        let files: Vec<(String, String)> = match source {
            PolicySource::Embedded => EMBEDDED.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect(),
            PolicySource::Dir(dir) => read_dir(dir)?,
        };
        Self::from_files(&files, &source.to_string())
    }

    /// Builds a set from `(file name, text)` pairs: one schema, any number of policy files.
    pub fn from_files(files: &[(String, String)], origin: &str) -> Result<Self, PolicyError> {
        let schemas: Vec<&(String, String)> = files.iter().filter(|(n, _)| n.ends_with(".cedarschema")).collect();
        let [(schema_file, schema_text)] = schemas.as_slice() else {
            return Err(PolicyError::Schema { dir: origin.to_owned(), found: schemas.len() });
        };
        let (schema, _warnings) =
            Schema::from_cedarschema_str(schema_text).map_err(|e| at(schema_file, schema_text, &e, 1))?;
        let mut set = PolicySet::new();
        let mut origin_of: HashMap<String, (String, usize)> = HashMap::new();
        let mut advice = HashMap::new();
        for (file, text) in files.iter().filter(|(n, _)| n.ends_with(".cedar")) {
            let parsed = PolicySet::from_str(text).map_err(|e| at(file, text, &e, 1))?;
            for policy in parsed.policies() {
                let line = text.find(&policy.to_string()).map_or(1, |offset| line_of(text, offset));
                let Some(id) = policy.annotation("id").map(str::to_owned) else {
                    return Err(PolicyError::At {
                        file: file.clone(),
                        line,
                        message: "this policy has no `@id(\"…\")`: every policy needs a unique id".to_owned(),
                    });
                };
                if let Some((other, other_line)) = origin_of.get(&id) {
                    return Err(PolicyError::At {
                        file: file.clone(),
                        line,
                        message: format!("policy id `{id}` is already used at {other}:{other_line}"),
                    });
                }
                if let Some(text) = policy.annotation("advice") {
                    advice.insert(id.clone(), text.to_owned());
                }
                set.add(policy.new_id(PolicyId::new(&id))).map_err(|e| PolicyError::At {
                    file: file.clone(),
                    line,
                    message: e.to_string(),
                })?;
                origin_of.insert(id, (file.clone(), line));
            }
            if let Some(template) = parsed.templates().next() {
                let line = text.find(&template.to_string()).map_or(1, |offset| line_of(text, offset));
                return Err(PolicyError::At {
                    file: file.clone(),
                    line,
                    message: "templates are not supported: write plain policies".to_owned(),
                });
            }
        }
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if let Some(e) = result.validation_errors().next() {
            let (file, line) = origin_of.get(e.policy_id().to_string().as_str()).cloned().unwrap_or_default();
            let text = files.iter().find(|(n, _)| *n == file).map_or("", |(_, t)| t.as_str());
            return Err(at(&file, text, e, line));
        }
        let mut hasher = Sha256::new();
        let mut sorted: Vec<&(String, String)> = files.iter().collect();
        sorted.sort();
        for (name, text) in sorted {
            hasher.update((name.len() as u64).to_be_bytes());
            hasher.update(name.as_bytes());
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        Ok(Self { set, schema, digest, advice })
    }

    /// `sha256:` digest of the set's files (names and contents).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The ids of all policies, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.set.policies().map(|p| p.id().to_string()).collect();
        ids.sort();
        ids
    }

    /// True when the schema declares `action` (a set made from an older copy of the shipped
    /// schema may lack the newer ones).
    pub fn has_action(&self, action: &str) -> bool {
        self.schema.actions().any(|a| a.id().unescaped() == action)
    }

    /// The `@advice` text of a policy, if it has one.
    pub fn advice(&self, id: &str) -> Option<&str> {
        self.advice.get(id).map(String::as_str)
    }

    /// Evaluates a request given as Cedar JSON: entities, and a context for `action`.
    pub fn evaluate(
        &self,
        principal: &str,
        action: &str,
        resource: &str,
        context: serde_json::Value,
        entities: serde_json::Value,
    ) -> Result<Decision, String> {
        let uid = |s: &str| EntityUid::from_str(s).map_err(|e| format!("bad entity `{s}`: {e}"));
        let action = uid(&format!("Sealpost::Action::\"{action}\""))?;
        let context = self.context(context, &action)?;
        let entities = Entities::from_json_value(entities, None).map_err(|e| e.to_string())?;
        let request = Request::new(uid(principal)?, action, uid(resource)?, context, Some(&self.schema))
            .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.set, &entities);
        let mut policies: Vec<String> = response.diagnostics().reason().map(ToString::to_string).collect();
        policies.sort();
        Ok(Decision {
            allowed: response.decision() == cedar_policy::Decision::Allow,
            policies,
            errors: response.diagnostics().errors().map(ToString::to_string).collect(),
        })
    }
}

impl Policies {
    /// The request's context, checked against the schema. A schema older than attributes the
    /// gateway added since ([`LATER_CONTEXT`]) would refuse them; such a set is evaluated
    /// without them (its policies cannot name them), the newest left out first, so a
    /// `--policies` directory made from an older copy of the shipped schema keeps working as
    /// before and keeps the attributes it knows.
    fn context(&self, context: serde_json::Value, action: &EntityUid) -> Result<Context, String> {
        let first = match Context::from_json_value(context.clone(), Some((&self.schema, action))) {
            Ok(context) => return Ok(context),
            Err(e) => e.to_string(),
        };
        let mut older = context;
        for attr in LATER_CONTEXT.iter().rev() {
            if let Some(map) = older.as_object_mut() {
                map.remove(*attr);
            }
            if let Ok(context) = Context::from_json_value(older.clone(), Some((&self.schema, action))) {
                return Ok(context);
            }
        }
        Err(first)
    }
}

/// Context attributes added to the shipped schema after its first release, oldest first (the
/// upload's key facts, then whether the sender signed it): left out, newest first, for a set
/// whose schema does not declare them.
const LATER_CONTEXT: &[&str] = &["key_types", "post_quantum", "signed", "authentication"];

/// Reads a policy directory: its `*.cedarschema` and `*.cedar` files, sorted by name.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let read_err =
        |path: &Path, e: std::io::Error| PolicyError::Read { path: path.display().to_string(), message: e.to_string() };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let path = entry.map_err(|e| read_err(dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if path.is_file() && (name.ends_with(".cedar") || name.ends_with(".cedarschema")) {
            let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(extra: &str) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> =
            EMBEDDED.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
        files.push(("local.cedar".to_owned(), extra.to_owned()));
        files
    }

    #[test]
    fn the_shipped_set_validates() {
        let p = Policies::load(&PolicySource::Embedded).expect("valid");
        assert!(p.ids().contains(&"routes".to_owned()));
        assert!(p.digest().starts_with("sha256:"));
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let err =
            Policies::from_files(&with("\n\n@id(\"x\")\npermit (principal, action, resource) when { oops };"), "t")
                .unwrap_err();
        assert!(matches!(&err, PolicyError::At { file, line: 4, .. } if file == "local.cedar"), "{err}");
    }

    #[test]
    fn policies_without_ids_or_with_duplicate_ids_are_refused() {
        let err = Policies::from_files(&with("permit (principal, action, resource);"), "t").unwrap_err();
        assert!(matches!(&err, PolicyError::At { file, line: 1, .. } if file == "local.cedar"), "{err}");
        let err =
            Policies::from_files(&with("\n@id(\"routes\")\npermit (principal, action, resource);"), "t").unwrap_err();
        assert!(err.to_string().contains("already used at routes.cedar"), "{err}");
    }

    /// An upload of `classification` from acme/bob to hmpps/alice, with `extra` in its context.
    fn upload(p: &Policies, classification: &str, extra: serde_json::Value) -> Decision {
        use crate::policy::{Action, OrgFacts, PolicyRequest, Resource, UserFacts};
        let user = |id: &str, role: &str| UserFacts {
            id: id.into(),
            name: id.into(),
            role: role.into(),
            org: id.split('/').next().unwrap_or_default().into(),
            authentication: None,
        };
        let mut context = serde_json::json!({
            "classification": classification, "expires_in_seconds": 3600, "recipient_count": 1,
        });
        if let (Some(c), Some(e)) = (context.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let request = PolicyRequest {
            action: Action::Upload,
            principal: user("acme/bob", "sender"),
            resource: Resource::User(user("hmpps/alice", "recipient")),
            orgs: vec![
                OrgFacts { name: "acme".into(), kind: "contractor".into(), routes: vec!["hmpps".into()] },
                OrgFacts { name: "hmpps".into(), kind: "agency".into(), routes: vec![] },
            ],
            context: context.as_object().cloned().unwrap_or_default(),
        };
        let (principal, resource, context, entities) = request.to_cedar(0);
        p.evaluate(&principal, "upload", &resource, context, entities).expect("evaluates")
    }

    #[test]
    fn a_set_whose_schema_predates_the_key_facts_still_decides_uploads() {
        let mut files = with("");
        let schema = &mut files[0].1;
        for line in ["      key_types?: Set<String>,\n", "      post_quantum?: Bool,\n"] {
            assert!(schema.contains(line));
            *schema = schema.replace(line, "");
        }
        let older = Policies::from_files(&files, "t").expect("valid");
        let facts = serde_json::json!({ "key_types": ["X25519"], "post_quantum": false });
        let decision = upload(&older, "OFFICIAL", facts.clone());
        assert!(decision.allowed, "{decision:?}");
        assert_eq!(decision.policies, ["senders-upload"]);
        let shipped = Policies::load(&PolicySource::Embedded).expect("valid");
        assert!(upload(&shipped, "OFFICIAL", facts).allowed);
    }

    #[test]
    fn the_post_quantum_example_holds_sensitive_uploads_to_post_quantum_keys() {
        let p = Policies::from_files(&with(include_str!("../../policies/examples/post-quantum.cedar")), "t")
            .expect("the example validates against the shipped schema");
        let classical =
            serde_json::json!({ "key_types": ["X25519", "mlkem768x25519"], "post_quantum": false, "signed": true });
        let pq = serde_json::json!({ "key_types": ["mlkem768x25519"], "post_quantum": true, "signed": true });
        let denied = upload(&p, "OFFICIAL-SENSITIVE", classical.clone());
        assert!(!denied.allowed);
        assert_eq!(denied.policies, ["post-quantum-sensitive"]);
        let absent = upload(&p, "OFFICIAL-SENSITIVE", serde_json::json!({ "signed": true }));
        assert_eq!(absent.policies, ["post-quantum-sensitive"], "an absent fact fails closed");
        assert!(upload(&p, "OFFICIAL-SENSITIVE", pq).allowed);
        assert!(upload(&p, "OFFICIAL", classical).allowed, "OFFICIAL is left alone");
    }

    #[test]
    fn the_shipped_set_requires_a_signature_from_official_sensitive_up() {
        let p = Policies::load(&PolicySource::Embedded).expect("valid");
        let unsigned = upload(&p, "OFFICIAL-SENSITIVE", serde_json::json!({ "signed": false }));
        assert!(!unsigned.allowed);
        assert_eq!(unsigned.policies, ["signed-sensitive"]);
        let advice = p.advice("signed-sensitive").expect("advice");
        assert!(advice.contains("sealpost send --signing-key FILE") && advice.contains("signing_key"), "{advice}");
        assert_eq!(upload(&p, "OFFICIAL-SENSITIVE", serde_json::json!({})).policies, ["signed-sensitive"]);
        assert!(upload(&p, "OFFICIAL-SENSITIVE", serde_json::json!({ "signed": true })).allowed);
        assert!(upload(&p, "OFFICIAL", serde_json::json!({ "signed": false })).allowed);
        let secret = upload(&p, "SECRET", serde_json::json!({ "signed": false }));
        assert_eq!(secret.policies, ["classification-ceiling", "signed-sensitive"]);
    }

    #[test]
    fn a_set_whose_schema_predates_signed_keeps_the_key_facts() {
        let mut files = with(include_str!("../../policies/examples/post-quantum.cedar"));
        files.retain(|(name, _)| name != "signing.cedar");
        let schema = &mut files[0].1;
        assert!(schema.contains("      signed?: Bool,\n"));
        *schema = schema.replace("      signed?: Bool,\n", "");
        let older = Policies::from_files(&files, "t").expect("valid");
        let pq = serde_json::json!({ "key_types": ["mlkem768x25519"], "post_quantum": true, "signed": false });
        assert!(upload(&older, "OFFICIAL-SENSITIVE", pq).allowed, "the key facts still reach the policies");
        let classical = serde_json::json!({ "key_types": ["X25519"], "post_quantum": false, "signed": true });
        assert_eq!(upload(&older, "OFFICIAL-SENSITIVE", classical).policies, ["post-quantum-sensitive"]);
    }

    #[test]
    fn policies_that_do_not_fit_the_schema_are_refused_with_their_line() {
        let err = Policies::from_files(
            &with("@id(\"bad\")\npermit (principal, action == Sealpost::Action::\"upload\", resource)\nwhen { principal.shoe_size > 3 };"),
            "t",
        )
        .unwrap_err();
        assert!(matches!(&err, PolicyError::At { file, line: 3, .. } if file == "local.cedar"), "{err}");
    }
}
