//! Transfers: the commit of an accepted upload with its links, the record policies decide on,
//! and a compliance officer's decision. Views are in `views`, recall and purge in `disposal`.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::group::Tx;
use super::{Manifest, Store, StoreError, append, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{LinkId, SecretHash, TransferId, UserId};
use crate::intake::Inspected;
use crate::policy::{Action, Approval, OrgFacts, Permit, Release, TransferFacts, UserFacts};

/// Where an accepted upload is to be stored, and the sender's signed manifest to keep with it.
#[derive(Debug)]
pub struct NewTransfer {
    /// Its id (also names its blob).
    pub id: TransferId,
    /// The blob's key in the object store.
    pub object_key: String,
    /// The `sealpost.manifest/v2` the sender signed the upload with, if any.
    pub manifest: Option<Manifest>,
}

/// One recipient's link, ready to commit.
#[derive(Debug)]
pub struct NewLink {
    /// Its id.
    pub id: LinkId,
    /// The recipient's id (must be one of the approval's recipients).
    pub recipient: UserId,
    /// SHA-256 of the link token.
    pub token_hash: SecretHash,
}

/// An accepted upload's rows and audit events, owned, for the group committer.
#[derive(Debug)]
struct Insert {
    id: String,
    sender: String,
    size: i64,
    digest: String,
    armored: bool,
    classification: String,
    expires_at: DateTime<Utc>,
    object_key: String,
    status: &'static str,
    accepted: Event,
    links: Vec<InsertLink>,
    manifest: Option<Manifest>,
    now: DateTime<Utc>,
}

#[derive(Debug)]
struct InsertLink {
    id: String,
    recipient: String,
    token_hash: Vec<u8>,
    issued: Event,
}

/// Writes one accepted upload (transfer, `upload.accepted`, links, `link.issued`) into `tx`;
/// returns the index of its `upload.accepted` event.
async fn write_insert(tx: &mut Tx, insert: Insert) -> Result<u64, StoreError> {
    sqlx::query(
        "INSERT INTO transfers (id, sender_id, size, digest, armored, classification, created_at, expires_at, object_key, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&insert.id)
    .bind(&insert.sender)
    .bind(insert.size)
    .bind(&insert.digest)
    .bind(insert.armored)
    .bind(&insert.classification)
    .bind(ms(insert.now))
    .bind(ms(insert.expires_at))
    .bind(&insert.object_key)
    .bind(insert.status)
    .execute(&mut **tx)
    .await?;
    let accepted_idx = append(tx, &insert.accepted, insert.now).await?;
    for link in &insert.links {
        sqlx::query(
            "INSERT INTO links (id, transfer_id, recipient_id, token_hash, state, expires_at) \
             VALUES ($1, $2, $3, $4, 'issued', $5)",
        )
        .bind(&link.id)
        .bind(&insert.id)
        .bind(&link.recipient)
        .bind(&link.token_hash[..])
        .bind(ms(insert.expires_at))
        .execute(&mut **tx)
        .await?;
        append(tx, &link.issued, insert.now).await?;
    }
    if let Some(manifest) = &insert.manifest {
        super::manifests::write_manifest(tx, &insert.id, manifest, insert.now).await?;
    }
    Ok(accepted_idx)
}

/// A stored transfer as policies and the approval flow need it.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    /// The policy facts (sender, recipients, classification, size, approved).
    pub facts: TransferFacts,
    /// Facts about every organisation involved.
    pub orgs: Vec<OrgFacts>,
    /// `held`, `released` or `rejected`.
    pub status: String,
    /// Whether the upload was armoured.
    pub armored: bool,
}

/// The outcome of an approval decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Whether the transfer is now released to its recipients.
    pub released: bool,
    /// Links revoked (on rejection).
    pub revoked: u64,
    /// The blob to delete (on rejection).
    pub object_key: Option<String>,
}

fn user_facts(row: &sqlx::any::AnyRow) -> UserFacts {
    let org: String = row.get("org");
    let name: String = row.get("name");
    UserFacts { id: row.get("id"), name: format!("{org}/{name}"), role: row.get("role"), org, authentication: None }
}

impl Store {
    /// A transfer with everything policies need to decide on it.
    pub async fn transfer_record(&self, id: &TransferId) -> Result<TransferRecord, StoreError> {
        let row = sqlx::query(
            "SELECT t.size, t.classification, t.status, t.armored, t.decided_by, \
                    u.id, u.name, u.role, o.name AS org \
             FROM transfers t JOIN users u ON u.id = t.sender_id JOIN orgs o ON o.id = u.org_id WHERE t.id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::UnknownTransfer(id.to_string()))?;
        let recipients: Vec<UserFacts> = sqlx::query(
            "SELECT u.id, u.name, u.role, o.name AS org FROM links l JOIN users u ON u.id = l.recipient_id \
             JOIN orgs o ON o.id = u.org_id WHERE l.transfer_id = $1 ORDER BY o.name, u.name",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(user_facts)
        .collect();
        let status: String = row.get("status");
        let sender = user_facts(&row);
        let mut org_names: Vec<&str> = recipients.iter().map(|r| r.org.as_str()).collect();
        org_names.push(&sender.org);
        org_names.sort_unstable();
        org_names.dedup();
        let orgs = self.org_facts(&org_names).await?;
        Ok(TransferRecord {
            facts: TransferFacts {
                id: id.to_string(),
                sender,
                recipients,
                classification: row.get("classification"),
                size: u64::try_from(row.get::<i64, _>("size")).unwrap_or_default(),
                approved: row.get::<Option<String>, _>("decided_by").is_some() && status != "rejected",
            },
            orgs,
            status,
            armored: row.get::<super::Flag, _>("armored").0,
        })
    }

    /// The recipient and transfer of the link with this token, if any.
    pub async fn link_target(&self, token: &SecretHash) -> Result<Option<(UserId, TransferId)>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT recipient_id, transfer_id FROM links WHERE token_hash = $1")
                .bind(&token.0[..])
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(u, t)| (UserId::from_db(u), TransferId::from_db(t))))
    }

    /// The token hash of `recipient`'s link of `transfer`, if it has one (a signed-in recipient
    /// collects from the inbox, which holds no token).
    pub async fn link_of(&self, transfer: &TransferId, recipient: &UserId) -> Result<Option<SecretHash>, StoreError> {
        let row: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT token_hash FROM links WHERE transfer_id = $1 AND recipient_id = $2")
                .bind(transfer.as_str())
                .bind(recipient.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()).map(SecretHash))
    }

    /// Records an approver's decision on a held transfer. Approval releases it when `release`
    /// is true (the policies re-decided with the approval); rejection revokes its links.
    /// Deciding a transfer that is not held is refused with `NotHeld`. The approver's `reason`
    /// (one line, at most 500 characters kept) goes into the decision's audit event.
    pub async fn decide_transfer(
        &self,
        permit: &Permit,
        approver: &UserId,
        approve: bool,
        release: &Release,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Decided, StoreError> {
        debug_assert_eq!(permit.action(), Action::Approve);
        let id = &TransferId::from_db(permit.transfer().to_owned());
        let mut tx = self.write().await?;
        let new_status = match (approve, release.held()) {
            (true, false) => "released",
            (true, true) => "held",
            (false, _) => "rejected",
        };
        let updated: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE transfers SET status = $1, decided_by = $2, decided_at = $3 \
             WHERE id = $4 AND status = 'held' AND decided_by IS NULL RETURNING object_key",
        )
        .bind(new_status)
        .bind(approver.as_str())
        .bind(ms(now))
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(object_key) = updated else {
            return Err(StoreError::NotHeld(id.to_string()));
        };
        let kind = if approve { EventKind::TransferApproved } else { EventKind::TransferRejected };
        let mut event = Event::new(kind)
            .actor(approver)
            .transfer(id)
            .field("status", new_status)
            .field("release_policies", release.policies().join(","));
        if let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) {
            event = event.field("reason", reason.chars().take(500).collect::<String>());
        }
        append(&mut tx, &event, now).await?;
        let mut revoked = 0;
        if !approve {
            let links: Vec<(String, String)> = sqlx::query_as(
                "UPDATE links SET state = 'revoked', lease_id = NULL \
                 WHERE transfer_id = $1 AND state IN ('issued', 'leased') RETURNING id, recipient_id",
            )
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
            for (link, recipient) in &links {
                let event = Event::new(EventKind::LinkRevoked)
                    .actor(approver)
                    .transfer(id)
                    .subject(recipient.as_str())
                    .field("link", link);
                append(&mut tx, &event, now).await?;
            }
            revoked = links.len() as u64;
        }
        tx.commit().await?;
        Ok(Decided { released: new_status == "released", revoked, object_key: if approve { None } else { object_key } })
    }

    /// Commits an accepted upload: the transfer, one link per approved recipient, the sender's
    /// signed manifest when there is one, and their audit events, in one transaction. Nothing is
    /// visible unless all of it is. The `upload.accepted` entry says whether the upload was
    /// signed (`signed yes|no`) and, when it was, by which key (`signing_key`) and what
    /// (`manifest`: `sha256:` of the manifest text). Returns the
    /// log index of the `upload.accepted` event.
    pub async fn insert_transfer(
        &self,
        approval: &Approval,
        release: &Release,
        inspected: &Inspected,
        transfer: &NewTransfer,
        links: &[NewLink],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let header = &inspected.envelope().header;
        let manifest = transfer.manifest.as_ref();
        debug_assert_eq!(
            links.iter().map(|l| &l.recipient).collect::<Vec<_>>(),
            approval.recipients().iter().collect::<Vec<_>>()
        );
        let status = if release.held() { "held" } else { "released" };
        let accepted = Event::new(EventKind::UploadAccepted)
            .actor(approval.sender())
            .transfer(&transfer.id)
            .field("size", inspected.size())
            .field("digest", inspected.digest())
            .field("classification", approval.classification())
            .field("expires", approval.expires_at().timestamp())
            .field("policies", approval.policies().join(","))
            .field("status", status)
            .field("release_policies", release.policies().join(","));
        let mut accepted = accepted;
        accepted.fields.extend([
            ("armored", header.armored.to_string()),
            ("stanzas", header.recipient_stanzas().count().to_string()),
            ("payload", inspected.envelope().payload_len.to_string()),
            ("signed", if manifest.is_some() { "yes" } else { "no" }.to_owned()),
        ]);
        if let Some(manifest) = manifest {
            accepted
                .fields
                .extend([("signing_key", manifest.key_fingerprint.clone()), ("manifest", manifest.text_digest())]);
        }
        let links = links
            .iter()
            .map(|link| InsertLink {
                id: link.id.to_string(),
                recipient: link.recipient.to_string(),
                token_hash: link.token_hash.0.to_vec(),
                issued: Event::new(EventKind::LinkIssued)
                    .actor(approval.sender())
                    .transfer(&transfer.id)
                    .subject(link.recipient.as_str())
                    .field("link", &link.id),
            })
            .collect();
        let insert = Insert {
            id: transfer.id.to_string(),
            sender: approval.sender().to_string(),
            size: i64::try_from(inspected.size()).unwrap_or(i64::MAX),
            digest: inspected.digest().to_string(),
            armored: header.armored,
            classification: approval.classification().as_str().to_owned(),
            expires_at: approval.expires_at(),
            object_key: transfer.object_key.clone(),
            status,
            accepted,
            links,
            manifest: manifest.cloned(),
            now,
        };
        self.group.run(move |tx| Box::pin(write_insert(tx, insert))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::BearerSecret;

    fn insert(id: &str, sender: &UserId, now: DateTime<Utc>) -> Insert {
        Insert {
            id: id.to_owned(),
            sender: sender.to_string(),
            size: 1,
            digest: "sha256:00".to_owned(),
            armored: false,
            classification: "OFFICIAL".to_owned(),
            expires_at: now,
            object_key: format!("{id}.age"),
            status: "released",
            accepted: Event::new(EventKind::UploadAccepted).field("transfer", id),
            links: Vec::new(),
            manifest: None,
            now,
        }
    }

    #[tokio::test]
    async fn uploads_committed_together_share_a_transaction_but_fail_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite")).await.expect("open");
        let now = Utc::now();
        let token = BearerSecret::generate("");
        store.bootstrap(&token.hash(), now + chrono::TimeDelta::days(1), now).await.expect("bootstrap").expect("first");
        let sender = store.authenticate(&token.hash(), now).await.expect("auth").expect("admin").id;
        // Submitted in one poll, so the committer finds them all queued: one batch, in which the
        // duplicate id fails on its own and the others commit.
        let ids = ["a", "b", "a", "c"];
        let results = futures_util::future::join_all(ids.iter().map(|id| {
            let job = insert(id, &sender, now);
            store.group.run(move |tx| Box::pin(write_insert(tx, job)))
        }))
        .await;
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok(), "{results:?}");
        assert!(results[2].is_err(), "a duplicate transfer id must be refused: {results:?}");
        let mut idx: Vec<u64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        idx.sort_unstable();
        let first = idx[0];
        assert_eq!(idx, vec![first, first + 1, first + 2], "the audit index stays gapless");
        let stored: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM transfers").fetch_one(&store.pool).await.expect("count");
        assert_eq!(stored, 3);
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE event = 'upload.accepted'")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(events, 3, "the refused upload's event was rolled back with its row");
    }
}
