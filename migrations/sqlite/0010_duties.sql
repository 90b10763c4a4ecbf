-- Background work that one gateway at a time should do (the sweeper): the gateway doing it holds
-- the duty until `until`, renewing it as it goes; when it stops, another takes the duty over.
CREATE TABLE duties (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   BIGINT NOT NULL
);
