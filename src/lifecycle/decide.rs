//! Acting on a stored transfer: the sender's view, recall, a compliance officer's approval or
//! rejection, and reloading the policies that decide all of it. Each act asks the policy gate
//! first, and the store takes only the [`Permit`](crate::policy::Permit) it gives.

use serde_json::json;

use super::LifecycleError;
use crate::audit::{Event, EventKind};
use crate::gateway::Gateway;
use crate::ids::{TransferId, UserId};
use crate::model::{Principal, Role};
use crate::policy::{Action, Permit, principal_facts};
use crate::store::{Purge, TransferRecord};
use crate::wire::TransferStatus;
use crate::wire::transfers::{DecisionAnswer, RecallAnswer, TransferView};

fn transfer_id(s: &str) -> Result<TransferId, LifecycleError> {
    TransferId::parse(s).ok_or_else(|| LifecycleError::UnknownTransfer(s.to_owned()))
}

/// A transfer as its sender (or an administrator) sees it.
pub async fn transfer_view(gw: &Gateway, caller: &Principal, id: &str) -> Result<TransferView, LifecycleError> {
    let id = transfer_id(id)?;
    Ok(gw.store.transfer(&id, &caller.id, caller.role == Role::Admin).await?)
}

/// Asks the policies whether the caller may act on a transfer. A default deny on a transfer the
/// caller has nothing to do with is "no such transfer", so ids of other people's transfers leak
/// nothing.
async fn permit_on_transfer(
    gw: &Gateway,
    caller: &Principal,
    id: &TransferId,
    action: Action,
    what: &str,
) -> Result<(TransferRecord, Permit), LifecycleError> {
    let record = gw.store.transfer_record(id).await?;
    let me = caller.id.as_str();
    let involved = record.facts.sender.id == me || record.facts.recipients.iter().any(|r| r.id == me);
    let overseer = matches!(caller.role, Role::Admin | Role::Compliance);
    match gw.gate.permit(action, principal_facts(caller), &record.facts, &record.orgs, what, gw.clock.now()) {
        Ok(permit) => Ok((record, permit)),
        Err(d) if !d.explicit() && !involved && !overseer => Err(LifecycleError::UnknownTransfer(id.to_string())),
        Err(d) => Err(d.into()),
    }
}

/// Recalls a transfer: unused links are revoked and the ciphertext deleted now (the sweeper
/// retries if that fails). Recalling twice is harmless.
pub async fn recall(gw: &Gateway, caller: &Principal, id: &str) -> Result<RecallAnswer, LifecycleError> {
    let id = transfer_id(id)?;
    let what = format!("`{}` to recall this transfer", caller.user);
    let (_, permit) = permit_on_transfer(gw, caller, &id, Action::Recall, &what).await?;
    let recall = gw.store.recall(&permit, &caller.id, caller.role == Role::Admin, gw.clock.now()).await?;
    // Downloads of it running here stop at their next chunk (elsewhere, within a second).
    gw.link_changes.send_modify(|n| *n = n.wrapping_add(1));
    let mut purged = false;
    if let Some(key) = recall.object_key {
        // The links are revoked already; deleting the ciphertext now (not at the next sweep)
        // is what pulls a mis-addressed bundle back.
        let purge = Purge { transfer: id.clone(), object_key: key, reason: "recalled" };
        purged = crate::sweeper::purge(&gw.store, &gw.blobs, &gw.clock, &purge).await;
    }
    Ok(RecallAnswer { id: id.to_string(), status: TransferStatus::Recalled, links_revoked: recall.revoked, purged })
}

/// Approves or rejects a held transfer: the `approve` policy decides who may (four eyes: not
/// the sender); on approval the `release` policy is asked again with the approval in place.
/// The approver's `reason`, when given, is recorded in the decision's audit event.
pub async fn decide(
    gw: &Gateway,
    caller: &Principal,
    id: &str,
    approve: bool,
    reason: Option<&str>,
) -> Result<DecisionAnswer, LifecycleError> {
    let id = transfer_id(id)?;
    let verb = if approve { "approve" } else { "reject" };
    let what = format!("`{}` to {verb} this transfer", caller.user);
    let (record, permit) = permit_on_transfer(gw, caller, &id, Action::Approve, &what).await?;
    let mut facts = record.facts.clone();
    facts.approved = approve;
    let context = serde_json::Map::from_iter([
        ("armored".to_owned(), json!(record.armored)),
        ("recipient_stanzas".to_owned(), json!(facts.recipients.len())),
    ]);
    let release = gw.gate.release(&facts.sender, &facts, &record.orgs, context, gw.clock.now());
    let decided = gw.store.decide_transfer(&permit, &caller.id, approve, &release, reason, gw.clock.now()).await?;
    let mut purged = false;
    if let Some(key) = decided.object_key {
        let purge = Purge { transfer: id.clone(), object_key: key, reason: "rejected" };
        purged = crate::sweeper::purge(&gw.store, &gw.blobs, &gw.clock, &purge).await;
    }
    let status = match (approve, decided.released) {
        (false, _) => TransferStatus::Rejected,
        (true, true) => TransferStatus::Available,
        (true, false) => TransferStatus::AwaitingApproval,
    };
    Ok(DecisionAnswer {
        id: id.to_string(),
        status,
        decided_by: caller.user.clone(),
        policies: release.policies().to_vec(),
        links_revoked: decided.revoked,
        purged,
    })
}

/// Reloads the policy set (validated first; an invalid set is refused and the old one stays)
/// and records the change. Shared by the API and SIGHUP. Returns the set's digest.
pub async fn reload_policies(gw: &Gateway, actor: Option<&UserId>) -> Result<String, LifecycleError> {
    let before = gw.gate.digest();
    let digest = gw.gate.reload().map_err(LifecycleError::InvalidPolicy)?;
    if digest != before {
        let mut event = Event::new(EventKind::PolicyChanged).field("digest", &digest).field("previous", &before);
        event.actor = actor.cloned();
        gw.store.record(&event, gw.clock.now()).await?;
        tracing::info!(%digest, "policies reloaded");
    }
    Ok(digest)
}
