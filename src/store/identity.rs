//! Single sign-on in the store: browser sign-ins under way, people bound to users by their
//! provider's (issuer, subject), users made just in time, and the sessions and CLI tokens a
//! verified sign-in starts. Each sign-in is one transaction: the binding, any role change, and
//! the session or token with their audit events are written together or not at all.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::accounts::insert_user;
use super::sessions::insert_session;
use super::{Store, StoreError, append, from_ms, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{IdentityId, SecretHash, SessionId, TokenId, UserId};
use crate::model::{Principal, Role, UserRef};
use crate::sso::Person;

/// A browser sign-in under way at a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// SHA-256 of the browser cookie's secret that started it.
    pub browser_hash: Vec<u8>,
    /// The provider's id.
    pub provider: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier.
    pub pkce_verifier: String,
}

/// What a verified sign-in is for.
#[derive(Debug, Clone, Copy)]
pub enum SsoGrant<'a> {
    /// A browser session with this secret, living at most this long.
    Session {
        /// The session cookie's secret, hashed.
        secret: &'a SecretHash,
        /// Its lifetime.
        lifetime: Duration,
    },
    /// A CLI token (device flow) with this secret, living this long.
    Token {
        /// The token, hashed.
        token: &'a SecretHash,
        /// Its lifetime.
        lifetime: Duration,
    },
}

/// What a verified sign-in started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoGranted {
    /// A session.
    Session(super::Session),
    /// A token, with its id and end.
    Token {
        /// The user, with the sign-in's authentication.
        principal: Principal,
        /// The token's id.
        id: TokenId,
        /// When it expires.
        expires_at: DateTime<Utc>,
    },
}

/// Why a person verified by their provider still may not sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoRefusal {
    /// No user has their verified email, and the provider makes no users.
    UnknownUser,
    /// The provider's claim rules give them no role.
    NoRole,
    /// Signing them in would mean guessing: the text says what is in the way.
    Conflict(String),
}

impl SsoRefusal {
    /// What to tell the person, who signed in at `provider` (with this verified `email`, if
    /// any): a sentence starting in lower case, ending without a full stop.
    pub fn message(&self, provider: &str, email: Option<&str>) -> String {
        match self {
            Self::UnknownUser => format!(
                "{provider} signed you in, but there is no sealpost account for {}: ask your administrator to add you with this email address",
                email.unwrap_or("you (the provider sent no verified email address)")
            ),
            Self::NoRole => format!(
                "{provider} signed you in, but your account there is not in any group that may use sealpost: ask your administrator"
            ),
            Self::Conflict(why) => format!("you are not signed in: {why}"),
        }
    }

    /// The `session.refused` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownUser => "sso_unknown_user",
            Self::NoRole => "sso_no_role",
            Self::Conflict(_) => "sso_conflict",
        }
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// How long a browser has to come back from the provider.
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(600);

impl Store {
    /// Records a browser sign-in sent to a provider (and forgets ones that ran out).
    pub async fn begin_sso_sign_in(
        &self,
        state: &SecretHash,
        pending: &PendingSignIn,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1").bind(ms(now)).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO sso_logins (state_hash, browser_hash, provider, nonce, pkce_verifier, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&state.0[..])
        .bind(&pending.browser_hash[..])
        .bind(&pending.provider)
        .bind(&pending.nonce)
        .bind(&pending.pkce_verifier)
        .bind(ms(now))
        .bind(ms(now + chrono_duration(SIGN_IN_WINDOW)))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes a browser sign-in back by its state (once: a second take finds nothing), unless it
    /// ran out.
    pub async fn take_sso_sign_in(
        &self,
        state: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "DELETE FROM sso_logins WHERE state_hash = $1 \
             RETURNING browser_hash, provider, nonce, pkce_verifier, expires_at",
        )
        .bind(&state.0[..])
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        if from_ms(row.get("expires_at")) <= now {
            return Ok(None);
        }
        Ok(Some(PendingSignIn {
            browser_hash: row.get("browser_hash"),
            provider: row.get("provider"),
            nonce: row.get("nonce"),
            pkce_verifier: row.get("pkce_verifier"),
        }))
    }

    /// Signs in a person their provider vouched for: finds their user (by the binding of their
    /// issuer and subject, else by their verified email, binding it), or makes one when the
    /// provider allows (`new_user`), applies the role the provider's rules give, and starts what
    /// `grant` asks for.
    pub async fn sso_sign_in(
        &self,
        person: &Person,
        new_user: Option<(UserRef, Role)>,
        grant: SsoGrant<'_>,
        now: DateTime<Utc>,
    ) -> Result<Result<SsoGranted, SsoRefusal>, StoreError> {
        let rule_role = match &person.rule {
            Some(Err(())) => return Ok(Err(SsoRefusal::NoRole)),
            Some(Ok((role, _))) => Some(*role),
            None => None,
        };
        let mut tx = self.write().await?;
        let bound: Option<(String, String)> =
            sqlx::query_as("SELECT id, user_id FROM identities WHERE issuer = $1 AND subject = $2")
                .bind(&person.issuer)
                .bind(&person.subject)
                .fetch_optional(&mut *tx)
                .await?;
        let (identity, user) = match bound {
            Some((identity, user)) => (identity, UserId::from_db(user)),
            None => {
                let by_email: Option<String> = match &person.email {
                    Some(email) => {
                        sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                            .bind(email)
                            .fetch_optional(&mut *tx)
                            .await?
                    }
                    None => None,
                };
                let user = match (by_email, new_user) {
                    (Some(user), _) => {
                        let other: Option<String> =
                            sqlx::query_scalar("SELECT subject FROM identities WHERE user_id = $1 AND issuer = $2")
                                .bind(&user)
                                .bind(&person.issuer)
                                .fetch_optional(&mut *tx)
                                .await?;
                        if other.is_some() {
                            return Ok(Err(SsoRefusal::Conflict(
                                "the sealpost user with this email address is already bound to another person at this provider: ask your administrator".to_owned(),
                            )));
                        }
                        UserId::from_db(user)
                    }
                    (None, Some((name, role))) => {
                        let exists: Option<String> = sqlx::query_scalar(
                            "SELECT u.id FROM users u JOIN orgs o ON o.id = u.org_id WHERE o.name = $1 AND u.name = $2",
                        )
                        .bind(&name.org)
                        .bind(&name.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if exists.is_some() {
                            return Ok(Err(SsoRefusal::Conflict(format!(
                                "a sealpost user `{name}` already exists but does not have your verified email address: ask your administrator to set it"
                            ))));
                        }
                        match insert_user(&mut tx, None, &name, role, person.email.as_deref(), now).await {
                            Ok(id) => id,
                            Err(StoreError::UnknownOrg(org)) => {
                                return Ok(Err(SsoRefusal::Conflict(format!(
                                    "the organisation `{org}` this provider puts new users in does not exist: ask your administrator to add it"
                                ))));
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    (None, None) => return Ok(Err(SsoRefusal::UnknownUser)),
                };
                let identity = IdentityId::generate().to_string();
                sqlx::query(
                    "INSERT INTO identities (id, user_id, provider, issuer, subject, created_at, last_sign_in_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&identity)
                .bind(user.as_str())
                .bind(&person.provider)
                .bind(&person.issuer)
                .bind(&person.subject)
                .bind(ms(now))
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
                (identity, user)
            }
        };
        sqlx::query("UPDATE identities SET last_sign_in_at = $1 WHERE id = $2")
            .bind(ms(now))
            .bind(&identity)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT u.name, u.role, o.name AS org, o.kind FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.id = $1",
        )
        .bind(user.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let mut role: Role = row.get::<String, _>("role").parse()?;
        if let Some(new) = rule_role.filter(|r| *r != role) {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(new.as_str())
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
            let event = Event::new(EventKind::UserRoleChanged)
                .subject(user.as_str())
                .field("from", role)
                .field("role", new)
                .field("provider", &person.provider);
            append(&mut tx, &event, now).await?;
            role = new;
        }
        let principal = Principal {
            id: user.clone(),
            user: UserRef::new(row.get("org"), row.get("name"))?,
            role,
            org_kind: row.get::<String, _>("kind").parse()?,
            auth: person.auth.clone(),
        };
        let granted = match grant {
            SsoGrant::Session { secret, lifetime } => {
                let id = SessionId::generate();
                let expires_at = now + chrono_duration(lifetime);
                insert_session(&mut tx, &id, secret, &principal, None, Some(&identity), now, expires_at).await?;
                let event = Event::new(EventKind::SessionStarted)
                    .actor(&user)
                    .subject(user.as_str())
                    .field("session", &id)
                    .field("method", principal.auth.method.as_str())
                    .field("provider", &person.provider)
                    .field("mfa", principal.auth.mfa)
                    .field("expires", expires_at.timestamp());
                append(&mut tx, &event, now).await?;
                SsoGranted::Session(super::Session { id, method: principal.auth.method, principal, expires_at })
            }
            SsoGrant::Token { token, lifetime } => {
                let id = TokenId::generate();
                let expires_at = now + chrono_duration(lifetime);
                sqlx::query(
                    "INSERT INTO api_tokens (id, user_id, token_hash, created_at, expires_at, kind, created_by, \
                                             identity_id, amr, acr, mfa) \
                     VALUES ($1, $2, $3, $4, $5, 'sso', $6, $7, $8, $9, $10)",
                )
                .bind(id.as_str())
                .bind(user.as_str())
                .bind(&token.0[..])
                .bind(ms(now))
                .bind(ms(expires_at))
                .bind(user.as_str())
                .bind(&identity)
                .bind(principal.auth.amr_text())
                .bind((!principal.auth.acr.is_empty()).then_some(principal.auth.acr.as_str()))
                .bind(principal.auth.mfa)
                .execute(&mut *tx)
                .await?;
                let event = Event::new(EventKind::TokenIssued)
                    .actor(&user)
                    .subject(id.as_str())
                    .field("user", &user)
                    .field("kind", "sso")
                    .field("provider", &person.provider)
                    .field("mfa", principal.auth.mfa)
                    .field("expires", expires_at.timestamp());
                append(&mut tx, &event, now).await?;
                SsoGranted::Token { principal, id, expires_at }
            }
        };
        tx.commit().await?;
        Ok(Ok(granted))
    }
}
