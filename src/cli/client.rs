//! A small JSON client for the gateway's API, turning its error answers into CLI failures.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ClientArgs, EXIT_DENIED, Failure};
use crate::wire::{ErrorBody, ErrorCode};

/// An authenticated connection to one gateway.
#[derive(Debug)]
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client for `args`, failing with a hint when no token is set.
    pub(super) fn new(args: &ClientArgs) -> Result<Self, Failure> {
        let token = args.token.clone().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            Failure::new("no API token given").hint(
                "set SEALPOST_TOKEN (or pass --token); an administrator creates one with `sealpost admin user add`",
            )
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("sealpost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base: args.url.trim_end_matches('/').to_owned(), token: token.trim().to_owned() })
    }

    /// A client without a token, for the few calls that need none (single sign-on).
    pub(super) fn anonymous(url: &str) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("sealpost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base: url.trim_end_matches('/').to_owned(), token: String::new() })
    }

    /// POST a JSON body; an error answer the gateway explains comes back as `Ok(Err(detail))`,
    /// for callers that act on its code.
    pub(super) async fn post_coded<T: DeserializeOwned>(
        &self,
        path: &str,
        body: impl Serialize,
    ) -> Result<Result<T, crate::wire::ErrorDetail>, Failure> {
        let body = serde_json::to_value(body)
            .map_err(|e| Failure::new(format!("cannot write the request for the gateway: {e}")))?;
        let (status, text) = self.call(Method::POST, path, Some(body)).await?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map(Ok)
                .map_err(|e| Failure::new(format!("the gateway sent an answer this client does not understand: {e}")));
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(ErrorBody { error }) => Ok(Err(error)),
            Err(_) => Err(api_failure(status, &text)),
        }
    }

    /// GET a JSON document, as the wire type `T` (`serde_json::Value` where no type fits).
    pub(super) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.send(Method::GET, path, None).await
    }

    /// POST a JSON body (a wire request type, or `serde_json::Value`), returning the JSON answer
    /// as `T`.
    pub(super) async fn post<T: DeserializeOwned>(&self, path: &str, body: impl Serialize) -> Result<T, Failure> {
        let body = serde_json::to_value(body)
            .map_err(|e| Failure::new(format!("cannot write the request for the gateway: {e}")))?;
        self.send(Method::POST, path, Some(body)).await
    }

    /// PUT a JSON body, returning the JSON answer as `T`.
    pub(super) async fn put<T: DeserializeOwned>(&self, path: &str, body: impl Serialize) -> Result<T, Failure> {
        let body = serde_json::to_value(body)
            .map_err(|e| Failure::new(format!("cannot write the request for the gateway: {e}")))?;
        self.send(Method::PUT, path, Some(body)).await
    }

    /// DELETE, returning the JSON answer as `T`.
    pub(super) async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.send(Method::DELETE, path, None).await
    }

    /// GET a JSON document that may not exist: `None` on 404.
    pub(super) async fn get_optional<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, Failure> {
        let (status, text) = self.call(Method::GET, path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_success() {
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Failure::new(format!("the gateway sent an answer this client does not understand: {e}")));
        }
        Err(api_failure(status, &text))
    }

    async fn send<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Value>) -> Result<T, Failure> {
        let (status, text) = self.call(method, path, body).await?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| Failure::new(format!("the gateway sent an answer this client does not understand: {e}")));
        }
        Err(api_failure(status, &text))
    }

    /// One request (with the token, when there is one): the answer's status and text.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, String), Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            Failure::new(format!("cannot reach the gateway at {}: {}", self.base, root_cause(&e)))
                .hint("is `sealpost serve` running there? check SEALPOST_URL or --url")
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| Failure::new(format!("the gateway's answer broke off: {e}")))?;
        Ok((status, text))
    }
}

/// Turns an error answer into a failure with the server's message and a hint for its code.
pub(super) fn api_failure(status: StatusCode, body: &str) -> Failure {
    let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(body) else {
        return Failure::new(format!("the gateway answered {status}"));
    };
    let failure = Failure::new(error.message);
    match error.code {
        ErrorCode::Unauthenticated => failure.hint("check SEALPOST_TOKEN: it may be mistyped, expired or revoked"),
        ErrorCode::PolicyDenied => {
            let ids = error.policies.unwrap_or_default();
            failure.hint(format!("denied by policy {}", ids.join(", "))).exit(EXIT_DENIED)
        }
        _ => failure,
    }
}

/// The innermost error's text, which is the useful one for connection failures.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
