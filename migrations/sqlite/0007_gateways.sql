-- Several gateways may share one database. Each records itself here (its id is kept in its own
-- data directory) and says it is alive every few seconds. A download lease names the gateway that
-- serves it, so a gateway that restarts gives back only its own leases, and any gateway gives back
-- the leases of one that has stopped saying it is alive.
CREATE TABLE gateways (
    id          TEXT PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL
);
ALTER TABLE links ADD COLUMN lease_gateway TEXT;
-- Gateways follow each other's policy reloads by looking for the latest `policy.changed` event.
CREATE INDEX audit_event_kind ON audit_events (event, idx);
-- One request at a time writes a resumable upload, whichever gateway it reaches: the gateway
-- serving it holds this claim, renewed as the bytes arrive and given back at the end; a claim
-- whose gateway died runs out at `claimed_until`.
ALTER TABLE uploads ADD COLUMN claimed_by TEXT;
ALTER TABLE uploads ADD COLUMN claimed_until INTEGER;
