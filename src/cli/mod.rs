//! The command line: `sealpost serve` runs the gateway; every other command is a client that
//! talks to it over HTTP (`SEALPOST_URL`, `SEALPOST_TOKEN`), except `inspect`, which reads a file
//! locally, and `admin migrate`, `backup` and `restore`, which work on the gateway's data on its
//! machine (`relocation`).
//!
//! Defaults for `--url`, `--token`, `-i` and `--log-key` come from the profile in
//! `~/.config/sealpost/config.toml` (see `profile`); flags and environment variables win.
//!
//! Errors print as `sealpost: error: …` and, where there is a fix, `sealpost: hint: …`. Exit
//! codes: 0 ok, 1 failure, 2 denied by policy, 3 bad configuration, 4 verification failed.

mod client;
mod commands;
mod fetch;
mod generate;
mod inspect;
mod keygen;
mod log;
mod login;
mod monitor;
mod notifications;
mod policy;
mod profile;
mod recover;
mod relocation;
mod send;
mod serve;
mod witness;

use std::process::ExitCode;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// A failure to report: what went wrong, how to fix it, and the exit code.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hint: Option<String>,
    exit: u8,
}

impl Failure {
    /// A plain failure (exit 1).
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), hint: None, exit: 1 }
    }

    /// Adds a hint line.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the exit code.
    pub fn exit(mut self, code: u8) -> Self {
        self.exit = code;
        self
    }
}

/// Exit code for a denial by policy.
pub const EXIT_DENIED: u8 = 2;
/// Exit code for bad configuration or policy.
pub const EXIT_CONFIG: u8 = 3;
/// Exit code for failed verification.
pub const EXIT_VERIFY: u8 = 4;

/// sealpost: send bulk personal data encrypted, collected once, and on the record.
#[derive(Debug, Parser)]
#[command(name = "sealpost", version, about, propagate_version = true)]
struct Cli {
    /// The profile in the config file to take the gateway, token, identity and log key from.
    #[arg(long, env = "SEALPOST_PROFILE", global = true, value_name = "NAME")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Where the gateway is and who is calling.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The gateway's base URL.
    #[arg(long, env = "SEALPOST_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// Your API token (or set SEALPOST_TOKEN).
    #[arg(long, env = "SEALPOST_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(Box<serve::ServeArgs>),
    /// Manage organisations, users and tokens (admin role); migrate, back up and restore the data.
    Admin {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Make an age identity (to receive) or, with --signing, a signing key (to send).
    Keygen(keygen::KeygenArgs),
    /// Bundle files, encrypt them to every recipient's keys, upload, and print the links.
    Send(send::SendArgs),
    /// Collect a bundle by its link, check it against the log, and decrypt it.
    Fetch(fetch::FetchArgs),
    /// Register, list and remove recipient keys in the key directory.
    Keys {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: commands::KeysCommand,
    },
    /// List the bundles waiting for you.
    Inbox {
        #[command(flatten)]
        client: ClientArgs,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show where a transfer you sent stands, per recipient.
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// The transfer id.
        id: String,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Recall a transfer: revoke its unused links and delete its ciphertext.
    Recall {
        #[command(flatten)]
        client: ClientArgs,
        /// The transfer id.
        id: String,
    },
    /// Approve or reject held transfers (compliance role).
    Transfers {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: commands::TransfersCommand,
    },
    /// Check, test and explain Cedar policies locally.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Read the audit trail (compliance and admin roles).
    Audit(commands::AuditArgs),
    /// List the notifications you get by email, or turn optional ones off and on.
    Notifications {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: Option<notifications::NotificationsCommand>,
    },
    /// Show who your token belongs to.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check a file the way the gateway will, without uploading it (no key needed).
    Inspect(inspect::InspectArgs),
    /// Run a witness that cosigns the log's consistent checkpoints, or make its key.
    #[command(subcommand)]
    Witness(witness::WitnessCommand),
    /// Verify receipts offline (exit 0 valid, 4 not).
    #[command(subcommand)]
    Receipt(log::ReceiptCommand),
    /// Verify or export the transparency log (exit 0 valid, 4 not).
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Check an API token (read from standard input), or sign in through your organisation's
    /// identity provider (`--sso`), and save the token, 0600, in a profile.
    Login(login::LoginArgs),
    /// Delete a profile's saved token.
    Logout,
    /// Print a shell completion script.
    Completions(generate::CompletionsArgs),
    /// Print the man page, or write one per command into a directory.
    Man(generate::ManArgs),
}

/// `sealpost admin …`: through a gateway, or on the data itself (on the gateway's machine).
#[derive(Debug, Subcommand)]
enum AdminCommand {
    #[command(flatten)]
    Gateway(commands::AdminCommand),
    #[command(flatten)]
    Data(relocation::DataCommand),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    // Usage errors exit 1, not clap's 2: here 2 means "denied by policy".
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = match profile::apply(Cli::command(), &argv) {
        Ok(command) => command,
        Err(failure) => return report(&failure),
    };
    let cli = match command.try_get_matches_from(&argv).and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return report(&Failure::new(format!("cannot start the async runtime: {e}"))),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Admin { command: AdminCommand::Data(command), .. } => relocation::run(command).await,
            Command::Admin { client, command: AdminCommand::Gateway(command) } => {
                commands::admin(&client, command).await
            }
            Command::Keygen(args) => keygen::run(&args),
            Command::Send(args) => send::run(args).await,
            Command::Fetch(args) => fetch::run(args).await,
            Command::Keys { client, command } => commands::keys(&client, command).await,
            Command::Inbox { client, json } => commands::inbox(&client, json).await,
            Command::Status { client, id, json } => commands::status(&client, &id, json).await,
            Command::Recall { client, id } => commands::recall(&client, &id).await,
            Command::Transfers { client, command } => commands::transfers(&client, command).await,
            Command::Policy(command) => policy::run(command),
            Command::Audit(args) => commands::audit(args).await,
            Command::Notifications { client, command } => notifications::notifications(&client, command).await,
            Command::Whoami { client } => commands::whoami(&client).await,
            Command::Inspect(args) => inspect::run(&args),
            Command::Receipt(command) => log::run_receipt(command).await,
            Command::Log(command) => log::run_log(command).await,
            Command::Witness(command) => witness::run(command).await,
            Command::Login(args) => login::login(args, cli.profile).await,
            Command::Logout => login::logout(cli.profile),
            Command::Completions(args) => generate::completions(&args, Cli::command()),
            Command::Man(args) => generate::man(&args, Cli::command()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

fn report(failure: &Failure) -> ExitCode {
    eprintln!("sealpost: error: {}", failure.message);
    if let Some(hint) = &failure.hint {
        eprintln!("sealpost: hint: {hint}");
    }
    ExitCode::from(failure.exit)
}
