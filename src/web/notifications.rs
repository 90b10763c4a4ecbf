//! The notifications page (`/notifications`): which emails the signed-in person gets, and a form
//! of checkboxes to turn the optional ones off and on (the same choice as
//! `PUT /api/v1/notifications` and `sealpost notifications off KIND`).

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::get;

use super::error::PageError;
use super::page::{Frame, SignedForm, render};
use super::session::SignedIn;
use crate::gateway::Gateway;
use crate::notify::Kind;

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new().route("/notifications", get(page).post(choose))
}

/// One kind, as the page shows it.
struct Row {
    /// The form field's name and the kind's name.
    kind: &'static str,
    /// The checkbox's id.
    id: String,
    description: &'static str,
    on: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    frame: Frame,
    email: Option<String>,
    optional: Vec<Row>,
    always: Vec<Row>,
    saved: bool,
}

async fn page(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let user = &s.session.principal.id;
    let off = gw.store.notification_opt_outs(user).await?;
    let row = |k: Kind| Row {
        kind: k.as_str(),
        id: k.as_str().replace('.', "-"),
        description: k.description(),
        on: !off.iter().any(|o| o == k.as_str()),
    };
    let page = NotificationsPage {
        frame: Frame::new(&s, "Email notifications", "notifications", "notifications"),
        email: gw.store.user_email(user).await?,
        optional: Kind::ALL.into_iter().filter(|k| k.optional()).map(row).collect(),
        always: Kind::ALL.into_iter().filter(|k| !k.optional()).map(row).collect(),
        saved: q.as_deref() == Some("saved"),
    };
    render(&page)
}

/// Every optional kind whose box is not ticked is turned off.
async fn choose(
    State(gw): State<Arc<Gateway>>,
    signed: SignedForm<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let off: Vec<Kind> =
        Kind::ALL.into_iter().filter(|k| k.optional() && !signed.form.contains_key(k.as_str())).collect();
    gw.store.set_notification_opt_outs(&signed.session.session.principal.id, &off, gw.clock.now()).await?;
    Ok(Redirect::to("/notifications?saved").into_response())
}
