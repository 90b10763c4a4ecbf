-- The transparency log moves into the database, so that every gateway sharing it serves the same
-- log and one sequencer at a time writes it.
--
-- `log_state` is one row: the published checkpoint and its size, and the sequencer's lease. A
-- gateway becomes the sequencer by taking the lease when it has run out, which adds one to
-- `fence`; a checkpoint is written only where `fence` is still the writer's, in the same
-- transaction as the tiles it covers, so a sequencer that lost its lease cannot publish anything.
-- `keys_version` changes whenever the active log keys do, so every gateway reloads them.
CREATE TABLE log_state (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    origin        TEXT NOT NULL,
    size          BIGINT NOT NULL,
    checkpoint    TEXT NOT NULL,
    written_at    BIGINT NOT NULL,
    fence         BIGINT NOT NULL DEFAULT 0,
    holder        TEXT,
    lease_until   BIGINT NOT NULL DEFAULT 0,
    keys_version  BIGINT NOT NULL DEFAULT 0
);

-- Hash tiles (C2SP tlog-tiles), the widest written so far of each: a partial tile of width W is
-- the first W hashes of a wider one. Entry bundles are not kept: they are read from audit_events.
CREATE TABLE log_tiles (
    level  BIGINT NOT NULL,
    idx    BIGINT NOT NULL,
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Log signing keys beyond the base key (which comes from the gateway's signing key): sealed with
-- a key derived from the signing key, so any gateway of the deployment can sign and a copy of the
-- database alone cannot. `position` orders the active keys, oldest first; NULL once retired.
CREATE TABLE log_keys (
    id        TEXT PRIMARY KEY,
    sealed    BYTEA,
    position  BIGINT
);
