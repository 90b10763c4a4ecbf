//! `sealpost witness keygen|serve`: make a witness cosigning key, and run a C2SP tlog-witness
//! that cosigns the gateway log's checkpoints only when they extend what it saw before.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use super::{EXIT_CONFIG, Failure};
use crate::transparency::tlog::cosignature::Cosigner;
use crate::transparency::tlog::note::Verifier;
use crate::transparency::witness::{Witness, witness_keygen};

/// `sealpost witness …`
#[derive(Debug, Subcommand)]
pub(super) enum WitnessCommand {
    /// Make a cosigning key: write the secret key to FILE (mode 0600), print the verifier key.
    Keygen {
        /// The witness's name, such as `witness.example.org/w1`.
        #[arg(long)]
        name: String,
        /// Where to write the secret key (never overwritten).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Run the witness (C2SP tlog-witness `POST /add-checkpoint`).
    Serve(ServeArgs),
}

/// Options for `sealpost witness serve`.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The witness's secret key file, as written by `sealpost witness keygen`.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A log's verifier key string (the gateway's `/log/key`), or a file holding it; repeat
    /// for several logs, or for old and new keys of one log.
    #[arg(long = "log-key", value_name = "VKEY", required = true)]
    log_keys: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Directory of the latest cosigned checkpoint of each log.
    #[arg(long, value_name = "DIR", default_value = "./sealpost-witness")]
    state: PathBuf,
}

/// Runs `sealpost witness …`.
pub(super) async fn run(command: WitnessCommand) -> Result<(), Failure> {
    match command {
        WitnessCommand::Keygen { name, output } => keygen(&name, &output),
        WitnessCommand::Serve(args) => serve(args).await,
    }
}

fn keygen(name: &str, output: &Path) -> Result<(), Failure> {
    let (skey, vkey) = witness_keygen(name).map_err(|e| {
        Failure::new(format!("cannot make a key named `{name}`: {e}"))
            .hint("use a name without spaces or `+`, such as `witness.example.org/w1`")
            .exit(EXIT_CONFIG)
    })?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(output).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::new(format!("`{}` already exists", output.display()))
                .hint("choose another file with -o; an existing key is never overwritten")
        } else {
            Failure::new(format!("cannot create `{}`: {e}", output.display()))
        }
    })?;
    writeln!(file, "{}", skey.expose_secret())
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::new(format!("cannot write `{}`: {e}", output.display())))?;
    println!("{vkey}");
    Ok(())
}

fn read_cosigner(path: &Path) -> Result<Cosigner, Failure> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("cannot read the witness key `{}`: {e}", path.display())))?,
    );
    let cosigner = Cosigner::from_skey(text.trim()).map_err(|e| {
        Failure::new(format!("`{}` is not a witness secret key: {e}", path.display()))
            .hint("make one with `sealpost witness keygen --name NAME -o FILE`")
            .exit(EXIT_CONFIG)
    })?;
    if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
        tracing::warn!(path = %path.display(), "the witness key is readable by others: chmod 600 it");
    }
    Ok(cosigner)
}

/// A verifier key string, or failing that a file holding one.
fn read_log_key(arg: &str) -> Result<Verifier, Failure> {
    let parsed = Verifier::from_vkey(arg.trim());
    let error = match parsed {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    let path = Path::new(arg);
    if !path.is_file() {
        return Err(Failure::new(format!("`{arg}` is neither a log verifier key nor a file holding one: {error}"))
            .hint("the gateway serves its verifier key at `/log/key`")
            .exit(EXIT_CONFIG));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read the log key `{arg}`: {e}")).exit(EXIT_CONFIG))?;
    Verifier::from_vkey(text.trim()).map_err(|e| {
        Failure::new(format!("`{arg}` does not hold a log verifier key: {e}"))
            .hint("the gateway serves its verifier key at `/log/key`")
            .exit(EXIT_CONFIG)
    })
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    super::serve::init_tracing(crate::config::LogFormat::Human);
    let cosigner = read_cosigner(&args.key)?;
    let log_keys = args.log_keys.iter().map(|k| read_log_key(k)).collect::<Result<Vec<_>, _>>()?;
    let witness = Witness::open(&args.state, cosigner, log_keys).map_err(|e| {
        Failure::new(e.to_string()).hint(format!("check the state directory `{}`", args.state.display()))
    })?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await.map_err(|e| {
        Failure::new(format!("cannot listen on {}: {e}", args.listen)).hint("pick another address with --listen")
    })?;
    let bound = listener.local_addr().map_err(|e| Failure::new(format!("cannot read the bound address: {e}")))?;
    let witness = Arc::new(witness);
    for origin in witness.origins() {
        let size = witness.known_size(origin).await.unwrap_or_default();
        tracing::info!(%origin, size, "witnessing");
    }
    tracing::info!(%bound, key = %witness.verifier().to_vkey(), state = %args.state.display(), "the witness is listening");
    crate::transparency::witness::run(listener, witness, super::serve::shutdown_signal())
        .await
        .map_err(|e| Failure::new(format!("the witness stopped: {e}")))?;
    tracing::info!("the witness stopped");
    Ok(())
}
