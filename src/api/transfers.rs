//! Uploads, the sender's view of a transfer, and recall.
//!
//! `POST /api/v1/transfers?to=ORG/NAME[&to=…][&expires=72h][&classification=…]` takes the age
//! file as a streamed body (any length, chunked allowed), so `curl -T` and `age … | curl -T -`
//! work as they are. Resumable uploads (`api::tus`) end in the same checks and the same commit:
//! [`check_request`] before any byte is accepted, [`commit_upload`] once every byte passed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use crate::audit::{Event, EventKind};
use crate::blobs::BlobStore;
use crate::directory::SIGNING_TYPE;
use crate::ids::{BearerSecret, LinkId, TransferId};
use crate::model::{Classification, Role, UserRef};
use crate::policy::{Action, PolicyGate, PolicyRequest, Resource, UploadRequest, principal_facts};
use crate::server::Gateway;
use crate::store::{NewLink, NewTransfer, Purge, Recipient, StoreError, TransferRecord};
use crate::upload::{self, Received, Refusal, UploadError};

/// After an early refusal, read and discard at most this much of the rest of the body, so the
/// sender's client sees the answer instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 << 20;
/// …and for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The transfer routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/transfers", post(upload))
        .route("/api/v1/transfers/{id}", get(show).delete(recall))
        .route("/api/v1/transfers/{id}/approve", post(approve))
        .route("/api/v1/transfers/{id}/reject", post(reject))
}

/// One recipient's link in the upload answer.
#[derive(Debug, Serialize)]
struct LinkAnswer {
    recipient: UserRef,
    url: String,
    expires_at: DateTime<Utc>,
}

/// The upload answer.
#[derive(Debug, Serialize)]
pub(super) struct UploadAnswer {
    id: String,
    status: &'static str,
    /// The policies that released (or held) it.
    policies: Vec<String>,
    /// Proof of upload: a C2SP tlog-proof of the `upload.accepted` entry (absent if the log did
    /// not integrate it in time; `GET /api/v1/transfers/{id}/receipts` has it later).
    receipt: Option<String>,
    size: u64,
    digest: String,
    classification: Classification,
    expires_at: DateTime<Utc>,
    links: Vec<LinkAnswer>,
}

/// The parsed query string of an upload.
#[derive(Debug)]
pub(super) struct UploadQuery {
    to: Vec<UserRef>,
    expires: Option<Duration>,
    classification: Classification,
}

fn parse_query(raw: Option<&str>) -> Result<UploadQuery, ApiError> {
    let mut q = UploadQuery { to: Vec::new(), expires: None, classification: Classification::Official };
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "to" => {
                let user: UserRef = value.parse()?;
                if q.to.contains(&user) {
                    return Err(ApiError::bad_request(format!(
                        "`{user}` is addressed twice: name each recipient once"
                    )));
                }
                q.to.push(user);
            }
            "expires" => {
                let d = crate::config::parse_duration("expires", &value)
                    .map_err(|_| ApiError::bad_request(format!("`{value}` is not a duration such as `72h` or `7d`")))?;
                q.expires = Some(d);
            }
            "classification" => {
                q.classification = value.parse()?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{other}`: use `to`, `expires` and `classification`"
                )));
            }
        }
    }
    if q.to.is_empty() {
        return Err(ApiError::bad_request("name at least one recipient with `?to=ORG/NAME`"));
    }
    Ok(q)
}

fn keys_url(gw: &Gateway, user: &UserRef) -> String {
    format!("{}/api/v1/keys/{}/{}", gw.public_url, user.org, user.name)
}

/// The 4xx answer for a refused upload.
fn refusal_answer(gw: &Gateway, refusal: &Refusal, recipients: &[Recipient]) -> ApiError {
    let keys: Vec<String> = recipients.iter().map(|r| keys_url(gw, &r.user)).collect();
    let encrypt_hint = format!("encrypt with `age -r` to every key listed at {}", keys.join(" and "));
    let (status, message) = match refusal {
        Refusal::TooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, format!("{refusal}: split the data into smaller bundles"))
        }
        Refusal::Passphrase => (StatusCode::UNPROCESSABLE_ENTITY, format!("{refusal}: {encrypt_hint} instead")),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, format!("{refusal}: {encrypt_hint}")),
    };
    ApiError::new(status, refusal.code(), message).with("reason", refusal.reason())
}

/// What an upload needs once the request line has passed every check.
#[derive(Debug)]
pub(super) struct Checked {
    recipients: Vec<Recipient>,
    approval: crate::policy::Approval,
}

impl Checked {
    /// The stanza types the file must carry: one per directory key of the addressed recipients.
    pub(super) fn expected_types(&self) -> Vec<&str> {
        self.recipients
            .iter()
            .flat_map(|r| r.keys.iter().map(|k| k.stanza_type.as_str()))
            .filter(|t| *t != SIGNING_TYPE)
            .collect()
    }

    /// Records a refused upload of `size` bytes and makes its 4xx answer.
    pub(super) async fn refuse(&self, gw: &Gateway, caller: &Caller, refusal: Refusal, size: u64) -> ApiError {
        let event = Event::new(EventKind::UploadRefused)
            .actor(&caller.0.id)
            .code(refusal.code())
            .field("reason", refusal.reason())
            .field("size", size);
        if let Err(e) = gw.store.record(&event, gw.clock.now()).await {
            return e.into();
        }
        refusal_answer(gw, &refusal, &self.recipients)
    }
}

/// Checks an upload before any of its bytes is accepted: the log is up, then who uploads, to
/// whom, for how long (role, query, recipients and their keys, policy), then the declared size.
/// A refusal is recorded in the audit trail.
pub(super) async fn check_request(
    gw: &Gateway,
    caller: &Caller,
    raw: Option<&str>,
    size: Option<u64>,
) -> Result<Checked, ApiError> {
    if !gw.log.healthy() {
        return Err(ApiError::log_unavailable());
    }
    let checked = match check_addressing(gw, caller, raw, size).await {
        Ok(checked) => checked,
        Err(e) if e.is_client_error() => {
            let mut event = Event::new(EventKind::UploadRefused).actor(&caller.0.id).code(e.code());
            if let Some(policies) = e.detail("policies") {
                event = event.field("policies", policies);
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

/// Role, query, recipients and their keys, policy.
async fn check_addressing(
    gw: &Gateway,
    caller: &Caller,
    raw: Option<&str>,
    size: Option<u64>,
) -> Result<Checked, ApiError> {
    let query = parse_query(raw)?;
    let recipients = gw.store.recipients(&query.to).await.map_err(|e| match e {
        StoreError::UnknownUser(u) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_recipient",
            format!("there is no user `{u}`: check the address with the recipient's organisation"),
        ),
        other => other.into(),
    })?;
    if let Some(r) = recipients.iter().find(|r| r.keys.iter().all(|k| k.stanza_type == SIGNING_TYPE)) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient_has_no_key",
            format!("`{}` has no key in the directory: ask them to register one with `sealpost keys add`", r.user),
        ));
    }
    let mut org_names: Vec<&str> = recipients.iter().map(|r| r.user.org.as_str()).collect();
    org_names.push(&caller.0.user.org);
    org_names.sort_unstable();
    org_names.dedup();
    let orgs = gw.store.org_facts(&org_names).await?;
    let request = UploadRequest {
        sender: &caller.0,
        recipients: &recipients,
        orgs: &orgs,
        expires_in: query.expires.unwrap_or(gw.config.default_expiry),
        classification: query.classification,
        size,
        now: gw.clock.now(),
    };
    let approval = gw.gate.authorize_upload(&request)?;
    Ok(Checked { recipients, approval })
}

async fn upload(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadAnswer>), ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let checked = check_request(&gw, &caller, raw.as_deref(), declared).await?;
    let id = TransferId::generate();
    let staged = gw.blobs.stage(&id).await?;
    let mut stream = body.into_data_stream();
    let received = match upload::receive(&mut stream, staged, &checked.expected_types(), &gw.rules).await {
        Ok(r) => r,
        Err((UploadError::Refused(refusal), size)) => {
            let answer = checked.refuse(&gw, &caller, refusal, size).await;
            drain(&mut stream).await;
            return Err(answer);
        }
        Err((UploadError::Aborted, size)) => {
            let event = Event::new(EventKind::UploadAborted).actor(&caller.0.id).field("size", size);
            gw.store.record(&event, gw.clock.now()).await?;
            return Err(ApiError::bad_request("the upload broke off before its end; nothing was kept, send it again"));
        }
        Err((UploadError::Blob(e), _)) => return Err(e.into()),
    };
    let (status, answer) = commit_upload(&gw, id, checked, received).await?;
    Ok((status, Json(answer)))
}

/// Commits an upload that passed every check: release policy, blob, transfer, links and their
/// audit events; answers with the links and the receipt.
pub(super) async fn commit_upload(
    gw: &Gateway,
    id: TransferId,
    checked: Checked,
    received: Received,
) -> Result<(StatusCode, UploadAnswer), ApiError> {
    let Checked { recipients, approval } = checked;
    let object_key = BlobStore::key_for(&id);
    let envelope = vec![
        ("armored", received.envelope.header.armored.to_string()),
        ("stanzas", received.envelope.header.recipient_stanzas().count().to_string()),
        ("payload", received.envelope.payload_len.to_string()),
    ];
    let transfer = NewTransfer {
        id: id.clone(),
        size: received.size,
        digest: received.digest.clone(),
        armored: received.envelope.header.armored,
        object_key: object_key.clone(),
        envelope,
    };
    let tokens: Vec<BearerSecret> = recipients.iter().map(|_| BearerSecret::generate("")).collect();
    let links: Vec<NewLink> = recipients
        .iter()
        .zip(&tokens)
        .map(|(r, t)| NewLink { id: LinkId::generate(), recipient: r.id.clone(), token_hash: t.hash() })
        .collect();
    let facts = serde_json::Map::from_iter([
        ("armored".to_owned(), json!(received.envelope.header.armored)),
        ("recipient_stanzas".to_owned(), json!(received.envelope.header.recipient_stanzas().count())),
    ]);
    let release = gw.gate.release(
        approval.sender_facts(),
        &PolicyGate::transfer_facts(&approval, id.as_str(), received.size),
        approval.orgs(),
        facts,
        gw.clock.now(),
    );
    gw.blobs.commit(received.staged, &object_key).await?;
    let accepted_idx = match gw.store.insert_transfer(&approval, &release, &transfer, &links, gw.clock.now()).await {
        Ok(idx) => idx,
        Err(e) => {
            // Not recorded, so not accepted: the blob must not outlive the failure.
            if let Err(blob) = gw.blobs.delete(&object_key).await {
                tracing::error!(error = %blob, transfer = %id, "could not delete an uncommitted blob; start-up will sweep it");
            }
            return Err(e.into());
        }
    };
    tracing::info!(transfer = %id, size = received.size, recipients = recipients.len(), "upload accepted");
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
    let (status_code, status) =
        if release.held() { (StatusCode::ACCEPTED, "awaiting_approval") } else { (StatusCode::CREATED, "available") };
    Ok((
        status_code,
        UploadAnswer {
            id: id.to_string(),
            status,
            policies: release.policies().to_vec(),
            receipt,
            size: received.size,
            digest: received.digest,
            classification: approval.classification(),
            expires_at: approval.expires_at(),
            links,
        },
    ))
}

/// How long an upload answer waits for its entry to be integrated into the log.
const RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// The receipt for the upload's log entry, once the sequencer has integrated it.
async fn upload_receipt(gw: &Gateway, index: u64) -> Option<String> {
    if !gw.log.wait_for(index, RECEIPT_WAIT).await {
        tracing::warn!(index, "upload answered before its log entry was integrated");
        return None;
    }
    let entry = gw.store.entries_from(index, 1).await.ok()?.pop()?.1;
    gw.log.log().receipt(index, entry.as_bytes()).ok()
}

/// Reads and discards what is left of a refused body, within limits.
pub(super) async fn drain<S, E>(stream: &mut S)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
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

fn transfer_id(s: &str) -> Result<TransferId, ApiError> {
    TransferId::parse(s).ok_or_else(|| ApiError::not_found(format!("there is no transfer `{s}`")))
}

async fn show(State(gw): State<Arc<Gateway>>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = transfer_id(&id)?;
    let info = gw.store.transfer(&id, &caller.0.id, caller.is_admin()).await?;
    Ok(Json(json!(info)))
}

/// Asks the policies whether the caller may act on a transfer. A default deny on a transfer the
/// caller has nothing to do with answers 404, so ids of other people's transfers leak nothing.
async fn authorize_on_transfer(
    gw: &Gateway,
    caller: &Caller,
    id: &TransferId,
    action: Action,
    what: &str,
) -> Result<TransferRecord, ApiError> {
    let record = gw.store.transfer_record(id).await?;
    let request = PolicyRequest {
        action,
        principal: principal_facts(&caller.0),
        resource: Resource::Transfer(record.facts.clone()),
        orgs: record.orgs.clone(),
        context: serde_json::Map::new(),
    };
    let me = caller.0.id.as_str();
    let involved = record.facts.sender.id == me || record.facts.recipients.iter().any(|r| r.id == me);
    let overseer = matches!(caller.0.role, Role::Admin | Role::Compliance);
    match gw.gate.authorize(&request, what, gw.clock.now()) {
        Ok(_) => Ok(record),
        Err(d) if !d.explicit() && !involved && !overseer => {
            Err(ApiError::not_found(format!("there is no transfer `{id}`")))
        }
        Err(d) => Err(d.into()),
    }
}

async fn recall(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = transfer_id(&id)?;
    let what = format!("`{}` to recall this transfer", caller.0.user);
    authorize_on_transfer(&gw, &caller, &id, Action::Recall, &what).await?;
    let recall = gw.store.recall(&id, &caller.0.id, caller.is_admin(), gw.clock.now()).await?;
    let mut purged = false;
    if let Some(key) = recall.object_key {
        // The links are revoked already; deleting the ciphertext now (not at the next sweep)
        // is what pulls a mis-addressed bundle back. If it fails, the sweeper retries.
        let purge = Purge { transfer: id.clone(), object_key: key, reason: "recalled" };
        purged = crate::sweeper::purge(&gw.store, &gw.blobs, &gw.clock, &purge).await;
    }
    Ok(Json(json!({ "id": id.as_str(), "status": "recalled", "links_revoked": recall.revoked, "purged": purged })))
}

async fn approve(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    decide(&gw, &caller, &id, true).await
}

async fn reject(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    decide(&gw, &caller, &id, false).await
}

/// Approves or rejects a held transfer: the `approve` policy decides who may; on approval the
/// `release` policy is asked again with the approval in place.
async fn decide(gw: &Gateway, caller: &Caller, id: &str, approve: bool) -> Result<Json<Value>, ApiError> {
    let id = transfer_id(id)?;
    let verb = if approve { "approve" } else { "reject" };
    let record = authorize_on_transfer(
        gw,
        caller,
        &id,
        Action::Approve,
        &format!("`{}` to {verb} this transfer", caller.0.user),
    )
    .await?;
    let mut facts = record.facts.clone();
    facts.approved = approve;
    let context = serde_json::Map::from_iter([
        ("armored".to_owned(), json!(record.armored)),
        ("recipient_stanzas".to_owned(), json!(facts.recipients.len())),
    ]);
    let release = gw.gate.release(&facts.sender, &facts, &record.orgs, context, gw.clock.now());
    let decided = gw.store.decide_transfer(&id, &caller.0.id, approve, &release, gw.clock.now()).await?;
    let mut purged = false;
    if let Some(key) = decided.object_key {
        let purge = Purge { transfer: id.clone(), object_key: key, reason: "rejected" };
        purged = crate::sweeper::purge(&gw.store, &gw.blobs, &gw.clock, &purge).await;
    }
    let status = match (approve, decided.released) {
        (false, _) => "rejected",
        (true, true) => "available",
        (true, false) => "awaiting_approval",
    };
    Ok(Json(json!({
        "id": id.as_str(),
        "status": status,
        "decided_by": caller.0.user,
        "policies": release.policies(),
        "links_revoked": decided.revoked,
        "purged": purged,
    })))
}
