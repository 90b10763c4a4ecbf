-- The first administrator's life cycle (issue 15): which API tokens are provisional. The token
-- the first start writes to `DATA/admin.token` is `bootstrap`: it expires (config
-- `bootstrap_token_lifetime`), and `sealpost admin claim` exchanges it for a named administrator
-- and revokes it. A token `sealpost admin recover` issued on the server is `recovery`. Tokens
-- not listed here are ordinary (`api_tokens.kind`).
CREATE TABLE provisional_tokens (
    token_id TEXT PRIMARY KEY REFERENCES api_tokens (id),
    purpose  TEXT NOT NULL CHECK (purpose IN ('bootstrap', 'recovery'))
);

-- A deployment made before this version: its first token of `sealpost/admin` is its bootstrap
-- token (it keeps no expiry, so that no one is locked out by an upgrade; it can be claimed).
INSERT INTO provisional_tokens (token_id, purpose)
SELECT t.id, 'bootstrap' FROM api_tokens t
JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id
WHERE o.name = 'sealpost' AND u.name = 'admin' AND t.created_by IS NULL AND t.kind = 'service'
ORDER BY t.created_at, t.id LIMIT 1;
