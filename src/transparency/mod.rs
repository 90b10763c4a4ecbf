//! The transparency log: every audit event becomes a leaf of an append-only Merkle tree whose
//! signed checkpoints anyone can check, so nobody can quietly rewrite the trail.
//!
//! ```text
//!   tlog     pure maths, no I/O: RFC 6962 trees and proofs, C2SP signed notes, checkpoints,
//!            cosignatures, tiles, tlog-proof receipts, the witness quorum (tlog-policy)
//!   writer   the log on disk (tlog-tiles layout) and its one sequencer, fed from the store
//!   verify   offline verification: entries, tiles, consistency, lifecycle, receipts
//!   witness  a C2SP tlog-witness: cosigns only checkpoints consistent with what it saw
//! ```
//!
//! The gateway writes through `writer`; `sealpost log verify`, `sealpost receipt verify` and the
//! client's checks read through `verify`; both rest on `tlog`.

pub mod tlog;
pub mod verify;
pub mod witness;
pub mod writer;
