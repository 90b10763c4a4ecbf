//! Identity providers as configured: `[[oidc]]` tables in `sealpost.toml`, or one provider from
//! `SEALPOST_OIDC_ISSUER`, `SEALPOST_OIDC_CLIENT_ID` and `SEALPOST_OIDC_CLIENT_SECRET`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::ConfigError;
use crate::model::{Role, check_name};

/// One `[[oidc]]` table of the config file (every field but `issuer` and `client_id` optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    /// See [`Provider::id`] (default `sso`).
    pub id: Option<String>,
    /// See [`Provider::name`].
    pub name: Option<String>,
    /// See [`Provider::issuer`].
    pub issuer: String,
    /// See [`Provider::client_id`].
    pub client_id: String,
    /// The client secret, written here...
    pub client_secret: Option<String>,
    /// ...or read from this file (first line), which keeps it out of the config file.
    pub client_secret_file: Option<PathBuf>,
    /// See [`Provider::scopes`].
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `existing` (default) or `just_in_time`.
    pub users: Option<String>,
    /// See [`Provider::org`].
    pub org: Option<String>,
    /// See [`Provider::name_claim`].
    pub name_claim: Option<String>,
    /// See [`Provider::roles`].
    #[serde(default)]
    pub roles: Vec<RoleRuleFile>,
    /// See [`Provider::mfa_amr`].
    pub mfa_amr: Option<Vec<String>>,
    /// See [`Provider::mfa_acr`].
    #[serde(default)]
    pub mfa_acr: Vec<String>,
}

/// One `[[oidc.roles]]` rule as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRuleFile {
    /// The claim to look at, such as `groups` or `roles` (a string or an array of strings).
    pub claim: String,
    /// The value it must have (or contain).
    pub value: String,
    /// The role it gives.
    pub role: String,
    /// The organisation of a user made just in time by this rule (default: the provider's `org`).
    pub org: Option<String>,
}

/// Who may sign in through a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Only users an administrator created (matched by verified email, then by subject).
    Existing,
    /// Also people without a user yet: one is made at their first sign-in from the claims.
    JustInTime,
}

/// A claim rule: people whose `claim` has `value` get `role` (the first matching rule wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRule {
    /// The claim.
    pub claim: String,
    /// The value.
    pub value: String,
    /// The role.
    pub role: Role,
    /// The organisation for users made just in time.
    pub org: Option<String>,
}

/// A configured identity provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Short name in URLs and audit entries (`a-z`, `0-9`, `-`; default `sso`).
    pub id: String,
    /// What the sign-in button calls it: `Sign in with NAME`.
    pub name: String,
    /// The issuer URL; its `/.well-known/openid-configuration` is read on first use.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret (never printed).
    pub client_secret: SecretString,
    /// Scopes asked for besides `openid` (default `email`, `profile`).
    pub scopes: Vec<String>,
    /// Who may sign in.
    pub users: Provisioning,
    /// The organisation of users made just in time.
    pub org: Option<String>,
    /// The claim that names a user made just in time (default `preferred_username`, then the
    /// local part of the verified email).
    pub name_claim: String,
    /// Claim rules giving roles. When there are any, every sign-in through this provider takes
    /// its role from them (a person no rule matches is refused); when there are none, a user's
    /// role is the one an administrator gave.
    pub roles: Vec<RoleRule>,
    /// `amr` values (RFC 8176) that count as multi-factor (default `mfa`).
    pub mfa_amr: Vec<String>,
    /// `acr` values that count as multi-factor (default none).
    pub mfa_acr: Vec<String>,
}

fn invalid(key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}

impl Provider {
    /// Checks and resolves one `[[oidc]]` table.
    pub fn from_file(file: ProviderFile) -> Result<Self, ConfigError> {
        let id = file.id.unwrap_or_else(|| "sso".to_owned());
        if id.is_empty()
            || id.len() > 32
            || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("oidc.id", format!("`{id}` is not a provider id: use 1 to 32 of a-z, 0-9 and `-`")));
        }
        let issuer = file.issuer.trim().trim_end_matches('/').to_owned();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(invalid(
                "oidc.issuer",
                format!("`{issuer}` is not an issuer URL: write it as `https://login.example.gov.uk`"),
            ));
        }
        if file.client_id.trim().is_empty() {
            return Err(invalid("oidc.client_id", format!("provider `{id}` has no `client_id`")));
        }
        let secret = match (file.client_secret, file.client_secret_file) {
            (Some(secret), None) => secret,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map_err(|e| invalid("oidc.client_secret_file", format!("cannot read `{}`: {e}", path.display())))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "oidc.client_secret",
                    format!("provider `{id}` has both `client_secret` and `client_secret_file`: keep one"),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "oidc.client_secret",
                    format!(
                        "provider `{id}` has no `client_secret` (or `client_secret_file`): register sealpost as a confidential client"
                    ),
                ));
            }
        };
        if secret.trim().is_empty() {
            return Err(invalid("oidc.client_secret", format!("provider `{id}` has an empty client secret")));
        }
        let users = match file.users.as_deref() {
            None | Some("existing") => Provisioning::Existing,
            Some("just_in_time") => Provisioning::JustInTime,
            Some(other) => {
                return Err(invalid("oidc.users", format!("`{other}` is not `existing` or `just_in_time`")));
            }
        };
        if let Some(org) = &file.org {
            check_name(org).map_err(|e| invalid("oidc.org", e.to_string()))?;
        }
        let roles = file
            .roles
            .into_iter()
            .map(|r| {
                let role: Role =
                    r.role.parse().map_err(|e: crate::model::ParseError| invalid("oidc.roles", e.to_string()))?;
                if let Some(org) = &r.org {
                    check_name(org).map_err(|e| invalid("oidc.roles", e.to_string()))?;
                }
                if r.claim.trim().is_empty() || r.value.is_empty() {
                    return Err(invalid("oidc.roles", "every rule needs a `claim` and a `value`".to_owned()));
                }
                Ok(RoleRule { claim: r.claim, value: r.value, role, org: r.org })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if users == Provisioning::JustInTime {
            if roles.is_empty() {
                return Err(invalid(
                    "oidc.roles",
                    format!(
                        "provider `{id}` makes users just in time, so it needs `[[oidc.roles]]` rules giving their roles"
                    ),
                ));
            }
            if file.org.is_none() && roles.iter().any(|r| r.org.is_none()) {
                return Err(invalid(
                    "oidc.org",
                    format!(
                        "provider `{id}` makes users just in time: name their organisation with `org` (or `org` in every rule)"
                    ),
                ));
            }
        }
        let mut scopes: Vec<String> =
            if file.scopes.is_empty() { vec!["email".into(), "profile".into()] } else { file.scopes };
        scopes.retain(|s| s != "openid");
        Ok(Self {
            name: file.name.unwrap_or_else(|| "single sign-on".to_owned()),
            id,
            issuer,
            client_id: file.client_id,
            client_secret: SecretString::from(secret),
            scopes,
            users,
            org: file.org,
            name_claim: file.name_claim.unwrap_or_else(|| "preferred_username".to_owned()),
            roles,
            mfa_amr: file.mfa_amr.unwrap_or_else(|| vec!["mfa".to_owned()]),
            mfa_acr: file.mfa_acr,
        })
    }

    /// True when `amr`/`acr` count as multi-factor for this provider.
    pub fn is_mfa(&self, amr: &[String], acr: &str) -> bool {
        amr.iter().any(|a| self.mfa_amr.contains(a)) || (!acr.is_empty() && self.mfa_acr.iter().any(|a| a == acr))
    }
}

/// Checks a set of providers: distinct ids.
pub fn check_providers(providers: &[Provider]) -> Result<(), ConfigError> {
    for (i, p) in providers.iter().enumerate() {
        if providers[..i].iter().any(|q| q.id == p.id) {
            return Err(invalid("oidc.id", format!("two providers have the id `{}`: give each its own", p.id)));
        }
    }
    Ok(())
}

/// How long a CLI's single sign-on token lives by default.
pub const DEFAULT_SSO_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ProviderFile {
        ProviderFile {
            issuer: "https://login.example.gov.uk/".into(),
            client_id: "sealpost".into(),
            client_secret: Some("s3cret".into()),
            ..ProviderFile::default()
        }
    }

    #[test]
    fn a_minimal_provider_gets_the_defaults() {
        let p = Provider::from_file(file()).expect("valid");
        assert_eq!((p.id.as_str(), p.name.as_str()), ("sso", "single sign-on"));
        assert_eq!(p.issuer, "https://login.example.gov.uk");
        assert_eq!(p.scopes, ["email", "profile"]);
        assert_eq!(p.users, Provisioning::Existing);
        assert!(p.is_mfa(&["pwd".into(), "mfa".into()], ""));
        assert!(!p.is_mfa(&["pwd".into()], "urn:low"));
        assert!(!format!("{p:?}").contains("s3cret"), "the secret is printed");
    }

    #[test]
    fn just_in_time_needs_rules_and_an_organisation() {
        let mut f = file();
        f.users = Some("just_in_time".into());
        let e = Provider::from_file(f.clone()).expect_err("no rules");
        assert!(e.to_string().contains("[[oidc.roles]]"), "{e}");
        f.roles = vec![RoleRuleFile { claim: "groups".into(), value: "x".into(), role: "sender".into(), org: None }];
        let e = Provider::from_file(f.clone()).expect_err("no org");
        assert!(e.to_string().contains("`org`"), "{e}");
        f.org = Some("acme".into());
        assert_eq!(Provider::from_file(f).expect("valid").roles[0].role, Role::Sender);
    }

    #[test]
    fn bad_values_are_refused_with_what_to_write() {
        for (change, says) in [
            (
                Box::new(|f: &mut ProviderFile| f.id = Some("Bad Id".into())) as Box<dyn Fn(&mut ProviderFile)>,
                "provider id",
            ),
            (Box::new(|f: &mut ProviderFile| f.issuer = "login.example".into()), "issuer URL"),
            (Box::new(|f: &mut ProviderFile| f.client_secret = None), "confidential client"),
            (Box::new(|f: &mut ProviderFile| f.users = Some("everyone".into())), "just_in_time"),
        ] {
            let mut f = file();
            change(&mut f);
            let e = Provider::from_file(f).expect_err("refused");
            assert!(e.to_string().contains(says), "{e}");
        }
        let twice = [Provider::from_file(file()).expect("a"), Provider::from_file(file()).expect("b")];
        assert!(check_providers(&twice).is_err());
    }
}
