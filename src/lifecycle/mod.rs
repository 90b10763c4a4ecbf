//! The life of a transfer, below HTTP and once, whatever the door (the one-shot
//! `POST /api/v1/transfers`, the resumable tus endpoints, the browser pages):
//!
//! ```text
//!   check     who uploads, to whom, for how long: caller, recipients, keys, the
//!             sender's signed manifest (signing), policy                           → Checked
//!   receive   every byte through the intake pipeline (hash, inspect, stage)       → Inspected
//!   commit    the signed digest, release decision (four eyes), blob, rows (the
//!             manifest with them), audit event, log entry, receipt
//!   decide    recall, approve / reject (policy Permit first)
//!   collect   the link side: lease (policy Permit first), stream, complete or release
//! ```
//!
//! Each step is a plain async function over the [`Gateway`](crate::gateway::Gateway) and the
//! caller's [`Principal`](crate::model::Principal); HTTP handlers extract, call one of them and
//! map the answer. Failures are [`LifecycleError`]s, each with its stable wire code.

mod check;
mod collect;
mod commit;
mod decide;
mod error;
mod resumable;
mod sealed_answer;
mod signing;

pub use check::{Checked, TransferRequest, check_request};
pub use collect::{ByteRange, Download, LinkRef, RangeRefusal, inbox, redeem};
pub use commit::{Committed, upload};
pub use decide::{decide, recall, reload_policies, transfer_view};
pub use error::{LifecycleError, RequestError};
pub use resumable::{
    Appended, NewUpload, Uploads, create_upload, lookup_upload, patch_upload, terminate_upload, upload_offset,
    upload_status,
};
pub use signing::{ManifestParts, ManifestRefusal, SignedUpload};

pub use crate::intake::UploadRules;
