//! The key directory: each user's registered age recipients.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::accounts::user_id;
use super::{Store, StoreError, append, from_ms, is_unique_violation, ms};
use crate::audit::{Event, EventKind};
use crate::directory::RecipientKey;
use crate::ids::{KeyId, UserId};
use crate::model::{KeyInfo, Recipient, UserRef};
use crate::names;

impl Store {
    /// Registers a key for `owner`, by `actor` (the owner, or an administrator). The `key.added`
    /// entry names the owner by its commitment ([`crate::names`]) and carries the public key, so
    /// the owner can find every key registered under their name in the log.
    pub async fn add_key(
        &self,
        actor: &UserId,
        owner_ref: &UserRef,
        key: &RecipientKey,
        now: DateTime<Utc>,
    ) -> Result<KeyInfo, StoreError> {
        let mut tx = self.write().await?;
        let owner = user_id(&mut tx, owner_ref).await?;
        let id = KeyId::generate();
        let inserted = sqlx::query(
            "INSERT INTO recipient_keys (id, user_id, recipient, stanza_type, fingerprint, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(owner.as_str())
        .bind(key.recipient())
        .bind(key.stanza_type())
        .bind(key.fingerprint())
        .bind(ms(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::KeyExists(owner_ref.clone())),
            other => other?,
        };
        let commitment = owner_commitment(&mut tx, &owner, owner_ref).await?;
        let event = key_event(
            EventKind::KeyAdded,
            id.as_str(),
            key.stanza_type(),
            key.fingerprint(),
            &commitment,
            key.recipient(),
        )
        .actor(actor);
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(KeyInfo {
            recipient: key.recipient().to_owned(),
            stanza_type: key.stanza_type().to_owned(),
            fingerprint: key.fingerprint().to_owned(),
            added_at: now,
        })
    }

    /// `user`'s name salt, made on first use: the key to the commitments that name them in the
    /// log, given to anyone who may look them up.
    pub async fn name_salt(&self, user: &UserRef) -> Result<String, StoreError> {
        let salt: Option<Option<String>> = sqlx::query_scalar(
            "SELECT u.name_salt FROM users u JOIN orgs o ON o.id = u.org_id WHERE o.name = $1 AND u.name = $2",
        )
        .bind(&user.org)
        .bind(&user.name)
        .fetch_optional(&self.pool)
        .await?;
        match salt {
            None => Err(StoreError::UnknownUser(user.clone())),
            Some(Some(salt)) => Ok(salt),
            Some(None) => {
                let mut tx = self.write().await?;
                let id = user_id(&mut tx, user).await?;
                let salt = salt_of(&mut tx, &id).await?;
                tx.commit().await?;
                Ok(salt)
            }
        }
    }

    /// Lists a user's live keys, oldest first.
    pub async fn list_keys(&self, user: &UserRef) -> Result<Vec<KeyInfo>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = user_id(&mut tx, user).await?;
        let keys = keys_of(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(keys)
    }

    /// Removes one of `user`'s keys by fingerprint.
    pub async fn remove_key(
        &self,
        actor: &UserId,
        user: &UserRef,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let owner = user_id(&mut tx, user).await?;
        let removed: Option<String> = sqlx::query_scalar(
            "UPDATE recipient_keys SET removed_at = $1 WHERE user_id = $2 AND fingerprint = $3 AND removed_at IS NULL \
             RETURNING id",
        )
        .bind(ms(now))
        .bind(owner.as_str())
        .bind(fingerprint)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(key) = removed else {
            return Err(StoreError::UnknownKey { user: user.clone(), fingerprint: fingerprint.to_owned() });
        };
        let (recipient, stanza_type): (String, String) =
            sqlx::query_as("SELECT recipient, stanza_type FROM recipient_keys WHERE id = $1")
                .bind(&key)
                .fetch_one(&mut *tx)
                .await?;
        let commitment = owner_commitment(&mut tx, &owner, user).await?;
        let event =
            key_event(EventKind::KeyRemoved, &key, &stanza_type, fingerprint, &commitment, &recipient).actor(actor);
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The log index and entry of the `key.added` event that registered `user`'s key with this
    /// fingerprint (the key-transparency proof that the directory serves what the log shows).
    pub async fn key_entry(&self, user: &UserRef, fingerprint: &str) -> Result<Option<(u64, String)>, StoreError> {
        self.key_added(user, fingerprint, true).await
    }

    /// The log index and entry of the latest `key.added` event that registered `user`'s key with
    /// this fingerprint, live or removed since (a signed delivery stays provable after its key is
    /// removed).
    pub async fn key_registration(
        &self,
        user: &UserRef,
        fingerprint: &str,
    ) -> Result<Option<(u64, String)>, StoreError> {
        self.key_added(user, fingerprint, false).await
    }

    /// The latest `key.added` event of `user`'s key with `fingerprint` (a live key only, or any).
    async fn key_added(
        &self,
        user: &UserRef,
        fingerprint: &str,
        live_only: bool,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let live = if live_only { "AND k.removed_at IS NULL" } else { "" };
        let sql = format!(
            "SELECT a.idx, a.entry FROM audit_events a JOIN recipient_keys k ON k.id = a.subject_id \
             JOIN users u ON u.id = k.user_id JOIN orgs o ON o.id = u.org_id \
             WHERE a.event = 'key.added' AND o.name = $1 AND u.name = $2 AND k.fingerprint = $3 {live} \
             ORDER BY a.idx DESC LIMIT 1"
        );
        let row: Option<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&user.org)
            .bind(&user.name)
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(i, e)| (u64::try_from(i).unwrap_or_default(), e)))
    }

    /// Binds the live keys registered by an earlier version (whose `key.added` entry names no
    /// owner) to their owners' names: one new `key.added` entry each, by the gateway, with code
    /// `bound`. Run at start; answers how many keys it bound.
    pub async fn bind_key_owners(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT k.id, k.user_id, o.name || '/' || u.name AS owner, k.recipient, k.stanza_type, k.fingerprint, \
                    (SELECT a.entry FROM audit_events a WHERE a.event = 'key.added' AND a.subject_id = k.id \
                     ORDER BY a.idx DESC LIMIT 1) AS entry \
             FROM recipient_keys k JOIN users u ON u.id = k.user_id JOIN orgs o ON o.id = u.org_id \
             WHERE k.removed_at IS NULL ORDER BY k.added_at, k.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut bound = 0;
        for row in rows {
            if row.get::<Option<String>, _>("entry").is_some_and(|e| e.contains("\nowner ")) {
                continue;
            }
            let name: UserRef = row.get::<String, _>("owner").parse()?;
            let (key, user): (String, String) = (row.get("id"), row.get("user_id"));
            let (recipient, stanza_type, fingerprint): (String, String, String) =
                (row.get("recipient"), row.get("stanza_type"), row.get("fingerprint"));
            let mut tx = self.write().await?;
            let commitment = owner_commitment(&mut tx, &UserId::from_db(user), &name).await?;
            let event =
                key_event(EventKind::KeyAdded, &key, &stanza_type, &fingerprint, &commitment, &recipient).code("bound");
            append(&mut tx, &event, now).await?;
            tx.commit().await?;
            bound += 1;
        }
        Ok(bound)
    }

    /// Resolves addressed users to their ids, roles and live keys, in the order given.
    pub async fn recipients(&self, users: &[UserRef]) -> Result<Vec<Recipient>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(users.len());
        for user in users {
            let id = user_id(&mut tx, user).await?;
            let role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            let keys = keys_of(&mut tx, &id).await?;
            out.push(Recipient { id, user: user.clone(), role: role.parse()?, keys });
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// A `key.added` or `key.removed` event: the key (its id as subject, type, fingerprint, public
/// string) and its owner's name commitment; the caller adds who did it.
fn key_event(kind: EventKind, id: &str, stanza_type: &str, fingerprint: &str, owner: &str, key: &str) -> Event {
    Event::new(kind)
        .subject(id)
        .field("type", stanza_type)
        .field("fingerprint", fingerprint)
        .field("owner", owner)
        .field("key", key)
}

/// The user's name salt inside a write transaction, made (32 random bytes) if it has none yet.
async fn salt_of(tx: &mut sqlx::Transaction<'static, sqlx::Any>, user: &UserId) -> Result<String, StoreError> {
    let salt: Option<String> = sqlx::query_scalar("SELECT name_salt FROM users WHERE id = $1")
        .bind(user.as_str())
        .fetch_one(&mut **tx)
        .await?;
    if let Some(salt) = salt {
        return Ok(salt);
    }
    let salt = names::new_salt();
    sqlx::query("UPDATE users SET name_salt = $1 WHERE id = $2 AND name_salt IS NULL")
        .bind(&salt)
        .bind(user.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar("SELECT name_salt FROM users WHERE id = $1").bind(user.as_str()).fetch_one(&mut **tx).await?)
}

/// The commitment that names `user` in a log entry (made inside the entry's transaction).
pub(super) async fn owner_commitment(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: &UserId,
    name: &UserRef,
) -> Result<String, StoreError> {
    let salt = salt_of(tx, user).await?;
    names::commitment(&salt, name)
        .map_err(|_| StoreError::Unreadable { column: "users.name_salt", value: salt.clone() })
}

async fn keys_of(tx: &mut sqlx::Transaction<'static, sqlx::Any>, user: &UserId) -> Result<Vec<KeyInfo>, StoreError> {
    let rows = sqlx::query(
        "SELECT recipient, stanza_type, fingerprint, added_at FROM recipient_keys \
         WHERE user_id = $1 AND removed_at IS NULL ORDER BY added_at, id",
    )
    .bind(user.as_str())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| KeyInfo {
            recipient: r.get("recipient"),
            stanza_type: r.get("stanza_type"),
            fingerprint: r.get("fingerprint"),
            added_at: from_ms(r.get("added_at")),
        })
        .collect())
}
