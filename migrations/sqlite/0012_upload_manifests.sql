-- The sender's signed manifest (`sealpost.manifest/v2`) that came with a resumable upload: its
-- text, the base64 Ed25519 signature and the signing key's fingerprint, all three or none. It is
-- checked again at every request (the key may have been removed meanwhile) and, with the
-- upload's last byte, written to `manifests` with the transfer. NULL: an unsigned upload.
ALTER TABLE uploads ADD COLUMN manifest TEXT;
ALTER TABLE uploads ADD COLUMN manifest_signature TEXT;
ALTER TABLE uploads ADD COLUMN manifest_key TEXT;
