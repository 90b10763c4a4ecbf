//! Signed sender manifests on the wire (the texts are in [`crate::manifest`]). A sender signs an
//! upload with a `sealpost.manifest/v2` sent with it (sender, digest, classification, expiry in
//! seconds, recipients); the legacy `POST /api/v1/transfers/{id}/manifest` takes a
//! `sealpost.manifest/v1` (`transfer ID`, `digest sha256:HEX`, sorted `recipient ORG/NAME`
//! lines) for a transfer uploaded unsigned. Either way the sender signs exactly the text's bytes
//! with one of their registered `sealpost-signing` keys (Ed25519).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::UserRef;

/// `POST /api/v1/transfers/{id}/manifest` (legacy): the sender's signed `sealpost.manifest/v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "manifest": "sealpost.manifest/v1\ntransfer 4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b\ndigest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nrecipient hmpps/alice\n",
    "signature": "AHPsJm1PtK2/PRBKpxT58RAy/Yq22IKfxAtSyG9khdeSjMLr1GRvP+PzdL4R2QW/S+J1+obziJ2CqffcXkHdMg==",
    "key": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
}))]
pub struct SignManifest {
    /// The manifest text, exactly as the transfer needs it.
    pub manifest: String,
    /// Base64 of the 64-byte Ed25519 signature over the manifest's bytes.
    pub signature: String,
    /// The fingerprint of the sender's registered signing key that made it.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub key: String,
}

/// The answer to a signed manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b",
    "key": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
}))]
pub struct ManifestSigned {
    /// The transfer.
    pub id: String,
    /// The fingerprint of the key that signed it.
    pub key: String,
}

/// The signing key of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "fingerprint": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",
    "public": "sealpost-signing1fVQK-oOW3xl0qeGDIwPODCjsQCGAs3VfjZCAg-UrOuQ"
}))]
pub struct ManifestKey {
    /// Its fingerprint (`sha256:…`).
    pub fingerprint: String,
    /// Its public key string (`sealpost-signing…`), as it was registered.
    pub public: String,
}

/// `GET /api/v1/transfers/{id}/manifest`: the sender's signed manifest, for anyone to verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "manifest": "sealpost.manifest/v2\nsender acme/bob\ndigest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nclassification OFFICIAL-SENSITIVE\nexpires 259200\nrecipient hmpps/alice\n",
    "signature": "AHPsJm1PtK2/PRBKpxT58RAy/Yq22IKfxAtSyG9khdeSjMLr1GRvP+PzdL4R2QW/S+J1+obziJ2CqffcXkHdMg==",
    "key": {
        "fingerprint": "sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",
        "public": "sealpost-signing1fVQK-oOW3xl0qeGDIwPODCjsQCGAs3VfjZCAg-UrOuQ"
    },
    "sender": "acme/bob"
}))]
pub struct SignedManifest {
    /// The manifest text: a `sealpost.manifest/v2` signed with the upload, or a legacy
    /// `sealpost.manifest/v1` signed afterwards.
    pub manifest: String,
    /// Base64 of the Ed25519 signature over the manifest's bytes.
    pub signature: String,
    /// The key that signed it.
    pub key: ManifestKey,
    /// The transfer's sender, whose key it is.
    pub sender: UserRef,
}
