//! The policy gate: Cedar decides who may send what to whom, for how long, and what needs a
//! second person's approval.
//!
//! Built-in invariants stay in Rust and no policy can loosen them: only age ciphertext passes the
//! envelope gate (`envelope`, before any policy), and the store records a transfer only from an
//! [`Approval`] and a [`Release`], values with private constructors that only this gate makes, so
//! a path that skips the policy check does not compile. Everything else is Cedar: the shipped set
//! in `policies/` (compiled in) or a directory given with `--policies`. Default deny, forbid
//! overrides permit, and every decision carries the ids of the policies that made it.

mod engine;
mod facts;
pub mod testing;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub use engine::{Decision, Policies, PolicyError, PolicySource};
pub use facts::{Action, AuthFacts, OrgFacts, PolicyRequest, Resource, TransferFacts, UserFacts};

use crate::envelope::StanzaKind;
use crate::ids::UserId;
use crate::model::Classification;
use crate::model::{Principal, Recipient};

/// An upload as the gate sees it: who, to whom, for how long, at what marking.
#[derive(Debug)]
pub struct UploadRequest<'a> {
    /// The caller.
    pub sender: &'a Principal,
    /// The addressed users, resolved, with their keys.
    pub recipients: &'a [Recipient],
    /// Facts about every organisation involved (kinds, routes).
    pub orgs: &'a [OrgFacts],
    /// How long the links should live.
    pub expires_in: Duration,
    /// The transfer's classification.
    pub classification: Classification,
    /// The declared body length, when there is one.
    pub size: Option<u64>,
    /// Whether the sender signed the upload's manifest (checked before policy is asked).
    pub signed: bool,
    /// The time of the request.
    pub now: DateTime<Utc>,
}

/// Proof that the gate allowed an upload, carrying exactly what it allowed.
#[derive(Debug)]
pub struct Approval {
    sender: UserId,
    sender_facts: UserFacts,
    recipients: Vec<UserId>,
    recipient_facts: Vec<UserFacts>,
    orgs: Vec<OrgFacts>,
    classification: Classification,
    expires_at: DateTime<Utc>,
    policies: Vec<String>,
}

impl Approval {
    /// The approved sender.
    pub fn sender(&self) -> &UserId {
        &self.sender
    }

    /// The approved recipients, in request order.
    pub fn recipients(&self) -> &[UserId] {
        &self.recipients
    }

    /// The approved classification.
    pub fn classification(&self) -> Classification {
        self.classification
    }

    /// When the approved links expire.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The ids of the policies that allowed it.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }

    /// The sender as policies saw it.
    pub fn sender_facts(&self) -> &UserFacts {
        &self.sender_facts
    }

    /// The organisations involved, as policies saw them.
    pub fn orgs(&self) -> &[OrgFacts] {
        &self.orgs
    }
}

/// Proof that the gate allowed one action on one transfer: only [`PolicyGate::permit`] makes
/// one, and leasing a link, recalling and deciding on a transfer require one, so a path that
/// skips the policy check does not compile.
#[derive(Debug)]
pub struct Permit {
    action: Action,
    transfer: String,
    policies: Vec<String>,
}

impl Permit {
    /// The action allowed.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The transfer it was allowed on.
    pub fn transfer(&self) -> &str {
        &self.transfer
    }

    /// The ids of the policies that allowed it.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }
}

/// The gate's verdict on releasing an accepted transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    held: bool,
    policies: Vec<String>,
}

impl Release {
    /// True when the transfer waits for a second person's approval.
    pub fn held(&self) -> bool {
        self.held
    }

    /// The policies that released or held it.
    pub fn policies(&self) -> &[String] {
        &self.policies
    }
}

/// A refusal by policy: a sentence saying what would be allowed, and the deciding policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    /// What was refused and what would be allowed.
    pub message: String,
    /// The ids of the forbid policies that decided it (empty when no permit applied).
    pub policies: Vec<String>,
}

impl Denial {
    /// True when a forbid policy decided it (`policy_denied`); false for a default deny, where
    /// no permit applied (`forbidden`).
    pub fn explicit(&self) -> bool {
        !self.policies.is_empty()
    }
}

/// The gate: the current policy set, reloadable, and the configured hard limits.
#[derive(Debug)]
pub struct PolicyGate {
    current: RwLock<Arc<Policies>>,
    source: PolicySource,
    max_expiry: Duration,
}

/// The id under which the configuration's hard expiry ceiling denies.
pub const CONFIG_MAX_EXPIRY: &str = "config.max_expiry";

impl PolicyGate {
    /// Loads and validates the policy set from `source`.
    pub fn load(source: PolicySource, max_expiry: Duration) -> Result<Self, PolicyError> {
        let policies = Policies::load(&source)?;
        Ok(Self { current: RwLock::new(Arc::new(policies)), source, max_expiry })
    }

    /// Re-reads the source; an invalid set is refused and the current one stays.
    /// Returns the new set's digest.
    pub fn reload(&self) -> Result<String, PolicyError> {
        let policies = Arc::new(Policies::load(&self.source)?);
        let digest = policies.digest().to_owned();
        match self.current.write() {
            Ok(mut guard) => *guard = policies,
            Err(poisoned) => *poisoned.into_inner() = policies,
        }
        Ok(digest)
    }

    /// Where the policies come from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    fn policies(&self) -> Arc<Policies> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current set's digest.
    pub fn digest(&self) -> String {
        self.policies().digest().to_owned()
    }

    /// Evaluates a request. Evaluation problems deny (fail closed) and are logged.
    pub fn decide(&self, req: &PolicyRequest, now: DateTime<Utc>) -> Decision {
        let policies = self.policies();
        let (principal, resource, context, entities) = req.to_cedar(now.timestamp());
        match policies.evaluate(&principal, req.action.as_str(), &resource, context, entities) {
            Ok(decision) => {
                if !decision.errors.is_empty() {
                    tracing::warn!(errors = ?decision.errors, action = req.action.as_str(), "policy evaluation errors");
                }
                decision
            }
            Err(e) => {
                tracing::error!(error = %e, action = req.action.as_str(), "policy request could not be built");
                Decision { allowed: false, policies: Vec::new(), errors: vec![e] }
            }
        }
    }

    /// Decides a request; a denial carries a message built from the deciding policies'
    /// `@advice`, or says that no policy allows `what` when none applied.
    pub fn authorize(&self, req: &PolicyRequest, what: &str, now: DateTime<Utc>) -> Result<Vec<String>, Denial> {
        let decision = self.decide(req, now);
        if decision.allowed {
            return Ok(decision.policies);
        }
        Err(self.denial(&decision, what))
    }

    /// Decides `action` on one stored transfer (facts from the store), and on an allow returns
    /// the [`Permit`] the store asks for.
    pub fn permit(
        &self,
        action: Action,
        principal: UserFacts,
        transfer: &TransferFacts,
        orgs: &[OrgFacts],
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<Permit, Denial> {
        let request = PolicyRequest {
            action,
            principal,
            resource: Resource::Transfer(transfer.clone()),
            orgs: orgs.to_vec(),
            context: Map::new(),
        };
        let policies = self.authorize(&request, what, now)?;
        Ok(Permit { action, transfer: transfer.id.clone(), policies })
    }

    fn denial(&self, decision: &Decision, what: &str) -> Denial {
        let policies = self.policies();
        let message = if decision.policies.is_empty() {
            format!("no policy allows {what}: ask your administrator if you need to")
        } else {
            let advice: Vec<String> = decision
                .policies
                .iter()
                .map(|id| policies.advice(id).map_or_else(|| format!("policy `{id}` forbids {what}"), str::to_owned))
                .collect();
            advice.join("; ")
        };
        Denial { message, policies: decision.policies.clone() }
    }

    /// Decides whether the caller may administer the gateway (`what` names the task for the
    /// refusal): Cedar's `administer` on the gateway.
    /// A policy set whose schema predates the action (a `--policies` directory made from an older
    /// copy of the shipped set) leaves administration to the role alone, as before.
    pub fn administer(&self, caller: &Principal, what: &str, now: DateTime<Utc>) -> Result<Vec<String>, Denial> {
        if !self.policies().has_action(Action::Administer.as_str()) {
            return Ok(Vec::new());
        }
        let principal = principal_facts(caller);
        let request = PolicyRequest {
            action: Action::Administer,
            orgs: vec![OrgFacts {
                name: principal.org.clone(),
                kind: caller.org_kind.as_str().to_owned(),
                routes: Vec::new(),
            }],
            principal,
            resource: Resource::Gateway,
            context: Map::new(),
        };
        self.authorize(&request, what, now)
    }

    /// Decides an upload: the configured expiry ceiling, then Cedar's `upload` once per
    /// recipient (every one must be allowed).
    pub fn authorize_upload(&self, req: &UploadRequest<'_>) -> Result<Approval, Denial> {
        if req.expires_in > self.max_expiry {
            return Err(Denial {
                message: format!(
                    "links may live at most {} on this gateway: ask for a shorter `expires`",
                    humantime::format_duration(self.max_expiry)
                ),
                policies: vec![CONFIG_MAX_EXPIRY.to_owned()],
            });
        }
        let expires_in = chrono::Duration::from_std(req.expires_in).map_err(|_| Denial {
            message: "that expiry is out of range: ask for a shorter `expires`".to_owned(),
            policies: vec![CONFIG_MAX_EXPIRY.to_owned()],
        })?;
        let sender = principal_facts(req.sender);
        let recipient_facts: Vec<UserFacts> = req.recipients.iter().map(recipient_facts).collect();
        let mut context = Map::new();
        context.insert("classification".into(), json!(req.classification.as_str()));
        context.insert("expires_in_seconds".into(), json!(req.expires_in.as_secs()));
        context.insert("recipient_count".into(), json!(req.recipients.len()));
        if let Some(size) = req.size {
            // Cedar's integers stop at 2^63 - 1; a larger declared size is refused as too large
            // after the policies, so it only has to stay a number here.
            context.insert("size".into(), json!(i64::try_from(size).unwrap_or(i64::MAX)));
        }
        let (key_types, post_quantum) = key_facts(req.recipients);
        context.insert("key_types".into(), json!(key_types));
        context.insert("post_quantum".into(), json!(post_quantum));
        context.insert("signed".into(), json!(req.signed));
        let mut allowed_by = Vec::new();
        for recipient in &recipient_facts {
            let request = PolicyRequest {
                action: Action::Upload,
                principal: sender.clone(),
                resource: Resource::User(recipient.clone()),
                orgs: req.orgs.to_vec(),
                context: context.clone(),
            };
            let what = format!("`{}` ({}) to upload to `{}`", sender.name, sender.role, recipient.name);
            allowed_by.extend(self.authorize(&request, &what, req.now)?);
        }
        allowed_by.sort();
        allowed_by.dedup();
        Ok(Approval {
            sender: req.sender.id.clone(),
            sender_facts: sender,
            recipients: req.recipients.iter().map(|r| r.id.clone()).collect(),
            recipient_facts,
            orgs: req.orgs.to_vec(),
            classification: req.classification,
            expires_at: req.now + expires_in,
            policies: allowed_by,
        })
    }

    /// Decides whether a transfer goes to its recipients now or waits for approval. Anything
    /// but an allow holds it (fail closed).
    pub fn release(
        &self,
        principal: &UserFacts,
        transfer: &TransferFacts,
        orgs: &[OrgFacts],
        facts: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Release {
        let request = PolicyRequest {
            action: Action::Release,
            principal: principal.clone(),
            resource: Resource::Transfer(transfer.clone()),
            orgs: orgs.to_vec(),
            context: facts,
        };
        let decision = self.decide(&request, now);
        Release { held: !decision.allowed, policies: decision.policies }
    }

    /// Facts about the transfer an approval describes, before it has an id.
    pub fn transfer_facts(approval: &Approval, id: &str, size: u64) -> TransferFacts {
        TransferFacts {
            id: id.to_owned(),
            sender: approval.sender_facts.clone(),
            recipients: approval.recipient_facts.clone(),
            classification: approval.classification.as_str().to_owned(),
            size,
            approved: false,
        }
    }
}

/// The stanza types of the addressed recipients' encryption keys (sorted, each once), and whether
/// every one of those keys is post-quantum. Signing keys receive no stanza and are left out; a
/// recipient without an encryption key is refused before policy.
fn key_facts(recipients: &[Recipient]) -> (Vec<&str>, bool) {
    let types: Vec<&str> = recipients
        .iter()
        .flat_map(|r| &r.keys)
        .map(|k| k.stanza_type.as_str())
        .filter(|t| *t != crate::directory::SIGNING_TYPE)
        .collect();
    let post_quantum = !types.is_empty() && types.iter().all(|t| StanzaKind::of(t).is_post_quantum());
    let mut distinct = types;
    distinct.sort_unstable();
    distinct.dedup();
    (distinct, post_quantum)
}

/// The caller as policies see it, with how they authenticated.
pub fn principal_facts(p: &Principal) -> UserFacts {
    UserFacts {
        id: p.id.to_string(),
        name: p.user.to_string(),
        role: p.role.as_str().to_owned(),
        org: p.user.org.clone(),
        authentication: Some(AuthFacts {
            method: p.auth.method.as_str().to_owned(),
            mfa: p.auth.mfa,
            amr: p.auth.amr.clone(),
            acr: p.auth.acr.clone(),
        }),
    }
}

/// An addressed recipient as policies see it.
pub fn recipient_facts(r: &Recipient) -> UserFacts {
    UserFacts {
        id: r.id.to_string(),
        name: r.user.to_string(),
        role: r.role.as_str().to_owned(),
        org: r.user.org.clone(),
        authentication: None,
    }
}
