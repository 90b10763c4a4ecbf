//! The policy gate: who may send what to whom, for how long.
//!
//! The gate's only way to say yes is an [`Approval`], which has a private constructor, and the
//! store will only record a transfer from an approval: a path that skips the gate does not
//! compile. This gate applies the built-in rules below; the Cedar engine replaces the
//! body of [`PolicyGate::authorize_upload`] without changing its signature. What the gate can
//! never loosen, the envelope check, lives in `envelope` and runs before the store is touched.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ids::UserId;
use crate::model::{Classification, Role};
use crate::store::{Principal, Recipient};

/// An upload as the gate sees it: who, to whom, for how long, at what marking.
#[derive(Debug)]
pub struct UploadRequest<'a> {
    /// The caller.
    pub sender: &'a Principal,
    /// The addressed users, resolved, with their keys.
    pub recipients: &'a [Recipient],
    /// How long the links should live.
    pub expires_in: Duration,
    /// The transfer's classification.
    pub classification: Classification,
    /// The time of the request.
    pub now: DateTime<Utc>,
}

/// Proof that the gate allowed an upload, carrying exactly what it allowed.
#[derive(Debug)]
pub struct Approval {
    sender: UserId,
    recipients: Vec<UserId>,
    classification: Classification,
    expires_at: DateTime<Utc>,
    policies: Vec<&'static str>,
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

    /// The ids of the rules that allowed it.
    pub fn policies(&self) -> &[&'static str] {
        &self.policies
    }
}

/// A refusal by policy: a sentence saying what would be allowed, and the deciding rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    /// What was refused and what would be allowed.
    pub message: String,
    /// The ids of the rules that decided it.
    pub policies: Vec<&'static str>,
}

/// The gate, configured.
#[derive(Debug, Clone)]
pub struct PolicyGate {
    max_expiry: Duration,
}

impl PolicyGate {
    /// A gate that allows links to live at most `max_expiry`.
    pub fn new(max_expiry: Duration) -> Self {
        Self { max_expiry }
    }

    /// Decides an upload. Built-in rules, each named by its id:
    /// - `builtin.recipient-role`: every addressed user has the recipient role;
    /// - `builtin.max-expiry`: links live no longer than the configured maximum;
    /// - `builtin.classification`: SECRET and TOP-SECRET material does not travel here.
    pub fn authorize_upload(&self, req: &UploadRequest<'_>) -> Result<Approval, Denial> {
        if let Some(r) = req.recipients.iter().find(|r| r.role != Role::Recipient) {
            return Err(Denial {
                message: format!("`{}` is not a recipient: address users with the recipient role", r.user),
                policies: vec!["builtin.recipient-role"],
            });
        }
        if req.expires_in > self.max_expiry {
            return Err(Denial {
                message: format!(
                    "links may live at most {}: ask for a shorter `expires`",
                    humantime::format_duration(self.max_expiry)
                ),
                policies: vec!["builtin.max-expiry"],
            });
        }
        if matches!(req.classification, Classification::Secret | Classification::TopSecret) {
            return Err(Denial {
                message: format!(
                    "`{}` material must not travel through this gateway: only OFFICIAL and OFFICIAL-SENSITIVE are allowed",
                    req.classification
                ),
                policies: vec!["builtin.classification"],
            });
        }
        let expires_in = chrono::Duration::from_std(req.expires_in).map_err(|_| Denial {
            message: "that expiry is out of range: ask for a shorter `expires`".to_owned(),
            policies: vec!["builtin.max-expiry"],
        })?;
        Ok(Approval {
            sender: req.sender.id.clone(),
            recipients: req.recipients.iter().map(|r| r.id.clone()).collect(),
            classification: req.classification,
            expires_at: req.now + expires_in,
            policies: vec!["builtin.recipient-role", "builtin.max-expiry", "builtin.classification"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrgKind, UserRef};

    fn principal(role: Role) -> Principal {
        Principal {
            id: UserId::generate(),
            user: UserRef::new("acme", "bob").expect("valid"),
            role,
            org_kind: OrgKind::Contractor,
        }
    }

    fn recipient(role: Role) -> Recipient {
        Recipient { id: UserId::generate(), user: UserRef::new("agency", "alice").expect("valid"), role, keys: vec![] }
    }

    fn request<'a>(sender: &'a Principal, to: &'a [Recipient], hours: u64, c: Classification) -> UploadRequest<'a> {
        UploadRequest {
            sender,
            recipients: to,
            expires_in: Duration::from_secs(hours * 3600),
            classification: c,
            now: Utc::now(),
        }
    }

    #[test]
    fn an_ordinary_upload_is_approved_with_its_expiry() {
        let gate = PolicyGate::new(Duration::from_secs(14 * 86400));
        let sender = principal(Role::Sender);
        let to = [recipient(Role::Recipient)];
        let req = request(&sender, &to, 72, Classification::Official);
        let approval = gate.authorize_upload(&req).expect("approved");
        assert_eq!(approval.expires_at(), req.now + chrono::Duration::hours(72));
        assert_eq!(approval.recipients(), &[to[0].id.clone()]);
    }

    #[test]
    fn too_long_expiry_is_denied_by_its_rule() {
        let gate = PolicyGate::new(Duration::from_secs(14 * 86400));
        let sender = principal(Role::Sender);
        let to = [recipient(Role::Recipient)];
        let denial = gate.authorize_upload(&request(&sender, &to, 15 * 24, Classification::Official)).unwrap_err();
        assert_eq!(denial.policies, vec!["builtin.max-expiry"]);
    }

    #[test]
    fn secret_material_and_non_recipients_are_denied() {
        let gate = PolicyGate::new(Duration::from_secs(14 * 86400));
        let sender = principal(Role::Sender);
        let to = [recipient(Role::Recipient)];
        let denial = gate.authorize_upload(&request(&sender, &to, 1, Classification::Secret)).unwrap_err();
        assert_eq!(denial.policies, vec!["builtin.classification"]);
        let to = [recipient(Role::Sender)];
        let denial = gate.authorize_upload(&request(&sender, &to, 1, Classification::Official)).unwrap_err();
        assert_eq!(denial.policies, vec!["builtin.recipient-role"]);
    }
}
