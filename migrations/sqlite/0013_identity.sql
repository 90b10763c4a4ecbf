-- People, not tokens: users reached through an organisation's identity provider.
--
-- `users.email` (lower-cased, unique when set) is how a person signed in at a provider is first
-- matched to a user: the provider's verified `email` claim. The match is then kept in
-- `identities` by the provider's (issuer, subject), so a later change of address at the provider
-- cannot move the person onto someone else's account.
ALTER TABLE users ADD COLUMN email TEXT;
CREATE UNIQUE INDEX users_email ON users (email) WHERE email IS NOT NULL;

CREATE TABLE identities (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    provider         TEXT NOT NULL,
    issuer           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_sign_in_at  INTEGER NOT NULL,
    UNIQUE (issuer, subject)
);
CREATE INDEX identities_user ON identities (user_id);

-- A single sign-on session (`method = 'oidc'`) names its identity and keeps how the person
-- authenticated at the provider: `amr` (space-separated), `acr`, and whether that counted as
-- multi-factor under the provider's configuration (`mfa`, 0 or 1). Policies see these.
ALTER TABLE sessions ADD COLUMN identity_id TEXT REFERENCES identities (id);
ALTER TABLE sessions ADD COLUMN amr TEXT;
ALTER TABLE sessions ADD COLUMN acr TEXT;
ALTER TABLE sessions ADD COLUMN mfa INTEGER NOT NULL DEFAULT 0;

-- API tokens are of two kinds: `service` (issued by an administrator, `created_by`, for service
-- accounts and scripts) and `sso` (short-lived, issued to a person's CLI through the device flow,
-- carrying that sign-in's authentication context like a session).
ALTER TABLE api_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'service' CHECK (kind IN ('service', 'sso'));
ALTER TABLE api_tokens ADD COLUMN created_by TEXT REFERENCES users (id);
ALTER TABLE api_tokens ADD COLUMN identity_id TEXT REFERENCES identities (id);
ALTER TABLE api_tokens ADD COLUMN amr TEXT;
ALTER TABLE api_tokens ADD COLUMN acr TEXT;
ALTER TABLE api_tokens ADD COLUMN mfa INTEGER NOT NULL DEFAULT 0;

-- Browser sign-ins under way at a provider: found by the SHA-256 of the `state` sent there,
-- bound to the browser by the SHA-256 of a cookie's secret, used once, short-lived. The nonce
-- and the PKCE verifier are single-use secrets of this one attempt.
CREATE TABLE sso_logins (
    state_hash     BLOB PRIMARY KEY,
    browser_hash   BLOB NOT NULL,
    provider       TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX sso_logins_expiry ON sso_logins (expires_at);
