//! Signed sender manifests: what the sender's signing key vouches for, kept beside the transfer
//! for its recipients to check. A `sealpost.manifest/v2` comes with the upload and is written in
//! the transaction that commits the transfer ([`write_manifest`]); a `sealpost.manifest/v1` may
//! still be added afterwards through the legacy route ([`Store::add_manifest`]), which leaves the
//! transfer unsigned for policy (policy decided at the upload).

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use sqlx::{Any, Row as _, Transaction};

use super::{Store, StoreError, append, is_unique_violation, ms};
use crate::audit::{Event, EventKind};
use crate::ids::{TransferId, UserId};

/// A stored manifest and the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The manifest text, exactly as signed.
    pub manifest: String,
    /// The Ed25519 signature over the manifest bytes, in base64.
    pub signature: String,
    /// The signing key's fingerprint.
    pub key_fingerprint: String,
    /// The signing key's public string (`sealpost-signing1…`).
    pub key_public: String,
}

impl Manifest {
    /// `sha256:` and the hex SHA-256 of the manifest text, as the log records it.
    pub fn text_digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(self.manifest.as_bytes())))
    }
}

/// Writes the manifest row of `transfer` into `tx` (the transaction that commits the transfer).
pub(super) async fn write_manifest(
    tx: &mut Transaction<'static, Any>,
    transfer: &str,
    manifest: &Manifest,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO manifests (transfer_id, manifest, signature, key_fingerprint, key_public, signed_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(transfer)
    .bind(&manifest.manifest)
    .bind(&manifest.signature)
    .bind(&manifest.key_fingerprint)
    .bind(&manifest.key_public)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What a manifest must name: the transfer's sender, digest and recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSubject {
    /// The sender's id.
    pub sender_id: UserId,
    /// The sender, `ORG/NAME`.
    pub sender: String,
    /// The ciphertext digest, `sha256:HEX`.
    pub digest: String,
    /// The recipients' ids.
    pub recipient_ids: Vec<UserId>,
    /// The recipients, `ORG/NAME`, sorted.
    pub recipients: Vec<String>,
}

impl Store {
    /// The sender, digest and recipients of a transfer.
    pub async fn manifest_subject(&self, id: &TransferId) -> Result<ManifestSubject, StoreError> {
        let row = sqlx::query(
            "SELECT t.digest, u.id, u.name, o.name AS org FROM transfers t JOIN users u ON u.id = t.sender_id \
             JOIN orgs o ON o.id = u.org_id WHERE t.id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::UnknownTransfer(id.to_string()))?;
        let rows = sqlx::query(
            "SELECT u.id, u.name, o.name AS org FROM links l JOIN users u ON u.id = l.recipient_id \
             JOIN orgs o ON o.id = u.org_id WHERE l.transfer_id = $1",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut recipients: Vec<(String, UserId)> = rows
            .iter()
            .map(|r| {
                (
                    format!("{}/{}", r.get::<String, _>("org"), r.get::<String, _>("name")),
                    UserId::from_db(r.get::<String, _>("id")),
                )
            })
            .collect();
        recipients.sort();
        recipients.dedup();
        Ok(ManifestSubject {
            sender_id: UserId::from_db(row.get::<String, _>("id")),
            sender: format!("{}/{}", row.get::<String, _>("org"), row.get::<String, _>("name")),
            digest: row.get("digest"),
            recipient_ids: recipients.iter().map(|(_, id)| id.clone()).collect(),
            recipients: recipients.into_iter().map(|(name, _)| name).collect(),
        })
    }

    /// Stores a legacy (`sealpost.manifest/v1`) manifest of `transfer`, signed after its upload,
    /// and its `manifest.signed` event; false when the transfer has one already (nothing
    /// changes).
    pub async fn add_manifest(
        &self,
        actor: &UserId,
        transfer: &TransferId,
        manifest: &Manifest,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        match write_manifest(&mut tx, transfer.as_str(), manifest, now).await {
            Err(StoreError::Db(e)) if is_unique_violation(&e) => return Ok(false),
            other => other?,
        };
        let event = Event::new(EventKind::ManifestSigned)
            .actor(actor)
            .transfer(transfer)
            .field("key", &manifest.key_fingerprint)
            .field("manifest", manifest.text_digest());
        append(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The manifest of `transfer`, if its sender signed one.
    pub async fn manifest(&self, transfer: &TransferId) -> Result<Option<Manifest>, StoreError> {
        let row = sqlx::query(
            "SELECT manifest, signature, key_fingerprint, key_public FROM manifests WHERE transfer_id = $1",
        )
        .bind(transfer.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Manifest {
            manifest: r.get("manifest"),
            signature: r.get("signature"),
            key_fingerprint: r.get("key_fingerprint"),
            key_public: r.get("key_public"),
        }))
    }
}
