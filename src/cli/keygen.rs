//! `sealpost keygen`: a recipient's age X25519 identity (the format `age-keygen` writes), or with
//! `--signing` a sender's Ed25519 signing key (PKCS#8 PEM). The file is new, mode 0600; the
//! public half goes to standard output.

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
    #[arg(long)]
    signing: bool,
}

/// Runs `sealpost keygen`.
pub(super) fn run(args: &KeygenArgs) -> Result<(), Failure> {
    let (secret, public) = if args.signing {
        keys::new_signing_key().map_err(|e| Failure::new(e.to_string()))?
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
        eprintln!(
            "sealpost: wrote an age identity to `{}`; register its recipient with `sealpost keys add`",
            args.output.display()
        );
    }
    println!("{public}");
    Ok(())
}
