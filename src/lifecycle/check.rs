//! Checking a transfer request before any of its bytes is accepted: the log is up, then who
//! uploads, to whom, for how long (query, recipients and their keys, the sender's signed
//! manifest, policy), then the declared size. Every refusal is recorded in the audit trail.

use std::time::Duration;

use crate::audit::{Event, EventKind};
use crate::directory::SIGNING_TYPE;
use crate::gateway::Gateway;
use crate::intake::{Addressee, Refusal};
use crate::model::{Classification, Principal, Recipient, UserRef};
use crate::policy::{Approval, UploadRequest};
use crate::store::StoreError;

use super::signing::{self, ManifestParts, Resolved, SignedUpload};
use super::{LifecycleError, RequestError};

/// What a sender asks for: recipients, how long the links live, the marking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The recipients, each once, in the order given.
    pub to: Vec<UserRef>,
    /// How long the links should live (the gateway's default when absent).
    pub expires: Option<Duration>,
    /// The transfer's classification.
    pub classification: Classification,
}

impl TransferRequest {
    /// Parses `to=ORG/NAME[&to=…][&expires=72h][&classification=…]` (an upload's query string,
    /// and what a resumable upload keeps of its metadata). Ambiguity is refused: a recipient
    /// named twice, an unknown parameter.
    pub fn parse_query(raw: &str) -> Result<Self, RequestError> {
        let mut q = Self { to: Vec::new(), expires: None, classification: Classification::Official };
        let mut classified = false;
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "to" => {
                    let user: UserRef = value.parse()?;
                    if q.to.contains(&user) {
                        return Err(RequestError::DuplicateRecipient(user));
                    }
                    q.to.push(user);
                }
                "expires" => {
                    if q.expires.is_some() {
                        return Err(RequestError::Repeated("expires"));
                    }
                    let d = crate::config::parse_duration("expires", &value)
                        .map_err(|_| RequestError::BadExpiry(value.clone().into_owned()))?;
                    if d.is_zero() {
                        return Err(RequestError::ZeroExpiry(value.into_owned()));
                    }
                    q.expires = Some(d);
                }
                "classification" => {
                    if std::mem::replace(&mut classified, true) {
                        return Err(RequestError::Repeated("classification"));
                    }
                    q.classification = value.parse()?;
                }
                other => return Err(RequestError::UnknownParameter(other.to_owned())),
            }
        }
        if q.to.is_empty() {
            return Err(RequestError::NoRecipient);
        }
        Ok(q)
    }
}

/// A transfer request that passed every check before its bytes: the resolved recipients, the
/// policy gate's [`Approval`], and the sender's signed manifest when one came with it.
#[derive(Debug)]
pub struct Checked {
    pub(super) recipients: Vec<Recipient>,
    pub(super) approval: Approval,
    pub(super) signed: Option<SignedUpload>,
}

impl Checked {
    /// The directory keys the file must be encrypted to, one stanza each (signing keys left out).
    pub fn addressees(&self) -> Vec<Addressee> {
        crate::intake::addressees(&self.recipients)
    }

    /// Records a refused upload of `size` bytes and makes the error that says how to fix it.
    pub async fn refuse(&self, gw: &Gateway, caller: &Principal, refusal: Refusal, size: u64) -> LifecycleError {
        let event = Event::new(EventKind::UploadRefused)
            .actor(&caller.id)
            .code(refusal.code().as_str())
            .field("reason", refusal.reason())
            .field("size", size);
        if let Err(e) = gw.store.record(&event, gw.clock.now()).await {
            return e.into();
        }
        let keys: Vec<String> = self
            .recipients
            .iter()
            .map(|r| format!("{}/api/v1/keys/{}/{}", gw.public_url, r.user.org, r.user.name))
            .collect();
        let encrypt = format!("encrypt with `age -r` to every key listed at {}", keys.join(" and "));
        let hint = match refusal {
            Refusal::TooLarge { .. } => "split the data into smaller bundles".to_owned(),
            Refusal::Passphrase => format!("{encrypt} instead"),
            _ => encrypt,
        };
        LifecycleError::Refused { refusal, hint }
    }
}

/// Checks a transfer request before any of its bytes is accepted. `raw` is the request as a
/// query string; `manifest` the sender's signed manifest as the upload carries it (all parts
/// `None` for an unsigned upload); `size` the declared body length, when there is one. A refusal
/// is recorded.
pub async fn check_request(
    gw: &Gateway,
    caller: &Principal,
    raw: &str,
    manifest: &ManifestParts,
    size: Option<u64>,
) -> Result<Checked, LifecycleError> {
    if !gw.log.healthy() {
        return Err(LifecycleError::LogUnavailable);
    }
    let checked = match check_addressing(gw, caller, raw, manifest, size).await {
        Ok(checked) => checked,
        Err(e) if e.is_client_error() => {
            let mut event = Event::new(EventKind::UploadRefused).actor(&caller.id).code(e.code().as_str());
            if let Some(reason) = e.reason() {
                event = event.field("reason", reason);
            }
            if let Some(policies) = e.policies() {
                event = event.field("policies", policies.join(","));
            }
            gw.store.record(&event, gw.clock.now()).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if let Some(len) = size.filter(|&len| len > gw.rules.max_size) {
        return Err(checked.refuse(gw, caller, Refusal::TooLarge { limit: gw.rules.max_size }, len).await);
    }
    Ok(checked)
}

/// Query, recipients and their keys, the signed manifest, policy.
async fn check_addressing(
    gw: &Gateway,
    caller: &Principal,
    raw: &str,
    manifest: &ManifestParts,
    size: Option<u64>,
) -> Result<Checked, LifecycleError> {
    let request = TransferRequest::parse_query(raw)?;
    let recipients = gw.store.recipients(&request.to).await.map_err(|e| match e {
        StoreError::UnknownUser(u) => LifecycleError::UnknownRecipient(u),
        other => other.into(),
    })?;
    if let Some(r) = recipients.iter().find(|r| r.keys.iter().all(|k| k.stanza_type == SIGNING_TYPE)) {
        return Err(LifecycleError::RecipientHasNoKey(r.user.clone()));
    }
    let mut org_names: Vec<&str> = recipients.iter().map(|r| r.user.org.as_str()).collect();
    org_names.push(&caller.user.org);
    org_names.sort_unstable();
    org_names.dedup();
    let orgs = gw.store.org_facts(&org_names).await?;
    let expires_in = request.expires.unwrap_or(gw.config.default_expiry);
    let resolved =
        Resolved { recipients: &request.to, classification: request.classification, expires: expires_in.as_secs() };
    let signed = signing::verify(gw, caller, manifest, &resolved).await?;
    let upload = UploadRequest {
        sender: caller,
        recipients: &recipients,
        orgs: &orgs,
        expires_in,
        classification: request.classification,
        size,
        signed: signed.is_some(),
        now: gw.clock.now(),
    };
    let approval = gw.gate.authorize_upload(&upload)?;
    Ok(Checked { recipients, approval, signed })
}
