-- Browser sessions. The cookie carries 256 random bits; only their SHA-256 is kept here. A session
-- records how its user authenticated (`method`): `token` (an API token, named by `token_id`, whose
-- revocation or expiry ends the session) now, `oidc` (single sign-on) later. It ends at the first
-- of: sign-out, `idle_timeout` without a request (from `last_seen_at`), `expires_at` (absolute),
-- or its token's end; `ended_at` and `end_reason` say when and why, once it is noticed.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    secret_hash   BLOB NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id),
    method        TEXT NOT NULL CHECK (method IN ('token', 'oidc')),
    token_id      TEXT REFERENCES api_tokens (id),
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    end_reason    TEXT,
    CHECK (method != 'token' OR token_id IS NOT NULL)
);
CREATE INDEX sessions_token ON sessions (token_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_user ON sessions (user_id);
