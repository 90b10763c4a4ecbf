//! Delivery reports: `POST /api/v1/transfers/{id}/delivery` with `{"status":"decrypted"}` or
//! `{"status":"failed","reason":"CODE"}`, from a recipient whose link was used up, once. It is
//! recorded as `delivery.acknowledged` and shows in the sender's receipts and transfer view. A
//! `decrypted` report may be signed for: a delivery statement ([`crate::delivery`]) signed with
//! one of the recipient's `sealpost-signing` keys, checked here and logged in the entry.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use base64::Engine as _;

use crate::delivery::{Statement, signature_verifies};
use crate::directory::{SIGNING_TYPE, signing_public_key};
use crate::store::{Acknowledgement, DeliveryReport, Reportable, SignedFor};
use crate::transparency::writer::LogError;
use crate::wire::deliveries::{DeliveryRecorded, ReportDelivery};
use crate::wire::transfers::DeliveryOutcome;
use crate::wire::{ErrorBody, ErrorCode};

/// The delivery route.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(report))
}

/// 404 for anyone but a recipient whose link was used up: the transfer's existence is not
/// theirs to learn.
fn not_yours(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "you hold no used link of transfer `{id}`: only a recipient who collected it can report"
    ))
}

/// A reason is a short code, never free text: the report goes into the transparency log, which
/// must hold no file name, path or plaintext.
fn is_reason_code(reason: &str) -> bool {
    (1..=64).contains(&reason.len())
        && reason.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// How far a statement's time may lie behind the gateway's clock, and ahead of it.
const STATEMENT_AGE_MAX: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
const STATEMENT_AHEAD_MAX: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// A refusal of a signed report: logged as `delivery.refused` with its code, then answered.
struct Refusal(ErrorCode, String);

/// Checks a signed report against everything but the store's view (the key's liveness, the
/// transfer's digest and the caller's name are checked in the report's transaction).
async fn check_signed(
    gw: &Gateway,
    caller: &Caller,
    upload_index: u64,
    statement: &str,
    signature: &str,
    key: &str,
) -> Result<Result<SignedFor, Refusal>, ApiError> {
    let keys = gw.store.list_keys(&caller.0.user).await?;
    let Some(key) = keys.into_iter().find(|k| k.stanza_type == SIGNING_TYPE && k.fingerprint == key) else {
        return Ok(Err(Refusal(
            ErrorCode::UnknownSigningKey,
            format!("`{key}` is none of your live signing keys: register one with `sealpost keys add` and sign again"),
        )));
    };
    let public = signing_public_key(&key.recipient)
        .ok_or_else(|| ApiError::internal(&format!("stored signing key {} does not parse", key.fingerprint)))?;
    let parsed = match check_statement(gw.clock.now(), upload_index, statement, signature, &public) {
        Ok(parsed) => parsed,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // The checkpoint must be a state this log passed through; a log that cannot be read is the
    // gateway's failure, not the recipient's.
    let root = match gw.log.log().root_at(parsed.checkpoint_size).await {
        Ok(root) => Some(root),
        Err(LogError::NotYet { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    if root.map(|r| base64::engine::general_purpose::STANDARD.encode(r.as_bytes()))
        != Some(parsed.checkpoint_root.clone())
    {
        return Ok(Err(not_this_log(&parsed)));
    }
    Ok(Ok(SignedFor {
        statement: parsed,
        signature: signature.trim().to_owned(),
        key: key.recipient,
        fingerprint: key.fingerprint,
    }))
}

/// The refusal of a statement whose checkpoint is not a state of this log covering the upload.
fn not_this_log(parsed: &Statement) -> Refusal {
    Refusal(
        ErrorCode::StatementMismatch,
        format!(
            "the statement's checkpoint (size {}) is not a state of this gateway's log that includes the upload: \
             verify the upload receipt against this gateway's log and sign again",
            parsed.checkpoint_size
        ),
    )
}

/// The checks of a signed statement that need neither database nor log: canonical form,
/// signature, time, and a checkpoint large enough to include the upload.
fn check_statement(
    now: chrono::DateTime<chrono::Utc>,
    upload_index: u64,
    statement: &str,
    signature: &str,
    public: &ed25519_dalek::VerifyingKey,
) -> Result<Statement, Refusal> {
    let parsed = Statement::parse(statement).map_err(|e| {
        Refusal(ErrorCode::StatementMismatch, format!("{e}; sign the statement exactly as `sealpost fetch` writes it"))
    })?;
    if !signature_verifies(statement, signature, public) {
        return Err(Refusal(
            ErrorCode::DeliverySignatureInvalid,
            "the signature does not verify under that key: sign the statement with the key you name".into(),
        ));
    }
    if parsed.time < now - STATEMENT_AGE_MAX || parsed.time > now + STATEMENT_AHEAD_MAX {
        return Err(Refusal(
            ErrorCode::StatementLate,
            format!(
                "the statement is dated {}, too far from the gateway's time {}: check your clock and sign a fresh statement",
                parsed.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ));
    }
    if parsed.checkpoint_size <= upload_index {
        return Err(not_this_log(&parsed));
    }
    Ok(parsed)
}

/// Report whether a collected bundle decrypted, and sign for it.
///
/// A recipient whose link of this transfer was used up, once. The report becomes the log entry
/// `delivery.acknowledged` and shows in the sender's view and receipts. With `statement`,
/// `signature` and `key`, the recipient signs for the delivery: the entry then carries the signed
/// statement (the name as its commitment) and the receipt proves the recipient's own signature.
/// A refused signed report is logged as `delivery.refused` and changes nothing else.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/delivery", operation_id = "report_delivery", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    request_body = ReportDelivery,
    responses(
        (status = 201, description = "Recorded.", body = DeliveryRecorded),
        (status = 400, description = "`bad_request`: the body is not a delivery report, a `decrypted` report has a `reason`, the reason is not a code, only some of `statement`, `signature` and `key` are given, or a `failed` report is signed.", body = ErrorBody),
        (status = 404, description = "`not_found`: the caller holds no used link of such a transfer.", body = ErrorBody),
        (status = 409, description = "`already_reported`: the caller reported on this delivery already.", body = ErrorBody),
        (status = 422, description = "`unknown_signing_key`: the key is not one of the caller's live signing keys; `statement_mismatch`: the statement is not canonical or names another transfer, digest, recipient, or a checkpoint that is not a state of this log covering the upload; `delivery_signature_invalid`: the signature does not verify; `statement_late`: the statement's time is more than 10 minutes old or ahead of the gateway's clock.", body = ErrorBody),
    ))]
async fn report(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReportDelivery>,
) -> Result<(StatusCode, Json<DeliveryRecorded>), ApiError> {
    let transfer = TransferId::parse(&id).ok_or_else(|| not_yours(&id))?;
    let signed = match (request.statement, request.signature, request.key) {
        (None, None, None) => None,
        (Some(statement), Some(signature), Some(key)) => Some((statement, signature, key)),
        _ => {
            return Err(ApiError::bad_request(
                "to sign for a delivery give `statement`, `signature` and `key` together; to report unsigned give none",
            ));
        }
    };
    let unsigned = match (request.status, request.reason) {
        (DeliveryOutcome::Decrypted, None) => None,
        (DeliveryOutcome::Decrypted, Some(_)) => {
            return Err(ApiError::bad_request("a `decrypted` report takes no `reason`"));
        }
        (DeliveryOutcome::Failed, _) if signed.is_some() => {
            return Err(ApiError::bad_request(
                "only a delivery that decrypted is signed for: send a `failed` report without a statement",
            ));
        }
        (DeliveryOutcome::Failed, reason) => {
            let reason = reason.unwrap_or_else(|| "unspecified".to_owned());
            if !is_reason_code(&reason) {
                return Err(ApiError::bad_request(
                    "`reason` must be a code such as `digest_mismatch`: lowercase letters, digits and `_`, at most 64",
                ));
            }
            Some(DeliveryReport::Failed { reason })
        }
    };
    let already = || {
        ApiError::new(ErrorCode::AlreadyReported, format!("you reported on the delivery of transfer `{id}` already"))
    };
    let upload_index = match gw.store.reportable(&transfer, &caller.0.id).await? {
        Reportable::Open(index) => index,
        Reportable::NotRecipient => return Err(not_yours(&id)),
        Reportable::AlreadyReported => return Err(already()),
    };
    let report = match (unsigned, signed) {
        (Some(report), _) => report,
        (None, None) => DeliveryReport::Decrypted(None),
        (None, Some((statement, signature, key))) => {
            match check_signed(&gw, &caller, upload_index, &statement, &signature, &key).await? {
                Ok(signed) => DeliveryReport::Decrypted(Some(signed)),
                Err(Refusal(code, message)) => return Err(refuse(&gw, &transfer, &caller, code, message).await),
            }
        }
    };
    let is_signed = matches!(report, DeliveryReport::Decrypted(Some(_)));
    match gw.store.acknowledge_delivery(&transfer, &caller.0.id, &report, gw.clock.now()).await? {
        Acknowledgement::Recorded(log_index) => Ok((
            StatusCode::CREATED,
            Json(DeliveryRecorded {
                transfer: transfer.to_string(),
                status: request.status,
                log_index,
                signed: is_signed,
            }),
        )),
        Acknowledgement::NotRecipient => Err(not_yours(&id)),
        Acknowledgement::AlreadyReported => Err(already()),
        Acknowledgement::StatementMismatch(why) => Err(refuse(
            &gw,
            &transfer,
            &caller,
            ErrorCode::StatementMismatch,
            format!("{why}: sign a statement for the bundle you collected, under your own name"),
        )
        .await),
        Acknowledgement::UnknownSigningKey => Err(refuse(
            &gw,
            &transfer,
            &caller,
            ErrorCode::UnknownSigningKey,
            "the signing key is none of your live signing keys (was it removed?): register one and sign again".into(),
        )
        .await),
    }
}

/// Logs a refused report (`delivery.refused`) and makes its answer; if the log cannot take the
/// event, the answer says so instead (no refusal goes unrecorded).
async fn refuse(gw: &Gateway, transfer: &TransferId, caller: &Caller, code: ErrorCode, message: String) -> ApiError {
    match gw.store.refuse_delivery(transfer, &caller.0.id, code.as_str(), gw.clock.now()).await {
        Ok(_) => ApiError::new(code, message),
        Err(e) => e.into(),
    }
}
