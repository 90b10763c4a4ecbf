//! The sender's pages: the send page (the skeleton its script fills: the browser encrypts and
//! uploads with tus), what the sender sent, with recall by form, and one sent transfer with each
//! recipient's link and delivery (signed for, or delivered without a signature).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::error::PageError;
use super::page::{Frame, SignedForm, bytes, render, when};
use super::session::SignedIn;
use crate::gateway::Gateway;
use crate::lifecycle;
use crate::model::{Classification, Role};
use crate::wire::sent::SentState;
use crate::wire::transfers::{DeliveryOutcome, LinkState, LinkView, TransferView};

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/send", get(send))
        .route("/sent", get(sent))
        .route("/sent/{id}", get(sent_transfer))
        .route("/sent/{id}/recall", post(recall))
}

#[derive(Template)]
#[template(path = "send.html")]
struct SendPage {
    frame: Frame,
    addresses: Vec<String>,
    classifications: [&'static str; 4],
}

async fn send(State(gw): State<Arc<Gateway>>, SignedIn(s): SignedIn) -> Result<Response, PageError> {
    if s.session.principal.role != Role::Sender {
        return Err(PageError::forbidden("Only users with the sender role can send bundles."));
    }
    let directory = gw.store.directory().await?;
    let addresses =
        directory.orgs.iter().flat_map(|o| o.users.iter().map(move |u| format!("{}/{u}", o.name))).collect();
    let classifications = [
        Classification::Official.as_str(),
        Classification::OfficialSensitive.as_str(),
        Classification::Secret.as_str(),
        Classification::TopSecret.as_str(),
    ];
    render(&SendPage { frame: Frame::new(&s, "Send files", "send", "send"), addresses, classifications })
}

/// A sent transfer, as the sent page lists it.
struct SentRow {
    id: String,
    recipients: String,
    size: String,
    classification: String,
    created: String,
    expires: String,
    state: &'static str,
    tag: &'static str,
    recallable: bool,
}

#[derive(Template)]
#[template(path = "sent.html")]
struct SentPage {
    frame: Frame,
    rows: Vec<SentRow>,
    recalled: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SentQuery {
    recalled: Option<String>,
}

fn state_text(state: SentState) -> (&'static str, &'static str) {
    match state {
        SentState::Waiting => ("Waiting", "govuk-tag--blue"),
        SentState::Collected => ("Collected", "govuk-tag--green"),
        SentState::Expired => ("Expired", "govuk-tag--grey"),
        SentState::Recalled => ("Recalled", "govuk-tag--orange"),
        SentState::AwaitingApproval => ("Held for approval", "govuk-tag--yellow"),
        SentState::Rejected => ("Rejected", "govuk-tag--red"),
    }
}

async fn sent(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Query(q): Query<SentQuery>,
) -> Result<Response, PageError> {
    let transfers = gw.store.sent_transfers(&s.session.principal.id, gw.clock.now()).await?;
    let rows = transfers
        .into_iter()
        .map(|t| {
            let (state, tag) = state_text(t.state);
            SentRow {
                recipients: t.recipients.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
                size: bytes(t.size),
                classification: t.classification.to_string(),
                created: when(t.created_at),
                expires: when(t.expires_at),
                state,
                tag,
                recallable: t.state.recallable(),
                id: t.id,
            }
        })
        .collect();
    let recalled = q.recalled.filter(|id| crate::ids::TransferId::parse(id).is_some());
    render(&SentPage { frame: Frame::new(&s, "Sent bundles", "sent", "sent"), rows, recalled })
}

#[derive(Debug, Deserialize)]
struct Nothing {}

async fn recall(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    signed: SignedForm<Nothing>,
) -> Result<Response, PageError> {
    let answer = lifecycle::recall(&gw, &signed.session.session.principal, &id).await?;
    Ok(Redirect::to(&format!("/sent?recalled={}", answer.id)).into_response())
}

/// One recipient of a sent transfer, as its page shows them.
struct RecipientRow {
    recipient: String,
    link: &'static str,
    collected: String,
    delivery: String,
}

#[derive(Template)]
#[template(path = "sent_transfer.html")]
struct SentTransferPage {
    frame: Frame,
    id: String,
    status: &'static str,
    size: String,
    digest: String,
    classification: String,
    created: String,
    expires: String,
    decided_by: String,
    recipients: Vec<RecipientRow>,
}

/// What became of one link: signed for (by whom, when), delivered without a signature, reported
/// failed, or where the link stands.
pub(super) fn delivery_text(l: &LinkView) -> String {
    match (l.acknowledged, &l.signed_for) {
        (Some(DeliveryOutcome::Decrypted), Some(s)) => format!("Signed for by {} at {}", s.by, when(s.at)),
        (Some(DeliveryOutcome::Decrypted), None) => "Delivered, not signed for".to_owned(),
        (Some(DeliveryOutcome::Failed), _) => "Collected, but the recipient reported it could not be opened".to_owned(),
        (None, _) => match l.state {
            LinkState::Used => "Collected, no delivery report yet".to_owned(),
            LinkState::Issued | LinkState::Leased => "Not collected yet".to_owned(),
            LinkState::Revoked => "Not collected: the link was revoked".to_owned(),
            LinkState::Expired => "Not collected: the link expired".to_owned(),
        },
    }
}

fn link_text(state: LinkState) -> &'static str {
    match state {
        LinkState::Issued => "Waiting",
        LinkState::Leased => "Being collected",
        LinkState::Used => "Used",
        LinkState::Revoked => "Revoked",
        LinkState::Expired => "Expired",
    }
}

fn status_text(view: &TransferView) -> &'static str {
    match view.status {
        crate::wire::TransferStatus::Available => "Available: the links work",
        crate::wire::TransferStatus::AwaitingApproval => "Held for approval",
        crate::wire::TransferStatus::Rejected => "Rejected",
        crate::wire::TransferStatus::Recalled => "Recalled",
    }
}

/// `GET /sent/{id}`: one transfer the caller sent, with each recipient's link and delivery.
async fn sent_transfer(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let view = lifecycle::transfer_view(&gw, &s.session.principal, &id).await?;
    let recipients = view
        .links
        .iter()
        .map(|l| RecipientRow {
            recipient: l.recipient.to_string(),
            link: link_text(l.state),
            collected: l.used_at.map(when).unwrap_or_default(),
            delivery: delivery_text(l),
        })
        .collect();
    let page = SentTransferPage {
        frame: Frame::new(&s, format!("Sent transfer {}", view.id), "sent-transfer", "sent"),
        status: status_text(&view),
        size: bytes(view.size),
        digest: view.digest.to_string(),
        classification: view.classification.to_string(),
        created: when(view.created_at),
        expires: when(view.expires_at),
        decided_by: view.decided_by.as_ref().map(ToString::to_string).unwrap_or_default(),
        recipients,
        id: view.id,
    };
    render(&page)
}
