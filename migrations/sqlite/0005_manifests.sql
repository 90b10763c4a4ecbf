-- Signed sender manifests: one per transfer at most, signed with one of the sender's
-- `sealpost-signing` keys (named by fingerprint; the key's row stays when it is removed later).
CREATE TABLE manifests (
    transfer_id     TEXT PRIMARY KEY REFERENCES transfers (id),
    manifest        TEXT NOT NULL,
    signature       TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    key_public      TEXT NOT NULL,
    signed_at       INTEGER NOT NULL
);
