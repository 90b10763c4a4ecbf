//! The domain vocabulary: organisations, roles, qualified user names, classifications.
//!
//! Each type parses from the text a user types and prints back the same text, so the CLI, the
//! API and the store all speak one spelling.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// Why a name, kind, role or classification was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An organisation or user name outside the allowed alphabet or length.
    #[error("`{0}` is not a valid name: use 1 to 64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit")]
    Name(String),
    /// A user reference without exactly one `/`.
    #[error("`{0}` is not a user: write it as `ORG/NAME`")]
    UserRef(String),
    /// An organisation kind that does not exist.
    #[error("`{0}` is not an organisation kind: use `contractor`, `agency` or `compliance`")]
    Kind(String),
    /// A role that does not exist.
    #[error("`{0}` is not a role: use `sender`, `recipient`, `compliance` or `admin`")]
    Role(String),
    /// A classification marking that does not exist.
    #[error("`{0}` is not a classification: use `OFFICIAL`, `OFFICIAL-SENSITIVE`, `SECRET` or `TOP-SECRET`")]
    Classification(String),
    /// An email address that is not one.
    #[error("`{0}` is not an email address: write it as `name@example.gov.uk`")]
    Email(String),
}

/// Checks an email address and returns it as stored and compared: trimmed and lower-cased.
/// Deliberately plain: one `@`, a local part and a dotted domain, no spaces or angle brackets,
/// at most 254 bytes (the providers' `email` claims and mail servers decide the rest).
pub fn normalise_email(s: &str) -> Result<String, ParseError> {
    let e = s.trim().to_ascii_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !e
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || matches!(b, b'<' | b'>' | b',' | b';'));
    if ok { Ok(e) } else { Err(ParseError::Email(s.to_owned())) }
}

/// Checks an organisation or user name: lowercase ASCII letters, digits, `.`, `_`, `-`.
pub fn check_name(s: &str) -> Result<(), ParseError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(ParseError::Name(s.to_owned())) }
}

/// A user as people write it: `ORG/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserRef {
    /// The organisation's name.
    pub org: String,
    /// The user's name within the organisation.
    pub name: String,
}

impl UserRef {
    /// A reference from parts that are already known to be valid names.
    pub fn new(org: &str, name: &str) -> Result<Self, ParseError> {
        check_name(org)?;
        check_name(name)?;
        Ok(Self { org: org.to_owned(), name: name.to_owned() })
    }
}

impl utoipa::PartialSchema for UserRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$"))
            .description(Some("A user as people write it: `ORG/NAME`"))
            .examples(["hmpps/alice"])
            .into()
    }
}

impl utoipa::ToSchema for UserRef {}

impl FromStr for UserRef {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (org, name) = s.split_once('/').ok_or_else(|| ParseError::UserRef(s.to_owned()))?;
        if name.contains('/') {
            return Err(ParseError::UserRef(s.to_owned()));
        }
        Self::new(org, name)
    }
}

impl TryFrom<String> for UserRef {
    type Error = ParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<UserRef> for String {
    fn from(u: UserRef) -> Self {
        u.to_string()
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.org, self.name)
    }
}

/// Declares a closed set of names that parse from and print to fixed strings.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $err:ident, { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            /// The spelling used on the command line, in JSON and in the store.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(ParseError::$err(s.to_owned())),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> Self {
                v.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What an organisation is. `operator` is the gateway's own organisation, made at first start.
    OrgKind, Kind, {
        /// Sends bundles.
        Contractor => "contractor",
        /// Receives bundles.
        Agency => "agency",
        /// Reviews receipts and the audit trail.
        Compliance => "compliance",
        /// Runs the gateway (holds the bootstrap admin).
        Operator => "operator",
    }
);

text_enum!(
    /// What a user may do.
    Role, Role, {
        /// Uploads bundles.
        Sender => "sender",
        /// Collects bundles addressed to it.
        Recipient => "recipient",
        /// Reads the audit trail.
        Compliance => "compliance",
        /// Manages organisations, users and tokens; may recall any transfer.
        Admin => "admin",
    }
);

text_enum!(
    /// The Government Security Classification marking of a transfer.
    Classification, Classification, {
        /// The default: routine public-sector business.
        Official => "OFFICIAL",
        /// OFFICIAL information whose loss would be particularly damaging (personal data in bulk).
        OfficialSensitive => "OFFICIAL-SENSITIVE",
        /// Not for this system.
        Secret => "SECRET",
        /// Not for this system.
        TopSecret => "TOP-SECRET",
    }
);

impl OrgKind {
    /// Kinds that an administrator may create (`operator` exists once, from the first start).
    pub fn creatable(self) -> bool {
        !matches!(self, Self::Operator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_refs_parse_and_print_the_same() {
        let u: UserRef = "home-office/alice".parse().expect("valid");
        assert_eq!(u.to_string(), "home-office/alice");
    }

    #[test]
    fn bad_user_refs_say_how_to_write_them() {
        assert_eq!("alice".parse::<UserRef>(), Err(ParseError::UserRef("alice".into())));
        assert_eq!("a/b/c".parse::<UserRef>(), Err(ParseError::UserRef("a/b/c".into())));
        assert_eq!("Acme/bob".parse::<UserRef>(), Err(ParseError::Name("Acme".into())));
        assert_eq!("acme/../x".parse::<UserRef>(), Err(ParseError::UserRef("acme/../x".into())));
        assert_eq!("acme/".parse::<UserRef>(), Err(ParseError::Name(String::new())));
    }

    #[test]
    fn roles_and_kinds_reject_unknown_words() {
        assert_eq!("sender".parse::<Role>(), Ok(Role::Sender));
        assert_eq!("root".parse::<Role>(), Err(ParseError::Role("root".into())));
        assert_eq!("agency".parse::<OrgKind>(), Ok(OrgKind::Agency));
        assert_eq!("bank".parse::<OrgKind>(), Err(ParseError::Kind("bank".into())));
        assert_eq!("OFFICIAL-SENSITIVE".parse::<Classification>(), Ok(Classification::OfficialSensitive));
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id.
    pub id: UserId,
    /// The user's name.
    pub user: UserRef,
    /// The user's role.
    pub role: Role,
    /// The kind of the user's organisation.
    pub org_kind: OrgKind,
    /// How the caller authenticated (policies see it as `context.authentication`).
    pub auth: Authentication,
}

/// How a caller authenticated: with an API token (a service account's, or one a person's CLI
/// got through single sign-on), or in a browser session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authentication {
    /// `token` (an administrator's API token, or a token-started page session) or `oidc`
    /// (signed in at an identity provider, in the browser or through the CLI's device flow).
    pub method: AuthMethod,
    /// True when the provider's `amr`/`acr` counted as multi-factor under its configuration.
    pub mfa: bool,
    /// The provider's authentication method references (RFC 8176), as it sent them.
    pub amr: Vec<String>,
    /// The provider's authentication context class reference, or empty.
    pub acr: String,
}

/// How a user authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthMethod {
    /// With an API token (the sign-in form, or `Authorization: Bearer`).
    #[default]
    Token,
    /// Through an identity provider (single sign-on).
    Oidc,
}

impl AuthMethod {
    /// The spelling in the store, in audit entries and in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Oidc => "oidc",
        }
    }
}

impl Authentication {
    /// Authentication with an administrator-issued API token.
    pub fn token() -> Self {
        Self::default()
    }

    /// Reads the stored form: `amr` space-separated, `acr` possibly absent.
    pub fn stored(method: AuthMethod, mfa: bool, amr: Option<&str>, acr: Option<&str>) -> Self {
        let amr = amr.unwrap_or_default().split_ascii_whitespace().map(str::to_owned).collect();
        Self { method, mfa, amr, acr: acr.unwrap_or_default().to_owned() }
    }

    /// The `amr` values as stored (space-separated), `None` when there are none.
    pub fn amr_text(&self) -> Option<String> {
        (!self.amr.is_empty()).then(|| self.amr.join(" "))
    }
}

/// A registered key, as the directory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "stanza_type": "X25519", "fingerprint": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a", "added_at": "2025-03-01T09:30:00Z"}))]
pub struct KeyInfo {
    /// The public recipient string (`age1…`, `age1pq1…`, or an SSH public key where allowed).
    pub recipient: String,
    /// The stanza type a file encrypted to this key carries (`X25519`, `mlkem768x25519`,
    /// `ssh-ed25519`, …).
    pub stanza_type: String,
    /// `sha256:` and the hex SHA-256 of the recipient string.
    pub fingerprint: String,
    /// When it was registered.
    pub added_at: DateTime<Utc>,
}

/// An addressed recipient with its live keys.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The user's id.
    pub id: UserId,
    /// The user's name.
    pub user: UserRef,
    /// The user's role.
    pub role: Role,
    /// Its live keys.
    pub keys: Vec<KeyInfo>,
}
