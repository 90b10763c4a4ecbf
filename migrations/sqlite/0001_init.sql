-- sealpost schema v1. Times are Unix milliseconds (UTC); ids are server-made hex strings.
-- Nothing here holds plaintext, private keys, file names or token values (tokens are SHA-256 hashes).

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('contractor', 'agency', 'compliance', 'operator')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('sender', 'recipient', 'compliance', 'admin')),
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE recipient_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    recipient    TEXT NOT NULL,
    stanza_type  TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    added_at     INTEGER NOT NULL,
    removed_at   INTEGER
);
CREATE UNIQUE INDEX recipient_keys_active ON recipient_keys (user_id, fingerprint) WHERE removed_at IS NULL;

CREATE TABLE transfers (
    id              TEXT PRIMARY KEY,
    sender_id       TEXT NOT NULL REFERENCES users (id),
    size            INTEGER NOT NULL,
    digest          TEXT NOT NULL,
    armored         INTEGER NOT NULL,
    classification  TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    recalled_at     INTEGER,
    -- The blob exists while this is set; the sweeper clears it after deleting the blob.
    object_key      TEXT,
    purged_at       INTEGER
);
CREATE INDEX transfers_sender ON transfers (sender_id);

CREATE TABLE links (
    id            TEXT PRIMARY KEY,
    transfer_id   TEXT NOT NULL REFERENCES transfers (id),
    recipient_id  TEXT NOT NULL REFERENCES users (id),
    token_hash    BLOB NOT NULL UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('issued', 'leased', 'used', 'revoked', 'expired')),
    expires_at    INTEGER NOT NULL,
    lease_id      TEXT,
    used_at       INTEGER
);
CREATE INDEX links_transfer ON links (transfer_id);
CREATE INDEX links_recipient ON links (recipient_id, state);
CREATE INDEX links_expiry ON links (state, expires_at);

-- Append-only: every change and every refusal, written in the same transaction as what it records.
-- `entry` is the canonical line-based text of the event (the future transparency-log leaf).
CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    event        TEXT NOT NULL,
    actor_id     TEXT,
    transfer_id  TEXT,
    subject_id   TEXT,
    code         TEXT,
    entry        TEXT NOT NULL
);
CREATE INDEX audit_transfer ON audit_events (transfer_id);
CREATE INDEX audit_actor ON audit_events (actor_id);
CREATE INDEX audit_subject ON audit_events (subject_id);
CREATE INDEX audit_at ON audit_events (at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
