//! Webhook deliveries, signed as the Standard Webhooks specification says
//! (<https://www.standardwebhooks.com/>): headers `webhook-id` (the outbox row's id, the same on
//! every retry, so a receiver can drop duplicates), `webhook-timestamp` (Unix seconds) and
//! `webhook-signature` (`v1,` and the base64 of HMAC-SHA256 under the secret's bytes of
//! `{id}.{timestamp}.{body}`). The body is `{"type", "timestamp", "data"}`: `type` is the kind
//! (`transfer.waiting`, …), `data` the same facts an email carries and never a link token, a file
//! name or anything from inside a bundle. A 2xx answer is a delivery; anything else is retried.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use super::Kind;
use crate::store::OutboxRow;

/// The `webhook-signature` header's value for `body` sent as message `id` at `timestamp`.
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The JSON body of a delivery of `kind` with facts `data`, made at `now`.
pub fn payload(kind: Kind, data: &serde_json::Value, now: DateTime<Utc>) -> Vec<u8> {
    let body = serde_json::json!({
        "type": kind.as_str(),
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": data,
    });
    body.to_string().into_bytes()
}

/// Posts `row` to `url`, signed with `secret`; `Err` says why it was not delivered.
pub(super) async fn deliver(
    http: &reqwest::Client,
    url: &str,
    secret: &[u8],
    row: &OutboxRow,
    kind: Kind,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let body = payload(kind, &row.data, now);
    let timestamp = now.timestamp();
    let id = row.id.as_str();
    let answer = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature(secret, id, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("the webhook endpoint could not be reached: {}", e.without_url()))?;
    let status = answer.status();
    if status.is_success() { Ok(()) } else { Err(format!("the webhook endpoint answered {status}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // The example of the Standard Webhooks reference libraries' tests.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
