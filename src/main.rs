//! The `sealpost` binary: parse the command line and hand over to `sealpost::cli`.

fn main() -> std::process::ExitCode {
    sealpost::cli::main()
}
