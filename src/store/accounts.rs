//! Organisations, users and API tokens.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::sessions::TOKEN_AUTH_COLUMNS;
use super::{Store, StoreError, append, from_ms, is_unique_violation, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{OrgId, SecretHash, TokenId, UserId};
use crate::model::{OrgKind, Principal, Role, UserRef};
use crate::wire::accounts::{OrgInfo, TokenInfo, UserInfo};

/// The gateway's own organisation and administrator, made on first start.
pub(crate) const OPERATOR_ORG: &str = "sealpost";
/// The bootstrap administrator's name.
pub(crate) const BOOTSTRAP_ADMIN: &str = "admin";

impl Store {
    /// True when no user exists yet (first start).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
        Ok(n == 0)
    }

    /// Finds the live token with this hash and its user.
    pub async fn authenticate(&self, token: &SecretHash, now: DateTime<Utc>) -> Result<Option<Principal>, StoreError> {
        // Only constant text is formatted in.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT u.id AS user_id, u.name, u.role, o.name AS org, o.kind, {TOKEN_AUTH_COLUMNS} FROM api_tokens t \
             JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"
        )))
        .bind(&token.0[..])
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(super::sessions::principal).transpose()
    }

    /// Creates an organisation.
    pub async fn create_org(
        &self,
        actor: &UserId,
        name: &str,
        kind: OrgKind,
        now: DateTime<Utc>,
    ) -> Result<OrgInfo, StoreError> {
        let mut tx = self.write().await?;
        let id = OrgId::generate();
        let inserted = sqlx::query("INSERT INTO orgs (id, name, kind, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.as_str())
            .bind(name)
            .bind(kind.as_str())
            .bind(ms(now))
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::OrgExists(name.to_owned())),
            other => other?,
        };
        let event = Event::new(EventKind::OrgCreated).actor(actor).subject(id.as_str()).field("kind", kind);
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(OrgInfo { name: name.to_owned(), kind, created_at: now })
    }

    /// Lists organisations by name.
    pub async fn list_orgs(&self) -> Result<Vec<OrgInfo>, StoreError> {
        let rows = sqlx::query("SELECT name, kind, created_at FROM orgs ORDER BY name").fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|r| {
                Ok(OrgInfo {
                    name: r.get("name"),
                    kind: r.get::<String, _>("kind").parse()?,
                    created_at: from_ms(r.get("created_at")),
                })
            })
            .collect()
    }

    /// Creates a user and its first API token, returning the token's id. `email` (already
    /// normalised, see [`crate::model::normalise_email`]) is how single sign-on finds the person,
    /// and where notifications go.
    #[allow(clippy::too_many_arguments, reason = "the token is optional; the rest is what a user is")]
    pub async fn create_user(
        &self,
        actor: &UserId,
        user: &UserRef,
        role: Role,
        email: Option<&str>,
        token: &SecretHash,
        token_expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<TokenId, StoreError> {
        let mut tx = self.write().await?;
        let id = insert_user(&mut tx, Some(actor), user, role, email, now).await?;
        let token_id = insert_token(&mut tx, Some(actor), &id, token, token_expires, now).await?;
        tx.commit().await?;
        Ok(token_id)
    }

    /// The user's email address, if one is set.
    pub async fn user_email(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        let email: Option<Option<String>> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(email.flatten())
    }

    /// Lists users by organisation and name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.name AS org, u.name, u.role, u.email, u.created_at FROM users u JOIN orgs o ON o.id = u.org_id \
             ORDER BY o.name, u.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(UserInfo {
                    user: UserRef::new(r.get("org"), r.get("name"))?,
                    role: r.get::<String, _>("role").parse()?,
                    email: r.get("email"),
                    created_at: from_ms(r.get("created_at")),
                })
            })
            .collect()
    }

    /// Issues another API token for an existing user.
    pub async fn issue_token(
        &self,
        actor: &UserId,
        user: &UserRef,
        token: &SecretHash,
        expires: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<TokenId, StoreError> {
        let mut tx = self.write().await?;
        let id = user_id(&mut tx, user).await?;
        let token_id = insert_token(&mut tx, Some(actor), &id, token, expires, now).await?;
        tx.commit().await?;
        Ok(token_id)
    }

    /// Lists tokens (all, or one user's), newest first.
    pub async fn list_tokens(&self, user: Option<&UserRef>) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, o.name AS org, u.name, t.created_at, t.expires_at, t.revoked_at, \
                    COALESCE(p.purpose, t.kind) AS kind, co.name AS by_org, cu.name AS by_name FROM api_tokens t \
             JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id \
             LEFT JOIN provisional_tokens p ON p.token_id = t.id \
             LEFT JOIN users cu ON cu.id = t.created_by LEFT JOIN orgs co ON co.id = cu.org_id \
             WHERE ($1 IS NULL OR (o.name = $1 AND u.name = $2)) ORDER BY t.created_at DESC, t.id",
        )
        .bind(user.map(|u| u.org.clone()))
        .bind(user.map(|u| u.name.clone()))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.get("id"),
                    user: UserRef::new(r.get("org"), r.get("name"))?,
                    created_at: from_ms(r.get("created_at")),
                    expires_at: r.get::<Option<i64>, _>("expires_at").map(from_ms),
                    revoked_at: r.get::<Option<i64>, _>("revoked_at").map(from_ms),
                    kind: r.get("kind"),
                    created_by: match (r.get::<Option<String>, _>("by_org"), r.get::<Option<String>, _>("by_name")) {
                        (Some(org), Some(name)) => Some(UserRef::new(&org, &name)?),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// Revokes one token by id. Revoking a revoked token changes nothing and is not an error.
    pub async fn revoke_token(&self, actor: &UserId, token: &TokenId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM api_tokens WHERE id = $1")
            .bind(token.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownToken(token.to_string()));
        }
        let revoked = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(ms(now))
            .bind(token.as_str())
            .execute(&mut *tx)
            .await?;
        if revoked.rows_affected() > 0 {
            append(&mut tx, &Event::new(EventKind::TokenRevoked).actor(actor).subject(token.as_str()), now).await?;
            // Browser sessions signed in with this token end with it.
            super::sessions::end_token_sessions(&mut tx, token.as_str(), now).await?;
            an_administrator_remains(&mut tx, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Revokes every live token of a user, returning how many.
    pub async fn revoke_user_tokens(
        &self,
        actor: &UserId,
        user: &UserRef,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let id = user_id(&mut tx, user).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(ms(now))
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for token in &ids {
            append(&mut tx, &Event::new(EventKind::TokenRevoked).actor(actor).subject(token.as_str()), now).await?;
            super::sessions::end_token_sessions(&mut tx, token, now).await?;
        }
        if !ids.is_empty() {
            an_administrator_remains(&mut tx, now).await?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }
}

/// Refuses (and so rolls back) a change that leaves no administrator able to sign in: none with
/// a live API token, none bound to an identity provider.
async fn an_administrator_remains(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tokens: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE u.role = 'admin' AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $1)",
    )
    .bind(ms(now))
    .fetch_one(&mut **tx)
    .await?;
    if tokens > 0 {
        return Ok(());
    }
    let bound: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM identities i JOIN users u ON u.id = i.user_id WHERE u.role = 'admin'")
            .fetch_one(&mut **tx)
            .await?;
    if bound > 0 { Ok(()) } else { Err(StoreError::LastAdministrator) }
}

/// Looks a user's id up by name inside a transaction.
pub(super) async fn user_id(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: &UserRef,
) -> Result<UserId, StoreError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT u.id FROM users u JOIN orgs o ON o.id = u.org_id WHERE o.name = $1 AND u.name = $2")
            .bind(&user.org)
            .bind(&user.name)
            .fetch_optional(&mut **tx)
            .await?;
    id.map(UserId::from_db).ok_or_else(|| StoreError::UnknownUser(user.clone()))
}

/// Inserts a user (the caller's transaction) with its `user.created` event: `actor` is `None`
/// for a user made just in time by single sign-on.
pub(super) async fn insert_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    actor: Option<&UserId>,
    user: &UserRef,
    role: Role,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<UserId, StoreError> {
    let org: Option<String> =
        sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1").bind(&user.org).fetch_optional(&mut **tx).await?;
    let org = org.ok_or_else(|| StoreError::UnknownOrg(user.org.clone()))?;
    if let Some(email) = email {
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE email = $1").bind(email).fetch_optional(&mut **tx).await?;
        if taken.is_some() {
            return Err(StoreError::EmailInUse(email.to_owned()));
        }
    }
    let id = UserId::generate();
    let inserted =
        sqlx::query("INSERT INTO users (id, org_id, name, role, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.as_str())
            .bind(&org)
            .bind(&user.name)
            .bind(role.as_str())
            .bind(email)
            .bind(ms(now))
            .execute(&mut **tx)
            .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(StoreError::UserExists(user.clone())),
        other => other?,
    };
    let mut event = Event::new(EventKind::UserCreated).subject(id.as_str()).field("role", role);
    event.actor = actor.cloned();
    append(tx, &event, now).await?;
    Ok(id)
}

pub(super) async fn insert_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    actor: Option<&UserId>,
    user: &UserId,
    token: &SecretHash,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<TokenId, StoreError> {
    let id = TokenId::generate();
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, token_hash, created_at, expires_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.as_str())
    .bind(user.as_str())
    .bind(&token.0[..])
    .bind(ms(now))
    .bind(expires.map(ms))
    .bind(actor.map(UserId::as_str))
    .execute(&mut **tx)
    .await?;
    let mut event = Event::new(EventKind::TokenIssued).subject(id.as_str()).field("user", user);
    event.actor = actor.cloned();
    if let Some(expires) = expires {
        event = event.field("expires", expires.timestamp());
    }
    append(tx, &event, now).await?;
    Ok(id)
}
