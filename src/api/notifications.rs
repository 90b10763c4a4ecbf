//! Notifications over HTTP: the caller's own choices of which optional kinds they get, and
//! organisations' webhook endpoints (administrators).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::gateway::Gateway;
use crate::ids::{UserId, WebhookId};
use crate::model::{Role, check_name};
use crate::notify::{Kind, secret};
use crate::store::WebhookRow;
use crate::wire::ErrorBody;
use crate::wire::notifications::{
    NewWebhook, NotificationChoice, NotificationSetting, NotificationSettings, WebhookCreated, WebhookInfo,
    WebhookList, WebhookRemoved,
};

/// The notification routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(settings, choose))
        .routes(routes!(list_webhooks, add_webhook))
        .routes(routes!(remove_webhook))
}

/// The caller's settings: every kind, and whether they get it.
pub(crate) async fn settings_of(gw: &Gateway, user: &UserId) -> Result<NotificationSettings, ApiError> {
    let off = gw.store.notification_opt_outs(user).await?;
    Ok(NotificationSettings {
        email: gw.store.user_email(user).await?,
        notifications: Kind::ALL
            .iter()
            .map(|k| NotificationSetting {
                kind: k.as_str().to_owned(),
                description: k.description().to_owned(),
                optional: k.optional(),
                on: !off.iter().any(|o| o == k.as_str()),
            })
            .collect(),
    })
}

/// The kinds named in `off`, each optional; or the answer that says which is not.
pub(crate) fn optional_kinds(off: &[String]) -> Result<Vec<Kind>, ApiError> {
    off.iter()
        .map(|name| match Kind::parse(name) {
            Some(kind) if kind.optional() => Ok(kind),
            Some(_) => Err(ApiError::bad_request(format!(
                "`{name}` cannot be turned off: it tells you something you need to act on or know"
            ))),
            None => Err(ApiError::bad_request(format!(
                "there is no notification kind `{name}`: `GET /api/v1/notifications` lists them"
            ))),
        })
        .collect()
}

/// Which notifications the caller gets.
///
/// Any valid token: the caller's own settings, and the address email goes to.
#[utoipa::path(get, path = "/api/v1/notifications", operation_id = "notification_settings", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every kind, and whether the caller gets it.", body = NotificationSettings),
    ))]
async fn settings(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<NotificationSettings>, ApiError> {
    Ok(Json(settings_of(&gw, &caller.0.id).await?))
}

/// Choose which optional notifications the caller gets.
///
/// Any valid token, for the caller's own settings: the kinds listed are turned off, every other
/// kind on. The change is an audit event (`notifications.changed`).
#[utoipa::path(put, path = "/api/v1/notifications", operation_id = "choose_notifications", tag = "accounts",
    security(("bearer" = [])),
    request_body = NotificationChoice,
    responses(
        (status = 200, description = "The caller's settings now.", body = NotificationSettings),
        (status = 400, description = "`bad_request`: the body is not a `NotificationChoice`, names no such kind, or a kind that cannot be turned off.", body = ErrorBody),
    ))]
async fn choose(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NotificationChoice>,
) -> Result<Json<NotificationSettings>, ApiError> {
    let off = optional_kinds(&req.off)?;
    gw.store.set_notification_opt_outs(&caller.0.id, &off, gw.clock.now()).await?;
    Ok(Json(settings_of(&gw, &caller.0.id).await?))
}

fn info(row: WebhookRow) -> WebhookInfo {
    WebhookInfo { id: row.id.to_string(), org: row.org, url: row.url, created_at: row.created_at }
}

/// Checks a webhook endpoint's URL: `https://`, or `http://` to this machine only.
fn check_url(url: &str) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        ApiError::bad_request(format!(
            "`{url}` {why}: give an `https://` URL (`http://` only to 127.0.0.1, ::1 or localhost)"
        ))
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| refuse("is not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse("carries a user or password"));
    }
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
            let local = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if local { Ok(()) } else { Err(refuse("is plain HTTP to another machine")) }
        }
        _ => Err(refuse("is not an https:// URL")),
    }
}

/// Register a webhook endpoint for an organisation.
///
/// Administrators only. The answer holds the endpoint's signing secret, shown this once; the
/// registration is an audit event (`webhook.added`).
#[utoipa::path(post, path = "/api/v1/webhooks", operation_id = "add_webhook", tag = "accounts",
    security(("bearer" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered; the secret is shown this once.", body = WebhookCreated),
        (status = 400, description = "`bad_request`: the body is not a `NewWebhook`, the organisation's name is not valid, or the URL is not `https://`.", body = ErrorBody),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such organisation.", body = ErrorBody),
    ))]
async fn add_webhook(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    caller.require(&[Role::Admin], "register webhooks")?;
    check_name(&req.org)?;
    check_url(&req.url)?;
    let id = WebhookId::generate();
    let (bytes, text) = secret::generate();
    let sealed = secret::seal(&gw.signing_key, &id, &bytes);
    let row = gw.store.add_webhook(&caller.0.id, &id, &req.org, &req.url, &sealed, gw.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(WebhookCreated { webhook: info(row), secret: text })))
}

/// List webhook endpoints.
///
/// Administrators only. Secrets are never shown again.
#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "list_webhooks", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every live endpoint.", body = WebhookList),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
    ))]
async fn list_webhooks(State(gw): State<Arc<Gateway>>, caller: Caller) -> Result<Json<WebhookList>, ApiError> {
    caller.require(&[Role::Admin], "list webhooks")?;
    Ok(Json(WebhookList { webhooks: gw.store.list_webhooks().await?.into_iter().map(info).collect() }))
}

/// Remove a webhook endpoint.
///
/// Administrators only. Its undelivered messages are dropped; the removal is an audit event
/// (`webhook.removed`).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", operation_id = "remove_webhook", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The endpoint's id.")),
    responses(
        (status = 200, description = "Removed.", body = WebhookRemoved),
        (status = 403, description = "`forbidden`: the caller is not an administrator.", body = ErrorBody),
        (status = 404, description = "`not_found`: there is no such endpoint.", body = ErrorBody),
    ))]
async fn remove_webhook(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookRemoved>, ApiError> {
    caller.require(&[Role::Admin], "remove webhooks")?;
    let missing =
        || ApiError::not_found(format!("there is no webhook `{id}`: `sealpost admin webhook list` shows them"));
    let parsed = WebhookId::parse(&id).ok_or_else(missing)?;
    let row = gw.store.remove_webhook(&caller.0.id, &parsed, gw.clock.now()).await?.ok_or_else(missing)?;
    Ok(Json(WebhookRemoved { removed: info(row) }))
}
