//! `sealpost keygen`: a recipient's age X25519 identity (the format `age-keygen` writes), with
//! `--pq` a hybrid post-quantum one (as `age-keygen -pq` writes it), or with `--signing` a
//! sender's Ed25519 signing key (PKCS#8 PEM). The file is new, mode 0600; the public half goes to
//! standard output.

use std::path::PathBuf;

use clap::Args;

use super::Failure;
use crate::client::keys::{self, KeyFileError};

/// Options for `sealpost keygen`.
#[derive(Debug, Args)]
pub(super) struct KeygenArgs {
    /// Where to write the new key (never overwritten).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Make an Ed25519 signing key for sending, instead of an age identity for receiving.
    #[arg(long, conflicts_with = "pq")]
    signing: bool,
    /// Make a hybrid post-quantum identity (ML-KEM-768 with X25519; its recipient is `age1pq1…`),
    /// for files that must stay secret even from a future quantum computer.
    #[arg(long)]
    pq: bool,
}

/// Runs `sealpost keygen`.
pub(super) fn run(args: &KeygenArgs) -> Result<(), Failure> {
    let (secret, public) = if args.signing {
        keys::new_signing_key().map_err(|e| Failure::new(e.to_string()))?
    } else if args.pq {
        keys::new_pq_identity(chrono::Utc::now())
    } else {
        keys::new_identity(chrono::Utc::now())
    };
    keys::write_new_secret(&args.output, &secret).map_err(|e| match e {
        KeyFileError::Exists { .. } => {
            Failure::new(e.to_string()).hint("choose another file with -o; an existing key is never overwritten")
        }
        other => Failure::new(other.to_string()),
    })?;
    if args.signing {
        eprintln!("sealpost: wrote a signing key to `{}`", args.output.display());
    } else {
        let kind = if args.pq { "a post-quantum age identity" } else { "an age identity" };
        eprintln!(
            "sealpost: wrote {kind} to `{}`; register its recipient with `sealpost keys add`",
            args.output.display()
        );
    }
    println!("{public}");
    Ok(())
}
