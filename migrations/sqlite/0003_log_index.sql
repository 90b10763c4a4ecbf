-- Every audit event gets its position in the transparency log: 0, 1, 2, … with no gaps.
-- Appends run inside write transactions that hold SQLite's write lock, so MAX(idx) + 1 is safe.

DROP TRIGGER audit_events_no_update;

ALTER TABLE audit_events ADD COLUMN idx INTEGER;
UPDATE audit_events SET idx = (SELECT COUNT(*) FROM audit_events AS earlier WHERE earlier.seq < audit_events.seq);
CREATE UNIQUE INDEX audit_events_idx ON audit_events (idx);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
