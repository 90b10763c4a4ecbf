//! Signed sender manifests: `GET /api/v1/transfers/{id}/manifest` (the sender, its recipients,
//! compliance and admins) and the legacy `POST /api/v1/transfers/{id}/manifest`.
//!
//! A sender signs an upload with a `sealpost.manifest/v2` sent with it (see
//! [`crate::lifecycle`]); that is what policy counts as signed, and it is kept with the transfer
//! when it is committed. The legacy route still takes a `sealpost.manifest/v1` (`transfer ID`,
//! `digest sha256:HEX`, one `recipient ORG/NAME` line per recipient, sorted) for a transfer
//! uploaded unsigned, signed afterwards by the sender with one of their registered
//! `sealpost-signing` keys: recipients can check it, but the transfer stays unsigned for policy
//! (policy decided when it was uploaded), and a transfer signed at upload takes no second one.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Verifier as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::error::{ApiError, ApiJson};
use crate::directory::{SIGNING_TYPE, signing_public_key};
use crate::gateway::Gateway;
use crate::ids::TransferId;
use crate::model::{Role, UserRef};
use crate::store::{Manifest, ManifestSubject};
use crate::wire::manifests::{ManifestKey, ManifestSigned, SignManifest, SignedManifest};
use crate::wire::{ErrorBody, ErrorCode};

/// The manifest routes.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(sign, show))
}

fn unprocessable(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// The legacy manifest text a transfer's sender must sign.
fn expected(id: &TransferId, subject: &ManifestSubject) -> String {
    crate::manifest::ManifestV1::text(id.as_str(), &subject.digest, &subject.recipients)
}

/// The transfer's manifest subject, or 404 for an unknown id.
async fn subject(gw: &Gateway, id: &str) -> Result<(TransferId, ManifestSubject), ApiError> {
    let not_found = || ApiError::not_found(format!("there is no transfer `{id}`"));
    let tid = TransferId::parse(id).ok_or_else(not_found)?;
    let subject = gw.store.manifest_subject(&tid).await?;
    Ok((tid, subject))
}

/// Attach a legacy (`sealpost.manifest/v1`) signed manifest to a transfer uploaded unsigned.
///
/// The transfer's sender, once, with one of their registered `sealpost-signing` keys. Legacy:
/// sign before release instead, with the `sealpost.manifest/v2` sent with the upload
/// (`POST /api/v1/transfers` headers or tus metadata). A manifest added here lets recipients
/// check the sender, but does not make the transfer count as signed for policy.
#[utoipa::path(post, path = "/api/v1/transfers/{id}/manifest", operation_id = "sign_manifest", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    request_body = SignManifest,
    responses(
        (status = 201, description = "Verified and kept.", body = ManifestSigned),
        (status = 400, description = "`bad_request`: the body is not a `SignManifest`.", body = ErrorBody),
        (status = 404, description = "`not_found`: the caller sent no such transfer.", body = ErrorBody),
        (status = 409, description = "`manifest_exists`: the transfer's manifest is signed already (at its upload, or here).", body = ErrorBody),
        (status = 422, description = "`unknown_signing_key`: the key is none of the sender's signing keys; `manifest_mismatch`: the text is not the `sealpost.manifest/v1` of this transfer, its digest and its recipients; `sender_signature_invalid`: the signature does not verify.", body = ErrorBody),
    ))]
async fn sign(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SignManifest>,
) -> Result<(StatusCode, Json<ManifestSigned>), ApiError> {
    let (tid, subject) = subject(&gw, &id).await?;
    if subject.sender_id != caller.0.id {
        return Err(ApiError::not_found(format!("there is no transfer `{id}`")));
    }
    let exists = || ApiError::new(ErrorCode::ManifestExists, "this transfer's manifest is signed already");
    if gw.store.manifest(&tid).await?.is_some() {
        return Err(exists());
    }
    let keys = gw.store.list_keys(&caller.0.user).await?;
    let key = keys.iter().find(|k| k.stanza_type == SIGNING_TYPE && k.fingerprint == req.key).ok_or_else(|| {
        unprocessable(
            ErrorCode::UnknownSigningKey,
            format!("`{}` is none of your signing keys: register it with `sealpost keys add`", req.key),
        )
    })?;
    if req.manifest != expected(&tid, &subject) {
        return Err(unprocessable(
            ErrorCode::ManifestMismatch,
            "the manifest is not the `sealpost.manifest/v1` of this transfer, its digest and its recipients: sign that text, or sign future uploads before release with `sealpost send --signing-key FILE`",
        ));
    }
    let public = signing_public_key(&key.recipient)
        .ok_or_else(|| ApiError::internal(&format!("stored signing key {} does not parse", key.fingerprint)))?;
    let invalid = || unprocessable(ErrorCode::SenderSignatureInvalid, "the signature does not verify under that key");
    let bytes = STANDARD.decode(req.signature.trim()).map_err(|_| invalid())?;
    let signature = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| invalid())?;
    public.verify(req.manifest.as_bytes(), &signature).map_err(|_| invalid())?;
    let manifest = Manifest {
        manifest: req.manifest,
        signature: STANDARD.encode(signature.to_bytes()),
        key_fingerprint: key.fingerprint.clone(),
        key_public: key.recipient.clone(),
    };
    if !gw.store.add_manifest(&caller.0.id, &tid, &manifest, gw.clock.now()).await? {
        return Err(exists());
    }
    Ok((StatusCode::CREATED, Json(ManifestSigned { id: tid.to_string(), key: manifest.key_fingerprint })))
}

/// A transfer's signed manifest, to verify against the sender's key.
///
/// The transfer's sender and recipients, compliance officers and administrators. A
/// `sealpost.manifest/v2` signed with the upload (its `upload.accepted` log entry names the key
/// and the manifest's SHA-256), or a legacy `sealpost.manifest/v1` added afterwards.
#[utoipa::path(get, path = "/api/v1/transfers/{id}/manifest", operation_id = "show_manifest", tag = "transfers",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The transfer's id.")),
    responses(
        (status = 200, description = "The manifest, its signature and the key that made it.", body = SignedManifest),
        (status = 404, description = "`not_found`: there is no such transfer the caller may see, or its sender signed no manifest.", body = ErrorBody),
    ))]
async fn show(
    State(gw): State<Arc<Gateway>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SignedManifest>, ApiError> {
    let (tid, subject) = subject(&gw, &id).await?;
    let me = &caller.0.id;
    let involved = subject.sender_id == *me || subject.recipient_ids.contains(me);
    if !involved && !matches!(caller.0.role, Role::Admin | Role::Compliance) {
        return Err(ApiError::not_found(format!("there is no transfer `{id}`")));
    }
    let manifest = gw
        .store
        .manifest(&tid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("the sender did not sign a manifest for transfer `{id}`")))?;
    let sender: UserRef = subject.sender.parse()?;
    Ok(Json(SignedManifest {
        manifest: manifest.manifest,
        signature: manifest.signature,
        key: ManifestKey { fingerprint: manifest.key_fingerprint, public: manifest.key_public },
        sender,
    }))
}
