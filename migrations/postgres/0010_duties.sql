-- Background work that one gateway at a time should do (the sweeper): the gateway doing it holds
-- the duty until `until`, renewing it as it goes; when it stops, another takes the duty over.
CREATE TABLE duties (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   BIGINT NOT NULL
);

-- Gateways wake each other instead of waiting for their next poll: every new audit event tells
-- the log's sequencer there is work (`sealpost_events`; notifications with the same payload in one
-- transaction are delivered once), a policy reload tells every gateway to follow it
-- (`sealpost_policy`), and a new checkpoint tells the gateways waiting for one
-- (`sealpost_checkpoint`). Notifications are delivered at commit, so nobody wakes for a write
-- that rolled back. The polls stay, for a notification lost while a listener reconnects.
CREATE FUNCTION sealpost_notify_event() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('sealpost_events', '');
    IF NEW.event = 'policy.changed' THEN
        PERFORM pg_notify('sealpost_policy', NEW.idx::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_notify AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION sealpost_notify_event();

CREATE FUNCTION sealpost_notify_checkpoint() RETURNS trigger AS $$
BEGIN
    IF NEW.size <> OLD.size THEN
        PERFORM pg_notify('sealpost_checkpoint', NEW.size::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER log_state_notify AFTER UPDATE ON log_state
    FOR EACH ROW EXECUTE FUNCTION sealpost_notify_checkpoint();
