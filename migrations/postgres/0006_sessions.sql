-- Browser sessions; see migrations/sqlite/0006_sessions.sql.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    secret_hash   BYTEA NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id),
    method        TEXT NOT NULL CHECK (method IN ('token', 'oidc')),
    token_id      TEXT REFERENCES api_tokens (id),
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT,
    CHECK (method != 'token' OR token_id IS NOT NULL)
);
CREATE INDEX sessions_token ON sessions (token_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_user ON sessions (user_id);
