-- A completed resumable upload's answer, sealed; see migrations/sqlite/0009_upload_answers.sql.
CREATE TABLE upload_answers (
    upload_id   TEXT PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    sealed      BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX upload_answers_expiry ON upload_answers (expires_at);
