//! Browser sessions: started from an API token (single sign-on later), looked up by the SHA-256
//! of the cookie's secret, kept alive by use, and ended by sign-out, idleness, age, or the end of
//! the token they came from. Every start, end and refused sign-in is an audit event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, StoreError, append, from_ms, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{SecretHash, SessionId, UserId};
use crate::model::{Authentication, Principal, UserRef};

pub use crate::model::AuthMethod;

fn parse_method(text: &str) -> Result<AuthMethod, StoreError> {
    match text {
        "token" => Ok(AuthMethod::Token),
        "oidc" => Ok(AuthMethod::Oidc),
        other => Err(StoreError::Unreadable { column: "session method", value: other.to_owned() }),
    }
}

/// Why a session ended: the `code` of its `session.ended` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// Its user signed out.
    SignedOut,
    /// No request came for longer than the idle timeout.
    Idle,
    /// It reached its absolute lifetime.
    Expired,
    /// The API token it started from was revoked.
    TokenRevoked,
    /// The API token it started from expired (or was revoked without it being noticed at once).
    TokenEnded,
    /// Its user signed in again in the same browser.
    Replaced,
}

impl SessionEnd {
    /// The event's code.
    pub fn code(self) -> &'static str {
        match self {
            Self::SignedOut => "signed_out",
            Self::Idle => "idle",
            Self::Expired => "expired",
            Self::TokenRevoked => "token_revoked",
            Self::TokenEnded => "token_ended",
            Self::Replaced => "replaced",
        }
    }
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its public id (in audit entries).
    pub id: SessionId,
    /// Its user.
    pub principal: Principal,
    /// How the user authenticated.
    pub method: AuthMethod,
    /// When it ends at the latest.
    pub expires_at: DateTime<Utc>,
}

/// What looking a session up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionLookup {
    /// A live session, now touched.
    Live(Session),
    /// A session that ended (now, or earlier): the cookie is stale.
    Ended,
    /// No session has that secret.
    Unknown,
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The caller in a row with the user's `user_id`, `name`, `role`, `org`, `kind`, and the
/// authentication context as `auth_method` (`token`/`oidc`), `auth_mfa`, `auth_amr`, `auth_acr`.
pub(super) fn principal(row: &sqlx::any::AnyRow) -> Result<Principal, StoreError> {
    let method = parse_method(&row.get::<String, _>("auth_method"))?;
    let mfa = row.get::<Option<super::Flag>, _>("auth_mfa").is_some_and(|f| f.0);
    let amr: Option<String> = row.get("auth_amr");
    let acr: Option<String> = row.get("auth_acr");
    Ok(Principal {
        id: UserId::from_db(row.get("user_id")),
        user: UserRef::new(row.get("org"), row.get("name"))?,
        role: row.get::<String, _>("role").parse()?,
        org_kind: row.get::<String, _>("kind").parse()?,
        auth: Authentication::stored(method, mfa, amr.as_deref(), acr.as_deref()),
    })
}

/// The SQL for a token's authentication context, aliased as [`principal`] reads it.
pub(super) const TOKEN_AUTH_COLUMNS: &str = "CASE WHEN t.kind = 'sso' THEN 'oidc' ELSE 'token' END AS auth_method, \
     t.mfa AS auth_mfa, t.amr AS auth_amr, t.acr AS auth_acr";

impl Store {
    /// Starts a session for the holder of a live API token: `None` when the token is unknown,
    /// revoked or expired. The session lives at most `lifetime`, and never past its token.
    pub async fn start_session(
        &self,
        token: &SecretHash,
        secret: &SecretHash,
        lifetime: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.write().await?;
        // Only constant text is formatted in.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.id AS token_id, t.expires_at AS token_expires, t.identity_id, u.id AS user_id, u.name, u.role, \
                    o.name AS org, o.kind, {TOKEN_AUTH_COLUMNS} FROM api_tokens t \
             JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"
        )))
        .bind(&token.0[..])
        .bind(ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let principal = principal(&row)?;
        let token_id: String = row.get("token_id");
        let mut expires_at = now + chrono_duration(lifetime);
        if let Some(token_expires) = row.get::<Option<i64>, _>("token_expires").map(from_ms) {
            expires_at = expires_at.min(token_expires);
        }
        // A session started from a token a person's CLI got through single sign-on keeps that
        // sign-in's authentication context, so pasting it into the page changes nothing for policy.
        let identity: Option<String> = row.get("identity_id");
        let id = SessionId::generate();
        let method = principal.auth.method;
        insert_session(&mut tx, &id, secret, &principal, Some(&token_id), identity.as_deref(), now, expires_at).await?;
        let event = Event::new(EventKind::SessionStarted)
            .actor(&principal.id)
            .subject(principal.id.as_str())
            .field("session", &id)
            .field("method", method.as_str())
            .field("token", &token_id)
            .field("expires", expires_at.timestamp());
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(Some(Session { id, principal, method, expires_at }))
    }

    /// Looks a session up by its secret's hash. A live one is touched (its idle time starts
    /// again); one past its idle timeout or lifetime, or whose token was revoked or expired, is
    /// ended here, with its event, and reported as [`SessionLookup::Ended`].
    pub async fn session(
        &self,
        secret: &SecretHash,
        idle: Duration,
        now: DateTime<Utc>,
    ) -> Result<SessionLookup, StoreError> {
        let row = sqlx::query(
            "SELECT s.id, s.method, s.expires_at, s.last_seen_at, s.ended_at, s.user_id, u.name, u.role, \
                    o.name AS org, o.kind, s.method AS auth_method, s.mfa AS auth_mfa, s.amr AS auth_amr, \
                    s.acr AS auth_acr, \
                    (s.token_id IS NOT NULL AND (t.revoked_at IS NOT NULL OR t.expires_at <= $1)) AS token_dead, \
                    (t.revoked_at IS NOT NULL) AS token_revoked \
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN orgs o ON o.id = u.org_id \
             LEFT JOIN api_tokens t ON t.id = s.token_id WHERE s.secret_hash = $2",
        )
        .bind(ms(now))
        .bind(&secret.0[..])
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(SessionLookup::Unknown) };
        if row.get::<Option<i64>, _>("ended_at").is_some() {
            return Ok(SessionLookup::Ended);
        }
        let id = SessionId::from_db(row.get("id"));
        let user = UserId::from_db(row.get("user_id"));
        let expires_at = from_ms(row.get("expires_at"));
        let last_seen = from_ms(row.get("last_seen_at"));
        let end = if row.get::<Option<super::Flag>, _>("token_dead").is_some_and(|f| f.0) {
            Some(if row.get::<Option<super::Flag>, _>("token_revoked").is_some_and(|f| f.0) {
                SessionEnd::TokenRevoked
            } else {
                SessionEnd::TokenEnded
            })
        } else if expires_at <= now {
            Some(SessionEnd::Expired)
        } else if last_seen + chrono_duration(idle) <= now {
            Some(SessionEnd::Idle)
        } else {
            None
        };
        if let Some(end) = end {
            self.end_session(&id, &user, end, now).await?;
            return Ok(SessionLookup::Ended);
        }
        let method = parse_method(&row.get::<String, _>("method"))?;
        let principal = principal(&row)?;
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL AND last_seen_at < $3")
            .bind(ms(now))
            .bind(id.as_str())
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(SessionLookup::Live(Session { id, principal, method, expires_at }))
    }

    /// Ends a session (once: ending an ended session changes nothing and returns false).
    /// `user` is the session's user; it is the actor only when the user signed out.
    pub async fn end_session(
        &self,
        id: &SessionId,
        user: &UserId,
        end: SessionEnd,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let ended =
            sqlx::query("UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL")
                .bind(ms(now))
                .bind(end.code())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        if ended.rows_affected() == 0 {
            return Ok(false);
        }
        let mut event =
            Event::new(EventKind::SessionEnded).subject(user.as_str()).code(end.code()).field("session", id);
        if matches!(end, SessionEnd::SignedOut | SessionEnd::Replaced) {
            event.actor = Some(user.clone());
        }
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a refused sign-in (`code` says why; never the token presented; repeats are
    /// aggregated, see `refusals`) and returns how many sign-ins were refused in the `window`
    /// before it, this one included.
    pub async fn refuse_session(
        &self,
        code: &str,
        method: AuthMethod,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let event = Event::new(EventKind::SessionRefused).code(code).field("method", method.as_str());
        self.note_refusal(&mut tx, &event, now).await?;
        let since = now - chrono_duration(window);
        let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE at >= $1 AND event = $2")
            .bind(ms(since))
            .bind(EventKind::SessionRefused.as_str())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        // Repeats counted but not written yet count too (summaries already written count once).
        Ok(u64::try_from(recent).unwrap_or_default() + self.refusals.pending(EventKind::SessionRefused, since))
    }
}

/// Writes a session row (the caller's transaction); the authentication context is the principal's.
#[allow(clippy::too_many_arguments, reason = "a session row: its secret, user, origin and times")]
pub(super) async fn insert_session(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &SessionId,
    secret: &SecretHash,
    principal: &Principal,
    token: Option<&str>,
    identity: Option<&str>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, secret_hash, user_id, method, token_id, identity_id, amr, acr, mfa, created_at, \
                               last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id.as_str())
    .bind(&secret.0[..])
    .bind(principal.id.as_str())
    .bind(principal.auth.method.as_str())
    .bind(token)
    .bind(identity)
    .bind(principal.auth.amr_text())
    .bind((!principal.auth.acr.is_empty()).then_some(principal.auth.acr.as_str()))
    .bind(principal.auth.mfa)
    .bind(ms(now))
    .bind(ms(now))
    .bind(ms(expires_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends every live session started from `token`, inside the caller's transaction (a revocation);
/// returns how many.
pub(super) async fn end_token_sessions(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let ended: Vec<(String, String)> = sqlx::query_as(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE token_id = $3 AND ended_at IS NULL \
         RETURNING id, user_id",
    )
    .bind(ms(now))
    .bind(SessionEnd::TokenRevoked.code())
    .bind(token)
    .fetch_all(&mut **tx)
    .await?;
    for (session, user) in &ended {
        let event = Event::new(EventKind::SessionEnded)
            .subject(user.as_str())
            .code(SessionEnd::TokenRevoked.code())
            .field("session", session);
        append(tx, &event, now).await?;
    }
    Ok(ended.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BearerSecret;
    use crate::transparency::verify::parse_entry;

    const IDLE: Duration = Duration::from_secs(30 * 60);
    const LIFETIME: Duration = Duration::from_secs(12 * 3600);

    async fn store_with_admin(now: DateTime<Utc>) -> (tempfile::TempDir, Store, BearerSecret) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).await.expect("open");
        let token = BearerSecret::generate("sp_");
        store.bootstrap(&token.hash(), now + chrono::TimeDelta::days(1), now).await.expect("bootstrap").expect("first");
        (dir, store, token)
    }

    fn minutes(n: i64) -> chrono::Duration {
        chrono::Duration::minutes(n)
    }

    #[tokio::test]
    async fn a_session_lives_while_used_and_ends_when_idle() {
        let t0 = Utc::now();
        let (_dir, store, token) = store_with_admin(t0).await;
        let secret = BearerSecret::generate("").hash();
        let session = store.start_session(&token.hash(), &secret, LIFETIME, t0).await.expect("start").expect("live");
        assert_eq!((session.method, session.principal.user.to_string()), (AuthMethod::Token, "sealpost/admin".into()));
        // Used every 20 minutes, it outlives the 30-minute idle timeout...
        for step in 1..=3 {
            let at = t0 + minutes(20 * step);
            assert!(matches!(store.session(&secret, IDLE, at).await.expect("lookup"), SessionLookup::Live(_)));
        }
        // ...and left alone for 30 minutes it ends, once.
        assert_eq!(store.session(&secret, IDLE, t0 + minutes(90)).await.expect("lookup"), SessionLookup::Ended);
        assert_eq!(store.session(&secret, IDLE, t0 + minutes(91)).await.expect("lookup"), SessionLookup::Ended);
        let ended: Vec<String> = sqlx::query_scalar("SELECT entry FROM audit_events WHERE event = 'session.ended'")
            .fetch_all(&store.pool)
            .await
            .expect("events");
        assert_eq!(ended.len(), 1);
        let entry = parse_entry(ended[0].as_bytes()).expect("a valid log entry");
        assert_eq!((entry.code(), entry.fact("session")), (Some("idle"), Some(session.id.as_str())));
    }

    #[tokio::test]
    async fn a_session_ends_at_its_absolute_lifetime_however_busy() {
        let t0 = Utc::now();
        let (_dir, store, token) = store_with_admin(t0).await;
        let secret = BearerSecret::generate("").hash();
        store.start_session(&token.hash(), &secret, Duration::from_secs(3600), t0).await.expect("start");
        for step in 1..=5 {
            let at = t0 + minutes(10 * step);
            assert!(matches!(store.session(&secret, IDLE, at).await.expect("lookup"), SessionLookup::Live(_)));
        }
        assert_eq!(store.session(&secret, IDLE, t0 + minutes(60)).await.expect("lookup"), SessionLookup::Ended);
        let reason: String =
            sqlx::query_scalar("SELECT end_reason FROM sessions").fetch_one(&store.pool).await.expect("row");
        assert_eq!(reason, "expired");
    }

    #[tokio::test]
    async fn unknown_tokens_start_nothing_and_refusals_are_counted() {
        let t0 = Utc::now();
        let (_dir, store, _token) = store_with_admin(t0).await;
        let secret = BearerSecret::generate("").hash();
        let wrong = BearerSecret::generate("sp_").hash();
        assert_eq!(store.start_session(&wrong, &secret, LIFETIME, t0).await.expect("start"), None);
        assert_eq!(store.session(&secret, IDLE, t0).await.expect("lookup"), SessionLookup::Unknown);
        let window = Duration::from_secs(600);
        assert_eq!(store.refuse_session("invalid_token", AuthMethod::Token, window, t0).await.expect("refuse"), 1);
        assert_eq!(store.refuse_session("invalid_token", AuthMethod::Token, window, t0).await.expect("refuse"), 2);
        let later = t0 + minutes(11);
        assert_eq!(store.refuse_session("csrf", AuthMethod::Token, window, later).await.expect("refuse"), 1);
    }
}
