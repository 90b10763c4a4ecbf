//! Entry points for the fuzz targets in `fuzz/` (`scripts/fuzz.sh`).
//!
//! Most parsers of untrusted bytes are public already (the envelope inspector, the transparency
//! log's notes, checkpoints, proofs and tiles, the manifests, the client's bundle extraction) and
//! the targets call them directly. The HTTP header parsers live private to the `api` module,
//! behind axum's `HeaderMap`; the functions here wrap them so that a target can hand them raw
//! header bytes. They add no logic of their own: each builds the header map a request would
//! carry and calls the handler's own parser. Not an API: nothing but the fuzz targets may use it.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::api::error::ApiError;
pub use crate::lifecycle::{ByteRange, ManifestParts};
pub use crate::wire::ErrorCode;

/// A refusal as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The stable error code.
    pub code: ErrorCode,
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal { status: e.status().as_u16(), code: e.code() }
    }
}

/// A header map holding `name: value`, or `None` when the value is no legal header value (the
/// HTTP library refuses such a request before any handler sees it).
fn one_header(name: HeaderName, value: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Some(headers)
}

/// `Range` as `POST /api/v1/redeem` reads it (`None`: not a legal header value).
pub fn range(value: &[u8]) -> Option<Result<Option<ByteRange>, Refusal>> {
    let headers = one_header(header::RANGE, value)?;
    Some(crate::api::redeem::range_asked(&headers).map_err(Refusal::from))
}

/// The tus headers holding a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TusNumber {
    /// `Upload-Length` (creation).
    UploadLength,
    /// `Upload-Offset` (`PATCH`).
    UploadOffset,
    /// `Content-Length` of a `PATCH`, read by the same parser.
    ContentLength,
}

/// A tus number header as the tus routes read it (`None`: not a legal header value).
pub fn tus_number(which: TusNumber, value: &[u8]) -> Option<Result<Option<u64>, Refusal>> {
    let name = match which {
        TusNumber::UploadLength => HeaderName::from_static("upload-length"),
        TusNumber::UploadOffset => HeaderName::from_static("upload-offset"),
        TusNumber::ContentLength => header::CONTENT_LENGTH,
    };
    let headers = one_header(name.clone(), value)?;
    Some(crate::api::tus::number(&headers, &name).map_err(Refusal::from))
}

/// `Upload-Metadata` as tus creation reads it: the one-shot upload's query string and the
/// sender's manifest parts (`None`: not a legal header value).
pub fn tus_metadata(value: &[u8]) -> Option<Result<(String, ManifestParts), Refusal>> {
    let headers = one_header(HeaderName::from_static("upload-metadata"), value)?;
    Some(crate::api::tus::metadata_query(&headers).map_err(Refusal::from))
}
