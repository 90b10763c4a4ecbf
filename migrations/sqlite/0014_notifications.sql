-- Notifications by email and webhooks.
--
-- `outbox`: what the gateway owes people and organisations, written in the same transaction as
-- the audit event that causes it, so nothing is lost and a transfer never waits for mail. One row
-- per message: an email to one user (`user_id`, address looked up when sent) or a delivery to one
-- webhook endpoint (`webhook_id`). `data` is the message's facts as JSON (transfer id, parties'
-- ORG/NAME, classification, expiry): never a link token, a file name or anything from inside a
-- bundle. A gateway claims due rows (`claimed_by`, until `claimed_until`) inside a write
-- transaction, so two gateways sharing a database never send one row twice; a row sent is
-- deleted with its `notification.sent` event; a failure moves `next_at` on with back-off.
CREATE TABLE outbox (
    id             TEXT PRIMARY KEY,
    channel        TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    kind           TEXT NOT NULL,
    user_id        TEXT REFERENCES users (id),
    webhook_id     TEXT,
    org_id         TEXT,
    transfer_id    TEXT,
    data           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_at        INTEGER NOT NULL,
    claimed_by     TEXT,
    claimed_until  INTEGER,
    last_error     TEXT
);
CREATE INDEX outbox_due ON outbox (next_at);

-- The optional kinds a user has turned off (one row each); every other kind is on.
CREATE TABLE notification_opt_outs (
    user_id  TEXT NOT NULL REFERENCES users (id),
    kind     TEXT NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- Organisations' webhook endpoints. `secret` is the signing secret sealed with a key derived
-- from the gateway's signing key (XChaCha20-Poly1305, the endpoint's id as associated data), so
-- a dump of the database alone does not let anyone forge deliveries. Removed endpoints keep
-- their row (`removed_at`) for the audit trail's sake; their undelivered rows are dropped.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    url         TEXT NOT NULL,
    secret      BLOB NOT NULL,
    created_by  TEXT REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    removed_at  INTEGER
);
CREATE INDEX webhooks_org ON webhooks (org_id);

-- Each gateway says whether it has a mail server (`smtp_url`): email rows are queued only while
-- a gateway sharing the database can send them.
ALTER TABLE gateways ADD COLUMN mail INTEGER NOT NULL DEFAULT 0;

-- The "expires soon" reminder is written once per link.
ALTER TABLE links ADD COLUMN reminded_at INTEGER;
