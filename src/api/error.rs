//! One error type for every HTTP answer: a stable machine `code`, a sentence for people, and
//! nothing internal. 5xx bodies are opaque; their cause goes to the log.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::blobs::BlobError;
use crate::store::StoreError;

/// An error answer: `{"error":{"code":…,"message":…, …extra}}`. Boxed: errors are rare and
/// `Result`s that carry them stay small.
#[derive(Debug)]
pub struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Map<String, Value>,
    retry_after: Option<u32>,
}

impl ApiError {
    /// An answer with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner { status, code, message: message.into(), extra: Map::new(), retry_after: None }))
    }

    /// Adds a field to the error object.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.extra.insert(key.to_owned(), value.into());
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid API token is needed: send `Authorization: Bearer TOKEN` (ask your administrator for one)",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 with an opaque body; the cause is logged here.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the gateway failed to handle this request; nothing was changed, try again or tell the operator",
        )
    }

    /// 503 with `Retry-After`: busy, try again shortly.
    pub fn unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the gateway is busy; nothing was changed, try again in a moment",
        );
        e.0.retry_after = Some(2);
        e
    }

    /// 503 with `Retry-After`: the transparency log cannot be written, so nothing may happen
    /// that it would have to record (fail closed).
    pub fn log_unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "log_unavailable",
            "the gateway cannot write its transparency log, so it accepts no transfers now; nothing was changed, try again later",
        );
        e.0.retry_after = Some(30);
        e
    }

    /// 507 with `Retry-After`: out of space.
    pub fn insufficient_storage() -> Self {
        let mut e = Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the gateway is out of storage space; nothing was kept, try again later or tell the operator",
        );
        e.0.retry_after = Some(300);
        e
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// True for 4xx answers (the client's mistake or a refusal).
    pub fn is_client_error(&self) -> bool {
        self.0.status.is_client_error()
    }

    /// An extra field, as compact JSON text (e.g. `policies` of a denial).
    pub fn detail(&self, key: &str) -> Option<String> {
        self.0.extra.get(key).map(|v| match v {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        let mut error = Map::new();
        error.insert("code".into(), this.code.into());
        error.insert("message".into(), this.message.into());
        error.extend(this.extra);
        let mut response = (this.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = this.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let conflict = |e: &StoreError| Self::new(StatusCode::CONFLICT, "already_exists", e.to_string());
        match e {
            StoreError::Busy => Self::unavailable(),
            StoreError::Full => Self::insufficient_storage(),
            StoreError::OrgExists(_)
            | StoreError::UserExists(_)
            | StoreError::KeyExists(_)
            | StoreError::RouteExists(..) => conflict(&e),
            StoreError::NotHeld(_) => Self::new(StatusCode::CONFLICT, "not_awaiting_approval", e.to_string()),
            StoreError::UnknownOrg(_) => Self::not_found(format!("{e}: create it first with `sealpost admin org add`")),
            StoreError::UnknownUser(_)
            | StoreError::UnknownToken(_)
            | StoreError::UnknownKey { .. }
            | StoreError::UnknownRoute(..)
            | StoreError::UnknownTransfer(_) => Self::not_found(e.to_string()),
            StoreError::Corrupt(_) | StoreError::Migrate(_) | StoreError::Db(_) => Self::internal(&e),
        }
    }
}

impl From<crate::policy::Denial> for ApiError {
    /// A forbid policy's denial is `policy_denied`; a default deny (no permit applied) is
    /// `forbidden`. Both are 403 and carry the deciding policies.
    fn from(d: crate::policy::Denial) -> Self {
        let code = if d.explicit() { "policy_denied" } else { "forbidden" };
        Self::new(StatusCode::FORBIDDEN, code, d.message).with("policies", d.policies)
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
