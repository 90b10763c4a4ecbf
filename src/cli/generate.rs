//! Shell completions (`clap_complete`) and man pages (`clap_mangen`), generated from the same
//! clap definitions that parse the command line, so they cannot drift from it.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Command};
use clap_complete::Shell;

use super::Failure;

/// Options for `sealpost completions`.
#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Options for `sealpost man`.
#[derive(Debug, Args)]
pub(super) struct ManArgs {
    /// Write one page per command and subcommand (`sealpost.1`, `sealpost-send.1`, …) into DIR
    /// instead of printing `sealpost.1`.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script for a shell.
pub(super) fn completions(args: &CompletionsArgs, mut cmd: Command) -> Result<(), Failure> {
    // Rendered in memory first: clap_complete panics when its writer fails (`… | head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "sealpost", &mut script);
    print(&script)
}

/// Writes to standard output; a reader that went away early (`| head`) is not an error.
fn print(bytes: &[u8]) -> Result<(), Failure> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::new(format!("cannot write to standard output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Prints `sealpost.1`, or writes every page into a directory.
pub(super) fn man(args: &ManArgs, cmd: Command) -> Result<(), Failure> {
    match &args.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| Failure::new(format!("cannot render the man page: {e}")))?;
            print(&page)
        }
        Some(dir) => {
            let fail =
                |e: std::io::Error| Failure::new(format!("cannot write man pages into `{}`: {e}", dir.display()));
            std::fs::create_dir_all(dir).map_err(fail)?;
            clap_mangen::generate_to(cmd, dir).map_err(fail)?;
            eprintln!("sealpost: wrote man pages into {}", dir.display());
            Ok(())
        }
    }
}
