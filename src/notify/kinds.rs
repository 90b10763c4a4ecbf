//! The kinds of notification, which of them a user may turn off, and what each one's mail says.
//!
//! A message is built from its facts (`data`, written into the outbox with the audit event that
//! caused it): the transfer id, the parties' `ORG/NAME`, the classification and the expiry. It
//! never holds a link token, a file name or anything from inside a bundle; the links it carries
//! point at the gateway's own pages, where the reader signs in.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A bundle waits for the recipient (released to them: accepted without hold, or approved).
    Waiting,
    /// A transfer waits for a compliance officer's approval.
    Held,
    /// A recipient collected the sender's bundle.
    Collected,
    /// A recipient reported whether the bundle opened (and whether they signed for it).
    Acknowledged,
    /// A compliance officer rejected the sender's transfer.
    Rejected,
    /// A recipient's link expired unused.
    Expired,
    /// The transfer was recalled.
    Recalled,
    /// A bundle waiting for the recipient expires soon.
    Expiring,
    /// A key was registered under the user's name.
    KeyAdded,
    /// A key was removed from under the user's name.
    KeyRemoved,
}

impl Kind {
    /// Every kind, in the order lists show them.
    pub const ALL: [Self; 10] = [
        Self::Waiting,
        Self::Held,
        Self::Collected,
        Self::Acknowledged,
        Self::Rejected,
        Self::Expired,
        Self::Recalled,
        Self::Expiring,
        Self::KeyAdded,
        Self::KeyRemoved,
    ];

    /// The kind's stable name (outbox rows, audit entries, webhook `type`, the API).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "transfer.waiting",
            Self::Held => "transfer.held",
            Self::Collected => "transfer.collected",
            Self::Acknowledged => "transfer.acknowledged",
            Self::Rejected => "transfer.rejected",
            Self::Expired => "transfer.expired",
            Self::Recalled => "transfer.recalled",
            Self::Expiring => "transfer.expiring",
            Self::KeyAdded => "key.added",
            Self::KeyRemoved => "key.removed",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a user may turn this kind off. Not optional: a bundle waiting (the reason the
    /// gateway mails at all), a transfer waiting for approval (a compliance officer's duty), a
    /// rejection (the sender must know it did not go) and key changes (a key registered under
    /// someone's name without them knowing is how a bundle reaches the wrong person).
    pub fn optional(self) -> bool {
        matches!(self, Self::Collected | Self::Acknowledged | Self::Expired | Self::Recalled | Self::Expiring)
    }

    /// One sentence saying when it is sent.
    pub fn description(self) -> &'static str {
        match self {
            Self::Waiting => "A bundle is waiting for you to collect.",
            Self::Held => "A transfer is waiting for a compliance officer's approval (compliance officers).",
            Self::Collected => "A recipient collected a bundle you sent.",
            Self::Acknowledged => {
                "A recipient reported whether a bundle you sent opened, and whether they signed for it."
            }
            Self::Rejected => "A compliance officer rejected a transfer you sent.",
            Self::Expired => "A recipient did not collect a bundle you sent before it expired.",
            Self::Recalled => "A transfer you sent was recalled.",
            Self::Expiring => "A bundle waiting for you expires within a day.",
            Self::KeyAdded => "A key was registered under your name.",
            Self::KeyRemoved => "A key was removed from your name.",
        }
    }
}

/// A text fact of `data`, or `""`.
fn text<'a>(data: &'a Value, key: &str) -> &'a str {
    data.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// An RFC 3339 time of `data` written for people (`6 December 2026 at 14:05 UTC`).
fn when(data: &Value, key: &str) -> String {
    text(data, key)
        .parse::<DateTime<Utc>>()
        .map(|t| t.format("%-d %B %Y at %H:%M UTC").to_string())
        .unwrap_or_else(|_| "an unknown time".to_owned())
}

/// A rendered email: subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// The mail of `kind` with facts `data`; links start at `public_url` (no trailing slash).
pub fn render(kind: Kind, data: &Value, public_url: &str) -> Mail {
    let transfer = text(data, "transfer");
    let sender = text(data, "sender");
    let recipient = text(data, "recipient");
    let classification = text(data, "classification");
    let expires = when(data, "expires_at");
    let facts = format!("Transfer: {transfer}\nFrom: {sender}\nClassification: {classification}\nExpires: {expires}\n");
    let (subject, lines) = match kind {
        Kind::Waiting => (
            format!("A bundle from {sender} is waiting for you"),
            format!(
                "{sender} has sent you a bundle through sealpost.\n\n{facts}\nTo collect it, sign in and go to your inbox:\n\
                 {public_url}/inbox\n\nYou need your own key to open it. If you were not expecting it, tell your \
                 organisation's sealpost administrator."
            ),
        ),
        Kind::Held => (
            format!("A transfer from {sender} is waiting for approval"),
            format!(
                "A transfer from {sender} needs a compliance officer's approval before it is released.\n\n{facts}\n\
                 To approve or reject it, sign in and go to the transfers waiting for approval:\n\
                 {public_url}/compliance/held"
            ),
        ),
        Kind::Collected => (
            format!("{recipient} has collected your transfer"),
            format!(
                "{recipient} has collected the bundle you sent.\n\n{facts}\nTo see where your transfer stands:\n\
                 {public_url}/sent/{transfer}"
            ),
        ),
        Kind::Acknowledged => {
            let opened = text(data, "outcome") == "decrypted";
            let signed = data.get("signed").and_then(Value::as_bool).unwrap_or(false);
            let what = match (opened, signed) {
                (true, true) => "opened the bundle you sent and signed for it",
                (true, false) => "opened the bundle you sent (without signing for it)",
                (false, _) => "could not open the bundle you sent",
            };
            (
                format!(
                    "{recipient} {}",
                    if opened { "has opened your transfer" } else { "could not open your transfer" }
                ),
                format!(
                    "{recipient} {what}.\n\n{facts}\nTo see where your transfer stands:\n{public_url}/sent/{transfer}"
                ),
            )
        }
        Kind::Rejected => (
            "Your transfer was rejected".to_owned(),
            format!(
                "A compliance officer rejected your transfer. It was not released, and its recipients cannot \
                 collect it.\n\n{facts}\nTo see the decision:\n{public_url}/sent/{transfer}"
            ),
        ),
        Kind::Expired => (
            format!("{recipient} did not collect your transfer in time"),
            format!(
                "The bundle you sent to {recipient} expired before they collected it. It will be deleted.\n\n\
                 {facts}\nIf they still need it, send it again.\n{public_url}/sent/{transfer}"
            ),
        ),
        Kind::Recalled => (
            "Your transfer was recalled".to_owned(),
            format!(
                "Your transfer was recalled: links not yet used no longer work, and the bundle will be \
                 deleted.\n\n{facts}\nTo see where it stands:\n{public_url}/sent/{transfer}"
            ),
        ),
        Kind::Expiring => (
            format!("A bundle from {sender} expires soon"),
            format!(
                "A bundle {sender} sent you has not been collected. It expires on {expires}, and after that it \
                 cannot be collected.\n\n{facts}\nTo collect it, sign in and go to your inbox:\n{public_url}/inbox"
            ),
        ),
        Kind::KeyAdded | Kind::KeyRemoved => {
            let added = kind == Kind::KeyAdded;
            let fingerprint = text(data, "fingerprint");
            let by = text(data, "by");
            (
                if added { "A key was registered under your name" } else { "A key was removed from your name" }
                    .to_owned(),
                format!(
                    "A key was {} {} your name by {by}.\n\nKey fingerprint: {fingerprint}\nWhen: {}\n\n\
                     If this was not you or your administrator, tell your organisation's sealpost administrator \
                     at once: senders encrypt bundles for you to the keys under your name.\n\
                     To see your keys:\n{public_url}/keys",
                    if added { "registered" } else { "removed" },
                    if added { "under" } else { "from" },
                    when(data, "at"),
                ),
            )
        }
    };
    let body = format!("{lines}\n\n---\nThis message was sent by sealpost. {}\n", footer(kind, public_url));
    Mail { subject, body }
}

/// The last line: how to turn an optional kind off, or why a kind cannot be.
fn footer(kind: Kind, public_url: &str) -> String {
    if kind.optional() {
        format!(
            "You can turn these messages off at {public_url}/notifications or with `sealpost notifications off {}`.",
            kind.as_str()
        )
    } else {
        "You cannot turn these messages off: they tell you something you need to act on or know.".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("transfer.unknown"), None);
    }

    #[test]
    fn mail_carries_the_facts_and_a_link_to_the_page_only() {
        let data = serde_json::json!({
            "transfer": "0123456789abcdef0123456789abcdef",
            "sender": "acme/bob",
            "recipient": "hmpps/alice",
            "classification": "OFFICIAL",
            "expires_at": "2026-12-09T14:05:00Z",
        });
        let mail = render(Kind::Waiting, &data, "https://sealpost.example");
        assert_eq!(mail.subject, "A bundle from acme/bob is waiting for you");
        assert!(mail.body.contains("https://sealpost.example/inbox\n"), "{}", mail.body);
        assert!(mail.body.contains("Transfer: 0123456789abcdef0123456789abcdef\n"), "{}", mail.body);
        assert!(mail.body.contains("Expires: 9 December 2026 at 14:05 UTC\n"), "{}", mail.body);
        assert!(mail.body.contains("You cannot turn these messages off"), "{}", mail.body);
        let collected = render(Kind::Collected, &data, "https://sealpost.example");
        assert!(collected.body.contains("sealpost notifications off transfer.collected"), "{}", collected.body);
    }
}
