//! The client's domain: bundles, identities and keys, the encrypting and decrypting streams,
//! and the checks a recipient runs before it decrypts. No HTTP and no command line here:
//! `cli::send`, `cli::fetch` and `cli::keygen` drive these over the gateway's API.
//!
//! A transfer's plaintext is a bundle ([`bundle`]): a tar stream whose first member marks it as
//! a sealpost bundle and whose last member is a manifest of names, sizes and SHA-256 digests.
//! Everything, names included, is inside the age encryption; the gateway sees none of it.

/// The bundle format: writing and safe extraction.
pub mod bundle;
/// Identities and signing keys: generation, files, loading.
pub mod keys;
/// The upload receipt check: the log's `upload.accepted` entry names this transfer and digest.
pub mod receipts;
/// What a resumable send keeps on disk: the sealed ciphertext and the upload's URL.
pub mod resume;
/// Encrypting to recipients, the header check before the last byte, digests.
pub mod seal;
