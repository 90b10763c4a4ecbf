//! The side-by-side benchmark: `cargo bench --bench gateway -- [--quick]`.
//!
//! Builds (through cargo) and runs the release `sealpost` binary on loopback in a temporary
//! directory, next to the tools a user would otherwise reach for: nginx with WebDAV PUT/GET,
//! the Go `age` CLI, `curl` and `cp`. Every comparison runs in the same process on the same
//! machine, each as a median of several repetitions with min and max. It checks its own steps
//! (status codes, sizes, digests, transfers logged) and exits non-zero when one fails. The report
//! (markdown, JSON and a PNG chart) goes to `benches/results/{quick,full}/` unless `--out` says
//! otherwise.
//!
//! What it measures, and why each reference is the fair one, is in `benches/README.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness: a failed setup step ends the run")]

mod backends;
mod cluster;
mod measure;
mod micro;
mod report;
mod scenarios;
mod setup;
mod small;
mod usage;
mod write_lock;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Command-line options (after `cargo bench --bench gateway --`).
#[derive(Debug, Parser)]
#[command(name = "gateway-bench", about = "sealpost side by side with nginx, age, curl and cp")]
pub(crate) struct Opts {
    /// Small sizes and few repetitions: under two minutes, for a smoke run.
    #[arg(long)]
    quick: bool,
    /// Where to write results.md, results.json and chart.png (default: benches/results/MODE).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Repetitions per measurement (default: 3 in quick mode, 5 in full mode).
    #[arg(long)]
    reps: Option<usize>,
    /// Never run `apt-get install` for a missing reference tool; skip what needs it instead.
    #[arg(long)]
    no_install: bool,
    /// Where the temporary directory goes (default: cargo's target tmp dir, on the build disk).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Run only these steps (comma-separated: ingest, egress, e2e, uploads, client, small,
    /// downloads, micro, backends); the default is all of them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Sizes and counts of one mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) mode: &'static str,
    pub(crate) reps: usize,
    /// Ingest, egress and end-to-end file size.
    pub(crate) big: u64,
    /// The client memory run's file size.
    pub(crate) client_big: u64,
    /// Concurrent uploads in the server memory run, and the size of each.
    pub(crate) concurrent_uploads: usize,
    pub(crate) concurrent_upload_size: u64,
    /// Small transfers: how many, how big, from how many clients at once.
    pub(crate) small_count: usize,
    pub(crate) small_size: usize,
    pub(crate) small_clients: usize,
    /// Concurrent downloads: how many distinct bundles, how big each.
    pub(crate) downloads: usize,
    pub(crate) download_size: u64,
    /// Policy decisions and log appends timed in-process.
    pub(crate) decisions: u32,
    pub(crate) log_appends: u64,
}

const MIB: u64 = 1 << 20;

impl Plan {
    fn new(opts: &Opts) -> Self {
        let plan = if opts.quick {
            Self {
                mode: "quick",
                reps: 3,
                big: 64 * MIB,
                client_big: 128 * MIB,
                concurrent_uploads: 50,
                concurrent_upload_size: 2 * MIB,
                small_count: 640,
                small_size: 4096,
                small_clients: 16,
                downloads: 200,
                download_size: 256 * 1024,
                decisions: 5_000,
                log_appends: 1_000,
            }
        } else {
            Self {
                mode: "full",
                reps: 5,
                big: 1024 * MIB,
                client_big: 2048 * MIB,
                concurrent_uploads: 50,
                concurrent_upload_size: 20 * MIB,
                small_count: 4_000,
                small_size: 4096,
                small_clients: 16,
                downloads: 200,
                download_size: 4 * MIB,
                decisions: 20_000,
                log_appends: 2_000,
            }
        };
        Self { reps: opts.reps.unwrap_or(plan.reps).max(1), ..plan }
    }
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let plan = Plan::new(&opts);
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches").join("results").join(plan.mode));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match scenarios::run_all(&opts, plan, &out, &runtime) {
        Ok(report) => {
            println!("\n{}", report.markdown());
            println!("results written to {}", out.display());
            if report.failures().is_empty() {
                ExitCode::SUCCESS
            } else {
                for failure in report.failures() {
                    eprintln!("bench: error: {failure}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
