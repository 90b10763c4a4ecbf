-- A completed resumable upload's answer (the links, with their one-time tokens), for its sender to
-- read again for an hour, from any gateway and after a restart. `sealed` is the answer encrypted
-- with XChaCha20-Poly1305 under a key derived from the gateway signing key, with the upload and
-- its sender as associated data (src/lifecycle/sealed_answer.rs): a dump of the database alone
-- reveals no token. The sender is the upload's; the answer goes with the upload's record, and the
-- sweeper deletes it at `expires_at`.
CREATE TABLE upload_answers (
    upload_id   TEXT PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    sealed      BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX upload_answers_expiry ON upload_answers (expires_at);
