-- The sender's signed manifest of a resumable upload; see migrations/sqlite/0012_upload_manifests.sql.
ALTER TABLE uploads ADD COLUMN manifest TEXT;
ALTER TABLE uploads ADD COLUMN manifest_signature TEXT;
ALTER TABLE uploads ADD COLUMN manifest_key TEXT;
