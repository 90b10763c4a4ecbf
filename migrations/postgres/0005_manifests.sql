-- Signed sender manifests; see migrations/sqlite/0005_manifests.sql.
CREATE TABLE manifests (
    transfer_id     TEXT PRIMARY KEY REFERENCES transfers (id),
    manifest        TEXT NOT NULL,
    signature       TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    key_public      TEXT NOT NULL,
    signed_at       BIGINT NOT NULL
);
