//! The recipient's pages: the inbox, the collect page (`/inbox/{id}`, and `/d` for a link), and
//! the keys page. Collecting happens in the browser: these pages are the skeleton its script
//! fills; `GET /d` (and `HEAD`) consumes nothing and carries no inline script.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::error::{PageError, sentence};
use super::page::{Errors, Frame, SignedForm, bytes, render, when};
use super::session::SignedIn;
use crate::directory::{KeyError, RecipientKey};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::lifecycle;
use crate::store::StoreError;
use crate::wire::transfers::{InboxItem, InboxState};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/{id}", get(collect))
        .route("/d", get(link))
        .route("/keys", get(keys).post(add_key))
}

/// A waiting bundle, as the inbox and the collect page show it.
struct Bundle {
    id: String,
    from: String,
    size: String,
    classification: String,
    created: String,
    expires: String,
    digest: String,
    state: &'static str,
}

impl From<&InboxItem> for Bundle {
    fn from(i: &InboxItem) -> Self {
        Self {
            id: i.transfer.clone(),
            from: i.from.to_string(),
            size: bytes(i.size),
            classification: i.classification.to_string(),
            created: when(i.created_at),
            expires: when(i.expires_at),
            digest: i.digest.to_string(),
            state: match i.state {
                InboxState::Issued => "Ready to collect",
                InboxState::Leased => "Being collected",
                InboxState::AwaitingApproval => "Awaiting approval",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    frame: Frame,
    bundles: Vec<Bundle>,
}

async fn inbox(State(gw): State<Arc<Gateway>>, SignedIn(s): SignedIn) -> Result<Response, PageError> {
    let inbox = lifecycle::inbox(&gw, &s.session.principal).await?;
    let bundles = inbox.transfers.iter().map(Bundle::from).collect();
    render(&InboxPage { frame: Frame::new(&s, "Your inbox", "inbox", "inbox"), bundles })
}

#[derive(Template)]
#[template(path = "collect.html")]
struct CollectPage {
    frame: Frame,
    bundle: Option<Bundle>,
    signed_in: bool,
    public_url: String,
}

async fn collect(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let missing = || PageError::not_found("There is no bundle waiting for you with that transfer id.");
    let id = TransferId::parse(&id).ok_or_else(missing)?;
    let inbox = lifecycle::inbox(&gw, &s.session.principal).await?;
    let item = inbox.transfers.iter().find(|i| i.transfer == id.as_str()).ok_or_else(missing)?;
    render(&CollectPage {
        frame: Frame::new(&s, "Collect a bundle", "collect", "inbox").with_transfer(id.as_str()),
        bundle: Some(item.into()),
        signed_in: true,
        public_url: gw.public_url.clone(),
    })
}

/// `GET /d`: the page a link opens. The token stays in the fragment, which browsers never send;
/// this page only draws the collect form, so fetching it uses nothing up.
async fn link(State(gw): State<Arc<Gateway>>, signed_in: Option<SignedIn>) -> Result<Response, PageError> {
    let frame = match &signed_in {
        Some(SignedIn(s)) => Frame::new(s, "Collect a bundle", "collect", "inbox"),
        None => Frame::bare("Collect a bundle", "collect"),
    };
    render(&CollectPage { frame, bundle: None, signed_in: signed_in.is_some(), public_url: gw.public_url.clone() })
}

/// A registered key, as the keys page lists it.
struct KeyRow {
    recipient: String,
    stanza_type: String,
    fingerprint: String,
    added: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    frame: Frame,
    keys: Vec<KeyRow>,
    errors: Errors,
    recipient: String,
    added: bool,
}

async fn keys_page(
    gw: &Gateway,
    s: &super::session::BrowserSession,
    errors: Errors,
    recipient: String,
    added: bool,
) -> Result<Response, PageError> {
    let keys = gw
        .store
        .list_keys(&s.session.principal.user)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            recipient: k.recipient,
            stanza_type: k.stanza_type,
            fingerprint: k.fingerprint,
            added: when(k.added_at),
        })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = KeysPage {
        frame: Frame::new(s, "Your keys", "keys", "keys").with_errors(&errors),
        keys,
        errors,
        recipient,
        added,
    };
    Ok((status, render(&page)?).into_response())
}

async fn keys(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    keys_page(&gw, &s, Errors::none(), String::new(), q.as_deref() == Some("added")).await
}

#[derive(Debug, Deserialize)]
struct NewKey {
    #[serde(default)]
    recipient: String,
}

async fn add_key(State(gw): State<Arc<Gateway>>, signed: SignedForm<NewKey>) -> Result<Response, PageError> {
    let (s, text) = (&signed.session, signed.form.recipient.trim().to_owned());
    if text.is_empty() {
        return keys_page(
            &gw,
            s,
            Errors::one("recipient", "Enter a public key, such as one starting age1"),
            text,
            false,
        )
        .await;
    }
    let key = match RecipientKey::parse(&text, gw.config.allow_ssh_recipients) {
        Ok(key) => key,
        Err(e) => {
            // A secret key pasted by mistake is never put back into the page.
            let keep = if matches!(e, KeyError::PrivateKey) { String::new() } else { text };
            return keys_page(&gw, s, Errors::one("recipient", sentence(&e.to_string())), keep, false).await;
        }
    };
    let p = &s.session.principal;
    match gw.store.add_key(&p.id, &p.user, &key, gw.clock.now()).await {
        Ok(_) => Ok(Redirect::to("/keys?added").into_response()),
        Err(e @ StoreError::KeyExists(_)) => {
            keys_page(&gw, s, Errors::one("recipient", sentence(&e.to_string())), text, false).await
        }
        Err(e) => Err(e.into()),
    }
}
