//! One error type for every HTTP answer: a stable machine `code`, a sentence for people, and
//! nothing internal. 5xx bodies are opaque; their cause goes to the log.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::blobs::BlobError;
use crate::lifecycle::LifecycleError;
use crate::store::StoreError;
use crate::wire::{ErrorBody, ErrorCode, ErrorDetail};

/// An error answer: `{"error":{"code":…,"message":…, …}}` ([`ErrorBody`] on the wire). Boxed:
/// errors are rare and `Result`s that carry them stay small.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    detail: ErrorDetail,
    retry_after: Option<u32>,
}

impl ApiError {
    /// An answer with this code (which fixes the status) and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let detail = ErrorDetail { code, message: message.into(), policies: None, reason: None };
        let retry_after = match code {
            ErrorCode::ServiceUnavailable => Some(2),
            ErrorCode::LogUnavailable => Some(30),
            ErrorCode::InsufficientStorage => Some(300),
            ErrorCode::RateLimited => Some(1),
            _ => None,
        };
        Self(Box::new(Inner { detail, retry_after }))
    }

    /// Sets `Retry-After` to `seconds` (at least one).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(u32::try_from(seconds.max(1)).unwrap_or(u32::MAX));
        self
    }

    /// Adds the ids of the policies that decided a denial.
    pub fn with_policies(mut self, policies: Vec<String>) -> Self {
        self.0.detail.policies = Some(policies);
        self
    }

    /// Adds a finer machine reason.
    pub fn with_reason(mut self, reason: &str) -> Self {
        self.0.detail.reason = Some(reason.to_owned());
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorCode::Unauthenticated,
            "a valid API token is needed: send `Authorization: Bearer TOKEN` (ask your administrator for one)",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 500 with an opaque body; the cause is logged here.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "the gateway failed to handle this request; nothing was changed, try again or tell the operator",
        )
    }

    /// 503 with `Retry-After`: busy, try again shortly.
    pub fn unavailable() -> Self {
        Self::new(ErrorCode::ServiceUnavailable, "the gateway is busy; nothing was changed, try again in a moment")
    }

    /// 503 with `Retry-After`: the transparency log cannot be written, so nothing may happen
    /// that it would have to record (fail closed).
    pub fn log_unavailable() -> Self {
        Self::new(
            ErrorCode::LogUnavailable,
            "the gateway cannot write its transparency log, so it accepts no transfers now; nothing was changed, try again later",
        )
    }

    /// 507 with `Retry-After`: out of space.
    pub fn insufficient_storage() -> Self {
        Self::new(
            ErrorCode::InsufficientStorage,
            "the gateway is out of storage space; nothing was kept, try again later or tell the operator",
        )
    }

    /// The machine code.
    pub fn code(&self) -> ErrorCode {
        self.0.detail.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.detail.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// True for 4xx answers (the client's mistake or a refusal).
    pub fn is_client_error(&self) -> bool {
        self.status().is_client_error()
    }

    /// The ids of the policies that decided a denial, comma-separated (for the audit trail).
    pub fn policies(&self) -> Option<String> {
        self.0.detail.policies.as_ref().map(|p| p.join(","))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let Inner { detail, retry_after } = *self.0;
        let code = detail.code;
        let mut response = (status, Json(ErrorBody { error: detail })).into_response();
        // For the metrics (refusals by code); never sent.
        response.extensions_mut().insert(code);
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.code() {
            ErrorCode::Internal => Self::internal(&e),
            ErrorCode::ServiceUnavailable => {
                if let StoreError::Unavailable(why) = &e {
                    tracing::error!(error = %why, "the database cannot be used");
                }
                Self::unavailable()
            }
            ErrorCode::InsufficientStorage => Self::insufficient_storage(),
            ErrorCode::NotFound if matches!(e, StoreError::UnknownOrg(_)) => {
                Self::not_found(format!("{e}: create it first with `sealpost admin org add`"))
            }
            code => Self::new(code, e.to_string()),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Store(e) => e.into(),
            LifecycleError::Blob(e) => e.into(),
            LifecycleError::Denied(d) => d.into(),
            LifecycleError::LogUnavailable => Self::log_unavailable(),
            LifecycleError::Refused { ref refusal, .. } => {
                let reason = refusal.reason();
                Self::new(e.code(), e.to_string()).with_reason(reason)
            }
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

impl From<crate::transparency::writer::LogError> for ApiError {
    fn from(e: crate::transparency::writer::LogError) -> Self {
        use crate::transparency::writer::LogError;
        match e {
            LogError::Store(e) => e.into(),
            LogError::UnknownKey(_) | LogError::LastKey(_) => Self::bad_request(e.to_string()),
            other => Self::internal(&other),
        }
    }
}

impl From<crate::policy::Denial> for ApiError {
    /// A forbid policy's denial is `policy_denied`; a default deny (no permit applied) is
    /// `forbidden`. Both are 403 and carry the deciding policies.
    fn from(d: crate::policy::Denial) -> Self {
        let code = if d.explicit() { ErrorCode::PolicyDenied } else { ErrorCode::Forbidden };
        Self::new(code, d.message).with_policies(d.policies)
    }
}

impl From<crate::model::ParseError> for ApiError {
    fn from(e: crate::model::ParseError) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Full => Self::insufficient_storage(),
            BlobError::Unavailable(e) => {
                tracing::warn!(error = %e, "the blob store is unavailable");
                Self::unavailable()
            }
            BlobError::Unwritable(e) => {
                tracing::error!(error = %e, "the blob store cannot be written");
                Self::unavailable()
            }
            other => Self::internal(&other),
        }
    }
}

/// A JSON body whose rejection is a JSON `bad_request`, like every other error.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("send the body as JSON with `Content-Type: application/json`")
        }
        other => ApiError::bad_request(format!("the JSON body is not valid: {}", other.body_text())),
    }
}

/// A query string whose rejection is a JSON `bad_request`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => {
                Err(ApiError::bad_request(format!("the query string is not valid: {}", rejection.body_text())))
            }
        }
    }
}
