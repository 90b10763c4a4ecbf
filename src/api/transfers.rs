//! Uploads, the sender's view of a transfer, and recall.
//!
//! `POST /api/v1/transfers?to=ORG/NAME[&to=…][&expires=72h][&classification=…]` takes the age
//! file as a streamed body (any length, chunked allowed), so `curl -T` and `age … | curl -T -`
//! work as they are.

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
use crate::ids::{BearerSecret, LinkId, TransferId};
use crate::model::{Classification, Role, UserRef};
use crate::policy::UploadRequest;
use crate::server::Gateway;
use crate::store::{NewLink, NewTransfer, Purge, Recipient, StoreError};
use crate::upload::{self, Refusal, UploadError};

/// After an early refusal, read and discard at most this much of the rest of the body, so the
/// sender's client sees the answer instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 << 20;
/// …and for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The transfer routes.
pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/api/v1/transfers", post(upload)).route("/api/v1/transfers/{id}", get(show).delete(recall))
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
struct UploadAnswer {
    id: String,
    status: &'static str,
    size: u64,
    digest: String,
    classification: Classification,
    expires_at: DateTime<Utc>,
    links: Vec<LinkAnswer>,
}

/// The parsed query string of an upload.
#[derive(Debug)]
struct UploadQuery {
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
struct Checked {
    recipients: Vec<Recipient>,
    approval: crate::policy::Approval,
}

/// Checks who uploads, to whom, for how long: role, query, recipients and their keys, policy.
async fn check_request(gw: &Gateway, caller: &Caller, raw: Option<&str>) -> Result<Checked, ApiError> {
    caller.require(&[Role::Sender], "upload")?;
    let query = parse_query(raw)?;
    let recipients = gw.store.recipients(&query.to).await.map_err(|e| match e {
        StoreError::UnknownUser(u) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_recipient",
            format!("there is no user `{u}`: check the address with the recipient's organisation"),
        ),
        other => other.into(),
    })?;
    if let Some(r) = recipients.iter().find(|r| r.keys.is_empty()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient_has_no_key",
            format!("`{}` has no key in the directory: ask them to register one with `sealpost keys add`", r.user),
        ));
    }
    let request = UploadRequest {
        sender: &caller.0,
        recipients: &recipients,
        expires_in: query.expires.unwrap_or(gw.config.default_expiry),
        classification: query.classification,
        now: gw.clock.now(),
    };
    let approval = gw.gate.authorize_upload(&request).map_err(|denial| {
        ApiError::new(StatusCode::FORBIDDEN, "policy_denied", denial.message).with("policies", denial.policies)
    })?;
    Ok(Checked { recipients, approval })
}

async fn upload(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UploadAnswer>), ApiError> {
    let sender = &caller.0;
    let Checked { recipients, approval } = match check_request(&gw, &caller, raw.as_deref()).await {
        Ok(checked) => checked,
        Err(e) if e.is_client_error() => {
            let mut event = Event::new(EventKind::UploadRefused).actor(&sender.id).code(e.code());
            if let Some(policies) = e.detail("policies") {
                event = event.field("policies", policies);
            }
            gw.store.record(&event, gw.clock.now()).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let refuse = async |refusal: Refusal, size: u64| -> ApiError {
        let event = Event::new(EventKind::UploadRefused)
            .actor(&sender.id)
            .code(refusal.code())
            .field("reason", refusal.reason())
            .field("size", size);
        if let Err(e) = gw.store.record(&event, gw.clock.now()).await {
            return e.into();
        }
        refusal_answer(&gw, &refusal, &recipients)
    };

    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > gw.rules.max_size) {
        return Err(refuse(Refusal::TooLarge { limit: gw.rules.max_size }, len).await);
    }

    let id = TransferId::generate();
    let staged = gw.blobs.stage(&id).await?;
    let expected: Vec<&str> = recipients.iter().flat_map(|r| r.keys.iter().map(|k| k.stanza_type.as_str())).collect();
    let mut stream = body.into_data_stream();
    let received = match upload::receive(&mut stream, staged, &expected, &gw.rules).await {
        Ok(r) => r,
        Err((UploadError::Refused(refusal), size)) => {
            let answer = refuse(refusal, size).await;
            drain(&mut stream).await;
            return Err(answer);
        }
        Err((UploadError::Aborted, size)) => {
            let event = Event::new(EventKind::UploadAborted).actor(&sender.id).field("size", size);
            gw.store.record(&event, gw.clock.now()).await?;
            return Err(ApiError::bad_request("the upload broke off before its end; nothing was kept, send it again"));
        }
        Err((UploadError::Blob(e), _)) => return Err(e.into()),
    };

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
    gw.blobs.commit(received.staged, &object_key).await?;
    if let Err(e) = gw.store.insert_transfer(&approval, &transfer, &links, gw.clock.now()).await {
        // Not recorded, so not accepted: the blob must not outlive the failure.
        if let Err(blob) = gw.blobs.delete(&object_key).await {
            tracing::error!(error = %blob, transfer = %id, "could not delete an uncommitted blob; start-up will sweep it");
        }
        return Err(e.into());
    }
    tracing::info!(transfer = %id, size = received.size, recipients = recipients.len(), "upload accepted");
    let links = recipients
        .iter()
        .zip(&tokens)
        .map(|(r, t)| LinkAnswer {
            recipient: r.user.clone(),
            url: format!("{}/d#{}", gw.public_url, t.expose()),
            expires_at: approval.expires_at(),
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(UploadAnswer {
            id: id.to_string(),
            status: "available",
            size: received.size,
            digest: received.digest,
            classification: approval.classification(),
            expires_at: approval.expires_at(),
            links,
        }),
    ))
}

/// Reads and discards what is left of a refused body, within limits.
async fn drain<S, E>(stream: &mut S)
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

async fn recall(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&[Role::Sender, Role::Admin], "recall transfers")?;
    let id = transfer_id(&id)?;
    let recall = gw.store.recall(&id, &caller.0.id, caller.is_admin(), gw.clock.now()).await?;
    let mut purged = false;
    if let Some(key) = recall.object_key {
        // The links are revoked already; deleting the ciphertext now (not at the next sweep)
        // is what pulls a mis-addressed bundle back. If it fails, the sweeper retries.
        let purge = Purge { transfer: id.clone(), object_key: key, reason: "recalled" };
        match gw.blobs.delete(&purge.object_key).await {
            Ok(()) => {
                gw.store.mark_purged(&purge, gw.clock.now()).await?;
                purged = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, transfer = %id, "recall could not delete the blob yet; the sweeper will")
            }
        }
    }
    Ok(Json(json!({ "id": id.as_str(), "status": "recalled", "links_revoked": recall.revoked, "purged": purged })))
}
