//! Error answers: `{"error":{"code":…,"message":…, …}}`. [`ErrorCode`] lists every stable code
//! with its HTTP status; the codes fixed in the design notes keep their spelling.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = ($code:literal, $status:literal), )*) => {
        /// Every stable machine code an error answer can carry, with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order (for the contract and its tests).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status an answer with this code has.
            pub fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }

            /// What the code means, in a sentence (its documentation, for the contract).
            pub fn meaning(self) -> &'static str {
                match self { $( ErrorCode::$variant => concat!($($doc),*).trim_ascii(), )* }
            }
        }
    };
}

error_codes! {
    /// The request is malformed: a parameter, header or body that cannot be read.
    BadRequest = ("bad_request", 400),
    /// The request can be read in two ways (a repeated query parameter or header, two
    /// `Authorization` headers, an expiry of zero or in the past): it is refused, never guessed.
    AmbiguousRequest = ("ambiguous_request", 400),
    /// The person has not finished signing in at the identity provider yet: poll again after
    /// the interval (RFC 8628 `authorization_pending`).
    AuthorizationPending = ("authorization_pending", 400),
    /// Polling too often: wait five seconds longer between polls (RFC 8628 `slow_down`).
    SlowDown = ("slow_down", 400),
    /// The device code expired before the sign-in was finished: start again (RFC 8628).
    ExpiredToken = ("expired_token", 400),
    /// No valid API token (missing, unknown, expired or revoked).
    Unauthenticated = ("unauthenticated", 401),

    /// The caller's role does not allow this, or no policy permits it.
    Forbidden = ("forbidden", 403),
    /// A forbid policy refused it; the answer names the policies.
    PolicyDenied = ("policy_denied", 403),
    /// The identity provider or sealpost refused the sign-in: the person cancelled or is
    /// disabled, has no sealpost account, or no role under the provider's rules.
    AccessDenied = ("access_denied", 403),
    /// The identity provider's answer could not be verified (signature, issuer, audience,
    /// expiry): nothing was signed in.
    SsoInvalid = ("sso_invalid", 403),
    /// No such resource, or not one the caller may see.
    NotFound = ("not_found", 404),
    /// The endpoint does not take that method.
    MethodNotAllowed = ("method_not_allowed", 405),
    /// The client sent nothing for too long (request headers, or an idle request body): send
    /// the request again, without pausing.
    RequestTimeout = ("request_timeout", 408),
    /// The organisation, user, key or route exists already.
    AlreadyExists = ("already_exists", 409),
    /// The transfer is not held for approval (any more).
    NotAwaitingApproval = ("not_awaiting_approval", 409),
    /// A download of this link is running.
    LinkInUse = ("link_in_use", 409),
    /// The transfer waits for a compliance officer's approval.
    AwaitingApproval = ("awaiting_approval", 409),
    /// The transfer has a signed manifest already.
    ManifestExists = ("manifest_exists", 409),
    /// The caller reported on this delivery already.
    AlreadyReported = ("already_reported", 409),
    /// The resumable upload became a transfer already.
    UploadComplete = ("upload_complete", 409),
    /// The resumable upload holds a different number of bytes than the request assumed.
    OffsetMismatch = ("offset_mismatch", 409),
    /// The change would leave no active administrator: make another administrator first.
    LastAdministrator = ("last_administrator", 409),
    /// The link has been used.
    LinkUsed = ("link_used", 410),
    /// The link has expired.
    LinkExpired = ("link_expired", 410),
    /// The sender recalled the transfer, or it was rejected.
    LinkRevoked = ("link_revoked", 410),
    /// The request does not speak tus 1.0.0.
    TusVersionUnsupported = ("tus_version_unsupported", 412),
    /// The upload is larger than the gateway accepts.
    PayloadTooLarge = ("payload_too_large", 413),
    /// More bytes than the resumable upload declared.
    UploadLengthExceeded = ("upload_length_exceeded", 413),
    /// The request's target (path and query) is longer than the gateway reads.
    UriTooLong = ("uri_too_long", 414),
    /// The body has the wrong content type.
    UnsupportedMediaType = ("unsupported_media_type", 415),
    /// The byte range asked for cannot be served.
    RangeNotSatisfiable = ("range_not_satisfiable", 416),
    /// Not an age file, or a damaged or forged one.
    NotAgeEncrypted = ("not_age_encrypted", 422),
    /// Encrypted with a passphrase rather than to recipients' keys.
    PassphraseNotAllowed = ("passphrase_not_allowed", 422),
    /// The file's recipient stanzas do not match the addressed users' directory keys.
    RecipientMismatch = ("recipient_mismatch", 422),
    /// An addressed user does not exist.
    UnknownRecipient = ("unknown_recipient", 422),
    /// An addressed user has no key in the directory.
    RecipientHasNoKey = ("recipient_has_no_key", 422),
    /// The policy set on disk is invalid (the old one stays in force).
    InvalidPolicy = ("invalid_policy", 422),
    /// Not a public key the directory accepts.
    InvalidKey = ("invalid_key", 422),
    /// A private key was sent where a public key belongs (it never reaches storage).
    PrivateKeyRefused = ("private_key_refused", 422),
    /// The manifest or delivery statement names a signing key that is not one of the signer's
    /// live keys (never registered, or removed).
    UnknownSigningKey = ("unknown_signing_key", 422),
    /// The manifest's text is not the one the transfer needs.
    ManifestMismatch = ("manifest_mismatch", 422),
    /// The sender's signature does not verify.
    SenderSignatureInvalid = ("sender_signature_invalid", 422),
    /// The recipient's signature on a delivery statement does not verify.
    DeliverySignatureInvalid = ("delivery_signature_invalid", 422),
    /// The delivery statement names another transfer, digest or recipient, or a checkpoint that
    /// is not a state of this log covering the upload.
    StatementMismatch = ("statement_mismatch", 422),
    /// The delivery statement's time is too far from the gateway's clock (more than 10 minutes
    /// old, or ahead).
    StatementLate = ("statement_late", 422),
    /// Another request is writing to this resumable upload.
    UploadBusy = ("upload_busy", 423),
    /// Too many requests from this client or token: wait for `Retry-After` seconds.
    RateLimited = ("rate_limited", 429),
    /// The request's headers are larger than the gateway reads.
    HeadersTooLarge = ("headers_too_large", 431),
    /// The gateway failed; nothing was changed. The body says no more.
    Internal = ("internal", 500),
    /// The identity provider cannot be reached (or does not answer as OpenID Connect): try
    /// again later.
    SsoUnavailable = ("sso_unavailable", 502),
    /// The gateway is busy; try again after `Retry-After`.
    ServiceUnavailable = ("service_unavailable", 503),
    /// The transparency log cannot be written, so nothing that it would record may happen.
    LogUnavailable = ("log_unavailable", 503),
    /// The gateway is out of storage space.
    InsufficientStorage = ("insufficient_storage", 507),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "policy_denied", "message": "contractors may send only to agencies on an approved route", "policies": ["route-required"]}}))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong: a stable code, a sentence for people saying what to do, and details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// The stable machine code.
    pub code: ErrorCode,
    /// What happened and what to do about it.
    pub message: String,
    /// The ids of the policies that decided a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
    /// A finer machine reason (for refused uploads: which envelope check failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_spelling() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serialise");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).expect("parse"), code);
            assert!((400..600).contains(&code.status()), "{code} has status {}", code.status());
        }
    }

    #[test]
    fn the_codes_fixed_by_the_design_keep_their_spelling_and_status() {
        let fixed = [
            ("unauthenticated", 401),
            ("forbidden", 403),
            ("policy_denied", 403),
            ("not_found", 404),
            ("link_in_use", 409),
            ("link_used", 410),
            ("link_expired", 410),
            ("link_revoked", 410),
            ("payload_too_large", 413),
            ("not_age_encrypted", 422),
            ("passphrase_not_allowed", 422),
            ("recipient_mismatch", 422),
            ("bad_request", 400),
            ("insufficient_storage", 507),
            ("service_unavailable", 503),
        ];
        for (code, status) in fixed {
            let parsed: ErrorCode = serde_json::from_value(serde_json::json!(code)).expect(code);
            assert_eq!((parsed.as_str(), parsed.status()), (code, status));
        }
    }
}
