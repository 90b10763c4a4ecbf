//! The first administrator's life cycle: the bootstrap token the first start writes, its
//! exchange for a named administrator (`sealpost admin claim`), and the recovery token an
//! operator issues on the server when no administrator can sign in (`sealpost admin recover`).
//! Which tokens are provisional is kept in `provisional_tokens` (migration 0015).

use chrono::{DateTime, Utc};

use super::accounts::{BOOTSTRAP_ADMIN, OPERATOR_ORG, insert_token, insert_user, user_id};
use super::{Store, StoreError, append, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{OrgId, SecretHash, TokenId, UserId};
use crate::model::{Role, UserRef};

/// What [`Store::recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The recovery token's id.
    pub token: TokenId,
    /// True when the administrator did not exist and was made.
    pub created: bool,
}

/// Who ran `sealpost admin recover`, and why: the facts its `admin.recovered` entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryWitness {
    /// The operating-system account on the server (`USER (uid N) on HOST`).
    pub operator: String,
    /// The reason the operator gave.
    pub reason: String,
}

impl Store {
    /// Makes the operator organisation and its administrator with the bootstrap token, which
    /// expires at `expires`. `None` when another gateway sharing the database got there first
    /// (checked with the writers' turn held, so exactly one bootstrap happens).
    pub async fn bootstrap(
        &self,
        token: &SecretHash,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRef>, StoreError> {
        let mut tx = self.write().await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?;
        if users > 0 {
            return Ok(None);
        }
        let org = OrgId::generate();
        let user = UserId::generate();
        let name = UserRef::new(OPERATOR_ORG, BOOTSTRAP_ADMIN)?;
        sqlx::query("INSERT INTO orgs (id, name, kind, created_at) VALUES ($1, $2, 'operator', $3)")
            .bind(org.as_str())
            .bind(OPERATOR_ORG)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO users (id, org_id, name, role, created_at) VALUES ($1, $2, $3, 'admin', $4)")
            .bind(user.as_str())
            .bind(org.as_str())
            .bind(BOOTSTRAP_ADMIN)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        append(&mut tx, &Event::new(EventKind::OrgCreated).subject(org.as_str()).field("kind", "operator"), now)
            .await?;
        append(&mut tx, &Event::new(EventKind::UserCreated).subject(user.as_str()).field("role", "admin"), now).await?;
        let token = insert_token(&mut tx, None, &user, token, Some(expires), now).await?;
        mark(&mut tx, &token, "bootstrap").await?;
        tx.commit().await?;
        Ok(Some(name))
    }

    /// Exchanges the live bootstrap token that `bootstrap` presents for the named administrator
    /// `user` (made now, with `email` if given) and its first token `token` (no expiry), and
    /// revokes the bootstrap token, all at once. Refused with [`StoreError::NotBootstrap`] for
    /// any other token, and for a bootstrap token that was exchanged, revoked or has expired.
    pub async fn claim(
        &self,
        bootstrap: Presented<'_>,
        user: &UserRef,
        email: Option<&str>,
        token: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<TokenId, StoreError> {
        let mut tx = self.write().await?;
        let found = live_bootstrap(&mut tx, bootstrap, now).await?;
        let (old, actor) = found.ok_or(StoreError::NotBootstrap)?;
        let actor = UserId::from_db(actor);
        let id = insert_user(&mut tx, Some(&actor), user, Role::Admin, email, now).await?;
        let token_id = insert_token(&mut tx, Some(&actor), &id, token, None, now).await?;
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(ms(now))
            .bind(&old)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, &Event::new(EventKind::TokenRevoked).actor(&actor).subject(&old).code("exchanged"), now)
            .await?;
        super::sessions::end_token_sessions(&mut tx, &old, now).await?;
        tx.commit().await?;
        Ok(token_id)
    }

    /// Issues a recovery token for the administrator `user`, valid until `expires`, with an
    /// `admin.recovered` entry naming the operator and their reason. A user of that name that
    /// does not exist is made, as an administrator, in its (existing) organisation; one that
    /// exists with another role is refused ([`StoreError::NotAdministrator`]).
    pub async fn recover(
        &self,
        user: &UserRef,
        token: &SecretHash,
        expires: DateTime<Utc>,
        witness: &RecoveryWitness,
        now: DateTime<Utc>,
    ) -> Result<Recovered, StoreError> {
        let mut tx = self.write().await?;
        let (id, created) = match user_id(&mut tx, user).await {
            Ok(id) => {
                let role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                if role != Role::Admin.as_str() {
                    return Err(StoreError::NotAdministrator { user: user.clone(), role });
                }
                (id, false)
            }
            Err(StoreError::UnknownUser(_)) => (insert_user(&mut tx, None, user, Role::Admin, None, now).await?, true),
            Err(e) => return Err(e),
        };
        let token_id = insert_token(&mut tx, None, &id, token, Some(expires), now).await?;
        mark(&mut tx, &token_id, "recovery").await?;
        append(
            &mut tx,
            &Event::new(EventKind::AdminRecovered)
                .subject(token_id.as_str())
                .field("user", id.as_str())
                .field("operator", &witness.operator)
                .field("reason", &witness.reason),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Recovered { token: token_id, created })
    }

    /// When the bootstrap token that `presented` shows stops working, if it is a live
    /// bootstrap token (the pages offer its holder the exchange).
    pub async fn bootstrap_expiry(
        &self,
        presented: Presented<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = live_bootstrap(&mut tx, presented, now).await?;
        let Some((token, _)) = found else { return Ok(None) };
        let expires: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM api_tokens WHERE id = $1")
            .bind(&token)
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(Some(expires.map_or(DateTime::<Utc>::MAX_UTC, super::from_ms)))
    }

    /// Every administrator, by organisation and name.
    pub async fn administrators(&self) -> Result<Vec<UserRef>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT o.name, u.name FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.role = 'admin' \
             ORDER BY o.name, u.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(org, name)| Ok(UserRef::new(&org, &name)?)).collect()
    }
}

/// How a claim shows the bootstrap token: the token itself (the API), or a page session signed
/// in with it.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// The token's hash.
    Token(&'a SecretHash),
    /// The id of a live session started with the token.
    Session(&'a str),
}

/// The live bootstrap token `presented` shows: its id and its user's id.
async fn live_bootstrap(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    presented: Presented<'_>,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>, StoreError> {
    const LIVE: &str = "SELECT t.id, t.user_id FROM api_tokens t JOIN provisional_tokens p ON p.token_id = t.id \
         WHERE p.purpose = 'bootstrap' AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)";
    let found = match presented {
        Presented::Token(hash) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{LIVE} AND t.token_hash = $1")))
                .bind(&hash.0[..])
                .bind(ms(now))
                .fetch_optional(&mut **tx)
                .await?
        }
        Presented::Session(id) => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{LIVE} AND t.id = (SELECT s.token_id FROM sessions s WHERE s.id = $1 AND s.ended_at IS NULL)"
            )))
            .bind(id)
            .bind(ms(now))
            .fetch_optional(&mut **tx)
            .await?
        }
    };
    Ok(found)
}

/// Records that a token is provisional, and for what.
async fn mark(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    token: &TokenId,
    purpose: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO provisional_tokens (token_id, purpose) VALUES ($1, $2)")
        .bind(token.as_str())
        .bind(purpose)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
