//! The typed wire: every request and response body the gateway and its clients exchange, as
//! serde types shared by both sides. The server serialises them, the CLI deserialises the same
//! types, and the OpenAPI contract (`GET /api/v1/openapi.json`, `docs/openapi.json`) is generated
//! from them, so a renamed field, status or error code no longer compiles on one side only.
//!
//! Nothing here knows HTTP frameworks or the database: it is vocabulary. One file per concern:
//! accounts, the key directory, transfers (with their manifests and delivery reports), routes
//! and policy, the audit trail, the transparency log's receipts and keys.

pub mod accounts;
pub mod audit;
pub mod deliveries;
mod digest;
pub mod directory;
mod error;
pub mod health;
pub mod keys;
pub mod log;
pub mod manifests;
pub mod notifications;
pub mod routes;
pub mod sent;
pub mod sso;
pub mod transfers;

pub use digest::{Digest, DigestParseError};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use transfers::TransferStatus;
