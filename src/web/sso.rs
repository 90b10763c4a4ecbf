//! Signing in through an identity provider (OpenID Connect authorization code flow with PKCE).
//!
//! `POST /sign-in/sso` (the sign-in form's CSRF token, and which provider) starts an attempt: a
//! fresh state, nonce and PKCE verifier are kept in the database under the state's hash, bound
//! to this browser by the hash of a new `__Host-sealpost-sso` cookie, and the browser goes to the
//! provider. `GET /sign-in/callback` takes the attempt back (once), checks the cookie, exchanges
//! the code and verifies the ID token ([`crate::sso`]), finds or makes the user
//! ([`crate::store::Store::sso_sign_in`]) and starts the session. Every refusal is a
//! `session.refused` event with `method oidc` and a code, and shows the sign-in page with a
//! sentence saying what happened and what to do; nothing is started.
//!
//! The session cookie is `SameSite=Strict`, and a browser does not send strict cookies on a
//! navigation that a cross-site redirect began: so the callback answers with a small page that
//! continues to `/` by itself (a same-site navigation), rather than with a redirect.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::error::{PageError, sentence};
use super::page::{Errors, Frame, render};
use super::session::{self, SIGN_IN_COOKIE, SSO_COOKIE};
use super::sign_in::{refuse_by, sign_in_page_with};
use crate::gateway::Gateway;
use crate::ids::BearerSecret;
use crate::sso::SsoError;
use crate::store::{AuthMethod, PendingSignIn, SIGN_IN_WINDOW, SessionEnd, SsoGrant, SsoGranted};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/sign-in/sso", post(start)).route("/sign-in/callback", get(callback))
}

#[derive(Debug, Deserialize)]
struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    provider: String,
}

/// Refuses a single sign-on: audited, paused, and the sign-in page with `message`.
async fn refused(gw: &Gateway, headers: &HeaderMap, code: &str, message: String) -> Result<Response, PageError> {
    refuse_by(gw, code, AuthMethod::Oidc).await?;
    tracing::info!(code, "single sign-on refused");
    let status = if code == "sso_unreachable" { StatusCode::BAD_GATEWAY } else { StatusCode::UNAUTHORIZED };
    let mut response = sign_in_page_with(gw, headers, Errors::one("sso", message), false, status)?;
    response.headers_mut().append(header::SET_COOKIE, session::clear_cookie(SSO_COOKIE));
    Ok(response)
}

/// What to tell a person whose sign-in failed at or with the provider.
fn sso_message(e: &SsoError) -> String {
    match e {
        SsoError::Unreachable { provider, .. } => format!(
            "We cannot reach {provider} right now, so you cannot sign in with it. Try again in a few minutes, or sign in with an API token"
        ),
        SsoError::Denied { provider, detail } => {
            format!(
                "{provider} did not sign you in ({detail}). Sign in again, or ask your administrator if this keeps happening"
            )
        }
        SsoError::Invalid { provider, .. } => format!(
            "The sign-in from {provider} could not be verified, so you are not signed in. Sign in again; if this keeps happening, tell your administrator"
        ),
        SsoError::Pending | SsoError::SlowDown | SsoError::Expired => {
            "That sign-in did not finish in time. Sign in again".to_owned()
        }
    }
}

async fn start(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Result<Response, PageError> {
    if !session::sign_in_form_ok(&headers, &form.csrf) {
        return refused(
            &gw,
            &HeaderMap::new(),
            "csrf",
            "The sign-in page had expired. Choose how to sign in again".to_owned(),
        )
        .await;
    }
    let Some(provider) = gw.sso.provider(&form.provider) else {
        return refused(
            &gw,
            &headers,
            "sso_unknown_provider",
            "Choose one of the sign-in buttons on this page".to_owned(),
        )
        .await;
    };
    let attempt = match gw.sso.start(provider).await {
        Ok(a) => a,
        Err(e) => return refused(&gw, &headers, e.code(), sso_message(&e)).await,
    };
    let browser = BearerSecret::generate("");
    let pending = PendingSignIn {
        browser_hash: browser.hash().0.to_vec(),
        provider: provider.config.id.clone(),
        nonce: attempt.nonce,
        pkce_verifier: attempt.pkce_verifier,
    };
    gw.store.begin_sso_sign_in(&BearerSecret::from_client(&attempt.state).hash(), &pending, gw.clock.now()).await?;
    // A page that moves on to the provider by itself, not a redirect: the pages' CSP allows forms
    // to post only here (`form-action 'self'`), and browsers apply that to where a form's answer
    // redirects, too; a navigation the page makes by itself is not a form's.
    let page = MovingOn {
        frame: Frame::bare(format!("Signing in with {}", provider.config.name), "sso-continue"),
        said: format!("You are going to {} to sign in.", provider.config.name),
        next: attempt.url,
    };
    let mut response = render(&page)?;
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, session::set_sso_cookie(browser.expose(), SIGN_IN_WINDOW.as_secs()));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// A page that moves on to `next` by itself (a refresh of 0 seconds), with a `Continue` link for
/// a browser that does not: on to the provider from the button, and on to `/` after the callback.
#[derive(Template)]
#[template(path = "moving_on.html")]
struct MovingOn {
    frame: Frame,
    said: String,
    next: String,
}

async fn callback(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let stale = || "That sign-in has expired or was already used. Sign in again".to_owned();
    let Some(state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return refused(&gw, &headers, "sso_state", stale()).await;
    };
    let now = gw.clock.now();
    let Some(pending) = gw.store.take_sso_sign_in(&BearerSecret::from_client(state).hash(), now).await? else {
        return refused(&gw, &headers, "sso_state", stale()).await;
    };
    // The attempt must come back to the browser that started it.
    let browser_ok = session::cookie(&headers, SSO_COOKIE)
        .is_some_and(|b| bool::from(BearerSecret::from_client(b).hash().0[..].ct_eq(&pending.browser_hash[..])));
    if !browser_ok {
        return refused(&gw, &headers, "sso_state", stale()).await;
    }
    let Some(provider) = gw.sso.provider(&pending.provider) else {
        return refused(&gw, &headers, "sso_state", stale()).await;
    };
    if let Some(error) = &query.error {
        let detail = match query.error_description.as_deref() {
            Some(d) if !d.is_empty() => format!("{d} ({error})"),
            _ => error.clone(),
        };
        let e = SsoError::Denied { provider: provider.config.name.clone(), detail };
        return refused(&gw, &headers, e.code(), sso_message(&e)).await;
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        let e = SsoError::Invalid { provider: provider.config.name.clone(), detail: "no code".to_owned() };
        return refused(&gw, &headers, e.code(), sso_message(&e)).await;
    };
    let person = match gw.sso.finish(provider, code, &pending.pkce_verifier, &pending.nonce).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(provider = %provider.config.id, error = %e, "single sign-on failed");
            return refused(&gw, &headers, e.code(), sso_message(&e)).await;
        }
    };
    let (secret, cookie) = session::new_session_secret(&gw);
    let grant = SsoGrant::Session { secret: &secret.hash(), lifetime: gw.config.session_lifetime };
    let new_user = person.new_user(&provider.config);
    let started = match gw.store.sso_sign_in(&person, new_user, grant, now).await? {
        Ok(SsoGranted::Session(s)) => s,
        Ok(SsoGranted::Token { .. }) => return Err(PageError::internal(&"a session sign-in made a token")),
        Err(refusal) => {
            let message = sentence(&refusal.message(&provider.config.name, person.email.as_deref()));
            return refused(&gw, &headers, refusal.code(), message).await;
        }
    };
    if let Some(old) = session::current(&gw, &headers).await? {
        gw.store.end_session(&old.session.id, &old.session.principal.id, SessionEnd::Replaced, now).await?;
    }
    tracing::info!(session = %started.id, user = %started.principal.user, provider = %provider.config.id, mfa = started.principal.auth.mfa, "signed in through single sign-on");
    let mut response = render(&MovingOn {
        frame: Frame::bare("Signed in", "signed-in"),
        said: "You are signed in.".to_owned(),
        next: "/".to_owned(),
    })?;
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, cookie);
    h.append(header::SET_COOKIE, session::clear_cookie(SSO_COOKIE));
    h.append(header::SET_COOKIE, session::clear_cookie(SIGN_IN_COOKIE));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}
