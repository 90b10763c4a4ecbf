-- Policy: routes between organisations, and four-eyes release of held transfers.

CREATE TABLE routes (
    from_org    TEXT NOT NULL REFERENCES orgs (id),
    to_org      TEXT NOT NULL REFERENCES orgs (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (from_org, to_org)
);

-- `released`: links work; `held`: waiting for a second person's approval; `rejected`: refused
-- by an approver (links revoked, ciphertext deleted).
ALTER TABLE transfers ADD COLUMN status TEXT NOT NULL DEFAULT 'released'
    CHECK (status IN ('held', 'released', 'rejected'));
ALTER TABLE transfers ADD COLUMN decided_by TEXT REFERENCES users (id);
ALTER TABLE transfers ADD COLUMN decided_at INTEGER;
