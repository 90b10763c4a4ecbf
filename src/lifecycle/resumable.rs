//! Resumable uploads (what the tus endpoints carry): a dropped connection resumes from the last
//! byte the gateway holds durably. Each request runs the transfer request's checks again (keys
//! and policies may change while a sender is away), feeds its bytes through the same intake
//! pipeline as a one-shot upload, and the request that brings the last byte commits exactly as
//! a one-shot upload does. Its answer, with the links, is kept sealed in the database for an
//! hour ([`sealed_answer`](super::sealed_answer)), so the sender gets it again from any gateway
//! and after a restart. An upload is visible to its sender only; the transfer it becomes takes
//! its id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::commit::{commit, drain};
use super::sealed_answer::AnswerKey;
use super::signing::{ManifestParts, SignedUpload};
use super::{Checked, LifecycleError, check_request};
use crate::audit::{Event, EventKind};
use crate::blobs::PartialBlob;
use crate::envelope::EnvelopeError;
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::intake::{Addressee, PausedPipeline, Pipeline, ReceiveError, Refusal};
use crate::model::{Principal, Role};
use crate::store::UploadRow;
use crate::wire::TransferStatus;
use crate::wire::transfers::{UploadLookup, UploadProgress, UploadState};

/// Bytes appended between two fsyncs (and offset updates) within one request. Each costs a
/// flush and a database write; at 4 MiB they halved the upload rate. A crash loses at most this
/// much, which the client sends again from the durable offset.
const SYNC_EVERY: u64 = 64 << 20;
/// How long a completed upload's answer stays available to its sender. It holds the link
/// tokens, so it is stored sealed, and deleted when this runs out.
const ANSWER_KEPT: Duration = Duration::from_secs(3600);
/// At most this many unfinished uploads' pipelines are kept between requests (the rest are
/// rebuilt from the partial file).
const RUNNING_MAX: usize = 1024;
/// An unfinished upload's pipeline is dropped after this long without a request.
const RUNNING_KEPT: Duration = Duration::from_secs(24 * 3600);
/// A request writing an upload that has brought no byte for this long is taken over by the
/// sender's next request to the upload (`HEAD`, `PATCH` or `DELETE`): its socket is most likely
/// dead, and the sender is back on another. It stops, keeps every byte it wrote durable, and lets
/// go of the upload.
const TAKEOVER_IDLE: Duration = Duration::from_secs(2);
/// How long a request waits at most for a request it took over to let go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(10);

/// What this process knows of resumable uploads beyond the database: which have a request
/// running, and the intake pipelines of unfinished ones.
#[derive(Debug, Default)]
pub struct Uploads {
    busy: Mutex<HashMap<TransferId, Holder>>,
    running: Mutex<HashMap<TransferId, (PausedPipeline, Instant)>>,
}

/// The request writing an upload, as others see it.
#[derive(Debug, Clone)]
struct Holder {
    /// Cancelled to make it stop (see [`TAKEOVER_IDLE`]).
    takeover: CancellationToken,
    /// When its last byte arrived (or it began).
    activity: Arc<Mutex<Instant>>,
}

impl Holder {
    fn idle(&self) -> Duration {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner).elapsed()
    }
}

/// Marks an upload busy while it lives: in this process, and in the database through the
/// claim named `claim` (see [`claim`]).
#[derive(Debug)]
struct Busy {
    gw: Arc<Gateway>,
    id: TransferId,
    claim: String,
    holder: Holder,
}

impl Busy {
    /// A byte arrived: not stalled.
    fn touch(&self) {
        *self.holder.activity.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = self.gw.uploads.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if busy.get(&self.id).is_some_and(|h| Arc::ptr_eq(&h.activity, &self.holder.activity)) {
            busy.remove(&self.id);
        }
        drop(busy);
        // Give the database claim back too, so another gateway may go on at once (if this
        // fails, the claim runs out by itself after CLAIM_TTL).
        let (gw, id, claim) = (self.gw.clone(), self.id.clone(), std::mem::take(&mut self.claim));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = gw.store.release_upload(&id, &claim).await {
                    tracing::warn!(error = %e, upload = %id, "could not give back an upload's claim; it runs out by itself");
                }
            });
        }
    }
}

/// How long a gateway's claim on a resumable upload lasts without being renewed (it is renewed
/// at every sync while bytes arrive).
const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Claims (or renews the claim on) the upload `busy` marks, in the database: one request at a
/// time writes an upload, whichever gateway it reaches.
async fn claim(busy: &Busy) -> Result<(), LifecycleError> {
    let now = busy.gw.clock.now();
    let until = now + chrono::Duration::from_std(CLAIM_TTL).unwrap_or_default();
    if busy.gw.store.claim_upload(&busy.id, &busy.claim, until, now).await? {
        Ok(())
    } else {
        Err(LifecycleError::UploadBusy)
    }
}

impl Uploads {
    fn take_running(&self, id: &TransferId, at: u64) -> Option<Pipeline> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.remove(id).filter(|(p, _)| p.size() == at).map(|(p, _)| p.resume())
    }

    fn keep_running(&self, id: TransferId, pipeline: PausedPipeline) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|_, (_, since)| since.elapsed() < RUNNING_KEPT);
        if running.len() < RUNNING_MAX {
            running.insert(id, (pipeline, Instant::now()));
        }
    }
}

/// Marks `id` busy, or refuses when another request holds it and is not stalled; one that is
/// stalled is taken over first (see [`TAKEOVER_IDLE`]). True with the lock if a request was
/// taken over (its claim in the database may take a moment to be given back).
async fn lock(gw: &Arc<Gateway>, id: &TransferId) -> Result<(Busy, bool), LifecycleError> {
    let took_over = take_over_stalled(gw, id).await?;
    let mut busy = gw.uploads.busy.lock().unwrap_or_else(PoisonError::into_inner);
    if busy.contains_key(id) {
        return Err(LifecycleError::UploadBusy);
    }
    let holder = Holder { takeover: CancellationToken::new(), activity: Arc::new(Mutex::new(Instant::now())) };
    busy.insert(id.clone(), holder.clone());
    let claim = crate::ids::LinkId::generate().to_string();
    Ok((Busy { gw: gw.clone(), id: id.clone(), claim, holder }, took_over))
}

/// If a request of this process writes `id` and has brought no byte for [`TAKEOVER_IDLE`],
/// makes it stop and waits until it has let go (its bytes durable, its offset recorded). True
/// if it did; `upload_busy` if it does not let go within [`TAKEOVER_WAIT`].
async fn take_over_stalled(gw: &Gateway, id: &TransferId) -> Result<bool, LifecycleError> {
    let stalled = {
        let busy = gw.uploads.busy.lock().unwrap_or_else(PoisonError::into_inner);
        match busy.get(id) {
            Some(holder) if holder.idle() >= TAKEOVER_IDLE => holder.takeover.clone(),
            _ => return Ok(false),
        }
    };
    tracing::info!(upload = %id, "taking over a resumable upload from a request that stalled");
    stalled.cancel();
    let until = Instant::now() + TAKEOVER_WAIT;
    loop {
        let held = gw.uploads.busy.lock().unwrap_or_else(PoisonError::into_inner).contains_key(id);
        if !held {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Err(LifecycleError::UploadBusy);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`claim`], retried for a moment after a takeover: the request taken over gives its claim
/// back just after it lets go of the lock.
async fn claim_after(busy: &Busy, took_over: bool) -> Result<(), LifecycleError> {
    if !took_over {
        return claim(busy).await;
    }
    let until = Instant::now() + TAKEOVER_WAIT;
    loop {
        match claim(busy).await {
            Err(LifecycleError::UploadBusy) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// A created upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// Its id.
    pub id: TransferId,
}

/// Creates a resumable upload of `length` bytes for the transfer request `request` (a query
/// string) and the sender's signed `manifest` (if any), after the same checks as a one-shot
/// upload. The manifest is kept with the upload: checked again at every request, its digest at
/// the last byte.
pub async fn create_upload(
    gw: &Gateway,
    caller: &Principal,
    request: String,
    manifest: &ManifestParts,
    length: u64,
) -> Result<NewUpload, LifecycleError> {
    let checked = check_request(gw, caller, &request, manifest, Some(length)).await?;
    if length == 0 {
        return Err(checked.refuse(gw, caller, Refusal::Envelope(EnvelopeError::Empty), 0).await);
    }
    let now = gw.clock.now();
    let row = UploadRow {
        id: TransferId::generate(),
        sender: caller.id.clone(),
        length,
        received: 0,
        header_checked: false,
        request,
        expires_at: now + gw.config.upload_resume_window,
        completed: false,
        manifest: checked.signed.as_ref().map(SignedUpload::stored),
    };
    let event = Event::new(EventKind::UploadStarted).actor(&caller.id).transfer(&row.id).field("length", length);
    if let Err(e) = gw.store.create_upload(&row, &event, now).await {
        return Err(super::commit::storage_fault(gw, &caller.id, None, e.into(), 0).await);
    }
    Ok(NewUpload { id: row.id })
}

/// The caller's own upload as it stands durably, for `HEAD`: a request of this process that
/// writes it and stalled is taken over first, so that the offset answered counts every byte it
/// wrote and the next `PATCH` may go on at once.
pub async fn upload_offset(gw: &Arc<Gateway>, caller: &Principal, id: &str) -> Result<UploadRow, LifecycleError> {
    let row = upload_status(gw, caller, id).await?;
    if row.completed || !take_over_stalled(gw, &row.id).await? {
        return Ok(row);
    }
    upload_status(gw, caller, id).await
}

/// The caller's own upload, unexpired or completed; anyone else's is unknown.
pub async fn upload_status(gw: &Gateway, caller: &Principal, id: &str) -> Result<UploadRow, LifecycleError> {
    let unknown = || LifecycleError::UnknownUpload(id.to_owned());
    let id = TransferId::parse(id).ok_or_else(unknown)?;
    match gw.store.upload(&id).await? {
        Some(row) if row.sender == caller.id && (row.completed || row.expires_at > gw.clock.now()) => Ok(row),
        _ => Err(unknown()),
    }
}

/// The progress of an unfinished upload; for a completed one its answer with the links (for an
/// hour after completion, through any gateway), or the transfer's view after that.
pub async fn lookup_upload(gw: &Gateway, caller: &Principal, id: &str) -> Result<UploadLookup, LifecycleError> {
    let row = upload_status(gw, caller, id).await?;
    if !row.completed {
        return Ok(UploadLookup::Progress(UploadProgress {
            id: row.id.to_string(),
            status: UploadState::Uploading,
            offset: row.received,
            length: row.length,
        }));
    }
    if let Some(sealed) = gw.store.upload_answer(&row.id, &caller.id, gw.clock.now()).await? {
        match AnswerKey::derive(&gw.signing_key).open(&row.id, &caller.id, &sealed) {
            Ok(answer) => return Ok(UploadLookup::Completed(answer)),
            // Sealed under another signing key, or damaged: the links are lost, the transfer
            // is not.
            Err(e) => tracing::warn!(error = %e, upload = %row.id, "a completed upload's answer does not open"),
        }
    }
    Ok(UploadLookup::Transfer(gw.store.transfer(&row.id, &caller.id, caller.role == Role::Admin).await?))
}

/// Deletes an unfinished upload.
pub async fn terminate_upload(gw: &Arc<Gateway>, caller: &Principal, id: &str) -> Result<(), LifecycleError> {
    let row = upload_status(gw, caller, id).await?;
    if row.completed {
        return Err(LifecycleError::UploadComplete(row.id.to_string()));
    }
    let (busy, took_over) = lock(gw, &row.id).await?;
    claim_after(&busy, took_over).await?;
    gw.blobs.delete_partial(&row.id).await?;
    let event = Event::new(EventKind::UploadAborted)
        .actor(&caller.id)
        .transfer(&row.id)
        .code("terminated")
        .field("size", row.received);
    gw.store.delete_upload(&row.id, Some(&event), gw.clock.now()).await?;
    Ok(())
}

/// What a request appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// More bytes are expected; the upload holds this many.
    Partial {
        /// Bytes held durably.
        offset: u64,
    },
    /// The last byte arrived and the upload became a transfer.
    Completed {
        /// Bytes held (the whole length).
        offset: u64,
        /// The transfer (the upload's id).
        transfer: TransferId,
        /// Where it stands.
        status: TransferStatus,
    },
}

/// Appends `body` at `offset` (which must be what the upload holds). The work runs in its own
/// task, so a client that goes away mid-body still leaves every byte that arrived durable and
/// counted.
pub async fn patch_upload<S, E>(
    gw: Arc<Gateway>,
    caller: Principal,
    id: &str,
    offset: u64,
    declared: Option<u64>,
    body: S,
) -> Result<Appended, LifecycleError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
    E: Send + 'static,
{
    let mut body = body;
    let (busy, row) = match ready_to_append(&gw, &caller, id, offset, declared).await {
        Ok(ready) => ready,
        Err(e) => {
            // Read what the client is sending before answering, within limits: an answer sent
            // while it still writes would reach it as a broken pipe instead of this error.
            drain(&mut body).await;
            return Err(e);
        }
    };
    let (id, claim, sender) = (row.id.clone(), busy.claim.clone(), caller.id.clone());
    let appended = tokio::spawn(append(gw.clone(), busy, caller, row, body))
        .await
        .map_err(|e| LifecycleError::Blob(crate::blobs::BlobError::Io(std::io::Error::other(e))))
        .and_then(|appended| appended);
    let appended = match appended {
        Err(LifecycleError::BrokenOff { received }) => {
            // Every byte that arrived is durable and the upload resumes from it; the entry says
            // where, and whether the shutdown cut the request.
            let mut event = Event::new(EventKind::UploadAborted).actor(&sender).transfer(&id);
            if gw.is_stopping() {
                event = event.code("server_shutdown");
            }
            let event = event.field("resumable", "true").field("size", received);
            if let Err(e) = gw.store.record(&event, gw.clock.now()).await {
                tracing::warn!(error = %e, upload = %id, "could not record a resumable upload's request that broke off");
            }
            Err(LifecycleError::BrokenOff { received })
        }
        Err(e) if e.is_storage_fault() => {
            // What is durable stays, and the upload resumes from there once the fault is gone.
            let held = gw.store.upload(&id).await.ok().flatten().map_or(offset, |row| row.received);
            Err(super::commit::storage_fault(&gw, &sender, Some(&id), e, held).await)
        }
        other => other,
    };
    // Give the claim back before answering, whatever the answer, so the client's next request
    // may go to any gateway at once, even if this one dies right after (the drop's release is
    // the fallback).
    if let Err(e) = gw.store.release_upload(&id, &claim).await {
        tracing::warn!(error = %e, upload = %id, "could not give back an upload's claim; it runs out by itself");
    }
    appended
}

/// The upload `id`, claimed for this request and read again under the claim, if `offset` is what
/// it holds and `declared` more bytes fit.
async fn ready_to_append(
    gw: &Arc<Gateway>,
    caller: &Principal,
    id: &str,
    offset: u64,
    declared: Option<u64>,
) -> Result<(Busy, UploadRow), LifecycleError> {
    let row = upload_status(gw, caller, id).await?;
    if row.completed {
        return Err(LifecycleError::UploadComplete(row.id.to_string()));
    }
    let (busy, took_over) = lock(gw, &row.id).await?;
    claim_after(&busy, took_over).await?;
    match reread(gw, &row.id, offset, declared).await {
        Ok(row) => Ok((busy, row)),
        Err(e) => {
            // Given back before the answer, as after an append (the drop's release is late).
            if let Err(e) = gw.store.release_upload(&busy.id, &busy.claim).await {
                tracing::warn!(error = %e, upload = %busy.id, "could not give back an upload's claim; it runs out by itself");
            }
            Err(e)
        }
    }
}

/// The upload read again under its claim (a request that just ended may have moved the
/// offset), if `offset` is what it holds and `declared` more bytes fit.
async fn reread(
    gw: &Gateway,
    id: &TransferId,
    offset: u64,
    declared: Option<u64>,
) -> Result<UploadRow, LifecycleError> {
    let row = gw.store.upload(id).await?.ok_or_else(|| LifecycleError::UnknownUpload(id.to_string()))?;
    if offset != row.received {
        return Err(LifecycleError::OffsetMismatch { held: row.received, asked: offset });
    }
    if declared.is_some_and(|len| offset.saturating_add(len) > row.length) {
        return Err(LifecycleError::UploadLengthExceeded { length: row.length });
    }
    Ok(row)
}

/// How a request body ended.
enum BodyEnd {
    Complete,
    Broken,
    TooLong,
}

/// Appends the body through the intake pipeline; syncs and records the offset as it goes and at
/// the end, whatever the end; completes the upload at its last byte.
async fn append<S, E>(
    gw: Arc<Gateway>,
    busy: Busy,
    caller: Principal,
    row: UploadRow,
    mut body: S,
) -> Result<Appended, LifecycleError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let checked = recheck(&gw, &caller, &row).await?;
    let expected = checked.addressees();
    let mut pipeline = match gw.uploads.take_running(&row.id, row.received) {
        Some(pipeline) => pipeline,
        None => match rebuild(&gw, &row, &expected).await? {
            Ok(pipeline) => pipeline,
            Err(refusal) => {
                let refused = checked.refuse(&gw, &caller, refusal, row.received).await;
                discard(&gw, &row.id).await;
                drain(&mut body).await;
                return Err(refused);
            }
        },
    };
    let mut file = gw.blobs.append_partial(&row.id, row.received).await?;
    let (mut received, mut synced) = (row.received, row.received);
    let takeover = busy.holder.takeover.clone();
    let end = loop {
        let next = tokio::select! {
            biased;
            () = takeover.cancelled() => break BodyEnd::Broken,
            next = body.next() => next,
        };
        let piece = match next {
            None => break BodyEnd::Complete,
            Some(Err(_)) => break BodyEnd::Broken,
            Some(Ok(piece)) => piece,
        };
        busy.touch();
        if received + piece.len() as u64 > row.length {
            break BodyEnd::TooLong;
        }
        if let Err(refusal) = pipeline.feed(&piece, &expected).await {
            let refused = checked.refuse(&gw, &caller, refusal, received + piece.len() as u64).await;
            drop(file);
            discard(&gw, &row.id).await;
            drain(&mut body).await;
            return Err(refused);
        }
        file.write(&piece).await?;
        received += piece.len() as u64;
        if received - synced >= SYNC_EVERY {
            synced = save(&busy, &row, &mut file, pipeline.header_checked()).await?;
        }
    };
    let received = save(&busy, &row, &mut file, pipeline.header_checked()).await?;
    drop(file);
    if received < row.length {
        // Not finished: keep the pipeline for the next request (only if it saw every byte held).
        if pipeline.size() == received
            && let Ok(paused) = pipeline.pause().await
        {
            gw.uploads.keep_running(row.id.clone(), paused);
        }
        return match end {
            BodyEnd::Broken => Err(LifecycleError::BrokenOff { received }),
            BodyEnd::TooLong => Err(LifecycleError::UploadLengthExceeded { length: row.length }),
            BodyEnd::Complete => Ok(Appended::Partial { offset: received }),
        };
    }
    complete(&gw, &caller, &row, checked, pipeline).await
}

/// A pipeline for an upload whose pipeline this process does not hold (after a restart): the
/// bytes held are read back from disk through a new one.
async fn rebuild(
    gw: &Gateway,
    row: &UploadRow,
    expected: &[Addressee],
) -> Result<Result<Pipeline, Refusal>, LifecycleError> {
    let mut pipeline = Pipeline::new(&gw.rules);
    if row.received == 0 {
        return Ok(Ok(pipeline));
    }
    let mut pieces = gw.blobs.read_partial_pieces(&row.id).await?;
    while let Some(piece) = pieces.next().await {
        let mut piece = piece?;
        let left = row.received - pipeline.size();
        if piece.len() as u64 > left {
            piece.truncate(usize::try_from(left).unwrap_or(usize::MAX));
        }
        if piece.is_empty() {
            break;
        }
        // These bytes passed the pipeline before they were written; a refusal now means the
        // request's checks changed (a recipient's keys, say).
        if let Err(refusal) = pipeline.feed(&piece, expected).await {
            return Ok(Err(refusal));
        }
    }
    Ok(Ok(pipeline))
}

/// Makes what arrived durable and records it; returns the durable offset.
async fn save(
    busy: &Busy,
    row: &UploadRow,
    file: &mut PartialBlob,
    header_checked: bool,
) -> Result<u64, LifecycleError> {
    let gw = &busy.gw;
    let received = file.sync().await?;
    // Still this gateway's request: renew the claim (a gateway that lost it, after a pause
    // longer than the claim, stops here rather than count bytes beside another).
    claim(busy).await?;
    gw.store.set_upload_received(&row.id, received, header_checked).await?;
    Ok(received)
}

/// The creation checks again, as of now (keys and policies may have changed since); a refusal
/// ends the upload.
async fn recheck(gw: &Gateway, caller: &Principal, row: &UploadRow) -> Result<Checked, LifecycleError> {
    let manifest = ManifestParts::of_stored(row.manifest.as_ref());
    let checked = check_request(gw, caller, &row.request, &manifest, Some(row.length)).await;
    if let Err(e) = &checked
        && e.is_client_error()
    {
        discard(gw, &row.id).await;
    }
    checked
}

/// Deletes a refused or broken upload, file and record; failures go to the log (the sweeper
/// deletes what is left when the resume window ends).
async fn discard(gw: &Gateway, id: &TransferId) {
    if let Err(e) = gw.blobs.delete_partial(id).await {
        tracing::warn!(error = %e, upload = %id, "could not delete a partial upload; the sweeper will");
    }
    if let Err(e) = gw.store.delete_upload(id, None, gw.clock.now()).await {
        tracing::warn!(error = %e, upload = %id, "could not delete an upload record; the sweeper will");
    }
}

/// The last byte arrived: the payload checks, then the one-shot upload's commit (which checks
/// the signed manifest's digest). A refusal deletes the upload.
async fn complete(
    gw: &Gateway,
    caller: &Principal,
    row: &UploadRow,
    checked: Checked,
    pipeline: Pipeline,
) -> Result<Appended, LifecycleError> {
    let inspected = match pipeline.finish(&checked.addressees()).await {
        Ok(inspected) => inspected,
        Err(ReceiveError::Refused(refusal)) => {
            let refused = checked.refuse(gw, caller, refusal, row.length).await;
            discard(gw, &row.id).await;
            return Err(refused);
        }
        Err(ReceiveError::Blob(e)) => return Err(e.into()),
        Err(ReceiveError::Aborted) => return Err(LifecycleError::Aborted),
    };
    let staged = gw.blobs.stage_partial(&row.id).await?;
    let answer = match commit(gw, row.id.clone(), checked, staged, inspected).await {
        Ok(answer) => answer,
        Err(e) => {
            // The staged bytes are gone with the failed commit; so is the upload.
            discard(gw, &row.id).await;
            return Err(e);
        }
    };
    let now = gw.clock.now();
    let until = now + chrono::Duration::from_std(ANSWER_KEPT).unwrap_or_default();
    let sealed = AnswerKey::derive(&gw.signing_key).seal(&row.id, &caller.id, &answer);
    if let Err(e) = &sealed {
        tracing::error!(error = %e, upload = %row.id, "the transfer is stored but its answer cannot be kept");
    }
    let kept = sealed.as_deref().ok().map(|sealed| (sealed, until));
    if let Err(e) = gw.store.complete_upload(&row.id, kept, now).await {
        tracing::error!(error = %e, upload = %row.id, "the transfer is stored but its upload is not marked complete");
    }
    Ok(Appended::Completed { offset: row.length, transfer: row.id.clone(), status: answer.status })
}
