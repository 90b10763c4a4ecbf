-- Resumable (tus 1.0) uploads. The bytes received so far live in `DATA/uploads/{id}.part`;
-- `received` counts the bytes durably on disk (the tus `Upload-Offset`). `request` holds the
-- addressing (`to`, `expires`, `classification`) as a query string: never a file name. The
-- transfer made when the upload completes takes the upload's id.
CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    sender_id       TEXT NOT NULL REFERENCES users (id),
    length          INTEGER NOT NULL,
    received        INTEGER NOT NULL DEFAULT 0,
    header_checked  INTEGER NOT NULL DEFAULT 0,
    request         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    completed_at    INTEGER
);
CREATE INDEX uploads_expiry ON uploads (expires_at);
