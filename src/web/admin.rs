//! The administrator's page: organisations, users and their tokens, routes, keys, and policy
//! reload, each with its form. A new user's or token's secret is shown once, on the answer to
//! the form that made it (never in a redirect or a URL); every other form answers with a 303.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::{PageError, sentence};
use super::page::{Errors, Frame, SignedForm, render, when};
use super::session::{BrowserSession, SignedIn};
use crate::gateway::Gateway;
use crate::ids::{BearerSecret, TokenId};
use crate::lifecycle;
use crate::model::{OrgKind, Role, UserRef, check_name};
use crate::store::StoreError;

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin", get(admin))
        .route("/admin/orgs", post(add_org))
        .route("/admin/users", post(add_user))
        .route("/admin/tokens", post(issue_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/routes", post(add_route))
        .route("/admin/routes/remove", post(remove_route))
        .route("/admin/keys/remove", post(remove_key))
        .route("/admin/policy/reload", post(reload))
        .route("/admin/claim", post(claim))
}

/// Administrators only, and only as policy allows (a multi-factor sign-in, for people who
/// signed in through an identity provider).
fn require_admin(gw: &Gateway, s: &BrowserSession) -> Result<(), PageError> {
    if s.session.principal.role != Role::Admin {
        return Err(PageError::forbidden("Only administrators can use this page."));
    }
    gw.gate
        .administer(&s.session.principal, "administering this gateway", gw.clock.now())
        .map_err(|d| PageError::from(d).signed_in(s))?;
    Ok(())
}

/// What was typed into the page's forms, kept when one of them is wrong.
#[derive(Debug, Clone, Default, Deserialize)]
struct Typed {
    #[serde(default)]
    org_name: String,
    #[serde(default)]
    org_kind: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    token_user: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    fingerprint: String,
    #[serde(default)]
    claim_user: String,
    #[serde(default)]
    claim_email: String,
}

struct Row(Vec<String>);

/// A registered key, with what its removal form needs.
struct KeyRow {
    user: String,
    kind: String,
    fingerprint: String,
    added: String,
}

struct TokenRow {
    id: String,
    user: String,
    issued: String,
    expires: String,
    state: &'static str,
    live: bool,
}

struct RouteRow {
    from: String,
    to: String,
    added: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    frame: Frame,
    errors: Errors,
    typed: Typed,
    done: Option<String>,
    orgs: Vec<Row>,
    users: Vec<Row>,
    tokens: Vec<TokenRow>,
    routes: Vec<RouteRow>,
    keys: Vec<KeyRow>,
    policy_source: String,
    policy_digest: String,
    /// Set when the session was signed in with the first start's bootstrap token: when that
    /// token stops working (the page then offers its exchange).
    bootstrap_until: Option<String>,
}

fn token_state(revoked: Option<DateTime<Utc>>, expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> &'static str {
    match (revoked, expires) {
        (Some(_), _) => "Revoked",
        (None, Some(e)) if e <= now => "Expired",
        _ => "Live",
    }
}

async fn admin_page(
    gw: &Gateway,
    s: &BrowserSession,
    errors: Errors,
    typed: Typed,
    done: Option<String>,
) -> Result<Response, PageError> {
    require_admin(gw, s)?;
    let now = gw.clock.now();
    let orgs = gw.store.list_orgs().await?;
    let users = gw.store.list_users().await?;
    let mut keys = Vec::new();
    for u in &users {
        for k in gw.store.list_keys(&u.user).await? {
            keys.push(KeyRow {
                user: u.user.to_string(),
                kind: k.stanza_type,
                fingerprint: k.fingerprint,
                added: when(k.added_at),
            });
        }
    }
    let tokens = gw
        .store
        .list_tokens(None)
        .await?
        .into_iter()
        .map(|t| {
            let state = token_state(t.revoked_at, t.expires_at, now);
            TokenRow {
                user: t.user.to_string(),
                issued: when(t.created_at),
                expires: t.expires_at.map_or_else(|| "Never".to_owned(), when),
                live: state == "Live",
                state,
                id: t.id,
            }
        })
        .collect();
    let routes = gw
        .store
        .list_routes()
        .await?
        .into_iter()
        .map(|r| RouteRow { from: r.from, to: r.to, added: when(r.created_at) })
        .collect();
    let bootstrap_until = gw
        .store
        .bootstrap_expiry(crate::store::Presented::Session(s.session.id.as_str()), now)
        .await?
        .map(|t| if t == DateTime::<Utc>::MAX_UTC { "it is exchanged".to_owned() } else { when(t) });
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = AdminPage {
        frame: Frame::new(s, "Administration", "admin", "admin").with_errors(&errors),
        errors,
        typed,
        done,
        orgs: orgs.into_iter().map(|o| Row(vec![o.name, o.kind.to_string(), when(o.created_at)])).collect(),
        users: users
            .into_iter()
            .map(|u| Row(vec![u.user.to_string(), u.role.to_string(), when(u.created_at)]))
            .collect(),
        tokens,
        routes,
        keys,
        policy_source: gw.gate.source().to_string(),
        policy_digest: gw.gate.digest(),
        bootstrap_until,
    };
    Ok((status, render(&page)?).into_response())
}

#[derive(Debug, Deserialize)]
struct Done {
    done: Option<String>,
}

/// The success banners, by the `done` word a form's redirect carries.
fn done_text(word: &str) -> Option<&'static str> {
    Some(match word {
        "org" => "The organisation is added.",
        "revoked" => "The token is revoked, and the sessions signed in with it have ended.",
        "route" => "The route is added.",
        "route-removed" => "The route is removed.",
        "key-removed" => "The key is removed: nothing new can be encrypted to it.",
        "reloaded" => "The policies are reloaded.",
        _ => return None,
    })
}

async fn admin(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let done = q.done.as_deref().and_then(done_text).map(str::to_owned);
    admin_page(&gw, &s, Errors::none(), Typed::default(), done).await
}

fn done(word: &str) -> Response {
    Redirect::to(&format!("/admin?done={word}")).into_response()
}

/// Answers a store refusal (a name taken, an unknown organisation) beside `field`.
async fn refused(
    gw: &Gateway,
    s: &BrowserSession,
    field: &str,
    e: StoreError,
    typed: Typed,
) -> Result<Response, PageError> {
    let e = PageError::from(e);
    if !e.is_client_error() {
        return Err(e);
    }
    admin_page(gw, s, Errors::one(field, e.message().trim_end_matches('.')), typed, None).await
}

async fn add_org(State(gw): State<Arc<Gateway>>, signed: SignedForm<Typed>) -> Result<Response, PageError> {
    let (s, typed) = (&signed.session, signed.form);
    require_admin(gw.as_ref(), s)?;
    let mut errors = Errors::none();
    let name = typed.org_name.trim().to_owned();
    if check_name(&name).is_err() {
        errors.add("org_name", "Enter a name of 1 to 64 lowercase letters, digits, dots, dashes or underscores");
    }
    let kind = typed.org_kind.parse::<OrgKind>().ok().filter(|k| k.creatable());
    if kind.is_none() {
        errors.add("org_kind", "Choose what kind of organisation it is");
    }
    let (Some(kind), true) = (kind, errors.is_empty()) else {
        return admin_page(&gw, s, errors, typed, None).await;
    };
    match gw.store.create_org(&s.session.principal.id, &name, kind, gw.clock.now()).await {
        Ok(_) => Ok(done("org")),
        Err(e) => refused(&gw, s, "org_name", e, typed).await,
    }
}

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    frame: Frame,
    user: String,
    token: String,
    expires: String,
    /// The token is the caller's own, from exchanging the first-start token (which ended this
    /// session).
    claimed: bool,
}

fn new_token(gw: &Gateway) -> (BearerSecret, Option<DateTime<Utc>>) {
    let expires = gw.config.token_lifetime.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| gw.clock.now() + d);
    (BearerSecret::generate("sp_"), expires)
}

fn show_token(
    s: &BrowserSession,
    user: &UserRef,
    token: &BearerSecret,
    expires: Option<DateTime<Utc>>,
) -> Result<Response, PageError> {
    render(&TokenPage {
        frame: Frame::new(s, format!("API token for {user}"), "token", "admin"),
        user: user.to_string(),
        token: token.expose().to_owned(),
        expires: expires.map_or_else(|| "never".to_owned(), when),
        claimed: false,
    })
}

/// An optional email field: `Some(None)` when left empty, `Some(Some(address))` normalised, or
/// `None` with the field's error added.
fn optional_email(errors: &mut Errors, field: &str, typed: &str, example: &str) -> Option<Option<String>> {
    match typed.trim() {
        "" => Some(None),
        typed => match crate::model::normalise_email(typed) {
            Ok(address) => Some(Some(address)),
            Err(_) => {
                errors.add(field, format!("Enter an email address such as {example}, or leave it empty"));
                None
            }
        },
    }
}

async fn add_user(State(gw): State<Arc<Gateway>>, signed: SignedForm<Typed>) -> Result<Response, PageError> {
    let (s, typed) = (&signed.session, signed.form);
    require_admin(gw.as_ref(), s)?;
    let mut errors = Errors::none();
    let user = typed.user.trim().parse::<UserRef>().ok();
    if user.is_none() {
        errors.add("user", "Enter the user as organisation/name, for example hmpps/alice");
    }
    let role = typed.role.parse::<Role>().ok();
    if role.is_none() {
        errors.add("role", "Choose the user's role");
    }
    let email = optional_email(&mut errors, "email", &typed.email, "alice@hmpps.example");
    let (Some(user), Some(role), Some(email)) = (user, role, email) else {
        return admin_page(&gw, s, errors, typed, None).await;
    };
    let (token, expires) = new_token(&gw);
    match gw
        .store
        .create_user(&s.session.principal.id, &user, role, email.as_deref(), &token.hash(), expires, gw.clock.now())
        .await
    {
        Ok(_) => show_token(s, &user, &token, expires),
        Err(e @ StoreError::EmailInUse(_)) => refused(&gw, s, "email", e, typed).await,
        Err(e) => refused(&gw, s, "user", e, typed).await,
    }
}

async fn issue_token(State(gw): State<Arc<Gateway>>, signed: SignedForm<Typed>) -> Result<Response, PageError> {
    let (s, typed) = (&signed.session, signed.form);
    require_admin(gw.as_ref(), s)?;
    let Ok(user) = typed.token_user.trim().parse::<UserRef>() else {
        let errors = Errors::one("token_user", "Enter the user as organisation/name, for example hmpps/alice");
        return admin_page(&gw, s, errors, typed, None).await;
    };
    let (token, expires) = new_token(&gw);
    match gw.store.issue_token(&s.session.principal.id, &user, &token.hash(), expires, gw.clock.now()).await {
        Ok(_) => show_token(s, &user, &token, expires),
        Err(e) => refused(&gw, s, "token_user", e, typed).await,
    }
}

/// Exchanges the bootstrap token this session was signed in with for the administrator typed
/// in, and shows the new administrator's token once. The session ends with the bootstrap token.
async fn claim(State(gw): State<Arc<Gateway>>, signed: SignedForm<Typed>) -> Result<Response, PageError> {
    let (s, typed) = (&signed.session, signed.form);
    require_admin(gw.as_ref(), s)?;
    let mut errors = Errors::none();
    let user = typed.claim_user.trim().parse::<UserRef>().ok();
    if user.is_none() {
        errors.add("claim_user", "Enter your user name as organisation/name, for example sealpost/jane");
    }
    let email = optional_email(&mut errors, "claim_email", &typed.claim_email, "jane@example.gov.uk");
    let (Some(user), Some(email)) = (user, email) else {
        return admin_page(&gw, s, errors, typed, None).await;
    };
    let token = BearerSecret::generate("sp_");
    let now = gw.clock.now();
    let presented = crate::store::Presented::Session(s.session.id.as_str());
    match gw.store.claim(presented, &user, email.as_deref(), &token.hash(), now).await {
        Ok(_) => {
            let _ = crate::gateway::retire_admin_token(&gw.store, &gw.config.data_dir, now).await;
            render(&TokenPage {
                frame: Frame::new(s, format!("Your administrator account, {user}"), "token", "admin"),
                user: user.to_string(),
                token: token.expose().to_owned(),
                expires: "never".to_owned(),
                claimed: true,
            })
        }
        Err(e @ StoreError::EmailInUse(_)) => refused(&gw, s, "claim_email", e, typed).await,
        Err(StoreError::NotBootstrap) => Err(PageError::forbidden(
            "You are not signed in with the first-start token, or it was exchanged already: add administrators below.",
        )),
        Err(e) => refused(&gw, s, "claim_user", e, typed).await,
    }
}

#[derive(Debug, Deserialize)]
struct Nothing {}

async fn revoke_token(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    signed: SignedForm<Nothing>,
) -> Result<Response, PageError> {
    require_admin(gw.as_ref(), &signed.session)?;
    let id = TokenId::parse(&id).ok_or_else(|| PageError::not_found("There is no such token."))?;
    gw.store.revoke_token(&signed.session.session.principal.id, &id, gw.clock.now()).await?;
    Ok(done("revoked"))
}

async fn add_route(State(gw): State<Arc<Gateway>>, signed: SignedForm<Typed>) -> Result<Response, PageError> {
    let (s, typed) = (&signed.session, signed.form);
    require_admin(gw.as_ref(), s)?;
    let (from, to) = (typed.from.trim().to_owned(), typed.to.trim().to_owned());
    let mut errors = Errors::none();
    if check_name(&from).is_err() {
        errors.add("from", "Enter the name of the sending organisation");
    }
    if check_name(&to).is_err() {
        errors.add("to", "Enter the name of the receiving organisation");
    }
    if !errors.is_empty() {
        return admin_page(&gw, s, errors, typed, None).await;
    }
    match gw.store.add_route(&s.session.principal.id, &from, &to, gw.clock.now()).await {
        Ok(_) => Ok(done("route")),
        Err(e) => refused(&gw, s, "from", e, typed).await,
    }
}

async fn remove_route(State(gw): State<Arc<Gateway>>, signed: SignedForm<Typed>) -> Result<Response, PageError> {
    let (s, typed) = (&signed.session, signed.form);
    require_admin(gw.as_ref(), s)?;
    gw.store.remove_route(&s.session.principal.id, typed.from.trim(), typed.to.trim(), gw.clock.now()).await?;
    Ok(done("route-removed"))
}

/// Removes a user's key (a leaver's, or one reported lost); logged like any key removal.
async fn remove_key(State(gw): State<Arc<Gateway>>, signed: SignedForm<Typed>) -> Result<Response, PageError> {
    let (s, typed) = (&signed.session, signed.form);
    require_admin(gw.as_ref(), s)?;
    let user: UserRef = typed.user.trim().parse().map_err(|_| PageError::not_found("There is no such user."))?;
    gw.store.remove_key(&s.session.principal.id, &user, typed.fingerprint.trim(), gw.clock.now()).await?;
    Ok(done("key-removed"))
}

async fn reload(State(gw): State<Arc<Gateway>>, signed: SignedForm<Nothing>) -> Result<Response, PageError> {
    require_admin(gw.as_ref(), &signed.session)?;
    match lifecycle::reload_policies(&gw, Some(&signed.session.session.principal.id)).await {
        Ok(_) => Ok(done("reloaded")),
        Err(e) => {
            let message = sentence(&e.to_string());
            admin_page(
                &gw,
                &signed.session,
                Errors::one("reload", message.trim_end_matches('.')),
                Typed::default(),
                None,
            )
            .await
        }
    }
}
