//! One error type for pages: an HTML error page with a status, a heading and a sentence.
//! Server failures show an opaque page; their cause goes to the log.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::page::Frame;
use crate::lifecycle::LifecycleError;
use crate::policy::Denial;
use crate::store::StoreError;
use crate::wire::ErrorCode;

/// A page that says what went wrong.
#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
    /// The signed-in frame (navigation, `Sign out`) when the page knows its session: a refusal
    /// that asks the user to sign in again must offer the way to.
    frame: Option<Box<Frame>>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    frame: Frame,
    message: &'a str,
}

impl PageError {
    /// 404: there is no such page or thing.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, title: "Page not found", message: message.into(), frame: None }
    }

    /// 400: a request the page could not read.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, title: "There is a problem", message: message.into(), frame: None }
    }

    /// 403: the signed-in user may not do this.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self { status: StatusCode::FORBIDDEN, title: "You cannot do this", message: message.into(), frame: None }
    }

    /// 403: a form without this session's CSRF token (an old page, or another site's form).
    pub(crate) fn stale_form() -> Self {
        Self::forbidden("This form has expired or did not come from sealpost. Go back, reload the page and try again.")
    }

    /// 500 with an opaque page; the cause is logged here.
    pub(crate) fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "page failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Sorry, there is a problem with the service",
            message: "Nothing was changed. Try again later, or tell the operator.".to_owned(),
            frame: None,
        }
    }

    /// 429: too many requests of one kind from one client; try again in `seconds`.
    pub(crate) fn too_many_requests(seconds: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            title: "Too many attempts",
            message: format!(
                "Too many requests came from here in a short time. Wait {seconds} seconds, then try again."
            ),
            frame: None,
        }
    }

    /// 503: busy or unable to record; nothing changed.
    fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Sorry, the service is busy",
            message: "Nothing was changed. Try again in a moment.".to_owned(),
            frame: None,
        }
    }

    /// The answer for a lifecycle error with this code and sentence.
    fn from_code(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::Internal => Self::internal(&message),
            ErrorCode::ServiceUnavailable | ErrorCode::LogUnavailable | ErrorCode::InsufficientStorage => {
                Self::unavailable()
            }
            ErrorCode::NotFound => Self::not_found(sentence(&message)),
            _ => Self {
                status: StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST),
                title: "You cannot do this",
                message: sentence(&message),
                frame: None,
            },
        }
    }

    /// Shows the error inside the signed-in frame of `session` (its navigation and `Sign out`).
    pub(crate) fn signed_in(mut self, session: &super::session::BrowserSession) -> Self {
        self.frame = Some(Box::new(Frame::new(session, self.title, "error", "")));
        self
    }

    /// The sentence shown (for error summaries on form pages).
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// True for a refusal or a mistake (4xx), which a form shows beside its fields.
    pub(crate) fn is_client_error(&self) -> bool {
        self.status.is_client_error()
    }
}

/// Turns a lowercase error line into a sentence for a page.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out.replace('`', "")
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self::from_code(e.code(), e.to_string())
    }
}

impl From<LifecycleError> for PageError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Store(e) => e.into(),
            other => Self::from_code(other.code(), other.to_string()),
        }
    }
}

impl From<Denial> for PageError {
    fn from(d: Denial) -> Self {
        Self::forbidden(sentence(&d.message))
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        Self::internal(&e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let frame = self.frame.map_or_else(|| Frame::bare(self.title, "error"), |f| *f);
        let page = ErrorPage { frame, message: &self.message };
        let mut response = match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "error page failed");
                (self.status, self.title).into_response()
            }
        };
        // A busy or faulty store: the browser (and any client behind it) may try again shortly,
        // as the API's 503 answers say.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(2u32));
        }
        response
    }
}
