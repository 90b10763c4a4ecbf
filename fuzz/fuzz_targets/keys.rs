// Shared by the transparency targets (included with `include!`): the fixed keys their seed
// corpus is signed with (fuzz/seeds/make_seeds.py makes the same keys from the same seeds), so
// that mutations of real signed notes reach signature verification.

use std::sync::LazyLock;

use sealpost::transparency::tlog::cosignature::{CosignatureVerifier, Cosigner};
use sealpost::transparency::tlog::note::{Signer, Verifier};

/// The log's name (a checkpoint's origin line).
#[allow(dead_code, reason = "not every target signs")]
const LOG_NAME: &str = "fuzz.sealpost.example/log";
/// The witness's name.
#[allow(dead_code, reason = "not every target cosigns")]
const WITNESS_NAME: &str = "fuzz.sealpost.example/witness";

#[allow(dead_code, reason = "not every target signs")]
static LOG: LazyLock<Signer> = LazyLock::new(|| Signer::from_seed(LOG_NAME, &[7; 32]).expect("valid name"));
#[allow(dead_code, reason = "not every target verifies")]
static LOG_VERIFIER: LazyLock<Verifier> = LazyLock::new(|| LOG.verifier());
#[allow(dead_code, reason = "not every target cosigns")]
static WITNESS: LazyLock<Cosigner> =
    LazyLock::new(|| Cosigner::from_seed(WITNESS_NAME, &[8; 32]).expect("valid name"));
#[allow(dead_code, reason = "not every target verifies cosignatures")]
static WITNESS_VERIFIER: LazyLock<CosignatureVerifier> = LazyLock::new(|| WITNESS.verifier());
