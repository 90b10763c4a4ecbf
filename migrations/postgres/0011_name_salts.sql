-- Key transparency with erasure: log entries name a key's owner (and the signer of a delivery)
-- by a keyed commitment, HMAC-SHA256(name_salt, "ORG/NAME"), never by the name. The salt is made
-- (32 random bytes, hex) when a user's name first goes into the log; erasing a user clears it,
-- after which the commitments in the log no longer point at anyone.
ALTER TABLE users ADD COLUMN name_salt TEXT;
