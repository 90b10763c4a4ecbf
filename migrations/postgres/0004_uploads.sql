-- Resumable (tus 1.0) uploads; see migrations/sqlite/0004_uploads.sql.
CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    sender_id       TEXT NOT NULL REFERENCES users (id),
    length          BIGINT NOT NULL,
    received        BIGINT NOT NULL DEFAULT 0,
    header_checked  BOOLEAN NOT NULL DEFAULT FALSE,
    request         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    completed_at    BIGINT
);
CREATE INDEX uploads_expiry ON uploads (expires_at);
