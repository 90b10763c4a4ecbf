-- Every audit event gets its position in the transparency log: 0, 1, 2, … with no gaps.
-- Appends run inside write transactions that hold the writers' advisory lock, so MAX(idx) + 1 is
-- safe across gateways.
ALTER TABLE audit_events ADD COLUMN idx BIGINT;
CREATE UNIQUE INDEX audit_events_idx ON audit_events (idx);
