//! Single sign-on for the CLI: the device authorization grant (RFC 8628), with the gateway as
//! the provider's client. `sealpost login --sso` asks for a device authorization, shows the
//! person the code, and polls; the gateway polls the provider once per poll, verifies the ID
//! token, finds the user as the pages do, and answers with a short-lived token that carries how
//! the person authenticated. Refusals are `session.refused` events (`method oidc`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiJson};
use crate::gateway::Gateway;
use crate::ids::BearerSecret;
use crate::sso::{ProviderClient, SsoError};
use crate::store::{AuthMethod, SsoGrant, SsoGranted};
use crate::wire::ErrorBody;
use crate::wire::ErrorCode;
use crate::wire::sso::{DevicePoll, DeviceRequest, DeviceStarted, ProviderInfo, ProviderList, SsoToken};

/// The single sign-on routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(providers)).routes(routes!(device)).routes(routes!(device_token))
}

/// List the identity providers people can sign in with.
///
/// No token needed: the sign-in page and `sealpost login --sso` show them.
#[utoipa::path(get, path = "/api/v1/sso", operation_id = "list_identity_providers", tag = "accounts",
    responses((status = 200, description = "The configured providers (none when single sign-on is off).", body = ProviderList)))]
async fn providers(State(gw): State<Arc<Gateway>>) -> Json<ProviderList> {
    Json(ProviderList {
        providers: gw.sso.providers().map(|p| ProviderInfo { id: p.id.clone(), name: p.name.clone() }).collect(),
    })
}

fn provider<'a>(gw: &'a Gateway, id: Option<&str>) -> Result<&'a ProviderClient, ApiError> {
    if !gw.sso.enabled() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this gateway has no single sign-on: sign in with an API token (`sealpost login`)",
        ));
    }
    match id {
        Some(id) => gw.sso.provider(id).ok_or_else(|| {
            let ids: Vec<&str> = gw.sso.providers().map(|p| p.id.as_str()).collect();
            ApiError::new(
                ErrorCode::NotFound,
                format!("there is no provider `{id}` here: use one of {}", ids.join(", ")),
            )
        }),
        None => gw.sso.only().ok_or_else(|| {
            let ids: Vec<&str> = gw.sso.providers().map(|p| p.id.as_str()).collect();
            ApiError::bad_request(format!(
                "this gateway has several providers: name one of {} (`--provider ID`)",
                ids.join(", ")
            ))
        }),
    }
}

/// The API's answer to a provider problem (refusals are audited by the caller).
fn sso_error(e: &SsoError) -> ApiError {
    match e {
        SsoError::Pending => ApiError::new(
            ErrorCode::AuthorizationPending,
            "the sign-in at the identity provider is not finished yet: poll again after the interval",
        ),
        SsoError::SlowDown => {
            ApiError::new(ErrorCode::SlowDown, "polling too often: wait five seconds longer between polls")
        }
        SsoError::Expired => ApiError::new(
            ErrorCode::ExpiredToken,
            "the code expired before the sign-in was finished: start again with `sealpost login --sso`",
        ),
        SsoError::Unreachable { .. } => ApiError::new(ErrorCode::SsoUnavailable, format!("{e}: try again later")),
        SsoError::Denied { .. } => {
            ApiError::new(ErrorCode::AccessDenied, format!("{e}: start again, or ask your administrator"))
        }
        SsoError::Invalid { .. } => ApiError::new(
            ErrorCode::SsoInvalid,
            format!("{e}: nothing was signed in; start again, or tell your administrator"),
        ),
    }
}

async fn refuse(gw: &Gateway, code: &str) -> Result<(), ApiError> {
    gw.store.refuse_session(code, AuthMethod::Oidc, std::time::Duration::from_secs(600), gw.clock.now()).await?;
    Ok(())
}

/// Start signing a CLI in through an identity provider.
///
/// No token needed. The answer is the provider's device authorization (RFC 8628): show the
/// person the code and where to enter it, then poll `POST /api/v1/sso/device/token`.
#[utoipa::path(post, path = "/api/v1/sso/device", operation_id = "start_device_sign_in", tag = "accounts",
    request_body = DeviceRequest,
    responses(
        (status = 200, description = "Started: show the code.", body = DeviceStarted),
        (status = 400, description = "`bad_request`: the body is not a `DeviceRequest`, or the gateway has several providers and none was named.", body = ErrorBody),
        (status = 403, description = "`access_denied`: the provider refused to start (for example, it does not offer the device grant to this client).", body = ErrorBody),
        (status = 404, description = "`not_found`: single sign-on is off, or there is no such provider.", body = ErrorBody),
        (status = 502, description = "`sso_unavailable`: the provider cannot be reached.", body = ErrorBody),
    ))]
async fn device(
    State(gw): State<Arc<Gateway>>,
    ApiJson(req): ApiJson<DeviceRequest>,
) -> Result<Json<DeviceStarted>, ApiError> {
    let p = provider(&gw, req.provider.as_deref())?;
    let started = match gw.sso.start_device(p).await {
        Ok(s) => s,
        Err(e) => {
            refuse(&gw, e.code()).await?;
            return Err(sso_error(&e));
        }
    };
    Ok(Json(DeviceStarted {
        provider: p.config.id.clone(),
        device_code: started.device_code,
        user_code: started.user_code,
        verification_uri: started.verification_uri,
        verification_uri_complete: started.verification_uri_complete,
        expires_in: started.expires_in,
        interval: started.interval.unwrap_or(5).max(1),
    }))
}

/// Poll for the token of a device sign-in.
///
/// No token needed. Until the person has finished at the provider the answer is
/// `authorization_pending`; then, once, a token for them that lives `sso_token_lifetime`.
#[utoipa::path(post, path = "/api/v1/sso/device/token", operation_id = "poll_device_sign_in", tag = "accounts",
    request_body = DevicePoll,
    responses(
        (status = 201, description = "Signed in: the token, shown once.", body = SsoToken),
        (status = 400, description = "`authorization_pending`, `slow_down` or `expired_token` (RFC 8628), or `bad_request`: the body is not a `DevicePoll`.", body = ErrorBody),
        (status = 403, description = "`access_denied`: the person cancelled or was refused at the provider, or has no sealpost account or role; `sso_invalid`: the provider's ID token failed verification.", body = ErrorBody),
        (status = 404, description = "`not_found`: single sign-on is off, or there is no such provider.", body = ErrorBody),
        (status = 502, description = "`sso_unavailable`: the provider cannot be reached.", body = ErrorBody),
    ))]
async fn device_token(
    State(gw): State<Arc<Gateway>>,
    ApiJson(req): ApiJson<DevicePoll>,
) -> Result<(StatusCode, Json<SsoToken>), ApiError> {
    let p = provider(&gw, Some(&req.provider))?;
    if req.device_code.is_empty() || req.device_code.len() > 2048 {
        return Err(ApiError::bad_request("`device_code` must be the code from `POST /api/v1/sso/device`"));
    }
    let person = match gw.sso.poll_device(p, &req.device_code).await {
        Ok(person) => person,
        Err(e) => {
            if !matches!(e, SsoError::Pending | SsoError::SlowDown) {
                refuse(&gw, e.code()).await?;
            }
            return Err(sso_error(&e));
        }
    };
    let token = BearerSecret::generate("sp_");
    let new_user = person.new_user(&p.config);
    let grant = SsoGrant::Token { token: &token.hash(), lifetime: gw.config.sso_token_lifetime };
    match gw.store.sso_sign_in(&person, new_user, grant, gw.clock.now()).await? {
        Ok(SsoGranted::Token { principal, id, expires_at }) => {
            tracing::info!(user = %principal.user, provider = %p.config.id, mfa = principal.auth.mfa, "CLI signed in through single sign-on");
            Ok((
                StatusCode::CREATED,
                Json(SsoToken {
                    token: token.expose().to_owned(),
                    token_id: id.to_string(),
                    user: principal.user,
                    role: principal.role,
                    expires_at,
                    mfa: principal.auth.mfa,
                }),
            ))
        }
        Ok(SsoGranted::Session(_)) => Err(ApiError::internal(&"a token sign-in started a session")),
        Err(refusal) => {
            refuse(&gw, refusal.code()).await?;
            Err(ApiError::new(ErrorCode::AccessDenied, refusal.message(&p.config.name, person.email.as_deref())))
        }
    }
}
