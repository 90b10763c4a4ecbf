//! `sealpost inspect FILE`: run the gateway's keyless envelope check on a local file.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{EXIT_VERIFY, Failure};
use crate::envelope::{Inspector, Limits};

/// Options for `sealpost inspect`.
#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// The file to check (`-` for standard input).
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Streams the file through the inspector; exit 4 if the gateway would refuse it.
pub(super) fn run(args: &InspectArgs) -> Result<(), Failure> {
    let mut input: Box<dyn std::io::Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .map_err(|e| Failure::new(format!("cannot open `{}`: {e}", args.file.display())))?,
        )
    };
    let mut inspector = Inspector::new(Limits::default());
    let mut buf = vec![0u8; 1 << 20];
    let refused = |e: crate::envelope::EnvelopeError| {
        Failure::new(format!("the gateway would refuse `{}`: {e}", args.file.display()))
            .hint("encrypt it with `age -r` to the recipients' keys from the directory")
            .exit(EXIT_VERIFY)
    };
    loop {
        let n =
            input.read(&mut buf).map_err(|e| Failure::new(format!("cannot read `{}`: {e}", args.file.display())))?;
        if n == 0 {
            break;
        }
        inspector.update(&buf[..n]).map_err(refused)?;
    }
    let envelope = inspector.finish().map_err(refused)?;
    let stanzas: Vec<&str> = envelope.header.stanzas.iter().map(|s| s.tag.as_str()).collect();
    if args.json {
        let v = json!({
            "armored": envelope.header.armored,
            "stanzas": stanzas,
            "recipients": envelope.header.recipient_stanzas().count(),
            "passphrase": envelope.header.has_passphrase(),
            "post_quantum": envelope.header.is_post_quantum(),
            "header_bytes": envelope.header.header_len,
            "payload_bytes": envelope.payload_len,
            "chunks": envelope.chunks,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("age-encryption.org/v1{}", if envelope.header.armored { " (armoured)" } else { "" });
        println!("recipient stanzas: {} ({})", envelope.header.recipient_stanzas().count(), stanzas.join(", "));
        println!("post-quantum: {}", if envelope.header.is_post_quantum() { "yes" } else { "no" });
        println!("payload: {} bytes in {} chunk(s)", envelope.payload_len, envelope.chunks);
        if envelope.header.has_passphrase() {
            println!("note: passphrase-encrypted; the gateway refuses these by default");
        }
    }
    Ok(())
}
