//! Answers the connection loop gives itself, outside the router: to a connection beyond the
//! caps, to a request whose body stalled, and in place of the bare answers the HTTP library
//! writes for requests it cannot parse. Each carries the JSON error shape and the headers the
//! router's layers give every other answer (`crate::api::router`).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;

use crate::api::error::ApiError;
use crate::wire::{ErrorBody, ErrorCode, ErrorDetail};

/// The headers every answer carries (as the router's layers set them).
pub(super) const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// What a malformed request is told (the HTTP library could not parse its request line or
/// headers).
pub(super) const MALFORMED: &str =
    "the request is not valid HTTP/1.1: check the request line and that every header is `Name: value`";
/// What a request with too many or too large headers is told.
pub(super) const HEADERS_TOO_LARGE: &str =
    "the request's headers are too large or too many: send at most 100 headers and 64 KiB of them";
/// What a request with a too long URI is told.
pub(super) const URI_TOO_LONG: &str = "the request's URI is too long: send at most 8 KiB of path and query";

/// `error` as an answer made outside the router, with the headers every answer has; the
/// connection closes after it.
pub(super) fn response(error: ApiError) -> Response {
    let mut response = error.into_response();
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A whole HTTP/1.1 answer with this error, as bytes to write to a socket: JSON body, the
/// headers every answer has, `Retry-After` if given, `Connection: close`.
pub(super) fn raw(code: ErrorCode, message: &str, retry_after: Option<u32>) -> Bytes {
    let detail = ErrorDetail { code, message: message.to_owned(), policies: None, reason: None };
    let body = serde_json::to_vec(&ErrorBody { error: detail }).unwrap_or_default();
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    );
    for (name, value) in SECURITY_HEADERS {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(secs) = retry_after {
        head.push_str(&format!("retry-after: {secs}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_answer_is_http_with_the_json_shape_and_the_security_headers() {
        let bytes = raw(ErrorCode::ServiceUnavailable, "busy", Some(2));
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{head}");
        for needle in
            ["x-content-type-options: nosniff", "retry-after: 2", "connection: close", "x-frame-options: DENY"]
        {
            assert!(head.contains(needle), "{needle} missing from {head}");
        }
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["error"]["code"], "service_unavailable");
    }
}
