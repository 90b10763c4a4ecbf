//! The transparency log's pure core: Merkle maths, tiles, signed notes, checkpoints,
//! cosignatures, proofs and policies, in the standard formats so that anyone's tools can
//! verify sealpost's log (DESIGN.md section 6). No I/O: the sequencer, the `/log/` routes,
//! `sealpost receipt verify`, `sealpost log verify` and the witness build on this.
//!
//! | module | spec |
//! |---|---|
//! | [`merkle`] | RFC 6962 hashing, RFC 9162 sections 2.1.3 and 2.1.4 proofs |
//! | [`frontier`] | the right edge of the tree, for appending (RFC 9162 section 2.1.1 tree shape) |
//! | [`tiles`] | <https://c2sp.org/tlog-tiles> |
//! | [`note`] | <https://c2sp.org/signed-note>, Go `sumdb/note` key strings |
//! | [`checkpoint`] | <https://c2sp.org/tlog-checkpoint> |
//! | [`cosignature`] | <https://c2sp.org/tlog-cosignature> (Ed25519, v1) |
//! | [`proof`] | <https://c2sp.org/tlog-proof> |
//! | [`quorum`] | <https://c2sp.org/tlog-policy> (which keys and how many witnesses a verifier trusts) |

/// Checkpoints: origin, size and root hash as signed-note text.
pub mod checkpoint;
/// Witness cosignatures (Ed25519, `cosignature/v1`).
pub mod cosignature;
/// Appending leaves and computing roots in `O(log n)`.
pub mod frontier;
/// Merkle tree hashing, proof generation and verification.
pub mod merkle;
/// Signed notes and Ed25519 note keys.
pub mod note;
/// Offline-verifiable inclusion proofs (receipts).
pub mod proof;
/// Trust policies: log keys, witness keys, quorum.
pub mod quorum;
/// Tile paths, tile and entry bundle encodings, reading hashes from tiles.
pub mod tiles;

pub use merkle::Hash;
