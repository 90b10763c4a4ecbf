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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BearerSecret;
    use crate::model::{AuthMethod, Authentication, OrgKind};
    use crate::store::SessionLookup;

    const HOUR: Duration = Duration::from_secs(3600);

    async fn store() -> (tempfile::TempDir, Store, UserId) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).await.expect("open");
        let now = Utc::now();
        store.bootstrap(&BearerSecret::generate("sp_").hash(), now).await.expect("bootstrap");
        let admin: String = sqlx::query_scalar("SELECT id FROM users").fetch_one(&store.pool).await.expect("admin");
        let admin = UserId::from_db(admin);
        store.create_org(&admin, "hmpps", OrgKind::Agency, now).await.expect("org");
        let alice = UserRef::new("hmpps", "alice").expect("name");
        let token = BearerSecret::generate("sp_").hash();
        store
            .create_user(&admin, &alice, Role::Recipient, Some("alice@hmpps.example"), &token, None, now)
            .await
            .expect("alice");
        (dir, store, admin)
    }

    fn person(subject: &str, email: Option<&str>, mfa: bool) -> Person {
        Person {
            provider: "sso".into(),
            issuer: "https://idp.example".into(),
            subject: subject.into(),
            email: email.map(str::to_owned),
            name: None,
            rule: None,
            auth: Authentication {
                method: AuthMethod::Oidc,
                mfa,
                amr: if mfa { vec!["pwd".into(), "mfa".into()] } else { vec!["pwd".into()] },
                acr: String::new(),
            },
        }
    }

    async fn session(store: &Store, p: &Person, new_user: Option<(UserRef, Role)>) -> Result<SsoGranted, SsoRefusal> {
        let secret = BearerSecret::generate("").hash();
        let grant = SsoGrant::Session { secret: &secret, lifetime: HOUR };
        store.sso_sign_in(p, new_user, grant, Utc::now()).await.expect("sign in")
    }

    #[tokio::test]
    async fn a_verified_email_finds_the_user_once_then_the_subject_does() {
        let (_dir, store, _) = store().await;
        let Ok(SsoGranted::Session(s)) =
            session(&store, &person("sub-1", Some("alice@hmpps.example"), true), None).await
        else {
            panic!("refused");
        };
        assert_eq!(s.principal.user.to_string(), "hmpps/alice");
        assert_eq!((s.principal.auth.method, s.principal.auth.mfa), (AuthMethod::Oidc, true));
        // Bound now: the same subject with another (or no) address is still alice...
        let Ok(SsoGranted::Session(again)) = session(&store, &person("sub-1", None, false), None).await else {
            panic!("refused");
        };
        assert_eq!(again.principal.user.to_string(), "hmpps/alice");
        // ...and another subject presenting alice's address is refused, not merged.
        let other = session(&store, &person("sub-2", Some("alice@hmpps.example"), true), None).await;
        assert!(matches!(other, Err(SsoRefusal::Conflict(_))), "{other:?}");
        // Nobody with that address: unknown.
        let unknown = session(&store, &person("sub-3", Some("eve@hmpps.example"), true), None).await;
        assert_eq!(unknown, Err(SsoRefusal::UnknownUser));
    }

    #[tokio::test]
    async fn a_session_keeps_the_authentication_for_policies() {
        let (_dir, store, _) = store().await;
        let secret = BearerSecret::generate("").hash();
        let p = person("sub-1", Some("alice@hmpps.example"), false);
        let grant = SsoGrant::Session { secret: &secret, lifetime: HOUR };
        store.sso_sign_in(&p, None, grant, Utc::now()).await.expect("sign in").expect("granted");
        let SessionLookup::Live(s) = store.session(&secret, HOUR, Utc::now()).await.expect("lookup") else {
            panic!("no session");
        };
        assert_eq!(s.principal.auth, p.auth);
        let started: String = sqlx::query_scalar("SELECT entry FROM audit_events WHERE event = 'session.started'")
            .fetch_one(&store.pool)
            .await
            .expect("event");
        assert!(
            started.contains("method oidc") && started.contains("provider sso") && started.contains("mfa false"),
            "{started}"
        );
    }

    #[tokio::test]
    async fn just_in_time_makes_a_user_and_rules_keep_roles_in_step() {
        let (_dir, store, _) = store().await;
        let mut p = person("sub-9", Some("bob@hmpps.example"), true);
        p.rule = Some(Ok((Role::Recipient, None)));
        let bob = UserRef::new("hmpps", "bob").expect("name");
        let Ok(SsoGranted::Session(s)) = session(&store, &p, Some((bob.clone(), Role::Recipient))).await else {
            panic!("refused");
        };
        assert_eq!((s.principal.user.clone(), s.principal.role), (bob.clone(), Role::Recipient));
        // The provider's groups change: the role follows, with its event.
        p.rule = Some(Ok((Role::Compliance, None)));
        let Ok(SsoGranted::Session(s)) = session(&store, &p, None).await else { panic!("refused") };
        assert_eq!(s.principal.role, Role::Compliance);
        let changed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE event = 'user.role_changed'")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(changed, 1);
        // Out of every group: refused.
        p.rule = Some(Err(()));
        assert_eq!(session(&store, &p, None).await, Err(SsoRefusal::NoRole));
        // A name taken by someone else is refused, not merged.
        let mut q = person("sub-10", Some("other.alice@elsewhere.example"), true);
        q.rule = Some(Ok((Role::Recipient, None)));
        let taken = session(&store, &q, Some((UserRef::new("hmpps", "alice").expect("name"), Role::Recipient))).await;
        assert!(matches!(taken, Err(SsoRefusal::Conflict(_))), "{taken:?}");
    }

    #[tokio::test]
    async fn a_cli_token_carries_the_sign_in_and_a_pending_browser_attempt_is_used_once() {
        let (_dir, store, _) = store().await;
        let token = BearerSecret::generate("sp_");
        let p = person("sub-1", Some("alice@hmpps.example"), true);
        let grant = SsoGrant::Token { token: &token.hash(), lifetime: HOUR };
        let granted = store.sso_sign_in(&p, None, grant, Utc::now()).await.expect("sign in").expect("granted");
        assert!(matches!(granted, SsoGranted::Token { .. }));
        let principal = store.authenticate(&token.hash(), Utc::now()).await.expect("auth").expect("live");
        assert_eq!(principal.auth, p.auth);
        let later = Utc::now() + chrono::Duration::hours(2);
        assert_eq!(store.authenticate(&token.hash(), later).await.expect("auth"), None, "outlived its lifetime");

        let state = BearerSecret::generate("").hash();
        let pending = PendingSignIn {
            browser_hash: vec![7; 32],
            provider: "sso".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
        };
        let now = Utc::now();
        store.begin_sso_sign_in(&state, &pending, now).await.expect("begin");
        assert_eq!(store.take_sso_sign_in(&state, now).await.expect("take"), Some(pending.clone()));
        assert_eq!(store.take_sso_sign_in(&state, now).await.expect("take"), None, "used twice");
        store.begin_sso_sign_in(&state, &pending, now).await.expect("begin");
        let late = now + chrono::Duration::from_std(SIGN_IN_WINDOW).expect("window");
        assert_eq!(store.take_sso_sign_in(&state, late).await.expect("take"), None, "used after its window");
    }
}
