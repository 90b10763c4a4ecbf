//! Receiving a one-shot upload and committing an inspected one: the release decision (four
//! eyes), then blob, rows, audit events and log entry, then the receipt.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde_json::json;

use super::{Checked, LifecycleError, signing};
use crate::audit::{Event, EventKind};
use crate::blobs::{BlobStore, StagedBlob};
use crate::gateway::Gateway;
use crate::ids::{BearerSecret, LinkId, TransferId, UserId};
use crate::intake::{self, Inspected, ReceiveError};
use crate::model::Principal;
use crate::policy::PolicyGate;
use crate::store::{NewLink, NewTransfer};
use crate::wire::TransferStatus;
use crate::wire::transfers::{LinkAnswer, UploadAnswer};

/// After an early refusal, read and discard at most this much of the rest of the body, so the
/// sender's client sees the answer instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 << 20;
/// …and for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(10);
/// How long an upload answer waits for its entry to be integrated into the log.
const RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// A committed transfer's answer, with its one-time links.
pub type Committed = UploadAnswer;

/// Receives a one-shot upload of a checked request from `body` and commits it.
pub async fn upload<S, E>(
    gw: &Gateway,
    caller: &Principal,
    checked: Checked,
    body: &mut S,
) -> Result<Committed, LifecycleError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let id = TransferId::generate();
    let staged = match gw.blobs.stage(&id).await {
        Ok(staged) => staged,
        Err(e) => return Err(storage_fault(gw, &caller.id, None, e.into(), 0).await),
    };
    match intake::receive(body, staged, &checked.addressees(), &gw.rules).await {
        Ok((staged, inspected)) => commit(gw, id, checked, staged, inspected).await,
        Err((ReceiveError::Refused(refusal), size)) => {
            let refused = checked.refuse(gw, caller, refusal, size).await;
            drain(body).await;
            Err(refused)
        }
        Err((ReceiveError::Aborted, size)) => {
            let mut event = Event::new(EventKind::UploadAborted).actor(&caller.id);
            if gw.is_stopping() {
                event = event.code("server_shutdown");
            }
            let event = event.field("size", size);
            gw.store.record(&event, gw.clock.now()).await?;
            Err(LifecycleError::Aborted)
        }
        Err((ReceiveError::Blob(e), size)) => Err(storage_fault(gw, &caller.id, None, e.into(), size).await),
    }
}

/// Records an upload lost to a storage fault (no space: 507; a directory or the database that
/// cannot be written now: 503) as `upload.refused` with that code and `reason storage`, where
/// the database can still take the event (best effort: the fault may be the database's own).
/// For a resumable upload (`upload`), the entry names it, and `size` is the durable offset it
/// resumes from once the fault is gone. Other failures pass through unrecorded; answers `e`.
pub(super) async fn storage_fault(
    gw: &Gateway,
    sender: &UserId,
    upload: Option<&TransferId>,
    e: LifecycleError,
    size: u64,
) -> LifecycleError {
    if e.is_storage_fault() {
        let code = e.code();
        let mut event =
            Event::new(EventKind::UploadRefused).actor(sender).code(code.as_str()).field("reason", "storage");
        if let Some(upload) = upload {
            event = event.transfer(upload).field("resumable", "true");
        }
        event = event.field("size", size);
        if let Err(record) = gw.store.record(&event, gw.clock.now()).await {
            tracing::warn!(error = %record, "could not record an upload lost to a storage fault");
        }
    }
    e
}

/// Commits an upload that passed every check: the signed manifest's digest (a mismatch refuses
/// it and keeps nothing: `staged` is dropped, which deletes it), release policy (held for
/// approval or not), blob, transfer with its manifest, links and their audit events; answers
/// with the links and the receipt.
pub(super) async fn commit(
    gw: &Gateway,
    id: TransferId,
    checked: Checked,
    staged: StagedBlob,
    inspected: Inspected,
) -> Result<Committed, LifecycleError> {
    let Checked { recipients, approval, signed } = checked;
    if let Some(signed) = &signed
        && let Err(refusal) = signed.check_digest(inspected.digest())
    {
        drop(staged);
        return Err(signing::refuse(gw, approval.sender(), refusal, inspected.size()).await);
    }
    let manifest = signed.as_ref().map(super::SignedUpload::manifest);
    let is_signed = manifest.is_some();
    let object_key = BlobStore::key_for(&id);
    let transfer = NewTransfer { id: id.clone(), object_key: object_key.clone(), manifest };
    let tokens: Vec<BearerSecret> = recipients.iter().map(|_| BearerSecret::generate("")).collect();
    let links: Vec<NewLink> = recipients
        .iter()
        .zip(&tokens)
        .map(|(r, t)| NewLink { id: LinkId::generate(), recipient: r.id.clone(), token_hash: t.hash() })
        .collect();
    let header = &inspected.envelope().header;
    let facts = serde_json::Map::from_iter([
        ("armored".to_owned(), json!(header.armored)),
        ("recipient_stanzas".to_owned(), json!(header.recipient_stanzas().count())),
    ]);
    let release = gw.gate.release(
        approval.sender_facts(),
        &PolicyGate::transfer_facts(&approval, id.as_str(), inspected.size()),
        approval.orgs(),
        facts,
        gw.clock.now(),
    );
    if let Err(e) = gw.blobs.commit(staged, &object_key).await {
        return Err(storage_fault(gw, approval.sender(), None, e.into(), inspected.size()).await);
    }
    let accepted_idx = match gw
        .store
        .insert_transfer(&approval, &release, &inspected, &transfer, &links, gw.clock.now())
        .await
    {
        Ok(idx) => idx,
        Err(e) => {
            // Not recorded, so not accepted: the blob must not outlive the failure.
            if let Err(blob) = gw.blobs.delete(&object_key).await {
                tracing::error!(error = %blob, transfer = %id, "could not delete an uncommitted blob; start-up will sweep it");
            }
            return Err(storage_fault(gw, approval.sender(), None, e.into(), inspected.size()).await);
        }
    };
    tracing::info!(transfer = %id, size = inspected.size(), recipients = recipients.len(), signed = is_signed, "upload accepted");
    let receipt = upload_receipt(gw, accepted_idx).await;
    let links = recipients
        .iter()
        .zip(&tokens)
        .map(|(r, t)| LinkAnswer {
            recipient: r.user.clone(),
            url: format!("{}/d#{}", gw.public_url, t.expose()),
            expires_at: approval.expires_at(),
        })
        .collect();
    let status = if release.held() { TransferStatus::AwaitingApproval } else { TransferStatus::Available };
    Ok(UploadAnswer {
        id: id.to_string(),
        status,
        policies: release.policies().to_vec(),
        receipt,
        size: inspected.size(),
        digest: inspected.digest(),
        classification: approval.classification(),
        expires_at: approval.expires_at(),
        links,
    })
}

/// The receipt for the upload's log entry, once the sequencer has integrated it.
async fn upload_receipt(gw: &Gateway, index: u64) -> Option<String> {
    if !gw.log.wait_for(index, RECEIPT_WAIT).await {
        tracing::warn!(index, "upload answered before its log entry was integrated");
        return None;
    }
    let entry = gw.store.entries_from(index, 1).await.ok()?.pop()?.1;
    gw.log.log().receipt(index, entry.as_bytes()).await.ok()
}

/// Reads and discards what is left of a refused body, within limits.
pub(super) async fn drain<S, E>(stream: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut left = DRAIN_LIMIT;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = stream.next().await {
            left = left.saturating_sub(chunk.len() as u64);
            if left == 0 {
                break;
            }
        }
    })
    .await;
}
