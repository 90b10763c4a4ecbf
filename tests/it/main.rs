//! The integration tests, as one test binary so the sealpost crate is linked once: each module
//! was a test crate of its own. `common` is the harness (the real gateway on 127.0.0.1:0 with a
//! temporary data directory); test vectors and CLI transcripts stay as data under `tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

mod accounts;
mod ambiguity;
mod backends_harness;
mod backup;
mod cli_transcripts;
mod client;
mod crash;
mod envelope_interop;
mod envelope_vectors;
mod first_admin;
mod hybrid_vectors;
mod links;
mod log;
mod log_store;
mod log_verify;
mod metrics;
mod migrate;
mod notifications;
mod policies;
mod pq_interop;
mod profiles;
mod rate_limits;
mod readiness;
mod restart;
mod s3_blobs;
mod scale_out;
mod sender_signing;
mod signed_delivery;
mod slow_clients;
mod sso_store;
mod storage_faults;
mod sweeper;
mod tagged_recipients;
mod tlog_vectors;
mod transfers;
mod tus;
mod web;
mod webhooks;
mod witness;
