-- Policy: routes between organisations, and four-eyes release of held transfers.

CREATE TABLE routes (
    from_org    TEXT NOT NULL REFERENCES orgs (id),
    to_org      TEXT NOT NULL REFERENCES orgs (id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (from_org, to_org)
);

ALTER TABLE transfers ADD COLUMN status TEXT NOT NULL DEFAULT 'released'
    CHECK (status IN ('held', 'released', 'rejected'));
ALTER TABLE transfers ADD COLUMN decided_by TEXT REFERENCES users (id);
ALTER TABLE transfers ADD COLUMN decided_at BIGINT;
