//! The compliance officer's pages: the queue of held transfers with approve and reject forms,
//! the audit search with its CSV export, a transfer's record, and the log's state. Reading any
//! of them is what the `read_audit` policy allows (compliance officers and administrators).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::error::{PageError, sentence};
use super::page::{Errors, Frame, SignedForm, bytes, render, when};
use super::session::{BrowserSession, SignedIn};
use crate::audit::EventKind;
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::lifecycle;
use crate::model::UserRef;
use crate::policy::{Action, PolicyRequest, Resource, principal_facts};
use crate::store::{AuditFilter, StoreError};
use crate::transparency::tlog::cosignature;
use crate::transparency::tlog::note::Note;
use crate::wire::audit::AuditRow;

pub(super) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/compliance/held", get(held))
        .route("/compliance/held/{id}/approve", post(approve))
        .route("/compliance/held/{id}/reject", post(reject))
        .route("/compliance/audit", get(audit))
        .route("/compliance/audit.csv", get(audit_csv))
        .route("/compliance/transfers/{id}", get(transfer))
        .route("/compliance/log", get(log))
}

/// Asks the policies whether `caller` may read the audit trail (as `GET /api/v1/audit` does).
async fn may_read_audit(gw: &Gateway, s: &BrowserSession) -> Result<(), PageError> {
    let caller = &s.session.principal;
    let request = PolicyRequest {
        action: Action::ReadAudit,
        principal: principal_facts(caller),
        resource: Resource::AuditTrail,
        orgs: gw.store.org_facts(&[caller.user.org.as_str()]).await?,
        context: serde_json::Map::new(),
    };
    gw.gate
        .authorize(&request, &format!("`{}` to read the audit trail", caller.user), gw.clock.now())
        .map_err(|d| PageError::from(d).signed_in(s))?;
    Ok(())
}

// ---- Held transfers -------------------------------------------------------------------------

struct HeldCard {
    id: String,
    sender: String,
    recipients: String,
    size: String,
    classification: String,
    created: String,
    expires: String,
    policies: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "held.html")]
struct HeldPage {
    frame: Frame,
    cards: Vec<HeldCard>,
    errors: Errors,
    done: Option<Done>,
}

/// A decision just made, for the success banner.
struct Done {
    id: String,
    verb: &'static str,
}

#[derive(Debug, Default, Deserialize)]
struct HeldQuery {
    approved: Option<String>,
    rejected: Option<String>,
}

async fn held_page(
    gw: &Gateway,
    s: &BrowserSession,
    errors: Errors,
    typed: Option<(&str, &str)>,
    done: Option<Done>,
) -> Result<Response, PageError> {
    may_read_audit(gw, s).await?;
    let cards = gw
        .store
        .held_transfers(gw.clock.now())
        .await?
        .into_iter()
        .map(|h| HeldCard {
            reason: typed.filter(|(id, _)| *id == h.id).map(|(_, r)| r.to_owned()).unwrap_or_default(),
            sender: h.sender.to_string(),
            recipients: h.recipients.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            size: bytes(h.size),
            classification: h.classification.to_string(),
            created: when(h.created_at),
            expires: when(h.expires_at),
            policies: h.policies.join(", "),
            id: h.id,
        })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let frame = Frame::new(s, "Transfers held for approval", "held", "held").with_errors(&errors);
    Ok((status, render(&HeldPage { frame, cards, errors, done })?).into_response())
}

async fn held(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Query(q): Query<HeldQuery>,
) -> Result<Response, PageError> {
    let valid = |id: Option<String>| id.filter(|id| TransferId::parse(id).is_some());
    let done = match (valid(q.approved), valid(q.rejected)) {
        (Some(id), _) => Some(Done { id, verb: "approved" }),
        (None, Some(id)) => Some(Done { id, verb: "rejected" }),
        (None, None) => None,
    };
    held_page(&gw, &s, Errors::none(), None, done).await
}

#[derive(Debug, Deserialize)]
struct Decision {
    #[serde(default)]
    reason: String,
}

async fn decide(gw: &Gateway, id: &str, signed: SignedForm<Decision>, approve: bool) -> Result<Response, PageError> {
    let (s, reason) = (&signed.session, signed.form.reason.trim());
    let field = format!("reason-{id}");
    if !approve && reason.is_empty() {
        let errors = Errors::one(field, format!("Enter a reason for rejecting transfer {id}"));
        return held_page(gw, s, errors, Some((id, reason)), None).await;
    }
    let reason = (!reason.is_empty()).then_some(reason);
    match lifecycle::decide(gw, &s.session.principal, id, approve, reason).await {
        Ok(answer) => {
            let verb = if approve { "approved" } else { "rejected" };
            Ok(Redirect::to(&format!("/compliance/held?{verb}={}", answer.id)).into_response())
        }
        Err(e) => {
            let e = PageError::from(e);
            if !e.is_client_error() {
                return Err(e);
            }
            let errors = Errors::one(field, e.message().trim_end_matches('.'));
            held_page(gw, s, errors, Some((id, reason.unwrap_or_default())), None).await
        }
    }
}

async fn approve(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    signed: SignedForm<Decision>,
) -> Result<Response, PageError> {
    decide(&gw, &id, signed, true).await
}

async fn reject(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    signed: SignedForm<Decision>,
) -> Result<Response, PageError> {
    decide(&gw, &id, signed, false).await
}

// ---- Audit search ---------------------------------------------------------------------------

/// Events on one page of the audit search.
const PAGE_SIZE: u32 = 50;
/// The most events one CSV export holds.
const CSV_MAX_ROWS: usize = 50_000;

/// The audit search's fields, as typed (kept on the page when one is wrong).
#[derive(Debug, Clone, Default, Deserialize)]
struct AuditForm {
    #[serde(default)]
    party: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    transfer: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<i64>,
    after: Option<i64>,
}

impl AuditForm {
    /// The filters as a query string (for paging and the CSV link), without the cursor.
    fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("party", &self.party),
            ("org", &self.org),
            ("event", &self.event),
            ("transfer", &self.transfer),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.finish()
    }

    /// The store's filter, or the errors to show beside the fields.
    async fn filter(&self, gw: &Gateway) -> Result<AuditFilter, Errors> {
        let mut errors = Errors::none();
        let mut filter = AuditFilter { limit: PAGE_SIZE, ..AuditFilter::default() };
        let party = self.party.trim();
        if !party.is_empty() {
            match party.parse::<UserRef>() {
                Ok(user) => match gw.store.user_id(&user).await {
                    Ok(id) => filter.party = Some(id),
                    Err(StoreError::UnknownUser(_)) => errors.add("party", format!("There is no user {user}")),
                    Err(e) => errors.add("party", sentence(&e.to_string())),
                },
                Err(_) => errors.add("party", "Enter the party as organisation/name, for example hmpps/alice"),
            }
        }
        let org = self.org.trim();
        if !org.is_empty() {
            filter.org = Some(org.to_owned());
        }
        let event = self.event.trim();
        if !event.is_empty() {
            if EventKind::ALL.iter().any(|k| k.as_str() == event) {
                filter.event = Some(event.to_owned());
            } else {
                errors.add("event", "Choose an event type from the list");
            }
        }
        let transfer = self.transfer.trim();
        if !transfer.is_empty() {
            match TransferId::parse(transfer) {
                Some(id) => filter.transfer = Some(id),
                None => errors.add("transfer", "Enter a transfer id: 32 characters, 0 to 9 and a to f"),
            }
        }
        let day = |text: &str, field: &str, errors: &mut Errors| -> Option<DateTime<Utc>> {
            let text = text.trim();
            if text.is_empty() {
                return None;
            }
            let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0));
            if parsed.is_none() {
                errors.add(field, "Enter a real date, for example 2026-03-27");
            }
            parsed.map(|t| t.and_utc())
        };
        filter.since = day(&self.from, "from", &mut errors);
        filter.until = day(&self.to, "to", &mut errors).map(|t| t + chrono::Duration::days(1));
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && until <= since
        {
            errors.add("to", "The end date must be the same as or after the start date");
        }
        if errors.is_empty() { Ok(filter) } else { Err(errors) }
    }
}

/// One event, as the search and the transfer page show it.
struct EventRow {
    seq: i64,
    time: String,
    event: String,
    actor: String,
    transfer: String,
    subject: String,
    code: String,
    details: String,
}

/// The entry's facts after the fixed keys, as `key value; key value`.
fn details(entry: &str) -> String {
    const FIXED: [&str; 7] = ["sealpost.audit/v1", "event", "time", "actor", "transfer", "subject", "code"];
    entry
        .lines()
        .filter(|l| !FIXED.iter().any(|k| l.split_once(' ').map_or(*l, |(k, _)| k) == *k))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<&AuditRow> for EventRow {
    fn from(r: &AuditRow) -> Self {
        Self {
            seq: r.seq,
            time: r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            event: r.event.clone(),
            actor: r.actor.as_ref().map(ToString::to_string).unwrap_or_default(),
            transfer: r.transfer.clone().unwrap_or_default(),
            subject: r.subject.as_ref().map(ToString::to_string).unwrap_or_default(),
            code: r.code.clone().unwrap_or_default(),
            details: details(&r.entry),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    frame: Frame,
    form: AuditForm,
    errors: Errors,
    events: Vec<EventRow>,
    kinds: Vec<&'static str>,
    query: String,
    newer: Option<i64>,
    older: Option<i64>,
}

async fn audit(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Query(form): Query<AuditForm>,
) -> Result<Response, PageError> {
    may_read_audit(&gw, &s).await?;
    let kinds = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let (events, errors, newer, older) = match form.filter(&gw).await {
        Err(errors) => (Vec::new(), errors, None, None),
        Ok(mut filter) => {
            // Newest first; a page reached through "newer" is read oldest first, then turned.
            filter.before = form.before;
            filter.after = form.after;
            filter.newest_first = form.after.is_none();
            filter.limit = PAGE_SIZE + 1;
            let mut rows = gw.store.audit(&filter).await?;
            let more = rows.len() > PAGE_SIZE as usize;
            rows.truncate(PAGE_SIZE as usize);
            if !filter.newest_first {
                rows.reverse();
            }
            let first = rows.first().map(|r| r.seq);
            let last = rows.last().map(|r| r.seq);
            let newer = if form.after.is_some() { more.then_some(first).flatten() } else { form.before.and(first) };
            let older = if form.after.is_some() { last } else { more.then_some(last).flatten() };
            (rows.iter().map(EventRow::from).collect(), Errors::none(), newer, older)
        }
    };
    let frame = Frame::new(&s, "Audit trail", "audit", "audit").with_errors(&errors);
    let query = form.query();
    render(&AuditPage { frame, form, errors, events, kinds, query, newer, older })
}

/// One CSV field, quoted, with a leading `'` where a spreadsheet would read a formula.
fn csv_field(out: &mut String, value: &str) {
    let guarded = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    out.push('"');
    if guarded {
        out.push('\'');
    }
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

async fn audit_csv(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Query(form): Query<AuditForm>,
) -> Result<Response, PageError> {
    may_read_audit(&gw, &s).await?;
    let mut filter = form.filter(&gw).await.map_err(|errors| {
        let first = errors.items().first().map(|e| e.message.clone()).unwrap_or_default();
        PageError::bad_request(format!("{first}. Go back to the audit search and correct it."))
    })?;
    filter.limit = 1000;
    let mut out = String::from("seq,time,event,actor,transfer,subject,code,details\r\n");
    let mut rows = 0;
    loop {
        let page = gw.store.audit(&filter).await?;
        for r in &page {
            let row = EventRow::from(r);
            out.push_str(&row.seq.to_string());
            for v in [&row.time, &row.event, &row.actor, &row.transfer, &row.subject, &row.code, &row.details] {
                out.push(',');
                csv_field(&mut out, v);
            }
            out.push_str("\r\n");
        }
        rows += page.len();
        match page.last() {
            Some(last) if page.len() == 1000 && rows < CSV_MAX_ROWS => filter.after = Some(last.seq),
            _ => break,
        }
    }
    let mut response = out.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"sealpost-audit.csv\""));
    Ok(response)
}

// ---- A transfer's record --------------------------------------------------------------------

struct LinkRow {
    recipient: String,
    state: String,
    used: String,
    acknowledged: String,
}

#[derive(Template)]
#[template(path = "transfer.html")]
struct TransferPage {
    frame: Frame,
    id: String,
    sender: String,
    status: String,
    size: String,
    digest: String,
    classification: String,
    created: String,
    expires: String,
    decided_by: String,
    policies: Vec<(String, String)>,
    links: Vec<LinkRow>,
    events: Vec<EventRow>,
}

async fn transfer(
    State(gw): State<Arc<Gateway>>,
    SignedIn(s): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let caller = &s.session.principal;
    may_read_audit(&gw, &s).await?;
    let missing = || PageError::not_found("There is no transfer with that id.");
    let tid = TransferId::parse(&id).ok_or_else(missing)?;
    let view = gw.store.transfer(&tid, &caller.id, true).await?;
    let filter = AuditFilter { transfer: Some(tid.clone()), limit: 1000, ..AuditFilter::default() };
    let rows = gw.store.audit(&filter).await?;
    // The deciding policies: those that let the upload in, released or held it, and decided it.
    let mut policies = Vec::new();
    for r in &rows {
        for (key, label) in [
            ("policies", "Allowed the upload"),
            ("release_policies", "Released or held it"),
            ("reason", "Reason given"),
        ] {
            if let Some(value) = r.entry.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' '))) {
                policies.push((format!("{label} ({})", r.event), value.replace(',', ", ")));
            }
        }
    }
    let links = view
        .links
        .iter()
        .map(|l| LinkRow {
            recipient: l.recipient.to_string(),
            state: format!("{:?}", l.state).to_lowercase(),
            used: l.used_at.map(when).unwrap_or_default(),
            acknowledged: super::sender::delivery_text(l),
        })
        .collect();
    let page = TransferPage {
        frame: Frame::new(&s, format!("Transfer {}", view.id), "transfer", "audit").with_transfer(view.id.as_str()),
        sender: view.sender.to_string(),
        status: view.status.as_str().replace('_', " "),
        size: format!("{} ({} bytes)", bytes(view.size), view.size),
        digest: view.digest.to_string(),
        classification: view.classification.to_string(),
        created: when(view.created_at),
        expires: when(view.expires_at),
        decided_by: view.decided_by.map(|u| u.to_string()).unwrap_or_default(),
        policies,
        links,
        events: rows.iter().map(EventRow::from).collect(),
        id: view.id,
    };
    render(&page)
}

// ---- The log --------------------------------------------------------------------------------

struct SignatureRow {
    name: String,
    key_id: String,
    role: &'static str,
    time: String,
}

struct WitnessRow {
    name: String,
    url: String,
    cosigned: bool,
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    frame: Frame,
    size: u64,
    checkpoint: String,
    written: String,
    key: String,
    signatures: Vec<SignatureRow>,
    witnesses: Vec<WitnessRow>,
}

async fn log(State(gw): State<Arc<Gateway>>, SignedIn(s): SignedIn) -> Result<Response, PageError> {
    may_read_audit(&gw, &s).await?;
    let log = gw.log.log();
    let checkpoint = log.checkpoint();
    let written = when(log.written_at());
    let log_keys: Vec<String> = log.verifiers().iter().map(|v| v.to_vkey()).collect();
    let is_log_key = |name: &str, id: u32| {
        let hex = format!("{id:08x}");
        log_keys.iter().any(|k| k.starts_with(&format!("{name}+{hex}+")))
    };
    let signatures: Vec<SignatureRow> = Note::parse(&checkpoint)
        .map(|n| n.signatures().to_vec())
        .unwrap_or_default()
        .into_iter()
        .map(|sig| {
            let log_key = is_log_key(&sig.name, sig.key_id);
            let time = if log_key {
                String::new()
            } else {
                cosignature::timestamp(&sig)
                    .ok()
                    .and_then(|t| DateTime::<Utc>::from_timestamp(i64::try_from(t).ok()?, 0))
                    .map(when)
                    .unwrap_or_default()
            };
            SignatureRow {
                key_id: format!("{:08x}", sig.key_id),
                role: if log_key { "The log's key" } else { "Witness cosignature" },
                name: sig.name,
                time,
            }
        })
        .collect();
    let witnesses = gw
        .config
        .witnesses
        .iter()
        .map(|w| {
            let name = w.key.split('+').next().unwrap_or_default().to_owned();
            WitnessRow {
                cosigned: signatures.iter().any(|s| s.name == name && s.role != "The log's key"),
                name,
                url: w.url.clone(),
            }
        })
        .collect();
    render(&LogPage {
        frame: Frame::new(&s, "Transparency log", "log", "log"),
        size: log.size(),
        checkpoint,
        written,
        key: log.verifier().to_vkey(),
        signatures,
        witnesses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_field(&mut out, "a \"b\", c");
        csv_field(&mut out, "=SUM(A1)");
        assert_eq!(out, "\"a \"\"b\"\", c\"\"'=SUM(A1)\"");
    }

    #[test]
    fn details_are_the_facts_after_the_fixed_keys() {
        let entry = "sealpost.audit/v1\nevent transfer.approved\ntime 2026-01-01T00:00:00.000Z\nactor ab\n\
                     transfer cd\nstatus released\nreason looks fine\n";
        assert_eq!(details(entry), "status released; reason looks fine");
    }
}
