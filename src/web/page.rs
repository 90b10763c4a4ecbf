//! What every page shares: the frame the layout draws (title, navigation by role, the CSRF token,
//! `Sign out`), form errors for GOV.UK error summaries, the form extractor that checks the CSRF
//! field, and rendering.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequest, Request};
use axum::response::{Html, IntoResponse as _, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::PageError;
use super::session::{BrowserSession, SignedIn};
use crate::gateway::Gateway;
use crate::model::Role;

/// One link of the service navigation.
#[derive(Debug, Clone)]
pub(crate) struct NavItem {
    pub(crate) href: &'static str,
    pub(crate) label: &'static str,
    pub(crate) active: bool,
}

/// The layout's context: the page's title and `data-page`, and who is signed in.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The `<title>` and, by convention, the `<h1>`.
    pub(crate) title: String,
    /// `<main data-page="…">`: which page script runs.
    pub(crate) page: &'static str,
    /// `<main data-transfer="…">` on the collect and transfer pages.
    pub(crate) transfer: Option<String>,
    /// The signed-in user, as `ORG/NAME`.
    pub(crate) user: Option<String>,
    /// The session's CSRF token (the meta tag and every form's hidden field).
    pub(crate) csrf: Option<String>,
    /// The navigation for the user's role.
    pub(crate) nav: Vec<NavItem>,
    /// True when the page shows form errors (the title then starts with `Error:`).
    pub(crate) error: bool,
}

/// The navigation each role sees: `(key, href, label)`.
fn nav_for(role: Role) -> &'static [(&'static str, &'static str, &'static str)] {
    match role {
        Role::Sender => &[
            ("send", "/send", "Send"),
            ("sent", "/sent", "Sent"),
            ("keys", "/keys", "Keys"),
            ("notifications", "/notifications", "Emails"),
        ],
        Role::Recipient => {
            &[("inbox", "/inbox", "Inbox"), ("keys", "/keys", "Keys"), ("notifications", "/notifications", "Emails")]
        }
        Role::Compliance => &[
            ("held", "/compliance/held", "Held transfers"),
            ("audit", "/compliance/audit", "Audit"),
            ("log", "/compliance/log", "Log"),
            ("notifications", "/notifications", "Emails"),
        ],
        Role::Admin => &[
            ("admin", "/admin", "Administration"),
            ("audit", "/compliance/audit", "Audit"),
            ("log", "/compliance/log", "Log"),
        ],
    }
}

/// The first page of each role, where `/` leads.
pub(crate) fn home(role: Role) -> &'static str {
    match role {
        Role::Recipient => "/inbox",
        Role::Sender => "/send",
        Role::Compliance => "/compliance/held",
        Role::Admin => "/admin",
    }
}

impl Frame {
    /// A frame for a signed-in page; `key` marks the active navigation item.
    pub(crate) fn new(session: &BrowserSession, title: impl Into<String>, page: &'static str, key: &str) -> Self {
        let principal = &session.session.principal;
        let nav =
            nav_for(principal.role).iter().map(|&(k, href, label)| NavItem { href, label, active: k == key }).collect();
        Self {
            title: title.into(),
            page,
            transfer: None,
            user: Some(principal.user.to_string()),
            csrf: Some(session.csrf.clone()),
            nav,
            error: false,
        }
    }

    /// A frame for a page shown to anyone (sign-in, errors).
    pub(crate) fn bare(title: impl Into<String>, page: &'static str) -> Self {
        Self { title: title.into(), page, transfer: None, user: None, csrf: None, nav: Vec::new(), error: false }
    }

    /// Marks the page as showing form errors.
    pub(crate) fn with_errors(mut self, errors: &Errors) -> Self {
        self.error = !errors.is_empty();
        self
    }

    /// Names the transfer the page is about (`data-transfer`).
    pub(crate) fn with_transfer(mut self, id: impl Into<String>) -> Self {
        self.transfer = Some(id.into());
        self
    }
}

/// Renders a page.
pub(crate) fn render(page: &impl Template) -> Result<Response, PageError> {
    Ok(Html(page.render()?).into_response())
}

/// One field's error, for the error summary and the field.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    /// The field's id (the summary links to `#id`).
    pub(crate) field: String,
    /// What is wrong and how to put it right.
    pub(crate) message: String,
}

/// The errors of a posted form.
#[derive(Debug, Clone, Default)]
pub(crate) struct Errors(pub(crate) Vec<FieldError>);

impl Errors {
    /// No errors.
    pub(crate) fn none() -> Self {
        Self::default()
    }

    /// One error on `field`.
    pub(crate) fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// Adds an error on `field`.
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }

    /// The message for `field`, if it has one.
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    /// True when there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every error, in field order.
    pub(crate) fn items(&self) -> &[FieldError] {
        &self.0
    }
}

#[derive(Debug, Deserialize)]
struct Signed<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

/// A form posted by the signed-in browser whose hidden `csrf` field carries the session's
/// token. Without a session the browser is sent to `/sign-in`; with a wrong or missing token
/// the post is refused (403) and nothing is done. Fields are strings: handlers parse them and
/// answer mistakes with an error summary.
#[derive(Debug)]
pub(crate) struct SignedForm<T> {
    pub(crate) session: BrowserSession,
    pub(crate) form: T,
}

impl<T: DeserializeOwned> FromRequest<Arc<Gateway>> for SignedForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, gw: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let SignedIn(session) =
            <SignedIn as axum::extract::FromRequestParts<_>>::from_request_parts(&mut parts, gw).await?;
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|_| PageError::bad_request("That form was too large to read.").into_response())?;
        let signed: Signed<T> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            PageError::bad_request("That form could not be read. Go back and try again.").into_response()
        })?;
        if !session.csrf_ok(&signed.csrf) {
            return Err(PageError::stale_form().into_response());
        }
        Ok(Self { session, form: signed.form })
    }
}

/// A size as people read it: `512 bytes`, `1.5 MB` (decimal units, as file managers show).
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal place")]
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A time as people read it: `27 March 2026, 14:05 UTC`.
pub(crate) fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%-d %B %Y, %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(2_000_000_000), "2.0 GB");
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-27T14:05:09Z").expect("time").to_utc();
        assert_eq!(when(t), "27 March 2026, 14:05 UTC");
    }
}
