//! sealpost: a secure data-transfer gateway.
//!
//! Contractors upload bundles already encrypted with age to each recipient's registered key;
//! the gateway inspects them without any key, refuses everything else, and hands each
//! recipient an expiring one-time link. Every step is an audit event written in the same
//! transaction as the change it records. The server never holds plaintext, recipients' private
//! keys or file names.
//!
//! # Map
//!
//! Domain modules know nothing of HTTP; `api` (axum) and `cli` (clap) sit on top and never import
//! each other. The upload path goes down once: handler, lifecycle, then intake (envelope, blobs),
//! policy, store and the transparency log, with no step returning to the HTTP layer.
//!
//! ```text
//!   cli ──(HTTP, wire types)──► api ──► lifecycle ──► intake ──► envelope (keyless inspection, pure)
//!    │                          │         │             └──────► blobs (staged → committed)
//!    └─► client (bundle, seal,  │         ├──► policy (Cedar: Approval, Release, Permit)
//!        open, receipt checks)  │         ├──► store (all SQL)
//!                               │         └──► transparency::writer (sequencer, receipts)
//!                               └──► wire (bodies, ErrorCode, Digest: shared with cli)
//!   web: the browser pages and sessions, merged into api's router; they call the same
//!        lifecycle and store, and api's Caller accepts their session cookie
//!   gateway: opens the data dir and recovers; server: serves it with the sweeper and sequencer
//!   relocation: admin migrate, backup, restore (cli ──► relocation ──► store, blobs, the log)
//!   transparency: tlog (pure maths) ◄── writer (on disk) · verify (offline) · witness
//! ```

/// HTTP routes, the error type on the wire, authentication, and the OpenAPI contract they make.
pub mod api;
/// Audit events and their canonical entry text.
pub mod audit;
/// Ciphertext blob storage (staging, commit, read, delete, sweeps).
pub mod blobs;
/// `sealpost admin check`: the database, the blob store and the log compared.
pub mod check;
/// The command-line interface.
pub mod cli;
/// The client's domain: bundles, keys, sealing and opening, checks before decryption.
pub mod client;
/// Wall-clock time that follows tokio's (pausable) clock.
pub mod clock;
/// Server configuration (flags, environment, `sealpost.toml`).
pub mod config;
/// The recipient's signed delivery statement: its canonical text and strict parsing.
pub mod delivery;
/// Recipient key parsing and fingerprints for the key directory.
pub mod directory;
/// Keyless inspection of age files: header grammar, payload length, randomness.
pub mod envelope;
/// Entry points for the fuzz targets (`fuzz/`): the HTTP header parsers private to `api`, taking
/// raw header bytes. Not an API: nothing but the fuzz targets may use it.
#[doc(hidden)]
pub mod fuzzing;
/// The gateway's state: the data directory opened and recovered, shared by every door.
pub mod gateway;
/// age's hybrid post-quantum recipient type (`age1pq1…`, `mlkem768x25519`), which the `age` crate
/// lacks: key strings, and the recipient and identity the crate's encryption plugs in.
pub mod hybrid;
/// Server-made ids and bearer secrets.
pub mod ids;
/// The intake pipeline: every upload byte hashed and inspected, and the `Inspected` proof.
pub mod intake;
/// The life of a transfer below HTTP: check, receive, release, commit, recall, decide, collect.
pub mod lifecycle;
/// Rate limits per client address and per token.
pub mod limits;
/// The sender's signed manifest: its canonical text and strict parsing.
pub mod manifest;
/// Prometheus metrics on a separate listener.
pub mod metrics;
/// Organisations, roles, user names, classifications.
pub mod model;
/// Names in the log as keyed commitments, so that erasure never breaks the log.
pub mod names;
/// Notifications by email and webhooks, sent from the outbox.
pub mod notify;
/// The policy gate and its approval values.
pub mod policy;
/// Moving a deployment's data: `admin migrate` to PostgreSQL and S3, `admin backup` and `restore`.
pub mod relocation;
/// Assembling and running the gateway.
pub mod server;
pub mod sso;
/// The SQLite store: all SQL lives here.
pub mod store;
/// The background expiry and purge task.
pub mod sweeper;
/// The recipient types whose stanzas carry a tag of their key (`ssh-*`, `p256tag`,
/// `mlkem768p256tag`): tags computed from directory keys, and the matching of stanzas to keys.
pub mod tagged;
/// The transparency log, one subsystem: pure maths, the log on disk and its one writer, offline
/// verification, and the witness.
pub mod transparency;
/// The browser pages: sessions, server-rendered templates, the embedded scripts and styles.
pub mod web;
/// The typed wire: request and response bodies shared by the gateway and its clients.
pub mod wire;
