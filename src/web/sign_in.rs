//! Signing in and out, and `/`, which leads each role to its first page.
//!
//! `POST /sign-in` takes an API token (never logged, never put back into the page), checks the
//! sign-in form's CSRF token, and starts a session. A refused sign-in is audited
//! (`session.refused`) and answered only after a pause that grows with the sign-ins refused in
//! the last ten minutes, up to five seconds.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::error::PageError;
use super::page::{Errors, Frame, SignedForm, home, render};
use super::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE, SignedIn};
use crate::gateway::Gateway;
use crate::ids::BearerSecret;
use crate::store::{AuthMethod, SessionEnd};

/// The window over which refused sign-ins slow the next refusal down.
const REFUSAL_WINDOW: Duration = Duration::from_secs(600);
/// The pause added per recent refusal, and its ceiling.
const REFUSAL_STEP: Duration = Duration::from_millis(200);
const REFUSAL_MAX: Duration = Duration::from_secs(5);

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/", get(start))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    frame: Frame,
    csrf: String,
    errors: Errors,
    ended: bool,
    idle: String,
    lifetime: String,
    providers: Vec<ProviderButton>,
}

/// A single sign-on button: `Sign in with NAME`.
struct ProviderButton {
    id: String,
    name: String,
}

/// The sign-in page (with `errors`, answered 422; `ended` after a sign-out).
pub(super) fn sign_in_response(
    gw: &Gateway,
    headers: &HeaderMap,
    errors: Errors,
    ended: bool,
) -> Result<Response, PageError> {
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    sign_in_page_with(gw, headers, errors, ended, status)
}

/// The sign-in page answered with `status`.
pub(super) fn sign_in_page_with(
    gw: &Gateway,
    headers: &HeaderMap,
    errors: Errors,
    ended: bool,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (cookie, csrf) = session::sign_in_form(headers);
    let page = SignInPage {
        frame: Frame::bare("Sign in", "sign-in").with_errors(&errors),
        csrf,
        errors,
        ended,
        idle: spoken(gw.config.session_idle_timeout),
        lifetime: spoken(gw.config.session_lifetime),
        providers: gw.sso.providers().map(|p| ProviderButton { id: p.id.clone(), name: p.name.clone() }).collect(),
    };
    let mut response = render(&page)?;
    *response.status_mut() = status;
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A duration as people say it: `30 minutes`, `12 hours`.
fn spoken(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        s if s % 3600 == 0 && s >= 3600 => (s / 3600, "hour"),
        s if s % 60 == 0 && s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

async fn start(State(_gw): State<Arc<Gateway>>, signed_in: Option<SignedIn>) -> Redirect {
    match signed_in {
        Some(SignedIn(s)) => Redirect::to(home(s.session.principal.role)),
        None => Redirect::to("/sign-in"),
    }
}

async fn sign_in_page(
    State(gw): State<Arc<Gateway>>,
    signed_in: Option<SignedIn>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(SignedIn(s)) = signed_in {
        return Ok(Redirect::to(home(s.session.principal.role)).into_response());
    }
    let ended = query.as_deref() == Some("signed-out");
    sign_in_response(&gw, &headers, Errors::none(), ended)
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// Records a refused sign-in and waits before answering.
async fn refuse(gw: &Gateway, code: &str) -> Result<(), PageError> {
    refuse_by(gw, code, AuthMethod::Token).await
}

/// Records a refused sign-in by `method` and waits before answering: longer the more sign-ins
/// were refused lately.
pub(super) async fn refuse_by(gw: &Gateway, code: &str, method: AuthMethod) -> Result<(), PageError> {
    let recent = gw.store.refuse_session(code, method, REFUSAL_WINDOW, gw.clock.now()).await?;
    let pause = REFUSAL_STEP.saturating_mul(u32::try_from(recent).unwrap_or(u32::MAX)).min(REFUSAL_MAX);
    tokio::time::sleep(pause).await;
    Ok(())
}

async fn sign_in(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    if !session::sign_in_form_ok(&headers, &form.csrf) {
        refuse(&gw, "csrf").await?;
        let errors = Errors::one("token", "The sign-in page had expired. Enter your API token again");
        return sign_in_response(&gw, &HeaderMap::new(), errors, false);
    }
    if form.token.trim().is_empty() {
        return sign_in_response(&gw, &headers, Errors::one("token", "Enter your API token"), false);
    }
    let token = BearerSecret::from_client(&form.token);
    let (secret, cookie) = session::new_session_secret(&gw);
    let now = gw.clock.now();
    let Some(started) = gw.store.start_session(&token.hash(), &secret.hash(), gw.config.session_lifetime, now).await?
    else {
        refuse(&gw, "invalid_token").await?;
        let errors = Errors::one(
            "token",
            "That API token is not valid: it may be mistyped, expired or revoked. Ask your administrator for a new one",
        );
        return sign_in_response(&gw, &headers, errors, false);
    };
    // A browser that signs in again leaves its earlier session behind: end it.
    if let Some(old) = session::current(&gw, &headers).await? {
        gw.store.end_session(&old.session.id, &old.session.principal.id, SessionEnd::Replaced, now).await?;
    }
    tracing::info!(session = %started.id, user = %started.principal.user, "signed in");
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response.headers_mut().append(header::SET_COOKIE, session::clear_cookie(SIGN_IN_COOKIE));
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct Nothing {}

async fn sign_out(State(gw): State<Arc<Gateway>>, signed: SignedForm<Nothing>) -> Result<Response, PageError> {
    let s = &signed.session.session;
    gw.store.end_session(&s.id, &s.principal.id, SessionEnd::SignedOut, gw.clock.now()).await?;
    let mut response = Redirect::to("/sign-in?signed-out").into_response();
    response.headers_mut().append(header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_spoken_as_people_say_them() {
        assert_eq!(spoken(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(spoken(Duration::from_secs(12 * 3600)), "12 hours");
        assert_eq!(spoken(Duration::from_secs(3600)), "1 hour");
        assert_eq!(spoken(Duration::from_secs(90)), "90 seconds");
    }
}
