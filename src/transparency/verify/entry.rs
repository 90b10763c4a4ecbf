//! The strict reader of log entries: the `sealpost.audit/v1` line format that
//! [`crate::audit::Event::entry`] writes, one entry per leaf of the transparency log.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::audit::{ENTRY_VERSION, MAX_ENTRY_BYTES};

/// The keys that come first, in this order, each at most once; event facts follow them.
const FIXED_KEYS: [&str; 6] = ["event", "time", "actor", "transfer", "subject", "code"];

/// The facts each lifecycle event must carry, besides `event` and `time`.
const REQUIRED: [(&str, &[&str]); 12] = [
    ("upload.accepted", &["transfer", "size", "digest"]),
    ("link.issued", &["transfer", "subject", "link"]),
    ("download.started", &["transfer", "link"]),
    ("download.completed", &["transfer", "link", "size", "digest"]),
    ("download.failed", &["transfer", "link"]),
    ("download.partial", &["transfer", "link", "range", "size"]),
    ("link.revoked", &["transfer", "link"]),
    ("link.expired", &["transfer", "link"]),
    ("session.started", &["subject", "session", "method"]),
    ("session.ended", &["subject", "session", "code"]),
    ("session.refused", &["code", "method"]),
    ("notification.sent", &["subject", "kind", "channel"]),
];

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// More bytes than an entry bundle can hold.
    #[error("entry is {len} bytes long, more than {MAX_ENTRY_BYTES}")]
    TooLong { len: usize },
    /// Bytes that are not UTF-8.
    #[error("entry is not valid utf-8")]
    NotUtf8,
    /// The last line does not end in a newline (or the entry is empty).
    #[error("entry does not end in a newline")]
    MissingFinalNewline,
    /// The first line is not `sealpost.audit/v1`.
    #[error("entry starts with `{found}`, expected `{ENTRY_VERSION}`")]
    BadVersion { found: String },
    /// An empty line.
    #[error("entry line {line} is empty")]
    EmptyLine { line: usize },
    /// A control character (such as a carriage return or a tab) in a line.
    #[error("entry line {line} contains a control character")]
    ControlCharacter { line: usize },
    /// A line that is not `key value` with a lowercase key.
    #[error("entry line {line} is not a `key value` line")]
    MalformedLine { line: usize },
    /// A key given twice.
    #[error("entry line {line} repeats the key `{key}`")]
    DuplicateKey { line: usize, key: String },
    /// A key out of the fixed order `event`, `time`, `actor`, `transfer`, `subject`, `code`, facts.
    #[error("entry line {line} has the key `{key}` out of order")]
    OutOfOrder { line: usize, key: String },
    /// No `event` or no `time` line.
    #[error("entry has no `{key}` line")]
    MissingKey { key: &'static str },
    /// An event name that is not `word.word`.
    #[error("entry event `{event}` is not a lowercase dotted name")]
    BadEvent { event: String },
    /// A time that is not RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
    #[error("entry time `{text}` is not an rfc 3339 utc time with milliseconds")]
    BadTime { text: String },
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error("entry digest `{text}` is not `sha256:` and 64 lowercase hex digits")]
    BadDigest { text: String },
    /// A size that is not a decimal number without leading zeros.
    #[error("entry size `{text}` is not a decimal number without leading zeros")]
    BadSize { text: String },
    /// A lifecycle event without one of the facts it must carry.
    #[error("`{event}` entry has no `{key}`")]
    MissingField { event: String, key: &'static str },
}

/// A parsed entry: the event, its time, the parties and the facts, as the log holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    event: String,
    time: DateTime<Utc>,
    time_text: String,
    actor: Option<String>,
    transfer: Option<String>,
    subject: Option<String>,
    code: Option<String>,
    facts: Vec<(String, String)>,
}

impl Entry {
    /// The event name, such as `upload.accepted`.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// When it happened.
    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }

    /// The time exactly as written in the entry.
    pub fn time_text(&self) -> &str {
        &self.time_text
    }

    /// Who did it (a user id), if anyone.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// The transfer it concerns.
    pub fn transfer(&self) -> Option<&str> {
        self.transfer.as_deref()
    }

    /// The other party or object (for `link.issued`, the recipient's user id).
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The machine code (why something was refused or ended).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The facts after the fixed keys, in entry order.
    pub fn facts(&self) -> &[(String, String)] {
        &self.facts
    }

    /// One fact by key.
    pub fn fact(&self, key: &str) -> Option<&str> {
        self.facts.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The ciphertext digest, `sha256:<hex>`.
    pub fn digest(&self) -> Option<&str> {
        self.fact("digest")
    }

    /// The link id.
    pub fn link(&self) -> Option<&str> {
        self.fact("link")
    }

    /// The ciphertext size in bytes.
    pub fn size(&self) -> Option<u64> {
        self.fact("size").and_then(|s| s.parse().ok())
    }

    /// A value by key, fixed or fact (`time` as written).
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            "event" => Some(&self.event),
            "time" => Some(&self.time_text),
            "actor" => self.actor(),
            "transfer" => self.transfer(),
            "subject" => self.subject(),
            "code" => self.code(),
            _ => self.fact(key),
        }
    }
}

fn is_key(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'))
}

fn is_event(s: &str) -> bool {
    let mut parts = s.split('.');
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    parts.next().is_some_and(word) && parts.clone().next().is_some() && parts.all(word)
}

fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
        && s.parse::<u64>().is_ok()
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, EntryError> {
    let bad = || EntryError::BadTime { text: text.to_owned() };
    let time = DateTime::parse_from_rfc3339(text).map_err(|_| bad())?.with_timezone(&Utc);
    if time.to_rfc3339_opts(SecondsFormat::Millis, true) != text {
        return Err(bad());
    }
    Ok(time)
}

/// Parses one entry strictly: UTF-8; the version line; `key value` lines each ending in a single
/// LF; `event`, `time`, `actor`, `transfer`, `subject`, `code` in that order (the first two
/// required), then facts; no key twice; well-formed event, time, digest and size; and the facts
/// each lifecycle event must carry.
pub fn parse_entry(bytes: &[u8]) -> Result<Entry, EntryError> {
    if bytes.len() > MAX_ENTRY_BYTES {
        return Err(EntryError::TooLong { len: bytes.len() });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| EntryError::NotUtf8)?;
    let body = text.strip_suffix('\n').ok_or(EntryError::MissingFinalNewline)?;
    let mut lines = body.split('\n');
    let first = lines.next().unwrap_or_default();
    if first != ENTRY_VERSION {
        return Err(EntryError::BadVersion { found: first.chars().take(64).collect() });
    }
    let mut fixed: [Option<&str>; 6] = [None; 6];
    let mut facts: Vec<(String, String)> = Vec::new();
    let mut last_rank = 0;
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        if line.is_empty() {
            return Err(EntryError::EmptyLine { line: number });
        }
        if line.chars().any(char::is_control) {
            return Err(EntryError::ControlCharacter { line: number });
        }
        let (key, value) = line.split_once(' ').ok_or(EntryError::MalformedLine { line: number })?;
        if !is_key(key) {
            return Err(EntryError::MalformedLine { line: number });
        }
        let rank = FIXED_KEYS.iter().position(|k| *k == key).unwrap_or(FIXED_KEYS.len());
        let seen = fixed.get(rank).is_some_and(Option::is_some) || facts.iter().any(|(k, _)| k == key);
        if seen {
            return Err(EntryError::DuplicateKey { line: number, key: key.to_owned() });
        }
        if rank < last_rank {
            return Err(EntryError::OutOfOrder { line: number, key: key.to_owned() });
        }
        last_rank = rank;
        match fixed.get_mut(rank) {
            Some(slot) => *slot = Some(value),
            None => facts.push((key.to_owned(), value.to_owned())),
        }
    }
    let [event, time, actor, transfer, subject, code] = fixed;
    let event = event.ok_or(EntryError::MissingKey { key: "event" })?;
    let time_text = time.ok_or(EntryError::MissingKey { key: "time" })?;
    if !is_event(event) {
        return Err(EntryError::BadEvent { event: event.to_owned() });
    }
    let time = parse_time(time_text)?;
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let entry = Entry {
        event: event.to_owned(),
        time,
        time_text: time_text.to_owned(),
        actor: owned(actor),
        transfer: owned(transfer),
        subject: owned(subject),
        code: owned(code),
        facts,
    };
    if let Some(d) = entry.digest().filter(|d| !is_digest(d)) {
        return Err(EntryError::BadDigest { text: d.to_owned() });
    }
    if let Some(s) = entry.fact("size").filter(|s| !is_decimal(s)) {
        return Err(EntryError::BadSize { text: s.to_owned() });
    }
    if let Some((_, keys)) = REQUIRED.iter().find(|(e, _)| *e == entry.event) {
        for key in *keys {
            if entry.get(key).is_none_or(str::is_empty) {
                return Err(EntryError::MissingField { event: entry.event.clone(), key });
            }
        }
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Event, EventKind};
    use crate::ids::{TransferId, UserId};
    use chrono::TimeZone as _;

    const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn good() -> String {
        format!(
            "sealpost.audit/v1\nevent upload.accepted\ntime 2026-11-21T12:00:00.250Z\nactor {a}\ntransfer {t}\n\
             size 12\ndigest {DIGEST}\nclassification OFFICIAL\n",
            a = "a".repeat(32),
            t = "b".repeat(32)
        )
    }

    #[test]
    fn an_entry_written_by_the_audit_module_parses_back() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().expect("valid time");
        let transfer = TransferId::generate();
        let actor = UserId::generate();
        let text = Event::new(EventKind::DownloadCompleted)
            .actor(&actor)
            .transfer(&transfer)
            .field("link", "c".repeat(32))
            .field("size", 12)
            .field("digest", DIGEST)
            .entry(at);
        let entry = parse_entry(text.as_bytes()).unwrap();
        assert_eq!(entry.event(), "download.completed");
        assert_eq!(entry.time(), at);
        assert_eq!(entry.time_text(), "2026-11-21T12:00:00.000Z");
        assert_eq!(entry.actor(), Some(actor.as_str()));
        assert_eq!(entry.transfer(), Some(transfer.as_str()));
        assert_eq!((entry.subject(), entry.code()), (None, None));
        assert_eq!(entry.link(), Some("c".repeat(32).as_str()));
        assert_eq!((entry.size(), entry.digest()), (Some(12), Some(DIGEST)));
    }

    #[test]
    fn a_partial_download_needs_its_link_range_and_size() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().expect("valid time");
        let event = Event::new(EventKind::DownloadPartial)
            .actor(&UserId::generate())
            .transfer(&TransferId::generate())
            .field("range", "0-63")
            .field("size", 5000)
            .field("link", "c".repeat(32));
        let text = event.entry(at);
        let entry = parse_entry(text.as_bytes()).unwrap();
        assert_eq!((entry.event(), entry.get("range"), entry.size()), ("download.partial", Some("0-63"), Some(5000)));
        assert_eq!(
            parse_entry(text.replace("range 0-63\n", "").as_bytes()),
            Err(EntryError::MissingField { event: "download.partial".into(), key: "range" })
        );
    }

    #[test]
    fn unknown_events_and_facts_are_accepted_in_any_fact_order() {
        let text = "sealpost.audit/v1\nevent policy.changed\ntime 2026-01-02T03:04:05.678Z\ncode reload\n\
                    status ok\npolicy_digest abc\n";
        let entry = parse_entry(text.as_bytes()).unwrap();
        assert_eq!(entry.facts(), [("status".into(), "ok".into()), ("policy_digest".into(), "abc".into())]);
        assert_eq!(entry.get("code"), Some("reload"));
    }

    #[test]
    fn malformed_entries_are_refused_precisely() {
        let g = good();
        let t = "b".repeat(32);
        let swapped = "time 2026-11-21T12:00:00.250Z\nevent upload.accepted\n";
        let cases: Vec<(Vec<u8>, EntryError)> = vec![
            (vec![b'a'; MAX_ENTRY_BYTES + 1], EntryError::TooLong { len: MAX_ENTRY_BYTES + 1 }),
            (b"sealpost.audit/v1\nevent \xff\n".to_vec(), EntryError::NotUtf8),
            (g.trim_end().into(), EntryError::MissingFinalNewline),
            (Vec::new(), EntryError::MissingFinalNewline),
            (g.replace("/v1", "/v2").into(), EntryError::BadVersion { found: "sealpost.audit/v2".into() }),
            (g.replace("\nsize", "\n\nsize").into(), EntryError::EmptyLine { line: 6 }),
            (g.replace("size 12\n", "size 12\r\n").into(), EntryError::ControlCharacter { line: 6 }),
            (g.replace("size 12", "size\t12").into(), EntryError::ControlCharacter { line: 6 }),
            (g.replace("size 12", "size").into(), EntryError::MalformedLine { line: 6 }),
            (g.replace("size 12", "Size 12").into(), EntryError::MalformedLine { line: 6 }),
            (g.replace("size 12", "size 12\nsize 13").into(), EntryError::DuplicateKey { line: 7, key: "size".into() }),
            (g.replace("classification", "actor").into(), EntryError::DuplicateKey { line: 8, key: "actor".into() }),
            (
                g.replace("classification OFFICIAL", "code x").into(),
                EntryError::OutOfOrder { line: 8, key: "code".into() },
            ),
            (
                g.replace("event upload.accepted\ntime 2026-11-21T12:00:00.250Z\n", swapped).into(),
                EntryError::OutOfOrder { line: 3, key: "event".into() },
            ),
            (g.replace("event upload.accepted\n", "").into(), EntryError::MissingKey { key: "event" }),
            (g.replace("upload.accepted", "Upload").into(), EntryError::BadEvent { event: "Upload".into() }),
            (g.replace("upload.accepted", "upload").into(), EntryError::BadEvent { event: "upload".into() }),
            (g.replace(".250Z", "Z").into(), EntryError::BadTime { text: "2026-11-21T12:00:00Z".into() }),
            (
                g.replace(".250Z", ".250+01:00").into(),
                EntryError::BadTime { text: "2026-11-21T12:00:00.250+01:00".into() },
            ),
            (g.replace("sha256:9f", "sha256:9F").into(), EntryError::BadDigest { text: DIGEST.replace(":9f", ":9F") }),
            (g.replace("size 12", "size 012").into(), EntryError::BadSize { text: "012".into() }),
            (
                g.replace(&format!("digest {DIGEST}\n"), "").into(),
                EntryError::MissingField { event: "upload.accepted".into(), key: "digest" },
            ),
            (
                g.replace(&format!("transfer {t}\n"), "transfer \n").into(),
                EntryError::MissingField { event: "upload.accepted".into(), key: "transfer" },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(parse_entry(&bytes), Err(want), "{:?}", String::from_utf8_lossy(&bytes));
        }
    }
}
