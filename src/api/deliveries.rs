//! Delivery reports: `POST /api/v1/transfers/{id}/delivery` with `{"status":"decrypted"}` or
//! `{"status":"failed","reason":"CODE"}`, from a recipient whose link was used up, once. It is
//! recorded as `delivery.acknowledged` and shows in the sender's receipts and transfer view.

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
use crate::store::{Acknowledgement, DeliveryReport};
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

/// Report whether a collected bundle decrypted.
///
/// A recipient whose link of this transfer was used up, once. The report becomes the log entry
/// `delivery.acknowledged` and shows in the sender's view and receipts.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/delivery", operation_id = "report_delivery", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    request_body = ReportDelivery,
    responses(
        (status = 201, description = "Recorded.", body = DeliveryRecorded),
        (status = 400, description = "`bad_request`: the body is not a delivery report, a `decrypted` report has a `reason`, or the reason is not a code.", body = ErrorBody),
        (status = 404, description = "`not_found`: the caller holds no used link of such a transfer.", body = ErrorBody),
        (status = 409, description = "`already_reported`: the caller reported on this delivery already.", body = ErrorBody),
    ))]
async fn report(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReportDelivery>,
) -> Result<(StatusCode, Json<DeliveryRecorded>), ApiError> {
    let transfer = TransferId::parse(&id).ok_or_else(|| not_yours(&id))?;
    let report = match (request.status, request.reason) {
        (DeliveryOutcome::Decrypted, None) => DeliveryReport::Decrypted,
        (DeliveryOutcome::Decrypted, Some(_)) => {
            return Err(ApiError::bad_request("a `decrypted` report takes no `reason`"));
        }
        (DeliveryOutcome::Failed, reason) => {
            let reason = reason.unwrap_or_else(|| "unspecified".to_owned());
            if !is_reason_code(&reason) {
                return Err(ApiError::bad_request(
                    "`reason` must be a code such as `digest_mismatch`: lowercase letters, digits and `_`, at most 64",
                ));
            }
            DeliveryReport::Failed { reason }
        }
    };
    match gw.store.acknowledge_delivery(&transfer, &caller.0.id, &report, gw.clock.now()).await? {
        Acknowledgement::Recorded(log_index) => Ok((
            StatusCode::CREATED,
            Json(DeliveryRecorded { transfer: transfer.to_string(), status: request.status, log_index }),
        )),
        Acknowledgement::NotRecipient => Err(not_yours(&id)),
        Acknowledgement::AlreadyReported => Err(ApiError::new(
            ErrorCode::AlreadyReported,
            format!("you reported on the delivery of transfer `{id}` already"),
        )),
    }
}
